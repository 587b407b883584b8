// The 3D room: a floor, a bed and a table, avatars (head and both hands from `part`
// entities) and shared objects, each pose interpolated over INTERP_MS so movement is
// smooth between state frames. `positionOf(id)` reports what is drawn (tests use it).
import * as THREE from "three";
import { dequantize } from "./poses.js";
import { eyeRect } from "./stereo.js";

const INTERP_MS = 100;
const ROLE_COLOURS = { facilitator: 0xe69f00, participant: 0x56b4e9, spectator: 0x999999 };

export class RoomScene {
  constructor(container) {
    this.container = container;
    this.tracks = new Map(); // entity id -> {from, to, t0, object3d}
    this.avatarRoles = new Map(); // avatar id -> role
    this.ok = false;
    try {
      this.renderer = new THREE.WebGLRenderer({ antialias: true });
    } catch (err) {
      container.textContent = "The 3D view needs WebGL, which this browser does not offer. Everything else works.";
      return;
    }
    this.ok = true;
    this.renderer.setPixelRatio(Math.min(2, window.devicePixelRatio || 1));
    this.renderer.xr.enabled = true;
    this.renderer.domElement.tabIndex = 0;
    this.renderer.domElement.setAttribute("aria-label", "3D view of the room");
    container.append(this.renderer.domElement);
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(0x1b2430);
    this.camera = new THREE.PerspectiveCamera(60, 16 / 9, 0.05, 100);
    this.camera.position.set(0, 3.0, 5.4);
    this.camera.lookAt(0, 0.9, 0);
    // In VR the headset moves the camera within this rig, which stands at our seat.
    this.rig = new THREE.Group();
    this.rig.add(this.camera);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x334455, 2.2));
    const sun = new THREE.DirectionalLight(0xffffff, 1.2);
    sun.position.set(2, 4, 3);
    this.scene.add(sun);
    this.scene.add(this.rig);
    this.furnish();
    this.resize();
    new ResizeObserver(() => this.resize()).observe(container);
  }

  furnish() {
    const grid = new THREE.GridHelper(10, 20, 0x556677, 0x334455);
    this.scene.add(grid);
    const bed = new THREE.Mesh(new THREE.BoxGeometry(0.9, 0.5, 2.0), new THREE.MeshStandardMaterial({ color: 0xdde6ee }));
    bed.position.set(-1.4, 0.25, 0);
    const patient = new THREE.Mesh(new THREE.CapsuleGeometry(0.18, 1.1, 4, 12), new THREE.MeshStandardMaterial({ color: 0xc98f6b }));
    patient.rotation.x = Math.PI / 2;
    patient.position.set(-1.4, 0.68, 0);
    const table = new THREE.Mesh(new THREE.BoxGeometry(1.2, 0.05, 1.0), new THREE.MeshStandardMaterial({ color: 0x8a6d4b }));
    table.position.set(0, 0.85, 0);
    this.scene.add(bed, patient, table);
  }

  resize() {
    const w = this.container.clientWidth || 640;
    const h = Math.round(w * 9 / 16);
    this.renderer.setSize(w, h);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
  }

  /** Sync meshes with the mirror: avatars, parts and objects that exist, poses that moved.
   * The parts of `selfMember`'s avatar are not drawn: the camera is that head. */
  sync(mirror, movedIds, now, selfMember) {
    if (!this.ok) return;
    const alive = new Set();
    let selfAvatar = null;
    for (const [id, [kind, fields]] of mirror.entities) {
      if (kind === "avatar") this.avatarRoles.set(id, fields.role);
      if (kind === "avatar" && fields.member === selfMember) selfAvatar = id;
      if (kind === "part" || kind === "object") alive.add(id);
    }
    for (const avatarId of this.avatarRoles.keys()) {
      if (!mirror.entities.has(avatarId)) this.avatarRoles.delete(avatarId);
    }
    for (const [id, track] of this.tracks) {
      if (!alive.has(id)) { track.object3d.parent?.remove(track.object3d); this.tracks.delete(id); }
    }
    for (const id of alive) {
      const [kind, fields] = mirror.entities.get(id);
      let track = this.tracks.get(id);
      if (!track) {
        const object3d = kind === "part" ? this.partMesh(fields) : this.objectMesh();
        if (!object3d) continue;
        this.scene.add(object3d);
        track = { object3d, from: null, to: null, t0: now, shown: false };
        this.tracks.set(id, track);
        movedIds.add(id);
      }
      if (kind === "object") {
        track.object3d.material.color.setHex(fields.holder == null ? 0x4caf7d : 0xf0e442);
        track.shown = true;
      } else {
        const avatar = mirror.entities.get(fields.avatar);
        track.shown = !!avatar && avatar[1].connected !== false && fields.avatar !== selfAvatar;
      }
      if (movedIds.has(id) && mirror.poses.has(id)) {
        const target = dequantize(mirror.poses.get(id));
        track.from = track.to ? this.current(track, now) : target;
        track.to = target;
        track.t0 = now;
      }
    }
  }

  partMesh(fields) {
    const role = this.avatarRoles.get(fields.avatar);
    const material = new THREE.MeshStandardMaterial({ color: ROLE_COLOURS[role] ?? 0xcccccc });
    if (fields.part === "head") {
      const head = new THREE.Group();
      head.add(new THREE.Mesh(new THREE.SphereGeometry(0.12, 20, 14), material));
      const visor = new THREE.Mesh(new THREE.BoxGeometry(0.16, 0.05, 0.04), new THREE.MeshStandardMaterial({ color: 0x222222 }));
      visor.position.set(0, 0.02, -0.11); // faces -Z, the forward direction
      head.add(visor);
      return head;
    }
    return new THREE.Mesh(new THREE.BoxGeometry(0.07, 0.03, 0.11), material);
  }

  objectMesh() {
    return new THREE.Mesh(new THREE.BoxGeometry(0.08, 0.08, 0.08), new THREE.MeshStandardMaterial({ color: 0x4caf7d }));
  }

  current(track, now) {
    const a = Math.min(1, (now - track.t0) / INTERP_MS);
    const p = track.from.p.map((v, i) => v + (track.to.p[i] - v) * a);
    const qa = new THREE.Quaternion(...track.from.q);
    const qb = new THREE.Quaternion(...track.to.q);
    qa.slerp(qb, a);
    return { p, q: [qa.x, qa.y, qa.z, qa.w] };
  }

  render(now) {
    if (!this.ok) return;
    for (const track of this.tracks.values()) {
      track.object3d.visible = !!(track.shown && track.to);
      if (!track.to) continue;
      const pose = this.current(track, now);
      track.object3d.position.set(...pose.p);
      track.object3d.quaternion.set(...pose.q);
    }
    this.renderer.render(this.scene, this.camera);
  }

  /** Show the presenter's video on a screen seen only in VR, each eye its half of a
   * stereo frame (three.js gives the left eye layer 1 and the right eye layer 2). */
  showStereoVideo(video, layout) {
    if (!this.ok) return;
    if (this.screen) this.scene.remove(this.screen);
    const texture = new THREE.VideoTexture(video);
    texture.colorSpace = THREE.SRGBColorSpace;
    const screen = new THREE.Group();
    for (const [layer, eye] of [[1, 0], [2, 1]]) {
      const [x, y, w, h] = eyeRect(layout, eye, 1, 1);
      const map = texture.clone();
      map.repeat.set(w, h);
      map.offset.set(x, 1 - y - h); // texture v runs bottom to top
      const plane = new THREE.Mesh(new THREE.PlaneGeometry(1.6, 0.9), new THREE.MeshBasicMaterial({ map }));
      plane.layers.set(layer);
      screen.add(plane);
    }
    screen.position.set(0, 1.8, -2.5);
    this.scene.add(screen);
    this.screen = screen;
  }

  /** The drawn position of an entity's mesh, or null. */
  positionOf(id) {
    const track = this.tracks.get(id);
    return track && track.to ? track.object3d.position.toArray() : null;
  }
}

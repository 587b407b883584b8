// Moving your own avatar (or, for a spectator, the view). On a desktop: keyboard
// (W A S D / arrows, Q E turn, R F look) and mouse drag on the 3D view move a
// first-person head; hands follow the head.
// In a headset: "Enter VR" starts an immersive-vr WebXR session and the head and hand
// poses come from the XR frame. Poses are sent at most SEND_HZ times a second, float32.
// Everyone starts at their own seat around the table (the room gives each avatar a
// `seat` number; before it does, the order of joining stands in), so no two heads
// start in one place, on the desktop or in VR.
import * as THREE from "three";
import { rawPose, yawQuaternion } from "./poses.js";

const SEND_HZ = 20;
const SPEED = 1.2;   // metres per second
const TURN = 1.6;    // radians per second
const EYE = 1.6;

const SEATS_PER_RING = 8;
const SEAT_GAP = 0.42;   // radians between neighbours (about 0.8 m apart on the first ring)
const SEAT_RADIUS = 1.9; // metres from the table's centre; each further ring 0.7 m out

/** Where seat `n` is: [x, z, yaw], on arcs in front of the table, facing its centre. */
export function seatPlace(n) {
  const ring = Math.floor(n / SEATS_PER_RING);
  const k = n % SEATS_PER_RING;
  const around = (k % 2 ? -1 : 1) * Math.ceil(k / 2) * SEAT_GAP + (ring % 2) * SEAT_GAP / 2;
  const r = SEAT_RADIUS + 0.7 * ring;
  return [r * Math.sin(around), r * Math.cos(around), around];
}

/** Our seat: the room's `seat` field, or our place among the avatars by member id. */
export function seatOf(mirror, member) {
  const avatars = [...mirror.find("avatar").values()].filter((a) => a.role !== "spectator");
  const mine = avatars.find((a) => a.member === member);
  if (!mine) return null;
  if (Number.isInteger(mine.seat)) return mine.seat;
  return avatars.map((a) => a.member).sort((a, b) => a - b).indexOf(member);
}

export class DesktopMover {
  constructor(scene, conn) {
    this.scene = scene;
    this.conn = conn;
    this.seated = false;
    [this.x, this.z, this.yaw] = seatPlace(0);
    this.pitch = -0.25;
    this.keys = new Set();
    this.dirty = true;
    this.lastSend = 0;
    const canvas = scene.renderer.domElement;
    canvas.addEventListener("keydown", (e) => {
      if (["KeyW", "KeyA", "KeyS", "KeyD", "KeyQ", "KeyE", "KeyR", "KeyF", "ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight"].includes(e.code)) {
        this.keys.add(e.code);
        e.preventDefault();
      }
    });
    canvas.addEventListener("keyup", (e) => this.keys.delete(e.code));
    canvas.addEventListener("blur", () => this.keys.clear());
    canvas.addEventListener("pointerdown", (e) => { canvas.focus(); canvas.setPointerCapture(e.pointerId); this.drag = [e.clientX, e.clientY]; });
    canvas.addEventListener("pointerup", () => { this.drag = null; });
    canvas.addEventListener("pointermove", (e) => {
      if (!this.drag) return;
      this.yaw -= (e.clientX - this.drag[0]) * 0.005;
      this.pitch = Math.max(-1.2, Math.min(1.2, this.pitch - (e.clientY - this.drag[1]) * 0.005));
      this.drag = [e.clientX, e.clientY];
      this.dirty = true;
    });
  }

  /** Start at our seat (once: afterwards we are where we walked). */
  sit(seat) {
    if (this.seated || seat === null) return;
    this.seated = true;
    [this.x, this.z, this.yaw] = seatPlace(seat);
    this.dirty = true;
  }

  /** Move by the keys held for `dt` seconds; send the pose once the room has our avatar. */
  step(dt, now, joined) {
    const k = (code) => this.keys.has(code);
    const forward = (k("KeyW") || k("ArrowUp") ? 1 : 0) - (k("KeyS") || k("ArrowDown") ? 1 : 0);
    const strafe = (k("KeyD") ? 1 : 0) - (k("KeyA") ? 1 : 0);
    const turn = (k("KeyQ") || k("ArrowLeft") ? 1 : 0) - (k("KeyE") || k("ArrowRight") ? 1 : 0);
    const look = (k("KeyR") ? 1 : 0) - (k("KeyF") ? 1 : 0);
    if (forward || strafe || turn || look) {
      this.yaw += turn * TURN * dt;
      this.pitch = Math.max(-1.2, Math.min(1.2, this.pitch + look * TURN * dt));
      const s = Math.sin(this.yaw), c = Math.cos(this.yaw);
      this.x += (-s * forward + c * strafe) * SPEED * dt;
      this.z += (-c * forward - s * strafe) * SPEED * dt;
      this.dirty = true;
    }
    const camera = this.scene.camera;
    camera.position.set(this.x, EYE, this.z);
    camera.quaternion.set(...yawQuaternion(this.yaw, this.pitch));
    if (joined && this.seated && this.dirty && now - this.lastSend >= 1000 / SEND_HZ && this.conn.connected) {
      this.dirty = false;
      this.lastSend = now;
      this.conn.sendPose(this.poses());
    }
  }

  poses() {
    const q = yawQuaternion(this.yaw, 0);
    const s = Math.sin(this.yaw), c = Math.cos(this.yaw);
    const hand = (side) => rawPose([this.x + c * 0.22 * side - s * 0.3, EYE - 0.5, this.z - s * 0.22 * side - c * 0.3], q);
    return { head: rawPose([this.x, EYE, this.z], yawQuaternion(this.yaw, this.pitch)), left: hand(-1), right: hand(1) };
  }
}

/** A spectator's view: arrow keys orbit the room's centre and zoom (no pose is sent). */
export class OrbitView {
  constructor(scene) {
    this.scene = scene;
    this.angle = 0;
    this.distance = 5.4;
    this.place();
    scene.renderer.domElement.addEventListener("keydown", (e) => {
      const turn = { ArrowLeft: -0.15, ArrowRight: 0.15 }[e.key] ?? 0;
      const zoom = { ArrowUp: -0.4, ArrowDown: 0.4 }[e.key] ?? 0;
      if (!turn && !zoom) return;
      e.preventDefault();
      this.angle += turn;
      this.distance = Math.max(1.5, Math.min(10, this.distance + zoom));
      this.place();
    });
  }

  place() {
    const camera = this.scene.camera;
    camera.position.set(Math.sin(this.angle) * this.distance, 0.55 * this.distance, Math.cos(this.angle) * this.distance);
    camera.lookAt(0, 0.9, 0);
  }
}

export class XrSession {
  constructor(scene, conn, button, statusNode) {
    this.scene = scene;
    this.conn = conn;
    this.button = button;
    this.statusNode = statusNode;
    this.session = null;
    this.lastSend = 0;
    button.addEventListener("click", () => (this.session ? this.session.end() : this.start()));
  }

  async probe() {
    this.button.hidden = false;
    let supported = false;
    try {
      supported = !!navigator.xr && (await navigator.xr.isSessionSupported("immersive-vr"));
    } catch {
      supported = false;
    }
    this.button.disabled = !supported;
    this.statusNode.textContent = supported ? "" : "VR is not available in this browser; use the keyboard or mouse to move.";
  }

  /** Enter VR. "local-floor" is optional: a headset without it gets "local" (its origin
   * at the head), raised to standing eye height. Either way the space is moved so that
   * we stand at our seat, facing the table. */
  async start() {
    try {
      const session = await navigator.xr.requestSession("immersive-vr", { optionalFeatures: ["local-floor"] });
      let type = "local-floor";
      try {
        await session.requestReferenceSpace("local-floor");
      } catch {
        type = "local";
      }
      const xr = this.scene.renderer.xr;
      xr.setReferenceSpaceType(type);
      await xr.setSession(session);
      // Stand at our seat: the camera rig moves there (three.js puts the headset's pose
      // inside it), and the poses we send are turned the same way.
      const [x, z, yaw] = (this.place = seatPlace(this.seat ?? 0));
      const rig = this.scene.rig;
      rig.position.set(x, type === "local" ? EYE : 0, z);
      rig.quaternion.set(...yawQuaternion(yaw, 0));
      rig.updateMatrixWorld(true);
      this.referenceSpaceType = type;
      this.session = session;
      this.button.textContent = "Exit VR";
      this.statusNode.textContent = "In VR";
      session.addEventListener("end", () => {
        this.session = null;
        rig.position.set(0, 0, 0);
        rig.quaternion.set(0, 0, 0, 1);
        this.button.textContent = "Enter VR";
        this.statusNode.textContent = "";
      });
    } catch (err) {
      this.statusNode.textContent = `Could not start VR: ${err.message}`;
    }
  }

  get active() { return this.session !== null; }

  /** Called from the render loop with the XRFrame while presenting. */
  onFrame(frame, now) {
    if (!frame || now - this.lastSend < 1000 / SEND_HZ) return;
    const space = this.scene.renderer.xr.getReferenceSpace();
    const viewer = frame.getViewerPose(space);
    if (!viewer) return;
    const rig = this.scene.rig.matrixWorld;
    const toRaw = (t) => {
      const m = new THREE.Matrix4().compose(new THREE.Vector3(t.position.x, t.position.y, t.position.z),
        new THREE.Quaternion(t.orientation.x, t.orientation.y, t.orientation.z, t.orientation.w),
        new THREE.Vector3(1, 1, 1)).premultiply(rig);
      const p = new THREE.Vector3(), q = new THREE.Quaternion();
      m.decompose(p, q, new THREE.Vector3());
      return [p.x, p.y, p.z, q.x, q.y, q.z, q.w];
    };
    const message = { head: toRaw(viewer.transform) };
    for (const source of frame.session.inputSources) {
      if (!source.gripSpace || (source.handedness !== "left" && source.handedness !== "right")) continue;
      const pose = frame.getPose(source.gripSpace, space);
      if (pose) message[source.handedness] = toRaw(pose.transform);
    }
    this.lastSend = now;
    this.conn.sendPose(message);
  }
}

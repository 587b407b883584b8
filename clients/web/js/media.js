// Voice and stereo video over WebRTC, signalled with `rtc` messages on the room's
// WebSocket (docs/media.md). Publishing and subscribing use separate peer connections.
// New tracks are added to the subscription by asking again with the same pc id (the
// worker re-offers with the added m-lines); switching to voices only opens a new,
// audio-only subscription. Stereo video is one side-by-side VP8 track, shown as one eye,
// side by side or anaglyph (and per eye in VR, see scene.js).
import { el } from "./render.js";
import { drawStereo } from "./stereo.js";

const ICE_GATHER_MS = 2000;

function waitForIce(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(done, ICE_GATHER_MS);
  });
}

export class Media {
  constructor(conn, ui, { audioOnly }) {
    this.conn = conn;
    this.ui = ui; // {status, audio, stereo, mode, micButton, shareButton, listenButton}
    this.audioOnly = audioOnly;
    this.pcs = new Map();       // pc id -> RTCPeerConnection
    this.tracks = new Map();    // track id -> description {track, member, kind, layout, muted}
    this.published = new Map(); // pc id -> {stream, tracks}
    this.subSeq = 0;
    this.subPc = null;        // the current subscription's pc id
    this.subSettled = true;   // its last offer has been answered
    this.subWanted = false;   // more tracks to ask for once it is
    this.byMid = new Map();   // mid -> track description, from the latest offer
    this.unavailable = false;
    this.stereoVideo = null;
    this.speaking = new Set(); // member ids the media worker hears speaking
    conn.addEventListener("rtc", (e) => this.onMessage(e.detail));
    conn.addEventListener("error-msg", (e) => {
      if (e.detail.code === "media_unavailable") this.setUnavailable(e.detail.msg);
    });
    ui.mode.addEventListener("change", () => this.drawLoop());
  }

  setStatus(text) { this.ui.status.textContent = text; }

  setUnavailable(msg) {
    this.unavailable = true;
    this.setStatus(`Voice and video are off: ${msg}`);
    this.ui.micButton.disabled = true;
    this.ui.shareButton.disabled = true;
  }

  start() {
    this.subscribe();
  }

  setAudioOnly(on) {
    this.audioOnly = on;
    if (!this.unavailable) this.subscribe(on); // voices only: a new subscription; back: add video
  }

  // -- subscribing ------------------------------------------------------------------
  /** Ask for the tracks we lack: on the current subscription, or on a new one (`fresh`). */
  subscribe(fresh = false) {
    if (fresh || !this.subPc) {
      if (this.subPc) this.closePc(this.subPc, "unsubscribe");
      this.subPc = `sub${++this.subSeq}`;
      this.subSettled = true;
    }
    if (this.audioOnly && this.stereoVideo) {
      this.stereoVideo = null;
      this.ui.stereo.hidden = true;
    }
    if (!this.subSettled) {
      this.subWanted = true; // ask again once the current offer is answered
      return;
    }
    const message = { op: "subscribe", pc: this.subPc };
    if (this.audioOnly) {
      const audio = [...this.tracks.values()].filter((t) => t.kind === "audio" && !this.isMine(t));
      if (this.tracks.size && !audio.length) return;
      if (this.tracks.size) message.tracks = audio.map((t) => t.track).slice(0, 32);
    }
    this.subSettled = false;
    this.subWanted = false;
    this.conn.sendRtc(message);
  }

  async onOffer(message) {
    let pc = this.pcs.get(message.pc);
    if (!pc) {
      pc = new RTCPeerConnection({ iceServers: [] });
      this.pcs.set(message.pc, pc);
      pc.addEventListener("track", (event) =>
        this.onRemoteTrack(event, this.byMid.get(String(event.transceiver.mid)), message.pc));
    }
    this.byMid = new Map((message.tracks || []).map((t) => [String(t.mid), t]));
    for (const t of message.tracks || []) this.tracks.set(t.track, t);
    await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await waitForIce(pc);
    this.conn.sendRtc({ op: "answer", pc: message.pc, sdp: pc.localDescription.sdp });
    if (message.pc === this.subPc) this.subSettled = true;
    const videos = (message.tracks || []).filter((t) => t.kind === "video").length;
    const audios = (message.tracks || []).length - videos;
    this.setStatus(`Receiving ${audios} voice${audios === 1 ? "" : "s"}${videos ? ` and ${videos} video` : ""}.`);
    if (this.audioOnly && videos) this.subscribe(true);
    else if (this.subWanted) this.subscribe();
  }

  onRemoteTrack(event, description, pcId) {
    const stream = event.streams[0] || new MediaStream([event.track]);
    if (event.track.kind === "audio") {
      const audio = el("audio", { autoplay: true, "data-pc": pcId, "data-track": description?.track ?? "" });
      audio.srcObject = stream;
      this.ui.audio.append(audio);
      audio.play().catch(() => { this.ui.listenButton.hidden = false; });
      return;
    }
    const video = el("video", { autoplay: true, muted: true, playsinline: true, class: "sr-only", "aria-hidden": "true" });
    video.muted = true;
    video.srcObject = stream;
    this.ui.stereo.hidden = false;
    this.ui.stereo.querySelector(".video-source").replaceChildren(video);
    this.stereoVideo = { video, layout: description?.layout ?? "mono", track: description?.track };
    video.play().catch(() => {});
    this.onVideo?.(video, this.stereoVideo.layout);
    this.drawLoop();
  }

  /** Draw the current video into the stereo canvas in the chosen mode. */
  drawLoop() {
    if (!this.stereoVideo || this.drawing) return;
    this.drawing = true;
    drawStereo(this.ui.stereo.querySelector("canvas"), this.ui.mode, () => this.stereoVideo,
      () => { this.drawing = false; });
  }

  // -- publishing -------------------------------------------------------------------
  async publish(pcId, stream, layout) {
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pcs.set(pcId, pc);
    const announced = [];
    for (const track of stream.getTracks()) {
      const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
      announced.push({ transceiver, kind: track.kind });
    }
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIce(pc);
    const tracks = announced.map(({ transceiver, kind }) => ({
      mid: transceiver.mid, kind, ...(kind === "video" ? { layout } : {}),
    }));
    this.published.set(pcId, { stream, tracks: [] });
    this.conn.sendRtc({ op: "publish", pc: pcId, sdp: pc.localDescription.sdp, tracks });
  }

  async toggleMic() {
    const mine = this.published.get("mic");
    if (mine) {
      const enabled = !mine.stream.getAudioTracks()[0].enabled;
      mine.stream.getAudioTracks()[0].enabled = enabled;
      for (const track of mine.tracks) this.conn.sendRtc({ op: "mute", track, muted: !enabled });
      this.ui.micButton.setAttribute("aria-pressed", String(enabled));
      this.ui.micButton.textContent = enabled ? "Mute microphone" : "Unmute microphone";
      return;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      await this.publish("mic", stream);
      this.ui.micButton.setAttribute("aria-pressed", "true");
      this.ui.micButton.textContent = "Mute microphone";
    } catch (err) {
      this.setStatus(`Could not use the microphone: ${err.message}`);
    }
  }

  /** Share the camera as side-by-side stereo (both eyes from one camera; a stereo rig sends its own). */
  async shareStereo() {
    try {
      const camera = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 } });
      const source = el("video", { muted: true, playsinline: true });
      source.muted = true;
      source.srcObject = camera;
      await source.play();
      const canvas = document.createElement("canvas");
      canvas.width = 1280;
      canvas.height = 360;
      const ctx = canvas.getContext("2d");
      const pack = () => {
        ctx.drawImage(source, 0, 0, 640, 360);
        ctx.drawImage(source, 640, 0, 640, 360);
        if (camera.active) requestAnimationFrame(pack);
      };
      pack();
      await this.publish("stereo", canvas.captureStream(30), "side-by-side");
      this.ui.shareButton.disabled = true;
    } catch (err) {
      this.setStatus(`Could not share video: ${err.message}`);
    }
  }

  // -- signalling -------------------------------------------------------------------
  onMessage(message) {
    switch (message.op) {
      case "offer":
        this.onOffer(message).catch((err) => this.setStatus(`Media negotiation failed: ${err.message}`));
        break;
      case "answer": {
        const pc = this.pcs.get(message.pc);
        const mine = this.published.get(message.pc);
        if (mine) mine.tracks = (message.tracks || []).map((t) => t.track);
        if (pc) pc.setRemoteDescription({ type: "answer", sdp: message.sdp })
          .catch((err) => this.setStatus(`Media negotiation failed: ${err.message}`));
        break;
      }
      case "tracks":
        for (const t of message.added || []) this.tracks.set(t.track, t);
        for (const id of message.removed || []) this.dropTrack(id);
        if ((message.added || []).some((t) => !this.isMine(t) && (!this.audioOnly || t.kind === "audio"))) this.subscribe();
        break;
      case "muted": {
        const track = this.tracks.get(message.track);
        if (track) track.muted = message.muted;
        break;
      }
      case "speaking":
        if (message.speaking) this.speaking.add(message.member); else this.speaking.delete(message.member);
        this.onSpeaking?.();
        break;
      case "renegotiate":
        this.restart();
        break;
      case "error":
        if (message.pc && message.pc === this.subPc) this.subSettled = true;
        if (message.code === "unknown_track" && message.pc === this.subPc) {
          if (!this.pcs.has(this.subPc)) this.setStatus("Nobody is sharing voice or video yet.");
        } else {
          this.setStatus(`Media error (${message.code}): ${message.message}`);
        }
        break;
      default:
        break;
    }
  }

  /** The tracks a member publishes, of one kind. */
  tracksOf(member, kind) {
    return [...this.tracks.values()].filter((t) => String(t.member) === String(member) && t.kind === kind);
  }

  mute(trackId, muted) {
    this.conn.sendRtc({ op: "mute", track: trackId, muted });
  }

  isMine(track) {
    return track.member === this.conn.welcome?.member;
  }

  /** A track is gone: forget it and take down what showed or played it. */
  dropTrack(id) {
    this.tracks.delete(id);
    for (const audio of this.ui.audio.querySelectorAll("audio")) if (audio.dataset.track === id) audio.remove();
    if (this.stereoVideo && this.stereoVideo.track === id) {
      this.stereoVideo = null;
      this.ui.stereo.hidden = true;
    }
  }

  /** Play every voice (browsers may block autoplay until the user asks). */
  listen() {
    for (const audio of this.ui.audio.querySelectorAll("audio")) audio.play().catch(() => {});
    this.ui.listenButton.hidden = true;
  }

  closePc(id, op) {
    const pc = this.pcs.get(id);
    if (pc) pc.close();
    this.pcs.delete(id);
    for (const audio of this.ui.audio.querySelectorAll(`audio[data-pc="${id}"]`)) audio.remove();
    if (op) this.conn.sendRtc({ op, pc: id });
  }

  async restart() {
    const published = [...this.published.entries()];
    for (const id of [...this.pcs.keys()]) this.closePc(id, null);
    this.published.clear();
    this.subPc = null;
    for (const [id, { stream }] of published) {
      await this.publish(id, stream, id === "stereo" ? "side-by-side" : undefined);
    }
    this.subscribe(true);
  }

  /** Decoded media counters from getStats (tests and the status line use them). */
  async stats() {
    const out = { audioPackets: 0, audioSamples: 0, framesDecoded: 0 };
    for (const pc of this.pcs.values()) {
      const report = await pc.getStats();
      report.forEach((s) => {
        if (s.type !== "inbound-rtp") return;
        if (s.kind === "audio") { out.audioPackets += s.packetsReceived || 0; out.audioSamples += s.totalSamplesReceived || 0; }
        if (s.kind === "video") out.framesDecoded += s.framesDecoded || 0;
      });
    }
    return out;
  }
}

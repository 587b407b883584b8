// Voice and stereo video over WebRTC, signalled with `rtc` messages on the room's
// WebSocket (docs/media.md). Publishing and subscribing use separate peer connections.
// New tracks are added to the subscription by asking again with the same pc id (the
// worker re-offers with the added m-lines); switching to voices only opens a new,
// audio-only subscription. Stereo video is one side-by-side VP8 track, shown as one eye,
// side by side or anaglyph (and per eye in VR, see scene.js).
//
// pc ids are new for every page (and every republish), so a reloaded page never meets
// the pcs its previous copy left behind. The worker says `closed` when it ends a pc on
// its own (consent expired, stalled, its offer unanswered): a published one is published
// again, the subscription is opened again. A subscription refused for want of room (the
// worker's limits on peer connections) is asked for again later, less and less often.
import { el } from "./render.js";
import { drawStereo } from "./stereo.js";

const ICE_GATHER_MS = 2000;
const RETRY_MS = [2000, 5000, 10000, 30000]; // a subscription the worker had no room for
const FULL = new Set(["member_limit", "room_limit", "worker_limit"]);
const PAGE = Math.random().toString(36).slice(2, 8); // this page's pcs: never a previous page's

function waitForIce(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { pc.removeEventListener("icegatheringstatechange", check); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    pc.addEventListener("icegatheringstatechange", check);
    setTimeout(done, ICE_GATHER_MS);
  });
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

export class Media extends EventTarget {
  constructor(conn, ui, { audioOnly }) {
    super();
    this.conn = conn;
    this.ui = ui; // {status, audio, stereo, mode, micButton, listenButton}
    this.audioOnly = audioOnly;
    this.seq = 0;
    this.pcs = new Map();       // pc id -> RTCPeerConnection
    this.tracks = new Map();    // track id -> description {track, member, kind, layout, muted}
    this.published = new Map(); // pc id -> {name: "mic"|"stereo", stream, layout, tracks: [track id]}
    this.sub = null;            // the subscription: {id, settled, wanted, received: Map mid -> track}
    this.unavailable = false;
    this.stereoVideo = null;    // what the stereo panel shows: a remote track or our own preview
    this.speaking = new Set();  // member ids the media worker hears speaking
    this.retries = 0;           // subscriptions refused in a row for want of room
    this.retryTimer = null;
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
    this.changed();
  }

  changed() { this.dispatchEvent(new Event("change")); }

  start() {
    this.subscribe();
  }

  newId(name) { return `${name}.${PAGE}.${++this.seq}`; }

  /** [pc id, entry] of what we publish under `name` ("mic", "stereo"), if any. */
  entryOf(name) { return [...this.published.entries()].find(([, p]) => p.name === name); }

  get micOn() { return !!this.entryOf("mic"); }
  get sharing() { return !!this.entryOf("stereo"); }

  setAudioOnly(on) {
    this.audioOnly = on;
    if (!this.unavailable) this.subscribe(on); // voices only: a new subscription; back: add video
  }

  // -- subscribing ------------------------------------------------------------------
  /** Ask for the tracks we lack: on the current subscription, or on a new one (`fresh`). */
  subscribe(fresh = false) {
    if (fresh || !this.sub) {
      if (this.sub) this.closePc(this.sub.id, "unsubscribe");
      this.sub = { id: this.newId("sub"), settled: true, wanted: false, received: new Map() };
    }
    if (this.audioOnly && this.stereoVideo && !this.stereoVideo.local) this.showVideo(null);
    const sub = this.sub;
    if (!sub.settled) {
      sub.wanted = true; // ask again once the current offer is answered
      return;
    }
    const message = { op: "subscribe", pc: sub.id };
    const others = [...this.tracks.values()].filter((t) => !this.isMine(t));
    if (this.audioOnly) {
      const audio = others.filter((t) => t.kind === "audio");
      if (this.tracks.size && !audio.length) { this.showStatus(); return; }
      if (this.tracks.size) message.tracks = audio.map((t) => t.track).slice(0, 32);
    }
    sub.settled = false;
    sub.wanted = false;
    this.conn.sendRtc(message);
  }

  async onOffer(message) {
    const sub = this.sub;
    if (!sub || message.pc !== sub.id) return; // an offer for a subscription we gave up
    let pc = this.pcs.get(sub.id);
    if (!pc) {
      pc = new RTCPeerConnection({ iceServers: [] });
      this.pcs.set(sub.id, pc);
      pc.addEventListener("track", (event) => this.onRemoteTrack(event, sub));
    }
    this.retries = 0;
    sub.offered = new Map((message.tracks || []).map((t) => [String(t.mid), t]));
    for (const t of message.tracks || []) this.tracks.set(t.track, t);
    await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await waitForIce(pc);
    if (this.sub !== sub) return; // replaced meanwhile (closePc already closed this pc)
    this.conn.sendRtc({ op: "answer", pc: sub.id, sdp: pc.localDescription.sdp });
    sub.settled = true;
    this.showStatus();
    const videos = (message.tracks || []).some((t) => t.kind === "video");
    if (this.audioOnly && videos) this.subscribe(true);
    else if (sub.wanted) this.subscribe();
  }

  onRemoteTrack(event, sub) {
    if (this.sub !== sub) return;
    const description = sub.offered?.get(String(event.transceiver.mid));
    sub.received.set(String(event.transceiver.mid), description?.track);
    const stream = event.streams[0] || new MediaStream([event.track]);
    if (event.track.kind === "audio") {
      const audio = el("audio", { autoplay: true, "data-pc": sub.id, "data-track": description?.track ?? "" });
      audio.srcObject = stream;
      this.ui.audio.append(audio);
      audio.play().catch(() => { this.ui.listenButton.hidden = false; });
      this.showStatus();
      return;
    }
    if (this.stereoVideo?.local) return; // the sharer sees their own preview
    const video = el("video", { autoplay: true, muted: true, playsinline: true, class: "sr-only", "aria-hidden": "true" });
    video.muted = true;
    video.srcObject = stream;
    video.play().catch(() => {});
    this.showVideo({ video, layout: description?.layout ?? "mono", track: description?.track, local: false });
    this.onVideo?.(video, this.stereoVideo.layout);
    this.showStatus();
  }

  /** Show a video in the stereo panel (or hide the panel with null). */
  showVideo(shown) {
    this.stereoVideo = shown;
    this.ui.stereo.hidden = !shown;
    if (shown) {
      this.ui.stereo.querySelector(".video-source").replaceChildren(shown.video);
      this.ui.stereo.querySelector(".stereo-caption").textContent = shown.local
        ? "Your stereo video, as the room sees it" : "The presenter's stereo video";
      this.drawLoop();
    }
  }

  /** Draw the current video into the stereo canvas in the chosen mode. */
  drawLoop() {
    if (!this.stereoVideo || this.drawing) return;
    this.drawing = true;
    drawStereo(this.ui.stereo.querySelector("canvas"), this.ui.mode, () => this.stereoVideo,
      () => { this.drawing = false; });
  }

  /** What we hear and see, and what we send, in one sentence. */
  showStatus() {
    if (this.unavailable) return;
    const live = new Set([...this.tracks.keys()]);
    const received = [...this.ui.audio.querySelectorAll("audio")].filter((a) => live.has(a.dataset.track)).length;
    const video = this.stereoVideo && !this.stereoVideo.local && live.has(this.stereoVideo.track);
    const parts = [];
    if (received || video) parts.push(`Receiving ${plural(received, "voice")}${video ? " and 1 video" : ""}.`);
    else if (!this.micOn && !this.sharing) parts.push("Nobody is sharing voice or video yet.");
    if (this.micOn) parts.push("Your microphone is on.");
    if (this.sharing) parts.push("You are sharing stereo video.");
    this.setStatus(parts.join(" "));
  }

  // -- publishing -------------------------------------------------------------------
  async publish(name, stream, layout) {
    const pcId = this.newId(name);
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pcs.set(pcId, pc);
    const announced = [];
    for (const track of stream.getTracks()) {
      const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
      announced.push({ transceiver, kind: track.kind });
    }
    this.published.set(pcId, { name, stream, layout, tracks: [] });
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIce(pc);
    if (!this.published.has(pcId)) return; // stopped meanwhile
    const tracks = announced.map(({ transceiver, kind }) => ({
      mid: transceiver.mid, kind, ...(kind === "video" ? { layout } : {}),
    }));
    this.conn.sendRtc({ op: "publish", pc: pcId, sdp: pc.localDescription.sdp, tracks });
    this.showStatus();
    this.changed();
  }

  async toggleMic() {
    const mine = this.entryOf("mic");
    if (mine) {
      const [, entry] = mine;
      const track = entry.stream.getAudioTracks()[0];
      track.enabled = !track.enabled;
      for (const id of entry.tracks) this.conn.sendRtc({ op: "mute", track: id, muted: !track.enabled });
      this.ui.micButton.setAttribute("aria-pressed", String(track.enabled));
      this.ui.micButton.textContent = track.enabled ? "Mute microphone" : "Unmute microphone";
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

  /** Share the camera as side-by-side stereo (both eyes from one camera; a stereo rig
   * sends its own) and show it in our own stereo panel as a preview. */
  async shareStereo() {
    if (this.sharing) return;
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
      const stream = canvas.captureStream(30);
      this.camera = camera;
      const preview = el("video", { autoplay: true, muted: true, playsinline: true, class: "sr-only", "aria-hidden": "true" });
      preview.muted = true;
      preview.srcObject = stream;
      preview.play().catch(() => {});
      this.showVideo({ video: preview, layout: "side-by-side", track: null, local: true });
      this.onVideo?.(preview, "side-by-side");
      await this.publish("stereo", stream, "side-by-side");
    } catch (err) {
      this.setStatus(`Could not share video: ${err.message}`);
      this.changed();
    }
  }

  /** Stop sharing: the worker drops the track, the camera is released, the preview goes. */
  stopSharing() {
    const mine = this.entryOf("stereo");
    if (!mine) return;
    const [pcId, entry] = mine;
    this.published.delete(pcId);
    this.closePc(pcId, "unpublish");
    for (const track of entry.stream.getTracks()) track.stop();
    for (const track of this.camera?.getTracks() ?? []) track.stop();
    this.camera = null;
    if (this.stereoVideo?.local) this.showVideo(null);
    this.showStatus();
    this.changed();
  }

  /** The worker ended one of our pcs on its own: publish it again, or subscribe again. */
  onClosed(message) {
    const entry = this.published.get(message.pc);
    if (entry) {
      this.published.delete(message.pc);
      this.closePc(message.pc, null);
      this.publish(entry.name, entry.stream, entry.layout);
    } else if (this.sub && message.pc === this.sub.id) {
      this.sub = null;
      this.closePc(message.pc, null);
      this.subscribe(true);
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
        this.changed();
        break;
      }
      case "tracks":
        for (const t of message.added || []) this.tracks.set(t.track, t);
        for (const id of message.removed || []) this.dropTrack(id);
        if ((message.added || []).some((t) => !this.isMine(t) && (!this.audioOnly || t.kind === "audio"))) this.subscribe();
        this.showStatus();
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
      case "closed":
        this.onClosed(message);
        break;
      case "renegotiate":
        this.restart();
        break;
      case "error":
        this.onError(message);
        break;
      default:
        break;
    }
  }

  onError(message) {
    const current = this.sub && message.pc === this.sub.id;
    if (current) this.sub.settled = true;
    if (message.pc && !current && !this.pcs.has(message.pc) && !this.published.has(message.pc)) return; // a pc we left
    if (current && message.code === "unknown_track") { this.showStatus(); return; } // nothing new to receive
    if (current && message.code === "limit_reached") { this.subscribe(true); return; }
    if (current && FULL.has(message.code)) { this.retryLater(this.sub, message.message); return; }
    const entry = this.published.get(message.pc);
    if (entry) {
      this.published.delete(message.pc);
      this.closePc(message.pc, null);
      if (entry.name === "stereo") this.stopSharing();
      this.changed();
    }
    const why = {
      forbidden_role: "you may not do that in your role",
      worker_unavailable: "the media service is restarting",
      rate_limited: "too many requests at once",
    }[message.code] ?? message.message;
    this.setStatus(`Voice and video: ${why}.`);
  }

  /** Ask for the subscription again after a while (it was refused: no room for it). */
  retryLater(sub, why) {
    const wait = RETRY_MS[Math.min(this.retries++, RETRY_MS.length - 1)];
    this.setStatus(`Voice and video: ${why}. Trying again in ${Math.round(wait / 1000)} s.`);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => { if (this.sub === sub && sub.settled) this.subscribe(); }, wait);
  }

  /** The tracks a member publishes, of one kind. */
  tracksOf(member, kind) {
    return [...this.tracks.values()].filter((t) => String(t.member) === String(member) && t.kind === kind);
  }

  mute(trackId, muted) {
    this.conn.sendRtc({ op: "mute", track: trackId, muted });
  }

  isMine(track) {
    return String(track.member) === String(this.conn.welcome?.member);
  }

  /** A track is gone: forget it and take down what showed or played it. */
  dropTrack(id) {
    this.tracks.delete(id);
    for (const audio of this.ui.audio.querySelectorAll("audio")) if (audio.dataset.track === id) audio.remove();
    if (this.stereoVideo && !this.stereoVideo.local && this.stereoVideo.track === id) this.showVideo(null);
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

  /** Everything again from scratch (the worker was replaced, or we are a new member). */
  async restart() {
    const published = [...this.published.values()];
    for (const id of [...this.pcs.keys()]) this.closePc(id, null);
    this.published.clear();
    this.sub = null;
    for (const { name, stream, layout } of published) await this.publish(name, stream, layout);
    this.subscribe(true);
  }

  /** Decoded media counters from getStats (tests and the status line use them). */
  async stats() {
    const out = { audioPackets: 0, audioSamples: 0, framesDecoded: 0, audioSent: 0, videoSent: 0 };
    for (const pc of this.pcs.values()) {
      const report = await pc.getStats();
      report.forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "audio") { out.audioPackets += s.packetsReceived || 0; out.audioSamples += s.totalSamplesReceived || 0; }
        if (s.type === "inbound-rtp" && s.kind === "video") out.framesDecoded += s.framesDecoded || 0;
        if (s.type === "outbound-rtp" && s.kind === "audio") out.audioSent += s.packetsSent || 0;
        if (s.type === "outbound-rtp" && s.kind === "video") out.videoSent += s.packetsSent || 0;
      });
    }
    return out;
  }
}

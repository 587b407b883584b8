// The browser app's entry point: join from the page URL (?room=…&token=…), keep a
// mirror of the room, and drive the panels for the role the server gave us.
import { RoomConnection, wsUrl } from "./connection.js";
import { Monitor } from "./monitor.js";
import { RoomScene } from "./scene.js";
import { DesktopMover, OrbitView, XrSession, seatOf } from "./movement.js";
import { actionsFor, buildActionForms } from "./actions.js";
import { renderCase, renderChat, renderEvents, renderInspector, renderPeople, timeline } from "./panels.js";
import { personControls, renderAnswerKey, renderQuestions, renderScore, showControls, wireControls, wireJoinLinks } from "./facilitator.js";
import { Media } from "./media.js";
import { eventText, humanize, names, roomStatus } from "./names.js";
import { Presenting } from "./presenting.js";
import { HIDDEN, isHidden } from "./wire.js";

const $ = (id) => document.getElementById(id);
const PANEL_MS = 250;
const LOW_BANDWIDTH_FRAME_MS = 500;
const LOW_BANDWIDTH_RATE = 5; // state frames a second asked of the server in low-bandwidth mode
const CAPTION_CHANNELS = new Set(["events", "case", "hints", "script"]);
const VITALS_EVERY_MS = 30_000; // spoken summaries, when switched on

const params = new URLSearchParams(location.search);
const room = params.get("room") || "";
const token = params.get("token") || "";

function showProblem(text) {
  $("problem").hidden = false; // shown first, so the alert is announced
  $("problem-text").textContent = text;
}

$("problem-dismiss").addEventListener("click", () => { $("problem").hidden = true; });

function announce(text, polite = false) {
  const node = $(polite ? "polite-announcer" : "announcer");
  node.textContent = "";
  setTimeout(() => { node.textContent = text; }, 50);
}

/** Overrides and refusals are for the facilitator's eyes (and the record). */
function forRole(entry, role) {
  return role === "facilitator" || !(entry && (entry.override === true || entry.kind === "override"));
}

function start() {
  if (params.has("session")) {
    location.replace(`/replay.html${location.search}`); // a review link
    return;
  }
  if (!token) {
    const form = $("join");
    form.hidden = false;
    $("conn-status").textContent = "Not joined";
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const query = new URLSearchParams({ room: $("join-room").value.trim(), token: $("join-token").value.trim() });
      location.search = query.toString();
    });
    return;
  }
  const conn = new RoomConnection({ url: wsUrl(), token, room });
  const app = new App(conn);
  window.grandRounds = { conn, app, HIDDEN, isHidden, get mirror() { return conn.mirror; }, get media() { return app.media; } };
  conn.open();
}

class App {
  constructor(conn) {
    this.conn = conn;
    this.token = conn.token;
    this.lowBandwidth = localStorage.getItem("gr.lowBandwidth") === "1";
    this.scene = new RoomScene($("scene"));
    this.monitor = new Monitor($("monitor"), $("alarm-text"), announce);
    this.moved = new Set();
    this.dirty = true;
    this.lastPanels = 0;
    this.lastFrame = 0;
    this.forms = null;
    this.mover = null;
    this.xr = null;
    this.media = null;
    this.wired = false;   // role-specific controls set up (once, at the first welcome)
    this.joined = false;  // the room holds our avatar: poses may be sent
    this.status = null;   // the room's status, to announce changes
    this.personControls = null;
    this.presenting = null;
    this.controls = null; // the facilitator's Pause / Resume
    this.ratePrefSent = false; // a prefs message went out on this connection or an earlier one
    this.wireVitalsVoice();

    const toggle = $("low-bandwidth");
    toggle.checked = this.lowBandwidth;
    toggle.addEventListener("change", () => {
      this.lowBandwidth = toggle.checked;
      localStorage.setItem("gr.lowBandwidth", toggle.checked ? "1" : "0");
      announce(toggle.checked ? "Low-bandwidth mode on: voices only, slower updates" : "Low-bandwidth mode off");
      if (this.media) this.media.setAudioOnly(toggle.checked);
      this.sendRatePrefs();
    });

    conn.addEventListener("status", (e) => { $("conn-status").textContent = e.detail; });
    conn.addEventListener("welcome", (e) => this.onWelcome(e.detail));
    conn.addEventListener("state", (e) => this.onState(e.detail));
    conn.addEventListener("error-msg", (e) => e.detail.code !== "media_unavailable" && showProblem(`The server refused a message (${e.detail.code}): ${e.detail.msg}`));
    conn.addEventListener("bye", (e) => {
      showProblem(`Disconnected by the server (${e.detail.code}): ${e.detail.msg}`);
      announce(`Disconnected: ${e.detail.msg}`);
    });

    $("inspector").closest("details").addEventListener("toggle", () => { this.dirty = true; });
    const loop = (now, frame) => this.frame(now, frame);
    if (this.scene.ok) this.scene.renderer.setAnimationLoop(loop);
    else {
      const raf = (now) => { loop(now, null); requestAnimationFrame(raf); };
      requestAnimationFrame(raf);
    }
  }

  onWelcome(welcome) {
    const role = welcome.role;
    this.joined = false;
    this.sendRatePrefs(); // every welcome: a resumed or new connection starts at the full rate
    document.body.dataset.role = role;
    $("main").hidden = false;
    $("room-title").textContent = welcome.title || "Grand Rounds";
    document.title = `${welcome.title || "Grand Rounds"} — Grand Rounds`;
    $("role-badge").textContent = humanize(role);
    $("participant-panel").hidden = role !== "participant";
    $("facilitator-panel").hidden = role !== "facilitator";
    this.monitor.showOverrides = role === "facilitator";
    $("ask-panel").hidden = !(role === "spectator" || role === "participant");
    $("chat-form").hidden = role === "spectator";
    $("scene-help").textContent = role === "spectator"
      ? "Click or tab to the view, then: left and right arrows turn around the room; up and down zoom."
      : "Click or tab to the view, then move: W A S D or arrow keys; Q/E turn; R/F look up/down; or drag with the mouse.";
    if (this.wired) {
      if (welcome.resumed === false && this.media && !this.media.unavailable) this.media.restart();
      return;
    }
    this.wired = true;
    this.startMedia(role);
    this.wireForms(role);
    if (role === "spectator" && this.scene.ok) new OrbitView(this.scene);
    if (role !== "spectator" && this.scene.ok) {
      this.mover = new DesktopMover(this.scene, this.conn);
      this.xr = new XrSession(this.scene, this.conn, $("enter-vr"), $("vr-status"));
      this.xr.probe();
    }
  }

  /** The screen reader's vitals: a key that reads them (V, outside text fields) and,
   * when switched on, a polite summary with trends every VITALS_EVERY_MS. */
  wireVitalsVoice() {
    const read = () => announce(this.monitor.summary(), true);
    $("read-vitals").addEventListener("click", read);
    document.addEventListener("keydown", (event) => {
      const typing = event.target.closest?.("input, textarea, select, [contenteditable]") || event.target === this.scene.renderer?.domElement;
      if (event.key.toLowerCase() === "v" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
        event.preventDefault();
        read();
      }
    });
    const periodic = $("vitals-periodic");
    periodic.checked = localStorage.getItem("gr.vitalsVoice") === "1";
    const schedule = () => {
      clearInterval(this.vitalsTimer);
      if (periodic.checked) this.vitalsTimer = setInterval(() => announce(this.monitor.summary(true), true), VITALS_EVERY_MS);
    };
    periodic.addEventListener("change", () => {
      localStorage.setItem("gr.vitalsVoice", periodic.checked ? "1" : "0");
      if (periodic.checked) announce(this.monitor.summary(true), true);
      schedule();
    });
    schedule();
  }

  /** Ask the server for state at the low-bandwidth rate, or back at the full tick rate. */
  sendRatePrefs() {
    const welcome = this.conn.welcome;
    if (!welcome) return;
    if (!this.lowBandwidth && !this.ratePrefSent) return; // the server's default is the full rate
    const rate = this.lowBandwidth ? LOW_BANDWIDTH_RATE : Math.max(1, Math.min(120, welcome.tick_hz || 30));
    if (this.conn.send({ t: "prefs", rate })) this.ratePrefSent = true;
  }

  startMedia(role) {
    if (!window.RTCPeerConnection) {
      $("media-status").textContent = "This browser has no WebRTC; voice and video are off.";
      return;
    }
    this.media = new Media(this.conn, {
      status: $("media-status"), audio: $("media-audio"), stereo: $("stereo"), mode: $("stereo-mode"),
      micButton: $("media-mic"), shareButton: $("media-share"), listenButton: $("media-listen"),
    }, { audioOnly: this.lowBandwidth });
    this.media.onSpeaking = () => { this.dirty = true; };
    this.media.onVideo = (video, layout) => this.scene.showStereoVideo(video, layout);
    $("media-listen").addEventListener("click", () => this.media.listen());
    if (role !== "spectator") {
      $("media-mic").hidden = false;
      $("media-mic").addEventListener("click", async () => {
        await this.media.toggleMic();
        sessionStorage.setItem("gr.mic", this.media.micOn ? "on" : "off");
      });
      if (sessionStorage.getItem("gr.mic") === "on") this.media.toggleMic(); // on before a reload
    }
    if (role === "participant") {
      this.presenting = new Presenting(this.conn, this.media,
        { share: $("media-share"), cancel: $("media-cancel"), stop: $("media-stop"), status: $("present-status") },
        (text, bad) => (bad ? showProblem(text) : announce(text)));
      this.presenting.render();
    }
    $("media-status").textContent = "Connecting voice…";
    this.media.start();
  }

  wireForms(role) {
    const report = (text, bad) => (bad ? showProblem(text) : announce(text));
    $("chat-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = $("chat-text");
      if (!input.value.trim()) return;
      const reply = await this.conn.intent("chat", { text: input.value });
      if (reply.ok) input.value = ""; else report(`Chat refused (${reply.code}): ${reply.msg}`, true);
    });
    $("ask-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = $("ask-text");
      if (!input.value.trim()) return;
      const reply = await this.conn.intent("ask", { text: input.value });
      if (reply.ok) { input.value = ""; announce("Question sent to the facilitator."); }
      else report(`Question refused (${reply.code}): ${reply.msg}`, true);
    });
    if (role === "facilitator") {
      this.personControls = personControls(this.conn, this.media, report);
      this.controls = wireControls(this.conn, report);
      wireJoinLinks(room || this.conn.welcome.room, this.token, report);
    }
  }

  onState(changes) {
    const mirror = this.conn.mirror;
    if (changes.full) for (const id of mirror.poses.keys()) this.moved.add(id);
    for (const id of changes.poses) this.moved.add(id);
    if (changes.full || changes.ops.length) this.dirty = true;
    const role = this.conn.role;
    names.update(mirror.first("catalog")?.fields);
    for (const op of changes.ops) {
      if (op[0] === "log" && CAPTION_CHANNELS.has(op[1]) && forRole(op[2], role)) this.caption(op[2]);
    }
    if (changes.full) {
      const items = timeline(mirror).filter(({ entry }) => forRole(entry, role));
      if (items.length) $("caption").textContent = eventText(items[items.length - 1].entry);
    }
    if (!this.joined && this.conn.welcome) {
      const member = this.conn.welcome.member;
      this.joined = [...mirror.find("avatar").values()].some((a) => a.member === member);
    }
    if (!this.forms) {
      const roomEntity = mirror.first("room");
      if (roomEntity && this.conn.role) {
        const container = this.conn.role === "facilitator" ? $("fac-actions") : $("actions");
        this.forms = buildActionForms(container, actionsFor(this.conn.role, roomEntity.fields.scenario), mirror,
          (action, args) => this.conn.intent(action, args), { pauses: this.conn.role === "participant" });
      }
    }
  }

  caption(entry) {
    $("caption").textContent = eventText(entry);
  }

  frame(now, xrFrame) {
    const interval = this.lowBandwidth && !(this.xr && this.xr.active) ? LOW_BANDWIDTH_FRAME_MS : 0;
    if (now - this.lastFrame < interval) return;
    const dt = Math.min(0.1, (now - (this.lastFrame || now)) / 1000);
    this.lastFrame = now;
    if (this.dirty && now - this.lastPanels >= (this.lowBandwidth ? 1000 : PANEL_MS)) {
      this.dirty = false;
      this.lastPanels = now;
      this.renderPanels();
    }
    if (this.scene.ok) {
      this.scene.sync(this.conn.mirror, this.moved, now, this.mover ? this.conn.welcome.member : null);
      this.moved.clear();
      if (this.xr && this.xr.active) this.xr.onFrame(xrFrame, now);
      else if (this.mover) this.mover.step(dt, now, this.joined);
      this.scene.render(now);
    }
    this.monitor.draw(now);
  }

  renderPanels() {
    const mirror = this.conn.mirror;
    const roomEntity = mirror.first("room");
    const role = this.conn.role;
    if (roomEntity) {
      const status = String(roomEntity.fields.status);
      if (status !== this.status) {
        if (this.status) announce(`The case is ${roomStatus(status).toLowerCase()}`);
        this.status = status;
      }
      $("room-status").textContent = roomStatus(status);
      $("room-status").dataset.status = status;
      this.forms?.setPaused(status === "paused");
      if (this.controls) showControls(this.controls, status);
    }
    const monitor = mirror.first("monitor");
    if (monitor) this.monitor.update(monitor.fields);
    const member = this.conn.welcome?.member;
    this.presenting?.update([...mirror.find("avatar").values()].find((a) => a.member === member));
    const seat = seatOf(mirror, member);
    this.mover?.sit(seat);
    if (this.xr) this.xr.seat = seat;
    renderCase($("case-panel"), mirror);
    renderPeople($("participants"), mirror, member, this.media?.speaking,
      role === "facilitator" ? this.personControls : null);
    renderEvents($("events"), timeline(mirror).filter(({ entry }) => forRole(entry, role)));
    renderChat($("chat"), mirror.logs.chat || []);
    if (this.conn.role === "facilitator") {
      renderAnswerKey($("answer-key"), mirror);
      renderScore($("score"), mirror);
      renderQuestions($("questions"), mirror.logs.questions || []);
    }
    if (this.forms) this.forms.refresh();
    if ($("inspector").closest("details").open) renderInspector($("inspector"), mirror);
  }
}

start();

// The replay viewer. Without ?session= it lists the recorded sessions; with one it
// plays it back. The contract it is written against (the server side is the lead's):
//   GET  /api/sessions                     -> {sessions: [{id, title, case, started, ended}]}
//   GET  /api/sessions/{id}                -> {id, title, case, started, ended, duration_s, tick_hz,
//                                              lanes: [{name, label, items: [{t, text}]}],
//                                              vitals: {signal: [[t, value], ...]}, annotations: [...]}
//   POST /api/sessions/{id}/annotations    {kind: "bookmark"|"comment", start_s, end_s?, text} -> 201 annotation
//   GET  /api/sessions/{id}/debrief        the debrief export
//   WebSocket /ws, hello {room: "replay:<id>"}: the same protocol as a live room; the
//   intents `play {speed}`, `pause` and `seek {t}` drive it; a seek answers with a snapshot.
import { RoomConnection, wsUrl } from "./connection.js";
import { Monitor } from "./monitor.js";
import { RoomScene } from "./scene.js";
import { renderCase, renderEvents, renderPeople, timeline, eventText } from "./panels.js";
import { clockText, el } from "./render.js";
import { HIDDEN, isHidden } from "./wire.js";

const $ = (id) => document.getElementById(id);
const PANEL_MS = 200;
const VITAL_LINES = { hr: "#7cfc8a", spo2: "#5cd6ff", sbp: "#ffffff" };

function showProblem(text) {
  $("problem").textContent = text;
  $("problem").hidden = false;
}

function announce(text) {
  $("announcer").textContent = "";
  setTimeout(() => { $("announcer").textContent = text; }, 50);
}

async function getJson(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(body.message || `HTTP ${response.status}`), { code: body.error || response.status });
  return body;
}

async function listSessions() {
  $("sessions-view").hidden = false;
  const body = $("sessions");
  try {
    const { sessions } = await getJson("/api/sessions");
    if (!sessions.length) {
      body.replaceChildren(el("tr", {}, el("td", { colspan: 4, text: "No sessions recorded yet." })));
      return;
    }
    const token = new URLSearchParams(location.search).get("token");
    body.replaceChildren(...sessions.map((s) => {
      const query = new URLSearchParams({ session: s.id, ...(token ? { token } : {}) });
      return el("tr", {},
        el("td", {}, el("a", { href: `/replay.html?${query}`, text: s.title || s.id })),
        el("td", { text: s.case ?? "" }), el("td", { text: s.started ?? "" }), el("td", { text: s.ended ?? "still running" }));
    }));
  } catch (err) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 4, text: `Replays are not available here (${err.code}): ${err.message}` })));
  }
}

class Player {
  constructor(info, token) {
    this.info = info;
    this.token = token;
    this.tickHz = info.tick_hz || 30;
    this.duration = info.duration_s || 0;
    this.playing = false;
    this.dragging = false;
    this.dirty = true;
    this.moved = new Set();
    this.lastPanels = 0;
    this.annotations = [...(info.annotations || [])];
    this.conn = new RoomConnection({ url: wsUrl(), token, room: `replay:${info.id}` });
    this.scene = new RoomScene($("scene"));
    this.monitor = new Monitor($("monitor"), $("alarm-text"), () => {});
    $("replay-title").textContent = `Replay: ${info.title || info.id}`;
    document.title = `Replay: ${info.title || info.id} — Grand Rounds`;
    $("debrief").href = `/api/sessions/${encodeURIComponent(info.id)}/debrief`;
    const seek = $("seek");
    seek.max = String(this.duration);
    this.buildLanes();
    this.renderBookmarks();

    this.conn.addEventListener("status", (e) => { $("conn-status").textContent = e.detail; });
    this.conn.addEventListener("state", (e) => this.onState(e.detail));
    this.conn.addEventListener("error-msg", (e) => showProblem(`The server refused a message (${e.detail.code}): ${e.detail.msg}`));
    this.conn.addEventListener("bye", (e) => showProblem(`Disconnected by the server (${e.detail.code}): ${e.detail.msg}`));
    $("play").addEventListener("click", () => this.togglePlay());
    $("speed").addEventListener("change", () => { if (this.playing) this.control("play", { speed: this.speed }); });
    seek.addEventListener("input", () => { this.dragging = true; this.showClock(Number(seek.value)); });
    seek.addEventListener("change", () => { this.dragging = false; this.seek(Number(seek.value)); });
    $("bookmark-form").addEventListener("submit", (e) => { e.preventDefault(); this.addBookmark(); });
    const loop = (now) => this.frame(now);
    if (this.scene.ok) this.scene.renderer.setAnimationLoop(loop);
    else { const raf = (now) => { loop(now); requestAnimationFrame(raf); }; requestAnimationFrame(raf); }
    this.conn.open();
  }

  get speed() { return Number($("speed").value); }
  get now() { return this.conn.mirror.tick === null ? 0 : this.conn.mirror.tick / this.tickHz; }

  async control(action, args = {}) {
    const reply = await this.conn.intent(action, args);
    if (!reply.ok) showProblem(`${action} refused (${reply.code}): ${reply.msg}`);
    return reply.ok;
  }

  async togglePlay() {
    const next = !this.playing;
    if (await this.control(next ? "play" : "pause", next ? { speed: this.speed } : {})) {
      this.playing = next;
      $("play").textContent = next ? "Pause" : "Play";
      $("play").setAttribute("aria-pressed", String(next));
    }
  }

  async seek(t) {
    const target = Math.max(0, Math.min(this.duration, t));
    if (await this.control("seek", { t: target })) announce(`Moved to ${clockText(target)}`);
  }

  onState(changes) {
    const mirror = this.conn.mirror;
    if (changes.full) for (const id of mirror.poses.keys()) this.moved.add(id);
    for (const id of changes.poses) this.moved.add(id);
    this.dirty = true;
  }

  frame(now) {
    if (this.dirty && now - this.lastPanels >= PANEL_MS) {
      this.dirty = false;
      this.lastPanels = now;
      const mirror = this.conn.mirror;
      const monitor = mirror.first("monitor");
      if (monitor) this.monitor.update(monitor.fields);
      renderCase($("case-panel"), mirror);
      renderPeople($("participants"), mirror, null);
      const items = timeline(mirror);
      renderEvents($("events"), items);
      $("caption").textContent = items.length ? eventText(items[items.length - 1].entry) : "";
      if (!this.dragging) {
        $("seek").value = String(this.now);
        this.showClock(this.now);
      }
      this.placePlayheads(this.now);
    }
    if (this.scene.ok) {
      this.scene.sync(this.conn.mirror, this.moved, now, null);
      this.moved.clear();
      this.scene.render(now);
    }
    this.monitor.draw(now);
  }

  showClock(t) {
    $("clock").textContent = `${clockText(t)} / ${clockText(this.duration)}`;
    $("seek").setAttribute("aria-valuetext", `${clockText(t)} of ${clockText(this.duration)}`);
  }

  // -- timeline lanes -----------------------------------------------------------------
  pct(t) { return this.duration ? `${(100 * Math.max(0, Math.min(this.duration, t))) / this.duration}%` : "0%"; }

  buildLanes() {
    const lanes = [...(this.info.lanes || [])];
    const rows = lanes.map((lane) => this.lane(lane.label, lane.items.map((item) => this.marker(item.t, item.text, lane.name))));
    rows.push(this.vitalsLane());
    this.bookmarkTrack = el("div", { class: "lane-track" });
    rows.push(el("div", { class: "lane" }, el("span", { class: "lane-label", text: "Bookmarks" }), this.bookmarkTrack));
    $("lanes").replaceChildren(...rows);
  }

  lane(title, markers) {
    return el("div", { class: "lane" }, el("span", { class: "lane-label", text: title }),
      el("div", { class: "lane-track" }, ...markers));
  }

  marker(t, text, kind) {
    const button = el("button", { type: "button", class: `marker ${kind}`, title: `${clockText(t)} ${text}`,
      "aria-label": `${clockText(t)}: ${text}` });
    button.style.left = this.pct(t);
    button.addEventListener("click", () => this.seek(t));
    return button;
  }

  vitalsLane() {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 1000 100");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("aria-hidden", "true");
    const vitals = this.info.vitals || {};
    for (const [signal, colour] of Object.entries(VITAL_LINES)) {
      const series = vitals[signal];
      if (!series || !series.length || !this.duration) continue;
      const values = series.map(([, v]) => v);
      const low = Math.min(...values), high = Math.max(...values), span = high - low || 1;
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", series.map(([t, v]) => `${(1000 * t) / this.duration},${95 - (90 * (v - low)) / span}`).join(" "));
      line.setAttribute("fill", "none");
      line.setAttribute("stroke", colour);
      line.setAttribute("stroke-width", "2");
      line.setAttribute("vector-effect", "non-scaling-stroke");
      svg.append(line);
    }
    const track = el("div", { class: "lane-track" }, svg);
    return el("div", { class: "lane" }, el("span", { class: "lane-label", text: "Vitals: HR, SpO₂, SBP" }), track);
  }

  placePlayheads(t) {
    for (const track of $("lanes").querySelectorAll(".lane-track")) {
      let head = track.querySelector(".playhead");
      if (!head) { head = el("span", { class: "playhead", "aria-hidden": "true" }); track.append(head); }
      head.style.left = this.pct(t);
    }
  }

  // -- bookmarks ------------------------------------------------------------------------
  renderBookmarks() {
    const sorted = [...this.annotations].sort((a, b) => a.start_s - b.start_s);
    this.bookmarkTrack?.replaceChildren(...sorted.map((a) => this.marker(a.start_s, a.text, "bookmark")));
    $("bookmarks").replaceChildren(...sorted.map((a) => {
      const when = a.end_s == null ? clockText(a.start_s) : `${clockText(a.start_s)}–${clockText(a.end_s)}`;
      const go = el("button", { type: "button", class: "go", text: `Go to ${when}`, "aria-label": `Go to ${when}: ${a.text}` });
      go.addEventListener("click", () => this.seek(a.start_s));
      return el("li", { class: "bookmark-item" }, go, " ", document.createTextNode(a.text + (a.author ? ` — ${a.author}` : "")));
    }));
  }

  async addBookmark() {
    const text = $("bookmark-text").value.trim();
    if (!text) return;
    const end = $("bookmark-end").value.trim();
    const start = Math.round(this.now * 10) / 10;
    const body = end === "" ? { kind: "bookmark", start_s: start, text } : { kind: "comment", start_s: start, end_s: Number(end), text };
    try {
      const note = await getJson(`/api/sessions/${encodeURIComponent(this.info.id)}/annotations`, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...(this.token ? { Authorization: `Bearer ${this.token}` } : {}) },
        body: JSON.stringify(body),
      });
      this.annotations.push(note);
      this.renderBookmarks();
      $("bookmark-form").reset();
      announce(`Bookmark added at ${clockText(start)}`);
    } catch (err) {
      showProblem(`Could not save the bookmark (${err.code}): ${err.message}`);
    }
  }
}

async function start() {
  const params = new URLSearchParams(location.search);
  const session = params.get("session");
  if (!session) {
    await listSessions();
    return;
  }
  $("main").hidden = false;
  try {
    const info = await getJson(`/api/sessions/${encodeURIComponent(session)}`);
    const player = new Player(info, params.get("token") || "");
    window.grandRounds = { player, HIDDEN, isHidden, get conn() { return player.conn; }, get mirror() { return player.conn.mirror; } };
  } catch (err) {
    showProblem(`Could not open session ${session} (${err.code}): ${err.message}`);
  }
}

start();

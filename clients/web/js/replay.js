// The replay viewer (docs/protocol.md "Reviewing a recorded session"). Without a review
// token it lists the recorded sessions (the admin key is needed) and issues review
// links; with `?session=<id>&token=<review token>` it plays the session back over the
// live protocol: the same mirror, monitor, 3D room and case panels, steered with the
// intents play, pause, seek {seconds} and speed {x}. Timeline lanes are built from the
// session's JSON-lines export; bookmarks and comments use the annotations API.
import { RoomConnection, wsUrl } from "./connection.js";
import { Monitor } from "./monitor.js";
import { RoomScene } from "./scene.js";
import { OrbitView } from "./movement.js";
import { renderCase, renderEvents, renderPeople, timeline, eventText } from "./panels.js";
import { clockText, el } from "./render.js";
import { HIDDEN, isHidden } from "./wire.js";
import { ReplayMedia } from "./replay_media.js";

const $ = (id) => document.getElementById(id);
const PANEL_MS = 200;
const MAX_LANE_ITEMS = 500;
const VITAL_LINES = { hr: "#7cfc8a", spo2: "#5cd6ff", sbp: "#ffffff" };
const SKIPPED_KINDS = ['"kind":"poses"', '"kind":"keyframe"', '"kind":"checksum"'];

function showProblem(text) {
  $("problem").hidden = false; // shown first, so the alert is announced
  $("problem-text").textContent = text;
}

$("problem-dismiss").addEventListener("click", () => { $("problem").hidden = true; });

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

// -- the session list (admin) ------------------------------------------------------------
function listSessions() {
  $("sessions-view").hidden = false;
  $("sessions-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = $("sessions-key").value.trim();
    const auth = { Authorization: `Bearer ${key}` };
    const tbody = $("sessions");
    try {
      const { sessions } = await getJson("/api/sessions", { headers: auth });
      if (!sessions.length) {
        tbody.replaceChildren(el("tr", {}, el("td", { colspan: 5, text: "No sessions recorded yet." })));
        return;
      }
      tbody.replaceChildren(...[...sessions].reverse().map((s) => {
        const open = el("button", { type: "button", text: "Review", "aria-label": `Review ${s.case?.title || s.id}` });
        open.addEventListener("click", async () => {
          try {
            const grant = await getJson(`/api/sessions/${encodeURIComponent(s.id)}/tokens`, {
              method: "POST", headers: { ...auth, "Content-Type": "application/json" },
              body: JSON.stringify({ view: $("sessions-view-as").value }),
            });
            location.href = `/replay.html?${new URLSearchParams({ session: s.id, token: grant.token })}`;
          } catch (err) {
            showProblem(`Could not open ${s.id} (${err.code}): ${err.message}`);
          }
        });
        return el("tr", {},
          el("td", { text: s.case?.title || s.id }), el("td", { text: s.case?.name ?? "" }),
          el("td", { text: s.started_at ?? "" }), el("td", { text: s.ended_at ?? "still running" }), el("td", {}, open));
      }));
    } catch (err) {
      showProblem(`Could not list the sessions (${err.code}): ${err.message}`);
    }
  });
}

// -- lanes from the JSON-lines export ------------------------------------------------------
/** Read the export line by line (never the whole body at once), keeping bounded lanes. */
async function buildTimeline(sessionId, token) {
  const response = await fetch(`/api/sessions/${encodeURIComponent(sessionId)}/export/jsonl?token=${encodeURIComponent(token)}`);
  if (!response.ok || !response.body) throw new Error(`the export answered ${response.status}`);
  const lanes = { actions: [], facilitator: [], decision: [], events: [] };
  const members = new Map();
  const vitals = new Map(); // entity id -> {signal: [[t, v]]}
  const take = (record) => {
    const { t, kind, data } = record;
    if (kind === "join") members.set(data.member, { role: data.role, name: data.name });
    else if (kind === "intent") {
      const who = members.get(data.member) || { role: "?", name: "?" };
      const args = Object.entries(data.args || {}).map(([k, v]) => `${k} ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ");
      const lane = data.do === "decide" ? "decision" : who.role === "facilitator" ? "facilitator" : "actions";
      lanes[lane].push({ t, text: `${who.name}: ${data.do}${args ? ` (${args})` : ""}` });
    } else if (kind === "op") {
      const op = data.op;
      if (op[0] === "set" && op[2] in VITAL_LINES && typeof op[3] === "number") {
        const series = vitals.get(op[1]) || {};
        (series[op[2]] ||= []).push([t, op[3]]);
        vitals.set(op[1], series);
      } else if (op[0] === "log" && (op[1] === "events" || op[1] === "case") && op[2] && typeof op[2] === "object") {
        lanes.events.push({ t, text: eventText(op[2]) });
      }
    }
  };
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let rest = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (value) rest += value;
    const lines = rest.split("\n");
    rest = done ? "" : lines.pop();
    for (const line of lines) {
      if (!line || SKIPPED_KINDS.some((k) => line.includes(k))) continue;
      take(JSON.parse(line));
    }
    if (done) break;
  }
  let best = {};
  for (const series of vitals.values()) if ((series.hr?.length ?? 0) > (best.hr?.length ?? 0)) best = series;
  const labels = { actions: "Team actions", facilitator: "Facilitator", decision: "Decisions", events: "Case events" };
  return {
    members,
    lanes: Object.entries(lanes).map(([name, items]) => ({ name, label: labels[name], items: items.slice(-MAX_LANE_ITEMS) })),
    vitals: best,
  };
}

// -- the player ------------------------------------------------------------------------------
class Player {
  constructor(sessionId, token) {
    this.sessionId = sessionId;
    this.token = token;
    this.start = 0;
    this.end = 0;
    this.seconds = 0;
    this.playing = false;
    this.dragging = false;
    this.dirty = true;
    this.moved = new Set();
    this.lastPanels = 0;
    this.annotations = [];
    this.timeline = { lanes: [], vitals: {}, members: new Map() };
    this.conn = new RoomConnection({ url: wsUrl(), token });
    this.scene = new RoomScene($("scene"));
    this.monitor = new Monitor($("monitor"), $("alarm-text"), () => {});
    if (this.scene.ok) new OrbitView(this.scene);
    $("debrief").href = this.api("/export/debrief");
    this.media = new ReplayMedia(
      { section: $("replay-media"), status: $("replay-media-status"), audio: $("replay-audio"), stereo: $("stereo"), mode: $("stereo-mode") },
      (file) => this.api(`/media/${encodeURIComponent(file)}`));
    this.manifest = null;

    this.conn.addEventListener("status", (e) => { $("conn-status").textContent = e.detail; });
    this.conn.addEventListener("welcome", (e) => this.onWelcome(e.detail));
    this.conn.addEventListener("playback", (e) => this.onPlayback(e.detail));
    this.conn.addEventListener("state", (e) => this.onState(e.detail));
    this.conn.addEventListener("error-msg", (e) => showProblem(`The server refused a message (${e.detail.code}): ${e.detail.msg}`));
    this.conn.addEventListener("bye", (e) => showProblem(`Disconnected by the server (${e.detail.code}): ${e.detail.msg}`));
    $("play").addEventListener("click", () => this.control(this.playing ? "pause" : "play"));
    $("speed").addEventListener("change", () => this.control("speed", { x: Number($("speed").value) }));
    const seek = $("seek");
    seek.addEventListener("input", () => { this.dragging = true; this.showClock(Number(seek.value)); });
    seek.addEventListener("change", () => { this.dragging = false; this.seek(Number(seek.value)); });
    $("bookmark-form").addEventListener("submit", (e) => { e.preventDefault(); this.addBookmark(); });
    const loop = (now) => this.frame(now);
    if (this.scene.ok) this.scene.renderer.setAnimationLoop(loop);
    else { const raf = (now) => { loop(now); requestAnimationFrame(raf); }; requestAnimationFrame(raf); }
    this.conn.open();
    this.loadAnnotations();
    this.loadMedia();
  }

  async loadMedia() {
    try {
      this.manifest = await getJson(this.api(""));
      if (this.conn.mirror.tick === null) { // names come from the avatars in the first state
        await new Promise((resolve) => this.conn.addEventListener("state", resolve, { once: true }));
      }
      this.media.load(this.manifest.media_tracks || [], (member) => this.nameOf(member),
        !!this.manifest.ended_at);
    } catch (err) {
      $("replay-media").hidden = false;
      $("replay-media-status").textContent = `Could not load the recorded voice and video (${err.code}): ${err.message}`;
    }
  }

  /** A member's name: from the session's join records, else the avatars seen so far. */
  nameOf(member) {
    for (const [id, who] of this.timeline.members) if (String(id) === String(member) && who.name) return String(who.name);
    for (const a of this.conn.mirror.find("avatar").values()) {
      if (String(a.member) === String(member)) return String(a.name);
    }
    return `member ${member}`;
  }

  api(suffix) {
    return `/api/sessions/${encodeURIComponent(this.sessionId)}${suffix}?token=${encodeURIComponent(this.token)}`;
  }

  onWelcome(welcome) {
    const hz = welcome.tick_hz || 30;
    this.start = welcome.review.first_tick / hz;
    this.end = welcome.review.last_tick / hz;
    const title = welcome.title || welcome.room;
    $("replay-title").textContent = `Replay: ${title}`;
    document.title = `Replay: ${title} — Grand Rounds`;
    $("view-as").textContent = `Seen as the ${welcome.view}`;
    Object.assign($("seek"), { min: String(this.start), max: String(this.end) });
    buildTimeline(this.sessionId, this.token)
      .then((timeline) => {
        this.timeline = timeline;
        this.buildLanes();
        this.media.relabel((member) => this.nameOf(member));
      })
      .catch((err) => showProblem(`Could not build the timeline: ${err.message}`));
    this.buildLanes();
  }

  onPlayback(p) {
    this.seconds = p.seconds;
    this.playing = !!p.playing && !p.end;
    $("play").textContent = this.playing ? "Pause" : "Play";
    $("play").setAttribute("aria-pressed", String(this.playing));
    $("speed").value = String(p.speed);
    this.media.onPlayback(p);
    this.dirty = true;
  }

  async control(action, args = {}) {
    const reply = await this.conn.intent(action, args);
    if (!reply.ok) showProblem(`${action} refused (${reply.code}): ${reply.msg}`);
    return reply.ok;
  }

  async seek(t) {
    const target = Math.max(this.start, Math.min(this.end, t));
    this.media.seekTo(target);
    if (await this.control("seek", { seconds: target })) announce(`Moved to ${clockText(target - this.start)}`);
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
        $("seek").value = String(this.seconds);
        this.showClock(this.seconds);
      }
      this.placePlayheads(this.seconds);
    }
    if (this.scene.ok) {
      this.scene.sync(this.conn.mirror, this.moved, now, null);
      this.moved.clear();
      this.scene.render(now);
    }
    this.monitor.draw(now);
    this.media.tick(now);
  }

  showClock(t) {
    const text = `${clockText(t - this.start)} / ${clockText(this.end - this.start)}`;
    $("clock").textContent = text;
    $("seek").setAttribute("aria-valuetext", text.replace(" / ", " of "));
  }

  // -- timeline lanes -------------------------------------------------------------------
  pct(t) {
    const span = this.end - this.start;
    return span > 0 ? `${(100 * (Math.max(this.start, Math.min(this.end, t)) - this.start)) / span}%` : "0%";
  }

  buildLanes() {
    const rows = this.timeline.lanes.map((lane) =>
      this.lane(lane.label, lane.items.map((item) => this.marker(item.t, item.text, lane.name))));
    rows.push(this.vitalsLane());
    this.bookmarkTrack = el("div", { class: "lane-track" });
    rows.push(el("div", { class: "lane" }, el("span", { class: "lane-label", text: "Bookmarks" }), this.bookmarkTrack));
    $("lanes").replaceChildren(...rows);
    this.renderBookmarks();
  }

  lane(title, markers) {
    return el("div", { class: "lane" }, el("span", { class: "lane-label", text: title }),
      el("div", { class: "lane-track" }, ...markers));
  }

  marker(t, text, kind) {
    const when = clockText(t - this.start);
    const button = el("button", { type: "button", class: `marker ${kind}`, title: `${when} ${text}`, "aria-label": `${when}: ${text}` });
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
    const span = this.end - this.start;
    for (const [signal, colour] of Object.entries(VITAL_LINES)) {
      const series = this.timeline.vitals[signal];
      if (!series || series.length < 2 || span <= 0) continue;
      const values = series.map(([, v]) => v);
      const low = Math.min(...values), high = Math.max(...values), range = high - low || 1;
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("points", series.map(([t, v]) => `${(1000 * (t - this.start)) / span},${95 - (90 * (v - low)) / range}`).join(" "));
      line.setAttribute("fill", "none");
      line.setAttribute("stroke", colour);
      line.setAttribute("stroke-width", "2");
      line.setAttribute("vector-effect", "non-scaling-stroke");
      svg.append(line);
    }
    return el("div", { class: "lane" }, el("span", { class: "lane-label", text: "Vitals: HR, SpO₂, SBP" }), el("div", { class: "lane-track" }, svg));
  }

  placePlayheads(t) {
    for (const track of $("lanes").querySelectorAll(".lane-track")) {
      let head = track.querySelector(".playhead");
      if (!head) { head = el("span", { class: "playhead", "aria-hidden": "true" }); track.append(head); }
      head.style.left = this.pct(t);
    }
  }

  // -- bookmarks and comments ---------------------------------------------------------------
  async loadAnnotations() {
    try {
      this.annotations = (await getJson(this.api("/annotations"))).annotations;
      this.renderBookmarks();
    } catch (err) {
      showProblem(`Could not load the bookmarks (${err.code}): ${err.message}`);
    }
  }

  renderBookmarks() {
    const sorted = [...this.annotations].sort((a, b) => a.start_s - b.start_s);
    this.bookmarkTrack?.replaceChildren(...sorted.map((a) => this.marker(a.start_s, a.text, "bookmark")));
    $("bookmarks").replaceChildren(...sorted.map((a) => {
      const when = a.end_s == null ? clockText(a.start_s - this.start) : `${clockText(a.start_s - this.start)}–${clockText(a.end_s - this.start)}`;
      const go = el("button", { type: "button", class: "go", text: `Go to ${when}`, "aria-label": `Go to ${when}: ${a.text}` });
      go.addEventListener("click", () => this.seek(a.start_s));
      return el("li", { class: "bookmark-item" }, go, " ", document.createTextNode(a.text + (a.author ? ` — ${a.author}` : "")));
    }));
  }

  async addBookmark() {
    const text = $("bookmark-text").value.trim();
    if (!text) return;
    const until = $("bookmark-end").value.trim();
    const at = Math.round(this.seconds * 10) / 10;
    const body = until === "" ? { start_s: at, text } : { start_s: at, end_s: this.start + Number(until), text };
    try {
      const note = await getJson(this.api("/annotations"), {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      this.annotations.push(note);
      this.renderBookmarks();
      $("bookmark-form").reset();
      announce(`Bookmark added at ${clockText(at - this.start)}`);
    } catch (err) {
      showProblem(`Could not save the bookmark (${err.code}): ${err.message}`);
    }
  }
}

function start() {
  const params = new URLSearchParams(location.search);
  const session = params.get("session");
  const token = params.get("token");
  if (!session || !token) {
    listSessions();
    return;
  }
  $("main").hidden = false;
  const player = new Player(session, token);
  window.grandRounds = { player, HIDDEN, isHidden, get conn() { return player.conn; }, get mirror() { return player.conn.mirror; }, get media() { return player.media; } };
}

start();

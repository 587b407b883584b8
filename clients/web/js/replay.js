// The replay viewer (docs/protocol.md "Reviewing a recorded session"). Without a review
// token it lists the recorded sessions (the admin key is needed) and issues review
// links; with `?session=<id>&token=<review token>` it plays the session back over the
// live protocol: the same mirror, monitor, 3D room and case panels, steered with the
// intents play, pause, seek {seconds} and speed {x}. The lanes, the transcript and the
// vitals come from the session's timeline (`/api/sessions/<id>/timeline`, scoped to the
// token's view); bookmarks, comments and rater forms use the annotations API.
import { RoomConnection, wsUrl } from "./connection.js";
import { Monitor } from "./monitor.js";
import { RoomScene } from "./scene.js";
import { OrbitView } from "./movement.js";
import { renderCase, renderEvents, renderPeople, timeline, eventText } from "./panels.js";
import { clockText, el } from "./render.js";
import { HIDDEN, isHidden } from "./wire.js";
import { ReplayMedia } from "./replay_media.js";
import { Lanes } from "./replay_lanes.js";
import { RaterForm, Transcript, annotationText } from "./replay_panels.js";

const $ = (id) => document.getElementById(id);
const PANEL_MS = 200;
const RATING_WINDOW_S = 60;

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
    /** Where a seek the server has not answered yet is going: the slider stays there
     * instead of jumping back to the last frame's position meanwhile. */
    this.seekingTo = null;
    this.dirty = true;
    this.moved = new Set();
    this.lastPanels = 0;
    this.annotations = [];
    this.timeline = null;
    this.conn = new RoomConnection({ url: wsUrl(), token });
    this.scene = new RoomScene($("scene"));
    this.monitor = new Monitor($("monitor"), $("alarm-text"), () => {});
    if (this.scene.ok) new OrbitView(this.scene);
    $("debrief").href = this.api("/export/debrief");
    this.media = new ReplayMedia(
      { section: $("replay-media"), status: $("replay-media-status"), audio: $("replay-audio"), stereo: $("stereo"), mode: $("stereo-mode") },
      (file) => this.api(`/media/${encodeURIComponent(file)}`));
    this.manifest = null;
    this.lanes = new Lanes($("lanes"), (t) => this.seek(t));
    this.transcript = new Transcript($("transcript"), $("transcript-now"), (t) => this.seek(t));
    this.rater = new RaterForm($("rating-form"), (body) => this.saveAnnotation(body, "Rating saved"));

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
    $("rating-here").addEventListener("click", () => this.rater.setRange(Math.max(this.start, this.seconds - RATING_WINDOW_S), this.seconds));
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

  /** A member's name: from the session's timeline, else the avatars seen so far. */
  nameOf(member) {
    for (const who of this.timeline?.members || []) if (String(who.id) === String(member) && who.name) return String(who.name);
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
    this.hz = hz;
    this.start = welcome.review.first_tick / hz;
    this.end = welcome.review.last_tick / hz;
    const title = welcome.title || welcome.room;
    $("replay-title").textContent = `Replay: ${title}`;
    document.title = `Replay: ${title} — Grand Rounds`;
    $("view-as").textContent = `Seen as the ${welcome.view}`;
    $("debrief").hidden = welcome.view !== "facilitator"; // the debrief is the facilitator's
    Object.assign($("seek"), { min: String(this.start), max: String(this.end) });
    this.lanes.setRange(this.start, this.end);
    this.rater.setRange(this.start, Math.min(this.end, this.start + RATING_WINDOW_S));
    if (welcome.review.damaged) this.showDamage(welcome.review.damaged);
    getJson(this.api("/timeline"))
      .then((tl) => {
        this.timeline = tl;
        this.lanes.setTimeline(tl);
        this.transcript.setLines(tl.transcript, this.start);
        this.transcript.update(this.seconds, false);
        this.rater.setScales(tl.rating_scales);
        this.media.relabel((member) => this.nameOf(member));
        if (tl.damage) showProblem(`The recording could not be read to its end: ${tl.damage}`);
      })
      .catch((err) => showProblem(`Could not build the timeline (${err.code}): ${err.message}`));
  }

  showDamage(damaged) {
    showProblem(`The recording cannot be read past ${clockText(damaged.seconds - this.start)} (${damaged.code}): ${damaged.msg}`);
  }

  onPlayback(p) {
    this.seconds = p.seconds;
    this.playing = !!p.playing && !p.end;
    $("play").textContent = this.playing ? "Pause" : "Play";
    $("play").setAttribute("aria-pressed", String(this.playing));
    $("speed").value = String(p.speed);
    this.media.onPlayback(p);
    if (p.damaged && !this.damageShown) { this.damageShown = true; this.showDamage(p.damaged); }
    this.dirty = true;
  }

  async control(action, args = {}) {
    const reply = await this.conn.intent(action, args);
    if (!reply.ok) showProblem(`${action} refused (${reply.code}): ${reply.msg}`);
    return reply.ok;
  }

  /** Move the play head to session second `t` (a marker gives the tick its action took
   * effect in: the state shown is the one after it). */
  async seek(t) {
    const target = Math.max(this.start, Math.min(this.end, t));
    this.media.seekTo(target);
    this.seekingTo = target;
    this.dirty = true;
    let ok = false;
    try {
      ok = await this.control("seek", { seconds: target });
    } finally {
      if (this.seekingTo === target) this.seekingTo = null; // the frame there came first
      this.dirty = true;
    }
    if (ok) announce(`Moved to ${clockText(target - this.start)}`);
  }

  onState(changes) {
    const mirror = this.conn.mirror;
    if (mirror.tick !== null && this.hz) this.media.onFrame(mirror.tick / this.hz);
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
      const at = this.seekingTo ?? (mirror.tick !== null && this.hz ? mirror.tick / this.hz : this.seconds);
      if (!this.dragging) {
        $("seek").value = String(at);
        this.showClock(at);
      }
      this.lanes.place(at);
      this.transcript.update(at, this.playing);
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

  // -- bookmarks, comments and rater forms ---------------------------------------------------
  async loadAnnotations() {
    try {
      this.annotations = (await getJson(this.api("/annotations"))).annotations;
      this.renderAnnotations();
    } catch (err) {
      showProblem(`Could not load the bookmarks (${err.code}): ${err.message}`);
    }
  }

  renderAnnotations() {
    const sorted = [...this.annotations].sort((a, b) => a.start_s - b.start_s);
    this.lanes.setAnnotations(sorted);
    $("bookmarks").replaceChildren(...sorted.map((a) => {
      const when = a.end_s == null ? clockText(a.start_s - this.start) : `${clockText(a.start_s - this.start)}–${clockText(a.end_s - this.start)}`;
      const text = annotationText(a);
      const go = el("button", { type: "button", class: "go", text: `Go to ${when}`, "aria-label": `Go to ${when}: ${text}` });
      go.addEventListener("click", () => this.seek(a.start_s));
      return el("li", { class: `bookmark-item ${a.kind}` }, go, " ", document.createTextNode(text + (a.author ? ` — ${a.author}` : "")));
    }));
  }

  async saveAnnotation(body, said) {
    try {
      const note = await getJson(this.api("/annotations"), {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
      this.annotations.push(note);
      this.renderAnnotations();
      announce(`${said} at ${clockText(note.start_s - this.start)}`);
      return true;
    } catch (err) {
      showProblem(`Could not save (${err.code}): ${err.message}`);
      return false;
    }
  }

  async addBookmark() {
    const text = $("bookmark-text").value.trim();
    if (!text) return;
    const until = $("bookmark-end").value.trim();
    const at = Math.round(this.seconds * 10) / 10;
    const body = until === "" ? { start_s: at, text } : { start_s: at, end_s: this.start + Number(until), text };
    if (await this.saveAnnotation(body, "Bookmark added")) $("bookmark-form").reset();
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

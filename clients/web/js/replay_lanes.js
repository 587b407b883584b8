// Timeline lanes of the replay viewer: team actions, the facilitator's, decisions, what
// was said, case events, vitals and bookmarks, each a row of markers on the session's
// time axis. Markers never hide each other: markers closer than MIN_GAP_PX are one
// cluster button ("3"), which expands into a list of its items; every marker and every
// listed item is a button, reachable by pointer and keyboard, and seeks to its moment
// (for an action, the tick in which it took effect). The vitals lane draws heart rate,
// systolic pressure and SpO2 on fixed clinical scales and shows the values at any
// moment on hover, or with the arrow keys when focused.
import { clockText, el } from "./render.js";

const MIN_GAP_PX = 18;
const SVG_NS = "http://www.w3.org/2000/svg";
const VITAL_LINES = { hr: "#7cfc8a", sbp: "#ffffff", spo2: "#5cd6ff" };
const VITALS_SHOWN = ["hr", "sbp", "dbp", "map", "spo2", "rr", "temp", "etco2"];
const KEY_STEP_S = 5;

/** The value a series (sorted [[t, v]]) held at `t`: the last sample at or before it. */
export function valueAt(series, t) {
  if (!series || !series.length || series[0][0] > t) return null;
  let lo = 0, hi = series.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (series[mid][0] <= t) lo = mid; else hi = mid - 1;
  }
  return series[lo][1];
}

/** Groups of items (sorted by t) whose positions on a track `width` px wide are close. */
export function cluster(items, start, end, width, minGap = MIN_GAP_PX) {
  const span = end - start;
  const x = (t) => (span > 0 ? ((Math.max(start, Math.min(end, t)) - start) / span) * width : 0);
  const groups = [];
  for (const item of [...items].sort((a, b) => a.t - b.t)) {
    const last = groups[groups.length - 1];
    if (last && x(item.t) - last.x < minGap) last.items.push(item);
    else groups.push({ x: x(item.t), items: [item] });
  }
  return groups;
}

export class Lanes {
  /** root: the lanes container; onSeek(t) moves the play head. */
  constructor(root, onSeek) {
    this.root = root;
    this.onSeek = onSeek;
    this.start = 0;
    this.end = 0;
    this.timeline = null;
    this.annotations = [];
    this.open = new Map(); // lane name -> index of its expanded cluster
    this.head = 0;
    this.resized = null;
    window.addEventListener("resize", () => {
      clearTimeout(this.resized);
      this.resized = setTimeout(() => this.render(), 150);
    });
  }

  setRange(start, end) { this.start = start; this.end = end; this.render(); }
  setTimeline(timeline) { this.timeline = timeline; this.render(); }
  setAnnotations(annotations) { this.annotations = annotations; this.render(); }

  pct(t) {
    const span = this.end - this.start;
    return span > 0 ? (100 * (Math.max(this.start, Math.min(this.end, t)) - this.start)) / span : 0;
  }

  when(t) { return clockText(t - this.start); }

  /** The lanes and their items: {name, label, items: [{t, text, kind}]}. */
  lanes() {
    const tl = this.timeline || { actions: [], transcript: [], events: [] };
    const action = (a) => ({
      t: a.t, kind: a.ok === false ? "refused" : a.action,
      text: `${a.actor}: ${a.text}${a.ok === false ? ` (refused: ${a.code})` : ""}`,
    });
    const byFacilitator = (a) => a.role === "facilitator";
    return [
      { name: "team", label: "Team actions", items: tl.actions.filter((a) => !byFacilitator(a) && a.action !== "decide").map(action) },
      { name: "facilitator", label: "Facilitator", items: tl.actions.filter((a) => byFacilitator(a) && a.action !== "decide").map(action) },
      { name: "decision", label: "Decisions", items: tl.actions.filter((a) => a.action === "decide").map(action) },
      { name: "said", label: "Said", items: tl.transcript.map((l) => ({ t: l.t, kind: l.kind, text: `${l.who} (${l.kind}): ${l.text}` })) },
      { name: "events", label: "Case events", items: tl.events.map((e) => ({ t: e.t, kind: e.kind, text: e.text })) },
      { name: "bookmark", label: "Bookmarks", items: this.annotations.map((a) => ({ t: a.start_s, kind: a.kind, text: a.text || a.kind })) },
    ];
  }

  render() {
    const width = Math.max(100, (this.root.clientWidth || 800) - 160);
    const rows = [];
    for (const lane of this.lanes()) {
      if (lane.name !== "bookmark" && !lane.items.length) continue;
      rows.push(this.lane(lane, width));
    }
    rows.splice(Math.min(rows.length, 5), 0, this.vitalsLane());
    this.root.replaceChildren(...rows);
    this.place(this.head);
  }

  lane(lane, width) {
    const groups = cluster(lane.items, this.start, this.end, width);
    const track = el("div", { class: "lane-track" });
    const expanded = el("div", { class: "lane-expanded" });
    groups.forEach((group, index) => {
      if (group.items.length === 1) {
        track.append(this.marker(group.items[0], lane.name));
        return;
      }
      const first = group.items[0], last = group.items[group.items.length - 1];
      const listId = `cluster-${lane.name}-${index}`;
      const button = el("button", {
        type: "button", class: `marker cluster ${lane.name}`, text: String(group.items.length),
        "aria-expanded": String(this.open.get(lane.name) === index), "aria-controls": listId,
        "aria-label": `${group.items.length} ${lane.label.toLowerCase()} from ${this.when(first.t)} to ${this.when(last.t)}: show them`,
        title: group.items.map((item) => `${this.when(item.t)} ${item.text}`).join("\n"),
      });
      button.style.left = `${this.pct(first.t)}%`;
      button.addEventListener("click", () => {
        this.open.set(lane.name, this.open.get(lane.name) === index ? -1 : index);
        this.render();
        document.getElementById(this.open.get(lane.name) === index ? listId : "")?.querySelector("button")?.focus();
      });
      track.append(button);
      if (this.open.get(lane.name) === index) {
        expanded.append(el("ul", { class: "cluster-list", id: listId, "aria-label": `${lane.label} near ${this.when(first.t)}` },
          ...group.items.map((item) => el("li", {}, this.listed(item, lane.name)))));
      }
    });
    return el("div", { class: "lane", "data-lane": lane.name },
      el("span", { class: "lane-label", text: lane.label }), track, expanded);
  }

  marker(item, kind) {
    const when = this.when(item.t);
    const button = el("button", {
      type: "button", class: `marker ${kind}`, "data-t": String(item.t),
      title: `${when} ${item.text}`, "aria-label": `${when}: ${item.text}`,
    });
    button.style.left = `${this.pct(item.t)}%`;
    button.addEventListener("click", () => this.onSeek(item.t));
    return button;
  }

  listed(item, kind) {
    const button = el("button", { type: "button", class: `go ${kind}`, "data-t": String(item.t), text: `${this.when(item.t)} ${item.text}` });
    button.addEventListener("click", () => this.onSeek(item.t));
    return button;
  }

  // -- vitals ------------------------------------------------------------------------
  vitalsLane() {
    const tl = this.timeline;
    const track = el("div", { class: "lane-track vitals-track", tabindex: "0", role: "img" });
    const tip = el("div", { class: "vitals-tip", role: "status", hidden: true });
    const cursor = el("span", { class: "vitals-cursor", "aria-hidden": "true", hidden: true });
    const labels = [];
    if (tl) {
      const svg = document.createElementNS(SVG_NS, "svg");
      svg.setAttribute("viewBox", "0 0 1000 100");
      svg.setAttribute("preserveAspectRatio", "none");
      svg.setAttribute("aria-hidden", "true");
      const span = this.end - this.start;
      for (const [signal, colour] of Object.entries(VITAL_LINES)) {
        const series = tl.vitals[signal], scale = tl.scales[signal];
        if (!series || !series.length || !scale || span <= 0) continue;
        labels.push(`${scale.label} ${scale.low}–${scale.high} ${scale.unit}`);
        const y = (v) => 95 - (90 * (Math.max(scale.low, Math.min(scale.high, v)) - scale.low)) / (scale.high - scale.low);
        const points = [];
        series.forEach(([t, v], i) => {
          points.push(`${(1000 * (t - this.start)) / span},${y(v)}`);
          const next = series[i + 1] ? series[i + 1][0] : this.end; // held until it changes
          points.push(`${(1000 * (next - this.start)) / span},${y(v)}`);
        });
        const line = document.createElementNS(SVG_NS, "polyline");
        line.setAttribute("points", points.join(" "));
        line.setAttribute("fill", "none");
        line.setAttribute("stroke", colour);
        line.setAttribute("stroke-width", "2");
        line.setAttribute("vector-effect", "non-scaling-stroke");
        svg.append(line);
      }
      track.append(svg);
    }
    track.setAttribute("aria-label", `Vitals over the session (${labels.join("; ") || "none recorded"}). Hover, or use the arrow keys, to read the values at a moment.`);
    let keyAt = null;
    const show = (t) => {
      tip.hidden = false; cursor.hidden = false;
      tip.textContent = this.vitalsText(t);
      const left = this.pct(t);
      cursor.style.left = `${left}%`;
      tip.style.left = `${Math.min(left, 70)}%`;
    };
    track.addEventListener("pointermove", (e) => {
      const box = track.getBoundingClientRect();
      const frac = Math.max(0, Math.min(1, (e.clientX - box.left) / box.width));
      show(this.start + frac * (this.end - this.start));
    });
    track.addEventListener("pointerleave", () => { tip.hidden = true; cursor.hidden = true; });
    track.addEventListener("keydown", (e) => {
      if (e.key !== "ArrowLeft" && e.key !== "ArrowRight") return;
      e.preventDefault();
      keyAt = Math.max(this.start, Math.min(this.end, (keyAt ?? this.head) + (e.key === "ArrowRight" ? KEY_STEP_S : -KEY_STEP_S)));
      show(keyAt);
    });
    track.addEventListener("blur", () => { keyAt = null; tip.hidden = true; cursor.hidden = true; });
    track.append(cursor, tip);
    return el("div", { class: "lane", "data-lane": "vitals" },
      el("span", { class: "lane-label", text: "Vitals: HR, SBP, SpO₂" }), track);
  }

  /** "At 1:02: HR 112, BP 88/52, SpO₂ 93%..." from the recorded monitor values. */
  vitalsText(t) {
    const tl = this.timeline;
    if (!tl) return "";
    const v = Object.fromEntries(VITALS_SHOWN.map((s) => [s, valueAt(tl.vitals[s], t)]));
    const parts = [];
    if (v.hr !== null) parts.push(`HR ${v.hr}`);
    if (v.sbp !== null) parts.push(v.dbp !== null ? `BP ${v.sbp}/${v.dbp}` : `SBP ${v.sbp}`);
    if (v.map !== null) parts.push(`MAP ${v.map}`);
    if (v.spo2 !== null) parts.push(`SpO₂ ${v.spo2}%`);
    if (v.rr !== null) parts.push(`RR ${v.rr}`);
    if (v.temp !== null) parts.push(`T ${v.temp}°C`);
    if (v.etco2 !== null) parts.push(`EtCO₂ ${v.etco2}`);
    return `At ${this.when(t)}: ${parts.join(", ") || "no vitals recorded yet"}`;
  }

  place(t) {
    this.head = t;
    for (const track of this.root.querySelectorAll(".lane-track")) {
      let head = track.querySelector(".playhead");
      if (!head) { head = el("span", { class: "playhead", "aria-hidden": "true" }); track.append(head); }
      head.style.left = `${this.pct(t)}%`;
    }
  }
}

// The read-only panels every role sees: case (case, patient, results, decisions),
// people (avatars with connection and speaking state), events with captions, chat,
// and an inspector listing every entity of the view by kind.
import { clockText, el, fieldList, fillList, label, valueNode } from "./render.js";
import { eventTag, eventText, names, resultValue } from "./names.js";
import { isHidden } from "./wire.js";


export function renderCase(root, mirror) {
  const parts = [];
  const kase = mirror.first("case");
  if (kase) {
    const f = kase.fields;
    parts.push(el("h3", { text: isHidden(f.title) ? "Case" : String(f.title ?? "Case") }));
    parts.push(el("p", { class: "phase" }, el("strong", { text: "Phase: " }),
      valueNode(f.phase_title ?? f.phase), document.createTextNode(`  ·  case time ${clockText(f.time_s)}`),
      f.time_scale && f.time_scale !== 1 ? document.createTextNode(`  ·  ×${f.time_scale}`) : null));
    if (f.narrative && !isHidden(f.narrative)) parts.push(el("p", { class: "narrative", text: String(f.narrative) }));
  }
  const patient = mirror.first("patient");
  if (patient) {
    parts.push(el("h3", { text: "Patient" }), patientList(patient.fields));
  }
  const results = [...mirror.find("result").values()];
  if (results.length) {
    parts.push(el("h3", { text: "Results" }));
    parts.push(el("ul", { class: "results" }, ...results.map((r) =>
      el("li", {}, el("strong", { text: `${r.name ?? names.of(r.test)}: ` }), valueNode(r.text),
        r.values && !isHidden(r.values) && Object.keys(r.values).length ? resultList(r.values) : null))));
  }
  const team = mirror.first("team");
  if (team && Array.isArray(team.fields.pending) && team.fields.pending.length) {
    parts.push(el("h3", { text: "Pending orders" }));
    parts.push(el("ul", {}, ...team.fields.pending.map((o) =>
      el("li", { text: `${o.name ?? names.of(o.test)} (ordered at ${clockText(o.ordered_s)})` }))));
  }
  const decisions = [...mirror.find("decision").values()];
  if (decisions.length) {
    parts.push(el("h3", { text: "Decisions" }));
    parts.push(el("ul", {}, ...decisions.map((d) => el("li", {}, document.createTextNode(`${d.prompt} — `),
      d.chosen ? el("strong", { text: String(d.options?.[d.chosen] ?? d.chosen) }) : el("span", { class: "muted", text: "open" })))));
  }
  if (!kase && !patient) parts.push(el("p", { class: "muted", text: "Waiting for the case…" }));
  root.replaceChildren(...parts.filter((p) => p !== undefined && p !== null));
}

/** The patient's fields in words: the case's names for devices and exam regions. */
function patientList(fields) {
  const shown = { ...fields };
  if (typeof shown.oxygen === "string") shown.oxygen = names.of(shown.oxygen);
  if (typeof shown.status === "string") shown.status = names.of(shown.status);
  const findings = shown.findings;
  delete shown.findings;
  const dl = fieldList(shown);
  if (findings && typeof findings === "object" && !isHidden(findings) && Object.keys(findings).length) {
    dl.append(el("dt", { text: "Findings" }), el("dd", {}, el("dl", { class: "fields" },
      ...Object.entries(findings).flatMap(([region, text]) => [el("dt", { text: names.of(region) }), el("dd", {}, valueNode(text))]))));
  }
  return dl;
}

/** Result values with their names and units ("Lactate 4.8 mmol/L"). */
function resultList(values) {
  return el("dl", { class: "fields" }, ...Object.entries(values).flatMap(([key, value]) => {
    const [name, shown] = resultValue(key, value);
    return [el("dt", { text: name }), el("dd", { text: shown })];
  }));
}

/** Avatars with their state, updated in place (so focus on a control survives updates).
 * `speakingMembers` adds who the media worker hears; `controls(id, fields)`, if given,
 * makes the controls shown beside each person once, when the person first appears. */
export function renderPeople(list, mirror, selfMember, speakingMembers = new Set(), controls = null) {
  const avatars = new Map(mirror.find("avatar"));
  for (const item of [...list.children]) {
    if (!avatars.has(Number(item.dataset.avatar))) item.remove();
  }
  if (!avatars.size) {
    list.replaceChildren(el("li", { class: "muted", text: "Nobody with an avatar yet." }));
    return;
  }
  for (const [id, a] of avatars) {
    let item = list.querySelector(`li[data-avatar="${id}"]`);
    if (!item) {
      item = el("li", { class: "person", "data-avatar": id },
        el("span", { class: "person-icon", "aria-hidden": "true" }), el("span", { class: "person-name" }),
        el("span", { class: "person-role" }), el("span", { class: "person-state" }),
        controls && a.member !== selfMember ? el("span", { class: "person-controls" }, ...controls(id, a)) : null);
      list.append(item);
    }
    const speaking = a.speaking === true || speakingMembers.has(String(a.member)) || speakingMembers.has(a.member);
    const state = a.connected === false ? "disconnected" : speaking ? "speaking" : "connected";
    const asks = a.requests_present === true && a.presenter !== true;
    for (const button of item.querySelectorAll("[data-request]")) button.hidden = !asks;
    item.className = `person ${state}`;
    item.querySelector(".person-icon").textContent = state === "speaking" ? "🔊" : state === "disconnected" ? "⨯" : "●";
    item.querySelector(".person-name").textContent = String(a.name) + (a.member === selfMember ? " (you)" : "");
    item.querySelector(".person-role").textContent = label(String(a.role));
    item.querySelector(".person-state").textContent = a.presenter === true ? `${state}, presenting`
      : asks ? `${state}, asks to present` : state;
    item.querySelector("[data-presenter]")?.setAttribute("aria-pressed", String(a.presenter === true));
  }
}

/** All case-like log channels your view holds, merged by time (the team's notes too;
 * the director's log of overrides, fired events, decisions and scores for a facilitator). */
export function timeline(mirror) {
  const out = [];
  for (const channel of ["events", "case", "hints", "script", "notes", "director"]) {
    for (const entry of mirror.logs[channel] || []) out.push({ channel, entry });
  }
  return out.sort((a, b) => (a.entry.t ?? 0) - (b.entry.t ?? 0)).slice(-50);
}

/** The case feed, following the newest item unless the reader scrolled up to read. */
export function renderEvents(list, items) {
  const following = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
  fillList(list, items, ({ channel, entry }) => {
    const frag = document.createDocumentFragment();
    frag.append(el("span", { class: "time", text: clockText(entry.t) }), " ",
      el("span", { class: `tag tag-${entry.kind ?? channel}`, text: entry.override ? "Override" : eventTag(entry, channel) }), " ",
      document.createTextNode(eventText(entry)));
    return frag;
  });
  if (following) list.scrollTop = list.scrollHeight;
}

export function renderChat(list, entries) {
  fillList(list, entries, (entry) => {
    const frag = document.createDocumentFragment();
    frag.append(el("strong", { text: `${entry.from ?? entry.by ?? "?"}: ` }), document.createTextNode(String(entry.text ?? "")));
    return frag;
  });
}

export function renderInspector(root, mirror) {
  const byKind = new Map();
  for (const [id, [kind, fields]] of mirror.entities) {
    if (!byKind.has(kind)) byKind.set(kind, []);
    byKind.get(kind).push([id, fields]);
  }
  const sections = [...byKind.entries()].sort().map(([kind, items]) =>
    el("details", {}, el("summary", { text: `${kind} (${items.length})` }),
      ...items.slice(0, 40).map(([id, fields]) => el("div", { class: "entity" },
        el("p", { class: "entity-id", text: `#${id}` }), fieldList(fields)))));
  root.replaceChildren(...sections);
}
export { eventText } from "./names.js";

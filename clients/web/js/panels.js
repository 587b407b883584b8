// The read-only panels every role sees: case (case, patient, results, decisions),
// people (avatars with connection and speaking state), events with captions, chat,
// and an inspector listing every entity of the view by kind.
import { clockText, el, fieldList, fillList, label, valueNode } from "./render.js";
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
    parts.push(el("h3", { text: "Patient" }), fieldList(patient.fields, 0, []));
  }
  const results = [...mirror.find("result").values()];
  if (results.length) {
    parts.push(el("h3", { text: "Results" }));
    parts.push(el("ul", { class: "results" }, ...results.map((r) =>
      el("li", {}, el("strong", { text: `${r.name ?? r.test}: ` }), valueNode(r.text),
        r.values && !isHidden(r.values) && Object.keys(r.values).length ? fieldList(r.values) : null))));
  }
  const team = mirror.first("team");
  if (team && Array.isArray(team.fields.pending) && team.fields.pending.length) {
    parts.push(el("h3", { text: "Pending orders" }));
    parts.push(el("ul", {}, ...team.fields.pending.map((o) =>
      el("li", { text: `${o.name ?? o.test} (ordered at ${clockText(o.ordered_s)})` }))));
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
    item.className = `person ${state}`;
    item.querySelector(".person-icon").textContent = state === "speaking" ? "🔊" : state === "disconnected" ? "⨯" : "●";
    item.querySelector(".person-name").textContent = String(a.name) + (a.member === selfMember ? " (you)" : "");
    item.querySelector(".person-role").textContent = label(String(a.role));
    item.querySelector(".person-state").textContent = a.presenter === true ? `${state}, presenting` : state;
    item.querySelector("[data-presenter]")?.setAttribute("aria-pressed", String(a.presenter === true));
  }
}

export function eventText(entry) {
  if (entry === null || typeof entry !== "object") return String(entry);
  const who = entry.by ? `${entry.by}: ` : "";
  const text = entry.text ?? entry.kind ?? JSON.stringify(entry);
  return `${who}${text}`;
}

/** All case-like log channels your view holds, merged by time (the team's notes too). */
export function timeline(mirror) {
  const out = [];
  for (const channel of ["events", "case", "hints", "script", "notes"]) {
    for (const entry of mirror.logs[channel] || []) out.push({ channel, entry });
  }
  return out.sort((a, b) => (a.entry.t ?? 0) - (b.entry.t ?? 0)).slice(-50);
}

export function renderEvents(list, items) {
  fillList(list, items, ({ channel, entry }) => {
    const frag = document.createDocumentFragment();
    frag.append(el("span", { class: "time", text: clockText(entry.t) }), " ",
      el("span", { class: `tag tag-${entry.kind ?? channel}`, text: entry.override ? "override" : entry.kind ?? channel }), " ",
      document.createTextNode(eventText(entry)));
    return frag;
  });
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

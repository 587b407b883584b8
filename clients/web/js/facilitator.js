// The facilitator console: room controls (pause, resume, end) that follow the room's
// status, the answer key and the live score (facilitator-only fields), requests to
// present, the audience's questions, and join links made with the facilitator's own
// token (`POST /api/rooms/{id}/tokens`) with copy buttons.
import { clockText, el, fieldList, fillList, label, valueNode } from "./render.js";
import { isHidden } from "./wire.js";

const ROLES = ["participant", "spectator", "facilitator"];

export function wireControls(conn, report) {
  const run = (action, args = {}) => async () => {
    const reply = await conn.intent(action, args);
    report(reply.ok ? `${action}: done` : `${action} refused (${reply.code}): ${reply.msg}`, !reply.ok);
  };
  const pause = document.getElementById("ctl-pause");
  const resume = document.getElementById("ctl-resume");
  const end = document.getElementById("ctl-end");
  pause.addEventListener("click", run("pause"));
  resume.addEventListener("click", run("resume"));
  end.addEventListener("click", () => {
    if (window.confirm("End the session for everyone?")) run("end", { reason: "ended by the facilitator" })();
  });
  return { pause, resume, end };
}

/** Pause while running, Resume while paused, neither once ended. */
export function showControls({ pause, resume, end }, status) {
  pause.disabled = status !== "running";
  resume.disabled = status !== "paused";
  end.disabled = status === "ended";
}

/** The answer key: its summary open, every other field behind a disclosure (kept open across updates). */
/** Per-person controls for the facilitator: mute their voice (media `mute`), make them
 * the presenter (intent `present`), remove them from the room (intent `remove`). */
export function personControls(conn, media, report) {
  return (avatarId, fields) => {
    const who = fields.name;
    const mute = el("button", { type: "button", class: "small", text: "Mute", "aria-label": `Mute ${who}` });
    mute.addEventListener("click", () => {
      const tracks = media ? media.tracksOf(fields.member, "audio") : [];
      if (!tracks.length) {
        report(`${who} is not sending a voice.`, false);
        return;
      }
      const muted = !tracks.every((t) => t.muted);
      for (const t of tracks) media.mute(t.track, muted);
      mute.textContent = muted ? "Unmute" : "Mute";
      mute.setAttribute("aria-label", `${muted ? "Unmute" : "Mute"} ${who}`);
    });
    const present = el("button", { type: "button", class: "small", text: "Presenter", "aria-pressed": "false",
      "aria-label": `${who} presents`, "data-presenter": "" });
    present.addEventListener("click", async () => {
      const on = present.getAttribute("aria-pressed") !== "true";
      const reply = await conn.intent("present", { member: fields.member, on });
      if (reply.ok) present.setAttribute("aria-pressed", String(on));
      else report(`present refused (${reply.code}): ${reply.msg}`, true);
    });
    // Shown while the person asks to present (their avatar's `requests_present`).
    const grant = el("button", { type: "button", class: "small", text: "Let present", "aria-label": `Let ${who} present`,
      "data-request": "grant", hidden: true });
    const refuse = el("button", { type: "button", class: "small", text: "Refuse", "aria-label": `Refuse ${who}'s request to present`,
      "data-request": "refuse", hidden: true });
    const answer = (on) => async () => {
      const reply = await conn.intent("present", { member: fields.member, on });
      report(reply.ok ? `${who} ${on ? "may present" : "was told no"}.` : `present refused (${reply.code}): ${reply.msg}`, !reply.ok);
    };
    grant.addEventListener("click", answer(true));
    refuse.addEventListener("click", answer(false));
    const remove = el("button", { type: "button", class: "small danger", text: "Remove", "aria-label": `Remove ${who}` });
    remove.addEventListener("click", async () => {
      if (!window.confirm(`Remove ${who} from the room?`)) return;
      const reply = await conn.intent("remove", { member: fields.member });
      report(reply.ok ? `${who} was removed.` : `remove refused (${reply.code}): ${reply.msg}`, !reply.ok);
    });
    return [grant, refuse, mute, present, remove];
  };
}

export function renderAnswerKey(root, mirror) {
  const key = mirror.first("answer_key");
  if (!key) {
    root.replaceChildren(el("p", { class: "muted", text: "No answer key in this room." }));
    return;
  }
  const open = new Set([...root.querySelectorAll("details[open]")].map((d) => d.dataset.field));
  const parts = [];
  for (const [name, value] of Object.entries(key.fields)) {
    if (name === "summary" || typeof value !== "object" || value === null) {
      parts.push(fieldList({ [name]: value }));
      continue;
    }
    parts.push(el("details", { "data-field": name, open: open.has(name) },
      el("summary", { text: label(name) }), valueNode(value)));
  }
  const debrief = mirror.first("room")?.fields.debrief;
  if (debrief && typeof debrief === "object" && !isHidden(debrief)) {
    parts.unshift(el("details", { "data-field": "debrief", open: true },
      el("summary", { text: "Debrief (the session has ended)" }), valueNode(debrief)));
  }
  const director = mirror.first("director");
  if (director) {
    const rest = Object.fromEntries(Object.entries(director.fields).filter(([name]) => name !== "score"));
    parts.push(el("details", { "data-field": "director", open: open.has("director") },
      el("summary", { text: "Director: upcoming events and severity" }), fieldList(rest)));
  }
  root.replaceChildren(...parts);
}

/** The live score from the director (cases) or the answer key (the minimal room). */
export function renderScore(root, mirror) {
  const score = mirror.first("director")?.fields.score ?? mirror.first("answer_key")?.fields.score;
  if (score === undefined || score === null) {
    root.replaceChildren(el("p", { class: "muted", text: "No score in this room." }));
    return;
  }
  if (typeof score !== "object") {
    root.replaceChildren(el("p", { class: "score-head", text: `Score: ${score}` }));
    return;
  }
  const head = el("p", { class: "score-head",
    text: `${score.earned} of ${score.max} points (${score.percent}%) — ${score.passed ? "passing" : "not yet passing"}` });
  const rows = (score.critical || []).map((c) => el("tr", {},
    el("td", { text: c.description }),
    el("td", { class: `st-${c.status}`, text: c.status }),
    el("td", { text: `${c.points}/${c.max}` }),
    el("td", { text: c.at_s == null ? "" : clockText(c.at_s) })));
  for (const p of score.penalties || []) {
    rows.push(el("tr", {}, el("td", { text: `Penalty: ${p.description}` }), el("td", { class: "st-missed", text: "penalty" }),
      el("td", { text: String(p.points) }), el("td", { text: clockText(p.at_s) })));
  }
  const table = el("table", { class: "score" },
    el("caption", { class: "sr-only", text: "Critical actions and penalties" }),
    el("thead", {}, el("tr", {}, ...["Action", "Status", "Points", "At"].map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, ...rows));
  root.replaceChildren(head, table);
}

export function renderQuestions(list, entries) {
  fillList(list, entries, (q) => {
    const frag = document.createDocumentFragment();
    frag.append(el("span", { class: "time", text: clockText(q.t) }), " ",
      el("strong", { text: `${q.from ?? "?"}: ` }), document.createTextNode(String(q.text ?? "")));
    return frag;
  });
}

function linkItem(role, link) {
  const copy = el("button", { type: "button", text: `Copy ${role} link`, "aria-label": `Copy the ${role} join link` });
  const input = el("input", { value: link, readonly: true, "aria-label": `${role} join link`, class: "link" });
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(link);
      copy.textContent = "Copied";
    } catch {
      input.select();
      copy.textContent = "Press Ctrl+C to copy";
    }
    setTimeout(() => { copy.textContent = `Copy ${role} link`; }, 2000);
  });
  return el("li", {}, el("span", { class: "link-role", text: role }), input, copy);
}

/** Links given in the page URL (`#participant=<url>&spectator=<url>`), and new ones made
 * with this facilitator's own join token (no admin key needed). */
export function wireJoinLinks(room, token, report) {
  const list = document.getElementById("join-links");
  const given = new URLSearchParams(location.hash.slice(1));
  for (const role of ROLES) if (given.get(role)) list.append(linkItem(role, given.get(role)));
  document.getElementById("links-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = token;
    const items = [];
    for (const role of ROLES) {
      const response = await fetch(`/api/rooms/${encodeURIComponent(room)}/tokens`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
        body: JSON.stringify({ role }),
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        report(`Could not make a ${role} link (${body.error ?? response.status}): ${body.message ?? ""}`, true);
        return;
      }
      items.push(linkItem(role, new URL(body.link, location.href).href));
    }
    list.replaceChildren(...items);
    report("Join links ready.", false);
  });
}

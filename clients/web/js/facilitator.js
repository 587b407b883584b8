// The facilitator console: room controls (pause, resume, end), the answer key and the
// live score (facilitator-only fields), the audience's questions, and join links made
// through the admin API (`POST /api/rooms/{id}/tokens`) with copy buttons.
import { clockText, el, fieldList, fillList } from "./render.js";

const ROLES = ["participant", "spectator", "facilitator"];

export function wireControls(conn, report) {
  const run = (action, args = {}) => async () => {
    const reply = await conn.intent(action, args);
    report(reply.ok ? `${action}: done` : `${action} refused (${reply.code}): ${reply.msg}`, !reply.ok);
  };
  document.getElementById("ctl-pause").addEventListener("click", run("pause"));
  document.getElementById("ctl-resume").addEventListener("click", run("resume"));
  document.getElementById("ctl-end").addEventListener("click", () => {
    if (window.confirm("End the session for everyone?")) run("end", { reason: "ended by the facilitator" })();
  });
}

export function renderAnswerKey(root, mirror) {
  const parts = [];
  for (const kind of ["answer_key", "director"]) {
    for (const fields of mirror.find(kind).values()) parts.push(fieldList(fields));
  }
  root.replaceChildren(...(parts.length ? parts : [el("p", { class: "muted", text: "No answer key in this room." })]));
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

/** Links given in the page URL (`#participant=<url>&spectator=<url>`) and the admin form. */
export function wireJoinLinks(room, report) {
  const list = document.getElementById("join-links");
  const given = new URLSearchParams(location.hash.slice(1));
  for (const role of ROLES) if (given.get(role)) list.append(linkItem(role, given.get(role)));
  document.getElementById("links-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = document.getElementById("admin-key").value.trim();
    if (!key) { report("Enter the admin key to make join links.", true); return; }
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

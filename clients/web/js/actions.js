// Forms for the scenario's intents. Which forms a role gets depends on the room's
// scenario (the demo has only `note`; a case has the clinical and facilitator actions).
// Each form shows the server's reply (ok, or its code and sentence) in a status line.
import { el, label } from "./render.js";
import { isHidden } from "./wire.js";

const SIGNALS = ["hr", "sbp", "dbp", "map", "spo2", "rr", "temp", "etco2"];
const keysOf = (value) => (value && !isHidden(value) && typeof value === "object" ? Object.keys(value) : []);

const decisionIds = (m) => [...m.find("decision").values()].map((d) => d.id);
const optionIds = (m, form) => {
  const chosen = form.elements.decision?.value;
  const d = [...m.find("decision").values()].find((x) => x.id === chosen);
  return d ? keysOf(d.options) : [];
};
const answerKey = (m) => m.first("answer_key")?.fields ?? {};

// name -> {fields: [{name, type, required, choices?(mirror, form)}], roles}
const ACTIONS = {
  examine: { fields: [{ name: "region", required: true }] },
  order: { fields: [{ name: "test", required: true }] },
  give: { fields: [{ name: "drug", required: true }, { name: "dose", type: "number", required: true }, { name: "route", required: true }] },
  oxygen: { fields: [{ name: "device", required: true }] },
  call_help: { fields: [{ name: "team", required: true }] },
  decide: { fields: [{ name: "decision", required: true, choices: decisionIds }, { name: "option", required: true, choices: optionIds }] },
  note: { fields: [{ name: "text", type: "textarea", required: true }] },
  time_scale: { fields: [{ name: "scale", type: "number", required: true, step: "0.25", min: "0.25", max: "10" }] },
  inject: { fields: [{ name: "event", required: true, choices: (m) => keysOf(answerKey(m).events) }] },
  override: { fields: [{ name: "signal", required: true, choices: () => SIGNALS },
    { name: "value", type: "number", hint: "leave empty to end the override" },
    { name: "for_s", type: "number", hint: "seconds; empty: until ended" }] },
  reveal: { fields: [{ name: "test", hint: "a test id, or" }, { name: "region", hint: "an exam region" }] },
  advance: { fields: [{ name: "phase", hint: "empty: the next phase" }] },
  hint: { fields: [{ name: "text" }, { name: "index", type: "number", hint: "or a prepared hint's number" }] },
  score: { fields: [{ name: "item", required: true, choices: (m) => (m.first("director")?.fields.score?.manual ?? []).map((x) => x.id) }, { name: "points", type: "number", required: true }, { name: "comment" }] },
};
const CASE_PARTICIPANT = ["examine", "order", "give", "oxygen", "call_help", "decide", "note"];
const CASE_FACILITATOR = ["time_scale", "inject", "override", "reveal", "advance", "hint", "score"];

export function actionsFor(role, scenario) {
  if (scenario === "demo" || scenario === "minimal") return role === "facilitator" || role === "participant" ? ["note"] : [];
  if (role === "participant") return CASE_PARTICIPANT;
  if (role === "facilitator") return CASE_FACILITATOR;
  return [];
}

/** Build one form per action into `root`; `send(action, args)` returns a reply promise. */
export function buildActionForms(root, names, mirror, send) {
  const forms = names.map((name) => actionForm(name, mirror, send));
  root.replaceChildren(...forms.map((f) => f.node));
  return { refresh: () => forms.forEach((f) => f.refresh()) };
}

function actionForm(name, mirror, send) {
  const spec = ACTIONS[name];
  const id = `act-${name}`;
  const status = el("p", { class: "reply", role: "status", id: `${id}-status` });
  const form = el("form", { class: "action", id, "aria-labelledby": `${id}-h` });
  form.append(el("h3", { id: `${id}-h`, text: label(name) }));
  const lists = [];
  for (const field of spec.fields) {
    const inputId = `${id}-${field.name}`;
    let input;
    if (field.type === "textarea") input = el("textarea", { id: inputId, name: field.name, rows: 2, maxlength: 1000 });
    else if (field.choices) {
      input = el("select", { id: inputId, name: field.name });
      lists.push({ input, field, select: true });
    } else input = el("input", { id: inputId, name: field.name, type: field.type === "number" ? "number" : "text", autocomplete: "off", step: field.step ?? "any", min: field.min, max: field.max });
    if (field.required) input.required = true;
    form.append(el("label", { for: inputId, text: label(field.name) + (field.required ? "" : " (optional)") }));
    if (field.hint) {
      input.setAttribute("aria-describedby", `${inputId}-hint`);
      form.append(el("span", { class: "field-hint", id: `${inputId}-hint`, text: field.hint }));
    }
    form.append(input);
  }
  form.append(el("button", { type: "submit", text: label(name) }), status);
  const refresh = () => {
    for (const { input, field } of lists) {
      const values = field.choices(mirror, form).map(String);
      const key = JSON.stringify(values);
      if (input.dataset.values === key) continue; // unchanged: leave an open list alone
      input.dataset.values = key;
      const current = input.value;
      input.replaceChildren(el("option", { value: "", text: "Choose…" }),
        ...values.map((v) => el("option", { value: v, text: v, selected: v === current })));
    }
  };
  form.addEventListener("change", (event) => { if (event.target.name === "decision") refresh(); });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const args = {};
    for (const field of spec.fields) {
      const raw = form.elements[field.name].value.trim();
      if (raw === "") continue;
      args[field.name] = field.type === "number" ? Number(raw) : raw;
    }
    status.textContent = "Sending…";
    const reply = await send(name, args);
    status.textContent = reply.ok ? `${label(name)}: done.` : `${label(name)} refused (${reply.code}): ${reply.msg}`;
    status.classList.toggle("refused", !reply.ok);
    if (reply.ok && spec.fields.length === 1 && spec.fields[0].type === "textarea") form.reset();
  });
  refresh();
  return { node: form, refresh };
}

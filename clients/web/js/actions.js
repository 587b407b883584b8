// Forms for the scenario's intents, with pickers built from the case itself: its
// `catalog` entity lists the regions to examine, tests, drugs (dose unit, range,
// typical dose, routes), oxygen devices, procedures and teams to call, by their
// plain-language names. A picker is a text field with a list of suggestions (type to
// search, arrow keys to choose); what is sent is the id behind the chosen name. The
// server still validates everything. A case that publishes no catalog gets plain fields.
// Each form shows the server's reply (ok, or its code and sentence) in a status line.
import { el } from "./render.js";
import { humanize, signalName } from "./names.js";
import { isHidden } from "./wire.js";

const SIGNALS = ["hr", "sbp", "dbp", "map", "spo2", "rr", "temp", "etco2"];
const keysOf = (value) => (value && !isHidden(value) && typeof value === "object" ? Object.keys(value) : []);
const catalogOf = (m) => m.first("catalog")?.fields ?? null;
const list = (key) => (m) => {
  const items = catalogOf(m)?.[key];
  return Array.isArray(items) ? items.map((i) => ({ id: String(i.id), name: String(i.name ?? humanize(i.id)), item: i })) : null;
};
const decisions = (m) => [...m.find("decision").values()].filter((d) => !d.chosen)
  .map((d) => ({ id: String(d.id), name: String(d.prompt ?? humanize(d.id)) }));
const options = (m, form) => {
  const d = [...m.find("decision").values()].find((x) => String(x.id) === form.dataset.decision);
  return d ? Object.entries(d.options ?? {}).map(([id, text]) => ({ id, name: String(text) })) : [];
};
const answerKey = (m) => m.first("answer_key")?.fields ?? {};
const events = (m) => keysOf(answerKey(m).events).map((id) => ({ id, name: humanize(id) }));
const signals = (m) => list("signals")(m) ?? SIGNALS.map((id) => ({ id, name: signalName(id) }));
const manualScore = (m) => (m.first("director")?.fields.score?.manual ?? [])
  .map((x) => ({ id: String(x.id), name: String(x.description ?? humanize(x.id)) }));

// name -> {title, fields: [{name, pick?(mirror, form) -> [{id, name}] | null, type?, required?}]}
const ACTIONS = {
  examine: { title: "Examine", fields: [{ name: "region", label: "Region", pick: list("examine") }] },
  order: { title: "Order a test", fields: [{ name: "test", label: "Test", pick: list("tests") }] },
  give: { title: "Give a drug or fluid", fields: [
    { name: "drug", label: "Drug", pick: list("drugs") },
    { name: "dose", label: "Dose", type: "number" },
    { name: "route", label: "Route", type: "route" }] },
  oxygen: { title: "Oxygen or airway", fields: [{ name: "device", label: "Device", pick: list("oxygen") }] },
  perform: { title: "Procedure", needs: "procedures", fields: [{ name: "procedure", label: "Procedure", pick: list("procedures") }] },
  call_help: { title: "Call for help", fields: [{ name: "team", label: "Team", pick: list("help") }] },
  decide: { title: "Decide", fields: [{ name: "decision", label: "Decision", pick: decisions, select: true },
    { name: "option", label: "Option", pick: options, select: true }] },
  note: { title: "Note", fields: [{ name: "text", label: "Note for the team", type: "textarea" }] },
  time_scale: { title: "Case speed", fields: [{ name: "scale", label: "Speed (×)", type: "number", step: "0.25", min: "0.25", max: "10" }] },
  inject: { title: "Inject an event", fields: [{ name: "event", label: "Event", pick: events }] },
  override: { title: "Override a vital", fields: [{ name: "signal", label: "Vital", pick: signals, select: true },
    { name: "value", label: "Value", type: "number", optional: true, hint: "empty: end the override" },
    { name: "for_s", label: "For (seconds)", type: "number", optional: true, hint: "empty: until ended" }] },
  reveal: { title: "Reveal a result or finding", fields: [
    { name: "test", label: "Test", pick: list("tests"), optional: true },
    { name: "region", label: "or exam region", pick: list("examine"), optional: true }] },
  advance: { title: "Advance the phase", fields: [{ name: "phase", label: "Phase id", optional: true, hint: "empty: the next phase" }] },
  hint: { title: "Send a hint", fields: [{ name: "text", label: "Hint", optional: true },
    { name: "index", label: "or prepared hint number", type: "number", optional: true }] },
  score: { title: "Score a manual item", fields: [{ name: "item", label: "Item", pick: manualScore, select: true },
    { name: "points", label: "Points", type: "number" }, { name: "comment", label: "Comment", optional: true }] },
};
const CASE_PARTICIPANT = ["examine", "order", "give", "oxygen", "perform", "call_help", "decide", "note"];
const CASE_FACILITATOR = ["time_scale", "inject", "override", "reveal", "advance", "hint", "score"];

export function actionsFor(role, scenario) {
  if (scenario === "demo" || scenario === "minimal") return role === "facilitator" || role === "participant" ? ["note"] : [];
  if (role === "participant") return CASE_PARTICIPANT;
  if (role === "facilitator") return CASE_FACILITATOR;
  return [];
}

/** Build one form per action into `root`; `send(action, args)` returns a reply promise.
 * Returns {refresh(), setPaused(bool)}: participants' case actions wait while paused. */
export function buildActionForms(root, actionNames, mirror, send, { pauses = false } = {}) {
  const forms = actionNames.map((name) => actionForm(name, mirror, send));
  const note = el("p", { class: "paused-note", role: "status", hidden: true,
    text: "The case is paused: actions on the patient wait until the facilitator resumes it." });
  root.replaceChildren(note, ...forms.map((f) => f.node));
  return {
    refresh: () => forms.forEach((f) => f.refresh()),
    setPaused: (paused) => {
      if (!pauses) return;
      note.hidden = !paused;
      for (const f of forms) if (f.name !== "note") f.fieldset.disabled = paused;
    },
  };
}

function actionForm(name, mirror, send) {
  const spec = ACTIONS[name];
  const id = `act-${name}`;
  const status = el("p", { class: "reply", role: "status", id: `${id}-status` });
  const form = el("form", { class: "action", id, "aria-labelledby": `${id}-h` });
  const fieldset = el("fieldset", { class: "plain-fieldset" });
  form.append(el("h3", { id: `${id}-h`, text: spec.title }), fieldset);
  const pickers = [];
  let routeSelect = null;
  let doseInput = null;
  let doseHint = null;
  for (const field of spec.fields) {
    const inputId = `${id}-${field.name}`;
    let input;
    if (field.type === "textarea") input = el("textarea", { id: inputId, name: field.name, rows: 2, maxlength: 1000 });
    else if (field.type === "route") {
      input = el("select", { id: inputId, name: field.name });
      routeSelect = input;
    } else if (field.select) {
      input = el("select", { id: inputId, name: field.name });
      pickers.push({ field, input, select: true });
    } else if (field.pick) {
      const listId = `${inputId}-list`;
      // A text field with a list is a native combobox: typing filters, arrows choose.
      input = el("input", { id: inputId, name: field.name, list: listId, autocomplete: "off", placeholder: "Type to search" });
      const datalist = el("datalist", { id: listId });
      pickers.push({ field, input, datalist });
      fieldset.append(datalist);
    } else {
      input = el("input", { id: inputId, name: field.name, type: field.type === "number" ? "number" : "text",
        autocomplete: "off", step: field.step ?? "any", min: field.min, max: field.max });
    }
    if (field.name === "dose") doseInput = input;
    if (!field.optional) input.required = true;
    fieldset.append(el("label", { for: inputId, text: field.label + (field.optional ? " (optional)" : "") }));
    const hintId = `${inputId}-hint`;
    if (field.hint || field.name === "dose") {
      input.setAttribute("aria-describedby", hintId);
      const hint = el("span", { class: "field-hint", id: hintId, text: field.hint ?? "" });
      if (field.name === "dose") doseHint = hint;
      fieldset.append(hint);
    }
    fieldset.append(input);
  }
  fieldset.append(el("button", { type: "submit", text: spec.title }));
  form.append(status);

  const choices = new Map(); // field name -> [{id, name, item}] (null: no list, free text)
  /** The id behind what a picker shows (a name, or an id typed as is). */
  const chosen = (fieldName, text) => {
    const items = choices.get(fieldName);
    if (!items) return text;
    const t = text.trim().toLowerCase();
    return items.find((c) => c.name.toLowerCase() === t || c.id.toLowerCase() === t) ?? null;
  };
  const drugChosen = () => {
    if (!doseInput) return;
    const drug = chosen("drug", form.elements.drug.value);
    const item = drug?.item;
    const routes = item?.routes ?? [];
    const current = routeSelect.value;
    routeSelect.replaceChildren(...(routes.length ? routes : [{ id: "", name: "Choose a drug first" }])
      .map((r) => el("option", { value: r.id, text: r.name ?? humanize(r.id), selected: r.id === current })));
    if (!item) { doseHint.textContent = ""; return; }
    const unit = item.unit ? String(item.unit) : "";
    const range = item.min !== undefined && item.max !== undefined ? `, ${item.min}–${item.max}` : "";
    doseHint.textContent = `in ${unit || "the drug's unit"}${item.per_kg ? " per kg" : ""}${range}${item.typical !== undefined ? `; usual ${item.typical}` : ""}${item.infusion ? " (an infusion: 0 stops it)" : ""}`;
    if (item.typical !== undefined) doseInput.placeholder = String(item.typical);
    if (item.min !== undefined) doseInput.min = String(item.min);
    if (item.max !== undefined) doseInput.max = String(item.max);
  };
  const refresh = () => {
    for (const { field, input, datalist, select } of pickers) {
      const items = field.pick(mirror, form);
      choices.set(field.name, items);
      const key = JSON.stringify(items);
      if (input.dataset.values === key) continue; // unchanged: leave an open list alone
      input.dataset.values = key;
      if (select) {
        const current = input.value;
        input.replaceChildren(el("option", { value: "", text: "Choose…" }),
          ...(items ?? []).map((c) => el("option", { value: c.id, text: c.name, selected: c.id === current })));
      } else {
        datalist.replaceChildren(...(items ?? []).map((c) => el("option", { value: c.name })));
        input.placeholder = items ? "Type to search" : "Type the id";
      }
    }
    drugChosen();
  };
  form.addEventListener("change", (event) => {
    if (event.target.name === "decision") { form.dataset.decision = event.target.value; refresh(); }
    if (event.target.name === "drug") drugChosen();
  });
  form.addEventListener("input", (event) => { if (event.target.name === "drug") drugChosen(); });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const args = {};
    for (const field of spec.fields) {
      const raw = form.elements[field.name].value.trim();
      if (raw === "") continue;
      if (field.type === "number") args[field.name] = Number(raw);
      else if (field.pick && !field.select) {
        const hit = chosen(field.name, raw);
        if (hit === null) {
          status.textContent = `${field.label}: "${raw}" is not one of the choices; pick one from the list.`;
          status.classList.add("refused");
          form.elements[field.name].focus();
          return;
        }
        args[field.name] = typeof hit === "string" ? hit : hit.id;
      } else args[field.name] = raw;
    }
    status.textContent = "Sending…";
    const reply = await send(name, args);
    status.textContent = reply.ok ? `${spec.title}: done.` : `${spec.title} refused (${reply.code}): ${reply.msg}`;
    status.classList.toggle("refused", !reply.ok);
    if (reply.ok && spec.fields.length === 1 && spec.fields[0].type === "textarea") form.reset();
  });
  const node = form;
  const entry = { name, node, fieldset, refresh: () => {
    const needs = spec.needs;
    node.hidden = !!needs && !(catalogOf(mirror)?.[needs]?.length);
    refresh();
  } };
  entry.refresh();
  return entry;
}


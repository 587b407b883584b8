// Plain-language names for what the room and the case publish: the case's own names
// from its `catalog` entity where it has them, a units table for result values
// (`lactate_mmol_l` -> "Lactate 4.8 mmol/L"), and sentences for event kinds. Raw ids
// ("nasal_cannula", "wcc", "paused") never reach the page.
import { label } from "./render.js";

/** Result value names that are abbreviations, and their units when the key has none. */
const ANALYTES = {
  wcc: ["White cell count", "×10⁹/L"],
  hb: ["Haemoglobin", "g/L"],
  platelets: ["Platelets", "×10⁹/L"],
  crp: ["CRP", "mg/L"],
  na: ["Sodium", "mmol/L"],
  k: ["Potassium", "mmol/L"],
  inr: ["INR", ""],
  ph: ["pH", ""],
};
/** Unit suffixes of value keys, longest first. */
const UNITS = [
  ["_x10_9_l", "×10⁹/L"], ["_mmol_l", "mmol/L"], ["_umol_l", "µmol/L"], ["_ng_l", "ng/L"],
  ["_ug_l", "µg/L"], ["_mg_l", "mg/L"], ["_g_l", "g/L"], ["_u_l", "U/L"], ["_kpa", "kPa"],
  ["_mmhg", "mmHg"], ["_pct", "%"], ["_percent", "%"], ["_bpm", "/min"], ["_s", "s"],
];
const ACRONYMS = new Set(["ecg", "ct", "cxr", "abg", "vbg", "crp", "inr", "ett", "niv", "hfnc", "bvm", "iv", "im", "io", "pr", "sc", "gtn", "pci"]);
const SIGNALS = {
  hr: ["Heart rate", "per minute"], sbp: ["Systolic pressure", "mmHg"], dbp: ["Diastolic pressure", "mmHg"],
  map: ["Mean arterial pressure", "mmHg"], spo2: ["Oxygen saturation", "%"], rr: ["Respiratory rate", "per minute"],
  temp: ["Temperature", "°C"], etco2: ["End-tidal CO₂", "mmHg"],
};
const OXYGEN = {
  none: "No oxygen", room_air: "Room air", nasal_cannula: "Nasal cannula", simple_mask: "Simple face mask",
  non_rebreather: "Non-rebreather mask", hfnc: "High-flow nasal oxygen", niv: "Non-invasive ventilation",
  bvm: "Bag-valve-mask", ett: "Endotracheal tube",
};
const ROOM_STATUS = { running: "Running", paused: "Paused", ended: "Ended" };

/** "nasal_cannula" -> "Nasal cannula", "abg" -> "ABG". */
export function humanize(id) {
  return String(id).split("_").map((w, i) => (ACRONYMS.has(w) ? w.toUpperCase() : i ? w : label(w))).join(" ");
}

/** A lookup over the case's catalog (participants and the facilitator see it). */
export class Names {
  constructor() { this.catalog = null; this.byId = new Map(); }

  update(catalog) {
    if (!catalog || catalog === this.catalog) return;
    this.catalog = catalog;
    this.byId = new Map();
    for (const list of Object.values(catalog)) {
      if (!Array.isArray(list)) continue;
      for (const item of list) if (item && item.id && item.name) this.byId.set(String(item.id), String(item.name));
    }
  }

  /** The case's name for an id (a drug, test, region, device, team...). */
  of(id) {
    if (id === null || id === undefined) return "";
    return this.byId.get(String(id)) ?? OXYGEN[id] ?? humanize(id);
  }
}

export const names = new Names();

/** A result value with its plain name and unit: ["Lactate", "4.8 mmol/L"]. */
export function resultValue(key, value) {
  const known = ANALYTES[key];
  if (known) return [known[0], `${value}${known[1] ? ` ${known[1]}` : ""}`];
  for (const [suffix, unit] of UNITS) {
    if (key.endsWith(suffix)) return [humanize(key.slice(0, -suffix.length)), `${value} ${unit}`];
  }
  return [humanize(key), String(value)];
}

export function signalName(key) { return SIGNALS[key]?.[0] ?? humanize(key); }
export function signalUnit(key) { return SIGNALS[key]?.[1] ?? ""; }
export function roomStatus(status) { return ROOM_STATUS[status] ?? humanize(status); }

/** One line of the case feed, in words. */
export function eventText(entry) {
  if (entry === null || typeof entry !== "object") return String(entry);
  const who = entry.by ? `${entry.by}: ` : "";
  const n = (id) => names.of(id);
  // Actions on the case are told from their fields (a case's own text may carry ids).
  switch (entry.kind) {
    case "order": return `${who}ordered ${n(entry.test)}`;
    case "give": return `${who}gave ${n(entry.drug)}${entry.dose !== undefined ? ` ${entry.dose}${entry.unit ? ` ${entry.unit}` : ""}` : ""}${entry.route ? ` ${n(entry.route)}` : ""}`;
    case "stop": return `${who}stopped ${n(entry.drug ?? entry.item)}`;
    case "oxygen": return `${who}started ${n(entry.device)}`;
    case "call_help": return `${who}called ${n(entry.team)}`;
    case "override": return entry.value === null || entry.value === undefined
      ? `${who}facilitator override of ${signalName(entry.signal).toLowerCase()} ended`
      : `${who}facilitator override: ${signalName(entry.signal).toLowerCase()} ${entry.value} ${signalUnit(entry.signal)}`
        + (entry.for_s ? ` for ${entry.for_s} s` : "");
    case "event": return `Case event: ${n(entry.event)}${entry.note ? ` (${entry.note})` : ""}`;
    case "decision": return `Decision ${n(entry.decision)}: ${n(entry.option)}, ${entry.correct ? "the expected answer" : "not the expected answer"}`;
    case "score": return `Scored ${n(entry.item)}: ${entry.points} points${entry.comment ? ` (${entry.comment})` : ""}`;
    default: break;
  }
  if (entry.text) return `${who}${entry.text}`;
  switch (entry.kind) {
    case "examine": return `${who}examined ${n(entry.region).toLowerCase()}`;
    case "result": return `Result: ${n(entry.test)}`;
    case "paused": return "The case is paused";
    case "resumed": return "The case continues";
    case "ended": return "The session has ended";
    default: return `${who}${humanize(entry.kind ?? "event")}`;
  }
}

/** The tag shown before a feed line ("Exam", "Order"...), never a raw id. */
export function eventTag(entry, channel) {
  return humanize(entry?.kind ?? channel);
}

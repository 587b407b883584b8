// The patient monitor: numbers with alarm states, and ECG, pleth and capnography
// waveforms synthesised from the current vitals. Alarms are shown with text and a
// symbol (never colour alone) and announced to screen readers when they start.
import { isHidden } from "./wire.js";

const SIGNALS = [
  { key: "hr", label: "HR", unit: "/min", low: 50, high: 120 },
  { key: "spo2", label: "SpO₂", unit: "%", low: 92, high: null },
  { key: "bp", label: "NIBP", unit: "mmHg" },
  { key: "map", label: "MAP", unit: "mmHg", low: 65, high: null },
  { key: "rr", label: "RR", unit: "/min", low: 8, high: 28 },
  { key: "etco2", label: "EtCO₂", unit: "mmHg", low: 25, high: 50 },
  { key: "temp", label: "Temp", unit: "°C", low: 35.0, high: 38.3 },
];
const BP_LIMITS = { sbp: [90, 180], dbp: [null, 110] };
const NAMES = { hr: "heart rate", spo2: "oxygen saturation", sbp: "systolic pressure", dbp: "diastolic pressure",
  map: "mean arterial pressure", rr: "respiratory rate", etco2: "end-tidal CO2", temp: "temperature" };
const WAVES = [
  { key: "ecg", label: "ECG II", colour: "#7CFC8A" },
  { key: "pleth", label: "Pleth", colour: "#5CD6FF" },
  { key: "co2", label: "CO₂", colour: "#FFD75C" },
];
const SWEEP_SECONDS = 6;

function ecg(phase) {
  const bump = (c, w, a) => a * Math.exp(-(((phase - c) / w) ** 2));
  return bump(0.12, 0.03, 0.12) - bump(0.215, 0.008, 0.12) + bump(0.235, 0.012, 1) - bump(0.26, 0.01, 0.25) + bump(0.45, 0.05, 0.25);
}
function pleth(phase) {
  const p = (phase + 0.75) % 1;
  const rise = p < 0.18 ? Math.sin((p / 0.18) * Math.PI / 2) : Math.exp(-(p - 0.18) * 3.2);
  const notch = 0.12 * Math.exp(-(((p - 0.42) / 0.05) ** 2));
  return rise * 0.9 + notch;
}
function capno(phase) {
  if (phase < 0.4) return 0;
  if (phase < 0.48) return (phase - 0.4) / 0.08;
  if (phase < 0.9) return 1 + (phase - 0.48) * 0.08;
  if (phase < 0.95) return 1.03 * (1 - (phase - 0.9) / 0.05);
  return 0;
}

export class Monitor {
  constructor(root, alarmText, announce) {
    this.root = root;
    this.alarmText = alarmText;
    this.announce = announce;
    this.vitals = {};
    this.alarms = [];
    this.tiles = {};
    this.beat = 0;
    this.breath = 0;
    this.sweep = 0;
    this.last = null;
    this.showOverrides = false; // the facilitator's console only: learners never see "(override)"
    this.spoken = {};           // the values of the last spoken summary, for trends
    this.build();
  }

  build() {
    const numbers = document.createElement("dl");
    numbers.className = "vitals";
    for (const s of SIGNALS) {
      const tile = document.createElement("div");
      tile.className = "vital";
      tile.dataset.signal = s.key;
      tile.innerHTML = `<dt>${s.label} <span class="unit">${s.unit}</span></dt><dd><span class="value">--</span> <span class="flag"></span></dd>`;
      numbers.append(tile);
      this.tiles[s.key] = tile;
    }
    const waves = document.createElement("div");
    waves.className = "waves";
    this.canvases = {};
    for (const w of WAVES) {
      const fig = document.createElement("figure");
      fig.innerHTML = `<figcaption style="color:${w.colour}">${w.label}</figcaption>`;
      const canvas = document.createElement("canvas");
      canvas.width = 480;
      canvas.height = 60;
      canvas.setAttribute("aria-hidden", "true");
      fig.append(canvas);
      waves.append(fig);
      this.canvases[w.key] = { canvas, ctx: canvas.getContext("2d"), colour: w.colour, prevY: null };
    }
    this.root.append(waves, numbers);
  }

  /** New monitor fields from the room (a `monitor` entity's fields). */
  update(fields) {
    this.vitals = fields;
    const alarms = Array.isArray(fields.alarms) ? fields.alarms : this.computeAlarms(fields);
    for (const s of SIGNALS) {
      const tile = this.tiles[s.key];
      let text;
      if (s.key === "bp") {
        text = this.has("sbp") && this.has("dbp") ? `${fields.sbp}/${fields.dbp}` : "--";
      } else if (s.key === "map" && !this.has("map") && this.has("sbp") && this.has("dbp")) {
        text = String(Math.round((fields.sbp + 2 * fields.dbp) / 3));
      } else {
        text = this.has(s.key) ? String(fields[s.key]) : "--";
      }
      tile.querySelector(".value").textContent = text;
      const keys = s.key === "bp" ? ["sbp", "dbp"] : [s.key];
      const hit = alarms.find((a) => keys.some((k) => a.startsWith(k + "_")));
      const flag = tile.querySelector(".flag");
      tile.classList.toggle("alarm", !!hit);
      flag.textContent = hit ? (hit.endsWith("_high") ? "▲ HIGH" : "▼ LOW") : "";
      const overridden = Array.isArray(fields.overridden) && keys.some((k) => fields.overridden.includes(k));
      tile.classList.toggle("overridden", this.showOverrides && overridden);
    }
    const started = alarms.filter((a) => !this.alarms.includes(a));
    this.alarms = alarms;
    this.alarmText.textContent = alarms.length ? `Alarms: ${alarms.map(describe).join("; ")}` : "No alarms";
    if (started.length) this.announce(`Alarm: ${started.map(describe).join("; ")}`);
  }

  /** The vitals in words for a screen reader, with how each moved since the last time
   * it was asked when `trends` (e.g. "blood pressure 84 over 50, falling"). */
  summary(trends = false) {
    const words = [];
    const trend = (key) => {
      const before = this.spoken[key];
      const now = this.vitals[key];
      if (!trends || typeof before !== "number") return "";
      const step = { temp: 0.3, spo2: 2 }[key] ?? 5;
      return now <= before - step ? ", falling" : now >= before + step ? ", rising" : ", steady";
    };
    for (const key of ["hr", "bp", "map", "spo2", "rr", "etco2", "temp"]) {
      if (key === "bp") {
        if (this.has("sbp") && this.has("dbp")) words.push(`blood pressure ${this.vitals.sbp} over ${this.vitals.dbp}${trend("sbp")}`);
        continue;
      }
      if (!this.has(key)) continue;
      const unit = { spo2: " percent", temp: " degrees" }[key] ?? "";
      words.push(`${NAMES[key]} ${this.vitals[key]}${unit}${trend(key)}`);
    }
    if (trends) for (const key of Object.keys(NAMES)) if (this.has(key)) this.spoken[key] = this.vitals[key];
    if (!words.length) return "No vitals on the monitor yet.";
    const alarms = this.alarms.length ? ` Alarms: ${this.alarms.map(describe).join("; ")}.` : "";
    return `${words.join("; ")}.${alarms}`;
  }

  has(key) {
    return typeof this.vitals[key] === "number" && !isHidden(this.vitals[key]);
  }

  computeAlarms(fields) {
    const out = [];
    const limits = { ...BP_LIMITS };
    for (const s of SIGNALS) if ("low" in s) limits[s.key] = [s.low, s.high];
    for (const [key, [low, high]] of Object.entries(limits)) {
      const v = fields[key];
      if (typeof v !== "number") continue;
      if (low !== null && v < low) out.push(key + "_low");
      else if (high !== null && v > high) out.push(key + "_high");
    }
    return out;
  }

  /** Advance and draw the sweeping waveforms to time `now` (ms). */
  draw(now) {
    if (this.last === null) { this.last = now; return; }
    const dt = Math.min(0.5, (now - this.last) / 1000);
    this.last = now;
    const hr = this.has("hr") ? this.vitals.hr : 0;
    const rr = this.has("rr") ? this.vitals.rr : 0;
    const spo2 = this.has("spo2") ? this.vitals.spo2 : 0;
    const etco2 = this.has("etco2") ? this.vitals.etco2 : 0;
    const width = 480;
    const steps = Math.max(1, Math.round((dt / SWEEP_SECONDS) * width));
    for (let i = 0; i < steps; i++) {
      const h = dt / steps;
      this.beat = (this.beat + (h * hr) / 60) % 1;
      this.breath = (this.breath + (h * rr) / 60) % 1;
      this.sweep = (this.sweep + (h / SWEEP_SECONDS) * width) % width;
      const x = Math.floor(this.sweep);
      this.plot("ecg", x, hr ? ecg(this.beat) : 0, 0.35);
      this.plot("pleth", x, spo2 ? pleth(this.beat) * Math.min(1, spo2 / 100) : 0, 0.1);
      this.plot("co2", x, rr ? capno(this.breath) * Math.min(1.2, etco2 / 45) : 0, 0.05);
    }
  }

  plot(key, x, value, base) {
    const c = this.canvases[key];
    const { ctx, canvas } = c;
    const y = canvas.height - 6 - (value + base) / 1.45 * (canvas.height - 12);
    ctx.fillStyle = "#000";
    ctx.fillRect(x, 0, 12, canvas.height);
    ctx.strokeStyle = c.colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x - 1, c.prevY === null || x === 0 ? y : c.prevY);
    ctx.lineTo(x, y);
    ctx.stroke();
    c.prevY = y;
  }
}

function describe(alarm) {
  const [key, side] = alarm.split("_");
  return `${NAMES[key] || key} ${side}`;
}

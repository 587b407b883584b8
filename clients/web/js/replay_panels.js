// Panels of the replay viewer that follow the play head or collect reviewers' work:
// the transcript (everything said or written, the lines already said marked, the last
// one highlighted and kept in view), and the rater form (a behavioural rating scale,
// TEAM or ANTS, scored per item over a time range and saved in the annotations
// overlay beside the bookmarks and comments).
import { clockText, el } from "./render.js";

export class Transcript {
  /** list: an <ol>; now: a live region saying the latest line while playing. */
  constructor(list, now, onSeek) {
    this.list = list;
    this.now = now;
    this.onSeek = onSeek;
    this.lines = [];
    this.start = 0;
    this.current = -1;
  }

  setLines(lines, start) {
    this.lines = lines;
    this.start = start;
    this.current = -1;
    this.list.replaceChildren(...lines.map((line, i) => {
      const when = clockText(line.t - start);
      const go = el("button", { type: "button", class: "go", text: when, "aria-label": `Go to ${when}` });
      go.addEventListener("click", () => this.onSeek(line.t));
      return el("li", { class: `line ${line.kind.replace(/\s+/g, "-")}`, "data-index": String(i) }, go, " ",
        el("span", { class: "who", text: `${line.who} (${line.kind}): ` }), el("span", { class: "text", text: line.text }));
    }));
    if (!lines.length) this.list.replaceChildren(el("li", { class: "muted", text: "Nothing was said in writing in this session." }));
  }

  /** Mark the lines said by `t`; highlight and show the latest; say it when it is new. */
  update(t, playing) {
    let latest = -1;
    this.lines.forEach((line, i) => { if (line.t <= t) latest = i; });
    if (latest === this.current) return;
    this.current = latest;
    for (const item of this.list.querySelectorAll("li.line")) {
      const i = Number(item.dataset.index);
      item.classList.toggle("said", i <= latest);
      item.classList.toggle("current", i === latest);
      if (i === latest) item.setAttribute("aria-current", "true"); else item.removeAttribute("aria-current");
    }
    const item = this.list.querySelector("li.current");
    if (item) {
      const box = this.list;
      const top = item.offsetTop - box.offsetTop;
      if (top < box.scrollTop || top > box.scrollTop + box.clientHeight - item.offsetHeight) {
        box.scrollTop = Math.max(0, top - box.clientHeight / 3);
      }
    }
    if (playing && latest >= 0) {
      const line = this.lines[latest];
      this.now.textContent = `${line.who}: ${line.text}`;
    }
  }
}

export class RaterForm {
  /** form: the rater form element; save(body) posts an annotation and returns it. */
  constructor(form, save) {
    this.form = form;
    this.save = save;
    this.scales = {};
    this.scale = form.querySelector("#rating-scale");
    this.items = form.querySelector("#rating-items");
    this.global = form.querySelector("#rating-global");
    this.scale.addEventListener("change", () => this.build());
    form.addEventListener("submit", (e) => { e.preventDefault(); this.submit(); });
  }

  setScales(scales) {
    this.scales = scales;
    this.scale.replaceChildren(...Object.entries(scales).map(([id, s]) => el("option", { value: id, text: `${id}: ${s.title}` })));
    this.build();
  }

  /** Prefill the time range: the last minute up to the play head. */
  setRange(start, end) {
    this.form.querySelector("#rating-start").value = String(Math.round(start));
    this.form.querySelector("#rating-end").value = String(Math.round(end));
  }

  build() {
    const scale = this.scales[this.scale.value];
    if (!scale) return;
    const scores = (low, high) => [el("option", { value: "", text: "not observed" }),
      ...Array.from({ length: high - low + 1 }, (_, k) => el("option", { value: String(low + k), text: String(low + k) }))];
    this.items.replaceChildren(el("p", { class: "hint", text: `Scores: ${scale.anchors}` }),
      ...scale.items.map((item) => {
        const id = `rating-item-${item.id}`;
        return el("div", { class: "rating-item" }, el("label", { for: id, text: item.label }),
          el("select", { id, "data-item": item.id }, ...scores(scale.low, scale.high)));
      }));
    this.global.replaceChildren(...scores(scale.global_low, scale.global_high).slice(1));
    this.global.value = String(Math.round((scale.global_low + scale.global_high) / 2));
  }

  async submit() {
    const scale = this.scale.value;
    const items = {};
    for (const select of this.items.querySelectorAll("select")) {
      if (select.value !== "") items[select.dataset.item] = Number(select.value);
    }
    const body = {
      start_s: Number(this.form.querySelector("#rating-start").value),
      end_s: Number(this.form.querySelector("#rating-end").value),
      text: this.form.querySelector("#rating-comment").value.trim(),
      rating: { scale, items, global_rating: Number(this.global.value) },
    };
    if (await this.save(body)) this.form.querySelector("#rating-comment").value = "";
  }
}

/** One line describing an annotation (a bookmark, a comment on a range, a rater's form). */
export function annotationText(a) {
  if (a.kind === "rating" && a.rating) {
    const scored = Object.keys(a.rating.items).length;
    return `${a.rating.scale} rating: global ${a.rating.global_rating}, ${scored} item${scored === 1 ? "" : "s"} scored${a.text ? ` — ${a.text}` : ""}`;
  }
  return a.text;
}

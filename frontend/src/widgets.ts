// One widget per question type of a label schema, driven by mouse or keyboard.
// Used by the annotate screen and by the schema editor's live preview.
import { el, clear } from "./dom";
import { t, formatNumber } from "./i18n";

export interface Question {
  key: string;
  type: "single_choice" | "multi_label" | "numeric" | "text" | "segments";
  title?: string;
  labels?: string[];
  intensity?: boolean;
  allow_empty?: boolean; // multi_label: "none of these" is an answer (the default)
  min?: number;
  max?: number;
  step?: number | null;
  max_length?: number;
  required?: boolean;
}

export interface Segment {
  start: number;
  end: number;
  label: string;
}

export type Answers = Record<string, unknown>;
export const INTENSITY_MAX = 3;

/** Whether a multi-label question takes "none of these" (an empty answer) as an answer; on unless the schema says no. */
export function allowsNone(q: Question): boolean {
  return q.type === "multi_label" && q.allow_empty !== false;
}

/** An explicit empty multi-label answer ("none of these"), as opposed to no answer at all. */
export function isNone(value: unknown): boolean {
  if (Array.isArray(value)) return value.length === 0;
  return value !== null && typeof value === "object" && Object.values(value as Record<string, unknown>).every((level) => level === 0);
}

function decimals(step: number): number {
  const text = String(step);
  return text.includes(".") ? text.split(".")[1].length : 0;
}

export function snap(q: Question, value: number): number {
  const lo = q.min ?? 0;
  const hi = q.max ?? 1;
  const step = q.step ?? (hi - lo) / 100;
  const snapped = lo + Math.round((value - lo) / step) * step;
  return Number(Math.min(hi, Math.max(lo, snapped)).toFixed(decimals(step) + 2));
}

/** The form for a schema: keeps the answers, renders them, and applies keyboard commands to the active question. */
export class QuestionForm {
  readonly root: HTMLElement;
  answers: Answers = {};
  active = 0;
  /** Label chosen for new time segments, per segments question. */
  segmentLabel: Record<string, string> = {};
  private blocks: HTMLElement[] = [];
  private errors: Record<string, string[]> = {};

  constructor(
    readonly questions: Question[],
    private onChange: () => void = () => undefined,
  ) {
    this.root = el("div", { class: "question-form" });
    for (const q of questions) {
      if (q.type === "segments" && q.labels?.length) this.segmentLabel[q.key] = q.labels[0];
    }
    this.render();
  }

  get activeQuestion(): Question | undefined {
    return this.questions[this.active];
  }

  setAnswers(answers: Answers): void {
    this.answers = structuredClone(answers);
    this.render();
  }

  setErrors(errors: Record<string, string[]>): void {
    this.errors = errors;
    this.render();
    const first = this.questions.findIndex((q) => errors[q.key]);
    if (first >= 0) this.setActive(first);
  }

  setActive(index: number): void {
    if (!this.questions.length) return;
    this.active = (index + this.questions.length) % this.questions.length;
    this.blocks.forEach((block, i) => block.classList.toggle("active", i === this.active));
    this.blocks[this.active]?.scrollIntoView({ block: "nearest" });
  }

  private changed(): void {
    delete this.errors[this.activeQuestion?.key ?? ""];
    this.render();
    this.onChange();
  }

  // --- mutations (shared by mouse and keyboard) ------------------------------------------------------------------

  chooseLabel(q: Question, label: string): void {
    if (q.type === "single_choice") {
      this.answers[q.key] = this.answers[q.key] === label ? undefined : label;
    } else if (q.type === "multi_label" && q.intensity) {
      const levels = { ...((this.answers[q.key] as Record<string, number>) ?? {}) };
      // Press again to raise the intensity 1 → 2 → 3 → 0; once more removes the label.
      if (!(label in levels)) levels[label] = 1;
      else if (levels[label] === 0) delete levels[label];
      else levels[label] = levels[label] >= INTENSITY_MAX ? 0 : levels[label] + 1;
      // Taking the last label away leaves the question unanswered; "none of these" is its own choice.
      this.answers[q.key] = Object.keys(levels).length ? levels : undefined;
    } else if (q.type === "multi_label") {
      const chosen = new Set((this.answers[q.key] as string[]) ?? []);
      if (chosen.has(label)) chosen.delete(label);
      else chosen.add(label);
      const list = (q.labels ?? []).filter((l) => chosen.has(l));
      this.answers[q.key] = list.length ? list : undefined;
    } else if (q.type === "segments") {
      this.segmentLabel[q.key] = label;
    }
    this.changed();
  }

  /** "None of these": the empty answer; choosing it again clears the question. */
  chooseNone(q: Question): void {
    if (!allowsNone(q)) return;
    const current = this.answers[q.key];
    this.answers[q.key] = current !== undefined && isNone(current) ? undefined : q.intensity ? {} : [];
    this.changed();
  }

  setIntensity(q: Question, label: string, level: number | null): void {
    const levels = { ...((this.answers[q.key] as Record<string, number>) ?? {}) };
    if (level === null) delete levels[label];
    else levels[label] = level;
    this.answers[q.key] = levels;
    this.changed();
  }

  setNumber(q: Question, value: number | undefined): void {
    this.answers[q.key] = value === undefined ? undefined : snap(q, value);
    this.changed();
  }

  stepNumber(q: Question, steps: number): void {
    const lo = q.min ?? 0;
    const hi = q.max ?? 1;
    const step = q.step ?? (hi - lo) / 100;
    const now = this.answers[q.key];
    const base = typeof now === "number" ? now : snap(q, (lo + hi) / 2) - steps * step;
    this.setNumber(q, base + steps * step);
  }

  addSegment(q: Question, start: number, end: number, label?: string): void {
    if (end - start < 0.01) return;
    const list = [...((this.answers[q.key] as Segment[]) ?? [])];
    list.push({ start: round3(start), end: round3(end), label: label ?? this.segmentLabel[q.key] });
    list.sort((a, b) => a.start - b.start || a.end - b.end);
    this.answers[q.key] = list;
    this.changed();
  }

  updateSegment(q: Question, index: number, start: number, end: number): void {
    const list = [...((this.answers[q.key] as Segment[]) ?? [])];
    if (!list[index]) return;
    list[index] = { ...list[index], start: round3(start), end: round3(end) };
    this.answers[q.key] = list;
    this.changed();
  }

  removeSegment(q: Question, index: number): void {
    const list = [...((this.answers[q.key] as Segment[]) ?? [])];
    list.splice(index, 1);
    this.answers[q.key] = list;
    this.changed();
  }

  segmentsQuestion(): Question | undefined {
    return this.questions.find((q) => q.type === "segments");
  }

  /** Answers without empty values, as the API wants them; "none of these" stays (an empty list or mapping). */
  payload(): Answers {
    const out: Answers = {};
    for (const q of this.questions) {
      const value = this.answers[q.key];
      if (value === undefined || value === null || value === "") continue;
      const empty = Array.isArray(value) ? value.length === 0 : typeof value === "object" && Object.keys(value as object).length === 0;
      if (empty && !allowsNone(q)) continue;
      out[q.key] = value;
    }
    return out;
  }

  /** Keyboard commands for the active question; true when the key was used. */
  handleKey(event: KeyboardEvent): boolean {
    const q = this.activeQuestion;
    if (!q) return false;
    if (event.key === "ArrowDown" || (event.key === "j" && !event.ctrlKey)) {
      this.setActive(this.active + 1);
      return true;
    }
    if (event.key === "ArrowUp" || (event.key === "k" && !event.ctrlKey)) {
      this.setActive(this.active - 1);
      return true;
    }
    const digit = /^Digit([0-9])$/.exec(event.code)?.[1] ?? (/^[0-9]$/.test(event.key) ? event.key : null);
    if (digit !== null && !event.ctrlKey && !event.altKey && !event.metaKey && q.labels?.length) {
      const label = q.labels[(Number(digit) + 9) % 10]; // 1..9 then 0 for the tenth label
      if (label) {
        this.chooseLabel(q, label);
        return true;
      }
    }
    if (event.key === "n" && !event.ctrlKey && !event.altKey && !event.metaKey && allowsNone(q)) {
      this.chooseNone(q);
      return true;
    }
    if (q.type === "numeric" && (event.key === "ArrowRight" || event.key === "ArrowLeft")) {
      const rtl = getComputedStyle(this.root).direction === "rtl";
      const forward = (event.key === "ArrowRight") !== rtl;
      this.stepNumber(q, (forward ? 1 : -1) * (event.shiftKey ? 10 : 1));
      return true;
    }
    if ((event.key === "Delete" || event.key === "Backspace") && q.type !== "text") {
      if (q.type === "segments") {
        const list = (this.answers[q.key] as Segment[]) ?? [];
        if (list.length) this.removeSegment(q, list.length - 1);
      } else {
        this.answers[q.key] = undefined;
        this.changed();
      }
      return true;
    }
    if (event.key === "t" && q.type === "text") {
      this.root.querySelector<HTMLTextAreaElement>(`textarea[data-key="${q.key}"]`)?.focus();
      return true;
    }
    return false;
  }

  focusText(): boolean {
    const index = this.questions.findIndex((q) => q.type === "text");
    if (index < 0) return false;
    this.setActive(index);
    this.root.querySelector<HTMLTextAreaElement>("textarea")?.focus();
    return true;
  }

  // --- rendering ---------------------------------------------------------------------------------------------------

  render(): void {
    const focusedKey = (document.activeElement as HTMLElement | null)?.dataset?.key;
    clear(this.root);
    this.blocks = this.questions.map((q, index) => this.renderQuestion(q, index));
    this.root.append(...this.blocks);
    this.setActive(Math.min(this.active, this.questions.length - 1));
    if (focusedKey) this.root.querySelector<HTMLElement>(`textarea[data-key="${focusedKey}"]`)?.focus();
  }

  private renderQuestion(q: Question, index: number): HTMLElement {
    const titleId = `q-${q.key}-title`;
    const block = el(
      "section",
      { class: `question question-${q.type}`, "data-question": q.key, role: "group", "aria-labelledby": titleId },
      el(
        "h3",
        { id: titleId, class: "question-title" },
        el("span", { class: "question-number", text: formatNumber(index + 1) }),
        el("span", { text: q.title || q.key }),
        q.required ? el("span", { class: "required", title: t("form.required"), text: "*" }) : null,
        el("span", { class: "question-hint", text: t(`hint.${q.type}${q.type === "multi_label" && q.intensity ? "_intensity" : ""}`) }),
      ),
    );
    block.addEventListener("click", () => this.setActive(index));
    if (q.type === "single_choice" || q.type === "multi_label") block.append(this.renderChoices(q));
    else if (q.type === "numeric") block.append(this.renderNumeric(q));
    else if (q.type === "text") block.append(this.renderText(q));
    else if (q.type === "segments") block.append(this.renderSegments(q));
    const errors = this.errors[q.key];
    if (errors?.length) {
      block.classList.add("has-error");
      block.append(el("p", { class: "field-error", role: "alert", "data-error-for": q.key, text: errors.join(" ") }));
    }
    return block;
  }

  private renderChoices(q: Question): HTMLElement {
    const list = el("div", { class: "choices" });
    const value = this.answers[q.key];
    (q.labels ?? []).forEach((label, i) => {
      let selected = false;
      let level: number | undefined;
      if (q.type === "single_choice") selected = value === label;
      else if (q.intensity) {
        const levels = (value as Record<string, number>) ?? {};
        selected = label in levels && !isNone(levels);
        level = levels[label];
      } else selected = ((value as string[]) ?? []).includes(label);
      const button = el(
        "button",
        {
          type: "button",
          class: `choice${selected ? " selected" : ""}`,
          "aria-pressed": selected ? "true" : "false",
          "data-label": label,
        },
        i < 10 ? el("kbd", { text: String((i + 1) % 10) }) : null,
        el("span", { class: "choice-label", text: label }),
      );
      button.addEventListener("click", (e) => {
        e.stopPropagation();
        this.chooseLabel(q, label);
      });
      const row = el("div", { class: "choice-row" }, button);
      if (q.type === "multi_label" && q.intensity && selected) {
        const dots = el("div", { class: "intensity", role: "radiogroup", "aria-label": t("form.intensity") });
        for (let l = 0; l <= INTENSITY_MAX; l++) {
          const dot = el("button", {
            type: "button",
            class: `level${level === l ? " on" : ""}`,
            role: "radio",
            "aria-checked": level === l ? "true" : "false",
            title: t(`intensity.${l}`),
            text: formatNumber(l),
          });
          dot.addEventListener("click", (e) => {
            e.stopPropagation();
            this.setIntensity(q, label, l);
          });
          dots.append(dot);
        }
        row.append(dots, el("span", { class: "intensity-name", text: t(`intensity.${level ?? 0}`) }));
      }
      list.append(row);
    });
    if (allowsNone(q)) {
      const none = value !== undefined && isNone(value);
      const button = el(
        "button",
        { type: "button", class: `choice none${none ? " selected" : ""}`, "aria-pressed": none ? "true" : "false", "data-none": "" },
        el("kbd", { text: "n" }),
        el("span", { class: "choice-label", text: t("form.none_of_these") }),
      );
      button.addEventListener("click", (e) => {
        e.stopPropagation();
        this.chooseNone(q);
      });
      list.append(el("div", { class: "choice-row" }, button));
    }
    return list;
  }

  private renderNumeric(q: Question): HTMLElement {
    const value = this.answers[q.key];
    const lo = q.min ?? 0;
    const hi = q.max ?? 1;
    const step = q.step ?? (hi - lo) / 100;
    const isSet = typeof value === "number";
    const slider = el("input", {
      type: "range",
      min: lo,
      max: hi,
      step,
      value: isSet ? (value as number) : (lo + hi) / 2,
      "data-key": q.key,
      "aria-label": q.title || q.key,
      class: isSet ? "" : "unset",
    });
    slider.addEventListener("input", () => this.setNumber(q, Number(slider.value)));
    slider.addEventListener("keydown", (e) => e.preventDefault()); // arrows go through the form's own handler
    const shown = el("output", { class: "numeric-value", text: isSet ? formatNumber(value as number, decimals(step)) : t("form.unset") });
    const clearButton = el("button", { type: "button", class: "link", text: t("form.clear") });
    clearButton.addEventListener("click", (e) => {
      e.stopPropagation();
      this.setNumber(q, undefined);
    });
    return el(
      "div",
      { class: "numeric" },
      el("span", { class: "numeric-end", text: formatNumber(lo, decimals(step)) }),
      slider,
      el("span", { class: "numeric-end", text: formatNumber(hi, decimals(step)) }),
      shown,
      isSet ? clearButton : null,
    );
  }

  private renderText(q: Question): HTMLElement {
    const area = el("textarea", {
      rows: 2,
      maxlength: q.max_length ?? 10000,
      "data-key": q.key,
      dir: "auto",
      "aria-label": q.title || q.key,
      placeholder: t("form.text_placeholder"),
    });
    area.value = (this.answers[q.key] as string) ?? "";
    area.addEventListener("input", () => {
      this.answers[q.key] = area.value;
      this.onChange();
    });
    return area;
  }

  private renderSegments(q: Question): HTMLElement {
    const wrap = el("div", { class: "segments" });
    wrap.append(this.renderChoices({ ...q, type: "single_choice" }));
    // In the segments question the chosen "single choice" is the label for new segments.
    wrap.querySelectorAll<HTMLButtonElement>(".choice").forEach((button) => {
      const on = button.dataset.label === this.segmentLabel[q.key];
      button.classList.toggle("selected", on);
      button.setAttribute("aria-pressed", on ? "true" : "false");
    });
    const list = el("ol", { class: "segment-list" });
    ((this.answers[q.key] as Segment[]) ?? []).forEach((seg, i) => {
      const remove = el("button", { type: "button", class: "link", title: t("form.remove"), text: "×" });
      remove.addEventListener("click", (e) => {
        e.stopPropagation();
        this.removeSegment(q, i);
      });
      list.append(
        el(
          "li",
          { "data-segment": i },
          el("span", { class: "segment-label", text: seg.label }),
          el("span", { class: "segment-time", dir: "ltr", text: `${seg.start.toFixed(2)}–${seg.end.toFixed(2)} s` }),
          remove,
        ),
      );
    });
    if (!list.children.length) list.append(el("li", { class: "muted", text: t("form.no_segments") }));
    wrap.append(list);
    return wrap;
  }
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

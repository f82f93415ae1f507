// The label-schema editor of "New project": questions and labels edited with a form (add, remove, reorder), templates
// for common emotion schemes, and the same schema as JSON for those who prefer it; both stay in sync. The API's errors
// land on the question they name and disappear as soon as that question is edited.
import { flatten } from "./api";
import { el, clear } from "./dom";
import { t } from "./i18n";
import type { Question } from "./widgets";

type RawQuestion = Question & Record<string, unknown>;

const EKMAN = ["anger", "disgust", "fear", "joy", "sadness", "surprise"];
const PLUTCHIK = ["joy", "trust", "fear", "surprise", "sadness", "disgust", "anger", "anticipation"];
const GOEMOTIONS = [
  "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity", "desire",
  "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear", "gratitude", "grief", "joy", "love",
  "nervousness", "optimism", "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
];

function dimensions(max: number, step: number): RawQuestion[] {
  return ["valence", "arousal", "dominance"].map((key) => ({ key, type: "numeric", title: key[0].toUpperCase() + key.slice(1), min: 1, max, step, required: true }));
}

/** Common emotion schemes (Ekman 1992, Plutchik 1980, GoEmotions: Demszky et al. 2020, BRIGHTER/SemEval-2025 Task 11
 * intensities 0–3, EmoBank VAD 1–5, SAM 1–9 scales, EmoBank's writer/reader perspectives). */
export const TEMPLATES: { id: string; questions: RawQuestion[]; perspectives: string[] }[] = [
  { id: "ekman", questions: [{ key: "emotion", type: "single_choice", title: "Emotion", labels: [...EKMAN, "neutral"], required: true }], perspectives: [] },
  { id: "plutchik", questions: [{ key: "emotions", type: "multi_label", title: "Emotions", labels: PLUTCHIK }], perspectives: [] },
  { id: "goemotions", questions: [{ key: "emotions", type: "multi_label", title: "Emotions", labels: GOEMOTIONS }], perspectives: [] },
  { id: "intensity", questions: [{ key: "emotions", type: "multi_label", title: "Emotions and their intensity (0–3)", labels: EKMAN, intensity: true }], perspectives: [] },
  { id: "vad5", questions: dimensions(5, 0.5), perspectives: [] },
  { id: "vad9", questions: dimensions(9, 1), perspectives: [] },
  {
    id: "perspectives",
    questions: [{ key: "emotion", type: "single_choice", title: "Emotion", labels: [...EKMAN, "neutral"], required: true }, ...dimensions(5, 0.5)],
    perspectives: ["writer", "reader"],
  },
];

const TYPES: Question["type"][] = ["single_choice", "multi_label", "numeric", "text", "segments"];
const WITH_LABELS = ["single_choice", "multi_label", "segments"];

function defaults(type: Question["type"], index: number): RawQuestion {
  const key = `question_${index + 1}`;
  if (type === "numeric") return { key, type, title: "", min: 1, max: 5, step: 1 };
  if (type === "text") return { key, type, title: "", max_length: 500 };
  return { key, type, title: "", labels: [] };
}

export class SchemaEditor {
  readonly root = el("div", { class: "schema-form" });
  readonly json = el("textarea", { rows: 12, class: "code", spellcheck: "false", dir: "ltr", name: "schema_questions" });
  readonly jsonNote = el("p", { class: "muted parse-note", role: "status" });
  questions: RawQuestion[];
  private errors: Record<string, string[]> = {};

  constructor(
    initial: Question[],
    private onChange: () => void,
  ) {
    this.questions = structuredClone(initial) as RawQuestion[];
    this.json.addEventListener("input", () => this.fromJson());
    this.render();
    this.syncJson();
  }

  /** A template's questions replace the current ones. */
  use(templateId: string): string[] {
    const template = TEMPLATES.find((x) => x.id === templateId);
    if (!template) return [];
    this.questions = structuredClone(template.questions);
    this.errors = {};
    this.changed(true);
    return template.perspectives;
  }

  /** The JSON text when it does not parse (the API then says why), else the questions. */
  payload(): unknown {
    try {
      JSON.parse(this.json.value);
    } catch {
      return this.json.value;
    }
    return this.questions;
  }

  /** Put the API's errors on the questions they name ("questions[2].labels"); return the ones no question claims. */
  showErrors(body: Record<string, unknown>): string[] {
    this.errors = {};
    const rest: string[] = [];
    for (const [field, messages] of Object.entries(body)) {
      const match = /^questions\[(\d+)\](?:\.(\w+))?/.exec(field);
      if (match && this.questions[Number(match[1])]) {
        (this.errors[`${match[1]}`] ??= []).push(`${match[2] ? `${match[2]}: ` : ""}${flatten(messages).join(" ")}`);
      } else if (field === "questions") {
        (this.errors.all ??= []).push(flatten(messages).join(" "));
      } else {
        rest.push(`${field}: ${flatten(messages).join(" ")}`);
      }
    }
    this.render();
    return rest;
  }

  private fromJson(): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(this.json.value);
    } catch (error) {
      this.jsonNote.textContent = t("create.json_error", { error: String((error as Error).message) });
      return;
    }
    if (!Array.isArray(parsed)) {
      this.jsonNote.textContent = t("create.json_not_list");
      return;
    }
    this.jsonNote.textContent = "";
    this.questions = parsed.filter((q): q is RawQuestion => q && typeof q === "object");
    this.errors = {};
    this.render();
    this.onChange();
  }

  private syncJson(): void {
    this.json.value = JSON.stringify(this.questions, null, 2);
    this.jsonNote.textContent = "";
  }

  /** After an edit: the JSON and the preview follow; ``structure`` re-renders the form (never while typing a name). */
  private changed(structure: boolean, index?: number): void {
    if (index !== undefined && this.errors[String(index)]) {
      delete this.errors[String(index)]; // the reason was about this question: it is being fixed
      this.root.querySelector(`[data-question-index="${index}"] .question-errors`)?.replaceChildren();
    }
    delete this.errors.all;
    if (structure) this.render();
    this.syncJson();
    this.onChange();
  }

  render(): void {
    clear(this.root);
    if (this.errors.all) this.root.append(el("p", { class: "field-error", "data-error-for": "questions", text: this.errors.all.join(" ") }));
    this.questions.forEach((q, index) => this.root.append(this.questionCard(q, index)));
    const type = el("select", { "aria-label": t("schema.type") });
    for (const value of TYPES) type.append(el("option", { value, text: t(`schema.type_${value}`) }));
    const add = el("button", { type: "button", class: "button small", "data-action": "add-question", text: t("schema.add_question") });
    add.addEventListener("click", () => {
      this.questions.push(defaults(type.value as Question["type"], this.questions.length));
      this.changed(true);
      this.root.querySelector<HTMLInputElement>(`[data-question-index="${this.questions.length - 1}"] input[name=key]`)?.focus();
    });
    this.root.append(el("div", { class: "row add-question" }, type, add));
  }

  private move<T>(list: T[], from: number, to: number): boolean {
    if (to < 0 || to >= list.length) return false;
    const [item] = list.splice(from, 1);
    list.splice(to, 0, item);
    return true;
  }

  private iconButton(text: string, label: string, action: () => void, attrs: Record<string, string | number> = {}): HTMLButtonElement {
    const button = el("button", { type: "button", class: "button small icon", title: label, "aria-label": label, text, ...attrs });
    button.addEventListener("click", action);
    return button;
  }

  private questionCard(q: RawQuestion, index: number): HTMLElement {
    const card = el("fieldset", { class: "question-card", "data-question-index": index });
    const key = el("input", { type: "text", name: "key", value: q.key ?? "", maxlength: 63, pattern: "[a-z][a-z0-9_]*", dir: "ltr" });
    key.addEventListener("input", () => {
      q.key = key.value.trim();
      this.changed(false, index);
    });
    const title = el("input", { type: "text", name: "title", value: q.title ?? "", maxlength: 200, dir: "auto" });
    title.addEventListener("input", () => {
      q.title = title.value;
      this.changed(false, index);
    });
    const type = el("select", { name: "type" });
    for (const value of TYPES) type.append(el("option", { value, text: t(`schema.type_${value}`), selected: value === q.type }));
    type.addEventListener("change", () => {
      const fresh = defaults(type.value as Question["type"], index);
      // Keep what still applies (key, title, required, labels between choice types).
      this.questions[index] = { ...fresh, key: q.key, title: q.title, ...(q.required ? { required: true } : {}), ...(WITH_LABELS.includes(fresh.type) && q.labels ? { labels: q.labels } : {}) };
      this.changed(true, index);
    });
    const required = el("input", { type: "checkbox", name: "required", checked: Boolean(q.required) });
    required.addEventListener("change", () => {
      if (required.checked) q.required = true;
      else delete q.required;
      this.changed(false, index);
    });
    const legend = el(
      "legend",
      {},
      el("span", { text: t("schema.question_n", { n: index + 1 }) }),
      this.iconButton("↑", t("schema.move_up"), () => this.move(this.questions, index, index - 1) && this.changed(true), { "data-action": "question-up" }),
      this.iconButton("↓", t("schema.move_down"), () => this.move(this.questions, index, index + 1) && this.changed(true), { "data-action": "question-down" }),
      this.iconButton("×", t("schema.remove_question"), () => {
        this.questions.splice(index, 1);
        this.errors = {};
        this.changed(true);
      }, { "data-action": "question-remove" }),
    );
    card.append(
      legend,
      el(
        "div",
        { class: "question-fields" },
        el("label", { class: "field" }, el("span", { class: "field-label", text: t("schema.key") }), key),
        el("label", { class: "field" }, el("span", { class: "field-label", text: t("schema.title") }), title),
        el("label", { class: "field" }, el("span", { class: "field-label", text: t("schema.type") }), type),
        el("label", { class: "check" }, required, el("span", { text: t("schema.required") })),
      ),
    );
    if (WITH_LABELS.includes(q.type)) card.append(this.labelsEditor(q, index));
    if (q.type === "multi_label") {
      const intensity = el("input", { type: "checkbox", name: "intensity", checked: Boolean(q.intensity) });
      intensity.addEventListener("change", () => {
        if (intensity.checked) q.intensity = true;
        else delete q.intensity;
        this.changed(false, index);
      });
      card.append(el("label", { class: "check" }, intensity, el("span", { text: t("schema.intensity") })));
    }
    if (q.type === "numeric") {
      const number = (name: "min" | "max" | "step"): HTMLElement => {
        const input = el("input", { type: "number", name, value: q[name] ?? "", step: "any" });
        input.addEventListener("input", () => {
          if (input.value === "") delete q[name];
          else q[name] = Number(input.value);
          this.changed(false, index);
        });
        return el("label", { class: "field" }, el("span", { class: "field-label", text: t(`schema.${name}`) }), input);
      };
      card.append(el("div", { class: "question-fields" }, number("min"), number("max"), number("step")));
    }
    if (q.type === "text") {
      const length = el("input", { type: "number", name: "max_length", min: 1, max: 10000, value: q.max_length ?? "" });
      length.addEventListener("input", () => {
        q.max_length = Number(length.value);
        this.changed(false, index);
      });
      card.append(el("label", { class: "field" }, el("span", { class: "field-label", text: t("schema.max_length") }), length));
    }
    card.append(el("div", { class: "question-errors", role: "alert" }, ...(this.errors[String(index)] ?? []).map((m) => el("p", { class: "field-error", "data-error-for": `questions[${index}]`, text: m }))));
    return card;
  }

  private labelsEditor(q: RawQuestion, index: number): HTMLElement {
    const labels = (q.labels ??= []);
    const list = el("ol", { class: "label-list" });
    labels.forEach((label, i) => {
      const input = el("input", { type: "text", value: label, maxlength: 100, dir: "auto", "aria-label": t("schema.label_n", { n: i + 1 }), name: "label" });
      input.addEventListener("input", () => {
        labels[i] = input.value;
        this.changed(false, index);
      });
      list.append(
        el(
          "li",
          {},
          input,
          this.iconButton("↑", t("schema.move_up"), () => this.move(labels, i, i - 1) && this.changed(true, index)),
          this.iconButton("↓", t("schema.move_down"), () => this.move(labels, i, i + 1) && this.changed(true, index)),
          this.iconButton("×", t("schema.remove_label"), () => {
            labels.splice(i, 1);
            this.changed(true, index);
          }),
        ),
      );
    });
    const fresh = el("input", { type: "text", maxlength: 100, dir: "auto", placeholder: t("schema.new_label"), name: "new_label" });
    const add = (): void => {
      const names = fresh.value.split(",").map((s) => s.trim()).filter(Boolean);
      if (!names.length) return;
      labels.push(...names);
      this.changed(true, index);
      this.root.querySelector<HTMLInputElement>(`[data-question-index="${index}"] input[name=new_label]`)?.focus();
    };
    fresh.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        add();
      }
    });
    const addButton = el("button", { type: "button", class: "button small", "data-action": "add-label", text: t("schema.add_label") });
    addButton.addEventListener("click", add);
    return el("div", { class: "labels-editor" }, el("span", { class: "field-label", text: t("schema.labels") }), list, el("div", { class: "row" }, fresh, addButton));
  }
}

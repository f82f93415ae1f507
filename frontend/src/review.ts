// Review queue and adjudication (/projects/<id>/review/), for the project's reviewers and leads: the items the
// quality policy sends to review (flags, ties left open, low agreement), one item side by side (every annotation,
// the aggregated answer and the reason it is here), and a decision form made of the schema's own widgets. A decision
// (POST …/review-queue/<utterance>/adjudicate/) overrides the aggregation in the gold export. Text from the server
// goes in as text only.
import { api, ApiError, errorText, flatten } from "./api";
import { $, el, clear } from "./dom";
import { formatNumber, onLanguageChange, t } from "./i18n";
import { QuestionForm, type Answers, type Question } from "./widgets";
import "./review.css";

interface QueueEntry {
  utterance_id: number;
  text: string;
  language: string;
  direction: string;
  n_annotations: number;
  open_flags: number;
  open_ties: number;
  min_confidence: number | null;
  reasons: string[];
}

interface ReviewAnnotation {
  id: number;
  origin: string;
  rater: string;
  perspective: string;
  value: Record<string, unknown>;
}

interface Aggregated {
  question_key: string;
  perspective: string;
  value: unknown;
  confidence: number | null;
  method: string;
  n_ratings: number;
}

interface ReviewItem {
  utterance: { id: number; text: string; language: string; direction: string };
  questions: Question[];
  perspectives: string[];
  annotations: ReviewAnnotation[];
  flags: { id: number; note: string; created_by: string; resolved: boolean }[];
  aggregated: Aggregated[];
  adjudications: { perspective: string; value: Record<string, unknown>; note: string; decided_by: string }[];
}

const REASONS = ["flagged", "tie", "low_agreement"];

/** An answer as text: a label, labels (with intensity), "none of these", a number; null levels are "no answer". */
export function answerText(value: unknown): string {
  if (value === null || value === undefined) return "—";
  if (Array.isArray(value)) return value.length ? value.map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v))).join(", ") : t("review.none_of_these");
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    const chosen = entries.filter(([, level]) => typeof level === "number" && level > 0).map(([label, level]) => `${label} ${level}`);
    const missing = entries.filter(([, level]) => level === null).map(([label]) => label);
    const parts = [chosen.length ? chosen.join(", ") : t("review.none_of_these")];
    if (missing.length) parts.push(t("review.unanswered", { labels: missing.join(", ") }));
    return parts.join(" · ");
  }
  return String(value);
}

export function mountReview(): void {
  const root = $("#review");
  const projectId = Number(root.dataset.projectId);
  const base = `/api/projects/${projectId}/review-queue/`;
  let queue: QueueEntry[] = [];
  let item: ReviewItem | null = null;
  let form: QuestionForm | null = null;
  let perspective = "";
  let note = "";
  let loadError = "";
  let status = "";
  let errors: Record<string, string[]> = {};
  let saving = false;

  const loadQueue = async (): Promise<void> => {
    try {
      const page = await api<{ results: QueueEntry[] }>("GET", base);
      queue = page.results;
      loadError = "";
    } catch (error) {
      loadError = errorText(error);
    }
  };

  const open = async (utteranceId: number): Promise<void> => {
    try {
      item = await api<ReviewItem>("GET", `${base}${utteranceId}/`);
    } catch (error) {
      status = errorText(error);
      render();
      return;
    }
    perspective = item.perspectives[0] ?? "";
    note = "";
    errors = {};
    status = "";
    const gradable = item.questions.filter((q) => ["single_choice", "multi_label", "numeric", "text"].includes(q.type));
    form = new QuestionForm(gradable);
    const start: Answers = {};
    for (const row of item.aggregated) if (row.perspective === perspective && row.value !== null) start[row.question_key] = row.value;
    const earlier = item.adjudications.find((a) => a.perspective === perspective);
    form.setAnswers(earlier ? earlier.value : start);
    if (earlier) note = earlier.note;
    render();
    document.getElementById("review-item-title")?.focus();
  };

  const decide = async (): Promise<void> => {
    if (!item || !form || saving) return;
    const current = form;
    saving = true;
    errors = {};
    render();
    try {
      await api("POST", `${base}${item.utterance.id}/adjudicate/`, { value: current.payload(), perspective, note });
      status = t("review.saved", { id: item.utterance.id });
      item = null;
      form = null;
      await loadQueue();
    } catch (error) {
      if (error instanceof ApiError && error.status === 400 && error.body && typeof error.body === "object") {
        const body = error.body as Record<string, unknown>;
        const answers = (body.value && typeof body.value === "object" ? body.value : {}) as Record<string, unknown>;
        current.setErrors(Object.fromEntries(Object.entries(answers).map(([k, v]) => [k, flatten(v)])));
        errors = Object.fromEntries(Object.entries(body).filter(([k]) => k !== "value").map(([k, v]) => [k, flatten(v)]));
        if (typeof body.value === "string" || Array.isArray(body.value)) errors.value = flatten(body.value);
      } else errors = { general: [errorText(error)] };
    } finally {
      saving = false;
      render();
    }
  };

  const queueList = (): HTMLElement => {
    if (!queue.length) return el("p", { class: "muted", id: "review-queue", text: t("review.empty") });
    return el(
      "ul",
      { class: "review-queue", id: "review-queue" },
      ...queue.map((entry) => {
        const button = el(
          "button",
          { type: "button", class: `review-entry${item?.utterance.id === entry.utterance_id ? " current" : ""}`, "data-utterance": entry.utterance_id },
          el("span", { class: "review-text", dir: entry.direction, lang: entry.language, text: entry.text }),
          el(
            "span",
            { class: "review-reasons" },
            ...entry.reasons.filter((r) => REASONS.includes(r)).map((r) => el("span", { class: `badge reason-${r}`, "data-reason": r, text: t(`review.reason_${r}`) })),
            el("span", { class: "muted", text: t("review.n_annotations", { n: formatNumber(entry.n_annotations) }) }),
          ),
        );
        button.addEventListener("click", () => void open(entry.utterance_id));
        return el("li", {}, button);
      }),
    );
  };

  const itemPanel = (): HTMLElement | null => {
    if (!item || !form) return null;
    const current = item;
    const rows = current.annotations
      .filter((a) => a.perspective === perspective)
      .map((a) => el("tr", { "data-annotation": a.id }, el("td", { text: a.rater }), el("td", { text: t(`review.origin_${a.origin}`) }), ...form!.questions.map((q) => el("td", { text: answerText(a.value[q.key]) }))));
    const aggregated = current.aggregated.filter((a) => a.perspective === perspective);
    const table = el(
      "table",
      { class: "data compact review-annotations" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col", text: t("review.rater") }), el("th", { scope: "col", text: t("review.origin") }), ...form.questions.map((q) => el("th", { scope: "col", text: q.title || q.key })))),
      el("tbody", {}, ...rows),
      aggregated.length
        ? el(
            "tfoot",
            {},
            el(
              "tr",
              {},
              el("th", { scope: "row", text: t("review.aggregated") }),
              el("td", { text: aggregated[0]?.method ?? "" }),
              ...form.questions.map((q) => {
                const row = aggregated.find((a) => a.question_key === q.key);
                return el("td", { text: row ? (row.value === null ? t("review.tie_open") : answerText(row.value)) : "—" });
              }),
            ),
          )
        : null,
    );
    const perspectiveSelect = current.perspectives.length
      ? el("label", { class: "field" }, el("span", { class: "field-label", text: t("review.perspective") }), (() => {
          const select = el("select", { name: "perspective" }, ...current.perspectives.map((p) => el("option", { value: p, text: p, selected: p === perspective })));
          select.addEventListener("change", () => {
            perspective = select.value;
            render();
          });
          return select;
        })())
      : null;
    const noteBox = el("textarea", { name: "note", rows: 2, maxlength: 2000, dir: "auto", placeholder: t("review.note_placeholder") });
    noteBox.value = note;
    noteBox.addEventListener("input", () => (note = noteBox.value));
    const save = el("button", { type: "submit", class: "button primary", "data-action": "adjudicate", text: t(saving ? "review.saving" : "review.decide") });
    save.disabled = saving;
    const decision = el(
      "form",
      { class: "review-decision", id: "review-decision", novalidate: true },
      el("h3", { text: t("review.decision") }),
      el("p", { class: "muted", text: t("review.decision_note") }),
      perspectiveSelect,
      form.root,
      el("label", { class: "field" }, el("span", { class: "field-label", text: t("review.note") }), noteBox),
      ...Object.entries(errors).map(([k, v]) => el("p", { class: "field-error", role: "alert", text: `${k === "general" ? "" : `${k}: `}${v.join(" ")}` })),
      save,
    );
    decision.addEventListener("submit", (event) => {
      event.preventDefault();
      void decide();
    });
    return el(
      "section",
      { class: "review-item", "aria-labelledby": "review-item-title" },
      el("h2", { id: "review-item-title", tabindex: -1, text: t("review.item", { id: current.utterance.id }) }),
      el("p", { class: "review-utterance", dir: current.utterance.direction, lang: current.utterance.language, text: current.utterance.text }),
      ...current.flags.filter((f) => !f.resolved).map((f) => el("p", { class: "review-flag", text: t("review.flag", { who: f.created_by, note: f.note }) })),
      table,
      decision,
    );
  };

  const render = (): void => {
    clear(root);
    root.append(
      el(
        "div",
        { class: "dash-head" },
        el("h1", { text: t("review.title") }),
        el("div", { class: "row" }, el("a", { class: "button", href: `/projects/${projectId}/dashboard/`, text: t("review.dashboard") })),
      ),
      el("p", { class: "muted", text: t("review.intro") }),
      el("p", { class: "review-status", role: "status", "aria-live": "polite", text: status }),
    );
    if (loadError) {
      root.append(el("p", { class: "field-error", role: "alert", text: loadError }));
      return;
    }
    root.append(el("div", { class: "review-layout" }, el("section", { class: "review-list" }, el("h2", { text: t("review.queue") }), queueList()), itemPanel()));
  };

  onLanguageChange(() => {
    form?.render();
    render();
  });
  void loadQueue().then(render);
}

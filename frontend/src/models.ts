// Lead screen "Models": the model catalogue and the project's registered models, registering one (with a label
// mapping onto the schema), training a classifier head on the project's human labels, pre-annotation and
// transcription jobs with live progress, the suggestion policy, and per-label score distributions.
// Everything user- or model-provided goes in through textContent and attribute values only.
import { api, apiList, ApiError, errorText, flatten } from "./api";
import { barChart, chartFigure, histogram, type BarRow } from "./charts";
import { $, el, clear } from "./dom";
import { formatNumber, onLanguageChange, t } from "./i18n";
import "./models.css";

interface CatalogueEntry {
  id: string;
  task: string;
  languages: string[];
  labels: string[];
  license: string;
  source: string;
  description: string;
  available: boolean;
  reason: string;
  language_fit: "all" | "some" | "none";
  language_warning: string;
}

/** A trained head's quality on items it never saw (a held-out split, or k-fold cross-validation when none). */
interface Evaluation {
  method?: string;
  split?: string;
  folds?: number;
  labels_from?: string;
  n_items?: number;
  macro_f1?: number | null;
  uar?: number | null;
  accuracy?: number | null;
  ece?: number | null;
  per_label_f1?: Record<string, number>;
  confusion?: { labels: string[]; matrix: number[][] };
  reliability?: { lower: number; upper: number; count: number; mean_confidence: number | null; accuracy: number | null }[];
  reason?: string;
  splits?: Record<string, Evaluation>;
}

interface ProjectModel {
  id: number;
  card_id: string;
  task: string;
  model_version: string;
  question_key: string;
  label_mapping: Record<string, unknown>;
  head_file: string;
  evaluation: Evaluation;
  training: {
    examples?: number;
    train_accuracy?: number;
    labels?: string[];
    splits?: string[];
    synthetic_allowed?: boolean;
    label_sources?: { human?: number; llm?: Record<string, number>; model?: Record<string, number> };
  } & Record<string, unknown>;
  created_by: string | null;
  created_at: string;
  warnings?: string[];
}

interface Job {
  id: number;
  kind: string;
  status: string;
  created_by: string | null;
  progress_done: number;
  progress_total: number;
  counts: Record<string, number>;
  error_count: number;
  message: string;
  result: {
    throughput?: { items_per_second?: number; audio_seconds_per_second?: number; elapsed_seconds?: number };
    trained_head?: { model_version: string; examples?: number; train_accuracy?: number; evaluation?: Evaluation } & ProjectModel["training"];
    model_version?: string;
    asr_model_version?: string;
  } & Record<string, unknown>;
  created_at: string;
  duration_s: number | null;
}

interface JobErrorRow {
  id: number;
  file: string;
  row: number | null;
  column: string;
  reason: string;
}

interface Histogram {
  edges: number[];
  counts: number[];
}

interface ModelSummary {
  model_version: string;
  task: string;
  question: string;
  count: number;
  truncated: boolean;
  histograms: Record<string, Histogram>;
  uncertainty: Histogram;
  top_labels: Record<string, number>;
}

interface Summary {
  bins: number;
  models: ModelSummary[];
}

interface Question {
  key: string;
  type: string;
  title?: string;
  labels?: string[];
}

interface Project {
  id: number;
  name: string;
  schema_version: number;
  suggestion_policy: string;
  prediction_model_version: string;
}

const MODEL_JOB_KINDS = ["preannotate", "transcribe"];
const FINISHED = ["succeeded", "failed", "cancelled"];
const PREDICTING_TASKS = ["text_emotion", "speech_emotion_categorical", "speech_emotion_dimensional"];
const CATEGORICAL_TASKS = ["text_emotion", "speech_emotion_categorical"];
const POLL_MS = 1000;
const MAX_JOBS_SHOWN = 8;
const MAX_ERRORS_SHOWN = 50;

/** A translated string, or the fallback when the catalog has no such key (e.g. a count name the API added later). */
function tOr(key: string, fallback: string, params: Record<string, string | number> = {}): string {
  const text = t(key, params);
  return text === key ? fallback : text;
}

function taskName(task: string): string {
  return tOr(`models.task_${task}`, task);
}

function formatTime(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(document.documentElement.lang || undefined);
}

const score = (value: number | null | undefined): string => (typeof value === "number" ? formatNumber(value, 2) : "—");

/** One line on how good a head is on items it never saw: held-out split first, k-fold when there is none. */
function evaluationText(evaluation: Evaluation | undefined): string {
  if (!evaluation || !evaluation.method) return "—";
  if (evaluation.method === "none" || !evaluation.n_items) return t("models.no_heldout", { reason: evaluation.reason ?? "" });
  const params = {
    f1: score(evaluation.macro_f1),
    uar: score(evaluation.uar),
    n: formatNumber(evaluation.n_items ?? 0),
    split: evaluation.split ?? "",
    folds: evaluation.folds ?? 5,
    labels: evaluation.labels_from ?? "",
  };
  return evaluation.method === "k_fold" ? t("models.kfold_info", params) : t("models.heldout_info", params);
}

/** How a head was trained: splits, where its labels came from, and its accuracy on its own training items. */
function trainingText(training: ProjectModel["training"] | undefined): string {
  if (!training || typeof training.examples !== "number") return "—";
  const sources = training.label_sources ?? {};
  const parts: string[] = [];
  if (sources.human) parts.push(t("models.source_human", { n: formatNumber(sources.human) }));
  for (const [origin, versions] of [["llm", sources.llm], ["model", sources.model]] as const) {
    for (const [version, n] of Object.entries(versions ?? {})) parts.push(t(`models.source_${origin}`, { n: formatNumber(n), version }));
  }
  return t("models.training_info", {
    examples: formatNumber(training.examples),
    splits: (training.splits ?? ["train"]).join(" + "),
    sources: parts.join(", ") || "—",
    accuracy: formatNumber(100 * Number(training.train_accuracy ?? 0), 1),
  });
}

/** Per-label F1, the confusion matrix and the reliability diagram (as tables) of one evaluation. */
function evaluationDetails(evaluation: Evaluation): HTMLElement | null {
  if (!evaluation.n_items) return null;
  const blocks: HTMLElement[] = [];
  const f1 = Object.entries(evaluation.per_label_f1 ?? {});
  if (f1.length) {
    blocks.push(el("table", { class: "data compact per-label-f1" },
      el("caption", { text: t("models.per_label_f1") }),
      el("thead", {}, el("tr", {}, el("th", { scope: "col", text: t("models.label") }), el("th", { scope: "col", text: "F1" }))),
      el("tbody", {}, ...f1.map(([label, value]) => el("tr", {}, el("th", { scope: "row", text: label }), el("td", { text: score(value) }))))));
  }
  const confusion = evaluation.confusion;
  if (confusion && confusion.labels.length) {
    blocks.push(el("table", { class: "data compact confusion" },
      el("caption", { text: t("models.confusion") }),
      el("thead", {}, el("tr", {}, el("th", { scope: "col", text: t("models.true_vs_predicted") }), ...confusion.labels.map((l) => el("th", { scope: "col", text: l })))),
      el("tbody", {}, ...confusion.matrix.map((row, i) => el("tr", {}, el("th", { scope: "row", text: confusion.labels[i] }), ...row.map((n) => el("td", { text: formatNumber(n) })))))));
  }
  const bins = (evaluation.reliability ?? []).filter((b) => b.count > 0);
  if (bins.length) {
    blocks.push(el("table", { class: "data compact reliability" },
      el("caption", { text: t("models.reliability", { ece: score(evaluation.ece) }) }),
      el("thead", {}, el("tr", {}, ...["models.confidence_bin", "models.mean_confidence", "models.bin_accuracy", "models.count"].map((k) => el("th", { scope: "col", text: t(k) })))),
      el("tbody", {}, ...bins.map((b) => el("tr", {},
        el("td", { text: `${formatNumber(b.lower, 1)} – ${formatNumber(b.upper, 1)}` }),
        el("td", { text: score(b.mean_confidence) }), el("td", { text: score(b.accuracy) }), el("td", { text: formatNumber(b.count) }))))));
  }
  const others = Object.values(evaluation.splits ?? {}).filter((e) => e.split !== evaluation.split);
  return el("details", { class: "model-quality" },
    el("summary", { text: t("models.quality_details") }),
    ...blocks,
    ...others.map((other) => el("p", { class: "small", text: evaluationText(other) })));
}

/** A form field: label text, the control, an optional hint; API errors for `name` are shown inside it. */
function field(name: string, labelText: string, control: HTMLElement, hint?: string): HTMLElement {
  control.setAttribute("name", name);
  return el(
    "label",
    { class: "field", "data-field": name },
    el("span", { class: "field-label", text: labelText }),
    control,
    hint ? el("span", { class: "muted field-hint", text: hint }) : null,
  );
}

function fillSelect(select: HTMLSelectElement, values: [string, string][], emptyText?: string): void {
  const previous = select.value;
  clear(select);
  if (emptyText !== undefined) select.append(el("option", { value: "", text: emptyText }));
  for (const [value, text] of values) select.append(el("option", { value, text }));
  if ([...select.options].some((o) => o.value === previous)) select.value = previous;
}

/** Put a 400 body's messages next to the fields they name; the rest go into `general`. */
function showErrors(form: HTMLElement, general: HTMLElement, error: unknown): void {
  clearErrors(form, general);
  if (!(error instanceof ApiError) || error.status !== 400 || !error.body || typeof error.body !== "object") {
    general.append(el("p", { class: "field-error", text: errorText(error) }));
    return;
  }
  for (const [name, messages] of Object.entries(error.body as Record<string, unknown>)) {
    const root = name.split(/[.[]/)[0];
    const box = form.querySelector<HTMLElement>(`[data-field="${CSS.escape(root)}"]`);
    const text = flatten(messages).join(" ");
    if (box && !box.hidden) box.append(el("span", { class: "field-error", role: "alert", "data-error-for": root, text }));
    else general.append(el("p", { class: "field-error", text: `${name}: ${text}` }));
  }
}

function clearErrors(form: HTMLElement, general: HTMLElement): void {
  form.querySelectorAll(".field-error[data-error-for]").forEach((node) => node.remove());
  clear(general);
}

function checkbox(name: string, labelText: string, checked: boolean): { box: HTMLElement; input: HTMLInputElement } {
  const input = el("input", { type: "checkbox", name, checked });
  return { input, box: el("label", { class: "check", "data-field": name }, input, el("span", { text: labelText })) };
}

export function mountModels(): void {
  const root = $("#project-models");
  const projectId = Number(root.dataset.projectId);
  const base = `/api/projects/${projectId}`;
  let pollTimer: number | undefined;
  let generation = 0; // a language switch re-renders; stale async work checks this and stops

  const render = async (): Promise<void> => {
    generation += 1;
    const mine = generation;
    window.clearTimeout(pollTimer);
    clear(root);
    let project: Project;
    let questions: Question[] = [];
    let catalogue: CatalogueEntry[] = [];
    let registered: ProjectModel[] = [];
    try {
      let models: { registered: ProjectModel[]; catalogue: CatalogueEntry[] };
      let schemas: { versions: { id: number; questions: Question[] }[] }[];
      [project, models, schemas] = await Promise.all([
        api<Project>("GET", `${base}/`),
        api<{ registered: ProjectModel[]; catalogue: CatalogueEntry[] }>("GET", `${base}/models/`),
        apiList<{ versions: { id: number; questions: Question[] }[] }>("/api/schemas/"),
      ]);
      catalogue = models.catalogue;
      registered = models.registered;
      questions = schemas.flatMap((s) => s.versions).find((v) => v.id === project.schema_version)?.questions ?? [];
    } catch (error) {
      root.append(el("p", { class: "field-error", role: "alert", text: errorText(error) }));
      return;
    }
    if (mine !== generation) return;
    const categorical = questions.filter((q) => q.type === "single_choice" || q.type === "multi_label");
    const numeric = questions.filter((q) => q.type === "numeric");
    const questionText = (q: Question): string => (q.title && q.title !== q.key ? `${q.title} (${q.key})` : q.key);

    // --- header -------------------------------------------------------------------------------------------------
    root.append(
      el(
        "div",
        { class: "row models-head" },
        el("h1", { text: t("models.title", { project: project.name }) }),
        el("a", { class: "button small", href: `/projects/${projectId}/manage/`, text: t("projects.manage") }),
        el("a", { class: "button small", href: `/projects/${projectId}/dashboard/`, text: t("projects.dashboard") }),
      ),
      el("p", { class: "muted", text: t("models.intro") }),
    );

    // --- registered models ----------------------------------------------------------------------------------------
    const registeredBox = el("div", { id: "registered-models" });
    const renderRegistered = (): void => {
      clear(registeredBox);
      if (!registered.length) {
        registeredBox.append(el("p", { class: "muted", text: t("models.none_registered") }));
        return;
      }
      const head = ["models.version", "models.card", "models.task", "models.question", "models.heldout", "models.training", "models.created"];
      registeredBox.append(
        el(
          "table",
          { class: "data" },
          el("thead", {}, el("tr", {}, ...head.map((k) => el("th", { scope: "col", text: t(k) })))),
          el(
            "tbody",
            {},
            ...registered.map((m) => {
              return el(
                "tr",
                { "data-model-id": m.id },
                el("td", {}, el("code", { class: "version", text: m.model_version })),
                el("td", { text: m.card_id }),
                el("td", { text: taskName(m.task) }),
                el("td", { text: m.question_key || "—" }),
                el("td", { class: "heldout" }, el("span", { class: "heldout-summary", text: evaluationText(m.evaluation) }), m.evaluation ? evaluationDetails(m.evaluation) : null),
                el("td", { class: "training small", text: trainingText(m.training) }),
                el("td", { text: `${formatTime(m.created_at)}${m.created_by ? ` · ${m.created_by}` : ""}` }),
              );
            }),
          ),
        ),
      );
    };

    // --- register form ------------------------------------------------------------------------------------------------
    const registrable = catalogue.filter((c) => c.task !== "embedding");
    const embedders = catalogue.filter((c) => c.task === "embedding");
    const cardSelect = el("select", { id: "register-card" });
    fillSelect(
      cardSelect,
      registrable.map((c): [string, string] => [
        c.id,
        `${c.id} · ${taskName(c.task)}${c.available ? "" : ` · ${t("models.unavailable_short")}`}${c.language_fit === "all" ? "" : ` · ${t("models.language_mismatch_short")}`}`,
      ]),
    );
    const questionSelect = el("select", { id: "register-question" });
    fillSelect(questionSelect, categorical.map((q): [string, string] => [q.key, questionText(q)]));
    const questionField = field("question", t("models.question"), questionSelect, t("models.question_hint"));
    const byHand = checkbox("by_hand", t("models.map_by_hand"), false);
    const mappingBox = el("div", { class: "mapping", "data-field": "label_mapping" });
    const dropBox = el("div", { "data-field": "drop" });
    const mappingField = el("fieldset", { class: "mapping-field" }, el("legend", { text: t("models.label_mapping") }), byHand.box, mappingBox, dropBox);
    const cardInfo = el("div", { class: "card-info", "aria-live": "polite" });
    const registerGeneral = el("div", { class: "general-errors", role: "alert" });
    const registerStatus = el("p", { class: "muted", role: "status" });
    const registerSubmit = el("button", { type: "submit", class: "button primary", text: t("models.register_submit") });
    const registerForm = el(
      "form",
      { class: "models-form", id: "register-form", novalidate: true },
      field("card_id", t("models.card"), cardSelect),
      cardInfo,
      questionField,
      mappingField,
      registerGeneral,
      registerSubmit,
      registerStatus,
    );
    const chosenCard = (): CatalogueEntry | undefined => registrable.find((c) => c.id === cardSelect.value);
    const chosenQuestion = (): Question | undefined => categorical.find((q) => q.key === questionSelect.value);
    /** The mapping controls for the chosen card: categorical labels → project labels, dimensions → numeric questions. */
    const renderMapping = (): void => {
      clear(mappingBox);
      const card = chosenCard();
      clear(cardInfo);
      if (card) {
        cardInfo.append(
          el("p", { class: "muted", text: [card.description, card.license && `${t("models.license")}: ${card.license}`, card.source].filter(Boolean).join(" · ") }),
        );
        if (!card.available) cardInfo.append(el("p", { class: "warning", id: "register-unavailable", text: t("models.unavailable", { reason: card.reason }) }));
        if (card.language_warning) cardInfo.append(el("p", { class: "warning language-warning", text: card.language_warning }));
      }
      // A model that cannot load here cannot be registered: the button says so instead of a refusal after a click.
      const blocked = card !== undefined && !card.available;
      registerSubmit.disabled = blocked;
      registerSubmit.textContent = blocked ? t("models.register_unavailable") : t("models.register_submit");
      if (blocked) registerSubmit.setAttribute("aria-describedby", "register-unavailable");
      else registerSubmit.removeAttribute("aria-describedby");
      const task = card?.task ?? "";
      questionField.hidden = !CATEGORICAL_TASKS.includes(task);
      mappingField.hidden = task === "asr" || !card;
      byHand.box.hidden = task === "speech_emotion_dimensional" || (CATEGORICAL_TASKS.includes(task) && !card?.labels.length);
      if (!card || mappingField.hidden) return;
      if (task === "speech_emotion_dimensional") {
        for (const dimension of card.labels) {
          const select = el("select", { "data-source": dimension });
          fillSelect(select, numeric.map((q): [string, string] => [q.key, questionText(q)]), t("models.skip_dimension"));
          if (numeric.some((q) => q.key === dimension)) select.value = dimension;
          mappingBox.append(el("label", { class: "map-row" }, el("span", { class: "source-label", text: dimension }), el("span", { "aria-hidden": "true", text: "→" }), select));
        }
        return;
      }
      if (!card.labels.length) {
        const area = el("textarea", { rows: 4, class: "code", dir: "ltr", "data-free-mapping": "1", placeholder: "joy = joy\nanger = anger" });
        mappingBox.append(el("p", { class: "muted", text: t("models.free_mapping_hint") }), area);
        return;
      }
      if (!byHand.input.checked) {
        mappingBox.append(el("p", { class: "muted", text: t("models.map_by_name_hint") }));
        return;
      }
      const targets = chosenQuestion()?.labels ?? [];
      for (const label of card.labels) {
        const select = el("select", { "data-source": label });
        fillSelect(select, targets.map((l): [string, string] => [l, l]), t("models.drop_label"));
        select.value = targets.includes(label) ? label : "";
        mappingBox.append(el("label", { class: "map-row" }, el("span", { class: "source-label", text: label }), el("span", { "aria-hidden": "true", text: "→" }), select));
      }
    };
    cardSelect.addEventListener("change", () => {
      clearErrors(registerForm, registerGeneral);
      renderMapping();
    });
    questionSelect.addEventListener("change", renderMapping);
    byHand.input.addEventListener("change", renderMapping);
    registerForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const card = chosenCard();
      clearErrors(registerForm, registerGeneral);
      registerStatus.textContent = "";
      const body: Record<string, unknown> = { card_id: cardSelect.value };
      if (card && CATEGORICAL_TASKS.includes(card.task)) body.question = questionSelect.value;
      if (card?.task === "speech_emotion_dimensional") {
        const mapping: Record<string, string> = {};
        mappingBox.querySelectorAll<HTMLSelectElement>("select[data-source]").forEach((s) => {
          if (s.value) mapping[s.dataset.source ?? ""] = s.value;
        });
        body.label_mapping = mapping;
      } else if (card && CATEGORICAL_TASKS.includes(card.task)) {
        const free = mappingBox.querySelector<HTMLTextAreaElement>("textarea[data-free-mapping]");
        if (free) {
          const mapping: Record<string, string> = {};
          for (const line of free.value.split("\n")) {
            const [source, target] = line.split("=").map((part) => part.trim());
            if (source && target) mapping[source] = target;
          }
          body.label_mapping = mapping;
        } else if (byHand.input.checked) {
          const mapping: Record<string, string> = {};
          const drop: string[] = [];
          mappingBox.querySelectorAll<HTMLSelectElement>("select[data-source]").forEach((s) => {
            const source = s.dataset.source ?? "";
            if (s.value) mapping[source] = s.value;
            else drop.push(source);
          });
          body.label_mapping = mapping;
          body.drop = drop;
        }
      }
      registerSubmit.disabled = true;
      try {
        const model = await api<ProjectModel>("POST", `${base}/models/`, body);
        registerStatus.textContent = [t("models.registered_ok", { version: model.model_version }), ...(model.warnings ?? [])].join(" ");
        await refreshModels();
      } catch (error) {
        showErrors(registerForm, registerGeneral, error);
      } finally {
        registerSubmit.disabled = !(chosenCard()?.available ?? true);
      }
    });

    // --- catalogue --------------------------------------------------------------------------------------------------
    const catalogueList = el(
      "ul",
      { class: "catalogue", id: "catalogue" },
      ...catalogue.map((card) => {
        const item = el(
          "li",
          { class: `model-card${card.available ? "" : " unavailable"}`, "data-card": card.id },
          el("div", { class: "model-card-head" }, el("strong", { class: "card-id", text: card.id }), el("span", { class: "badge", text: taskName(card.task) })),
          el("p", { class: "muted small", text: [card.languages.join(", "), card.license].filter(Boolean).join(" · ") }),
          card.labels.length ? el("p", { class: "small labels", text: card.labels.join(", ") }) : null,
          card.description ? el("p", { class: "small", text: card.description }) : null,
          el("p", { class: `small ${card.available ? "ok" : "warning"}`, text: card.available ? t("models.available") : t("models.unavailable", { reason: card.reason }) }),
          card.language_warning ? el("p", { class: "small warning language-warning", text: card.language_warning }) : null,
        );
        const action = el("button", { type: "button", class: "button small", "data-action": card.task === "embedding" ? "train-with" : "choose" });
        action.textContent = card.task === "embedding" ? t("models.train_with") : t("models.choose");
        action.addEventListener("click", () => {
          if (card.task === "embedding") {
            feature.value = "text";
            embedderSelect.value = card.id;
            syncFeature();
            trainForm.scrollIntoView({ block: "nearest" });
            trainQuestion.focus();
          } else {
            cardSelect.value = card.id;
            clearErrors(registerForm, registerGeneral);
            renderMapping();
            registerForm.scrollIntoView({ block: "nearest" });
            cardSelect.focus();
          }
        });
        item.append(action);
        return item;
      }),
    );

    // --- train a head -------------------------------------------------------------------------------------------
    const trainQuestion = el("select", { id: "train-question" });
    fillSelect(trainQuestion, categorical.map((q): [string, string] => [q.key, questionText(q)]));
    const feature = el("select", { id: "train-feature" });
    fillSelect(feature, [["text", t("models.feature_text")], ["acoustic", t("models.feature_acoustic")]]);
    const embedderSelect = el("select", { id: "train-embedder" });
    fillSelect(embedderSelect, embedders.map((c): [string, string] => [c.id, `${c.id}${c.available ? "" : ` · ${t("models.unavailable_short")}`}`]));
    const embedderField = field("embedder", t("models.embedder"), embedderSelect);
    const trainWeak = checkbox("weak_labels", t("models.weak_labels"), false);
    const trainDev = checkbox("dev", t("models.train_on_dev"), false);
    const trainSynthetic = checkbox("synthetic", t("models.allow_synthetic"), false);
    const trainGeneral = el("div", { class: "general-errors", role: "alert" });
    const trainSubmit = el("button", { type: "submit", class: "button primary", text: t("models.train_submit") });
    const trainForm = el(
      "form",
      { class: "models-form", id: "train-form", novalidate: true },
      el("p", { class: "muted", text: t("models.train_intro") }),
      el("div", { "data-field": "train_head" }, field("question", t("models.question"), trainQuestion), field("feature", t("models.feature"), feature), embedderField),
      el("fieldset", { class: "train-data" }, el("legend", { text: t("models.train_data") }), el("p", { class: "muted small", text: t("models.train_data_hint") }), trainDev.box, trainSynthetic.box),
      trainWeak.box,
      el("p", { class: "muted", text: t("models.skip_done_hint") }),
      trainGeneral,
      trainSubmit,
    );
    const syncFeature = (): void => {
      embedderField.hidden = feature.value !== "text";
    };
    feature.addEventListener("change", syncFeature);
    syncFeature();
    trainForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(trainForm, trainGeneral);
      const spec: Record<string, unknown> = {
        question: trainQuestion.value,
        feature: feature.value,
        splits: trainDev.input.checked ? ["train", "dev"] : ["train"],
        synthetic: trainSynthetic.input.checked,
      };
      if (feature.value === "text" && embedderSelect.value) spec.embedder = embedderSelect.value;
      trainSubmit.disabled = true;
      try {
        const job = await api<Job>("POST", `${base}/preannotate/`, { train_head: spec, weak_labels: trainWeak.input.checked });
        addJob(job);
      } catch (error) {
        showErrors(trainForm, trainGeneral, error);
      } finally {
        trainSubmit.disabled = false;
      }
    });

    // --- pre-annotate with a registered model -----------------------------------------------------------------------
    const preModel = el("select", { id: "preannotate-model" });
    const preWeak = checkbox("weak_labels", t("models.weak_labels"), false);
    const preGeneral = el("div", { class: "general-errors", role: "alert" });
    const preSubmit = el("button", { type: "submit", class: "button primary", text: t("models.preannotate_submit") });
    const preForm = el(
      "form",
      { class: "models-form", id: "preannotate-form", novalidate: true },
      field("model", t("models.model"), preModel),
      preWeak.box,
      el("p", { class: "muted", text: t("models.skip_done_hint") }),
      preGeneral,
      preSubmit,
    );
    preForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(preForm, preGeneral);
      preSubmit.disabled = true;
      try {
        const job = await api<Job>("POST", `${base}/preannotate/`, {
          model: preModel.value ? Number(preModel.value) : null,
          weak_labels: preWeak.input.checked,
        });
        addJob(job);
      } catch (error) {
        showErrors(preForm, preGeneral, error);
      } finally {
        preSubmit.disabled = false;
      }
    });

    // --- transcribe -------------------------------------------------------------------------------------------------
    const asrModel = el("select", { id: "transcribe-asr" });
    const textModel = el("select", { id: "transcribe-text" });
    const speechModel = el("select", { id: "transcribe-speech" });
    const transWeak = checkbox("weak_labels", t("models.weak_labels"), true);
    const replaceAsr = checkbox("replace_asr", t("models.replace_asr"), false);
    const transGeneral = el("div", { class: "general-errors", role: "alert" });
    const transSubmit = el("button", { type: "submit", class: "button primary", text: t("models.transcribe_submit") });
    const transForm = el(
      "form",
      { class: "models-form", id: "transcribe-form", novalidate: true },
      el("p", { class: "muted", text: t("models.transcribe_intro") }),
      field("asr_model", t("models.asr_model"), asrModel),
      field("text_model", t("models.text_model"), textModel),
      field("speech_model", t("models.speech_model"), speechModel),
      transWeak.box,
      replaceAsr.box,
      transGeneral,
      transSubmit,
    );
    transForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(transForm, transGeneral);
      transSubmit.disabled = true;
      const body: Record<string, unknown> = { weak_labels: transWeak.input.checked, replace_asr: replaceAsr.input.checked };
      if (asrModel.value) body.asr_model = Number(asrModel.value);
      if (textModel.value) body.text_model = Number(textModel.value);
      if (speechModel.value) body.speech_model = Number(speechModel.value);
      try {
        addJob(await api<Job>("POST", `${base}/transcribe/`, body));
      } catch (error) {
        showErrors(transForm, transGeneral, error);
      } finally {
        transSubmit.disabled = false;
      }
    });

    // --- suggestions for annotators -----------------------------------------------------------------------------------
    const policy = el("select", { id: "suggestion-policy" });
    fillSelect(policy, ["hidden", "shown", "prefilled"].map((v): [string, string] => [v, t(`policy.${v}`)]));
    policy.value = project.suggestion_policy;
    const suggestionModel = el("select", { id: "suggestion-model" });
    const policyGeneral = el("div", { class: "general-errors", role: "alert" });
    const policyStatus = el("p", { class: "muted", role: "status" });
    const policyForm = el(
      "form",
      { class: "models-form", id: "policy-form", novalidate: true },
      field("suggestion_policy", t("models.policy"), policy, t("models.policy_hint")),
      field("prediction_model_version", t("models.suggestion_model"), suggestionModel),
      policyGeneral,
      el("button", { type: "submit", class: "button", text: t("models.save") }),
      policyStatus,
    );
    policyForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(policyForm, policyGeneral);
      policyStatus.textContent = "";
      try {
        project = await api<Project>("PATCH", `${base}/`, { suggestion_policy: policy.value, prediction_model_version: suggestionModel.value });
        policyStatus.textContent = t("models.saved");
      } catch (error) {
        showErrors(policyForm, policyGeneral, error);
      }
    });

    const refreshSelects = (): void => {
      const named = (m: ProjectModel): [string, string] => [String(m.id), `${m.model_version}${m.question_key ? ` (${m.question_key})` : ""}`];
      const none = registered.length ? undefined : t("models.none_yet");
      fillSelect(preModel, registered.filter((m) => PREDICTING_TASKS.includes(m.task)).map(named), none);
      const asr = registered.filter((m) => m.task === "asr").map(named);
      fillSelect(asrModel, asr, asr.length ? undefined : t("models.none_yet"));
      fillSelect(textModel, registered.filter((m) => m.task === "text_emotion").map(named), t("models.optional_none"));
      fillSelect(speechModel, registered.filter((m) => m.task.startsWith("speech_emotion")).map(named), t("models.optional_none"));
      fillSelect(
        suggestionModel,
        registered.filter((m) => PREDICTING_TASKS.includes(m.task)).map((m): [string, string] => [m.model_version, m.model_version]),
        t("models.newest_prediction"),
      );
      if (project.prediction_model_version && ![...suggestionModel.options].some((o) => o.value === project.prediction_model_version)) {
        suggestionModel.append(el("option", { value: project.prediction_model_version, text: project.prediction_model_version }));
      }
      suggestionModel.value = project.prediction_model_version;
    };
    const refreshModels = async (): Promise<void> => {
      const models = await api<{ registered: ProjectModel[] }>("GET", `${base}/models/`);
      if (mine !== generation) return;
      registered = models.registered;
      renderRegistered();
      refreshSelects();
    };

    // --- jobs ---------------------------------------------------------------------------------------------------------
    const jobsBox = el("div", { id: "model-jobs", class: "jobs", "aria-live": "polite" });
    const jobs = new Map<number, { job: Job; card: HTMLElement; errors: JobErrorRow[] }>();

    const jobCard = (job: Job, errors: JobErrorRow[]): HTMLElement => {
      const total = job.progress_total;
      const done = Math.min(job.progress_done, total || job.progress_done);
      const share = total ? (100 * done) / total : FINISHED.includes(job.status) ? 100 : 0;
      const progressText = t("models.progress", { done: formatNumber(done), total: formatNumber(total), share: formatNumber(share, 0) });
      const bar = el("progress", { class: "job-progress", max: Math.max(total, 1), value: total ? done : FINISHED.includes(job.status) ? 1 : 0, "aria-label": progressText });
      if (job.status === "pending") bar.removeAttribute("value"); // indeterminate until the worker starts
      const counts = Object.entries(job.counts ?? {}).filter(([, n]) => typeof n === "number");
      const throughput = job.result?.throughput;
      const facts: [string, string][] = [];
      if (throughput && typeof throughput.items_per_second === "number") facts.push([t("models.throughput"), t("models.items_per_second", { n: formatNumber(throughput.items_per_second, 2) })]);
      if (throughput && throughput.audio_seconds_per_second) facts.push([t("models.audio_throughput"), t("models.audio_per_second", { n: formatNumber(throughput.audio_seconds_per_second, 2) })]);
      if (job.duration_s !== null) facts.push([t("models.duration"), t("models.seconds", { n: formatNumber(job.duration_s, 1) })]);
      const version = job.result?.trained_head?.model_version ?? job.result?.model_version ?? job.result?.asr_model_version;
      if (version) facts.push([t("models.version"), String(version)]);
      const head = job.result?.trained_head;
      if (head && typeof head.examples === "number") {
        facts.push([t("models.heldout"), evaluationText(head.evaluation)]);
        facts.push([t("models.training"), trainingText(head)]);
      }
      return el(
        "article",
        { class: `job-card status-${job.status}`, "data-job-id": job.id, "data-status": job.status },
        el(
          "div",
          { class: "job-head" },
          el("strong", { text: `${tOr(`models.kind_${job.kind}`, job.kind)} #${job.id}` }),
          el("span", { class: `badge job-status ${job.status}`, text: tOr(`models.status_${job.status}`, job.status) }),
          el("span", { class: "muted small", text: `${formatTime(job.created_at)}${job.created_by ? ` · ${job.created_by}` : ""}` }),
        ),
        bar,
        el("p", { class: "small progress-text", text: progressText }),
        counts.length || facts.length
          ? el(
            "dl",
            { class: "job-facts" },
            ...counts.flatMap(([key, n]) => [el("dt", { text: tOr(`models.count_${key}`, key) }), el("dd", { "data-count": key, text: formatNumber(n) })]),
            ...facts.flatMap(([label, value]) => [el("dt", { text: label }), el("dd", { text: value })]),
          )
          : null,
        job.message ? el("p", { class: job.status === "failed" ? "field-error" : "muted", text: job.message }) : null,
        job.error_count
          ? el(
            "details",
            { class: "job-errors", open: errors.length <= 10 },
            el("summary", { text: t("models.item_errors", { n: formatNumber(job.error_count) }) }),
            el(
              "table",
              { class: "data compact" },
              el("thead", {}, el("tr", {}, ...["models.error_item", "models.error_field", "models.error_reason"].map((k) => el("th", { scope: "col", text: t(k) })))),
              el("tbody", {}, ...errors.map((e) => el("tr", {}, el("td", { text: e.file || (e.row !== null ? String(e.row) : "—") }), el("td", { text: e.column || "—" }), el("td", { text: e.reason })))),
            ),
            job.error_count > errors.length ? el("p", { class: "muted small", text: t("models.more_errors", { n: formatNumber(job.error_count - errors.length) }) }) : null,
          )
          : null,
      );
    };
    const showJob = (job: Job, errors: JobErrorRow[]): void => {
      const card = jobCard(job, errors);
      const known = jobs.get(job.id);
      if (known) known.card.replaceWith(card);
      else jobsBox.prepend(card);
      jobs.set(job.id, { job, card, errors });
      jobsBox.querySelector(".empty")?.remove();
    };
    const fetchErrors = async (job: Job): Promise<JobErrorRow[]> => {
      if (!job.error_count) return [];
      const page = await api<{ results: JobErrorRow[] }>("GET", `/api/jobs/${job.id}/errors/`);
      return (page.results ?? []).slice(0, MAX_ERRORS_SHOWN);
    };
    const poll = async (): Promise<void> => {
      if (mine !== generation) return;
      const open = [...jobs.values()].filter(({ job }) => !FINISHED.includes(job.status));
      let finished = false;
      for (const entry of open) {
        try {
          const job = await api<Job>("GET", `/api/jobs/${entry.job.id}/`);
          const errors = job.error_count !== entry.job.error_count || (FINISHED.includes(job.status) && job.error_count) ? await fetchErrors(job) : entry.errors;
          if (mine !== generation) return;
          showJob(job, errors);
          if (FINISHED.includes(job.status)) finished = true;
        } catch (error) {
          if (error instanceof ApiError && !error.retryable) {
            jobs.delete(entry.job.id);
            entry.card.append(el("p", { class: "field-error", text: errorText(error) }));
          }
        }
      }
      if (finished) {
        try {
          await Promise.all([refreshModels(), loadSummary()]);
        } catch (error) {
          distributionsBox.append(el("p", { class: "field-error", text: errorText(error) }));
        }
      }
      schedule();
    };
    const schedule = (): void => {
      window.clearTimeout(pollTimer);
      if (mine !== generation) return;
      if ([...jobs.values()].some(({ job }) => !FINISHED.includes(job.status))) pollTimer = window.setTimeout(() => void poll(), POLL_MS);
    };
    const addJob = (job: Job): void => {
      showJob(job, []);
      jobsBox.closest("section")?.scrollIntoView({ block: "nearest" });
      schedule();
    };

    // --- score distributions -----------------------------------------------------------------------------------------
    const binsSelect = el("select", { id: "summary-bins" });
    fillSelect(binsSelect, ["10", "20", "50"].map((v): [string, string] => [v, v]));
    const distributionsBox = el("div", { id: "distributions" });
    const binTitle = (low: number, high: number, count: number): string =>
      t("models.bin_title", { low: formatNumber(low, 2), high: formatNumber(high, 2), count: formatNumber(count) });
    const histogramFigure = (id: string, title: string, data: Histogram, xAxis: string, colour?: string): HTMLElement =>
      chartFigure({
        id,
        title,
        chart: histogram(data.edges, data.counts, title, t("models.hist_desc", { total: formatNumber(data.counts.reduce((a, b) => a + b, 0)) }), {
          binTitle,
          xAxis,
          yAxis: t("models.predictions_axis"),
          colour,
          width: 500,
          height: 200,
        }),
        table: {
          head: [t("models.bin"), t("models.count")],
          rows: data.counts.map((count, i) => [`${formatNumber(data.edges[i], 2)} – ${formatNumber(data.edges[i + 1], 2)}`, formatNumber(count)]),
        },
      });
    const loadSummary = async (): Promise<void> => {
      const summary = await api<Summary>("GET", `${base}/predictions/summary/?bins=${encodeURIComponent(binsSelect.value)}`);
      if (mine !== generation) return;
      clear(distributionsBox);
      const models = summary.models.filter((m) => m.count > 0);
      if (!models.length) {
        distributionsBox.append(el("p", { class: "muted", text: t("models.no_predictions") }));
        return;
      }
      models.forEach((model, m) => {
        const grid = el("div", { class: "dash-grid histograms" });
        const keys = Object.keys(model.histograms);
        const dimensional = model.task === "speech_emotion_dimensional";
        keys.forEach((key, k) => {
          grid.append(
            histogramFigure(
              `fig-hist-${m}-${k}`,
              dimensional ? t("models.hist_value_title", { key }) : t("models.hist_title", { label: key }),
              model.histograms[key],
              dimensional ? t("models.value_axis") : t("models.score_axis"),
              ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999"][k % 7],
            ),
          );
        });
        if (model.uncertainty && model.uncertainty.counts.some((c) => c > 0)) {
          const figure = histogramFigure(`fig-uncertainty-${m}`, t("models.uncertainty_title"), model.uncertainty, t("models.entropy_axis"), "#D55E00");
          figure.classList.add("uncertainty");
          grid.append(figure);
        }
        const top = Object.entries(model.top_labels ?? {});
        if (top.length) {
          const rows: BarRow[] = top.map(([label, n]) => ({ label, value: n, total: model.count, text: `${formatNumber(n)} (${formatNumber((100 * n) / model.count, 1)}%)` }));
          grid.append(
            chartFigure({
              id: `fig-top-${m}`,
              title: t("models.top_labels"),
              chart: barChart(rows, t("models.top_labels"), t("models.top_labels_desc"), 420),
              table: { head: [t("models.label"), t("models.count")], rows: top.map(([label, n]) => [label, formatNumber(n)]) },
            }),
          );
        }
        distributionsBox.append(
          el(
            "section",
            { class: "model-summary", "data-model-version": model.model_version },
            el("h3", {}, el("code", { class: "version", text: model.model_version })),
            el("p", {
              class: "muted",
              text: [
                t("models.summary_count", { n: formatNumber(model.count) }),
                model.question ? `${t("models.question")}: ${model.question}` : "",
                model.truncated ? t("models.truncated") : "",
              ].filter(Boolean).join(" · "),
            }),
            grid,
          ),
        );
      });
    };
    binsSelect.addEventListener("change", () => {
      void loadSummary().catch((error) => distributionsBox.replaceChildren(el("p", { class: "field-error", text: errorText(error) })));
    });

    // --- layout -------------------------------------------------------------------------------------------------------
    const section = (id: string, titleKey: string, ...children: (Node | null)[]): HTMLElement =>
      el("section", { class: "dash-section models-section", id, "aria-labelledby": `${id}-title` }, el("h2", { id: `${id}-title`, text: t(titleKey) }), ...children);
    root.append(
      section("section-registered", "models.registered", registeredBox),
      el(
        "div",
        { class: "models-columns" },
        section("section-register", "models.register", registerForm),
        section("section-train", "models.train", trainForm),
      ),
      section("section-catalogue", "models.catalogue", catalogueList),
      el(
        "div",
        { class: "models-columns" },
        section("section-preannotate", "models.preannotate", preForm),
        section("section-transcribe", "models.transcribe", transForm),
      ),
      section("section-jobs", "models.jobs", jobsBox),
      section("section-policy", "models.suggestions", policyForm),
      section("section-distributions", "models.distributions", el("div", { class: "row" }, field("bins", t("models.bins"), binsSelect)), distributionsBox),
    );
    renderRegistered();
    refreshSelects();
    renderMapping();

    // Recent model jobs of the project (the newest first), then poll the unfinished ones.
    try {
      const page = await api<{ results: Job[] } | Job[]>("GET", `/api/jobs/?project=${projectId}`);
      const recent = (Array.isArray(page) ? page : page.results ?? []).filter((j) => MODEL_JOB_KINDS.includes(j.kind)).slice(0, MAX_JOBS_SHOWN);
      if (mine !== generation) return;
      for (const job of recent.reverse()) showJob(job, await fetchErrors(job).catch(() => []));
      if (!recent.length) jobsBox.append(el("p", { class: "muted empty", text: t("models.no_jobs") }));
      schedule();
    } catch (error) {
      jobsBox.append(el("p", { class: "field-error", text: errorText(error) }));
    }
    try {
      await loadSummary();
    } catch (error) {
      distributionsBox.append(el("p", { class: "field-error", text: errorText(error) }));
    }
  };
  onLanguageChange(() => void render());
  void render();
}

// Lead dashboard (/projects/<id>/dashboard/): progress, the gold rule (quality policy), Krippendorff's alpha with
// bootstrap intervals, per-label alpha by language, the pairwise annotator heatmap, confusion between annotators,
// label distribution per language, agreement over time and model versus human metrics, all from the cached agreement
// report (GET /api/projects/<id>/agreement/) and the progress API. The same page shows the agreement of a corpus's
// imported ratings (/corpora/<id>/quality/, GET /api/corpora/<id>/agreement/?schema_version=…), without progress or
// policy. "Recompute" asks for ?refresh=1 and polls the agreement job until it finishes.
import { api, ApiError, errorText, flatten } from "./api";
import {
  barChart,
  chartFigure,
  forestPlot,
  formatAlpha,
  formatInterval,
  heatmap,
  intervalSeries,
  learningCurve,
  stackedBars,
  type CurveSeries,
  type ForestRow,
  type TableData,
} from "./charts";
import { $, el, clear } from "./dom";
import { llmEvaluationSection } from "./llm";
import { formatNumber, onLanguageChange, t } from "./i18n";
import "./dashboard.css";

interface CurvePoint {
  human_labels: number;
  macro_f1: number | null;
  per_label_f1: Record<string, number>;
  method: string | null;
  split: string | null;
  n_items: number;
  strategy: string;
  model_version: string;
  suspected_errors: number;
}

interface LearningCurve {
  points: CurvePoint[];
  simulation: { random?: [number, number][] } | null;
}

interface Job {
  id: number;
  status: "pending" | "running" | "succeeded" | "failed" | "cancelled";
  progress_done: number;
  progress_total: number;
  message: string;
}

interface Alpha {
  alpha: number | null;
  interval: [number, number] | null;
  n_units: number;
  n_pairable_units: number;
  n_pairable_values: number;
  observed_disagreement: number | null;
  confidence_level: number;
  n_resamples: number;
  probability_below?: Record<string, number | null>;
}

interface GroupAlpha {
  alpha: number | null;
  interval_low: number | null;
  interval_high: number | null;
  n_ratings: number;
  n_pairable_units: number;
}

interface ModelEntry {
  model_version: string;
  n_predictions: number;
  n_items: number;
  reason?: string;
  accuracy?: number | null;
  macro_f1?: number | null;
  exact_match_accuracy?: number | null;
  ccc?: number | null;
  mean_absolute_error?: number | null;
}

interface GroupRow extends GroupAlpha {
  language: string;
}

interface Block {
  perspective: string;
  by_label_language?: Record<string, GroupRow[]>;
  aggregation?: { n_units: number; n_open_ties: number; n_broken_ties?: number; n_none_of_these?: number; method: string | null };
  skipped?: string;
  error?: string;
  level?: string;
  alpha?: Alpha;
  observed_agreement?: number | null;
  kappa?: { fleiss?: { kappa: number | null; applicable: boolean; reason?: string } };
  counts?: { n_units: number; n_raters: number; n_ratings: number; n_units_with_two_or_more: number };
  by_label?: Record<string, Alpha> | { binary: Record<string, Alpha>; intensity?: Record<string, Alpha> };
  by_language?: (GroupAlpha & { language: string })[];
  annotators?: { rater: string; n_ratings: number; alpha_with_rest: number | null; alpha_without: number | null; alpha_change_without: number | null }[] | { skipped: string };
  pairwise?: { raters?: string[]; alpha?: (number | null)[][]; shared_units?: number[][]; skipped?: string };
  confusion?: { labels: string[]; pairs: number[][]; coincidences: number[][] };
  label_distribution?: { labels: string[]; languages: { language: string; n_ratings: number; n_none?: number; counts: number[] }[] } | null;
  over_time?: { period: string; weeks: (GroupAlpha & { week_start: string; n_units: number })[] } | null;
  models?: ModelEntry[];
}

interface QuestionReport {
  key: string;
  type: string;
  title: string;
  level?: string;
  skipped?: string;
  perspectives?: Block[];
}

interface Report {
  version: number;
  totals: { annotations: number; human_annotations: number; units: number; human_raters: number; model_versions: string[] };
  questions: QuestionReport[];
}

interface RatingVersion {
  id: number;
  schema: string;
  version: number;
  name: string;
  annotations: number;
}

interface Policy {
  aggregation_method: string;
  tie_policy: string;
  multi_label_rule: string;
  multi_label_share: number;
  intensity_threshold: number;
  intensity_threshold_inclusive: boolean;
  include_imported_ratings: boolean;
  review_confidence_below: number;
}

const METHODS = ["majority", "dawid_skene", "mace"];
const TIE_POLICIES = ["abstain", "prefer_order", "random"];
const MULTI_LABEL_RULES = ["share", "mean_intensity", "dawid_skene", "mace"];

interface AgreementResponse {
  schema_version?: number | null;
  schema_versions?: RatingVersion[];
  stale: boolean;
  computed_at: string | null;
  duration_ms: number | null;
  report_annotation_count: number | null;
  current_annotation_count: number;
  params: { n_resamples?: number; seed?: number; confidence_level?: number } | null;
  report: Report | null;
  job: Job | null;
}

interface Progress {
  overlap: number;
  items: number;
  complete: number;
  gold_items: number;
  annotations: number;
  open_flags: number;
  by_language: { language: string; items: number; complete: number; annotations: number }[];
  by_annotator: { username: string; role: string; annotations: number; gold_answered: number; gold_correct: number; gold_accuracy: number | null }[];
}

const POLL_MS = 1500;
const FINISHED = ["succeeded", "failed", "cancelled"];

function perspectiveName(perspective: string): string {
  return perspective ? t(`perspective.${perspective}`) : t("dash.no_perspective");
}

function questionName(question: QuestionReport): string {
  return question.title || question.key;
}

function pct(n: number, d: number): string {
  return d ? `${formatNumber((100 * n) / d, 1)}%` : "—";
}

function groupRow(label: string, group: GroupAlpha): ForestRow {
  return { label, value: group.alpha, low: group.interval_low, high: group.interval_high, note: t("dash.n_ratings", { n: formatNumber(group.n_ratings) }) };
}

function alphaRow(label: string, alpha: Alpha | undefined): ForestRow {
  return {
    label,
    value: alpha?.alpha ?? null,
    low: alpha?.interval?.[0] ?? null,
    high: alpha?.interval?.[1] ?? null,
    note: alpha ? t("dash.n_units", { n: formatNumber(alpha.n_pairable_units) }) : undefined,
  };
}

function forestTable(rows: ForestRow[]): TableData {
  let section = "";
  const body: string[][] = [];
  for (const row of rows) {
    if (row.heading) {
      section = row.label;
      continue;
    }
    body.push([section ? `${section} · ${row.label}` : row.label, formatAlpha(row.value), formatInterval(row.low, row.high), row.note ?? ""]);
  }
  return { head: [t("dash.group"), "α", t("dash.interval"), t("dash.count")], rows: body };
}

export function mountDashboard(): void {
  const root = $("#dashboard");
  const projectId = Number(root.dataset.projectId || 0);
  const corpusId = Number(root.dataset.corpusId || 0); // set: the corpus's imported ratings, not a project
  let projectName = "";
  let projectCorpus: number | null = null;
  let myRole: string | null = null;
  let schemaVersion: number | null = null;
  let policy: Policy | null = null;
  let policyErrors: Record<string, string[]> = {};
  let policySaving = false;
  let agreement: AgreementResponse | null = null;
  let progress: Progress | null = null;
  let progressError = "";
  let loadError = "";
  let activeJob: Job | null = null;
  let jobError = "";
  let questionKey = "";
  let perspective = "";
  let pollTimer: number | undefined;
  let curve: LearningCurve | null = null;

  const agreementUrl = (refresh = false): string => {
    const query = new URLSearchParams();
    if (corpusId && schemaVersion !== null) query.set("schema_version", String(schemaVersion));
    if (refresh) query.set("refresh", "1");
    const base = corpusId ? `/api/corpora/${corpusId}/agreement/` : `/api/projects/${projectId}/agreement/`;
    return query.toString() ? `${base}?${query}` : base;
  };

  const load = async (): Promise<void> => {
    loadError = "";
    // Asked together with the rest (a corpus has no progress).
    const progressAnswer = corpusId ? Promise.resolve(null) : api<Progress>("GET", `/api/projects/${projectId}/progress/`);
    progressAnswer.catch(() => undefined);
    const policyAnswer = corpusId ? Promise.resolve(null) : api<Policy>("GET", `/api/projects/${projectId}/quality-policy/`);
    policyAnswer.catch(() => undefined);
    try {
      const [owner, response] = await Promise.all([
        api<{ name: string; corpus?: number; my_role?: string | null }>("GET", corpusId ? `/api/corpora/${corpusId}/` : `/api/projects/${projectId}/`),
        api<AgreementResponse>("GET", agreementUrl()),
      ]);
      projectName = owner.name;
      projectCorpus = owner.corpus ?? null;
      myRole = owner.my_role ?? null;
      agreement = response;
      schemaVersion = response.schema_version ?? schemaVersion;
      if (response.job && !FINISHED.includes(response.job.status)) watchJob(response.job);
    } catch (error) {
      loadError = errorText(error);
    }
    if (corpusId) {
      render();
      return;
    }
    try {
      policy = await policyAnswer;
    } catch {
      policy = null;
    }
    try {
      curve = await api<LearningCurve>("GET", `/api/projects/${projectId}/active-learning/curve/`);
    } catch {
      curve = null; // annotators are not shown it; nothing to draw either way
    }
    try {
      progress = await progressAnswer;
      progressError = "";
    } catch (error) {
      progress = null;
      progressError = error instanceof ApiError && error.status === 403 ? t("dash.progress_leads_only") : errorText(error);
    }
    render();
  };

  const watchJob = (job: Job): void => {
    activeJob = job;
    jobError = "";
    window.clearTimeout(pollTimer);
    const poll = async (): Promise<void> => {
      try {
        const current = await api<Job>("GET", `/api/jobs/${job.id}/`);
        activeJob = current;
        if (FINISHED.includes(current.status)) {
          activeJob = null;
          if (current.status !== "succeeded") jobError = current.message || t(`dash.job_${current.status}`);
          await load();
          return;
        }
        renderStatus();
      } catch (error) {
        jobError = errorText(error);
        activeJob = null;
        renderStatus();
        return;
      }
      pollTimer = window.setTimeout(() => void poll(), POLL_MS);
    };
    pollTimer = window.setTimeout(() => void poll(), POLL_MS);
    renderStatus();
  };

  const recompute = async (): Promise<void> => {
    jobError = "";
    try {
      const response = await api<AgreementResponse>("GET", agreementUrl(true));
      agreement = response;
      if (response.job) watchJob(response.job);
    } catch (error) {
      jobError = errorText(error);
      renderStatus();
    }
  };

  const statusLine = el("div", { class: "dash-status", role: "status", "aria-live": "polite" });
  const recomputeButton = el("button", { type: "button", class: "button primary", "data-action": "recompute" });
  recomputeButton.addEventListener("click", () => void recompute());

  const renderStatus = (): void => {
    clear(statusLine);
    recomputeButton.textContent = t("dash.recompute");
    recomputeButton.disabled = activeJob !== null;
    if (activeJob) {
      const share = activeJob.progress_total ? ` (${formatNumber(activeJob.progress_done)}/${formatNumber(activeJob.progress_total)})` : "";
      statusLine.append(el("span", { class: "badge busy", "data-state": "computing", text: `${t(`dash.job_${activeJob.status}`)}${share}` }));
    }
    if (jobError) statusLine.append(el("span", { class: "field-error", text: jobError }));
    if (agreement?.computed_at) {
      const when = new Date(agreement.computed_at).toLocaleString(document.documentElement.lang || undefined);
      statusLine.append(
        el("span", { class: "muted", text: t("dash.computed_at", { when, n: formatNumber(agreement.report_annotation_count ?? 0) }) }),
      );
      if (agreement.params?.n_resamples !== undefined) {
        statusLine.append(el("span", { class: "muted", text: t("dash.resamples", { n: formatNumber(agreement.params.n_resamples), level: formatNumber(100 * (agreement.params.confidence_level ?? 0.95)) }) }));
      }
      if (agreement.stale) statusLine.append(el("span", { class: "badge stale", "data-state": "stale", text: t("dash.stale", { n: formatNumber(agreement.current_annotation_count) }) }));
    }
  };

  const learningSection = (): HTMLElement | null => {
    if (!curve || !curve.points.length) return null;
    const points = curve.points.filter((p) => p.macro_f1 !== null);
    const series: CurveSeries[] = [{ name: t("dash.al_series"), points: points.map((p) => [p.human_labels, p.macro_f1 as number]) }];
    if (curve.simulation?.random?.length) series.push({ name: t("dash.al_random"), points: curve.simulation.random, dashed: true });
    const labels = [...new Set(curve.points.flatMap((p) => Object.keys(p.per_label_f1)))];
    const title = t("dash.al_title");
    const last = curve.points[curve.points.length - 1];
    const note = last.method === "held_out" ? t("dash.al_note", { split: last.split ?? "", n: formatNumber(last.n_items) }) : t("dash.al_kfold_note");
    return el(
      "section",
      { class: "dash-section", "aria-labelledby": "dash-learning" },
      el("h2", { id: "dash-learning", text: title }),
      chartFigure({
        id: "fig-learning",
        title,
        note,
        chart: learningCurve(series, title, t("dash.al_desc"), t("dash.al_labels_axis")),
        table: {
          head: [t("dash.al_labels_axis"), t("dash.al_macro_f1"), ...labels, t("dash.al_suspects")],
          rows: curve.points.map((p) => [formatNumber(p.human_labels), formatAlpha(p.macro_f1), ...labels.map((l) => formatAlpha(p.per_label_f1[l] ?? null)), formatNumber(p.suspected_errors)]),
        },
      }),
    );
  };

  const progressSection = (): HTMLElement => {
    const section = el("section", { class: "dash-section", "aria-labelledby": "dash-progress" }, el("h2", { id: "dash-progress", text: t("dash.progress") }));
    if (!progress) {
      section.append(el("p", { class: "muted", text: progressError }));
      return section;
    }
    const p = progress;
    section.append(
      el(
        "div",
        { class: "stats" },
        ...(
          [
            ["manage.items", formatNumber(p.items)],
            ["manage.complete", `${formatNumber(p.complete)} (${pct(p.complete, p.items)})`],
            ["manage.annotations", formatNumber(p.annotations)],
            ["manage.overlap", formatNumber(p.overlap)],
            ["manage.gold_items", formatNumber(p.gold_items)],
            ["manage.open_flags", formatNumber(p.open_flags)],
          ] as [string, string][]
        ).map(([k, v]) => el("div", { class: "stat" }, el("span", { class: "muted", text: t(k) }), el("strong", { text: v }))),
      ),
    );
    const annotators = p.by_annotator.filter((a) => a.annotations > 0 || a.role === "annotator");
    const annotatorRows = annotators.map((a) => ({
      label: a.username,
      value: a.annotations,
      text: `${formatNumber(a.annotations)}${a.gold_accuracy === null ? "" : ` · ${t("dash.gold_short", { share: pct(a.gold_correct, a.gold_answered) })}`}`,
    }));
    const languageRows = p.by_language.map((l) => ({ label: l.language, value: l.complete, total: l.items, text: `${formatNumber(l.complete)}/${formatNumber(l.items)} (${pct(l.complete, l.items)})` }));
    section.append(
      el(
        "div",
        { class: "dash-grid" },
        chartFigure({
          id: "fig-progress-annotators",
          title: t("dash.per_annotator"),
          chart: barChart(annotatorRows, t("dash.per_annotator"), t("dash.per_annotator_desc")),
          table: {
            head: [t("manage.user"), t("manage.role"), t("manage.annotations"), t("manage.gold_accuracy")],
            rows: annotators.map((a) => [a.username, t(`role.${a.role}`), formatNumber(a.annotations), a.gold_accuracy === null ? "—" : `${pct(a.gold_correct, a.gold_answered)} (${formatNumber(a.gold_correct)}/${formatNumber(a.gold_answered)})`]),
          },
        }),
        chartFigure({
          id: "fig-progress-languages",
          title: t("dash.per_language"),
          chart: barChart(languageRows, t("dash.per_language"), t("dash.per_language_desc")),
          table: {
            head: [t("manage.language"), t("manage.items"), t("manage.complete"), t("manage.annotations")],
            rows: p.by_language.map((l) => [l.language, formatNumber(l.items), `${formatNumber(l.complete)} (${pct(l.complete, l.items)})`, formatNumber(l.annotations)]),
          },
        }),
      ),
    );
    return section;
  };

  const overviewFigure = (report: Report): HTMLElement | null => {
    const rows: ForestRow[] = [];
    for (const question of report.questions) {
      for (const block of question.perspectives ?? []) {
        if (!block.alpha) continue;
        const label = question.perspectives && question.perspectives.length > 1 ? `${questionName(question)} · ${perspectiveName(block.perspective)}` : questionName(question);
        rows.push(alphaRow(label, block.alpha));
      }
    }
    if (!rows.length) return null;
    return chartFigure({
      id: "fig-questions",
      title: t("dash.by_question"),
      note: t("dash.reference_note"),
      chart: forestPlot(rows, t("dash.by_question"), t("dash.forest_desc")),
      table: forestTable(rows),
    });
  };

  const questionForest = (question: QuestionReport, block: Block): HTMLElement => {
    const rows: ForestRow[] = [alphaRow(t("dash.overall"), block.alpha)];
    const perspectives = (question.perspectives ?? []).filter((b) => b.alpha);
    if (perspectives.length > 1) {
      rows.push({ label: t("dash.by_perspective"), value: null, low: null, high: null, heading: true });
      for (const other of perspectives) rows.push(alphaRow(perspectiveName(other.perspective), other.alpha));
    }
    if (block.by_language?.length) {
      rows.push({ label: t("dash.by_language"), value: null, low: null, high: null, heading: true });
      for (const group of block.by_language) rows.push(groupRow(group.language, group));
    }
    const byLabel = block.by_label;
    if (byLabel) {
      const binary = ("binary" in byLabel ? byLabel.binary : byLabel) as Record<string, Alpha>;
      // The stored JSON (PostgreSQL jsonb) does not keep key order: list labels in the schema's order.
      const schemaOrder = block.label_distribution?.labels ?? block.confusion?.labels ?? [];
      const ordered = (labels: Record<string, Alpha>): string[] => [
        ...schemaOrder.filter((label) => label in labels),
        ...Object.keys(labels).filter((label) => !schemaOrder.includes(label)).sort(),
      ];
      rows.push({ label: t("dash.by_label"), value: null, low: null, high: null, heading: true });
      for (const label of ordered(binary)) rows.push(alphaRow(label, binary[label]));
      const intensity = "binary" in byLabel ? (byLabel as { intensity?: Record<string, Alpha> }).intensity : undefined;
      if (intensity) {
        rows.push({ label: t("dash.by_label_intensity"), value: null, low: null, high: null, heading: true });
        for (const label of ordered(intensity)) rows.push(alphaRow(label, intensity[label]));
      }
    }
    const title = t("dash.alpha_breakdown", { question: questionName(question) });
    return chartFigure({ id: "fig-breakdown", title, note: t("dash.reference_note"), chart: forestPlot(rows, title, t("dash.forest_desc")), table: forestTable(rows) });
  };

  const pairwiseFigure = (block: Block): HTMLElement | null => {
    const pairwise = block.pairwise;
    if (!pairwise?.raters || !pairwise.alpha) return pairwise?.skipped ? el("p", { class: "muted", text: pairwise.skipped }) : null;
    const raters = pairwise.raters;
    const matrix = pairwise.alpha;
    const shared = pairwise.shared_units ?? [];
    const title = t("dash.pairwise");
    const tip = (value: number | null, row: number, column: number): string =>
      row === column
        ? raters[row]
        : t("dash.pair_cell", { a: raters[row], b: raters[column], alpha: formatAlpha(value), n: formatNumber(shared[row]?.[column] ?? 0) });
    const rows: string[][] = [];
    raters.forEach((a, i) => raters.forEach((b, j) => {
      if (j > i) rows.push([`${a} × ${b}`, formatAlpha(matrix[i][j]), formatNumber(shared[i]?.[j] ?? 0)]);
    }));
    return chartFigure({
      id: "fig-pairwise",
      title,
      note: t("dash.pairwise_note"),
      chart: heatmap(raters, raters, matrix, title, t("dash.pairwise_desc"), {
        scale: (v) => v,
        cellText: (v, r, c) => (r === c ? "—" : v === null ? "·" : formatNumber(v, 2)),
        cellTitle: tip,
        legend: { low: "α ≤ 0", high: "α = 1" },
      }),
      table: { head: [t("dash.pair"), "α", t("dash.shared_units")], rows },
    });
  };

  const confusionFigure = (block: Block): HTMLElement | null => {
    const confusion = block.confusion;
    if (!confusion) return null;
    const { labels, pairs } = confusion;
    const used = labels.map((_, i) => pairs[i].some((v) => v > 0) || pairs.some((r) => r[i] > 0));
    const keep = labels.map((_, i) => i).filter((i) => used[i]);
    if (!keep.length) return null;
    const names = keep.map((i) => labels[i]);
    const rowTotals = keep.map((i) => keep.reduce((sum, j) => sum + pairs[i][j], 0));
    const shares = keep.map((i, r) => keep.map((j) => (rowTotals[r] ? pairs[i][j] / rowTotals[r] : null)));
    const title = t("dash.confusion");
    return chartFigure({
      id: "fig-confusion",
      title,
      note: t("dash.confusion_note"),
      chart: heatmap(names, names, shares, title, t("dash.confusion_desc"), {
        scale: (v) => v,
        cellText: (v) => (v === null ? "·" : `${formatNumber(100 * v)}%`),
        cellTitle: (v, r, c) => t("dash.confusion_cell", { a: names[r], b: names[c], share: v === null ? "—" : formatNumber(100 * v, 1), n: formatNumber(pairs[keep[r]][keep[c]]) }),
        rowAxis: t("dash.one_annotator"),
        columnAxis: t("dash.another_annotator"),
        legend: { low: "0%", high: "100%" },
      }),
      table: { head: [t("dash.one_annotator"), ...names], rows: keep.map((i, r) => [labels[i], ...keep.map((j) => `${formatNumber(pairs[i][j])} (${pct(pairs[i][j], rowTotals[r])})`)]) },
    });
  };

  const distributionFigure = (block: Block): HTMLElement | null => {
    const distribution = block.label_distribution;
    if (!distribution || !distribution.languages.length) return null;
    const groups = distribution.languages.map((l) => l.language);
    const title = t("dash.distribution");
    const withNone = distribution.languages.some((l) => l.n_none !== undefined && l.n_none > 0);
    const labels = withNone ? [...distribution.labels, t("dash.none_of_these")] : distribution.labels;
    const counts = distribution.languages.map((l) => (withNone ? [...l.counts, l.n_none ?? 0] : l.counts));
    return chartFigure({
      id: "fig-distribution",
      title,
      note: t("dash.distribution_note"),
      chart: stackedBars(groups, labels, counts, distribution.languages.map((l) => l.n_ratings), title, t("dash.distribution_desc")),
      table: {
        head: [t("manage.language"), ...labels, t("dash.ratings")],
        rows: distribution.languages.map((l, i) => [l.language, ...counts[i].map((c) => `${formatNumber(c)} (${pct(c, l.n_ratings)})`), formatNumber(l.n_ratings)]),
      },
    });
  };

  const timeFigure = (block: Block): HTMLElement | null => {
    const weeks = block.over_time?.weeks;
    if (!weeks?.length) return null;
    const title = t("dash.over_time");
    const points = weeks.map((w) => ({ label: w.week_start, value: w.alpha, low: w.interval_low, high: w.interval_high, note: t("dash.n_units", { n: formatNumber(w.n_units) }) }));
    return chartFigure({
      id: "fig-time",
      title,
      note: t("dash.over_time_note"),
      chart: intervalSeries(points, title, t("dash.over_time_desc")),
      table: { head: [t("dash.week"), "α", t("dash.interval"), t("dash.units")], rows: weeks.map((w) => [w.week_start, formatAlpha(w.alpha), formatInterval(w.interval_low, w.interval_high), formatNumber(w.n_units)]) },
    });
  };

  const annotatorsTable = (block: Block): HTMLElement | null => {
    if (!Array.isArray(block.annotators) || !block.annotators.length) return null;
    return el(
      "section",
      { class: "dash-card" },
      el("h3", { class: "figure-title", text: t("dash.annotators") }),
      el("p", { class: "muted figure-note", text: t("dash.annotators_note") }),
      simpleTable(
        [t("manage.user"), t("dash.ratings"), t("dash.with_rest"), t("dash.without"), t("dash.change_without")],
        block.annotators.map((a) => [a.rater, formatNumber(a.n_ratings), formatAlpha(a.alpha_with_rest), formatAlpha(a.alpha_without), a.alpha_change_without === null ? "—" : `${a.alpha_change_without > 0 ? "+" : ""}${formatAlpha(a.alpha_change_without)}`]),
      ),
    );
  };

  const modelsTable = (report: Report): HTMLElement => {
    const rows: string[][] = [];
    for (const question of report.questions) {
      for (const block of question.perspectives ?? []) {
        for (const model of block.models ?? []) {
          const name = question.perspectives && question.perspectives.length > 1 ? `${questionName(question)} · ${perspectiveName(block.perspective)}` : questionName(question);
          const fmt = (v: number | null | undefined): string => (v === null || v === undefined ? "—" : formatNumber(v, 3));
          let metrics = model.reason ?? "";
          if (!model.reason) {
            if (question.type === "single_choice") metrics = t("dash.metrics_single", { accuracy: fmt(model.accuracy), f1: fmt(model.macro_f1) });
            else if (question.type === "multi_label") metrics = t("dash.metrics_multi", { accuracy: fmt(model.exact_match_accuracy), f1: fmt(model.macro_f1) });
            else metrics = t("dash.metrics_numeric", { ccc: fmt(model.ccc), mae: fmt(model.mean_absolute_error) });
          }
          rows.push([model.model_version, name, formatNumber(model.n_items), metrics]);
        }
      }
    }
    const section = el("section", { class: "dash-card", id: "models" }, el("h3", { class: "figure-title", text: t("dash.models") }));
    if (!rows.length) section.append(el("p", { class: "muted", text: t("dash.no_models") }));
    else section.append(el("p", { class: "muted figure-note", text: t("dash.models_note") }), simpleTable([t("dash.model"), t("dash.question"), t("dash.items"), t("dash.metrics")], rows));
    if (!corpusId) section.append(llmEvaluationSection(projectId));
    return section;
  };

  const savePolicy = async (changes: Partial<Policy>): Promise<void> => {
    policySaving = true;
    policyErrors = {};
    render();
    try {
      policy = await api<Policy>("PATCH", `/api/projects/${projectId}/quality-policy/`, changes);
      policySaving = false;
      await recompute(); // the stored gold and the report follow the new rule
    } catch (error) {
      if (error instanceof ApiError && error.status === 400 && error.body && typeof error.body === "object") {
        policyErrors = Object.fromEntries(Object.entries(error.body as Record<string, unknown>).map(([k, v]) => [k, flatten(v)]));
      } else policyErrors = { general: [errorText(error)] };
    } finally {
      policySaving = false;
      render();
    }
  };

  const policySection = (): HTMLElement | null => {
    if (!policy) return null;
    const p = policy;
    const editable = myRole === "lead" || myRole === null; // staff without a membership may edit too
    const select = (name: keyof Policy, values: string[], label: (value: string) => string): HTMLSelectElement =>
      el("select", { name, disabled: !editable }, ...values.map((v) => el("option", { value: v, text: label(v), selected: p[name] === v })));
    const number = (name: keyof Policy, min: number, max: number, step: number): HTMLInputElement =>
      el("input", { type: "number", name, min, max, step, value: String(p[name]), disabled: !editable });
    const check = (name: keyof Policy): HTMLInputElement => {
      const input = el("input", { type: "checkbox", name, disabled: !editable });
      input.checked = Boolean(p[name]);
      return input;
    };
    const error = (name: string): HTMLElement | null =>
      policyErrors[name] ? el("p", { class: "field-error", role: "alert", text: policyErrors[name].join(" ") }) : null;
    const field = (key: string, name: string, control: HTMLElement): HTMLElement =>
      el("label", { class: "field", "data-field": name }, el("span", { class: "field-label", text: t(key) }), control, error(name));
    const method = select("aggregation_method", METHODS, (v) => t(`dash.method_${v}`));
    const ties = select("tie_policy", TIE_POLICIES, (v) => t(`dash.tie_${v}`));
    const rule = select("multi_label_rule", MULTI_LABEL_RULES, (v) => t(`dash.rule_${v}`));
    const share = number("multi_label_share", 0, 0.99, 0.05);
    const threshold = number("intensity_threshold", 0, 3, 0.25);
    const inclusive = check("intensity_threshold_inclusive");
    const imported = check("include_imported_ratings");
    const form = el(
      "form",
      { class: "dash-policy", id: "quality-policy", novalidate: true },
      el(
        "div",
        { class: "row" },
        field("dash.policy_method", "aggregation_method", method),
        field("dash.policy_ties", "tie_policy", ties),
        field("dash.policy_rule", "multi_label_rule", rule),
        field("dash.policy_share", "multi_label_share", share),
        field("dash.policy_threshold", "intensity_threshold", threshold),
      ),
      el("label", { class: "export-check" }, inclusive, el("span", { text: t("dash.policy_inclusive") })),
      el("label", { class: "export-check" }, imported, el("span", { text: t("dash.policy_imported") })),
      error("general"),
    );
    if (editable) {
      const save = el("button", { type: "submit", class: "button primary", "data-action": "save-policy", text: t(policySaving ? "dash.saving" : "dash.policy_save") });
      save.disabled = policySaving;
      form.append(save);
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        void savePolicy({
          aggregation_method: method.value,
          tie_policy: ties.value,
          multi_label_rule: rule.value,
          multi_label_share: Number(share.value),
          intensity_threshold: Number(threshold.value),
          intensity_threshold_inclusive: inclusive.checked,
          include_imported_ratings: imported.checked,
        });
      });
    }
    return el(
      "section",
      { class: "dash-section", "aria-labelledby": "dash-policy" },
      el("h2", { id: "dash-policy", text: t("dash.policy") }),
      el("p", { class: "muted", text: t(editable ? "dash.policy_note" : "dash.policy_read_only") }),
      form,
    );
  };

  const labelLanguageTable = (block: Block): HTMLElement | null => {
    const table = block.by_label_language;
    if (!table || !Object.keys(table).length) return null;
    const order = block.label_distribution?.labels ?? Object.keys(table);
    const labels = [...order.filter((l) => l in table), ...Object.keys(table).filter((l) => !order.includes(l)).sort()];
    const languages = [...new Set(labels.flatMap((l) => table[l].map((row) => row.language)))].sort();
    const cell = (label: string, language: string): string => {
      const row = table[label].find((r) => r.language === language);
      if (!row) return "—";
      return `${formatAlpha(row.alpha)} ${formatInterval(row.interval_low, row.interval_high)} · ${t("dash.n_ratings", { n: formatNumber(row.n_ratings) })}`;
    };
    return el(
      "section",
      { class: "dash-card", id: "label-language" },
      el("h3", { class: "figure-title", text: t("dash.label_language") }),
      el("p", { class: "muted figure-note", text: t("dash.label_language_note") }),
      simpleTable([t("dash.label"), ...languages], labels.map((label) => [label, ...languages.map((language) => cell(label, language))])),
    );
  };

  const agreementSection = (): HTMLElement => {
    const section = el("section", { class: "dash-section", "aria-labelledby": "dash-agreement" }, el("h2", { id: "dash-agreement", text: t("dash.agreement") }));
    const report = agreement?.report;
    if (!report) {
      section.append(el("p", { class: "muted", text: activeJob ? t("dash.computing_first") : t("dash.no_report") }));
      // LLMs are measured against the human majority directly, so their evaluation needs no agreement report.
      if (!corpusId) section.append(el("section", { class: "dash-card", id: "models" }, el("h3", { class: "figure-title", text: t("dash.models") }), llmEvaluationSection(projectId)));
      return section;
    }
    const measured = report.questions.filter((q) => q.perspectives?.some((b) => b.alpha));
    if (!measured.length) {
      section.append(el("p", { class: "muted", text: t("dash.no_agreement") }));
      section.append(modelsTable(report));
      return section;
    }
    if (!measured.some((q) => q.key === questionKey)) questionKey = measured[0].key;
    const question = measured.find((q) => q.key === questionKey) as QuestionReport;
    const blocks = (question.perspectives ?? []).filter((b) => b.alpha);
    if (!blocks.some((b) => b.perspective === perspective)) perspective = blocks[0].perspective;
    const block = blocks.find((b) => b.perspective === perspective) as Block;

    const questionSelect = el("select", { id: "dash-question" });
    for (const q of measured) questionSelect.append(el("option", { value: q.key, text: questionName(q), selected: q.key === questionKey }));
    questionSelect.addEventListener("change", () => {
      questionKey = questionSelect.value;
      render();
      document.getElementById("dash-question")?.focus();
    });
    const controls = el("div", { class: "row dash-controls" }, el("label", { class: "field" }, el("span", { class: "field-label", text: t("dash.question") }), questionSelect));
    if (blocks.length > 1) {
      const perspectiveSelect = el("select", { id: "dash-perspective" });
      for (const b of blocks) perspectiveSelect.append(el("option", { value: b.perspective, text: perspectiveName(b.perspective), selected: b.perspective === perspective }));
      perspectiveSelect.addEventListener("change", () => {
        perspective = perspectiveSelect.value;
        render();
        document.getElementById("dash-perspective")?.focus();
      });
      controls.append(el("label", { class: "field" }, el("span", { class: "field-label", text: t("annotate.perspective") }), perspectiveSelect));
    }

    const alpha = block.alpha as Alpha;
    const below = alpha.probability_below?.["0.667"];
    const gold = block.aggregation;
    const fleiss = block.kappa?.fleiss;
    const headline = el(
      "div",
      { class: "stats headline" },
      el(
        "div",
        { class: "stat key", id: "alpha-headline" },
        el("span", { class: "muted", text: t("dash.alpha_level", { level: t(`dash.level_${block.level ?? question.level ?? "nominal"}`) }) }),
        el("strong", { class: "alpha-value", text: formatAlpha(alpha.alpha) }),
        el("span", { class: "alpha-interval", text: t("dash.interval_of", { level: formatNumber(100 * alpha.confidence_level), interval: formatInterval(alpha.interval?.[0], alpha.interval?.[1]) }) }),
      ),
      ...(
        [
          ["dash.units_two", formatNumber(block.counts?.n_units_with_two_or_more ?? 0)],
          ["dash.raters", formatNumber(block.counts?.n_raters ?? 0)],
          ["dash.observed", block.observed_agreement === null || block.observed_agreement === undefined ? "—" : pct(block.observed_agreement, 1)],
          ["dash.fleiss", fleiss ? (fleiss.applicable ? formatAlpha(fleiss.kappa) : "—") : "—"],
          ["dash.below_tentative", below === null || below === undefined ? "—" : pct(below, 1)],
          ...(gold
            ? ([
                ["dash.open_ties", formatNumber(gold.n_open_ties)],
                ["dash.broken_ties", formatNumber(gold.n_broken_ties ?? 0)],
                ...(question.type === "multi_label" ? [["dash.none_of_these", formatNumber(gold.n_none_of_these ?? 0)]] : []),
              ] as [string, string][])
            : []),
        ] as [string, string][]
      ).map(([k, v]) => el("div", { class: "stat" }, el("span", { class: "muted", text: t(k) }), el("strong", { text: v }))),
    );
    section.append(controls, headline);

    const grid = el("div", { class: "dash-grid" });
    for (const figure of [overviewFigure(report), questionForest(question, block), pairwiseFigure(block), confusionFigure(block), distributionFigure(block), timeFigure(block)]) {
      if (figure) grid.append(figure);
    }
    section.append(grid);
    const lower = el("div", { class: "dash-grid" });
    const byLanguage = labelLanguageTable(block);
    if (byLanguage) lower.append(byLanguage);
    const annotators = annotatorsTable(block);
    if (annotators) lower.append(annotators);
    lower.append(modelsTable(report));
    section.append(lower);
    return section;
  };

  const versionPicker = (): HTMLElement | null => {
    const versions = agreement?.schema_versions ?? [];
    if (!corpusId) return null;
    if (!versions.length) return el("p", { class: "muted", text: t("dash.no_ratings") });
    const picker = el(
      "select",
      { id: "dash-version" },
      ...versions.map((v) => el("option", { value: String(v.id), text: t("dash.version_option", { name: v.name, version: String(v.version), n: formatNumber(v.annotations) }), selected: v.id === schemaVersion })),
    );
    picker.addEventListener("change", () => {
      schemaVersion = Number(picker.value);
      void load();
    });
    return el("label", { class: "field" }, el("span", { class: "field-label", text: t("dash.schema_version") }), picker);
  };

  const render = (): void => {
    clear(root);
    renderStatus();
    const links = corpusId
      ? [versionPicker()]
      : [
          el("a", { class: "button", href: `/projects/${projectId}/review/`, "data-link": "review", text: t("review.link") }),
          el("a", { class: "button", href: `/projects/${projectId}/items/`, text: t("items.link") }),
          // Reviewers see the dashboard too; only leads get the links to pages that would refuse others.
          myRole === "lead" ? el("a", { class: "button", href: `/projects/${projectId}/manage/`, text: t("projects.manage") }) : null,
          projectCorpus && myRole !== "reviewer" ? el("a", { class: "button", href: `/corpora/${projectCorpus}/quality/`, "data-link": "corpus", text: t("dash.corpus_ratings") }) : null,
        ];
    const title = corpusId ? t("dash.corpus_title", { corpus: projectName || "…" }) : t("dash.title", { project: projectName || "…" });
    const head = el("div", { class: "dash-head" }, el("div", {}, el("h1", { text: title }), statusLine), el("div", { class: "row" }, ...links, recomputeButton));
    root.append(head);
    if (loadError) {
      root.append(el("p", { class: "field-error", role: "alert", text: loadError }));
      return;
    }
    if (corpusId) {
      root.append(agreementSection());
      return;
    }
    const policyPart = policySection();
    const learningPart = learningSection();
    root.append(progressSection(), ...(learningPart ? [learningPart] : []), ...(policyPart ? [policyPart] : []), agreementSection());
  };

  onLanguageChange(render);
  void load();
}

function simpleTable(head: string[], rows: string[][]): HTMLTableElement {
  return el(
    "table",
    { class: "data compact" },
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", { text: c }))))),
  );
}

// Lead panel "Export gold splits" on the project manage page: choose formats, split ratios, seed, grouping and
// provenance rules, start an export job (POST /api/projects/<id>/exports/), watch its progress (polling the job),
// then download its files; earlier exports are listed with their links. Leads get the whole panel; reviewers read
// the exports and download their files (no form); other members get 403 and no panel. Everything from the server
// goes in as text or attribute values.
import { api, apiList, ApiError, errorText, flatten } from "./api";
import { el, clear } from "./dom";
import { formatNumber, lang, onLanguageChange, t } from "./i18n";
import "./exports.css";

interface ExportFile {
  name: string;
  format: string;
  split?: string;
  rows?: number;
  size: number;
  download_url: string;
}

interface ExportJob {
  id: number;
  status: "pending" | "running" | "succeeded" | "failed" | "cancelled";
  created_by: string | null;
  progress_done: number;
  progress_total: number | null;
  counts: Record<string, number>;
  message: string;
  created_at: string;
  finished_at: string | null;
  duration_s: number | null;
  options: { formats?: string[]; splits?: Record<string, number>; seed?: number; grouping?: string };
  files: ExportFile[];
  archive_url: string | null;
  splits: Record<string, { utterances: number; groups: number }> | null;
}

interface Question {
  key: string;
  type: string;
  title?: string;
}

const FORMATS = ["parquet", "csv", "jsonl", "hf", "label_studio"];
const DEFAULT_FORMATS = ["parquet", "csv", "jsonl"];
const SPLITS = ["train", "dev", "test"];
const ORIGINS = ["human", "llm", "model"];
const DEFAULT_PROVENANCE: Record<string, string[]> = { train: ["human", "llm", "model"], dev: ["human"], test: ["human"] };
const GROUPINGS = ["conversation+speaker", "conversation", "speaker", "none"];
const STRATIFIABLE = ["single_choice", "multi_label", "numeric"];
const POLL_MS = 2000;
const FORMAT_ORDER = ["card", ...FORMATS];

/** What the lead chose, kept across re-renders (language switch, a finished job). */
interface Draft {
  formats: Set<string>;
  ratios: Record<string, string>;
  seed: string;
  grouping: string;
  stratifyOn: string;
  stratifyLanguage: boolean;
  perspective: string;
  provenance: Record<string, Set<string>>;
  minAnnotations: string;
  heldoutMin: string;
  completeOnly: boolean;
  groupSameText: boolean;
}

function newDraft(): Draft {
  return {
    formats: new Set(DEFAULT_FORMATS),
    ratios: { train: "0.8", dev: "0.1", test: "0.1" },
    seed: "0",
    grouping: GROUPINGS[0],
    stratifyOn: "",
    stratifyLanguage: true,
    minAnnotations: "1",
    heldoutMin: "",
    completeOnly: false,
    groupSameText: true,
    perspective: "",
    provenance: Object.fromEntries(SPLITS.map((s) => [s, new Set(DEFAULT_PROVENANCE[s])])),
  };
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return t("export.bytes", { n: formatNumber(bytes) });
  if (bytes < 1024 * 1024) return t("export.kib", { n: formatNumber(bytes / 1024, 1) });
  return t("export.mib", { n: formatNumber(bytes / (1024 * 1024), 1) });
}

function formatWhen(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(lang());
}

function active(job: ExportJob): boolean {
  return job.status === "pending" || job.status === "running";
}

function choice(value: string, text: string, selected: boolean): HTMLOptionElement {
  const option = el("option", { value, text });
  option.selected = selected;
  return option;
}

function checkbox(name: string, value: string, checked: boolean, labelText: string, onChange: (on: boolean) => void): HTMLLabelElement {
  const input = el("input", { type: "checkbox", name, value });
  input.checked = checked;
  input.addEventListener("change", () => onChange(input.checked));
  return el("label", { class: "export-check" }, input, el("span", { text: labelText }));
}

export function mountExports(projectId: number): void {
  const root = document.querySelector<HTMLElement>("#project-exports");
  if (!root) return;
  const base = `/api/projects/${projectId}/exports/`;
  const draft = newDraft();
  let jobs: ExportJob[] = [];
  let questions: Question[] = [];
  let perspectives: string[] = [];
  let loadError = "";
  let pollTimer: number | undefined;
  let formErrors: Record<string, string[]> = {};
  let generalError = "";
  let starting = false;
  let readOnly = false; // reviewers read and download; only leads start exports

  const fieldError = (...keys: string[]): HTMLElement | null => {
    const messages = Object.entries(formErrors)
      .filter(([field]) => keys.includes(field.split(".")[0]))
      .map(([field, list]) => `${field.includes(".") ? `${field}: ` : ""}${list.join(" ")}`);
    return messages.length ? el("p", { class: "field-error", role: "alert", text: messages.join(" ") }) : null;
  };

  const optionsForm = (): HTMLFormElement => {
    const formats = el(
      "fieldset",
      { class: "export-group", "data-field": "formats" },
      el("legend", { text: t("export.formats") }),
      ...FORMATS.map((f) => checkbox("formats", f, draft.formats.has(f), t(`export.format_${f}`), (on) => (on ? draft.formats.add(f) : draft.formats.delete(f)))),
      fieldError("formats"),
    );
    const ratios = el(
      "fieldset",
      { class: "export-group", "data-field": "splits" },
      el("legend", { text: t("export.ratios") }),
      el(
        "div",
        { class: "row" },
        ...SPLITS.map((s) => {
          const input = el("input", { type: "number", name: `ratio-${s}`, min: 0, max: 1, step: 0.01, value: draft.ratios[s], required: true });
          input.addEventListener("input", () => (draft.ratios[s] = input.value));
          return el("label", { class: "field" }, el("span", { class: "field-label", text: t(`export.split_${s}`) }), input);
        }),
      ),
      el("p", { class: "muted", text: t("export.ratios_hint") }),
      fieldError("splits"),
    );
    const seed = el("input", { type: "number", name: "seed", min: 0, step: 1, value: draft.seed });
    seed.addEventListener("input", () => (draft.seed = seed.value));
    const grouping = el("select", { name: "grouping" }, ...GROUPINGS.map((g) => choice(g, t(`export.grouping_${g.replace("+", "_")}`), g === draft.grouping)));
    grouping.addEventListener("change", () => (draft.grouping = grouping.value));
    const stratify = el(
      "select",
      { name: "stratify_on" },
      choice("", t("export.stratify_default"), draft.stratifyOn === ""),
      ...questions.filter((q) => STRATIFIABLE.includes(q.type)).map((q) => choice(q.key, q.title ? `${q.title} (${q.key})` : q.key, q.key === draft.stratifyOn)),
    );
    stratify.addEventListener("change", () => (draft.stratifyOn = stratify.value));
    const perspective = el(
      "select",
      { name: "perspective" },
      choice("", t("export.perspective_all"), draft.perspective === ""),
      ...perspectives.map((p) => choice(p, p, p === draft.perspective)),
    );
    perspective.addEventListener("change", () => (draft.perspective = perspective.value));
    const labelled = (key: string, control: HTMLElement, ...errorKeys: string[]): HTMLElement =>
      el("label", { class: "field", "data-field": errorKeys[0] }, el("span", { class: "field-label", text: t(key) }), control, fieldError(...errorKeys));
    const settings = el(
      "fieldset",
      { class: "export-group" },
      el("legend", { text: t("export.recipe") }),
      el(
        "div",
        { class: "row" },
        labelled("export.seed", seed, "seed"),
        labelled("export.grouping", grouping, "grouping"),
        labelled("export.stratify_on", stratify, "stratify_on"),
        perspectives.length ? labelled("export.perspective", perspective, "perspective") : null,
      ),
      checkbox("stratify_language", "1", draft.stratifyLanguage, t("export.stratify_language"), (on) => (draft.stratifyLanguage = on)),
      el("p", { class: "muted", text: t("export.grouping_hint") }),
    );
    const provenance = el(
      "fieldset",
      { class: "export-group", "data-field": "provenance" },
      el("legend", { text: t("export.provenance") }),
      el("p", { class: "muted", text: t("export.provenance_hint") }),
      el(
        "table",
        { class: "data export-provenance" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col", text: t("export.split") }), ...ORIGINS.map((o) => el("th", { scope: "col", text: t(`export.origin_${o}`) })))),
        el(
          "tbody",
          {},
          ...SPLITS.map((s) =>
            el(
              "tr",
              {},
              el("th", { scope: "row", text: t(`export.split_${s}`) }),
              ...ORIGINS.map((o) => {
                const input = el("input", { type: "checkbox", name: `provenance-${s}`, value: o, "aria-label": `${t(`export.split_${s}`)}: ${t(`export.origin_${o}`)}` });
                input.checked = draft.provenance[s].has(o);
                input.addEventListener("change", () => (input.checked ? draft.provenance[s].add(o) : draft.provenance[s].delete(o)));
                return el("td", {}, input);
              }),
            ),
          ),
        ),
      ),
      fieldError("provenance"),
    );
    const minimum = el("input", { type: "number", name: "min_annotations", min: 1, max: 50, step: 1, value: draft.minAnnotations });
    minimum.addEventListener("input", () => (draft.minAnnotations = minimum.value));
    const heldout = el("input", { type: "number", name: "heldout_min_annotations", min: 1, max: 50, step: 1, value: draft.heldoutMin, placeholder: t("export.heldout_default") });
    heldout.addEventListener("input", () => (draft.heldoutMin = heldout.value));
    const gold = el(
      "fieldset",
      { class: "export-group", "data-field": "gold" },
      el("legend", { text: t("export.gold") }),
      el("p", { class: "muted", text: t("export.gold_hint") }),
      el(
        "div",
        { class: "row" },
        labelled("export.min_annotations", minimum, "min_annotations"),
        labelled("export.heldout_min_annotations", heldout, "heldout_min_annotations"),
      ),
      checkbox("complete_only", "1", draft.completeOnly, t("export.complete_only"), (on) => (draft.completeOnly = on)),
      checkbox("group_same_text", "1", draft.groupSameText, t("export.group_same_text"), (on) => (draft.groupSameText = on)),
    );
    const known = ["formats", "splits", "seed", "grouping", "stratify_on", "perspective", "provenance", "min_annotations",
      "heldout_min_annotations", "complete_only", "group_same_text"];
    const unclaimed = Object.entries(formErrors).filter(([field]) => !known.includes(field.split(".")[0]));
    const general = el(
      "div",
      { class: "general-errors", role: "alert" },
      generalError ? el("p", { class: "field-error", text: generalError }) : null,
      ...unclaimed.map(([field, list]) => el("p", { class: "field-error", text: `${field}: ${list.join(" ")}` })),
    );
    const submit = el("button", { type: "submit", class: "button primary", text: t(starting ? "export.starting" : "export.start") });
    submit.disabled = starting;
    const form = el("form", { class: "export-form", id: "export-form", novalidate: true }, formats, ratios, settings, provenance, gold, general, submit);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void start();
    });
    return form;
  };

  const body = (): Record<string, unknown> => {
    const ratio = (s: string): number | string => (draft.ratios[s].trim() === "" ? "" : Number(draft.ratios[s]));
    const payload: Record<string, unknown> = {
      formats: FORMATS.filter((f) => draft.formats.has(f)),
      splits: Object.fromEntries(SPLITS.map((s) => [s, ratio(s)])),
      seed: draft.seed.trim() === "" ? 0 : Number(draft.seed),
      grouping: draft.grouping,
      stratify_language: draft.stratifyLanguage,
      provenance: Object.fromEntries(SPLITS.map((s) => [s, ORIGINS.filter((o) => draft.provenance[s].has(o))])),
    };
    if (draft.stratifyOn) payload.stratify_on = draft.stratifyOn;
    if (draft.perspective) payload.perspective = draft.perspective;
    if (draft.minAnnotations.trim()) payload.min_annotations = Number(draft.minAnnotations);
    if (draft.heldoutMin.trim()) payload.heldout_min_annotations = Number(draft.heldoutMin);
    if (draft.completeOnly) payload.complete_only = true;
    if (!draft.groupSameText) payload.group_same_text = false;
    return payload;
  };

  const start = async (): Promise<void> => {
    formErrors = {};
    generalError = "";
    starting = true;
    renderForm();
    try {
      const job = await api<ExportJob>("POST", base, body());
      jobs = [job, ...jobs.filter((j) => j.id !== job.id)];
      schedulePoll();
    } catch (error) {
      if (error instanceof ApiError && error.status === 400 && error.body && typeof error.body === "object") {
        formErrors = Object.fromEntries(Object.entries(error.body as Record<string, unknown>).map(([field, value]) => [field, flatten(value)]));
      } else generalError = errorText(error);
    } finally {
      starting = false;
      renderForm();
      renderJobs();
    }
  };

  const progressLine = (job: ExportJob): HTMLElement => {
    const total = job.progress_total ?? 0;
    const share = total ? Math.floor((100 * job.progress_done) / total) : 0;
    const bar = el("progress", { max: 100, "aria-label": t("export.progress_label", { id: job.id }) });
    if (total) bar.value = share;
    else bar.removeAttribute("value"); // indeterminate until the job knows its size
    return el(
      "div",
      { class: "export-progress" },
      bar,
      el("span", {
        class: "muted",
        text: total ? t("export.progress", { done: formatNumber(job.progress_done), total: formatNumber(total), share: formatNumber(share) }) : t("export.waiting"),
      }),
    );
  };

  const fileList = (job: ExportJob): HTMLElement => {
    const splitOrder = (file: ExportFile): number => (file.split && SPLITS.includes(file.split) ? SPLITS.indexOf(file.split) : SPLITS.length);
    const files = [...job.files].sort(
      (a, b) => FORMAT_ORDER.indexOf(a.format) - FORMAT_ORDER.indexOf(b.format) || splitOrder(a) - splitOrder(b) || a.name.localeCompare(b.name),
    );
    const groups = new Map<string, ExportFile[]>();
    for (const file of files) groups.set(file.format, [...(groups.get(file.format) ?? []), file]);
    return el(
      "dl",
      { class: "export-files" },
      ...[...groups.entries()].flatMap(([format, list]) => [
        el("dt", { text: t(`export.format_${format}`) }),
        el(
          "dd",
          {},
          el(
            "ul",
            {},
            ...list.map((file) =>
              el(
                "li",
                {},
                el("a", { href: file.download_url, download: "", dir: "ltr", "data-file": file.name, text: file.name }),
                el("span", {
                  class: "muted",
                  text: ` ${file.rows !== undefined ? `${t("export.rows", { n: formatNumber(file.rows) })} · ` : ""}${formatBytes(file.size)}`,
                }),
              ),
            ),
          ),
        ),
      ]),
    );
  };

  const jobCard = (job: ExportJob): HTMLElement => {
    const formats = (job.options.formats ?? []).map((f) => t(`export.format_${f}`)).join(", ");
    const ratios = job.options.splits ? SPLITS.map((s) => formatNumber(job.options.splits?.[s] ?? 0, 2)).join(" / ") : "";
    const card = el(
      "li",
      { class: "export-job", "data-job": job.id, "data-status": job.status },
      el(
        "div",
        { class: "row export-job-head" },
        el("strong", { text: t("export.job_title", { id: job.id }) }),
        el("span", { class: `export-status status-${job.status}`, text: t(`export.status_${job.status}`) }),
        el("span", { class: "muted", text: `${formatWhen(job.created_at)}${job.created_by ? ` · ${job.created_by}` : ""}` }),
      ),
      el("p", { class: "muted", text: t("export.job_options", { formats, ratios, seed: String(job.options.seed ?? 0), grouping: t(`export.grouping_${(job.options.grouping ?? GROUPINGS[0]).replace("+", "_")}`) }) }),
    );
    if (active(job)) card.append(progressLine(job));
    if (job.status === "failed" || job.status === "cancelled") card.append(el("p", { class: "field-error", text: job.message || t(`export.status_${job.status}`) }));
    if (job.status === "succeeded") {
      if (job.splits) {
        card.append(
          el(
            "p",
            { class: "export-sizes" },
            ...SPLITS.map((s) =>
              el("span", { text: t("export.split_size", { split: t(`export.split_${s}`), n: formatNumber(job.splits?.[s]?.utterances ?? 0), groups: formatNumber(job.splits?.[s]?.groups ?? 0) }) }),
            ),
            job.duration_s !== null ? el("span", { class: "muted", text: t("export.duration", { s: formatNumber(job.duration_s, 1) }) }) : null,
          ),
        );
      }
      const left = (job.counts.left_out_by_provenance ?? 0) + (job.counts.without_gold ?? 0);
      if (left) card.append(el("p", { class: "muted", text: t("export.left_out", { n: formatNumber(left) }) }));
      card.append(
        el("p", {
          class: "muted export-sources",
          "data-sources": "",
          text: t("export.sources", {
            adjudicated: formatNumber(job.counts.label_source_adjudicated ?? 0),
            tie_broken: formatNumber(job.counts.label_source_tie_broken ?? 0),
            aggregated: formatNumber(job.counts.label_source_aggregated ?? 0),
            single: formatNumber(job.counts.label_source_single_annotation ?? 0),
            open: formatNumber(job.counts.open_ties ?? 0),
          }),
        }),
      );
      if (job.archive_url) {
        const total = job.files.reduce((sum, file) => sum + file.size, 0);
        card.append(
          el(
            "p",
            { class: "export-archive" },
            el("a", { class: "button", href: job.archive_url, download: "", "data-archive": job.id, text: t("export.download_all", { n: formatNumber(job.files.length) }) }),
            el("span", { class: "muted", text: ` ${t("export.download_all_hint", { size: formatBytes(total) })}` }),
          ),
        );
      }
      card.append(fileList(job));
    }
    return card;
  };

  const formHost = el("div", { class: "export-form-host" });
  const listHost = el("div", { class: "export-list-host" });

  const renderJobs = (): void => {
    clear(listHost);
    listHost.append(
      el("h3", { text: t("export.previous") }),
      jobs.length ? el("ul", { class: "export-jobs", id: "export-jobs", "aria-live": "polite" }, ...jobs.map(jobCard)) : el("p", { class: "muted", id: "export-jobs", text: t("export.none") }),
    );
  };

  const renderForm = (): void => {
    clear(formHost);
    formHost.append(optionsForm());
  };

  /** The whole panel; a poll redraws only the job list, so the form keeps focus and what is being typed. */
  const render = (): void => {
    clear(root);
    root.hidden = false;
    root.append(el("h2", { id: "exports-title", text: t("export.title") }), el("p", { class: "muted", text: t(readOnly ? "export.intro_reviewer" : "export.intro") }));
    if (loadError) {
      root.append(el("p", { class: "field-error", text: loadError }));
      return;
    }
    renderJobs();
    if (readOnly) {
      root.append(listHost);
      return;
    }
    renderForm();
    root.append(formHost, listHost);
  };

  function schedulePoll(): void {
    window.clearTimeout(pollTimer);
    if (!jobs.some(active)) return;
    pollTimer = window.setTimeout(() => void poll(), POLL_MS);
  }

  const poll = async (): Promise<void> => {
    const running = jobs.filter(active);
    try {
      const fresh = await Promise.all(running.map((job) => api<ExportJob>("GET", `${base}${job.id}/`)));
      const byId = new Map(fresh.map((job) => [job.id, job]));
      jobs = jobs.map((job) => byId.get(job.id) ?? job);
      renderJobs();
    } catch {
      // A failed poll is tried again on the next tick; the list keeps its last known state.
    }
    schedulePoll();
  };

  const load = async (): Promise<void> => {
    try {
      const page = await api<{ results: ExportJob[] }>("GET", base);
      jobs = page.results;
    } catch (error) {
      if (error instanceof ApiError && (error.status === 403 || error.status === 404)) {
        root.hidden = true; // neither a lead nor a reviewer: no export panel
        return;
      }
      loadError = errorText(error);
    }
    try {
      const [project, schemas] = await Promise.all([
        api<{ schema_version: number; my_role: string | null }>("GET", `/api/projects/${projectId}/`),
        apiList<{ versions: { id: number; questions: Question[]; perspectives: string[] }[] }>("/api/schemas/"),
      ]);
      readOnly = project.my_role === "reviewer";
      const version = schemas.flatMap((s) => s.versions).find((v) => v.id === project.schema_version);
      if (version) {
        questions = version.questions;
        perspectives = version.perspectives;
      }
    } catch {
      // Without the schema the default stratification question is used; the rest of the panel works.
    }
    render();
    schedulePoll();
  };

  onLanguageChange(() => {
    if (!root.hidden) render();
  });
  void load();
}

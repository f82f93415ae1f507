// Import in the browser, one screen in two places: /projects/<id>/import/ (leads; into the project's corpus) and
// "Import a corpus" on My projects (name and licence make a new corpus first). Upload files (or a whole folder: train/,
// dev/, test/ name the splits) and an audio zip, pick a preset (per-rater files import as raters) or map columns with a
// preview of the first rows as the import reads them, choose all-or-nothing or skip-invalid, then watch the job: what
// it imported (utterances, labels, raters attached, blank cells, texts in two splits), its per-row errors (file, row,
// column, reason, downloadable as CSV), and the agreement of the imported ratings one link away.
import { api, apiList, ApiError, csrfToken, errorText, flatten } from "./api";
import { $, el, clear } from "./dom";
import { t, formatNumber, onLanguageChange } from "./i18n";

interface Preview {
  file: string;
  format: string;
  header: string[];
  role: string;
  rows: { row: number; values: Record<string, unknown>; read: Record<string, unknown> | null; errors: RowError[] }[];
  file_error: RowError | null;
  options: Record<string, unknown>;
}
interface RowError {
  file: string;
  row: number | null;
  column: string;
  reason: string;
}
interface Job {
  id: number;
  status: string;
  progress_done: number;
  progress_total: number;
  counts: Record<string, number>;
  error_count: number;
  message: string;
}
interface Schema {
  slug: string;
  name: string;
  versions: { version: number; questions: { key: string; title?: string }[] }[];
}

export const PRESETS = ["brighter_raters", "brighter", "mahaemotions", "meld", "emobank", "emobank_ratings"];
const FIELDS = ["text", "language", "external_id", "speaker", "conversation", "turn_index", "audio", "start", "end"];
const FINISHED = ["succeeded", "failed", "cancelled"];
const POLL_MS = 800;
const ERRORS_SHOWN = 50; // the first page of /api/jobs/<id>/errors/; the CSV download holds them all
const COUNTS = ["rows", "created", "annotations", "labels_attached", "blank_cells", "duplicates", "cross_split_texts", "rejected_rows"];

function cell(value: unknown): string {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

class ImportScreen {
  private files: File[] = [];
  private audio: File | null = null;
  private header: string[] = [];
  private schemas: Schema[] = [];
  private preview: Preview | null = null;
  private previewError = "";
  private job: Job | null = null;
  private jobErrors: RowError[] = [];
  private pollTimer: number | undefined;
  private previewTimer: number | undefined;
  private readonly state = {
    preset: "",
    mode: "all_or_nothing",
    language: "",
    split: "",
    intensity: false,
    moreOptions: "",
    schema: "",
    extra: "metadata",
    mapping: {} as Record<string, string>,
    labels: {} as Record<string, string>,
  };
  private readonly fileInput = el("input", { type: "file", name: "files", multiple: true, accept: ".csv,.tsv,.tab,.jsonl,.ndjson,.json,.parquet,.pq,.txt" });
  private readonly folderToggle = el("input", { type: "checkbox", name: "folder" });
  // A new corpus (no corpus yet): its name and licence, kept across re-renders.
  private readonly nameInput = el("input", { name: "name", required: true, maxlength: 200 });
  private readonly licenseInput = el("input", { name: "license", required: true, maxlength: 100, placeholder: "CC-BY-4.0" });
  private corpusErrors: Record<string, string[]> = {};
  private corpusPending: Promise<number | null> | null = null;
  private readonly audioInput = el("input", { type: "file", name: "audio_archive", accept: ".zip" });
  private readonly view = {
    form: el("form", { class: "import-form", novalidate: true }),
    preview: el("section", { class: "import-preview", "aria-live": "polite" }),
    job: el("section", { class: "import-job", "aria-live": "polite" }),
  };

  /** ``projectId`` and ``corpusId`` null: the files make a new corpus (named on the form) on My projects. */
  constructor(
    private root: HTMLElement,
    private projectId: number | null,
    private corpusId: number | null,
  ) {
    clear(root);
    const title = projectId === null ? el("h2", { id: "import-title", text: t("import.title_new") }) : el("h1", { text: t("import.title") });
    root.append(title);
    if (projectId === null) root.append(el("p", { class: "muted import-intro", text: t("import.intro") }));
    root.append(this.view.form, this.view.preview, this.view.job);
    // A folder upload keeps each file's folder (train/, dev/, test/): it names the split.
    this.folderToggle.addEventListener("change", () => this.fileInput.toggleAttribute("webkitdirectory", this.folderToggle.checked));
    // Files chosen before the corpus had a name: read them once it has one.
    for (const input of [this.nameInput, this.licenseInput]) {
      input.addEventListener("change", () => {
        if (this.files.length && !this.header.length && this.corpusId === null) void this.readHeader();
      });
    }
    this.fileInput.addEventListener("change", () => {
      this.files = Array.from(this.fileInput.files ?? []);
      this.header = [];
      void this.readHeader();
    });
    this.audioInput.addEventListener("change", () => {
      this.audio = this.audioInput.files?.[0] ?? null;
      this.schedulePreview();
    });
    onLanguageChange(() => this.renderAll());
    void this.start();
  }

  private async start(): Promise<void> {
    try {
      this.schemas = await apiList<Schema>("/api/schemas/");
    } catch {
      this.schemas = [];
    }
    this.renderAll();
  }

  /** The import options, or null when "More options" is not a JSON object (the form says so). */
  private options(): Record<string, unknown> | null {
    const s = this.state;
    const options: Record<string, unknown> = { mode: s.mode };
    if (s.split) options.split = s.split;
    if (s.intensity) options.intensity = true;
    if (s.preset) {
      options.preset = s.preset;
      if (s.language) options.language = s.language;
    } else {
      const mapping: Record<string, unknown> = { extra_columns: s.extra };
      for (const [name, column] of Object.entries(s.mapping)) if (column) mapping[name] = column;
      const labels = Object.fromEntries(Object.entries(s.labels).filter(([, column]) => column));
      if (Object.keys(labels).length) mapping.labels = labels;
      options.mapping = mapping;
      if (s.language && !s.mapping.language) options.language = s.language;
      if (s.schema) options.schema = s.schema;
    }
    if (s.moreOptions.trim()) {
      let more: unknown;
      try {
        more = JSON.parse(s.moreOptions);
      } catch {
        more = null;
      }
      if (!more || typeof more !== "object" || Array.isArray(more)) return null;
      Object.assign(options, more);
    }
    const paths = this.files.map((f) => f.webkitRelativePath || f.name);
    if (paths.some((path, i) => path !== this.files[i].name)) options.paths = paths;
    return options;
  }

  /** The corpus the files go into: the project's, or a new one made from the name and licence (once). */
  private ensureCorpus(): Promise<number | null> {
    // One request at a time: the file's header and the Import button may both ask before the corpus exists.
    if (this.corpusId !== null) return Promise.resolve(this.corpusId);
    this.corpusPending ??= this.createCorpus().finally(() => (this.corpusPending = null));
    return this.corpusPending;
  }

  private async createCorpus(): Promise<number | null> {
    this.corpusErrors = {};
    try {
      const corpus = await api<{ id: number }>("POST", "/api/corpora/", { name: this.nameInput.value.trim(), license: this.licenseInput.value.trim(), source: "" });
      this.corpusId = corpus.id;
    } catch (error) {
      if (error instanceof ApiError && error.status === 400 && error.body && typeof error.body === "object") {
        this.corpusErrors = Object.fromEntries(Object.entries(error.body as Record<string, unknown>).map(([k, v]) => [k, flatten(v)]));
      } else this.corpusErrors = { general: [errorText(error)] };
    }
    this.renderForm();
    return this.corpusId;
  }

  // --- preview ------------------------------------------------------------------------------------------------------

  private async readHeader(): Promise<void> {
    if (!this.files.length) return;
    if (this.corpusId === null && (!this.nameInput.value.trim() || !this.licenseInput.value.trim())) {
      this.previewError = t("import.corpus_first");
      this.renderForm();
      this.renderPreview();
      return;
    }
    const corpusId = await this.ensureCorpus();
    if (corpusId === null) {
      this.renderPreview();
      return;
    }
    const body = new FormData();
    body.append("file", this.files[0]);
    body.append("options", "{}");
    body.append("header_only", "true");
    try {
      const answer = await this.post<Preview>(`/api/corpora/${corpusId}/imports/preview/`, body);
      this.header = answer.header;
      this.preview = answer.file_error ? answer : null;
      this.previewError = "";
      // A first guess: columns named like the fields they feed.
      for (const name of FIELDS) {
        if (!this.state.mapping[name]) {
          const match = this.header.find((h) => h.toLowerCase() === name || (name === "language" && h.toLowerCase() === "lang"));
          if (match) this.state.mapping[name] = match;
        }
      }
    } catch (error) {
      this.previewError = errorText(error);
    }
    this.renderForm();
    this.renderPreview();
    this.schedulePreview();
  }

  private schedulePreview(): void {
    window.clearTimeout(this.previewTimer);
    this.previewTimer = window.setTimeout(() => void this.runPreview(), 250);
  }

  private async runPreview(): Promise<void> {
    if (!this.files.length || this.corpusId === null) return;
    const options = this.options();
    if (options === null) {
      this.previewError = `${t("import.extra_options")}: ${t("import.bad_json")}`;
      this.renderPreview();
      return;
    }
    const body = new FormData();
    body.append("file", this.files[0]);
    body.append("options", JSON.stringify(options));
    if (this.audio) body.append("audio_archive", this.audio);
    try {
      this.preview = await this.post<Preview>(`/api/corpora/${this.corpusId}/imports/preview/`, body);
      this.previewError = "";
    } catch (error) {
      this.preview = null;
      this.previewError = error instanceof ApiError && error.status === 400 ? this.optionErrors(error) : errorText(error);
    }
    this.renderPreview();
  }

  private optionErrors(error: ApiError): string {
    const body = (error.body ?? {}) as Record<string, unknown>;
    return Object.entries(body).map(([field, messages]) => `${field}: ${flatten(messages).join(" ")}`).join(" · ");
  }

  /** multipart POST with the CSRF token (the JSON helper sends JSON bodies only). */
  private async post<T>(url: string, body: FormData): Promise<T> {
    let response: Response;
    try {
      response = await fetch(url, { method: "POST", body, credentials: "same-origin", headers: { Accept: "application/json", "X-CSRFToken": csrfToken() } });
    } catch {
      throw new ApiError(0, null);
    }
    const data: unknown = await response.json().catch(() => null);
    if (!response.ok) throw new ApiError(response.status, data);
    return data as T;
  }

  // --- the job ------------------------------------------------------------------------------------------------------

  private async startImport(button: HTMLButtonElement): Promise<void> {
    if (!this.files.length) return;
    const options = this.options();
    if (options === null) {
      this.previewError = `${t("import.extra_options")}: ${t("import.bad_json")}`;
      this.renderPreview();
      return;
    }
    button.disabled = true;
    const corpusId = await this.ensureCorpus();
    if (corpusId === null) {
      button.disabled = false;
      return;
    }
    const body = new FormData();
    for (const file of this.files) body.append("files", file, file.name);
    if (this.audio) body.append("audio_archive", this.audio);
    body.append("options", JSON.stringify(options));
    try {
      this.job = await this.post<Job>(`/api/corpora/${corpusId}/imports/`, body);
      this.jobErrors = [];
    } catch (error) {
      button.disabled = false;
      this.previewError = error instanceof ApiError && error.status === 400 ? this.optionErrors(error) : errorText(error);
      this.renderPreview();
      return;
    }
    this.renderJob();
    this.poll();
  }

  private poll(): void {
    window.clearTimeout(this.pollTimer);
    const job = this.job;
    if (!job) return;
    this.pollTimer = window.setTimeout(async () => {
      try {
        this.job = await api<Job>("GET", `/api/jobs/${job.id}/`);
        if (this.job.error_count && this.jobErrors.length < Math.min(this.job.error_count, ERRORS_SHOWN)) {
          const page = await api<{ results: RowError[] }>("GET", `/api/jobs/${job.id}/errors/`);
          this.jobErrors = page.results;
        }
      } catch (error) {
        this.previewError = errorText(error);
      }
      this.renderJob();
      if (this.job && !FINISHED.includes(this.job.status)) this.poll();
    }, POLL_MS);
  }

  // --- rendering ----------------------------------------------------------------------------------------------------

  private renderAll(): void {
    const title = this.root.querySelector("h1, h2#import-title");
    if (title) title.textContent = t(this.projectId === null ? "import.title_new" : "import.title");
    const intro = this.root.querySelector(".import-intro");
    if (intro) intro.textContent = t("import.intro");
    this.renderForm();
    this.renderPreview();
    this.renderJob();
  }

  private renderForm(): void {
    const form = this.view.form;
    clear(form);
    const s = this.state;
    // The file inputs are made once: a rebuilt input would forget the files the lead chose.
    const fileInput = this.fileInput;
    const audioInput = this.audioInput;
    const preset = el("select", { name: "preset" });
    preset.append(el("option", { value: "", text: t("import.own_mapping") }));
    for (const p of PRESETS) preset.append(el("option", { value: p, text: t(`import.preset_${p}`), selected: p === s.preset }));
    preset.addEventListener("change", () => {
      s.preset = preset.value;
      this.renderForm();
      this.schedulePreview();
    });
    const modes = el(
      "fieldset",
      { class: "modes" },
      el("legend", { text: t("import.mode") }),
      ...["all_or_nothing", "skip_invalid"].map((mode) => {
        const radio = el("input", { type: "radio", name: "mode", value: mode, checked: s.mode === mode });
        radio.addEventListener("change", () => {
          s.mode = mode;
          this.schedulePreview();
        });
        return el("label", { class: "radio" }, radio, el("span", { text: t(`import.mode_${mode}`) }));
      }),
    );
    const field = (labelKey: string, control: HTMLElement, hintKey?: string, name?: string): HTMLElement =>
      el(
        "label",
        { class: "field", "data-field": name ?? null },
        el("span", { class: "field-label", text: t(labelKey) }),
        control,
        hintKey ? el("span", { class: "muted small", text: t(hintKey) }) : null,
        name && this.corpusErrors[name] ? el("span", { class: "field-error", role: "alert", text: this.corpusErrors[name].join(" ") }) : null,
      );
    if (this.corpusId === null) {
      form.append(el("div", { class: "row" }, field("import.name", this.nameInput, undefined, "name"), field("import.license", this.licenseInput, undefined, "license")));
    } else if (this.projectId === null) {
      form.append(el("p", { class: "muted", text: t("import.same_corpus") }));
    }
    for (const [k, v] of Object.entries(this.corpusErrors).filter(([k]) => k !== "name" && k !== "license")) {
      form.append(el("p", { class: "field-error", role: "alert", text: `${k === "general" ? "" : `${k}: `}${v.join(" ")}` }));
    }
    const text = (name: "language" | "split", placeholder: string): HTMLInputElement => {
      const input = el("input", { type: "text", name, value: s[name], placeholder, maxlength: name === "language" ? 35 : 40 });
      input.addEventListener("input", () => {
        s[name] = input.value.trim();
        this.schedulePreview();
      });
      return input;
    };
    const intensity = el("input", { type: "checkbox", name: "intensity", value: "1", checked: s.intensity });
    intensity.addEventListener("change", () => {
      s.intensity = intensity.checked;
      this.schedulePreview();
    });
    const more = el("textarea", { name: "more_options", rows: 2, dir: "ltr", placeholder: '{"mapping": {"raters": {"question": "emotions", "columns": "Annotator-*", "label_column": "emotion"}}}' });
    more.value = s.moreOptions;
    more.addEventListener("input", () => {
      s.moreOptions = more.value;
      this.schedulePreview();
    });
    form.append(
      el(
        "div",
        { class: "import-files" },
        field("import.files", fileInput, "import.files_hint"),
        el("label", { class: "export-check" }, this.folderToggle, el("span", { text: t("import.folder") })),
        field("import.audio", audioInput, "import.audio_hint"),
      ),
      el(
        "div",
        { class: "row" },
        field("import.preset", preset),
        // With a mapping, the language sits with the columns (a column, or one language for every row).
        s.preset ? field("import.language", text("language", "mr")) : null,
        field("import.split", text("split", t("import.split_hint"))),
      ),
      el("label", { class: "export-check" }, intensity, el("span", { text: t("import.intensity") })),
    );
    if (!s.preset) form.append(this.mappingEditor());
    form.append(field("import.extra_options", more), modes);
    const submit = el("button", { type: "submit", class: "button primary", "data-action": "import", disabled: !this.files.length, text: t("import.start") });
    form.append(submit);
    form.onsubmit = (event) => {
      event.preventDefault();
      void this.startImport(submit);
    };
  }

  private columnSelect(value: string, onChange: (column: string) => void, name: string): HTMLSelectElement {
    const select = el("select", { name });
    select.append(el("option", { value: "", text: t("import.not_mapped") }));
    for (const h of this.header) select.append(el("option", { value: h, text: h, selected: h === value }));
    if (value && !this.header.includes(value)) select.append(el("option", { value, text: value, selected: true }));
    select.addEventListener("change", () => {
      onChange(select.value);
      this.schedulePreview();
    });
    return select;
  }

  private mappingEditor(): HTMLElement {
    const s = this.state;
    const box = el("fieldset", { class: "mapping" }, el("legend", { text: t("import.mapping") }));
    if (!this.header.length) {
      box.append(el("p", { class: "muted", text: t("import.choose_file_first") }));
      return box;
    }
    const grid = el("div", { class: "mapping-grid" });
    for (const name of FIELDS) {
      grid.append(
        el("label", { class: "field" }, el("span", { class: "field-label", text: t(`import.field_${name}`) }), this.columnSelect(s.mapping[name] ?? "", (c) => (s.mapping[name] = c), `mapping.${name}`)),
      );
    }
    const language = el("input", { type: "text", name: "language", value: s.language, placeholder: "mr, hi, en", maxlength: 35 }); // the same setting as a preset's language
    language.addEventListener("input", () => {
      s.language = language.value.trim();
      this.schedulePreview();
    });
    grid.append(el("label", { class: "field" }, el("span", { class: "field-label", text: t("import.fixed_language") }), language));
    const extra = el("select", { name: "extra_columns" });
    for (const policy of ["metadata", "ignore", "error"]) extra.append(el("option", { value: policy, text: t(`import.extra_${policy}`), selected: policy === s.extra }));
    extra.addEventListener("change", () => {
      s.extra = extra.value;
      this.schedulePreview();
    });
    grid.append(el("label", { class: "field" }, el("span", { class: "field-label", text: t("import.extra") }), extra));
    box.append(grid);
    // Labels: the schema they answer, then one column per question.
    const schema = el("select", { name: "schema" });
    schema.append(el("option", { value: "", text: t("import.no_labels") }));
    for (const sc of this.schemas) schema.append(el("option", { value: sc.slug, text: `${sc.name} (${sc.slug})`, selected: sc.slug === s.schema }));
    schema.addEventListener("change", () => {
      s.schema = schema.value;
      s.labels = {};
      this.renderForm();
      this.schedulePreview();
    });
    box.append(el("label", { class: "field" }, el("span", { class: "field-label", text: t("import.labels_schema") }), schema));
    const chosen = this.schemas.find((sc) => sc.slug === s.schema);
    const newest = chosen?.versions.slice().sort((a, b) => b.version - a.version)[0];
    if (newest) {
      const labels = el("div", { class: "mapping-grid" });
      for (const q of newest.questions) {
        labels.append(el("label", { class: "field" }, el("span", { class: "field-label", text: t("import.label_column", { question: q.title || q.key }) }), this.columnSelect(s.labels[q.key] ?? "", (c) => (s.labels[q.key] = c), `labels.${q.key}`)));
      }
      box.append(labels);
    }
    return box;
  }

  private renderPreview(): void {
    const box = this.view.preview;
    clear(box);
    if (!this.files.length) return;
    box.append(el("h2", { text: t("import.preview") }));
    if (this.previewError) {
      box.append(el("p", { class: "field-error", role: "alert", text: this.previewError }));
      return;
    }
    const p = this.preview;
    if (!p) {
      box.append(el("p", { class: "muted", text: t("common.loading") }));
      return;
    }
    if (p.file_error) {
      box.append(el("p", { class: "field-error", role: "alert", text: this.errorLine(p.file_error) }));
      return;
    }
    box.append(el("p", { class: "muted small", text: t("import.preview_hint", { file: p.file, rows: formatNumber(p.rows.length) }) }));
    const head = el("tr", {}, el("th", { scope: "col", text: t("import.row") }), ...p.header.map((h) => el("th", { scope: "col", text: h })), el("th", { scope: "col", text: t("import.read_as") }));
    const body = el("tbody");
    for (const row of p.rows) {
      const read = row.read
        ? el("td", { class: "read-as", dir: "auto" }, ...this.readAs(row.read))
        : el("td", { class: "read-as" }, ...row.errors.map((e) => el("p", { class: "field-error", text: `${e.column ? `${e.column}: ` : ""}${e.reason}` })));
      body.append(el("tr", { class: row.errors.length ? "invalid" : "" }, el("td", { class: "num", text: String(row.row) }), ...p.header.map((h) => el("td", { dir: "auto", text: cell(row.values[h]) })), read));
    }
    box.append(el("div", { class: "table-scroll" }, el("table", { class: "data preview-table" }, el("thead", {}, head), body)));
  }

  private readAs(read: Record<string, unknown>): HTMLElement[] {
    const parts: HTMLElement[] = [];
    const add = (key: string, value: unknown): void => {
      if (value === null || value === undefined || value === "" || (typeof value === "object" && !Object.keys(value as object).length)) return;
      parts.push(el("div", {}, el("span", { class: "muted small", text: `${t(`import.read_${key}`)}: ` }), el("span", { text: cell(value) })));
    };
    for (const key of ["text", "language", "speaker", "conversation", "turn_index", "external_id", "audio", "answers"]) add(key, read[key]);
    if (read.answers) add("rater", read.rater); // who answers for the labels; rows without labels have none
    return parts;
  }

  private errorLine(e: RowError): string {
    const where = [e.file, e.row !== null && e.row !== undefined ? t("import.row_n", { row: e.row }) : "", e.column].filter(Boolean).join(" · ");
    return `${where}: ${e.reason}`;
  }

  private renderJob(): void {
    const box = this.view.job;
    clear(box);
    const job = this.job;
    if (!job) return;
    const share = job.progress_total ? Math.min(100, Math.round((100 * job.progress_done) / job.progress_total)) : job.status === "succeeded" ? 100 : 0;
    box.append(
      el("h2", { text: t("import.job", { id: job.id }) }),
      el("p", { class: `job-status status-${job.status}`, "data-status": job.status, text: t(`import.status_${job.status}`) }),
      el("div", { class: "meter", role: "progressbar", "aria-valuenow": share, "aria-valuemin": 0, "aria-valuemax": 100 }, el("span", { style: `inline-size:${share}%` })),
      job.message ? el("p", { class: job.status === "failed" ? "field-error" : "muted", text: job.message }) : "",
      el(
        "dl",
        { class: "counts" },
        ...COUNTS.flatMap((k) =>
          job.counts?.[k] !== undefined ? [el("dt", { text: t(`import.count_${k}`) }), el("dd", { "data-count": k, text: formatNumber(job.counts[k]) })] : [],
        ),
      ),
    );
    if (job.error_count) {
      box.append(
        el(
          "div",
          { class: "row" },
          el("h3", { text: t("import.errors", { count: formatNumber(job.error_count) }) }),
          el("a", { class: "button small", href: `/api/jobs/${job.id}/errors/csv/`, download: `job-${job.id}-errors.csv`, "data-action": "errors-csv", text: t("import.download_csv") }),
        ),
        el(
          "div",
          { class: "table-scroll" },
          el(
            "table",
            { class: "data job-errors" },
            el("thead", {}, el("tr", {}, ...["import.col_file", "import.row", "import.col_column", "import.col_reason"].map((k) => el("th", { scope: "col", text: t(k) })))),
            el("tbody", {}, ...this.jobErrors.map((e) => el("tr", {}, el("td", { text: e.file }), el("td", { class: "num", text: e.row === null ? "" : String(e.row) }), el("td", { text: e.column }), el("td", { dir: "auto", text: e.reason })))),
          ),
        ),
      );
    }
    if (job.status === "succeeded") {
      const links = el("p", { class: "row" });
      if (this.projectId !== null) {
        links.append(el("a", { class: "button", href: `/projects/${this.projectId}/items/`, text: t("items.link") }), el("a", { class: "button", href: `/projects/${this.projectId}/manage/`, text: t("projects.manage") }));
      }
      // The imported raters' agreement (per corpus, before any project uses it).
      if ((job.counts?.annotations ?? 0) > 0 || this.projectId === null) {
        links.append(el("a", { class: "button primary", href: `/corpora/${this.corpusId}/quality/`, "data-link": "ratings", text: t("import.open_ratings") }));
      }
      box.append(links);
    }
  }
}

export function mountImport(): void {
  const root = $("#import");
  new ImportScreen(root, Number(root.dataset.projectId), Number(root.dataset.corpusId));
}

/** "Import a corpus" on My projects: the same screen, making a new corpus. */
export function importPanel(): HTMLElement {
  const root = el("section", { class: "import-panel", id: "import-corpus", "aria-labelledby": "import-title" });
  new ImportScreen(root, null, null);
  return root;
}

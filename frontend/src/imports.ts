// "Import a corpus" on My projects: name and licence, the files (or a whole folder: train/, dev/, test/ name the
// splits), a preset and its options; the corpus is made (POST /api/corpora/), the files go up in one multipart
// request (POST /api/corpora/<id>/imports/, with each file's folder in the paths option), and the import job is
// polled until it reports what it imported: utterances, labels, raters attached, blank cells, texts in two splits.
// Then the agreement of the imported ratings is one link away. Server text goes in as text only.
import { api, ApiError, csrfToken, errorText, flatten } from "./api";
import { el, clear } from "./dom";
import { formatNumber, onLanguageChange, t } from "./i18n";

interface Job {
  id: number;
  status: "pending" | "running" | "succeeded" | "failed" | "cancelled";
  progress_done: number;
  progress_total: number | null;
  counts: Record<string, number>;
  message: string;
}

const PRESETS = ["", "brighter_raters", "brighter", "mahaemotions", "meld", "emobank", "emobank_ratings"];
const POLL_MS = 1500;
const FINISHED = ["succeeded", "failed", "cancelled"];
const COUNTS = ["created", "annotations", "labels_attached", "blank_cells", "duplicates", "cross_split_texts", "rejected_rows"];

async function upload(corpusId: number, files: File[], options: Record<string, unknown>): Promise<Job> {
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  form.append("options", JSON.stringify(options));
  let response: Response;
  try {
    response = await fetch(`/api/corpora/${corpusId}/imports/`, {
      method: "POST", credentials: "same-origin", headers: { Accept: "application/json", "X-CSRFToken": csrfToken() }, body: form,
    });
  } catch {
    throw new ApiError(0, null);
  }
  const data: unknown = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data as Job;
}

export function importPanel(): HTMLElement {
  const root = el("section", { class: "import-panel", id: "import-corpus", "aria-labelledby": "import-title" });
  let errors: Record<string, string[]> = {};
  let job: Job | null = null;
  let corpusId: number | null = null;
  let busy = false;

  const field = (key: string, name: string, control: HTMLElement): HTMLElement =>
    el(
      "label",
      { class: "field", "data-field": name },
      el("span", { class: "field-label", text: t(key) }),
      control,
      errors[name] ? el("span", { class: "field-error", role: "alert", text: errors[name].join(" ") }) : null,
    );

  const status = (): HTMLElement | null => {
    if (!job) return null;
    const current = job;
    const box = el("div", { class: "import-status", "data-status": current.status, role: "status", "aria-live": "polite" });
    box.append(el("p", { text: t(`import.status_${current.status}`) }));
    if (current.message) box.append(el("p", { class: current.status === "failed" ? "field-error" : "muted", text: current.message }));
    const shown = COUNTS.filter((k) => (current.counts[k] ?? 0) > 0 || k === "created");
    if (current.status === "succeeded") {
      box.append(el("ul", { class: "import-counts" }, ...shown.map((k) => el("li", { "data-count": k, text: t(`import.count_${k}`, { n: formatNumber(current.counts[k] ?? 0) }) }))));
      if (corpusId !== null) box.append(el("a", { class: "button primary", href: `/corpora/${corpusId}/quality/`, "data-link": "ratings", text: t("import.open_ratings") }));
    }
    return box;
  };

  const poll = async (): Promise<void> => {
    if (!job || FINISHED.includes(job.status)) return;
    try {
      job = await api<Job>("GET", `/api/jobs/${job.id}/`);
    } catch {
      // tried again on the next tick
    }
    render();
    if (job && !FINISHED.includes(job.status)) window.setTimeout(() => void poll(), POLL_MS);
  };

  const start = async (form: HTMLFormElement): Promise<void> => {
    const data = new FormData(form);
    const input = form.querySelector<HTMLInputElement>('input[name="files"]');
    const files = Array.from(input?.files ?? []);
    errors = {};
    if (!files.length) errors.files = [t("import.need_files")];
    const options: Record<string, unknown> = { mode: data.get("mode") || "all_or_nothing" };
    for (const key of ["preset", "language", "split", "schema"]) {
      const value = String(data.get(key) ?? "").trim();
      if (value) options[key] = value;
    }
    if (data.get("intensity")) options.intensity = true;
    const extra = String(data.get("extra") ?? "").trim();
    if (extra) {
      try {
        Object.assign(options, JSON.parse(extra));
      } catch {
        errors.extra = [t("import.bad_json")];
      }
    }
    // A folder upload keeps each file's folder (train/, dev/, test/): it names the split.
    const paths = files.map((f) => f.webkitRelativePath || f.name);
    if (paths.some((path, i) => path !== files[i].name)) options.paths = paths;
    if (Object.keys(errors).length) return render();
    busy = true;
    render();
    try {
      if (corpusId === null) {
        const corpus = await api<{ id: number }>("POST", "/api/corpora/", { name: data.get("name"), license: data.get("license"), source: data.get("source") ?? "" });
        corpusId = corpus.id;
      }
      job = await upload(corpusId, files, options);
      window.setTimeout(() => void poll(), POLL_MS);
    } catch (error) {
      if (error instanceof ApiError && error.status === 400 && error.body && typeof error.body === "object") {
        errors = Object.fromEntries(Object.entries(error.body as Record<string, unknown>).map(([k, v]) => [k, flatten(v)]));
      } else errors = { general: [errorText(error)] };
    } finally {
      busy = false;
      render();
    }
  };

  const render = (): void => {
    clear(root);
    const preset = el("select", { name: "preset" }, ...PRESETS.map((p) => el("option", { value: p, text: p ? t(`import.preset_${p}`) : t("import.preset_none") })));
    const files = el("input", { type: "file", name: "files", multiple: true, accept: ".csv,.tsv,.tab,.jsonl,.ndjson,.parquet,.pq" });
    const folder = el("input", { type: "checkbox", name: "folder" });
    folder.addEventListener("change", () => files.toggleAttribute("webkitdirectory", folder.checked));
    const known = ["name", "license", "files", "preset", "language", "split", "schema", "extra", "general", "slug"];
    const unclaimed = Object.entries(errors).filter(([k]) => !known.includes(k));
    const submit = el("button", { type: "submit", class: "button primary", "data-action": "import", text: t(busy ? "import.working" : "import.start") });
    submit.disabled = busy || (job !== null && !FINISHED.includes(job.status));
    const form = el(
      "form",
      { class: "import-form", id: "import-form", novalidate: true },
      corpusId === null
        ? el("div", { class: "row" },
            field("import.name", "name", el("input", { name: "name", required: true, maxlength: 200 })),
            field("import.license", "license", el("input", { name: "license", required: true, maxlength: 100, placeholder: "CC-BY-4.0" })))
        : el("p", { class: "muted", text: t("import.same_corpus") }),
      el("div", { class: "row" }, field("import.files", "files", files), el("label", { class: "export-check" }, folder, el("span", { text: t("import.folder") }))),
      el("div", { class: "row" },
        field("import.preset", "preset", preset),
        field("import.language", "language", el("input", { name: "language", maxlength: 35, placeholder: "mr" })),
        field("import.split", "split", el("input", { name: "split", maxlength: 40, placeholder: t("import.split_hint") })),
        field("import.schema", "schema", el("input", { name: "schema", maxlength: 100 }))),
      el("label", { class: "export-check" }, el("input", { type: "checkbox", name: "intensity", value: "1" }), el("span", { text: t("import.intensity") })),
      field("import.extra", "extra", el("textarea", { name: "extra", rows: 2, dir: "ltr", placeholder: '{"mapping": {"raters": {"question": "emotions", "columns": "Annotator-*", "label_column": "emotion"}}}' })),
      ...unclaimed.concat(errors.general ? [["", errors.general]] : []).map(([k, v]) => el("p", { class: "field-error", role: "alert", text: `${k ? `${k}: ` : ""}${v.join(" ")}` })),
      submit,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void start(form);
    });
    root.append(el("h2", { id: "import-title", text: t("import.title") }), el("p", { class: "muted", text: t("import.intro") }), form);
    const shown = status();
    if (shown) root.append(shown);
  };

  onLanguageChange(render);
  render();
  return root;
}

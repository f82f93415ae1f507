// Lead panel "LLM labelling" on the project manage page (API: /api/projects/<id>/llm/...): register an
// OpenAI-compatible endpoint (the key is sent once and never shown again) and test it with one item; edit a prompt
// template (a new version on save) and preview it on 5 items; start a labelling run and watch its progress, tokens
// and cost; publish synthetic labels from one run or several combined; read the evaluation against human gold.
// The dashboard's "Models and LLMs against humans" card shows the same evaluation (llmEvaluationSection).
// Everything from the server goes in as text or attribute values.
import { api, ApiError, errorText, flatten } from "./api";
import { el, clear } from "./dom";
import { formatNumber, onLanguageChange, t } from "./i18n";
import "./llm.css";

interface Endpoint { id: number; name: string; base_url: string; model: string; has_api_key: boolean; max_concurrency: number }
interface Template { id: number; name: string; version: number; kind: string; user: string; examples_count: number }
interface Job { id: number; status: string; progress_done: number; progress_total: number | null; counts: Record<string, number | string>; message: string; error_count: number }
interface Run { id: number; endpoint: number; endpoint_name: string; template: number; template_name: string; template_version: number; selection: Record<string, unknown>; job: Job }
interface Figures {
  n_items: number; macro_f1?: number; majority_baseline_macro_f1?: number | null; kappa_with_human_majority?: number | null;
  alpha_humans?: number | null; alpha_humans_and_llm?: number | null; verdict: string;
  per_label_f1?: Record<string, number>; confusion?: { labels: string[]; matrix: number[][] };
}
interface Source {
  kind: string; endpoint_name?: string; model?: string; template_name?: string; template_version?: number;
  template_kind?: string; method?: string; model_version?: string; questions: Record<string, Figures & { per_language: Record<string, Figures> }>;
}
interface Evaluation { questions: string[]; sources: Source[]; note: string }

const POLL_MS = 2000;
const KINDS = ["cotr", "direct", "few_shot"];
const SPLITS = ["", "train", "dev", "test"];
const METHODS = ["single", "union", "intersection", "majority"];

const fmt = (v: number | null | undefined): string => (v === null || v === undefined ? "—" : formatNumber(v, 3));

function field(labelKey: string, control: HTMLElement, name: string): HTMLLabelElement {
  control.setAttribute("name", name);
  return el("label", { class: "field" }, el("span", { class: "field-label", text: t(labelKey) }), control);
}

function select(values: [string, string][], name: string): HTMLSelectElement {
  const node = el("select", { name });
  for (const [value, text] of values) node.append(el("option", { value, text }));
  return node;
}

function errorsOf(error: unknown): string {
  if (error instanceof ApiError && error.status === 400 && error.body && typeof error.body === "object") {
    return Object.entries(error.body as Record<string, unknown>).map(([k, v]) => `${k}: ${flatten(v).join(" ")}`).join(" · ");
  }
  return errorText(error);
}

function table(headers: string[], rows: (string | HTMLElement)[][], id?: string): HTMLTableElement {
  const node = el("table", { class: "llm-table", id });
  node.append(el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col", text: h })))));
  const body = el("tbody");
  for (const row of rows) body.append(el("tr", {}, ...row.map((c) => el("td", {}, c))));
  node.append(body);
  return node;
}

function sourceName(source: Source): string {
  if (source.kind === "combination") return `${source.method}: ${source.model_version ?? ""}`;
  return `${source.endpoint_name} · ${source.template_name} v${source.template_version}`;
}

/** The evaluation against human gold, per source and question (and per language), with the honest verdict. */
export function evaluationView(evaluation: Evaluation): HTMLElement {
  const box = el("div", { class: "llm-evaluation" });
  if (!evaluation.sources.length) {
    box.append(el("p", { class: "muted", text: t("llm.no_evaluation") }));
    return box;
  }
  for (const key of evaluation.questions) {
    const rows: string[][] = [];
    for (const source of evaluation.sources) {
      const f = source.questions[key];
      if (!f) continue;
      rows.push([sourceName(source), source.template_kind ? t(`llm.kind_${source.template_kind}`) : t("llm.combined"), formatNumber(f.n_items),
        fmt(f.macro_f1), fmt(f.majority_baseline_macro_f1), fmt(f.kappa_with_human_majority), fmt(f.alpha_humans), fmt(f.alpha_humans_and_llm), f.verdict]);
      for (const [language, lf] of Object.entries(f.per_language ?? {})) {
        if (Object.keys(f.per_language).length > 1) rows.push([`  ${language}`, "", formatNumber(lf.n_items), fmt(lf.macro_f1), fmt(lf.majority_baseline_macro_f1), fmt(lf.kappa_with_human_majority), "", "", lf.verdict]);
      }
    }
    box.append(el("h4", { text: key }), table([t("llm.source"), t("llm.prompt"), t("dash.items"), t("llm.macro_f1"), t("llm.baseline"), t("llm.kappa"), t("llm.alpha_humans"), t("llm.alpha_with_llm"), t("llm.verdict")], rows));
  }
  box.append(el("p", { class: "muted figure-note", text: evaluation.note }));
  return box;
}

export function llmEvaluationSection(projectId: number): HTMLElement {
  const section = el("div", { class: "llm-dashboard", id: "llm-evaluation" }, el("h4", { text: t("llm.evaluation") }));
  api<Evaluation>("GET", `/api/projects/${projectId}/llm/evaluation/`).then(
    (evaluation) => section.append(evaluationView(evaluation)),
    (error) => { if (!(error instanceof ApiError && (error.status === 403 || error.status === 404))) section.append(el("p", { class: "field-error", text: errorText(error) })); },
  );
  return section;
}

export function mountLLM(projectId: number): void {
  const root = document.querySelector<HTMLElement>("#project-llm");
  if (!root) return;
  const base = `/api/projects/${projectId}/llm/`;
  let endpoints: Endpoint[] = [];
  let templates: Template[] = [];
  let builtins: Record<string, { user: string }> = {};
  let runs: Run[] = [];
  let evaluation: Evaluation | null = null;
  let poll: number | undefined;
  const status = new Map<string, HTMLElement>();

  const note = (key: string): HTMLElement => {
    const node = status.get(key) ?? el("p", { class: "llm-status", role: "status", "aria-live": "polite" });
    status.set(key, node);
    return node;
  };

  const load = async (): Promise<boolean> => {
    try {
      const [e, tpl, r, ev] = await Promise.all([
        api<Endpoint[]>("GET", `${base}endpoints/`), api<{ templates: Template[]; builtins: Record<string, { user: string }> }>("GET", `${base}templates/`),
        api<Run[]>("GET", `${base}runs/`), api<Evaluation>("GET", `${base}evaluation/`),
      ]);
      endpoints = e; templates = tpl.templates; builtins = tpl.builtins; runs = r; evaluation = ev;
      return true;
    } catch (error) {
      if (error instanceof ApiError && (error.status === 403 || error.status === 404)) return false;
      throw error;
    }
  };

  const endpointForm = (): HTMLElement => {
    const form = el("form", { id: "llm-endpoint-form", class: "llm-form" });
    const structured = select([["json_schema", "json_schema"], ["json_object", "json_object (llama-cpp-python)"]], "structured_output");
    form.append(
      field("llm.name", el("input", { type: "text", required: true, maxlength: 100 }), "name"),
      field("llm.base_url", el("input", { type: "url", required: true, placeholder: "http://gpu-box:8000/v1" }), "base_url"),
      field("llm.model", el("input", { type: "text", required: true }), "model"),
      field("llm.api_key", el("input", { type: "password", autocomplete: "off" }), "api_key"),
      field("llm.structured_output", structured, "structured_output"),
      field("llm.concurrency", el("input", { type: "number", min: 1, max: 256, value: 4 }), "max_concurrency"),
      field("llm.price_in", el("input", { type: "number", min: 0, step: "0.000001", value: 0 }), "price_input_per_1k"),
      field("llm.price_out", el("input", { type: "number", min: 0, step: "0.000001", value: 0 }), "price_output_per_1k"),
      el("button", { type: "submit", text: t("llm.register") }), note("endpoint"),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const body = Object.fromEntries([...data.entries()].map(([k, v]) => [k, String(v)]));
      note("endpoint").textContent = t("common.loading");
      api("POST", `${base}endpoints/`, body).then(() => { note("endpoint").textContent = t("llm.registered"); return refresh(); },
        (error) => { note("endpoint").textContent = errorsOf(error); });
    });
    return form;
  };

  const endpointList = (): HTMLElement => table([t("llm.name"), t("llm.model"), t("llm.base_url"), t("llm.api_key"), ""], endpoints.map((e) => {
    const test = el("button", { type: "button", class: "llm-test", "data-endpoint": e.id, text: t("llm.test") });
    const out = el("span", { class: "llm-test-result", role: "status" });
    test.addEventListener("click", () => {
      out.textContent = t("common.loading");
      api<Record<string, unknown>>("POST", `${base}endpoints/${e.id}/test/`).then((r) => {
        out.textContent = r.ok ? t("llm.test_ok", { labels: JSON.stringify(r.labels), translation: String(r.translation ?? ""), tokens: Number(r.prompt_tokens) + Number(r.completion_tokens), cost: String(r.cost) }) : String(r.error);
      }, (error) => { out.textContent = errorsOf(error); });
    });
    return [e.name, e.model, e.base_url, e.has_api_key ? t("llm.key_stored") : t("llm.no_key"), el("span", {}, test, " ", out)];
  }), "llm-endpoints");

  const templateForm = (): HTMLElement => {
    const form = el("form", { id: "llm-template-form", class: "llm-form" });
    const kind = select(KINDS.map((k) => [k, t(`llm.kind_${k}`)]), "kind");
    const text = el("textarea", { rows: 10, dir: "auto", class: "llm-template-text" });
    const examples = el("input", { type: "number", min: 0, max: 20, value: 0 });
    const name = el("input", { type: "text", required: true, value: "cotr" });
    const fill = (): void => { text.value = builtins[kind.value]?.user ?? ""; name.value = kind.value; examples.value = kind.value === "few_shot" ? "3" : "0"; };
    kind.addEventListener("change", fill);
    fill();
    form.append(field("llm.kind", kind, "kind"), field("llm.name", name, "name"), field("llm.template_text", text, "user"),
      field("llm.examples", examples, "examples_count"), el("button", { type: "submit", text: t("llm.save_template") }), note("template"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      api<Template>("POST", `${base}templates/`, { name: name.value, kind: kind.value, user: text.value, examples_count: Number(examples.value) })
        .then((saved) => { note("template").textContent = t("llm.saved_version", { name: saved.name, version: saved.version }); return refresh(); },
          (error) => { note("template").textContent = errorsOf(error); });
    });
    return form;
  };

  const previewBox = (): HTMLElement => {
    const box = el("div", { id: "llm-preview" });
    const template = select(templates.map((x) => [String(x.id), `${x.name} v${x.version}`]), "preview_template");
    const endpoint = select([["", t("llm.prompt_only")], ...endpoints.map((e): [string, string] => [String(e.id), e.name])], "preview_endpoint");
    const go = el("button", { type: "button", text: t("llm.preview") });
    const out = el("div", { class: "llm-preview-items" });
    go.addEventListener("click", () => {
      clear(out);
      out.append(el("p", { class: "muted", text: t("common.loading") }));
      api<{ utterance: number; text: string; prompt: string; answer?: Record<string, unknown> }[]>("POST", `${base}templates/${template.value}/preview/`, { endpoint: endpoint.value ? Number(endpoint.value) : null })
        .then((items) => {
          clear(out);
          for (const item of items) {
            out.append(el("details", { class: "llm-preview-item" }, el("summary", { text: item.text, dir: "auto" }), el("pre", { text: item.prompt, dir: "auto" }),
              item.answer ? el("pre", { class: "llm-answer", text: JSON.stringify(item.answer, null, 2), dir: "auto" }) : null));
          }
        }, (error) => { clear(out); out.append(el("p", { class: "field-error", text: errorsOf(error) })); });
    });
    box.append(el("div", { class: "row" }, field("llm.template", template, "preview_template"), field("llm.endpoint", endpoint, "preview_endpoint"), go), out);
    return box;
  };

  const runForm = (): HTMLElement => {
    const form = el("form", { id: "llm-run-form", class: "llm-form" });
    const endpoint = select(endpoints.map((e) => [String(e.id), e.name]), "endpoint");
    const template = select(templates.map((x) => [String(x.id), `${x.name} v${x.version}`]), "template");
    const split = select(SPLITS.map((s) => [s, s ? s : t("llm.all_splits")]), "split");
    const unlabelled = el("input", { type: "checkbox", name: "unlabelled" });
    const limit = el("input", { type: "number", min: 1, placeholder: t("llm.no_limit") });
    form.append(field("llm.endpoint", endpoint, "endpoint"), field("llm.template", template, "template"), field("llm.split", split, "split"),
      el("label", { class: "field" }, unlabelled, el("span", { text: t("llm.unlabelled") })), field("llm.limit", limit, "limit"),
      el("button", { type: "submit", text: t("llm.start") }), note("run"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const selection: Record<string, unknown> = { unlabelled: unlabelled.checked };
      if (split.value) selection.split = split.value;
      if (limit.value) selection.limit = Number(limit.value);
      api("POST", `${base}runs/`, { endpoint: Number(endpoint.value), template: Number(template.value), selection })
        .then(() => { note("run").textContent = t("llm.started"); return refresh(); }, (error) => { note("run").textContent = errorsOf(error); });
    });
    return form;
  };

  const runList = (): HTMLElement => {
    const list = el("ul", { id: "llm-runs", class: "llm-runs" });
    if (!runs.length) list.append(el("li", { class: "muted", text: t("llm.no_runs") }));
    for (const run of runs) {
      const c = run.job.counts;
      const item = el("li", { class: "llm-run", "data-status": run.job.status, "data-run": run.id },
        el("strong", { text: `${run.endpoint_name} · ${run.template_name} v${run.template_version}` }), " ",
        el("span", { class: "llm-run-status", text: t(`llm.status_${run.job.status}`) }), " ",
        el("progress", { max: run.job.progress_total ?? 1, value: run.job.progress_done }),
        el("span", { class: "llm-run-counts", text: t("llm.run_counts", { done: formatNumber(run.job.progress_done), total: formatNumber(run.job.progress_total ?? 0),
          tokens: formatNumber(Number(c.prompt_tokens ?? 0) + Number(c.completion_tokens ?? 0)), cost: String(c.cost ?? "0"), cached: formatNumber(Number(c.cached ?? 0)), errors: formatNumber(run.job.error_count) }) }),
        run.job.message ? el("span", { class: "muted", text: ` ${run.job.message}` }) : null);
      if (run.job.status === "pending" || run.job.status === "running") {
        const cancel = el("button", { type: "button", class: "llm-cancel", text: t("llm.cancel") });
        cancel.addEventListener("click", () => { void api("POST", `${base}runs/${run.id}/cancel/`).then(refresh, (error) => { note("run").textContent = errorsOf(error); }); });
        item.append(" ", cancel);
      }
      list.append(item);
    }
    return list;
  };

  // The panel redraws when a run finishes: the sources the lead ticked survive it.
  const chosenSources = new Set<string>();
  const combineForm = (): HTMLElement => {
    const form = el("form", { id: "llm-combine-form", class: "llm-form" });
    const pairs = new Map<string, string>();
    for (const run of runs) pairs.set(`${run.endpoint}:${run.template}`, `${run.endpoint_name} · ${run.template_name} v${run.template_version}`);
    const boxes = el("fieldset", {}, el("legend", { text: t("llm.sources") }));
    for (const [value, label] of pairs) {
      const box = el("input", { type: "checkbox", name: "source", value }) as HTMLInputElement;
      box.checked = chosenSources.has(value);
      box.addEventListener("change", () => { if (box.checked) chosenSources.add(value); else chosenSources.delete(value); });
      boxes.append(el("label", { class: "export-check" }, box, el("span", { text: label })));
    }
    const method = select(METHODS.map((m) => [m, t(`llm.method_${m}`)]), "method");
    form.append(boxes, field("llm.method", method, "method"), el("button", { type: "submit", text: t("llm.publish") }), note("combine"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const sources = [...form.querySelectorAll<HTMLInputElement>('input[name="source"]:checked')].map((b) => b.value.split(":").map(Number));
      api<{ counts: Record<string, number> }>("POST", `${base}synthetic/`, { sources, method: method.value })
        .then((made) => { note("combine").textContent = t("llm.published", { n: formatNumber(made.counts.labelled ?? 0) }); return refresh(); },
          (error) => { note("combine").textContent = errorsOf(error); });
    });
    return form;
  };

  const render = (): void => {
    clear(root);
    root.hidden = false;
    root.append(el("h2", { id: "llm-title", text: t("llm.title") }), el("p", { class: "muted", text: t("llm.intro") }),
      el("h3", { text: t("llm.endpoints") }), endpointList(), endpointForm(),
      el("h3", { text: t("llm.templates") }), templateForm(), templates.length ? previewBox() : el("p", { class: "muted", text: t("llm.no_templates") }),
      el("h3", { text: t("llm.runs") }), endpoints.length && templates.length ? runForm() : el("p", { class: "muted", text: t("llm.need_endpoint_template") }), runList(),
      el("h3", { text: t("llm.combine") }), runs.length ? combineForm() : el("p", { class: "muted", text: t("llm.no_runs") }),
      el("h3", { text: t("llm.evaluation") }), evaluation ? evaluationView(evaluation) : el("p", {}));
  };

  const refresh = async (): Promise<void> => {
    window.clearTimeout(poll);
    const allowed = await load().catch((error) => { root.hidden = false; root.append(el("p", { class: "field-error", text: errorText(error) })); return false; });
    if (!allowed) return;
    render();
    schedule();
  };

  // While a run is active only its list is redrawn, so what the lead is typing in the forms stays.
  const schedule = (): void => {
    if (runs.some((r) => r.job.status === "pending" || r.job.status === "running")) poll = window.setTimeout(() => void pollRuns(), POLL_MS);
  };
  const pollRuns = async (): Promise<void> => {
    try {
      runs = await api<Run[]>("GET", `${base}runs/`);
    } catch (error) {
      note("run").textContent = errorText(error);
      return;
    }
    root.querySelector("#llm-runs")?.replaceWith(runList());
    if (runs.some((r) => r.job.status === "pending" || r.job.status === "running")) schedule();
    else void refresh(); // finished: the combine form and the evaluation change too
  };

  onLanguageChange(() => render());
  void refresh();
}

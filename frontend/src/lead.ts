// Lead screens: create a project (with a schema editor and live preview) and manage one (members, progress, gold).
import { api, apiList, ApiError, errorText, flatten } from "./api";
import { $, el, clear } from "./dom";
import { mountExports } from "./exports";
import { mountLLM } from "./llm";
import { t, formatNumber, onLanguageChange } from "./i18n";
import { SchemaEditor, TEMPLATES } from "./schema_editor";
import { QuestionForm, type Question } from "./widgets";

const TYPES: string[] = ["single_choice", "multi_label", "numeric", "text", "segments"];

interface SchemaVersion {
  id: number;
  version: number;
  questions: Question[];
  perspectives: string[];
}
interface Schema {
  id: number;
  name: string;
  slug: string;
  versions: SchemaVersion[];
}

const EXAMPLE_QUESTIONS: Question[] = [
  { key: "emotion", type: "single_choice", title: "Emotion", labels: ["joy", "sadness", "anger", "fear", "neutral"], required: true },
  { key: "valence", type: "numeric", title: "Valence", min: 1, max: 5, step: 0.5 },
  { key: "rationale", type: "text", title: "Why?", max_length: 500 },
];

/** Show an API 400 body next to the fields it names; returns messages no field claimed. */
function showFieldErrors(form: HTMLElement, error: unknown, prefix = ""): string[] {
  form.querySelectorAll(`[data-error-for^="${prefix}"]`).forEach((node) => node.remove());
  if (!(error instanceof ApiError) || error.status !== 400 || !error.body || typeof error.body !== "object") {
    return [errorText(error)];
  }
  const unclaimed: string[] = [];
  for (const [field, messages] of Object.entries(error.body as Record<string, unknown>)) {
    const root = field.split(/[.[]/)[0];
    const input = form.querySelector<HTMLElement>(`[name="${prefix}${root}"]`);
    const text = `${field === root ? "" : `${field}: `}${flatten(messages).join(" ")}`;
    if (input) input.closest("label")?.append(el("span", { class: "field-error", "data-error-for": `${prefix}${root}`, text }));
    else unclaimed.push(`${field}: ${flatten(messages).join(" ")}`);
  }
  return unclaimed;
}

function field(name: string, labelKey: string, control: HTMLElement, hintKey?: string): HTMLElement {
  control.setAttribute("name", name);
  return el("label", { class: "field" }, el("span", { class: "field-label", text: t(labelKey) }), control, hintKey ? el("span", { class: "muted", text: t(hintKey) }) : null);
}

function options(select: HTMLSelectElement, values: [string, string][]): HTMLSelectElement {
  for (const [value, text] of values) select.append(el("option", { value, text }));
  return select;
}

export function mountProjectCreate(): void {
  const root = $("#project-create");
  const render = async (): Promise<void> => {
    clear(root);
    let corpora: { id: number; name: string }[] = [];
    let schemas: Schema[] = [];
    try {
      [corpora, schemas] = await Promise.all([apiList<{ id: number; name: string }>("/api/corpora/"), apiList<Schema>("/api/schemas/")]);
    } catch (error) {
      root.append(el("p", { class: "field-error", text: errorText(error) }));
      return;
    }
    const corpus = options(el("select"), corpora.map((c) => [String(c.id), c.name]));
    const schemaChoice = options(el("select"), [
      ["new", t("create.new_schema")],
      ...schemas.flatMap((s) => s.versions.map((v): [string, string] => [String(v.id), `${s.name} v${v.version}`])),
    ]);
    const name = el("input", { type: "text", maxlength: 200, required: true });
    const overlap = el("input", { type: "number", min: 1, max: 50, value: 1 });
    const goldRate = el("input", { type: "number", min: 0, max: 1, step: 0.01, value: 0 });
    const languages = el("input", { type: "text", placeholder: "mr, hi, en" });
    const guidelines = el("textarea", { rows: 4, dir: "auto" });
    const ordering = options(el("select"), ["sequential", "random", "least_annotated", "disagreement", "uncertainty"].map((v) => [v, t(`ordering.${v}`)]));
    const policy = options(el("select"), ["hidden", "shown", "prefilled"].map((v) => [v, t(`policy.${v}`)]));
    const schemaName = el("input", { type: "text", maxlength: 200 });
    const schemaSlug = el("input", { type: "text", maxlength: 100, pattern: "[-a-zA-Z0-9_]+" });
    const perspectives = el("input", { type: "text", placeholder: "writer, reader" });
    const preview = el("div", { class: "preview", "aria-live": "polite" });
    const parseNote = el("p", { class: "muted parse-note" });
    const general = el("div", { class: "general-errors", role: "alert" });
    const updatePreview = (): void => {
      clear(preview);
      const chosen = schemas.flatMap((s) => s.versions).find((v) => String(v.id) === schemaChoice.value);
      schemaFields.hidden = Boolean(chosen);
      const parsed: unknown[] = chosen ? chosen.questions : editor.questions;
      const usable = parsed.filter((q): q is Question => Boolean(q) && typeof q === "object" && typeof (q as Question).key === "string" && TYPES.includes((q as Question).type));
      preview.append(el("h3", { text: t("create.preview") }), new QuestionForm(usable).root);
    };
    const editor = new SchemaEditor(EXAMPLE_QUESTIONS, updatePreview);
    const template = options(el("select"), [["", t("schema.template_none")], ...TEMPLATES.map((x): [string, string] => [x.id, t(`schema.template_${x.id}`)])]);
    template.addEventListener("change", () => {
      if (!template.value) return;
      perspectives.value = editor.use(template.value).join(", ");
    });
    const schemaFields = el(
      "fieldset",
      { class: "schema-editor" },
      el("legend", { text: t("create.schema_editor") }),
      field("schema_name", "create.schema_name", schemaName),
      field("schema_slug", "create.schema_slug", schemaSlug),
      field("schema_template", "schema.template", template, "schema.template_hint"),
      el("div", { class: "field" }, el("span", { class: "field-label", text: t("schema.questions") }), editor.root),
      field("schema_perspectives", "create.perspectives", perspectives),
      el(
        "details",
        { class: "schema-json" },
        el("summary", { text: t("schema.as_json") }),
        el("label", { class: "field" }, el("span", { class: "muted small", text: t("create.questions_hint") }), editor.json),
        editor.jsonNote,
      ),
    );
    schemaChoice.addEventListener("change", updatePreview);

    const submit = el("button", { type: "submit", class: "button primary", text: t("create.submit") });
    const form = el(
      "form",
      { class: "create-form", novalidate: true },
      el(
        "div",
        { class: "create-columns" },
        el(
          "div",
          {},
          field("name", "create.name", name),
          field("corpus", "create.corpus", corpus),
          field("schema_version", "create.schema", schemaChoice),
          schemaFields,
          parseNote,
          field("languages", "create.languages", languages, "create.languages_hint"),
          field("overlap", "create.overlap", overlap),
          field("gold_rate", "create.gold_rate", goldRate),
          field("ordering_strategy", "create.ordering", ordering),
          field("suggestion_policy", "create.policy", policy),
          field("guidelines", "create.guidelines", guidelines),
          general,
          submit,
        ),
        preview,
      ),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clear(general);
      submit.disabled = true;
      try {
        let versionId = Number(schemaChoice.value);
        if (schemaChoice.value === "new") {
          try {
            const created = await api<Schema>("POST", "/api/schemas/", {
              name: schemaName.value,
              slug: schemaSlug.value,
              questions: editor.payload(), // unparsable JSON goes as it is: the API names what is wrong
              perspectives: perspectives.value.split(",").map((p) => p.trim()).filter(Boolean),
            });
            versionId = created.versions[0].id;
            schemas.push(created);
          } catch (error) {
            // Reasons about questions go on the question they name; the rest next to their fields.
            const body = error instanceof ApiError && error.status === 400 && error.body && typeof error.body === "object" ? (error.body as Record<string, unknown>) : null;
            const rest = body ? editor.showErrors(body) : [errorText(error)];
            const others = body ? Object.fromEntries(Object.entries(body).filter(([k]) => !k.startsWith("questions"))) : {};
            showFieldErrors(form, new ApiError(400, others), "schema_").forEach((m) => general.append(el("p", { class: "field-error", text: m })));
            rest.filter((m) => !Object.keys(others).some((k) => m.startsWith(`${k}:`))).forEach((m) => general.append(el("p", { class: "field-error", text: m })));
            return;
          }
          schemaChoice.append(el("option", { value: versionId, text: `${schemaName.value} v1` }));
          schemaChoice.value = String(versionId);
          updatePreview();
        }
        try {
          const project = await api<{ id: number }>("POST", "/api/projects/", {
            name: name.value,
            corpus: Number(corpus.value),
            schema_version: versionId,
            languages: languages.value.split(",").map((c) => c.trim()).filter(Boolean),
            overlap: Number(overlap.value),
            gold_rate: Number(goldRate.value),
            ordering_strategy: ordering.value,
            suggestion_policy: policy.value,
            guidelines: guidelines.value,
          });
          window.location.assign(`/projects/${project.id}/manage/`);
        } catch (error) {
          showFieldErrors(form, error).forEach((m) => general.append(el("p", { class: "field-error", text: m })));
        }
      } finally {
        submit.disabled = false;
      }
    });
    // An error goes away as soon as its field is edited.
    form.addEventListener("input", (event) => {
      const name = (event.target as HTMLElement).getAttribute("name");
      if (name) form.querySelectorAll(`[data-error-for="${name}"]`).forEach((node) => node.remove());
    });
    root.append(form);
    updatePreview();
  };
  onLanguageChange(() => void render());
  void render();
}

interface Progress {
  overlap: number;
  items: number;
  complete: number;
  gold_items: number;
  annotations: number;
  reserved: number;
  open_flags: number;
  by_language: { language: string; items: number; complete: number; annotations: number }[];
  by_annotator: {
    username: string;
    role: string;
    annotations: number;
    mean_lead_time_ms: number | null;
    skips: number;
    flags: number;
    by_language: Record<string, number>;
    gold_answered: number;
    gold_correct: number;
    gold_accuracy: number | null;
  }[];
}

function table(headKeys: string[], rows: (string | number | HTMLElement)[][]): HTMLTableElement {
  const head = el("tr", {}, ...headKeys.map((k) => el("th", { scope: "col", text: t(k) })));
  const cell = (c: string | number | HTMLElement): HTMLElement => (c instanceof HTMLElement ? el("td", {}, c) : el("td", { text: String(c) }));
  return el("table", { class: "data" }, el("thead", {}, head), el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map(cell)))));
}

interface Member {
  user: number;
  username: string;
  role: string;
  languages: string[];
}

/** Members with a Remove button each; the API refuses to remove the only lead, and the reason is shown. */
function membersTable(projectId: number, members: Member[], refresh: () => Promise<void>): HTMLElement {
  const errors = el("div", { class: "general-errors", role: "alert" });
  const removeButton = (m: Member): HTMLElement => {
    const remove = el("button", { type: "button", class: "button small", "data-remove-member": m.username, text: t("manage.remove") });
    remove.addEventListener("click", async () => {
      if (!window.confirm(t("manage.remove_confirm", { user: m.username }))) return;
      clear(errors);
      try {
        await api("DELETE", `/api/projects/${projectId}/memberships/${m.user}/`);
        await refresh();
      } catch (error) {
        errors.append(el("p", { class: "field-error", text: errorText(error) }));
      }
    });
    return remove;
  };
  const rows = members.map((m) => [m.username, t(`role.${m.role}`), m.languages.join(", ") || t("projects.all_languages"), removeButton(m)]);
  const list = table(["manage.user", "manage.role", "manage.languages", "manage.actions"], rows);
  list.classList.add("members");
  return el("div", {}, list, errors);
}

interface Invitation {
  id: number;
  username: string;
  role: string;
  languages: string[];
  created_at: string;
}

/** Invitations not yet answered, each with a Withdraw button; the invitee joins only by accepting. */
function invitationsTable(projectId: number, invitations: Invitation[], refresh: () => Promise<void>): HTMLElement {
  if (!invitations.length) return el("p", { class: "muted", text: t("manage.no_invitations") });
  const errors = el("div", { class: "general-errors", role: "alert" });
  const withdraw = (inv: Invitation): HTMLElement => {
    const button = el("button", { type: "button", class: "button small", "data-withdraw-invitation": inv.username, text: t("manage.withdraw") });
    button.addEventListener("click", async () => {
      clear(errors);
      try {
        await api("DELETE", `/api/projects/${projectId}/invitations/${inv.id}/`);
        await refresh();
      } catch (error) {
        errors.append(el("p", { class: "field-error", text: errorText(error) }));
      }
    });
    return button;
  };
  const rows = invitations.map((inv) => [inv.username, t(`role.${inv.role}`), inv.languages.join(", ") || t("projects.all_languages"), withdraw(inv)]);
  const list = table(["manage.user", "manage.role", "manage.languages", "manage.actions"], rows);
  list.classList.add("invitations");
  return el("div", {}, list, errors);
}

export function mountProjectManage(): void {
  const root = $("#project-manage");
  const projectId = Number(root.dataset.projectId);
  const render = async (): Promise<void> => {
    clear(root);
    let project: { name: string; languages: string[] };
    let progress: Progress;
    let members: Member[];
    let invitations: Invitation[];
    try {
      [project, progress, members, invitations] = await Promise.all([
        api<{ name: string; languages: string[] }>("GET", `/api/projects/${projectId}/`),
        api<Progress>("GET", `/api/projects/${projectId}/progress/`),
        apiList<Member>(`/api/projects/${projectId}/memberships/`),
        apiList<Invitation>(`/api/projects/${projectId}/invitations/`),
      ]);
    } catch (error) {
      root.append(el("p", { class: "field-error", text: errorText(error) }));
      return;
    }
    const pct = (n: number, d: number): string => (d ? `${formatNumber((100 * n) / d, 1)}%` : "—");
    root.append(
      el(
        "div",
        { class: "row" },
        el("h1", { text: project.name }),
        el("a", { class: "button small", href: `/projects/${projectId}/dashboard/`, text: t("projects.dashboard") }),
        el("a", { class: "button small", href: `/projects/${projectId}/review/`, text: t("review.link") }),
        el("a", { class: "button small", href: `/projects/${projectId}/items/`, text: t("items.link") }),
        el("a", { class: "button small", href: `/projects/${projectId}/import/`, text: t("import.link") }),
        el("a", { class: "button small", href: `/projects/${projectId}/models/`, text: t("models.link") }),
      ),
      el(
        "div",
        { class: "stats" },
        ...(
          [
            ["manage.items", formatNumber(progress.items)],
            ["manage.complete", `${formatNumber(progress.complete)} (${pct(progress.complete, progress.items)})`],
            ["manage.annotations", formatNumber(progress.annotations)],
            ["manage.overlap", formatNumber(progress.overlap)],
            ["manage.gold_items", formatNumber(progress.gold_items), `/projects/${projectId}/items/?status=gold`],
            ["manage.open_flags", formatNumber(progress.open_flags), `/projects/${projectId}/review/?reason=flagged`],
          ] as [string, string, string?][]
        ).map(([k, v, href]) =>
          el("div", { class: "stat" }, el("span", { class: "muted", text: t(k) }), href ? el("a", { href, "data-stat": k }, el("strong", { text: v })) : el("strong", { text: v })),
        ),
      ),
      el("h2", { text: t("manage.by_language") }),
      table(
        ["manage.language", "manage.items", "manage.complete", "manage.annotations"],
        progress.by_language.map((r) => [r.language, formatNumber(r.items), `${formatNumber(r.complete)} (${pct(r.complete, r.items)})`, formatNumber(r.annotations)]),
      ),
      el("h2", { text: t("manage.by_annotator") }),
      table(
        ["manage.user", "manage.role", "manage.annotations", "manage.mean_time", "manage.skips", "manage.flags", "manage.languages", "manage.gold_accuracy"],
        progress.by_annotator.map((r) => [
          r.username,
          t(`role.${r.role}`),
          formatNumber(r.annotations),
          r.mean_lead_time_ms === null ? "—" : `${formatNumber(r.mean_lead_time_ms / 1000, 1)} s`,
          formatNumber(r.skips),
          formatNumber(r.flags),
          Object.entries(r.by_language).map(([code, n]) => `${code} ${formatNumber(n)}`).join(", ") || "—",
          r.gold_accuracy === null ? "—" : `${pct(r.gold_correct, r.gold_answered)} (${formatNumber(r.gold_correct)}/${formatNumber(r.gold_answered)})`,
        ]),
      ),
      el("h2", { text: t("manage.members") }),
      membersTable(projectId, members, render),
      el("h2", { text: t("manage.invitations") }),
      invitationsTable(projectId, invitations, render),
    );
    const username = el("input", { type: "text", maxlength: 150, autocomplete: "off" });
    const role = options(el("select"), ["annotator", "reviewer", "lead"].map((r) => [r, t(`role.${r}`)]));
    const langs = el("input", { type: "text", placeholder: project.languages.join(", ") || "mr, hi" });
    const general = el("div", { class: "general-errors", role: "alert" });
    const invite = el(
      "form",
      { class: "invite-form", novalidate: true },
      el("h2", { text: t("manage.invite") }),
      el("p", { class: "muted", text: t("manage.invite_hint") }),
      el("div", { class: "row" }, field("username", "manage.user", username), field("role", "manage.role", role), field("languages", "manage.languages", langs, "create.languages_hint")),
      general,
      el("button", { type: "submit", class: "button primary", text: t("manage.invite_submit") }),
    );
    invite.addEventListener("submit", async (event) => {
      event.preventDefault();
      clear(general);
      try {
        await api("POST", `/api/projects/${projectId}/memberships/`, {
          username: username.value.trim(),
          role: role.value,
          languages: langs.value.split(",").map((c) => c.trim()).filter(Boolean),
        });
        await render();
      } catch (error) {
        showFieldErrors(invite, error).forEach((m) => general.append(el("p", { class: "field-error", text: m })));
      }
    });
    root.append(
      invite,
      el(
        "p",
        { class: "row" },
        el("a", { class: "button", href: `/projects/${projectId}/annotate/`, text: t("projects.annotate") }),
        el("a", { class: "button", href: `/projects/${projectId}/dashboard/`, text: t("projects.dashboard") }),
      ),
    );
  };
  onLanguageChange(() => void render());
  void render();
  mountExports(projectId);
  mountLLM(projectId);
}

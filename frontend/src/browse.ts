// The item browser (/projects/<id>/items/, leads and reviewers): every item of the project, searchable and
// filterable, paged on the server (keyset cursors: fast at any depth), and one item opened beside the list with its
// annotations and history. Leads make unseen items gold and enter their reference answer here.
import { api, ApiError, errorText, flatten } from "./api";
import { $, el, clear, isTyping } from "./dom";
import { t, formatNumber, onLanguageChange } from "./i18n";
import {
  annotationsTable,
  flagsPanel,
  historyList,
  itemFacts,
  itemUrl,
  utterancePanel,
  type ItemDetail,
  type ProjectFacts,
} from "./itemview";
import { QuestionForm } from "./widgets";

interface Row {
  utterance_id: number;
  text: string;
  language: string;
  direction: "ltr" | "rtl";
  speaker: string | null;
  conversation: string | null;
  split: string;
  status: string;
  is_gold: boolean;
  annotation_count: number;
  target_count: number;
  agreement: number | null;
  uncertainty: number | null;
  open_flags: number;
}

const FILTERS = ["q", "language", "status", "label", "speaker", "conversation", "split", "agreement_below", "uncertainty_above", "sort"] as const;
type Filters = Record<(typeof FILTERS)[number], string>;

export const BROWSE_SHORTCUTS: [string, string][] = [
  ["/", "items.help_search"],
  ["j k / ↓ ↑", "items.help_rows"],
  ["Enter", "items.help_open"],
  ["] [", "items.help_pages"],
  ["Esc", "items.help_close"],
  ["?", "help.help"],
];

class ItemBrowser {
  private facts: ProjectFacts | null = null;
  private filters: Filters;
  private rows: Row[] = [];
  private cursors: string[] = [""]; // cursors of the pages seen so far; the last one is the page shown
  private nextCursor: string | null = null;
  private selected = 0;
  private detail: ItemDetail | null = null;
  private goldForm: QuestionForm | null = null;
  private loading = false;
  private readonly view = {
    head: el("div", { class: "browse-head" }),
    filters: el("form", { class: "browse-filters", role: "search" }),
    table: el("div", { class: "browse-table table-scroll" }),
    pager: el("nav", { class: "pager row" }),
    detail: el("aside", { class: "browse-detail", hidden: true, tabindex: "-1" }),
    help: el("div", { class: "overlay", hidden: true, role: "dialog", "aria-modal": "true" }),
  };

  constructor(
    private root: HTMLElement,
    private projectId: number,
  ) {
    const params = new URLSearchParams(window.location.search);
    this.filters = Object.fromEntries(FILTERS.map((name) => [name, params.get(name) ?? ""])) as Filters;
    const v = this.view;
    clear(root);
    root.append(v.head, v.filters, el("div", { class: "browse-layout" }, el("div", { class: "browse-list" }, v.table, v.pager), v.detail), v.help);
    document.addEventListener("keydown", (e) => this.onKey(e));
    onLanguageChange(() => this.renderAll());
    void this.start(Number(params.get("item")) || null);
  }

  private async start(openItem: number | null): Promise<void> {
    // The facts (filters' choices) and the first page load together.
    const rows = this.load();
    try {
      this.facts = await api<ProjectFacts>("GET", `/api/projects/${this.projectId}/items/facts/`);
    } catch (error) {
      this.root.append(el("p", { class: "field-error", role: "alert", text: errorText(error) }));
      return;
    }
    this.renderHead();
    this.renderFilters();
    this.renderHelp();
    await rows;
    if (openItem) await this.open(openItem);
  }

  private query(cursor: string): string {
    const params = new URLSearchParams();
    for (const name of FILTERS) if (this.filters[name]) params.set(name, this.filters[name]);
    if (cursor) params.set("cursor", cursor);
    return params.toString();
  }

  private async load(): Promise<void> {
    this.loading = true;
    const cursor = this.cursors[this.cursors.length - 1];
    try {
      const page = await api<{ results: Row[]; next_cursor: string | null }>("GET", `/api/projects/${this.projectId}/items/?${this.query(cursor)}`);
      this.rows = page.results;
      this.nextCursor = page.next_cursor;
      this.selected = Math.min(this.selected, Math.max(0, this.rows.length - 1));
    } catch (error) {
      this.rows = [];
      this.nextCursor = null;
      clear(this.view.table);
      this.view.table.append(el("p", { class: "field-error", role: "alert", text: errorText(error) }));
      this.loading = false;
      return;
    }
    this.loading = false;
    const filtersOnly = this.query("");
    window.history.replaceState(null, "", `${window.location.pathname}${filtersOnly ? `?${filtersOnly}` : ""}`);
    this.renderTable();
    this.renderPager();
  }

  private applyFilters(): void {
    const form = this.view.filters;
    for (const name of FILTERS) {
      const input = form.querySelector<HTMLInputElement | HTMLSelectElement>(`[name="${name}"]`);
      this.filters[name] = input ? input.value.trim() : "";
    }
    this.cursors = [""];
    this.selected = 0;
    void this.load();
  }

  private page(step: 1 | -1): void {
    if (this.loading) return;
    if (step === 1 && this.nextCursor) this.cursors.push(this.nextCursor);
    else if (step === -1 && this.cursors.length > 1) this.cursors.pop();
    else return;
    this.selected = 0;
    void this.load();
  }

  private async open(utteranceId: number): Promise<void> {
    const v = this.view;
    try {
      this.detail = await api<ItemDetail>("GET", itemUrl(this.projectId, utteranceId));
    } catch (error) {
      clear(v.detail);
      v.detail.hidden = false;
      v.detail.append(el("p", { class: "field-error", role: "alert", text: errorText(error) }));
      return;
    }
    this.goldForm = null;
    this.renderDetail();
    v.detail.hidden = false;
    v.detail.focus();
  }

  private close(): void {
    this.detail = null;
    this.goldForm = null;
    this.view.detail.hidden = true;
    this.view.table.querySelector<HTMLElement>(`tr[data-index="${this.selected}"]`)?.focus();
  }

  // --- gold ----------------------------------------------------------------------------------------------------------

  private editGold(): void {
    if (!this.detail || !this.facts) return;
    this.goldForm = new QuestionForm(this.facts.questions.filter((q) => q.type !== "segments"));
    if (this.detail.gold) this.goldForm.setAnswers(this.detail.gold.expected);
    this.renderDetail();
    this.view.detail.querySelector<HTMLElement>(".gold-form .question-form")?.scrollIntoView({ block: "nearest" });
  }

  private async saveGold(tolerance: string, errors: HTMLElement): Promise<void> {
    if (!this.detail || !this.goldForm) return;
    clear(errors);
    try {
      await api("POST", `/api/projects/${this.projectId}/gold/`, {
        utterance: this.detail.utterance.id,
        expected: this.goldForm.payload(),
        numeric_tolerance: Number(tolerance || 0),
      });
    } catch (error) {
      if (error instanceof ApiError && error.status === 400 && error.body && typeof error.body === "object") {
        const perQuestion: Record<string, string[]> = {};
        for (const [field, messages] of Object.entries(error.body as Record<string, unknown>)) {
          const key = field.startsWith("expected.") ? field.slice("expected.".length) : "";
          if (key && this.facts?.questions.some((q) => q.key === key)) perQuestion[key] = flatten(messages);
          else errors.append(el("p", { class: "field-error", text: `${field}: ${flatten(messages).join(" ")}` }));
        }
        this.goldForm.setErrors(perQuestion);
      } else {
        errors.append(el("p", { class: "field-error", text: errorText(error) }));
      }
      return;
    }
    const id = this.detail.utterance.id;
    await this.load();
    await this.open(id);
  }

  /** "Not gold": asks once inline (it cannot be undone once annotators have answered it), then drops the gold. */
  private unsetGoldControl(utteranceId: number): HTMLElement {
    const box = el("span", { class: "row unset-gold" });
    const ask = el("button", { type: "button", class: "button small", "data-action": "unset-gold", text: t("gold.unset") });
    ask.addEventListener("click", () => {
      clear(box);
      const yes = el("button", { type: "button", class: "button small", "data-action": "confirm-unset-gold", text: t("gold.unset_confirm") });
      const no = el("button", { type: "button", class: "button small", text: t("action.cancel") });
      const status = el("span", { class: "field-error small", role: "alert" });
      yes.addEventListener("click", async () => {
        yes.disabled = true;
        try {
          await api("DELETE", `/api/projects/${this.projectId}/gold/${utteranceId}/`);
        } catch (error) {
          status.textContent = errorText(error);
          yes.disabled = false;
          return;
        }
        await this.load();
        await this.open(utteranceId);
      });
      no.addEventListener("click", () => this.renderDetail());
      box.append(el("span", { class: "small", text: t("gold.unset_question") }), yes, no, status);
      yes.focus();
    });
    box.append(ask);
    return box;
  }

  // --- rendering ----------------------------------------------------------------------------------------------------

  private renderAll(): void {
    this.renderHead();
    this.renderFilters();
    this.renderTable();
    this.renderPager();
    if (this.detail) this.renderDetail();
    this.renderHelp();
  }

  private renderHead(): void {
    const v = this.view;
    clear(v.head);
    v.head.append(
      el("h1", { text: t("items.title", { project: this.facts?.name ?? "…" }) }),
      el("span", { class: "muted", text: t("items.total", { count: formatNumber(this.facts?.items ?? 0) }) }),
      el(
        "nav",
        { class: "row" },
        el("a", { class: "button small", href: `/projects/${this.projectId}/review/`, text: t("review.link") }),
        el("a", { class: "button small", href: `/projects/${this.projectId}/dashboard/`, text: t("projects.dashboard") }),
        this.facts?.can_manage ? el("a", { class: "button small", href: `/projects/${this.projectId}/import/`, text: t("import.link") }) : null,
        el("button", { type: "button", class: "button small", "data-action": "help", text: t("action.help") }),
      ),
    );
    v.head.querySelector("[data-action=help]")?.addEventListener("click", () => this.toggleHelp());
  }

  private renderFilters(): void {
    const form = this.view.filters;
    clear(form);
    const f = this.filters;
    const select = (name: string, choices: [string, string][]): HTMLSelectElement => {
      const s = el("select", { name });
      for (const [value, text] of choices) s.append(el("option", { value, text, selected: value === f[name as keyof Filters] }));
      return s;
    };
    const labels = [...new Set((this.facts?.questions ?? []).filter((q) => q.type === "single_choice" || q.type === "multi_label").flatMap((q) => q.labels ?? []))];
    const field = (labelKey: string, control: HTMLElement, wide = false): HTMLElement =>
      el("label", { class: `field${wide ? " wide" : ""}` }, el("span", { class: "field-label", text: t(labelKey) }), control);
    const input = (name: keyof Filters, attrs: Record<string, string | number> = {}): HTMLInputElement => {
      const node = el("input", { type: "text", name, value: f[name], ...attrs });
      return node;
    };
    form.append(
      field("items.search", input("q", { type: "search", placeholder: t("items.search_hint"), dir: "auto", maxlength: 200 }), true),
      field("items.language", select("language", [["", t("items.all_languages")], ...(this.facts?.languages ?? []).map((l): [string, string] => [l.code, `${l.name} (${l.code})`])])),
      field("items.status", select("status", [["", t("items.all_statuses")], ...(this.facts?.statuses ?? []).map((s): [string, string] => [s, t(`status.${s}`)])])),
      field("items.label", select("label", [["", t("items.any_label")], ...labels.map((l): [string, string] => [l, l])])),
      field("items.speaker", input("speaker", { maxlength: 200 })),
      field("items.conversation", input("conversation", { maxlength: 200 })),
      field("items.split", input("split", { maxlength: 200, list: "browse-splits" })),
      el("datalist", { id: "browse-splits" }, ...["train", "dev", "validation", "test"].map((s) => el("option", { value: s }))),
      field("items.agreement_below", input("agreement_below", { type: "number", min: 0, max: 1, step: 0.05, inputmode: "decimal" })),
      field("items.uncertainty_above", input("uncertainty_above", { type: "number", min: 0, max: 1, step: 0.05, inputmode: "decimal" })),
      field("items.sort", select("sort", [["", t("items.sort_id")], ["agreement", t("items.sort_agreement")], ["uncertainty", t("items.sort_uncertainty")]])),
      el(
        "div",
        { class: "row filter-actions" },
        el("button", { type: "submit", class: "button primary", text: t("items.apply") }),
        el("button", { type: "button", class: "button", "data-action": "reset", text: t("items.reset") }),
      ),
    );
    form.onsubmit = (event) => {
      event.preventDefault();
      this.applyFilters();
    };
    form.querySelectorAll("select").forEach((s) => s.addEventListener("change", () => this.applyFilters()));
    form.querySelector("[data-action=reset]")?.addEventListener("click", () => {
      for (const name of FILTERS) this.filters[name] = "";
      this.renderFilters();
      this.applyFilters();
    });
  }

  private renderTable(): void {
    const box = this.view.table;
    clear(box);
    if (!this.rows.length) {
      box.append(el("p", { class: "muted", text: t("items.none") }));
      return;
    }
    const head = el(
      "tr",
      {},
      ...["items.col_id", "items.col_text", "items.language", "items.speaker", "items.status", "items.col_annotations", "items.col_agreement", "items.col_uncertainty"].map((k) => el("th", { scope: "col", text: t(k) })),
    );
    const body = el("tbody");
    this.rows.forEach((row, index) => {
      const tr = el(
        "tr",
        { tabindex: "0", "data-index": index, "data-utterance": row.utterance_id, "aria-selected": index === this.selected ? "true" : "false" },
        el("td", { class: "num", text: String(row.utterance_id) }),
        el("td", { class: "text-cell", lang: row.language, dir: row.direction, text: row.text || t("annotate.audio_only") }),
        el("td", { text: row.language }),
        el("td", { text: row.speaker ?? "—" }),
        el("td", {}, el("span", { class: `badge status-${row.status}`, text: t(`status.${row.status}`) }), row.open_flags && row.status !== "flagged" ? el("span", { class: "badge status-flagged", text: t("status.flagged") }) : null),
        el("td", { class: "num", text: `${formatNumber(row.annotation_count)}/${formatNumber(row.target_count)}` }),
        el("td", { class: "num", text: row.agreement === null ? "—" : `${formatNumber(row.agreement * 100)}%` }),
        el("td", { class: "num", text: row.uncertainty === null ? "—" : formatNumber(row.uncertainty, 2) }),
      );
      tr.addEventListener("click", () => {
        this.select(index);
        void this.open(row.utterance_id);
      });
      body.append(tr);
    });
    box.append(el("table", { class: "data browse" }, el("thead", {}, head), body));
  }

  private renderPager(): void {
    const pager = this.view.pager;
    clear(pager);
    const previous = el("button", { type: "button", class: "button small", "data-action": "previous-page", disabled: this.cursors.length <= 1 }, el("kbd", { text: "[" }), el("span", { text: t("items.previous") }));
    const next = el("button", { type: "button", class: "button small", "data-action": "next-page", disabled: !this.nextCursor }, el("span", { text: t("items.next") }), el("kbd", { text: "]" }));
    previous.addEventListener("click", () => this.page(-1));
    next.addEventListener("click", () => this.page(1));
    pager.append(previous, el("span", { class: "muted", text: t("items.page", { page: formatNumber(this.cursors.length) }) }), next);
  }

  private select(index: number): void {
    this.selected = Math.max(0, Math.min(this.rows.length - 1, index));
    this.view.table.querySelectorAll<HTMLElement>("tr[data-index]").forEach((tr) => tr.setAttribute("aria-selected", tr.dataset.index === String(this.selected) ? "true" : "false"));
    const row = this.view.table.querySelector<HTMLElement>(`tr[data-index="${this.selected}"]`);
    row?.focus();
    row?.scrollIntoView({ block: "nearest" });
  }

  private renderDetail(): void {
    const box = this.view.detail;
    const detail = this.detail;
    clear(box);
    if (!detail) return;
    const closeButton = el("button", { type: "button", class: "link close", title: t("action.close"), text: "×" });
    closeButton.addEventListener("click", () => this.close());
    const actions = el(
      "div",
      { class: "row" },
      el("a", { class: "button small", href: `/projects/${this.projectId}/review/?item=${detail.utterance.id}`, text: t("items.open_review") }),
    );
    if (this.facts?.can_manage && (detail.item?.can_make_gold || detail.item?.is_gold) && !this.goldForm) {
      const gold = el("button", { type: "button", class: "button small", "data-action": "gold", text: detail.item?.is_gold ? t("gold.edit") : t("gold.make") });
      gold.addEventListener("click", () => this.editGold());
      actions.append(gold);
      if (detail.item?.is_gold) actions.append(this.unsetGoldControl(detail.utterance.id));
    } else if (this.facts?.can_manage && !detail.item?.is_gold && !this.goldForm) {
      actions.append(el("span", { class: "muted small", text: t("gold.only_unseen") }));
    }
    box.append(
      el("div", { class: "item-head" }, el("h2", { text: t("item.title", { id: detail.utterance.id }) }), closeButton),
      itemFacts(detail),
      actions,
      utterancePanel(detail),
    );
    if (this.goldForm) box.append(this.goldEditor());
    box.append(
      el("h3", { text: t("review.annotations") }),
      annotationsTable(detail),
      flagsPanel(this.projectId, detail, () => void this.open(detail.utterance.id)),
      historyList(detail),
    );
  }

  private goldEditor(): HTMLElement {
    const form = this.goldForm as QuestionForm;
    const tolerance = el("input", { type: "number", min: 0, step: 0.1, value: String(this.detail?.gold?.numeric_tolerance ?? 0), name: "numeric_tolerance" });
    const errors = el("div", { class: "general-errors", role: "alert" });
    const cancel = el("button", { type: "button", class: "button", text: t("action.cancel") });
    cancel.addEventListener("click", () => {
      this.goldForm = null;
      this.renderDetail();
    });
    const wrapper = el(
      "form",
      { class: "gold-form", novalidate: true },
      el("h3", { text: t("gold.title") }),
      el("p", { class: "muted small", text: t("gold.hint") }),
      form.root,
      el("label", { class: "field" }, el("span", { class: "field-label", text: t("gold.tolerance") }), tolerance),
      errors,
      el("div", { class: "row" }, el("button", { type: "submit", class: "button primary", "data-action": "save-gold", text: t("gold.save") }), cancel),
    );
    form.render();
    wrapper.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.saveGold(tolerance.value, errors);
    });
    return wrapper;
  }

  private renderHelp(): void {
    const box = this.view.help;
    clear(box);
    const table = el("table", { class: "shortcuts" });
    for (const [keys, label] of BROWSE_SHORTCUTS) table.append(el("tr", {}, el("td", {}, el("kbd", { dir: "ltr", text: keys })), el("td", { text: t(label) })));
    const close = el("button", { type: "button", class: "button", text: t("action.close") });
    close.addEventListener("click", () => this.toggleHelp(false));
    box.append(el("div", { class: "overlay-card" }, el("h2", { text: t("help.title") }), table, close));
  }

  private toggleHelp(show?: boolean): void {
    if (!this.view.help.firstChild) this.renderHelp();
    this.view.help.hidden = show === undefined ? !this.view.help.hidden : !show;
  }

  // --- keyboard -------------------------------------------------------------------------------------------------------

  private onKey(event: KeyboardEvent): void {
    if (event.defaultPrevented || event.isComposing) return;
    if (!this.view.help.hidden && (event.key === "Escape" || event.key === "?")) {
      event.preventDefault();
      this.toggleHelp(false);
      return;
    }
    if (isTyping(event)) {
      if (event.key === "Escape") (event.target as HTMLElement).blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const consume = (action: () => void): void => {
      event.preventDefault();
      action();
    };
    if (this.goldForm && this.goldForm.handleKey(event)) return consume(() => undefined);
    const key = event.key;
    if (key === "?") return consume(() => this.toggleHelp());
    if (key === "/") return consume(() => this.view.filters.querySelector<HTMLInputElement>("[name=q]")?.focus());
    if (key === "Escape" && this.detail) return consume(() => this.close());
    if (key === "]") return consume(() => this.page(1));
    if (key === "[") return consume(() => this.page(-1));
    const inTable = (event.target as HTMLElement | null)?.closest?.(".browse-table") !== null || this.view.detail.hidden;
    if (!inTable) return;
    if (key === "j" || key === "ArrowDown") return consume(() => this.select(this.selected + 1));
    if (key === "k" || key === "ArrowUp") return consume(() => this.select(this.selected - 1));
    if (key === "Enter" && this.rows[this.selected]) return consume(() => void this.open(this.rows[this.selected].utterance_id));
  }
}

export function mountItems(): void {
  const root = $("#items");
  new ItemBrowser(root, Number(root.dataset.projectId));
}

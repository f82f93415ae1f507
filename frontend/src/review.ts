// The review and adjudication screen (/projects/<id>/review/, reviewers and leads): the review queue with filters on
// the left, the open item on the right (utterance, context, audio, every annotation side by side, flags, history) and
// the decision form, which uses the annotate screen's question widgets ("None of these" included). A decision (POST
// …/review-queue/<utterance>/adjudicate/) overrides the aggregation in every export, ties included. Everything works
// from the keyboard (press ?).
import { api, ApiError, errorText, flatten } from "./api";
import { $, el, clear, isTyping } from "./dom";
import { t, formatNumber, onLanguageChange } from "./i18n";
import {
  annotationsTable,
  flagsPanel,
  historyList,
  itemFacts,
  itemUrl,
  perspectiveName,
  utterancePanel,
  type ItemDetail,
  type ProjectFacts,
} from "./itemview";
import { QuestionForm } from "./widgets";

interface QueueEntry {
  utterance_id: number;
  text: string;
  language: string;
  direction: "ltr" | "rtl";
  n_annotations: number;
  open_flags: number;
  reasons: string[];
}

const REASONS = ["flagged", "tie", "low_agreement", "gold"];

export const REVIEW_SHORTCUTS: [string, string][] = [
  ["n / p", "review.help_next"],
  ["⇧1 … ⇧9", "review.help_copy"],
  ["1 … 9, 0", "help.labels"],
  ["↑ ↓", "help.questions"],
  ["← →", "help.slider"],
  ["c", "review.help_note"],
  ["Enter", "review.help_decide"],
  ["f", "review.help_flag"],
  ["Space", "review.help_play"],
  ["Esc", "help.leave_text"],
  ["?", "help.help"],
];

class ReviewScreen {
  private facts: ProjectFacts | null = null;
  private queue: QueueEntry[] = [];
  private nextPage: string | null = null;
  private total = 0;
  private current: ItemDetail | null = null;
  private currentId: number | null = null;
  private form: QuestionForm | null = null;
  private copiedFrom: string | null = null;
  private perspective = "";
  private reasonFilter: string;
  private languageFilter: string;
  private status = { key: "", params: {} as Record<string, string | number>, tone: "", raw: "" };
  private readonly view = {
    head: el("div", { class: "review-head" }),
    filters: el("div", { class: "queue-filters" }),
    list: el("ol", { class: "queue-list", "aria-label": "queue" }),
    more: el("div", { class: "queue-more" }),
    item: el("section", { class: "review-item", tabindex: "-1" }),
    status: el("div", { class: "status", role: "status", "aria-live": "polite" }),
    help: el("div", { class: "overlay", hidden: true, role: "dialog", "aria-modal": "true" }),
  };

  constructor(
    private root: HTMLElement,
    private projectId: number,
  ) {
    const params = new URLSearchParams(window.location.search);
    this.reasonFilter = REASONS.includes(params.get("reason") ?? "") ? (params.get("reason") as string) : "";
    this.languageFilter = params.get("language") ?? "";
    // An item named in the URL, else the queue's first item as the page names it (opened while the queue loads).
    const wanted = Number(params.get("item") ?? root.dataset.firstItem);
    clear(root);
    const v = this.view;
    root.append(
      v.head,
      el(
        "div",
        { class: "review-layout" },
        el("aside", { class: "queue-pane" }, v.filters, v.list, v.more),
        v.item,
      ),
      v.help,
    );
    document.addEventListener("keydown", (e) => this.onKey(e));
    onLanguageChange(() => this.renderAll());
    void this.start(Number.isFinite(wanted) && wanted > 0 ? wanted : null);
  }

  private async start(wanted: number | null): Promise<void> {
    // Facts, queue and the first item together: it is on screen after one round trip.
    const facts = api<ProjectFacts>("GET", `/api/projects/${this.projectId}/items/facts/`).then((f) => (this.facts = f));
    const opened = wanted !== null ? this.open(wanted) : null;
    try {
      await Promise.all([facts, this.loadQueue()]);
    } catch (error) {
      this.setRawStatus(errorText(error), "error");
      this.renderHead();
      return;
    }
    this.renderHead();
    this.renderFilters();
    const first = wanted ?? this.queue[0]?.utterance_id ?? null;
    if (opened) await opened;
    else if (first !== null) await this.open(first);
    else this.renderItem();
  }

  // --- queue ------------------------------------------------------------------------------------------------------

  private queueUrl(): string {
    const params = new URLSearchParams();
    if (this.reasonFilter) params.set("reason", this.reasonFilter);
    if (this.languageFilter) params.set("language", this.languageFilter);
    const query = params.toString();
    return `/api/projects/${this.projectId}/review-queue/${query ? `?${query}` : ""}`;
  }

  private async loadQueue(append = false): Promise<void> {
    try {
      const page = await api<{ count: number; next: string | null; results: QueueEntry[] }>("GET", append && this.nextPage ? this.nextPage : this.queueUrl());
      this.queue = append ? [...this.queue, ...page.results] : page.results;
      this.nextPage = page.next;
      this.total = page.count;
    } catch (error) {
      this.setRawStatus(errorText(error), "error");
    }
    this.renderHead();
    this.renderFilters();
    this.renderQueue();
  }

  private syncUrl(): void {
    const params = new URLSearchParams();
    if (this.reasonFilter) params.set("reason", this.reasonFilter);
    if (this.languageFilter) params.set("language", this.languageFilter);
    if (this.currentId !== null) params.set("item", String(this.currentId));
    const query = params.toString();
    window.history.replaceState(null, "", `${window.location.pathname}${query ? `?${query}` : ""}`);
  }

  // --- one item ---------------------------------------------------------------------------------------------------

  private async open(utteranceId: number, focus = false): Promise<void> {
    this.currentId = utteranceId;
    this.syncUrl();
    this.renderQueue();
    try {
      this.current = await api<ItemDetail>("GET", itemUrl(this.projectId, utteranceId));
    } catch (error) {
      this.current = null;
      this.setRawStatus(errorText(error), "error");
      this.renderItem();
      return;
    }
    const questions = this.current.questions.filter((q) => q.type !== "segments" || this.current?.utterance.audio_url);
    this.form = new QuestionForm(questions);
    this.copiedFrom = null;
    this.perspective = this.current.perspectives[0] ?? "";
    const decided = this.current.adjudications.find((a) => a.perspective === this.perspective);
    if (decided) this.form.setAnswers(decided.value);
    this.renderItem();
    if (focus) this.view.item.focus();
  }

  private copy(index: number): void {
    const annotation = this.current?.annotations[index];
    if (!annotation || !this.form) return;
    this.form.setAnswers(annotation.value);
    if (annotation.perspective && this.current?.perspectives.includes(annotation.perspective)) this.perspective = annotation.perspective;
    this.copiedFrom = annotation.rater;
    this.renderDecision();
    this.setStatus("review.copied", { rater: annotation.rater });
  }

  private async decide(): Promise<void> {
    const detail = this.current;
    if (!detail || !this.form) return;
    const note = this.view.item.querySelector<HTMLInputElement>(".decision-note")?.value ?? "";
    const errors = this.view.item.querySelector(".decision-errors");
    if (errors) clear(errors);
    try {
      await api("POST", `/api/projects/${this.projectId}/review-queue/${detail.utterance.id}/adjudicate/`, {
        value: this.form.payload(),
        perspective: this.perspective,
        note,
      });
    } catch (error) {
      this.showDecisionError(error);
      return;
    }
    await this.afterChange(detail.utterance.id, "review.decided");
  }

  /** After a decision or a closed flag: reload the queue; stay on the item while it is still queued, else the next. */
  private async afterChange(utteranceId: number, message: string): Promise<void> {
    this.setStatus(message, { id: utteranceId });
    const position = this.queue.findIndex((entry) => entry.utterance_id === utteranceId);
    await this.loadQueue();
    if (this.queue.some((entry) => entry.utterance_id === utteranceId)) return this.open(utteranceId, true);
    const next = this.queue[Math.max(0, Math.min(position, this.queue.length - 1))] ?? null;
    await this.open(next ? next.utterance_id : utteranceId, true);
  }

  private showDecisionError(error: unknown): void {
    const box = this.view.item.querySelector(".decision-errors");
    if (!(error instanceof ApiError) || error.status !== 400 || !error.body || typeof error.body !== "object") {
      box?.append(el("p", { class: "field-error", text: errorText(error) }));
      return;
    }
    const perQuestion: Record<string, string[]> = {};
    for (const [field, messages] of Object.entries(error.body as Record<string, unknown>)) {
      if (field === "value" && messages && typeof messages === "object" && !Array.isArray(messages)) {
        for (const [key, reasons] of Object.entries(messages as Record<string, unknown>)) perQuestion[key] = flatten(reasons);
      } else {
        box?.append(el("p", { class: "field-error", text: `${field}: ${flatten(messages).join(" ")}` }));
      }
    }
    this.form?.setErrors(perQuestion);
    this.setStatus("annotate.fix_errors", {}, "error");
  }

  private move(step: number): void {
    if (!this.queue.length) return;
    const index = this.queue.findIndex((entry) => entry.utterance_id === this.currentId);
    const next = this.queue[Math.max(0, Math.min(this.queue.length - 1, index + step))];
    if (next && next.utterance_id !== this.currentId) void this.open(next.utterance_id, true);
  }

  // --- rendering ----------------------------------------------------------------------------------------------------

  private renderAll(): void {
    this.renderHead();
    this.renderFilters();
    this.renderQueue();
    this.renderItem();
    this.renderHelp();
  }

  private renderHead(): void {
    const v = this.view;
    clear(v.head);
    v.head.append(
      el("h1", { text: t("review.title", { project: this.facts?.name ?? "…" }) }),
      el("span", { class: "muted", text: t("review.in_queue", { count: formatNumber(this.total) }) }),
      v.status,
      el(
        "nav",
        { class: "row" },
        el("a", { class: "button small", href: `/projects/${this.projectId}/items/`, text: t("items.link") }),
        el("a", { class: "button small", href: `/projects/${this.projectId}/dashboard/`, text: t("projects.dashboard") }),
        el("button", { type: "button", class: "button small", "data-action": "help", text: t("action.help") }),
      ),
    );
    v.head.querySelector("[data-action=help]")?.addEventListener("click", () => this.toggleHelp());
    this.paintStatus();
  }

  private renderFilters(): void {
    const v = this.view;
    clear(v.filters);
    const reason = el("select", { "aria-label": t("review.reason"), name: "reason" });
    reason.append(el("option", { value: "", text: t("review.all_reasons") }));
    for (const r of REASONS) reason.append(el("option", { value: r, text: t(`reason.${r}`), selected: r === this.reasonFilter }));
    const language = el("select", { "aria-label": t("items.language"), name: "language" });
    language.append(el("option", { value: "", text: t("items.all_languages") }));
    for (const l of this.facts?.languages ?? []) language.append(el("option", { value: l.code, text: `${l.name} (${l.code})`, selected: l.code === this.languageFilter }));
    reason.addEventListener("change", () => {
      this.reasonFilter = reason.value;
      this.syncUrl();
      void this.loadQueue().then(() => this.openFirstIfNone());
    });
    language.addEventListener("change", () => {
      this.languageFilter = language.value;
      this.syncUrl();
      void this.loadQueue().then(() => this.openFirstIfNone());
    });
    v.filters.append(el("label", { class: "field" }, el("span", { class: "field-label", text: t("review.reason") }), reason), el("label", { class: "field" }, el("span", { class: "field-label", text: t("items.language") }), language));
  }

  private openFirstIfNone(): void {
    if (!this.queue.some((e) => e.utterance_id === this.currentId) && this.queue[0]) void this.open(this.queue[0].utterance_id);
  }

  private renderQueue(): void {
    const v = this.view;
    clear(v.list);
    clear(v.more);
    if (!this.queue.length) {
      v.list.append(el("li", { class: "muted empty", text: t("review.empty") }));
      return;
    }
    for (const entry of this.queue) {
      const button = el(
        "button",
        { type: "button", class: "queue-entry", "aria-current": entry.utterance_id === this.currentId ? "true" : null, "data-utterance": entry.utterance_id },
        el("span", { class: "queue-text", lang: entry.language, dir: entry.direction, text: entry.text || t("annotate.audio_only") }),
        el(
          "span",
          { class: "queue-meta" },
          ...entry.reasons.map((r) => el("span", { class: `badge reason-${r}`, text: t(`reason.${r}`) })),
          el("span", { class: "muted small", text: `${entry.language} · ${t("review.n_annotations", { n: formatNumber(entry.n_annotations) })}` }),
        ),
      );
      button.addEventListener("click", () => void this.open(entry.utterance_id));
      v.list.append(el("li", {}, button));
    }
    if (this.nextPage) {
      const more = el("button", { type: "button", class: "button small", text: t("review.more") });
      more.addEventListener("click", () => void this.loadQueue(true));
      v.more.append(more);
    }
  }

  private renderItem(): void {
    const box = this.view.item;
    clear(box);
    const detail = this.current;
    if (!detail) {
      box.append(el("div", { class: "finished-card" }, el("h2", { text: t("review.nothing") }), el("p", { class: "muted", text: t("review.nothing_body") })));
      return;
    }
    const reasons = this.queue.find((e) => e.utterance_id === detail.utterance.id)?.reasons ?? [];
    box.append(
      el(
        "div",
        { class: "item-head" },
        el("h2", { text: t("item.title", { id: detail.utterance.id }) }),
        ...reasons.map((r) => el("span", { class: `badge reason-${r}`, text: t(`reason.${r}`) })),
        itemFacts(detail),
      ),
      utterancePanel(detail),
      el("h3", { text: t("review.annotations") }),
      annotationsTable(detail, (index) => this.copy(index)),
      el("div", { class: "decision" }),
      flagsPanel(this.projectId, detail, () => void this.afterChange(detail.utterance.id, "review.flag_closed")),
      historyList(detail),
    );
    this.renderDecision();
  }

  private renderDecision(): void {
    const detail = this.current;
    const box = this.view.item.querySelector(".decision");
    if (!box || !detail || !this.form) return;
    clear(box);
    const decided = detail.adjudications.find((a) => a.perspective === this.perspective);
    const note = el("input", { type: "text", class: "decision-note", maxlength: 2000, dir: "auto", "aria-label": t("review.note"), placeholder: t("review.note_hint") });
    if (decided) note.value = decided.note;
    const perspective = detail.perspectives.length
      ? el(
          "label",
          { class: "field inline" },
          el("span", { class: "field-label", text: t("annotate.perspective") }),
          (() => {
            const select = el("select", { name: "perspective" });
            for (const p of detail.perspectives) select.append(el("option", { value: p, text: perspectiveName(p), selected: p === this.perspective }));
            select.addEventListener("change", () => {
              this.perspective = select.value;
              this.renderDecision();
            });
            return select;
          })(),
        )
      : null;
    const submit = el("button", { type: "submit", class: "button primary", "data-action": "decide" }, el("span", { text: t("review.decide") }), el("kbd", { text: "Enter" }));
    const form = el(
      "form",
      { class: "decision-form", novalidate: true },
      el("h3", { text: t("review.decision") }),
      // What a decision does: every export takes it instead of the aggregation (label_source "adjudicated").
      el("p", { class: "muted small decision-effect", text: t("review.decision_note") }),
      el("p", { class: "muted small", text: this.copiedFrom ? t("review.copied_from", { rater: this.copiedFrom }) : decided ? t("review.decided_by", { who: decided.decided_by }) : t("review.decision_hint") }),
      perspective,
      this.form.root,
      el("label", { class: "field" }, el("span", { class: "field-label", text: t("review.note") }), note),
      el("div", { class: "decision-errors", role: "alert" }),
      submit,
    );
    this.form.render();
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.decide();
    });
    box.append(form);
  }

  private renderHelp(): void {
    const box = this.view.help;
    clear(box);
    const table = el("table", { class: "shortcuts" });
    for (const [keys, label] of REVIEW_SHORTCUTS) table.append(el("tr", {}, el("td", {}, el("kbd", { dir: "ltr", text: keys })), el("td", { text: t(label) })));
    const close = el("button", { type: "button", class: "button", text: t("action.close") });
    close.addEventListener("click", () => this.toggleHelp(false));
    box.append(el("div", { class: "overlay-card" }, el("h2", { text: t("help.title") }), table, close));
  }

  private toggleHelp(show?: boolean): void {
    if (!this.view.help.firstChild) this.renderHelp();
    this.view.help.hidden = show === undefined ? !this.view.help.hidden : !show;
  }

  // --- status line: kept as a key so a language switch translates it too ---------------------------------------------

  private setStatus(key: string, params: Record<string, string | number> = {}, tone = "ok"): void {
    this.status = { key, params, tone, raw: "" };
    this.paintStatus();
  }

  private setRawStatus(text: string, tone = ""): void {
    this.status = { key: "", params: {}, tone, raw: text };
    this.paintStatus();
  }

  private paintStatus(): void {
    const s = this.status;
    this.view.status.textContent = s.key ? t(s.key, s.params) : s.raw;
    this.view.status.dataset.tone = s.tone;
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
      if (event.key === "Escape") {
        (event.target as HTMLElement).blur();
        event.preventDefault();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const consume = (action: () => void): void => {
      event.preventDefault();
      action();
    };
    const digit = /^Digit([1-9])$/.exec(event.code)?.[1];
    if (event.shiftKey && digit) return consume(() => this.copy(Number(digit) - 1));
    const key = event.key;
    if (key === "?") return consume(() => this.toggleHelp());
    if (key === "n") return consume(() => this.move(1));
    if (key === "p") return consume(() => this.move(-1));
    if (!this.current || !this.form) return;
    if (key === "Enter") {
      const target = event.target as HTMLElement;
      if (target.tagName === "BUTTON" && !target.closest(".question-form") && target.dataset.action !== "decide") return;
      return consume(() => void this.decide());
    }
    if (key === "c") return consume(() => this.view.item.querySelector<HTMLInputElement>(".decision-note")?.focus());
    if (key === "f") return consume(() => this.view.item.querySelector<HTMLInputElement>(".flag-answer")?.focus());
    if (key === " ") {
      const audio = this.view.item.querySelector<HTMLAudioElement>(".item-audio");
      if (audio) return consume(() => void (audio.paused ? audio.play() : audio.pause()));
    }
    if (this.form.handleKey(event)) return consume(() => undefined);
  }
}

export function mountReview(): void {
  const root = $("#review");
  new ReviewScreen(root, Number(root.dataset.projectId));
}

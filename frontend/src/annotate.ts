// The annotate screen: one item at a time, everything on the keyboard, no page reloads, no lost work.
import { api, apiList, ApiError, errorText, flatten } from "./api";
import { $, el, clear, isTyping, uuid4 } from "./dom";
import { t, formatNumber, onLanguageChange } from "./i18n";
import { Player, loadAudio } from "./waveform";
import { QuestionForm, snap, type Answers, type Question, type Segment } from "./widgets";

interface Language {
  code: string;
  name: string;
  script: string;
  direction: "ltr" | "rtl";
}
interface Turn {
  utterance_id: number;
  turn_index: number;
  speaker: string | null;
  text: string;
  language: Language;
}
/** Provenance of an automatic (ASR) transcript; null when the text came from the source or a person. */
interface Transcript {
  source: string;
  model: string;
  model_version: string;
  confidence: number | null;
  language: string;
  language_source: string;
  words: { word: string; start: number; end: number; probability: number }[];
}
const DOUBTFUL_WORD = 0.5; // word probability under which the screen names the word for a closer listen
interface Item {
  project_id: number;
  utterance: {
    id: number;
    text: string;
    language: Language;
    audio_url: string | null;
    audio_duration_s: number | null;
    speaker: string | null;
    conversation: string | null;
    turn_index: number | null;
    transcript: Transcript | null;
  };
  context: Turn[];
  suggestion_policy: "hidden" | "shown" | "prefilled";
  suggestion: { model_version: string; label: string; scores: Record<string, unknown>; uncertainty: number | null } | null;
  schema: { version_id: number; questions: Question[]; perspectives: string[] };
  reservation: { expires_at: string; resumed: boolean };
}
interface Draft {
  clientId: string;
  answers: Answers;
  perspective: string;
}

interface MyAnnotation {
  id: number;
  utterance: number;
  utterance_text: string;
  language: string;
  direction: "ltr" | "rtl";
  value: Answers;
  perspective: string;
  created_at: string;
  editable: boolean;
}
interface MySkip {
  utterance: number;
  utterance_text: string;
  language: string;
  direction: "ltr" | "rtl";
  reason: string;
}

const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 2];
const UNDO_WINDOW_MS = 90_000;
const RETRY_DELAYS_S = [1, 2, 4, 8, 15, 30];

export const SHORTCUTS: [string, string][] = [
  ["1 … 9, 0", "help.labels"],
  ["1 … 9 ×2", "help.intensity"],
  ["n", "help.none"],
  ["↑ ↓ / j k", "help.questions"],
  ["← →", "help.slider"],
  ["Shift + ← →", "help.slider_big"],
  ["Delete", "help.clear"],
  ["t", "help.text"],
  ["Esc", "help.leave_text"],
  ["Space", "help.play"],
  ["r", "help.replay"],
  [", .", "help.speed"],
  ["[ ]", "help.segment"],
  ["a", "help.accept"],
  ["p", "help.perspective"],
  ["Enter", "help.submit"],
  ["Ctrl + Enter", "help.submit_text"],
  ["s", "help.skip"],
  ["f", "help.flag"],
  ["u", "help.undo"],
  ["h", "help.history"],
  ["g", "help.guidelines"],
  ["?", "help.help"],
];

export class AnnotateScreen {
  private item: Item | null = null;
  private form: QuestionForm | null = null;
  private player: Player | null = null;
  private audioUrl: string | null = null;
  private draft: Draft | null = null;
  private shownAt = 0;
  private saving = false;
  private retryTimer: number | undefined;
  private retryCount = 0;
  private speedIndex = 2;
  private segmentStart: number | null = null;
  private doneCount = 0;
  private myTotal = 0;
  private projectName = "";
  private guidelines = "";
  private dialog: { kind: "skip" | "flag"; input: HTMLInputElement } | null = null;
  private statusMessage: string | (() => string) = "";
  /** The last submit, undoable with u for UNDO_WINDOW_MS (the server allows a little more). */
  private lastSubmit: { annotationId: number; utteranceId: number; answers: Answers; perspective: string; at: number } | null = null;
  /** Answers to put back on the item an undo returned. */
  private restore: { utteranceId: number; answers: Answers; perspective: string } | null = null;
  /** Changing an earlier answer: the item and form to return to afterwards. */
  private editing: { annotation: MyAnnotation; back: Item | null } | null = null;
  private undoTimer: number | undefined;
  private schemaCache: Item["schema"] | null = null;

  private readonly view = {
    status: el("div", { class: "status", role: "status", "aria-live": "polite" }),
    context: el("ol", { class: "context", "aria-label": "conversation" }),
    playerBox: el("div", { class: "player" }),
    suggestion: el("div", { class: "suggestion" }),
    perspective: el("div", { class: "perspective" }),
    formBox: el("div", { class: "form-box" }),
    generalErrors: el("div", { class: "general-errors", role: "alert" }),
    actions: el("div", { class: "actions" }),
    counter: el("span", { class: "counter" }),
    title: el("h1", { class: "project-title" }),
    guidelines: el("aside", { class: "guidelines", hidden: true, tabindex: "-1" }),
    history: el("aside", { class: "history-drawer", hidden: true, tabindex: "-1", "aria-label": "history" }),
    help: el("div", { class: "overlay", hidden: true, role: "dialog", "aria-modal": "true" }),
    prompt: el("div", { class: "overlay", hidden: true, role: "dialog", "aria-modal": "true" }),
    main: el("div", { class: "annotate-grid" }),
  };

  constructor(
    private root: HTMLElement,
    private projectId: number,
  ) {
    const v = this.view;
    root.append(
      el("div", { class: "annotate-head" }, v.title, v.counter, v.status),
      v.main,
      v.actions,
      v.guidelines,
      v.history,
      v.help,
      v.prompt,
    );
    v.main.append(
      el("section", { class: "item-pane" }, v.context, v.playerBox),
      el("section", { class: "form-pane" }, v.suggestion, v.perspective, v.formBox, v.generalErrors),
    );
    document.addEventListener("keydown", (e) => this.onKey(e));
    onLanguageChange(() => {
      this.rerender();
      this.repaintStatus();
    });
    void this.start();
  }

  // --- loading ------------------------------------------------------------------------------------------------------

  private async start(): Promise<void> {
    this.setStatus(() => t("annotate.loading"));
    // The three requests go together: the item is on screen after one round trip, not three.
    const facts = Promise.all([
      api<{ name: string; guidelines: string }>("GET", `/api/projects/${this.projectId}/`),
      api<{ count: number }>("GET", `/api/projects/${this.projectId}/my-annotations/`),
    ]).then(([project, mine]) => {
      this.projectName = project.name;
      this.guidelines = project.guidelines;
      this.myTotal = mine.count;
    });
    const next = this.loadNext(facts);
    try {
      await facts;
    } catch (error) {
      this.setStatus(errorText(error), "error");
    }
    await next;
    this.rerender();
  }

  private async loadNext(before?: Promise<unknown>): Promise<void> {
    this.setStatus(() => t("annotate.loading"));
    try {
      const item = await api<Item | null>("POST", `/api/projects/${this.projectId}/next/`);
      await before?.catch(() => undefined); // the title and counter come with it when both were asked at once
      await this.show(item);
    } catch (error) {
      this.showLoadError(error);
    }
  }

  private showLoadError(error: unknown): void {
    this.setStatus(() => `${t("annotate.load_failed")} ${errorText(error)}`, "error");
    const retry = el("button", { type: "button", class: "button", text: t("annotate.retry") });
    retry.addEventListener("click", () => void this.loadNext());
    this.view.status.append(" ", retry);
  }

  private async show(item: Item | null): Promise<void> {
    this.player?.destroy();
    this.player = null;
    if (this.audioUrl) URL.revokeObjectURL(this.audioUrl);
    this.audioUrl = null;
    this.item = item;
    this.segmentStart = null;
    this.retryCount = 0;
    this.root.classList.toggle("finished", item === null);
    if (item === null) {
      this.form = null;
      this.renderFinished();
      return;
    }
    const restore = this.restore?.utteranceId === item.utterance.id ? this.restore : null;
    this.restore = null;
    const given = this.editing ? { answers: this.editing.annotation.value, perspective: this.editing.annotation.perspective } : restore;
    this.draft = given
      ? { clientId: uuid4(), answers: given.answers, perspective: given.perspective }
      : (this.loadDraft(item) ?? { clientId: uuid4(), answers: {}, perspective: item.schema.perspectives[0] ?? "" });
    // A time-segments question needs audio to mark: text-only items leave it out.
    const questions = item.schema.questions.filter((q) => q.type !== "segments" || item.utterance.audio_url);
    this.form = new QuestionForm(questions, () => this.onFormChange());
    if (Object.keys(this.draft.answers).length) this.form.setAnswers(this.draft.answers);
    else if (item.suggestion_policy === "prefilled") this.applySuggestion(false);
    this.shownAt = performance.now();
    this.rerender();
    this.setStatus(() => (item.reservation.resumed ? t("annotate.resumed") : ""));
    if (item.utterance.audio_url) await this.loadAudio(item);
  }

  private async loadAudio(item: Item): Promise<void> {
    const box = this.view.playerBox.querySelector<HTMLElement>(".waveform");
    if (!box || !item.utterance.audio_url) return;
    try {
      const audio = await loadAudio(item.utterance.audio_url);
      if (this.item !== item) {
        URL.revokeObjectURL(audio.url);
        return;
      }
      this.audioUrl = audio.url;
      const segmentsQuestion = this.form?.segmentsQuestion();
      this.player = new Player(
        box,
        audio,
        {
          onSegmentDrawn: (start, end) => {
            if (segmentsQuestion && this.form && !this.saving) this.form.addSegment(segmentsQuestion, start, end);
            else this.syncRegions();
          },
          onSegmentMoved: (index, start, end) => {
            if (segmentsQuestion && this.form) this.form.updateSegment(segmentsQuestion, index, start, end);
          },
          onTime: (time, duration) => {
            const clock = this.view.playerBox.querySelector(".clock");
            if (clock) clock.textContent = `${time.toFixed(1)} / ${duration.toFixed(1)} s`;
          },
          onState: (playing) => {
            const button = this.view.playerBox.querySelector(".play");
            if (button) button.textContent = playing ? t("player.pause") : t("player.play");
            this.view.playerBox.classList.toggle("playing", playing);
          },
          onError: () => this.setStatus(() => t("player.error"), "error"),
        },
        Boolean(segmentsQuestion),
      );
      this.player.setLabels(segmentsQuestion?.labels ?? []);
      this.player.setSpeed(SPEEDS[this.speedIndex]);
      this.syncRegions();
      this.view.playerBox.classList.add("ready");
    } catch {
      this.setStatus(() => t("player.error"), "error");
    }
  }

  // --- rendering ----------------------------------------------------------------------------------------------------

  private rerender(): void {
    const v = this.view;
    v.title.textContent = this.projectName;
    this.renderCounter();
    this.renderGuidelines();
    this.renderHelp();
    this.renderActions();
    const item = this.item;
    if (!item && this.root.classList.contains("finished")) return this.renderFinished();
    if (!item || !this.form) return;
    this.renderContext(item);
    this.renderPlayerControls(item);
    this.renderSuggestion(item);
    this.renderPerspective(item);
    this.form.render();
    clear(v.formBox);
    if (this.editing) v.formBox.append(this.editingBanner());
    v.formBox.append(this.form.root);
  }

  private renderCounter(): void {
    this.view.counter.textContent = t("annotate.counter", { session: formatNumber(this.doneCount), total: formatNumber(this.myTotal) });
  }

  private editingBanner(): HTMLElement {
    const back = el("button", { type: "button", class: "button small", "data-action": "cancel-edit", text: t("history.back") });
    back.addEventListener("click", () => void this.endEdit());
    return el(
      "div",
      { class: "editing-banner", role: "note" },
      el("span", { text: t("history.editing", { when: new Date(this.editing?.annotation.created_at ?? Date.now()).toLocaleString(document.documentElement.lang) }) }),
      back,
    );
  }

  private renderFinished(): void {
    const v = this.view;
    clear(v.main);
    const back = el("a", { href: "/projects/", class: "button", text: t("annotate.back_to_projects") });
    const skipped = el("p", { class: "skipped-note" });
    const card = el("div", { class: "finished-card" }, el("h2", { text: t("annotate.finished") }), el("p", { text: t("annotate.finished_body") }), skipped, back);
    v.main.append(card);
    this.renderCounter();
    this.renderActions();
    this.setStatus("");
    // Skipped items can still be done before the queue ends: offer them here.
    void api<{ count: number }>("GET", `/api/projects/${this.projectId}/my-skips/`)
      .then((page) => {
        if (!page.count || !card.isConnected) return;
        const open = el("button", { type: "button", class: "button primary", "data-action": "show-skipped", text: t("history.revisit_skipped", { count: formatNumber(page.count) }) });
        open.addEventListener("click", () => void this.toggleHistory(true));
        skipped.append(open);
      })
      .catch(() => undefined);
  }

  private renderContext(item: Item): void {
    const list = this.view.context;
    clear(list);
    list.setAttribute("aria-label", t("annotate.conversation"));
    if (item.context.length) list.append(el("li", { class: "context-heading", text: t("annotate.conversation") }));
    for (const turn of item.context) {
      list.append(
        el(
          "li",
          { class: "turn" },
          el("span", { class: "speaker", text: turn.speaker ?? t("annotate.unknown_speaker") }),
          el("p", { class: "turn-text", lang: turn.language.code, dir: turn.language.direction, text: turn.text }),
        ),
      );
    }
    const u = item.utterance;
    list.append(
      el(
        "li",
        { class: "turn current", "aria-current": "true" },
        el(
          "span",
          { class: "speaker" },
          el("span", { text: u.speaker ?? (item.context.length ? t("annotate.unknown_speaker") : t("annotate.utterance")) }),
          el("span", { class: "language-tag", text: `${u.language.name} · ${u.language.code}` }),
        ),
        el("p", {
          class: "utterance-text",
          id: "utterance-text",
          lang: u.language.code,
          dir: u.language.direction,
          "data-script": u.language.script,
          text: u.text || t("annotate.audio_only"),
        }),
        u.transcript ? this.transcriptNote(u.transcript) : null,
      ),
    );
    list.lastElementChild?.scrollIntoView({ block: "nearest" });
  }

  /** "Automatic transcript (model, confidence)", and the words Whisper was least sure of, so they get a listen. */
  private transcriptNote(transcript: Transcript): HTMLElement {
    const doubtful = transcript.words.filter((w) => w.probability < DOUBTFUL_WORD).map((w) => w.word);
    return el(
      "p",
      { class: "transcript-provenance muted small", "data-transcript-source": transcript.source },
      el("span", {
        class: "badge",
        text: t("annotate.asr_transcript", {
          model: transcript.model || transcript.model_version,
          confidence: transcript.confidence === null ? "—" : formatNumber(100 * transcript.confidence, 0),
        }),
        title: transcript.model_version,
      }),
      doubtful.length ? el("span", { class: "doubtful-words", text: ` ${t("annotate.asr_doubtful", { words: doubtful.join(", ") })}` }) : null,
    );
  }

  private renderPlayerControls(item: Item): void {
    const box = this.view.playerBox;
    const hasAudio = Boolean(item.utterance.audio_url);
    box.hidden = !hasAudio;
    if (!hasAudio) return;
    const existing = box.querySelector(".waveform");
    const controls = el("div", { class: "player-controls" });
    const play = el("button", { type: "button", class: "button play", text: t("player.play") });
    play.addEventListener("click", () => this.player?.playPause());
    const replay = el("button", { type: "button", class: "button replay", text: t("player.replay") });
    replay.addEventListener("click", () => this.player?.replay());
    const speed = el("select", { class: "speed", "aria-label": t("player.speed") });
    SPEEDS.forEach((rate, i) => {
      const option = el("option", { value: i, text: `${formatNumber(rate, 2)}×` });
      if (i === this.speedIndex) option.selected = true;
      speed.append(option);
    });
    speed.addEventListener("change", () => this.setSpeed(Number(speed.value)));
    controls.append(
      play,
      replay,
      el("label", { class: "speed-label" }, el("span", { text: t("player.speed") }), speed),
      el("span", { class: "clock", dir: "ltr", text: "0.0 s" }),
      this.form?.segmentsQuestion() ? el("span", { class: "muted", text: t("player.segments_hint") }) : "",
    );
    clear(box);
    // The waveform's container keeps its canvas across language changes; it is made once per item.
    box.append(existing ?? el("div", { class: "waveform", dir: "ltr" }), controls);
  }

  private renderSuggestion(item: Item): void {
    const box = this.view.suggestion;
    clear(box);
    box.hidden = item.suggestion_policy === "hidden" || !item.suggestion;
    const s = item.suggestion;
    if (box.hidden || !s) return;
    const scores = Object.entries(s.scores)
      .filter((entry): entry is [string, number] => typeof entry[1] === "number")
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3);
    const accept = el("button", { type: "button", class: "button small", text: t("suggestion.accept") });
    accept.addEventListener("click", () => this.applySuggestion(true));
    box.append(
      el("span", { class: "suggestion-title", text: item.suggestion_policy === "prefilled" ? t("suggestion.prefilled") : t("suggestion.title") }),
      el("strong", { class: "suggestion-label", text: s.label }),
      el("span", { class: "muted", text: scores.map(([k, v]) => `${k} ${formatNumber(v, 2)}`).join(" · ") }),
      el("span", { class: "muted model", text: s.model_version }),
      accept,
    );
  }

  private renderPerspective(item: Item): void {
    const box = this.view.perspective;
    clear(box);
    box.hidden = item.schema.perspectives.length === 0;
    if (box.hidden || !this.draft) return;
    const select = el("select", { "aria-label": t("annotate.perspective") });
    for (const p of item.schema.perspectives) {
      const option = el("option", { value: p, text: t(`perspective.${p}`) === `perspective.${p}` ? p : t(`perspective.${p}`) });
      option.selected = p === this.draft.perspective;
      select.append(option);
    }
    select.addEventListener("change", () => {
      if (this.draft) this.draft.perspective = select.value;
      this.saveDraft();
    });
    box.append(el("label", {}, el("span", { text: t("annotate.perspective") }), select));
  }

  private renderActions(): void {
    const box = this.view.actions;
    clear(box);
    const button = (key: string, shortcut: string, handler: () => void, primary = false): HTMLButtonElement => {
      const b = el("button", { type: "button", class: `button${primary ? " primary" : ""}`, "data-action": key }, el("span", { text: t(`action.${key}`) }), el("kbd", { text: shortcut }));
      b.addEventListener("click", handler);
      b.disabled = (!this.item && key !== "help" && key !== "guidelines") || (this.saving && key !== "help");
      return b;
    };
    const skip = button("skip", "S", () => this.openPrompt("skip"));
    const flag = button("flag", "F", () => this.openPrompt("flag"));
    skip.disabled ||= Boolean(this.editing);
    flag.disabled ||= Boolean(this.editing);
    const undo = this.canUndo() ? button("undo", "U", () => void this.undo()) : null;
    if (undo) undo.disabled = this.saving;
    const history = button("history", "H", () => void this.toggleHistory());
    history.disabled = false;
    box.append(
      button(this.editing ? "save_edit" : "submit", "Enter", () => void this.submit(), true),
      skip,
      flag,
      undo ?? "",
      el("span", { class: "spacer" }),
      history,
      button("guidelines", "G", () => this.toggleGuidelines()),
      button("help", "?", () => this.toggleHelp()),
    );
  }

  private renderGuidelines(): void {
    const box = this.view.guidelines;
    clear(box);
    const close = el("button", { type: "button", class: "link close", text: "×", title: t("action.close") });
    close.addEventListener("click", () => this.toggleGuidelines(false));
    box.append(
      el("h2", {}, el("span", { text: t("annotate.guidelines") }), close),
      // Guidelines are the lead's plain text: kept as text, line breaks preserved by CSS.
      el("div", { class: "guidelines-text", dir: "auto", text: this.guidelines || t("annotate.no_guidelines") }),
    );
  }

  private renderHelp(): void {
    const box = this.view.help;
    clear(box);
    const table = el("table", { class: "shortcuts" });
    for (const [keys, label] of SHORTCUTS) {
      table.append(el("tr", {}, el("td", {}, el("kbd", { dir: "ltr", text: keys })), el("td", { text: t(label) })));
    }
    const close = el("button", { type: "button", class: "button", text: t("action.close") });
    close.addEventListener("click", () => this.toggleHelp(false));
    box.append(el("div", { class: "overlay-card" }, el("h2", { text: t("help.title") }), table, close));
  }

  // --- actions ------------------------------------------------------------------------------------------------------

  private onFormChange(): void {
    clear(this.view.generalErrors);
    this.saveDraft();
    this.syncRegions();
  }

  private syncRegions(): void {
    const q = this.form?.segmentsQuestion();
    if (!this.player || !q || !this.form) return;
    this.player.showSegments((this.form.answers[q.key] as Segment[]) ?? [], !this.saving);
  }

  private setSpeed(index: number): void {
    this.speedIndex = Math.max(0, Math.min(SPEEDS.length - 1, index));
    this.player?.setSpeed(SPEEDS[this.speedIndex]);
    const select = this.view.playerBox.querySelector<HTMLSelectElement>(".speed");
    if (select) select.value = String(this.speedIndex);
    this.setStatus(() => t("player.speed_now", { rate: formatNumber(SPEEDS[this.speedIndex], 2) }));
  }

  private applySuggestion(announce: boolean): void {
    const item = this.item;
    const s = item?.suggestion;
    if (!item || !s || !this.form) return;
    const answers: Answers = { ...this.form.answers };
    for (const q of item.schema.questions) {
      const scores = s.scores;
      if (q.type === "single_choice") {
        const ranked = (q.labels ?? []).filter((l) => typeof scores[l] === "number").sort((a, b) => (scores[b] as number) - (scores[a] as number));
        const label = q.labels?.includes(s.label) ? s.label : ranked[0];
        if (label) answers[q.key] = label;
      } else if (q.type === "multi_label") {
        const chosen = (q.labels ?? []).filter((l) => typeof scores[l] === "number" && (scores[l] as number) >= 0.5);
        if (chosen.length) answers[q.key] = q.intensity ? Object.fromEntries(chosen.map((l) => [l, 1])) : chosen;
      } else if (q.type === "numeric" && typeof scores[q.key] === "number") {
        answers[q.key] = snap(q, scores[q.key] as number);
      }
    }
    this.form.setAnswers(answers);
    this.onFormChange();
    if (announce) this.setStatus(() => t("suggestion.applied"));
  }

  private async submit(): Promise<void> {
    const item = this.item;
    if (!item || !this.form || !this.draft || this.saving) return;
    if (this.editing) return this.saveEdit();
    this.saving = true;
    this.root.classList.add("saving");
    this.renderActions();
    const body = {
      client_id: this.draft.clientId,
      utterance: item.utterance.id,
      value: this.form.payload(),
      perspective: this.draft.perspective,
      lead_time_ms: Math.round(performance.now() - this.shownAt),
      next: true,
    };
    this.setStatus(() => t("annotate.saving"));
    await this.send(item, body);
  }

  private async send(item: Item, body: Record<string, unknown>): Promise<void> {
    window.clearTimeout(this.retryTimer);
    try {
      const result = await api<{ annotation: { id: number }; created: boolean; late: boolean; next: Item | null }>(
        "POST",
        `/api/projects/${this.projectId}/submit/`,
        body,
      );
      this.lastSubmit = {
        annotationId: result.annotation.id,
        utteranceId: item.utterance.id,
        answers: body.value as Answers,
        perspective: String(body.perspective ?? ""),
        at: Date.now(),
      };
      window.clearTimeout(this.undoTimer);
      this.undoTimer = window.setTimeout(() => this.renderActions(), UNDO_WINDOW_MS);
      this.finishSaving();
      this.forgetDraft(item);
      this.doneCount += 1;
      this.myTotal += result.created ? 1 : 0;
      await this.show(result.next ?? null);
      this.setStatus(() => (result.late ? t("annotate.saved_late") : t("annotate.saved")), "ok");
    } catch (error) {
      if (error instanceof ApiError && error.retryable) {
        // The same body (and client_id) goes again: the server keeps one annotation however often it arrives.
        const delay = RETRY_DELAYS_S[Math.min(this.retryCount, RETRY_DELAYS_S.length - 1)];
        this.retryCount += 1;
        this.setStatus(() => t("annotate.retrying", { seconds: delay }), "error");
        const now = el("button", { type: "button", class: "button small", "data-action": "retry", text: t("annotate.retry") });
        now.addEventListener("click", () => void this.send(item, body));
        this.view.status.append(" ", now);
        this.retryTimer = window.setTimeout(() => void this.send(item, body), delay * 1000);
        return;
      }
      this.finishSaving();
      this.showSubmitError(error);
    }
  }

  private finishSaving(): void {
    this.saving = false;
    this.root.classList.remove("saving");
    this.renderActions();
    this.syncRegions();
  }

  private showSubmitError(error: unknown): void {
    const box = this.view.generalErrors;
    clear(box);
    if (!(error instanceof ApiError)) {
      this.setStatus(String(error), "error");
      return;
    }
    const body = (error.body ?? {}) as Record<string, unknown>;
    if (error.status === 400) {
      const perQuestion: Record<string, string[]> = {};
      const general: string[] = [];
      for (const [field, messages] of Object.entries(body)) {
        if (field === "value" && messages && typeof messages === "object" && !Array.isArray(messages)) {
          for (const [key, reasons] of Object.entries(messages as Record<string, unknown>)) {
            if (this.item?.schema.questions.some((q) => q.key === key)) perQuestion[key] = flatten(reasons);
            else general.push(`${key}: ${flatten(reasons).join(" ")}`);
          }
        } else {
          general.push(`${field === "value" ? t("annotate.answers") : field}: ${flatten(messages).join(" ")}`);
        }
      }
      this.form?.setErrors(perQuestion);
      general.forEach((message) => box.append(el("p", { class: "field-error", text: message })));
      this.setStatus(() => t("annotate.fix_errors"), "error");
      return;
    }
    const code = typeof body.code === "string" ? body.code : "";
    this.setStatus(errorText(error), "error");
    if (error.status === 409 || error.status === 404) {
      // Refused for good (item complete, already annotated, no longer yours): the input stays on screen.
      const next = el("button", { type: "button", class: "button", "data-action": "next", text: t("annotate.next_item") });
      next.addEventListener("click", () => {
        if (this.item) this.forgetDraft(this.item);
        void this.loadNext();
      });
      box.append(el("p", { class: "field-error", text: t(code === "item_complete" ? "annotate.item_complete" : "annotate.refused") }), next);
    }
  }

  private async skip(reason: string): Promise<void> {
    const item = this.item;
    if (!item) return;
    this.setStatus(() => t("annotate.skipping"));
    try {
      const result = await api<{ next: Item | null }>("POST", `/api/projects/${this.projectId}/skip/`, {
        utterance: item.utterance.id,
        reason,
        next: true,
      });
      this.forgetDraft(item);
      await this.show(result.next ?? null);
      this.setStatus(() => t("annotate.skipped"), "ok");
    } catch (error) {
      this.setStatus(errorText(error), "error");
    }
  }

  private async flag(note: string): Promise<void> {
    const item = this.item;
    if (!item) return;
    try {
      await api("POST", `/api/projects/${this.projectId}/flag/`, { utterance: item.utterance.id, note });
      this.setStatus(() => t("annotate.flagged"), "ok");
    } catch (error) {
      this.setStatus(errorText(error), "error");
    }
  }

  private openPrompt(kind: "skip" | "flag"): void {
    if (!this.item || this.saving || this.editing) return;
    const box = this.view.prompt;
    clear(box);
    const input = el("input", { type: "text", maxlength: kind === "skip" ? 500 : 2000, dir: "auto", "aria-label": t(`prompt.${kind}`), class: "prompt-input" });
    const form = el(
      "form",
      { class: "overlay-card" },
      el("h2", { text: t(`prompt.${kind}`) }),
      el("p", { class: "muted", text: t(`prompt.${kind}_hint`) }),
      input,
      el(
        "div",
        { class: "row" },
        el("button", { type: "submit", class: "button primary", text: t(`action.${kind}`) }),
        el("button", { type: "button", class: "button cancel", text: t("action.cancel") }),
      ),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.closePrompt();
      void (kind === "skip" ? this.skip(input.value) : this.flag(input.value));
    });
    form.querySelector(".cancel")?.addEventListener("click", () => this.closePrompt());
    box.append(form);
    box.hidden = false;
    this.dialog = { kind, input };
    input.focus();
  }

  private closePrompt(): void {
    this.view.prompt.hidden = true;
    this.dialog = null;
  }

  private toggleHelp(show?: boolean): void {
    this.view.help.hidden = show === undefined ? !this.view.help.hidden : !show;
  }

  private toggleGuidelines(show?: boolean): void {
    const box = this.view.guidelines;
    box.hidden = show === undefined ? !box.hidden : !show;
    this.root.classList.toggle("with-guidelines", !box.hidden);
  }

  private markSegment(edge: "start" | "end"): void {
    const q = this.form?.segmentsQuestion();
    if (!q || !this.player || !this.form) return;
    const now = this.player.currentTime;
    if (edge === "start") {
      this.segmentStart = now;
      this.setStatus(() => t("player.segment_started", { time: now.toFixed(2) }));
    } else if (this.segmentStart !== null) {
      const [a, b] = [this.segmentStart, now].sort((x, y) => x - y);
      this.form.addSegment(q, a, b);
      this.segmentStart = null;
      const label = this.form.segmentLabel[q.key];
      this.setStatus(() => t("player.segment_added", { label }));
    }
  }

  private cyclePerspective(): void {
    const item = this.item;
    if (!item || !this.draft || item.schema.perspectives.length < 2) return;
    const list = item.schema.perspectives;
    this.draft.perspective = list[(list.indexOf(this.draft.perspective) + 1) % list.length];
    this.saveDraft();
    this.renderPerspective(item);
  }

  private onKey(event: KeyboardEvent): void {
    if (event.defaultPrevented || event.isComposing) return;
    if (this.dialog) {
      if (event.key === "Escape") {
        event.preventDefault();
        this.closePrompt();
      }
      return; // Enter submits the prompt's own form
    }
    if (!this.view.help.hidden && (event.key === "Escape" || event.key === "?")) {
      event.preventDefault();
      this.toggleHelp(false);
      return;
    }
    if (isTyping(event)) {
      const target = event.target as HTMLElement;
      if (event.key === "Escape") {
        target.blur();
        event.preventDefault();
      } else if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.closest(".question-form")) {
        event.preventDefault();
        target.blur();
        void this.submit();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key;
    if (key === "?") return this.consume(event, () => this.toggleHelp());
    if (key === "Escape" && !this.view.history.hidden) return this.consume(event, () => void this.toggleHistory(false));
    if (key === "Escape" && this.editing) return this.consume(event, () => void this.endEdit());
    if (key === "Escape") return this.consume(event, () => (this.toggleHelp(false), this.toggleGuidelines(false)));
    if (key === "g") return this.consume(event, () => this.toggleGuidelines());
    if (key === "h") return this.consume(event, () => void this.toggleHistory());
    if (key === "u" && !this.saving) return this.consume(event, () => void this.undo());
    if (!this.item || !this.form) return;
    if (this.saving) {
      if (key === "Enter" && this.retryCount > 0) this.consume(event, () => this.view.status.querySelector<HTMLButtonElement>("[data-action=retry]")?.click());
      return;
    }
    if (key === "Enter") {
      if ((event.target as HTMLElement)?.tagName === "BUTTON" && (event.target as HTMLElement).closest(".question-form") === null && !(event.target as HTMLElement).dataset.action) return;
      return this.consume(event, () => void this.submit());
    }
    if (key === " ") return this.consume(event, () => this.player?.playPause());
    if (key === "r") return this.consume(event, () => this.player?.replay());
    if (key === "s") return this.consume(event, () => this.openPrompt("skip"));
    if (key === "f") return this.consume(event, () => this.openPrompt("flag"));
    if (key === "a") return this.consume(event, () => this.applySuggestion(true));
    if (key === "p") return this.consume(event, () => this.cyclePerspective());
    if (key === ",") return this.consume(event, () => this.setSpeed(this.speedIndex - 1));
    if (key === ".") return this.consume(event, () => this.setSpeed(this.speedIndex + 1));
    if (key === "[") return this.consume(event, () => this.markSegment("start"));
    if (key === "]") return this.consume(event, () => this.markSegment("end"));
    if (this.form.handleKey(event)) return this.consume(event, () => undefined);
    if (key === "t") return this.consume(event, () => this.form?.focusText());
    if (key === "ArrowLeft" || key === "ArrowRight") return this.consume(event, () => this.player?.seekBy(key === "ArrowRight" ? 2 : -2));
  }

  private consume(event: KeyboardEvent, action: () => void): void {
    event.preventDefault();
    action();
  }

  // --- undo, history, changing an earlier answer, revisiting skipped items ------------------------------------------

  private canUndo(): boolean {
    return this.lastSubmit !== null && Date.now() - this.lastSubmit.at < UNDO_WINDOW_MS && !this.editing;
  }

  /** Take back the last submit: the server deletes it and holds the item for me again; my answer comes back. */
  private async undo(): Promise<void> {
    const last = this.lastSubmit;
    if (!last || !this.canUndo() || this.saving) return;
    this.setStatus(() => t("annotate.undoing"));
    try {
      await api("POST", `/api/projects/${this.projectId}/undo/`, { annotation: last.annotationId });
    } catch (error) {
      this.lastSubmit = null;
      this.renderActions();
      this.setStatus(errorText(error), "error");
      return;
    }
    this.lastSubmit = null;
    this.doneCount = Math.max(0, this.doneCount - 1);
    this.myTotal = Math.max(0, this.myTotal - 1);
    if (this.item) this.saveDraft(); // the item I was on comes back later with what I had typed
    this.restore = { utteranceId: last.utteranceId, answers: last.answers, perspective: last.perspective };
    this.root.classList.remove("finished");
    this.rebuildMain();
    await this.loadNext();
    this.setStatus(() => t("annotate.undone"), "ok");
  }

  /** The finished card replaces the two panes; an item coming back needs them again. */
  private rebuildMain(): void {
    const v = this.view;
    if (v.main.querySelector(".item-pane")) return;
    clear(v.main);
    v.main.append(
      el("section", { class: "item-pane" }, v.context, v.playerBox),
      el("section", { class: "form-pane" }, v.suggestion, v.perspective, v.formBox, v.generalErrors),
    );
  }

  private async toggleHistory(show?: boolean): Promise<void> {
    const box = this.view.history;
    const open = show === undefined ? box.hidden : show;
    box.hidden = !open;
    if (!open) return;
    clear(box);
    const close = el("button", { type: "button", class: "link close", title: t("action.close"), text: "×" });
    close.addEventListener("click", () => void this.toggleHistory(false));
    box.append(el("h2", {}, el("span", { text: t("history.title") }), close), el("p", { class: "muted", text: t("common.loading") }));
    let mine: MyAnnotation[] = [];
    let skips: MySkip[] = [];
    try {
      [mine, skips] = await Promise.all([
        api<{ results: MyAnnotation[] }>("GET", `/api/projects/${this.projectId}/my-annotations/`).then((p) => p.results),
        api<{ results: MySkip[] }>("GET", `/api/projects/${this.projectId}/my-skips/`).then((p) => p.results),
      ]);
    } catch (error) {
      box.lastElementChild?.replaceWith(el("p", { class: "field-error", text: errorText(error) }));
      return;
    }
    box.lastElementChild?.remove();
    if (skips.length) {
      box.append(el("h3", { text: t("history.skipped") }));
      const list = el("ul", { class: "mine-list skipped-list" });
      for (const skip of skips) {
        const revisit = el("button", { type: "button", class: "button small", "data-revisit": skip.utterance, text: t("history.revisit") });
        revisit.addEventListener("click", () => void this.revisit(skip.utterance));
        list.append(el("li", {}, el("span", { class: "mine-text", lang: skip.language, dir: skip.direction, text: skip.utterance_text || t("annotate.audio_only") }), el("span", { class: "muted small", dir: "auto", text: skip.reason }), revisit));
      }
      box.append(list);
    }
    box.append(el("h3", { text: t("history.recent") }));
    if (!mine.length) box.append(el("p", { class: "muted", text: t("history.none") }));
    const list = el("ul", { class: "mine-list" });
    for (const annotation of mine) {
      const summary = Object.entries(annotation.value)
        .map(([k, v]) => `${k}: ${typeof v === "string" || typeof v === "number" ? v : Array.isArray(v) ? v.join(", ") : JSON.stringify(v)}`)
        .join(" · ");
      const edit = el("button", { type: "button", class: "button small", "data-edit": annotation.id, disabled: !annotation.editable || this.saving, title: annotation.editable ? "" : t("history.reviewed"), text: t("history.edit") });
      edit.addEventListener("click", () => void this.startEdit(annotation));
      list.append(
        el(
          "li",
          { "aria-current": this.editing?.annotation.id === annotation.id ? "true" : null },
          el("span", { class: "mine-text" }, el("span", { lang: annotation.language, dir: annotation.direction, text: annotation.utterance_text || t("annotate.audio_only") }), el("br"), el("span", { class: "muted small", dir: "auto", text: summary })),
          edit,
        ),
      );
    }
    box.append(list);
    box.querySelector<HTMLButtonElement>("button[data-revisit], button[data-edit]:not([disabled])")?.focus();
  }

  private async projectSchema(): Promise<Item["schema"] | null> {
    if (this.item && !this.editing) this.schemaCache = this.item.schema;
    if (this.schemaCache) return this.schemaCache;
    try {
      const project = await api<{ schema_version: number }>("GET", `/api/projects/${this.projectId}/`);
      const schemas = await apiList<{ versions: { id: number; questions: Question[]; perspectives: string[] }[] }>("/api/schemas/");
      const version = schemas.flatMap((s) => s.versions).find((v) => v.id === project.schema_version);
      if (version) this.schemaCache = { version_id: version.id, questions: version.questions, perspectives: version.perspectives };
    } catch {
      return null;
    }
    return this.schemaCache;
  }

  /** Show an earlier item of mine with my answer, to change it (the API allows it until a reviewer has looked). */
  private async startEdit(annotation: MyAnnotation): Promise<void> {
    if (this.saving) return;
    const schema = await this.projectSchema();
    if (!schema) return;
    let audioUrl: string | null = null;
    try {
      audioUrl = (await api<{ audio_url: string | null }>("GET", `/api/utterances/${annotation.utterance}/`)).audio_url;
    } catch {
      audioUrl = null; // the text is enough to change a label
    }
    if (this.item && !this.editing) this.saveDraft();
    const back = this.editing ? this.editing.back : this.item;
    this.editing = { annotation, back };
    void this.toggleHistory(false);
    this.root.classList.remove("finished");
    this.rebuildMain();
    await this.show({
      project_id: this.projectId,
      utterance: {
        id: annotation.utterance, text: annotation.utterance_text,
        language: { code: annotation.language, name: annotation.language, script: "", direction: annotation.direction },
        audio_url: audioUrl, audio_duration_s: null, speaker: null, conversation: null, turn_index: null,
        transcript: null, // the provenance note is for first listens; a change of label does not need it
      },
      context: [],
      suggestion_policy: "hidden",
      suggestion: null,
      schema,
      reservation: { expires_at: "", resumed: false },
    });
    this.setStatus(() => t("history.editing_status"));
  }

  private async saveEdit(): Promise<void> {
    const editing = this.editing;
    if (!editing || !this.form || !this.draft) return;
    this.saving = true;
    this.renderActions();
    try {
      await api("PATCH", `/api/projects/${this.projectId}/my-annotations/${editing.annotation.id}/`, {
        value: this.form.payload(),
        perspective: this.draft.perspective,
        lead_time_ms: Math.round(performance.now() - this.shownAt),
      });
    } catch (error) {
      this.finishSaving();
      this.showSubmitError(error);
      return;
    }
    this.finishSaving();
    await this.endEdit();
    this.setStatus(() => t("history.saved"), "ok");
  }

  private async endEdit(): Promise<void> {
    const editing = this.editing;
    if (!editing) return;
    this.editing = null;
    if (editing.back) await this.show(editing.back);
    else await this.loadNext();
  }

  private async revisit(utteranceId: number): Promise<void> {
    if (this.saving) return;
    if (this.item) this.saveDraft();
    try {
      await api("POST", `/api/projects/${this.projectId}/my-skips/${utteranceId}/revisit/`);
    } catch (error) {
      this.setStatus(errorText(error), "error");
      void this.toggleHistory(true);
      return;
    }
    this.editing = null;
    void this.toggleHistory(false);
    this.root.classList.remove("finished");
    this.rebuildMain();
    await this.loadNext();
    this.setStatus(() => t("history.revisiting"), "ok");
  }

  // --- drafts: answers survive a reload or a lost connection ---------------------------------------------------------

  private draftKey(item: Item): string {
    return `sentio:draft:${this.projectId}:${item.utterance.id}`;
  }

  private loadDraft(item: Item): Draft | null {
    try {
      const raw = localStorage.getItem(this.draftKey(item));
      return raw ? (JSON.parse(raw) as Draft) : null;
    } catch {
      return null;
    }
  }

  private saveDraft(): void {
    if (!this.item || !this.draft || !this.form || this.editing) return;
    this.draft.answers = this.form.answers;
    try {
      localStorage.setItem(this.draftKey(this.item), JSON.stringify(this.draft));
    } catch {
      // Storage full or disabled: the answer still lives in the page.
    }
  }

  private forgetDraft(item: Item): void {
    try {
      localStorage.removeItem(this.draftKey(item));
    } catch {
      // nothing stored
    }
  }

  /** The status line keeps how to say its message, so a language switch says it again in the new language. */
  private setStatus(message: string | (() => string), tone: "ok" | "error" | "" = ""): void {
    this.statusMessage = message;
    const status = this.view.status;
    status.textContent = typeof message === "string" ? message : message();
    status.dataset.tone = tone;
  }

  private repaintStatus(): void {
    const message = this.statusMessage;
    const first = this.view.status.firstChild;
    if (typeof message === "string" || !first || first.nodeType !== Node.TEXT_NODE) return;
    first.textContent = message(); // a Retry button after the text stays in place
  }

}

export function mountAnnotate(): void {
  const root = $("#annotate");
  new AnnotateScreen(root, Number(root.dataset.projectId));
}

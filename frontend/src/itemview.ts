// One item as reviewers and leads see it (review screen and item browser): the utterance with the turns before it and
// its audio, every annotation side by side (model and LLM answers marked), aggregated answer, decision, gold answer,
// flags (close them with a note), predictions and the item's history. Data from GET /api/projects/<id>/items/<u>/.
import { api, errorText } from "./api";
import { el, clear } from "./dom";
import { t, formatNumber, lang } from "./i18n";
import type { Question } from "./widgets";

export interface LanguageRef {
  code: string;
  name?: string;
  direction: "ltr" | "rtl";
}
export interface ItemAnnotation {
  id: number;
  origin: "human" | "model" | "llm";
  rater: string;
  /** A rating imported with the corpus (a rater of the source), not an answer given in this project. */
  imported: boolean;
  /** Counted in agreement and aggregation (imported ratings only when the project's policy includes them). */
  counted: boolean;
  model_version: string;
  perspective: string;
  value: Record<string, unknown>;
  created_at: string;
  updated_at: string;
  reviewed_at: string | null;
  lead_time_ms: number | null;
  gold_correct: boolean | null;
}
export interface ItemFlag {
  id: number;
  note: string;
  created_by: string;
  resolved: boolean;
  dismissed: boolean;
  resolution_note: string;
  created_at: string;
  resolved_at: string | null;
}
export interface ItemDetail {
  utterance: { id: number; text: string; language: string; direction: "ltr" | "rtl"; audio_url: string | null; speaker: string | null; conversation: string | null };
  context: { utterance_id: number; turn_index: number; speaker: string | null; text: string; language: LanguageRef; audio_url: string | null }[];
  item: {
    is_gold: boolean;
    annotation_count: number;
    target_count: number;
    reserved_count: number;
    agreement: number | null;
    uncertainty: number | null;
    split: string;
    turn_index: number | null;
    can_make_gold: boolean;
  } | null;
  questions: Question[];
  perspectives: string[];
  annotations: ItemAnnotation[];
  flags: ItemFlag[];
  aggregated: { question_key: string; perspective: string; value: unknown; confidence: number | null; method: string; n_ratings: number }[];
  adjudications: { perspective: string; value: Record<string, unknown>; note: string; decided_by: string; decided_at: string }[];
  gold: { expected: Record<string, unknown>; numeric_tolerance: number } | null;
  predictions: { model_version: string; label: string; scores: Record<string, unknown>; uncertainty: number | null }[];
  history: { at: string; kind: string; who: string; note: string }[];
}

export interface ProjectFacts {
  project_id: number;
  name: string;
  role: string | null;
  can_manage: boolean;
  questions: Question[];
  perspectives: string[];
  languages: { code: string; name: string; direction: "ltr" | "rtl" }[];
  items: number;
  statuses: string[];
}

export function itemUrl(projectId: number, utteranceId: number): string {
  return `/api/projects/${projectId}/items/${utteranceId}/`;
}

export function when(iso: string | null): string {
  if (!iso) return "—";
  return new Intl.DateTimeFormat(lang(), { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

export function perspectiveName(p: string): string {
  if (!p) return "";
  const key = `perspective.${p}`;
  return t(key) === key ? p : t(key);
}

/** An answer to one question as short text; "—" when not answered. */
export function answerText(q: Question, value: unknown): string {
  if (value === undefined || value === null || value === "") return "—";
  if (q.type === "numeric" && typeof value === "number") return formatNumber(value, 2);
  if (q.type === "multi_label") {
    // An empty answer is the annotator's "none of these"; intensity levels of 0 are not chosen, null ones unanswered.
    if (Array.isArray(value)) return value.length ? value.map(String).join(", ") : t("review.none_of_these");
    if (typeof value === "object") {
      const entries = Object.entries(value as Record<string, number | null>);
      const chosen = entries.filter(([, level]) => typeof level === "number" && level > 0).map(([label, level]) => `${label} ${formatNumber(level as number)}`);
      const missing = entries.filter(([, level]) => level === null).map(([label]) => label);
      const parts = [chosen.length ? chosen.join(", ") : t("review.none_of_these")];
      if (missing.length) parts.push(t("review.unanswered", { labels: missing.join(", ") }));
      return parts.join(" · ");
    }
  }
  if (q.type === "segments" && Array.isArray(value)) {
    return (value as { start: number; end: number; label: string }[])
      .map((s) => `${s.label} ${s.start.toFixed(1)}–${s.end.toFixed(1)} s`)
      .join("; ") || t("item.none_chosen");
  }
  return typeof value === "string" ? value : JSON.stringify(value);
}

function originBadge(origin: string): HTMLElement {
  return el("span", { class: `badge origin-${origin}`, text: t(`origin.${origin}`) });
}

/** The utterance, the conversation turns before it and its audio. */
export function utterancePanel(detail: ItemDetail): HTMLElement {
  const u = detail.utterance;
  const list = el("ol", { class: "context", "aria-label": t("annotate.conversation") });
  for (const turn of detail.context) {
    list.append(
      el(
        "li",
        { class: "turn" },
        el("span", { class: "speaker", text: turn.speaker ?? t("annotate.unknown_speaker") }),
        el("p", { class: "turn-text", lang: turn.language.code, dir: turn.language.direction, text: turn.text }),
      ),
    );
  }
  const facts = [u.language, u.speaker, u.conversation, detail.item?.split].filter(Boolean).join(" · ");
  list.append(
    el(
      "li",
      { class: "turn current", "aria-current": "true" },
      el("span", { class: "speaker" }, el("span", { text: u.speaker ?? t("annotate.utterance") }), el("span", { class: "language-tag", text: facts })),
      el("p", { class: "utterance-text", lang: u.language, dir: u.direction, text: u.text || t("annotate.audio_only") }),
    ),
  );
  const panel = el("div", { class: "item-utterance" }, list);
  if (u.audio_url) {
    // A plain player: reviewers listen, they do not draw segments. Space plays it (see the screens' keys).
    panel.append(el("audio", { class: "item-audio", controls: true, preload: "none", src: u.audio_url }));
  }
  return panel;
}

/** Every annotation side by side (columns), one row per question; model and LLM columns are marked as such. */
export function annotationsTable(detail: ItemDetail, onCopy?: (index: number) => void): HTMLElement {
  if (!detail.annotations.length && !detail.predictions.length) return el("p", { class: "muted", text: t("item.no_annotations") });
  const questions = detail.questions.filter((q) => q.type !== "segments" || detail.utterance.audio_url);
  const head = el("tr", {}, el("th", { scope: "col", text: t("item.question") }));
  detail.annotations.forEach((a, index) => {
    const copy = onCopy
      ? el("button", { type: "button", class: "button small", "data-copy": index, title: t("review.copy_hint") }, el("span", { text: t("review.copy") }), index < 9 ? el("kbd", { text: `⇧${index + 1}` }) : null)
      : null;
    copy?.addEventListener("click", () => onCopy?.(index));
    head.append(
      el(
        "th",
        { scope: "col", class: `annotation-col origin-${a.origin}${a.imported ? " imported" : ""}`, "data-annotation": a.id },
        el(
          "div",
          { class: "rater" },
          el("strong", { text: a.rater }),
          a.origin !== "human" ? originBadge(a.origin) : null,
          a.imported ? el("span", { class: "badge imported", title: t("item.imported_hint"), text: t("item.imported") }) : null,
        ),
        a.imported && !a.counted ? el("div", { class: "muted small", text: t("item.not_counted") }) : null,
        el(
          "div",
          { class: "muted small" },
          when(a.created_at),
          a.lead_time_ms !== null ? ` · ${t("item.time_spent", { seconds: formatNumber(a.lead_time_ms / 1000, 1) })}` : "",
          a.perspective ? ` · ${perspectiveName(a.perspective)}` : "",
        ),
        a.reviewed_at ? el("div", { class: "muted small", text: t("item.reviewed") }) : null,
        a.gold_correct === null ? null : el("div", { class: a.gold_correct ? "ok small" : "field-error small", text: a.gold_correct ? t("item.gold_right") : t("item.gold_wrong") }),
        copy,
      ),
    );
  });
  const extra: { title: string; values: (q: Question) => string }[] = [];
  if (detail.aggregated.length) {
    extra.push({
      title: t("item.aggregated"),
      values: (q) =>
        detail.aggregated
          .filter((a) => a.question_key === q.key)
          .map((a) => `${a.value === null ? t("review.tie_open") : answerText(q, a.value)}${a.confidence !== null ? ` (${formatNumber(a.confidence, 2)})` : ""}`)
          .join("; ") || "—",
    });
  }
  for (const adj of detail.adjudications) {
    extra.push({ title: `${t("item.decision")}${adj.perspective ? ` · ${perspectiveName(adj.perspective)}` : ""}`, values: (q) => answerText(q, adj.value[q.key]) });
  }
  if (detail.gold) {
    const gold = detail.gold;
    extra.push({ title: t("item.gold_answer"), values: (q) => answerText(q, gold.expected[q.key]) });
  }
  extra.forEach((x) => head.append(el("th", { scope: "col", class: "summary-col", text: x.title })));
  const body = el("tbody");
  for (const q of questions) {
    const row = el("tr", {}, el("th", { scope: "row", text: q.title || q.key }));
    for (const a of detail.annotations) row.append(el("td", { dir: "auto", class: `origin-${a.origin}`, text: answerText(q, a.value[q.key]) }));
    for (const x of extra) row.append(el("td", { class: "summary-col", dir: "auto", text: x.values(q) }));
    body.append(row);
  }
  const table = el("table", { class: "data side-by-side" }, el("thead", {}, head), body);
  const box = el("div", { class: "table-scroll" }, table);
  if (detail.predictions.length) {
    box.append(
      el(
        "ul",
        { class: "predictions" },
        ...detail.predictions.map((p) =>
          el(
            "li",
            {},
            originBadge("model"),
            el("strong", { text: ` ${p.label || "—"} ` }),
            el("span", { class: "muted", text: `${p.model_version}${p.uncertainty !== null ? ` · ${t("item.uncertainty")} ${formatNumber(p.uncertainty, 2)}` : ""}` }),
          ),
        ),
      ),
    );
  }
  return box;
}

/** Open and closed flags; open ones can be resolved or dismissed with a note (reviewers and leads). */
export function flagsPanel(projectId: number, detail: ItemDetail, onChanged: () => void): HTMLElement {
  const box = el("section", { class: "flags-panel", "aria-label": t("item.flags") }, el("h3", { text: t("item.flags") }));
  if (!detail.flags.length) {
    box.append(el("p", { class: "muted", text: t("item.no_flags") }));
    return box;
  }
  for (const flag of detail.flags) {
    const li = el(
      "div",
      { class: `flag${flag.resolved ? " closed" : ""}`, "data-flag": flag.id },
      el("p", { class: "flag-note", dir: "auto" }, el("strong", { text: `${flag.created_by}: ` }), flag.note),
      el("p", { class: "muted small", text: when(flag.created_at) }),
    );
    if (flag.resolved) {
      li.append(el("p", { class: "muted small", dir: "auto", text: `${flag.dismissed ? t("item.flag_dismissed") : t("item.flag_resolved")}${flag.resolution_note ? `: ${flag.resolution_note}` : ""}` }));
    } else {
      const note = el("input", { type: "text", maxlength: 2000, dir: "auto", class: "flag-answer", "aria-label": t("item.flag_answer"), placeholder: t("item.flag_answer") });
      const error = el("p", { class: "field-error", role: "alert" });
      const close = async (dismiss: boolean): Promise<void> => {
        try {
          await api("POST", `/api/projects/${projectId}/flags/${flag.id}/resolve/`, { note: note.value, dismiss });
          onChanged();
        } catch (e) {
          error.textContent = errorText(e);
        }
      };
      const resolve = el("button", { type: "button", class: "button small primary", "data-resolve": flag.id, text: t("item.resolve") });
      const dismiss = el("button", { type: "button", class: "button small", "data-dismiss": flag.id, text: t("item.dismiss") });
      resolve.addEventListener("click", () => void close(false));
      dismiss.addEventListener("click", () => void close(true));
      note.addEventListener("keydown", (event) => {
        if (event.key !== "Enter") return;
        event.preventDefault();
        event.stopPropagation();
        void close(event.shiftKey);
      });
      li.append(el("div", { class: "row flag-actions" }, note, resolve, dismiss), error);
    }
    box.append(li);
  }
  return box;
}

/** What happened to the item, oldest first. */
export function historyList(detail: ItemDetail): HTMLElement {
  const box = el("section", { class: "history", "aria-label": t("item.history") }, el("h3", { text: t("item.history") }));
  if (!detail.history.length) {
    box.append(el("p", { class: "muted", text: t("item.no_history") }));
    return box;
  }
  const list = el("ol", { class: "history-list" });
  for (const event of detail.history) {
    list.append(
      el(
        "li",
        { "data-kind": event.kind },
        el("time", { datetime: event.at, class: "muted small", text: when(event.at) }),
        " ",
        el("span", { text: t(`event.${event.kind}`, { who: event.who || "—" }) }),
        event.note ? el("span", { class: "muted", dir: "auto", text: ` — ${event.note}` }) : null,
      ),
    );
  }
  box.append(list);
  return box;
}

/** Counts and badges of the item: annotations n/target, agreement, uncertainty, gold. */
export function itemFacts(detail: ItemDetail): HTMLElement {
  const box = el("p", { class: "item-facts muted" });
  const i = detail.item;
  if (!i) return box;
  const parts = [
    t("item.annotations_of", { n: formatNumber(i.annotation_count), target: formatNumber(i.target_count) }),
    i.agreement === null ? null : t("item.agreement", { share: formatNumber(i.agreement * 100) }),
    i.uncertainty === null ? null : `${t("item.uncertainty")} ${formatNumber(i.uncertainty, 2)}`,
  ].filter(Boolean) as string[];
  box.textContent = parts.join(" · ");
  if (i.is_gold) box.prepend(el("span", { class: "badge gold", text: t("status.gold") }), " ");
  return box;
}

export function replaceContent(node: Element, ...children: Node[]): void {
  clear(node);
  node.append(...children);
}

// "My projects": every project I am a member of, with my progress, and the lead's progress view; below them the
// corpora I created or lead projects on, with a link to the agreement of their imported ratings.
import { api, apiList, errorText } from "./api";
import { $, el, clear } from "./dom";
import { t, formatNumber, onLanguageChange } from "./i18n";
import { importPanel } from "./imports";

interface Project {
  id: number;
  name: string;
  corpus: number;
  my_role: string | null;
  overlap: number;
  languages: string[];
}

interface Invitation {
  id: number;
  project_name: string;
  role: string;
  invited_by: string | null;
}

/** Invitations waiting for my answer: Accept joins the project, Decline removes the invitation. */
function mountInvitations(onJoined: () => void): void {
  const root = $("#invitations");
  let invitations: Invitation[] = [];
  const errors = el("div", { class: "general-errors", role: "alert" });
  const answer = async (inv: Invitation, verb: "accept" | "decline"): Promise<void> => {
    clear(errors);
    try {
      await api("POST", `/api/invitations/${inv.id}/${verb}/`);
      invitations = invitations.filter((other) => other.id !== inv.id);
      render();
      if (verb === "accept") onJoined();
    } catch (error) {
      errors.append(el("p", { class: "field-error", text: errorText(error) }));
    }
  };
  const render = (): void => {
    clear(root);
    if (!invitations.length) return;
    const list = el("ul", { class: "invitation-list" });
    for (const inv of invitations) {
      const accept = el("button", { type: "button", class: "button primary small", "data-accept-invitation": inv.project_name, text: t("invitations.accept") });
      const decline = el("button", { type: "button", class: "button small", "data-decline-invitation": inv.project_name, text: t("invitations.decline") });
      accept.addEventListener("click", () => void answer(inv, "accept"));
      decline.addEventListener("click", () => void answer(inv, "decline"));
      list.append(
        el(
          "li",
          { class: "project-card" },
          el("h2", { text: inv.project_name }),
          el("p", { class: "muted", text: t("invitations.offer", { role: t(`role.${inv.role}`), by: inv.invited_by ?? "—" }) }),
          el("div", { class: "row" }, accept, decline),
        ),
      );
    }
    root.append(el("h2", { text: t("invitations.title") }), list, errors);
  };
  onLanguageChange(render);
  void (async () => {
    try {
      invitations = await apiList<Invitation>("/api/invitations/");
      render();
    } catch (error) {
      root.append(el("p", { class: "field-error", text: errorText(error) }));
    }
  })();
}

export function mountProjects(): void {
  mountInvitations(() => window.location.reload());
  const root = $("#projects");
  const importer = importPanel(); // kept across re-renders: it holds the upload in progress
  let rows: { project: Project; mine: number; progress: { items: number; complete: number } | null }[] = [];
  let corpora: { id: number; name: string }[] = [];
  const corpusList = (): HTMLElement | null => {
    if (!corpora.length) return null;
    return el(
      "section",
      { class: "my-corpora", id: "my-corpora" },
      el("h2", { text: t("projects.corpora") }),
      el(
        "ul",
        {},
        ...corpora.map((corpus) =>
          el("li", { "data-corpus": corpus.id }, el("span", { text: corpus.name }), " ", el("a", { href: `/corpora/${corpus.id}/quality/`, text: t("projects.corpus_ratings") })),
        ),
      ),
    );
  };
  const render = (): void => {
    clear(root);
    const corpusSection = corpusList();
    if (!rows.length) {
      root.append(el("p", { class: "muted", text: t("projects.none") }));
      if (corpusSection) root.append(corpusSection);
      root.append(importer);
      return;
    }
    const list = el("ul", { class: "project-list" });
    for (const { project, mine, progress } of rows) {
      const share = progress && progress.items ? Math.round((100 * progress.complete) / progress.items) : null;
      list.append(
        el(
          "li",
          { class: "project-card", "data-project": project.id },
          el("h2", {}, el("a", { href: `/projects/${project.id}/annotate/`, text: project.name })),
          el("p", { class: "muted", text: `${t(`role.${project.my_role ?? "annotator"}`)} · ${project.languages.join(", ") || t("projects.all_languages")}` }),
          el("p", { class: "my-progress", text: t("projects.my_progress", { count: formatNumber(mine) }) }),
          share !== null
            ? el("div", { class: "meter", role: "meter", "aria-valuenow": share, "aria-valuemin": 0, "aria-valuemax": 100, title: t("projects.complete", { share }) }, el("span", { style: `inline-size:${share}%` }))
            : null,
          share !== null ? el("p", { class: "muted", text: t("projects.complete", { share: formatNumber(share) }) }) : null,
          el(
            "div",
            { class: "row" },
            el("a", { class: "button primary", href: `/projects/${project.id}/annotate/`, text: t("projects.annotate") }),
            project.my_role === "lead" ? el("a", { class: "button", href: `/projects/${project.id}/manage/`, text: t("projects.manage") }) : null,
            ...(project.my_role === "lead" || project.my_role === "reviewer"
              ? [
                  el("a", { class: "button", href: `/projects/${project.id}/review/`, "data-link": "review", text: t("review.link") }),
                  el("a", { class: "button", href: `/projects/${project.id}/items/`, "data-link": "items", text: t("items.link") }),
                  el("a", { class: "button", href: `/projects/${project.id}/dashboard/`, text: t("projects.dashboard") }),
                ]
              : []),
          ),
        ),
      );
    }
    root.append(list);
    if (corpusSection) root.append(corpusSection);
    root.append(importer);
  };
  onLanguageChange(render);
  void (async () => {
    try {
      // The corpora load alongside the projects (not after them): each request waits only on what it needs.
      const allCorpora = apiList<{ id: number; name: string; created_by: string | null }>("/api/corpora/");
      const projects = (await apiList<Project>("/api/projects/")).filter((p) => p.my_role !== null);
      const progressRows = Promise.all(
        projects.map(async (project) => {
          const [mine, progress] = await Promise.all([
            api<{ count: number }>("GET", `/api/projects/${project.id}/my-annotations/`),
            project.my_role === "lead" ? api<{ items: number; complete: number }>("GET", `/api/projects/${project.id}/progress/`) : null,
          ]);
          return { project, mine: mine.count, progress };
        }),
      );
      // Corpora whose imported ratings I may read: those I created, and those of projects I lead.
      const me = document.querySelector(".site-header .user")?.textContent?.trim() ?? "";
      const led = new Set(projects.filter((p) => p.my_role === "lead").map((p) => p.corpus));
      [rows, corpora] = await Promise.all([
        progressRows,
        allCorpora.then((list) => list.filter((c) => led.has(c.id) || (me !== "" && c.created_by === me))),
      ]);
      render();
    } catch (error) {
      clear(root);
      root.append(el("p", { class: "field-error", text: errorText(error) }));
    }
  })();
}

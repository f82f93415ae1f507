// "My projects": every project I am a member of, with my progress, and the lead's progress view.
import { api, apiList, errorText } from "./api";
import { $, el, clear } from "./dom";
import { t, formatNumber, onLanguageChange } from "./i18n";

interface Project {
  id: number;
  name: string;
  my_role: string | null;
  overlap: number;
  languages: string[];
}

export function mountProjects(): void {
  const root = $("#projects");
  let rows: { project: Project; mine: number; progress: { items: number; complete: number } | null }[] = [];
  const render = (): void => {
    clear(root);
    if (!rows.length) {
      root.append(el("p", { class: "muted", text: t("projects.none") }));
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
  };
  onLanguageChange(render);
  void (async () => {
    try {
      const projects = (await apiList<Project>("/api/projects/")).filter((p) => p.my_role !== null);
      rows = await Promise.all(
        projects.map(async (project) => {
          const [mine, progress] = await Promise.all([
            api<{ count: number }>("GET", `/api/projects/${project.id}/my-annotations/`),
            project.my_role === "lead" ? api<{ items: number; complete: number }>("GET", `/api/projects/${project.id}/progress/`) : null,
          ]);
          return { project, mine: mine.count, progress };
        }),
      );
      render();
    } catch (error) {
      clear(root);
      root.append(el("p", { class: "field-error", text: errorText(error) }));
    }
  })();
}

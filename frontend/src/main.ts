// Entry point: the i18n layer, the language switcher, then the page named by <body data-page>. One bundle for every
// page: split per page, the chunks loaded one level after another and delayed each page's first API call more than
// their size cost on a warm cache (benchmarks/screens_bench.py). Only the Hindi and Urdu catalogs are chunks.
import "./styles.css";
import { mountAnnotate } from "./annotate";
import { mountItems } from "./browse";
import { mountDashboard } from "./dashboard";
import { applyI18n, lang, loadCatalog, setLanguage, UI_LANGUAGES } from "./i18n";
import { mountProjectCreate, mountProjectManage } from "./lead";
import { mountModels } from "./models";
import { mountImport } from "./imports";
import { mountProjects } from "./projects";
import { mountReview } from "./review";
import "./screens.css";

function mountLanguageSwitcher(): void {
  const select = document.querySelector<HTMLSelectElement>("#ui-language");
  if (!select) return;
  for (const choice of UI_LANGUAGES) {
    const option = document.createElement("option");
    option.value = choice.code;
    option.textContent = choice.name;
    option.lang = choice.code;
    option.selected = choice.code === lang();
    select.append(option);
  }
  select.addEventListener("change", () => void setLanguage(select.value));
}

const pages: Record<string, () => void> = {
  annotate: mountAnnotate,
  projects: mountProjects,
  "project-create": mountProjectCreate,
  "project-manage": mountProjectManage,
  "project-models": mountModels,
  dashboard: mountDashboard,
  review: mountReview,
  items: mountItems,
  import: mountImport,
};

function start(): void {
  applyI18n();
  mountLanguageSwitcher();
  pages[document.body.dataset.page ?? ""]?.();
}

// English is in the bundle: the page starts at once; another UI language first loads its catalog.
if (lang() === "en") start();
else void loadCatalog(lang()).then(start, start);

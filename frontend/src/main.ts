// Entry point: the i18n layer, the language switcher, then the page named by <body data-page>.
import "./styles.css";
import { mountAnnotate } from "./annotate";
import { mountItems } from "./browse";
import { mountDashboard } from "./dashboard";
import { applyI18n, lang, setLanguage, UI_LANGUAGES } from "./i18n";
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
  select.addEventListener("change", () => setLanguage(select.value));
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

applyI18n();
mountLanguageSwitcher();
pages[document.body.dataset.page ?? ""]?.();

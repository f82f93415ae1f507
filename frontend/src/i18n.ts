// The UI's i18n layer: every string comes from a JSON catalog; English is the fallback. Only English is in the
// main bundle: another language's catalog is its own chunk, loaded (once) before the page that needs it renders.
import en from "./i18n/en.json";

type Catalog = Record<string, string>;
const CATALOGS: Record<string, Catalog> = { en };
const LOADERS: Record<string, () => Promise<{ default: Catalog }>> = {
  hi: () => import("./i18n/hi.json"),
  ur: () => import("./i18n/ur.json"),
};
export const UI_LANGUAGES: { code: string; name: string; dir: "ltr" | "rtl" }[] = [
  { code: "en", name: "English", dir: "ltr" },
  { code: "hi", name: "हिन्दी", dir: "ltr" },
  { code: "ur", name: "اردو", dir: "rtl" },
];
const COOKIE = "sentio_ui_lang";
const listeners: (() => void)[] = [];

let current = (() => {
  const fromHtml = document.documentElement.lang;
  return UI_LANGUAGES.some((l) => l.code === fromHtml) ? fromHtml : "en";
})();

/** The catalog of ``code`` in memory (English until it is). */
export async function loadCatalog(code: string = current): Promise<void> {
  const load = LOADERS[code];
  if (!CATALOGS[code] && load) CATALOGS[code] = (await load()).default;
}

export function lang(): string {
  return current;
}

export function t(key: string, params: Record<string, string | number> = {}): string {
  const template = CATALOGS[current]?.[key] ?? en[key as keyof typeof en] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole,
  );
}

export function formatNumber(value: number, digits = 0): string {
  // signDisplay "negative": a value that rounds to zero (-0, -0.04 at one digit) never reads "-0" on an axis.
  const options = { maximumFractionDigits: digits, signDisplay: "negative" } as unknown as Intl.NumberFormatOptions;
  return new Intl.NumberFormat(current, options).format(Object.is(value, -0) ? 0 : value);
}

/** Fill every [data-i18n] element's text (and [data-i18n-attr] attributes) under root. */
export function applyI18n(root: ParentNode = document): void {
  root.querySelectorAll<HTMLElement>("[data-i18n]").forEach((node) => {
    node.textContent = t(node.dataset.i18n ?? "");
  });
  root.querySelectorAll<HTMLElement>("[data-i18n-placeholder]").forEach((node) => {
    node.setAttribute("placeholder", t(node.dataset.i18nPlaceholder ?? ""));
  });
  root.querySelectorAll<HTMLElement>("[data-i18n-title]").forEach((node) => {
    node.setAttribute("title", t(node.dataset.i18nTitle ?? ""));
  });
}

export function onLanguageChange(listener: () => void): void {
  listeners.push(listener);
}

export async function setLanguage(code: string): Promise<void> {
  const choice = UI_LANGUAGES.find((l) => l.code === code) ?? UI_LANGUAGES[0];
  // The choice (cookie, direction) takes effect at once; the texts follow when the catalog is here.
  current = choice.code;
  document.cookie = `${COOKIE}=${choice.code}; path=/; max-age=31536000; SameSite=Lax`;
  document.documentElement.lang = choice.code;
  document.documentElement.dir = choice.dir;
  await loadCatalog(choice.code);
  if (current !== choice.code) return; // another language was chosen meanwhile
  applyI18n();
  listeners.forEach((listener) => listener());
}

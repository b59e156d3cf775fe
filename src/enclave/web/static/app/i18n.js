// Language selection and formatting. Every visible string goes through t(); dates and times go
// through Intl so they follow the chosen locale.
import en from "./locales/en.js";
import zhCN from "./locales/zh-CN.js";

export const LANGUAGES = { en, "zh-CN": zhCN };
const KEY = "enclave.lang";
let lang = initial();
const listeners = new Set();

function initial() {
  const saved = localStorage.getItem(KEY);
  if (saved && LANGUAGES[saved]) return saved;
  for (const l of navigator.languages || [navigator.language || "en"]) {
    const low = String(l).toLowerCase();
    if (low.startsWith("zh")) return "zh-CN";
    if (low.startsWith("en")) return "en";
  }
  return "en";
}

export function getLang() {
  return lang;
}

export function setLang(next) {
  if (!LANGUAGES[next]) return;
  lang = next;
  localStorage.setItem(KEY, next);
  applyLang();
  for (const fn of listeners) fn(lang);
}

export function applyLang() {
  document.documentElement.lang = lang;
}

export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Look up `key` (dotted) in the current table; `{name}` placeholders come from `params`. */
export function t(key, params = {}) {
  let s = LANGUAGES[lang][key];
  if (s === undefined) s = LANGUAGES.en[key];
  if (s === undefined) return key;
  if (typeof s === "function") return s(params);
  return s.replace(/\{(\w+)\}/g, (_, k) => (params[k] ?? ""));
}

const fmtCache = new Map();
function fmt(options) {
  const key = lang + JSON.stringify(options);
  if (!fmtCache.has(key)) fmtCache.set(key, new Intl.DateTimeFormat(lang, options));
  return fmtCache.get(key);
}

/** Short time for a message: just the time today, the date and time otherwise. */
export function formatTime(ms) {
  const d = new Date(ms);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return fmt({ hour: "2-digit", minute: "2-digit" }).format(d);
  if (d.getFullYear() === now.getFullYear()) {
    return fmt({ month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }).format(d);
  }
  return fmt({ dateStyle: "medium", timeStyle: "short" }).format(d);
}

export function formatFull(ms) {
  return fmt({ dateStyle: "full", timeStyle: "medium" }).format(new Date(ms));
}

/** A list of names joined the way the language does it ("A, B and C" / "A、B和C"). */
export function formatList(items) {
  if (typeof Intl.ListFormat === "function") {
    return new Intl.ListFormat(lang, { style: "long", type: "conjunction" }).format(items);
  }
  return items.join(", ");
}

export function formatNumber(n) {
  return new Intl.NumberFormat(lang).format(n);
}

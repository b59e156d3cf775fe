// Consent to the organization's terms of use: shown after log-in (and whenever the server says
// `terms_acceptance_required`) as a modal with the terms and "Accept"; nothing else works until
// the person accepts the version shown (REST: GET /org/terms, POST /users/me/terms/accept).
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { api } from "../api.js";
import { languageSelect } from "./common.js";

export function termsView({ terms, onAccepted, onSignOut }) {
  const error = h("p", { class: "form-error", attrs: { role: "alert" } });
  const accept = h("button", { type: "submit", testid: "terms-accept", class: "primary", text: t("terms.accept") });
  const form = h("form", { method: "dialog" },
    h("div", { class: "dialog-actions" },
      h("button", { type: "button", class: "link", text: t("password.cancel"), on: { click: () => { dialog.close(); onSignOut(); } } }),
      accept));
  const dialog = h("dialog", {
    testid: "terms-dialog", class: "dialog wide", attrs: { "aria-labelledby": "terms-title", "aria-describedby": "terms-intro" },
  },
  h("h2", { id: "terms-title", text: t("terms.title") }),
  h("p", { id: "terms-intro", class: "muted", text: t("terms.intro", { version: terms.version }) }),
  // Focusable, so that a keyboard can scroll long terms.
  h("div", { testid: "terms-text", class: "terms-text", tabIndex: 0, attrs: { role: "region", "aria-labelledby": "terms-title" }, text: terms.text }),
  error, form);
  // Escape must not dismiss it: the terms are the only way on.
  dialog.addEventListener("cancel", (ev) => ev.preventDefault());
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    accept.disabled = true;
    error.textContent = "";
    try {
      await api.acceptTerms(terms.version);
      dialog.close();
      await onAccepted();
    } catch (err) {
      // New terms were published meanwhile: show those instead.
      error.textContent = err.code === "terms_outdated" ? t("terms.outdated") : t("error.generic");
      accept.disabled = false;
      if (err.code === "terms_outdated") await onAccepted();
    }
  });
  const main = h("main", { class: "auth-screen" }, h("div", { class: "auth-lang" }, languageSelect()), dialog);
  queueMicrotask(() => { if (dialog.isConnected && !dialog.open) dialog.showModal(); });
  return main;
}

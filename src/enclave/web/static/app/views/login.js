// The log-in form and the forced password change of a first log-in.
import { h, field } from "../dom.js";
import { t } from "../i18n.js";
import { languageSelect } from "./common.js";

function errorText(err) {
  const key = `error.${err?.code}`;
  const text = t(key);
  return text === key ? t("error.generic") : text;
}

export function loginView({ onSubmit }) {
  const username = h("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "none", spellcheck: false });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const error = h("p", { testid: "login-error", class: "form-error", attrs: { role: "alert" }, hidden: true });
  const submit = h("button", { type: "submit", class: "primary", text: t("login.submit") });
  const form = h("form", {
    testid: "login-form", class: "card", attrs: { "aria-labelledby": "login-title" },
    on: {
      submit: submitting(error, submit, () => onSubmit(username.value.trim(), password.value), (err) => {
        password.select();
        return err?.code === "invalid_credentials" ? t("login.failed") : errorText(err);
      }),
    },
  },
  h("h1", { id: "login-title", text: t("app.name") }),
  h("p", { class: "muted", text: t("login.intro") }),
  field(t("login.username"), username),
  field(t("login.password"), password),
  error, submit);
  return h("main", { class: "auth-screen" }, h("div", { class: "auth-lang" }, languageSelect()), form);
}

export function changePasswordView({ onSubmit, onCancel }) {
  const current = h("input", { name: "current_password", type: "password", autocomplete: "current-password", required: true });
  const next = h("input", { name: "new_password", type: "password", autocomplete: "new-password", required: true });
  const error = h("p", { class: "form-error", attrs: { role: "alert" }, hidden: true });
  const submit = h("button", { type: "submit", class: "primary", text: t("password.submit") });
  const form = h("form", {
    testid: "change-password-form", class: "card", attrs: { "aria-labelledby": "pw-title" },
    on: {
      submit: submitting(error, submit, () => onSubmit(current.value, next.value), errorText),
    },
  },
  h("h1", { id: "pw-title", text: t("password.title") }),
  h("p", { class: "muted", text: t("password.intro") }),
  field(t("password.current"), current),
  field(t("password.new"), next),
  error, submit,
  h("button", { type: "button", class: "link", text: t("password.cancel"), on: { click: onCancel } }));
  return h("main", { class: "auth-screen" }, h("div", { class: "auth-lang" }, languageSelect()), form);
}

// A form's submit handler: disable the button while `run` works; show `describe(err)` on failure.
function submitting(error, button, run, describe) {
  return async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    button.disabled = true;
    try {
      await run();
    } catch (err) {
      error.textContent = describe(err);
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  };
}

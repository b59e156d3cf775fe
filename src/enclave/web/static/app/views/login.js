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
  // The second step, shown once the server answers `mfa_required`: the authenticator code, or
  // (after "Use a recovery code") one of the recovery codes, in the same field.
  const code = h("input", { testid: "login-otp", name: "otp", inputMode: "numeric", autocomplete: "one-time-code", maxLength: 64, spellcheck: false, autocapitalize: "none" });
  const codeField = field(t("login.otp"), code);
  codeField.hidden = true;
  let recovery = false;
  const toggle = h("button", {
    type: "button", testid: "use-recovery-code", class: "link", hidden: true,
    on: { click: () => { recovery = !recovery; renderCode(); code.value = ""; code.focus(); } },
  });
  function renderCode() {
    codeField.querySelector("label").textContent = recovery ? t("login.recoveryCode") : t("login.otp");
    code.name = recovery ? "recovery_code" : "otp";
    code.inputMode = recovery ? "text" : "numeric";
    code.autocomplete = recovery ? "off" : "one-time-code";
    toggle.textContent = recovery ? t("login.useOtp") : t("login.useRecovery");
  }
  renderCode();
  function second() {
    if (codeField.hidden) return {};
    const value = code.value.trim();
    return recovery ? { recovery_code: value } : { otp: value };
  }
  const form = h("form", {
    testid: "login-form", class: "card", attrs: { "aria-labelledby": "login-title" },
    on: {
      submit: submitting(error, submit, () => onSubmit(username.value.trim(), password.value, second()), (err) => {
        if (err?.code === "mfa_required") {
          codeField.hidden = false;
          toggle.hidden = false;
          code.required = true;
          queueMicrotask(() => code.focus());
          return t("login.mfaNeeded");
        }
        if (!codeField.hidden && err?.code === "invalid_credentials") {
          code.select();
          return t("login.failedCode");
        }
        password.select();
        return err?.code === "invalid_credentials" ? t("login.failed") : errorText(err);
      }),
    },
  },
  h("h1", { id: "login-title", text: t("app.name") }),
  h("p", { class: "muted", text: t("login.intro") }),
  field(t("login.username"), username),
  field(t("login.password"), password),
  codeField, toggle,
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

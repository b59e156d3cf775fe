// Security settings: MFA (enrol with an authenticator app, recovery codes, disable, new codes)
// and one's sessions (revoke one, sign out everywhere else). The enrolment part is also the
// full-screen step shown first when the organization requires MFA and the account has none.
import { h, field } from "../dom.js";
import { t, formatTime, formatFull } from "../i18n.js";
import { api } from "../api.js";
import { openDialog, dialogHeader, languageSelect } from "./common.js";

function errorText(err) {
  const key = `error.${err?.code}`;
  const text = t(key);
  return text === key ? t("error.generic") : text;
}

function codeInput(name = "code") {
  return h("input", {
    name, inputMode: "numeric", autocomplete: "one-time-code", required: true,
    maxLength: 64, spellcheck: false, autocapitalize: "none",
  });
}

/** A form whose submit runs `run` with the button disabled; failures show in its alert. */
function form(testid, children, submitText, run) {
  const error = h("p", { class: "form-error", attrs: { role: "alert" }, hidden: true });
  const submit = h("button", { type: "submit", class: "primary", text: submitText });
  const el = h("form", {
    testid, class: "security-form",
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        error.hidden = true;
        submit.disabled = true;
        try {
          await run();
        } catch (err) {
          error.textContent = errorText(err);
          error.hidden = false;
        } finally {
          submit.disabled = false;
        }
      },
    },
  }, ...children, error, submit);
  return el;
}

/** The recovery codes, shown once, with a copy button. `onDone` continues. */
export function recoveryCodesPanel(codes, onDone) {
  const note = h("p", { class: "muted", attrs: { "aria-live": "polite" } });
  const copy = h("button", {
    type: "button", testid: "copy-recovery-codes", class: "secondary", text: t("mfa.copyCodes"),
    on: {
      click: async () => {
        try {
          await navigator.clipboard.writeText(codes.join("\n"));
          note.textContent = t("mfa.copied");
        } catch {
          note.textContent = t("mfa.copyFailed");
        }
      },
    },
  });
  return h("section", { testid: "recovery-codes", class: "recovery-codes", attrs: { "aria-labelledby": "codes-title" } },
    h("h3", { id: "codes-title", text: t("mfa.codesTitle") }),
    h("p", { text: t("mfa.codesIntro") }),
    h("ol", { class: "codes" }, ...codes.map((c) => h("li", { testid: "recovery-code", class: "code", text: c }))),
    h("div", { class: "dialog-actions" }, copy,
      h("button", { type: "button", testid: "recovery-codes-done", class: "primary", text: t("mfa.codesDone"), on: { click: onDone } })),
    note);
}

/** Enrolment: QR code, secret, first code; then the recovery codes. `onDone()` when finished. */
export function enrolPanel({ onDone, onCancel }) {
  const panel = h("section", { testid: "mfa-enrol", class: "mfa-enrol", attrs: { "aria-labelledby": "enrol-title" } });
  const status = h("p", { class: "muted", attrs: { "aria-live": "polite" }, text: t("history.loading") });
  panel.append(h("h3", { id: "enrol-title", text: t("mfa.enrolTitle") }), status);
  api.mfaStart().then((started) => {
    const code = codeInput();
    panel.replaceChildren(
      h("h3", { id: "enrol-title", text: t("mfa.enrolTitle") }),
      h("p", { text: t("mfa.enrolIntro") }),
      h("img", { testid: "mfa-qr", class: "qr", src: started.qr_svg, alt: t("mfa.qrAlt"), width: 200, height: 200 }),
      h("p", { class: "muted", text: t("mfa.secretIntro") }),
      h("p", { testid: "mfa-secret", class: "secret", text: started.secret.replace(/(.{4})/g, "$1 ").trim() }),
      form("mfa-confirm-form", [field(t("mfa.code"), code)], t("mfa.confirm"), async () => {
        const { recovery_codes } = await api.mfaConfirm(code.value.trim());
        panel.replaceChildren(recoveryCodesPanel(recovery_codes, onDone));
        panel.querySelector("[data-testid=recovery-codes-done]")?.focus();
      }),
      onCancel ? h("button", { type: "button", class: "link", text: t("action.cancel"), on: { click: onCancel } }) : null);
    code.focus();
  }).catch((err) => { status.textContent = errorText(err); });
  return panel;
}

/** The full-screen step when the organization requires MFA and this account has none. */
export function mfaEnrollmentView({ onDone, onSignOut }) {
  const card = h("div", { testid: "mfa-enrollment-required", class: "card wide" },
    h("h1", { text: t("mfa.requiredTitle") }),
    h("p", { class: "muted", text: t("mfa.requiredIntro") }),
    enrolPanel({ onDone }),
    h("button", { type: "button", class: "link", text: t("password.cancel"), on: { click: onSignOut } }));
  return h("main", { class: "auth-screen" }, h("div", { class: "auth-lang" }, languageSelect()), card);
}

/** A short device label from a User-Agent string ("Chrome · Linux"). */
export function device(ua) {
  if (!ua) return t("session.unknownDevice");
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrom(e|ium)\//.test(ua) ? "Chrome"
    : /Safari\//.test(ua) ? "Safari" : /python|httpx|aiohttp/i.test(ua) ? "SDK" : null;
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Windows/.test(ua) ? "Windows"
    : /Mac OS X/.test(ua) ? "macOS" : /Linux/.test(ua) ? "Linux" : null;
  if (!browser && !os) return ua.slice(0, 60);
  return [browser, os].filter(Boolean).join(" · ");
}

/** The Security dialog, opened from the profile (the user menu). */
export function securityDialog(actions) {
  const dialog = h("dialog", { testid: "security", class: "dialog", attrs: { "aria-labelledby": "security-title" } });
  const mfaBox = h("div", { class: "mfa-box" });
  const sessionsPart = sessionsSection(dialog, actions, "security-sessions-title");

  async function loadMfa() {
    let st;
    try {
      st = await api.mfaStatus();
    } catch (err) {
      mfaBox.replaceChildren(h("p", { class: "form-error", text: errorText(err) }));
      return;
    }
    const state = st.enrolled ? "on" : "off";
    const summary = h("p", { testid: "mfa-status", data: { state }, text: st.enrolled ? t("mfa.on") : t("mfa.off") });
    const parts = [summary];
    if (st.required && !st.enrolled) parts.push(h("p", { class: "muted", text: t("mfa.requiredIntro") }));
    if (st.enrolled) {
      parts.push(h("p", { testid: "recovery-codes-left", class: "muted", text: t("mfa.codesLeft", { n: st.recovery_codes_left }) }));
      parts.push(h("div", { class: "dialog-actions start" },
        h("button", { type: "button", testid: "mfa-regenerate", class: "secondary", text: t("mfa.regenerate"), on: { click: showRegenerate } }),
        h("button", { type: "button", testid: "mfa-disable", class: "danger", text: t("mfa.disable"), on: { click: showDisable } })));
    } else {
      parts.push(h("button", {
        type: "button", testid: "mfa-start", class: "primary", text: t("mfa.enrol"),
        on: { click: () => mfaBox.replaceChildren(enrolPanel({ onDone: loadMfa, onCancel: loadMfa })) },
      }));
    }
    mfaBox.replaceChildren(...parts);
  }

  function showDisable() {
    const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
    const code = codeInput();
    mfaBox.replaceChildren(
      h("p", { text: t("mfa.disableIntro") }),
      form("mfa-disable-form", [field(t("login.password"), password), field(t("mfa.codeOrRecovery"), code)], t("mfa.disable"), async () => {
        await api.mfaDisable(password.value, code.value.trim());
        await loadMfa();
      }),
      h("button", { type: "button", class: "link", text: t("action.cancel"), on: { click: loadMfa } }));
    password.focus();
  }

  function showRegenerate() {
    const code = codeInput();
    mfaBox.replaceChildren(
      h("p", { text: t("mfa.regenerateIntro") }),
      form("mfa-regenerate-form", [field(t("mfa.codeOrRecovery"), code)], t("mfa.regenerate"), async () => {
        const { recovery_codes } = await api.mfaRegenerate(code.value.trim());
        mfaBox.replaceChildren(recoveryCodesPanel(recovery_codes, loadMfa));
      }),
      h("button", { type: "button", class: "link", text: t("action.cancel"), on: { click: loadMfa } }));
    code.focus();
  }

  dialog.append(
    dialogHeader("security-title", t("security.title"), dialog),
    h("h3", { text: t("mfa.title") }), mfaBox,
    ...sessionsPart.nodes);
  openDialog(dialog);
  loadMfa();
  sessionsPart.load();
}

/** One's sessions (device, last use, address) with "revoke" on each and "sign out everywhere
 * else"; used by the Security dialog and the profile. `dialog` closes when the current session
 * is revoked. Returns the nodes to insert and the function that (re)loads the list. */
export function sessionsSection(dialog, actions, titleId) {
  const sessions = h("ul", { class: "sessions", attrs: { "aria-labelledby": titleId } });
  const sessionStatus = h("p", { class: "muted", attrs: { "aria-live": "polite" } });

  async function loadSessions() {
    sessionStatus.textContent = t("history.loading");
    try {
      const { sessions: list } = await api.sessions();
      sessionStatus.textContent = "";
      sessions.replaceChildren(...list.map((s) => {
        const revoke = h("button", {
          type: "button", testid: "revoke-session", class: "secondary",
          text: s.current ? t("session.revokeThis") : t("session.revoke"),
          on: {
            click: async () => {
              revoke.disabled = true;
              try {
                if (s.current) { dialog.close(); await actions.logout(); return; }
                await api.revokeSession(s.id);
                await loadSessions();
              } catch {
                sessionStatus.textContent = t("error.generic");
                revoke.disabled = false;
              }
            },
          },
        });
        return h("li", { testid: "session-item", class: "session-item", data: { id: s.id, current: s.current ? "true" : undefined } },
          h("div", {},
            h("p", { class: "session-device" }, device(s.user_agent), s.current ? h("span", { class: "badge", text: t("session.current") }) : null),
            h("p", { class: "muted" }, t("session.lastUsed"), " ",
              h("time", { dateTime: new Date(s.last_used_at).toISOString(), title: formatFull(s.last_used_at), text: formatTime(s.last_used_at) }),
              s.ip ? ` · ${s.ip}` : "")),
          revoke);
      }));
      othersBtn.disabled = list.length < 2;
    } catch {
      sessionStatus.textContent = t("session.unavailable");
    }
  }

  const othersBtn = h("button", {
    type: "button", testid: "revoke-other-sessions", class: "secondary", text: t("session.revokeOthers"),
    on: {
      click: async () => {
        othersBtn.disabled = true;
        try {
          const { revoked } = await api.revokeOtherSessions();
          await loadSessions();
          sessionStatus.textContent = t("session.revokedOthers", { n: revoked });
        } catch {
          sessionStatus.textContent = t("error.generic");
          othersBtn.disabled = false;
        }
      },
    },
  });

  return {
    nodes: [
      h("h3", { id: titleId, text: t("session.title") }), sessionStatus, sessions,
      h("div", { class: "dialog-actions start" }, othersBtn),
    ],
    load: loadSessions,
  };
}

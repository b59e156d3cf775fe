// Boot: check the stored token, show log-in / password change / the app, and wire the socket,
// the store and the views together.
import { api, setToken, getToken, setHooks } from "./api.js";
import { Stream } from "./stream.js";
import { applyLang, onLangChange, t } from "./i18n.js";
import { h } from "./dom.js";
import { state, emit, on, loadCursors, reset } from "./store.js";
import * as sync from "./sync.js";
import * as outbox from "./outbox.js";
import { actions, init as initActions } from "./actions.js";
import { loginView, changePasswordView } from "./views/login.js";
import { mfaEnrollmentView } from "./views/security.js";
import { termsView } from "./views/terms.js";
import { mountApp, phoneQuery } from "./views/shell.js";
import { conversationName } from "./views/common.js";
import { updateTitle, maybeNotify } from "./notify.js";

const root = document.getElementById("root");
let stream = null;
let mounted = null;
let screen = null; // "login" | "password" | "mfa" | "terms" | "app" | "error"
const offs = [];

function show(view) {
  root.replaceChildren(view);
  root.querySelector("input:not([type=hidden]), select")?.focus();
}

function showLogin() {
  screen = "login";
  updateTitle();
  show(loginView({
    onSubmit: async (username, password, second) => {
      const res = await api.login(username, password, second);
      setToken(res.token);
      if (res.user.must_change_password) showChangePassword();
      else await continueSetUp(res.user);
    },
  }));
}

function showChangePassword() {
  screen = "password";
  stopApp();
  show(changePasswordView({
    onSubmit: async (current, next) => {
      await api.changePassword(current, next);
      await continueSetUp(await api.me());
    },
    onCancel: () => actions.logout(),
  }));
}

// After log-in and the password step: an organization that requires MFA gets the enrolment
// screen first for an account without it (the server answers `mfa_enrollment_required` to
// everything else until then); then the organization's terms of use, until accepted.
async function continueSetUp(me) {
  const mfa = await api.mfaStatus();
  if (mfa.required && !mfa.enrolled) showMfaEnrollment(me);
  else await continueWithTerms(me);
}

async function continueWithTerms(me) {
  const terms = await api.terms();
  if (!terms.accepted) showTerms(me, terms);
  else await startApp(me);
}

let termsShown = null;
function showTerms(me, terms) {
  screen = "terms";
  termsShown = terms;
  stopApp();
  show(termsView({
    terms,
    onAccepted: async () => continueWithTerms(me || (await api.me())),
    onSignOut: () => actions.logout(),
  }));
}

async function termsRequired(me) {
  try {
    const terms = await api.terms();
    if (!terms.accepted) showTerms(me, terms);
  } catch {
    // The next call will tell again.
  }
}

function showMfaEnrollment(me) {
  screen = "mfa";
  stopApp();
  show(mfaEnrollmentView({
    onDone: async () => continueWithTerms(me || (await api.me())),
    onSignOut: () => actions.logout(),
  }));
}

function showError() {
  screen = "error";
  root.replaceChildren(h("main", { class: "auth-screen" }, h("div", { class: "card" },
    h("h1", { text: t("app.name") }),
    h("p", { attrs: { role: "alert" }, text: t("error.unreachable") }),
    h("button", { type: "button", class: "primary", text: t("action.retry"), on: { click: boot } }))));
}

async function startApp(me) {
  stopApp();
  state.me = me;
  loadCursors();
  stream = new Stream({
    token: getToken,
    cursors: () => state.cursors,
    onFrame: sync.applyFrame,
    onState: (s) => { state.connection = s; emit("connection"); },
    onReady: () => { sendPresence(); outbox.flush(); },
    onFatal: (code) => (code === "password_change_required" ? showChangePassword()
      : code === "mfa_enrollment_required" ? showMfaEnrollment(state.me)
        : code === "terms_acceptance_required" ? termsRequired(state.me) : signOut()),
  });
  sync.attach(stream, {
    onMessage: (c, m) => maybeNotify(c, m, conversationName),
    onRemoved: (id) => {
      outbox.forget(id);
      if (state.openId === id) actions.open(null);
    },
  });
  initActions(stream, { onSignOut: signOut });
  await Promise.all([sync.loadUsers(), sync.loadConversations({ initial: true }), sync.loadCapabilities()]);
  outbox.init(stream);
  screen = "app";
  mountShell();
  offs.push(on("convs", updateTitle));
  // A new org role shows other tools (and a guest sees fewer people): render them again, with
  // the capabilities of the new role.
  offs.push(on("me", async () => {
    if (screen !== "app") return;
    sync.loadUsers().catch(() => {});
    await sync.loadCapabilities().catch(() => {});
    if (screen === "app") mountShell();
  }));
  updateTitle();
  openFromHash();
  stream.start();
}

function mountShell() {
  const focusedTestId = document.activeElement?.dataset?.testid;
  mounted?.dispose();
  mounted = mountApp(root, actions);
  if (focusedTestId) root.querySelector(`[data-testid="${focusedTestId}"]`)?.focus();
}

function stopApp() {
  stream?.stop();
  stream = null;
  mounted?.dispose();
  mounted = null;
  for (const off of offs.splice(0)) off();
}

function signOut() {
  stopApp();
  setToken(null);
  reset();
  sync.resetPresence();
  history.replaceState(null, "", "#/");
  showLogin();
}

function openFromHash() {
  const m = /^#\/c\/([a-z0-9]+)$/.exec(location.hash);
  actions.open(m ? m[1] : null);
}

function sendPresence() {
  stream?.send({ type: "presence", status: document.visibilityState === "visible" ? "online" : "away" });
}

async function boot() {
  if (!getToken()) return showLogin();
  try {
    const me = await api.me();
    await continueSetUp(me);
  } catch (err) {
    if (err.code === "password_change_required") showChangePassword();
    else if (err.code === "mfa_enrollment_required") showMfaEnrollment(null);
    else if (err.code === "terms_acceptance_required") termsRequired(null);
    else if (err.status === 401) { setToken(null); showLogin(); }
    else if (err.status === 0) showError();
    else showLogin();
  }
}

setHooks({
  authLost: () => { if (["app", "password", "mfa", "terms"].includes(screen)) signOut(); },
  passwordChange: () => { if (screen !== "password") showChangePassword(); },
  mfaEnrollment: () => { if (screen === "app") showMfaEnrollment(state.me); },
  termsRequired: () => { if (screen === "app") termsRequired(state.me); },
});

// Everything on screen comes from the locale tables: switching the language re-renders.
onLangChange(() => {
  updateTitle();
  if (screen === "app") mountShell();
  else if (screen === "login") showLogin();
  else if (screen === "password") showChangePassword();
  else if (screen === "mfa") showMfaEnrollment(state.me);
  else if (screen === "terms" && termsShown) showTerms(state.me, termsShown);
  else if (screen === "error") showError();
});
phoneQuery.addEventListener("change", () => { if (screen === "app") mountShell(); });
document.addEventListener("visibilitychange", () => {
  sendPresence();
  if (document.visibilityState === "visible") emit("visible");
});
window.addEventListener("hashchange", () => { if (screen === "app") openFromHash(); });

applyLang();
boot();

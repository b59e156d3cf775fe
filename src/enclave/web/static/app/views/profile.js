// The profile panel: who I am, my sessions (with remote log-out), notifications, log out.
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { api } from "../api.js";
import { state } from "../store.js";
import { openDialog, dialogHeader } from "./common.js";
import { askPermission, permission, notificationsSupported } from "../notify.js";
import { securityDialog, sessionsSection } from "./security.js";

export function profileDialog(actions) {
  const me = state.me;
  const dialog = h("dialog", { testid: "profile", class: "dialog", attrs: { "aria-labelledby": "profile-title" } });
  const sessionsPart = sessionsSection(dialog, actions, "sessions-title");

  const notifyBtn = h("button", { type: "button", class: "secondary", text: t("notify.enable") });
  const notifyNote = h("p", { class: "muted" });
  function renderNotify() {
    const p = permission();
    notifyBtn.hidden = !notificationsSupported() || p !== "default";
    notifyNote.textContent = !notificationsSupported() ? t("notify.unsupported") : p === "granted" ? t("notify.on") : p === "denied" ? t("notify.blocked") : "";
  }
  notifyBtn.addEventListener("click", async () => { await askPermission(); renderNotify(); });

  // GDPR Art. 15/20: everything the server holds about me, as one JSON file.
  const myDataNote = h("p", { testid: "my-data-status", class: "muted", attrs: { "aria-live": "polite" } });
  const myDataBtn = h("button", { type: "button", testid: "download-my-data", class: "secondary", text: t("mydata.download") });
  myDataBtn.addEventListener("click", async () => {
    myDataBtn.disabled = true;
    myDataNote.textContent = t("mydata.preparing");
    try {
      await api.downloadMyData();
      myDataNote.textContent = t("mydata.done");
    } catch {
      myDataNote.textContent = t("error.generic");
    } finally {
      myDataBtn.disabled = false;
    }
  });
  renderNotify();

  dialog.append(
    dialogHeader("profile-title", t("profile.title"), dialog),
    h("p", { class: "profile-name", text: me.display_name || me.username }),
    h("p", { class: "muted", text: `@${me.username} · ${t(`orgRole.${me.role}`)}` }),
    h("button", {
      type: "button", testid: "security-button", class: "secondary", text: t("security.open"),
      on: { click: () => { dialog.close(); securityDialog(actions); } },
    }),
    h("h3", { text: t("notify.title") }), notifyNote, notifyBtn,
    h("h3", { text: t("mydata.title") }),
    h("p", { class: "muted", text: t("mydata.intro") }), myDataNote, myDataBtn,
    ...sessionsPart.nodes,
    h("div", { class: "dialog-actions" },
      h("button", { type: "button", testid: "logout", class: "danger", text: t("profile.logout"), on: { click: () => { dialog.close(); actions.logout(); } } })));
  openDialog(dialog);
  sessionsPart.load();
}

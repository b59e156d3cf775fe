// The profile panel: who I am, my sessions (with remote log-out), notifications, log out.
import { h } from "../dom.js";
import { t, formatTime, formatFull } from "../i18n.js";
import { state } from "../store.js";
import { api } from "../api.js";
import { openDialog, dialogHeader } from "./common.js";
import { askPermission, permission, notificationsSupported } from "../notify.js";
import { securityDialog } from "./security.js";

/** A short device label from a User-Agent string ("Chrome · Linux"). */
function device(ua) {
  if (!ua) return t("session.unknownDevice");
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrom(e|ium)\//.test(ua) ? "Chrome"
    : /Safari\//.test(ua) ? "Safari" : /python|httpx|aiohttp/i.test(ua) ? "SDK" : null;
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Windows/.test(ua) ? "Windows"
    : /Mac OS X/.test(ua) ? "macOS" : /Linux/.test(ua) ? "Linux" : null;
  if (!browser && !os) return ua.slice(0, 60);
  return [browser, os].filter(Boolean).join(" · ");
}

export function profileDialog(actions) {
  const me = state.me;
  const dialog = h("dialog", { testid: "profile", class: "dialog", attrs: { "aria-labelledby": "profile-title" } });
  const sessions = h("ul", { class: "sessions", attrs: { "aria-labelledby": "sessions-title" } });
  const status = h("p", { class: "muted", attrs: { "aria-live": "polite" } });

  async function load() {
    status.textContent = t("history.loading");
    try {
      const { sessions: list } = await api.sessions();
      status.textContent = "";
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
                await load();
              } catch {
                status.textContent = t("error.generic");
                revoke.disabled = false;
              }
            },
          },
        });
        return h("li", { testid: "session-item", class: "session-item", data: { id: s.id, current: s.current ? "true" : undefined } },
          h("div", {},
            h("p", { class: "session-device" }, device(s.user_agent), s.current ? h("span", { class: "badge", text: t("session.current") }) : null),
            h("p", { class: "muted" }, t("session.lastUsed"), " ",
              h("time", { dateTime: new Date(s.last_used_at).toISOString(), title: formatFull(s.last_used_at), text: formatTime(s.last_used_at) }))),
          revoke);
      }));
    } catch {
      status.textContent = t("session.unavailable");
    }
  }

  const notifyBtn = h("button", { type: "button", class: "secondary", text: t("notify.enable") });
  const notifyNote = h("p", { class: "muted" });
  function renderNotify() {
    const p = permission();
    notifyBtn.hidden = !notificationsSupported() || p !== "default";
    notifyNote.textContent = !notificationsSupported() ? t("notify.unsupported") : p === "granted" ? t("notify.on") : p === "denied" ? t("notify.blocked") : "";
  }
  notifyBtn.addEventListener("click", async () => { await askPermission(); renderNotify(); });
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
    h("h3", { id: "sessions-title", text: t("session.title") }), status, sessions,
    h("div", { class: "dialog-actions" },
      h("button", { type: "button", testid: "logout", class: "danger", text: t("profile.logout"), on: { click: () => { dialog.close(); actions.logout(); } } })));
  openDialog(dialog);
  load();
}

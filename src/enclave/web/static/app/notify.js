// The unread total in the tab title, and browser notifications for DMs and mentions while the
// tab is hidden. Permission is only ever asked from a button (never on load).
import { t } from "./i18n.js";
import { state, totalUnread, userName } from "./store.js";

export function updateTitle() {
  const n = totalUnread();
  document.title = n > 0 ? t("title.unread", { n }) : t("app.name");
}

export function notificationsSupported() {
  return typeof Notification === "function";
}

export function permission() {
  return notificationsSupported() ? Notification.permission : "denied";
}

export async function askPermission() {
  if (!notificationsSupported() || Notification.permission !== "default") return permission();
  try {
    return await Notification.requestPermission();
  } catch {
    return permission();
  }
}

/** Called for every new message from someone else. */
export function maybeNotify(conv, message, nameOf) {
  if (!document.hidden || permission() !== "granted") return;
  const mentioned = message.mentions?.includes(state.me.id);
  if (conv.kind !== "dm" && !mentioned) return;
  const sender = userName(message.sender_id);
  const title = conv.kind === "dm" ? sender : t("notify.mention", { name: sender, conversation: nameOf(conv) });
  try {
    const n = new Notification(title, { body: (message.text || "").slice(0, 200), tag: conv.id });
    n.onclick = () => {
      window.focus();
      location.hash = `#/c/${conv.id}`;
      n.close();
    };
  } catch { /* some platforms only allow notifications from a service worker */ }
}

// Small pieces shared by several views.
import { h } from "../dom.js";
import { t, getLang, setLang, LANGUAGES } from "../i18n.js";
import { state } from "../store.js";

export function languageSelect() {
  const select = h("select", {
    testid: "language", class: "language", attrs: { "aria-label": t("language.label") },
    on: { change: () => setLang(select.value) },
  });
  for (const code of Object.keys(LANGUAGES)) {
    // Option names come from the current table, so no other script shows up on the page.
    select.append(h("option", { value: code, text: t(`language.${code}`), selected: code === getLang() }));
  }
  return select;
}

/** A presence dot; role=img so that its label is read out. */
/** My own status is known locally; others come from presence subscriptions. */
export function presenceOf(userId) {
  if (userId === state.me?.id) return state.connection === "online" ? (document.hidden ? "away" : "online") : "offline";
  return state.presence.get(userId) || "offline";
}

export function presenceDot(userId) {
  const status = presenceOf(userId);
  return h("span", {
    testid: "presence", class: `presence ${status}`, data: { status, user: userId },
    attrs: { role: "img", "aria-label": t(`presence.${status}`), title: t(`presence.${status}`) },
  });
}

/** Update every presence dot on the page in place (cheaper than re-rendering lists). */
export function refreshPresenceDots(root = document) {
  for (const dot of root.querySelectorAll("[data-testid=presence]")) {
    const status = presenceOf(dot.dataset.user);
    if (dot.dataset.status === status) continue;
    dot.dataset.status = status;
    dot.className = `presence ${status}`;
    dot.setAttribute("aria-label", t(`presence.${status}`));
    dot.title = t(`presence.${status}`);
  }
}

export function conversationName(c) {
  if (!c) return "";
  if (c.kind === "dm") {
    const u = state.users.get(c.dm_peer_id);
    return u ? u.display_name || u.username : t("conversation.dm");
  }
  if (c.name) return c.name;
  return c.kind === "group" ? t("conversation.unnamedGroup") : t("conversation.unnamedChannel");
}

export function displayName(userId) {
  const u = state.users.get(userId);
  return u ? u.display_name || u.username : t("user.unknown");
}

/** A modal <dialog>: Escape closes it natively; focus returns to the opener. */
export function openDialog(dialog, { onClose } = {}) {
  const opener = document.activeElement;
  document.body.append(dialog);
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (onClose) onClose();
    if (opener && opener.isConnected) opener.focus();
  });
  dialog.addEventListener("click", (ev) => {
    if (ev.target === dialog) dialog.close(); // a click on the backdrop
  });
  dialog.showModal();
  return dialog;
}

export function dialogHeader(titleId, title, dialog) {
  return h("header", { class: "dialog-header" },
    h("h2", { id: titleId, text: title }),
    h("button", { type: "button", class: "icon", attrs: { "aria-label": t("action.close") }, text: "×", on: { click: () => dialog.close() } }));
}

// The member list of the open conversation, with presence and roles.
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { state, membersOf } from "../store.js";
import { displayName, presenceDot, refreshPresenceDots } from "./common.js";

export function memberPanel(scope, convId, onClose) {
  const list = h("ul", { testid: "member-list", class: "member-list", attrs: { "aria-labelledby": "members-title" } });
  const panel = h("aside", { class: "panel members-panel", attrs: { "aria-labelledby": "members-title" } },
    h("header", { class: "panel-header" },
      h("h3", { id: "members-title", text: t("members.title") }),
      h("button", { type: "button", class: "icon", attrs: { "aria-label": t("action.close") }, text: "×", on: { click: onClose } })),
    list);

  const order = { owner: 0, moderator: 1, member: 2 };
  function render() {
    const members = [...membersOf(convId).values()].sort((a, b) =>
      order[a.role] - order[b.role] || displayName(a.user_id).localeCompare(displayName(b.user_id)));
    list.replaceChildren(...members.map((m) => h("li", { testid: "member", class: "member", data: { id: m.user_id } },
      presenceDot(m.user_id),
      h("span", { class: "member-name", text: displayName(m.user_id) }),
      m.user_id === state.me.id ? h("span", { class: "muted", text: t("members.you") }) : null,
      m.role !== "member" ? h("span", { class: "badge role", text: t(`role.${m.role}`) }) : null)));
  }
  const offs = [
    scope.on(`members:${convId}`, render),
    scope.on("users", render),
    scope.on("presence", () => refreshPresenceDots(list)),
  ];
  // The panel can close before the view does: stop listening then.
  const observer = new MutationObserver(() => {
    if (!panel.isConnected) { offs.forEach((off) => off()); observer.disconnect(); }
  });
  queueMicrotask(() => panel.parentNode && observer.observe(panel.parentNode, { childList: true }));
  render();
  return panel;
}

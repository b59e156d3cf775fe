// The conversation list: unread counts, newest message preview, DM presence, and a filter.
import { h } from "../dom.js";
import { t, formatTime, formatNumber } from "../i18n.js";
import { state, activityOf } from "../store.js";
import { conversationName, presenceDot, refreshPresenceDots, displayName } from "./common.js";

function preview(c) {
  const m = c.last_message;
  if (!m) return t("list.noMessages");
  if (m.recalled) return t("message.recalled");
  const text = (m.text || "").replace(/\s+/g, " ");
  if (m.sender_id === state.me.id) return t("list.youSaid", { text });
  return c.kind === "dm" ? text : t("list.theySaid", { name: displayName(m.sender_id), text });
}

export function conversationList(scope, actions) {
  const search = h("input", {
    testid: "conversation-search", type: "search", class: "search", autocomplete: "off",
    placeholder: t("list.search"), attrs: { "aria-label": t("list.search") },
  });
  const list = h("ul", { testid: "conversation-list", class: "conv-list", attrs: { "aria-label": t("list.label") } });
  const empty = h("p", { class: "muted empty", hidden: true });

  function item(c) {
    const open = c.id === state.openId;
    const unread = c.unread_count || 0;
    const btn = h("button", {
      type: "button", testid: "conversation-item", class: `conv-item${unread ? " unread" : ""}`,
      data: { id: c.id, kind: c.kind }, attrs: { "aria-current": open ? "true" : null },
      on: { click: () => actions.open(c.id) },
    });
    const lead = c.kind === "dm" ? presenceDot(c.dm_peer_id)
      : h("span", { class: "kind-icon", attrs: { "aria-hidden": "true" }, text: c.kind === "channel" ? "#" : "◇" });
    const top = h("span", { class: "conv-top" },
      h("span", { testid: "conversation-name", class: "conv-name", text: conversationName(c) }),
      c.last_message ? h("span", { class: "conv-time muted", text: formatTime(c.last_message.created_at) }) : null);
    const bottom = h("span", { class: "conv-bottom" },
      h("span", { testid: "last-message", class: "last-message muted", text: preview(c) }));
    if (unread) {
      bottom.append(h("span", {
        testid: "unread-count", class: `badge unread-count${c.mention_count ? " mention" : ""}`,
        attrs: { title: t("list.unread", { n: unread }) }, text: String(unread),
      }), h("span", { class: "sr-only", text: t("list.unread", { n: formatNumber(unread) }) }));
    }
    btn.append(lead, h("span", { class: "conv-text" }, top, bottom));
    return h("li", {}, btn);
  }

  function render() {
    const q = search.value.trim().toLowerCase();
    const convs = [...state.convs.values()]
      .filter((c) => !q || conversationName(c).toLowerCase().includes(q))
      .sort((a, b) => activityOf(b) - activityOf(a));
    const hadFocus = list.contains(document.activeElement) ? document.activeElement.dataset.id : null;
    list.replaceChildren(...convs.map(item));
    if (hadFocus) list.querySelector(`[data-id="${CSS.escape(hadFocus)}"]`)?.focus();
    empty.hidden = convs.length > 0;
    empty.textContent = q ? t("list.noMatch") : t("list.empty");
  }

  search.addEventListener("input", render);
  scope.on("convs", render);
  scope.on("users", render);
  scope.on("open", render);
  scope.on("presence", () => refreshPresenceDots(list));
  render();
  return [search, list, empty];
}

// One message element: text (with @mentions), time, edited/recalled markers, pending/failed
// state with retry, reactions, thread link, and the actions menu (edit, recall, react, reply).
import { h } from "../dom.js";
import { t, formatTime, formatFull } from "../i18n.js";
import { state } from "../store.js";
import { displayName } from "./common.js";

export const EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "😢", "👀", "✅"];

/** Text as nodes: @username of a mentioned person is highlighted; never parsed as HTML. */
function textNodes(m) {
  const text = m.text || "";
  const mentioned = new Set((m.mentions || []).map((id) => state.users.get(id)?.username).filter(Boolean));
  if (!mentioned.size) return [text];
  const out = [];
  let last = 0;
  for (const match of text.matchAll(/@([a-z0-9._-]+)/gi)) {
    if (!mentioned.has(match[1].toLowerCase())) continue;
    out.push(text.slice(last, match.index));
    const me = match[1].toLowerCase() === state.me.username;
    out.push(h("span", { class: me ? "mention me" : "mention", text: match[0] }));
    last = match.index + match[0].length;
  }
  out.push(text.slice(last));
  return out;
}

/**
 * ctx: {ui: {menu, picker, editing}, actions, thread: bool, testid, rerender(key)}
 * `key` is the store key of the message (stable from pending to sent).
 */
export function renderMessage(m, key, ctx) {
  const own = m.sender_id === state.me.id;
  const sent = m._state === "sent" && m.id;
  const el = h("li", {
    testid: ctx.testid || "message",
    class: `msg${own ? " own" : ""}${m.recalled ? " recalled" : ""}`,
    data: { id: m.id || undefined, clientId: m.client_msg_id, state: m._state || "sent", sender: m.sender_id, key },
  });
  const time = h("time", { dateTime: new Date(m.created_at).toISOString(), title: formatFull(m.created_at), text: formatTime(m.created_at) });
  const meta = h("div", { class: "meta" }, h("span", { class: "sender", text: own ? t("message.you") : displayName(m.sender_id) }), " ", time);
  if (m.edited_at && !m.recalled) meta.append(" ", h("span", { testid: "message-edited", class: "edited", text: t("message.edited") }));
  el.append(meta);

  if (m.recalled) {
    el.append(h("p", { testid: "message-recalled", class: "body recalled-note", text: t("message.recalled") }));
  } else if (ctx.ui.editing === key) {
    el.append(editBox(m, key, ctx));
  } else {
    el.append(h("p", { testid: "message-text", class: "body" }, ...textNodes(m)));
  }

  if (m._state === "pending") el.append(h("p", { class: "status", text: t("message.pending") }));
  if (m._state === "failed") {
    const why = t(`error.${m._error}`);
    el.append(h("p", { class: "status failed", attrs: { role: "alert" } },
      t("message.failed"), " ", why.startsWith("error.") ? "" : `${why} `,
      h("button", { type: "button", testid: "retry", class: "link", text: t("message.retry"), on: { click: () => ctx.actions.retry(m.client_msg_id) } }),
      " ",
      h("button", { type: "button", class: "link", text: t("message.discard"), on: { click: () => ctx.actions.discard(m.client_msg_id) } })));
  }

  if (m.reactions?.length && !m.recalled) el.append(reactions(m, ctx));
  if (!ctx.thread && m.reply_count > 0 && !m.thread_root_id) {
    el.append(h("button", {
      type: "button", testid: "reply-count", class: "link reply-count",
      text: t("thread.replies", { n: m.reply_count }),
      on: { click: () => ctx.actions.openThread(m.conversation_id, m.id) },
    }));
  }
  if (sent && !m.recalled) el.append(actionsMenu(m, key, own, ctx));
  return el;
}

function reactions(m, ctx) {
  const row = h("div", { class: "reactions" });
  for (const r of m.reactions) {
    const mine = r.user_ids.includes(state.me.id);
    row.append(h("button", {
      type: "button", testid: "reaction", class: "reaction", data: { emoji: r.emoji },
      attrs: { "aria-pressed": String(mine), "aria-label": t("reaction.label", { emoji: r.emoji, n: r.count }), title: r.user_ids.map(displayName).join(", ") },
      text: `${r.emoji} ${r.count}`,
      on: { click: () => ctx.actions.toggleReaction(m, r.emoji) },
    }));
  }
  return row;
}

function actionsMenu(m, key, own, ctx) {
  const wrap = h("div", { class: "actions" });
  const open = ctx.ui.menu === key;
  const toggle = h("button", {
    type: "button", testid: "message-actions", class: "icon actions-toggle",
    attrs: { "aria-label": t("message.actions"), "aria-haspopup": "true", "aria-expanded": String(open) },
    text: "⋯",
    on: { click: () => { ctx.ui.picker = null; ctx.ui.menu = open ? null : key; ctx.ui.focus = open ? "[data-testid=message-actions]" : ".menu button"; ctx.rerender(key); } },
  });
  wrap.append(toggle);
  if (open) {
    const menu = h("div", { class: "menu", attrs: { role: "group", "aria-label": t("message.actions") } });
    const item = (action, label, fn) => menu.append(h("button", {
      type: "button", data: { action }, text: label,
      on: { click: () => { ctx.ui.menu = null; fn(); } },
    }));
    if (own && m.text != null) {
      item("edit", t("message.edit"), () => { ctx.ui.editing = key; ctx.ui.focus = "[data-testid=edit-box]"; ctx.rerender(key); });
      item("recall", t("message.recall"), () => { ctx.rerender(key); ctx.actions.recall(m); });
    }
    item("react", t("message.react"), () => { ctx.ui.picker = key; ctx.ui.focus = ".picker button"; ctx.rerender(key); });
    if (!ctx.thread && !m.thread_root_id) {
      item("reply", t("message.reply"), () => { ctx.rerender(key); ctx.actions.openThread(m.conversation_id, m.id); });
    }
    wrap.append(menu);
  }
  if (ctx.ui.picker === key) {
    const picker = h("div", { testid: "reaction-picker", class: "menu picker", attrs: { role: "group", "aria-label": t("message.react") } });
    for (const emoji of EMOJI) {
      picker.append(h("button", {
        type: "button", data: { emoji }, class: "emoji", text: emoji,
        attrs: { "aria-label": t("reaction.add", { emoji }) },
        on: { click: () => { ctx.ui.picker = null; ctx.rerender(key); ctx.actions.toggleReaction(m, emoji); } },
      }));
    }
    wrap.append(picker);
  }
  return wrap;
}

function editBox(m, key, ctx) {
  const box = h("textarea", {
    testid: "edit-box", class: "edit-box", value: m.text || "", rows: 2,
    attrs: { "aria-label": t("message.editLabel") },
  });
  const finish = () => { ctx.ui.editing = null; ctx.ui.focus = "[data-testid=message-actions]"; ctx.rerender(key); };
  box.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") { ev.preventDefault(); ev.stopPropagation(); finish(); return; }
    if (ev.key !== "Enter" || ev.shiftKey || ev.isComposing || ev.keyCode === 229) return;
    ev.preventDefault();
    const text = box.value.trim();
    if (!text || text === m.text) { finish(); return; }
    ctx.actions.edit(m, text).then(finish, () => box.setAttribute("aria-invalid", "true"));
  });
  return h("div", { class: "edit" }, box, h("p", { class: "hint", text: t("message.editHint") }));
}

// The open conversation: header, message history (older pages load when scrolled to the top),
// seen-by, typing indicator and composer. Messages are keyed elements updated in place so that
// scroll position and focus survive live updates.
import { h } from "../dom.js";
import { t, formatList } from "../i18n.js";
import { state, orderedMessages, historyOf, membersOf } from "../store.js";
import { typists } from "../sync.js";
import { renderMessage } from "./message.js";
import { composer } from "./composer.js";
import { conversationName, displayName, presenceDot, refreshPresenceDots } from "./common.js";
import { memberPanel } from "./members.js";

const NEAR_BOTTOM = 80;

export function conversationView(scope, actions, { phone }) {
  const convId = state.openId;
  const conv = state.convs.get(convId);
  const ui = { menu: null, picker: null, editing: null, focus: null, members: false };
  const els = new Map(); // key → {el, rev}

  const title = h("h2", { testid: "conversation-title", id: "conv-title", class: "conv-title", text: conversationName(conv) });
  const headerStart = h("div", { class: "conv-header-start" });
  if (phone) headerStart.append(h("button", { type: "button", testid: "back", class: "icon back", attrs: { "aria-label": t("action.back") }, text: "←", on: { click: () => actions.back() } }));
  if (conv.kind === "dm") headerStart.append(presenceDot(conv.dm_peer_id));
  headerStart.append(title);
  const topic = h("p", { class: "topic muted", text: conv.topic || "", hidden: !conv.topic });
  const membersBtn = h("button", {
    type: "button", testid: "members-button", class: "secondary",
    attrs: { "aria-expanded": "false" }, text: t("members.button"),
    on: { click: () => toggleMembers() },
  });
  const header = h("header", { class: "conv-header" }, h("div", { class: "conv-header-main" }, headerStart, topic), membersBtn);

  const ol = h("ol", { class: "messages" });
  const older = h("p", { class: "muted center older", text: "" });
  const list = h("div", {
    testid: "message-list", class: "message-list", tabIndex: 0,
    attrs: { role: "log", "aria-labelledby": "conv-title", "aria-live": "polite" },
  }, older, ol);
  const typing = h("p", { testid: "typing", class: "typing muted", attrs: { "aria-live": "polite" } });
  const archivedNote = h("p", { testid: "read-only-note", class: "archived-note", hidden: true });
  function renderNote() {
    // Why the composer is off, if it is: archived, a read-only member, an announcement channel.
    const c = state.convs.get(convId) || conv;
    const mod = c.my_role === "owner" || c.my_role === "moderator";
    const key = c.archived ? "conversation.archived"
      : c.my_role === "reader" ? "conversation.readOnly"
        : c.announcement && !mod ? "conversation.announcementOnly" : null;
    archivedNote.hidden = !key;
    archivedNote.dataset.reason = key ? key.split(".")[1] : "";
    archivedNote.textContent = key ? t(key) : "";
  }
  renderNote();
  const comp = composer({
    scope, convId, testid: "composer", sendTestid: "send", draftKey: convId, actions,
    label: t("composer.label", { name: conversationName(conv) }), placeholder: t("composer.placeholder"),
  });
  comp.refresh();
  const membersSlot = h("div", { class: "members-slot" });
  const body = h("div", { class: "conv-body" }, h("div", { class: "conv-main" }, list, typing, archivedNote, comp.el), membersSlot);
  const view = h("section", { testid: "conversation-view", class: "conversation", data: { id: convId }, attrs: { "aria-labelledby": "conv-title" } }, header, body);

  const ctx = { ui, actions, testid: "message", rerender: (key) => renderList({ force: key }) };
  let stickToBottom = true;

  function renderList({ force = null } = {}) {
    const msgs = orderedMessages(convId);
    const wasNear = list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_BOTTOM;
    const keep = new Set();
    let prev = null;
    for (const m of msgs) {
      const key = m.sender_id === state.me.id ? `c:${m.client_msg_id}` : `i:${m.id}`;
      keep.add(key);
      let entry = els.get(key);
      if (!entry || entry.rev !== m._rev || force === key || force === "*") {
        const el = renderMessage(m, key, ctx);
        if (entry) entry.el.replaceWith(el);
        entry = { el, rev: m._rev };
        els.set(key, entry);
      }
      const want = prev ? prev.nextSibling : ol.firstChild;
      if (want !== entry.el) ol.insertBefore(entry.el, want);
      prev = entry.el;
    }
    for (const [key, entry] of els) if (!keep.has(key)) { entry.el.remove(); els.delete(key); }
    updateSeenBy(msgs);
    const h_ = historyOf(convId);
    older.textContent = h_.loading ? t("history.loading") : (!h_.hasOlder && h_.loaded ? t("history.start") : "");
    if (ui.focus) {
      const target = (force && els.get(force)?.el.querySelector(ui.focus)) || null;
      ui.focus = null;
      if (target) target.focus();
    }
    if (stickToBottom || wasNear) list.scrollTop = list.scrollHeight;
    stickToBottom = false;
    actions.markRead(convId);
  }

  /** "Seen by" under my newest sent message, from the members' read markers (DMs and groups). */
  function updateSeenBy(msgs) {
    for (const old of ol.querySelectorAll("[data-testid=seen-by]")) old.remove();
    if (conv.kind === "channel") return;
    const mine = [...msgs].reverse().find((m) => m.sender_id === state.me.id && m.seq && !m.recalled);
    if (!mine) return;
    const readers = [...membersOf(convId).values()]
      .filter((mem) => mem.user_id !== state.me.id && mem.last_read_seq >= mine.seq)
      .map((mem) => displayName(mem.user_id));
    if (!readers.length) return;
    const el = els.get(`c:${mine.client_msg_id}`)?.el;
    el?.append(h("p", { testid: "seen-by", class: "seen-by muted", text: conv.kind === "dm" ? t("seen.dm", { names: formatList(readers) }) : t("seen.group", { names: formatList(readers) }) }));
  }

  function renderTyping() {
    const ids = typists(convId);
    const names = ids.map(displayName);
    typing.textContent = names.length === 0 ? "" : names.length === 1 ? t("typing.one", { name: names[0] })
      : names.length <= 3 ? t("typing.many", { names: formatList(names) }) : t("typing.several");
    typing.classList.toggle("active", names.length > 0);
  }

  function toggleMembers(force) {
    ui.members = force ?? !ui.members;
    membersBtn.setAttribute("aria-expanded", String(ui.members));
    membersSlot.replaceChildren();
    if (ui.members) {
      membersSlot.append(memberPanel(scope, convId, () => { toggleMembers(false); membersBtn.focus(); }));
    }
  }

  list.addEventListener("scroll", async () => {
    if (list.scrollTop > 40) return;
    const h_ = historyOf(convId);
    if (!h_.hasOlder || h_.loading || !h_.loaded) return;
    const before = list.scrollHeight;
    older.textContent = t("history.loading");
    const n = await actions.loadOlder(convId);
    // Keep the message that was at the top where it was.
    if (n) list.scrollTop += list.scrollHeight - before;
  });

  // Close an open menu on Escape or a click elsewhere.
  view.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape") return;
    if (ui.menu || ui.picker) {
      const key = ui.menu || ui.picker;
      ui.menu = ui.picker = null;
      ui.focus = "[data-testid=message-actions]";
      renderList({ force: key });
    } else if (ui.members) {
      toggleMembers(false);
      membersBtn.focus();
    }
  });
  const outside = (ev) => {
    if (!(ui.menu || ui.picker) || ev.target.closest?.(".actions")) return;
    const key = ui.menu || ui.picker;
    ui.menu = ui.picker = null;
    renderList({ force: key });
  };
  document.addEventListener("click", outside);
  scope.add(() => document.removeEventListener("click", outside));

  scope.on(`messages:${convId}`, () => renderList());
  scope.on(`members:${convId}`, () => { renderList(); });
  scope.on("users", () => { title.textContent = conversationName(conv); renderList({ force: "*" }); renderTyping(); });
  scope.on(`typing:${convId}`, renderTyping);
  scope.on("convs", () => {
    title.textContent = conversationName(conv);
    renderNote();
    comp.refresh();
  });
  scope.on("visible", () => actions.markRead(convId));
  scope.on("presence", () => refreshPresenceDots(header));

  queueMicrotask(() => { renderList(); renderTyping(); });
  return { el: view, focus: () => comp.box.focus() };
}

// What the views can do. Each action changes the server through REST or the socket and the
// store through sync.js, so views stay free of protocol details.
import { api } from "./api.js";
import { state, emit, putMessage, updateMessage, historyOf, orderedMessages } from "./store.js";
import * as sync from "./sync.js";
import * as outbox from "./outbox.js";

let stream = null;
let signOut = () => {};
const readSent = new Map(); // conversation id → seq last sent in a read request

export function init(s, { onSignOut }) {
  stream = s;
  signOut = onSignOut;
}

export const actions = {
  open(id) {
    if (id && !state.convs.has(id)) id = null;
    if (state.openId === id) return;
    state.openId = id;
    if (state.thread && state.thread.convId !== id) state.thread = null;
    const hash = id ? `#/c/${id}` : "#/";
    if (location.hash !== hash) history.replaceState(null, "", hash);
    emit("open");
    emit("thread");
    if (!id) return;
    const h = historyOf(id);
    if (!h.loaded) sync.loadHistory(id).catch(() => {});
    sync.loadMembers(id).catch(() => {});
  },

  back() {
    actions.open(null);
  },

  /** Mark read up to the newest message shown, when the conversation is open and the tab visible. */
  markRead(convId) {
    const c = state.convs.get(convId);
    if (!c || state.openId !== convId || document.visibilityState !== "visible") return;
    if (!historyOf(convId).loaded) return;
    const shown = orderedMessages(convId).reduce((max, m) => Math.max(max, m.seq || 0), 0);
    // Thread replies count as unread too; the newest one is shown as the list preview.
    const seq = Math.max(shown, c.last_message?.seq || 0);
    if (seq <= c.last_read_seq && !c.unread_count) return;
    if (seq <= (readSent.get(convId) || 0) && seq <= c.last_read_seq) return;
    c.last_read_seq = Math.max(c.last_read_seq, seq);
    c.unread_count = 0;
    c.mention_count = 0;
    emit("convs");
    if (seq <= (readSent.get(convId) || 0)) return;
    readSent.set(convId, seq);
    const done = stream?.ready
      ? stream.request({ type: "read", conversation_id: convId, seq })
      : api.markRead(convId, seq);
    done.catch(() => readSent.delete(convId));
  },

  send(convId, text, threadRootId = null) {
    outbox.send(convId, text, threadRootId);
  },

  retry(clientMsgId) {
    outbox.retry(clientMsgId);
  },

  discard(clientMsgId) {
    outbox.discard(clientMsgId);
  },

  typing(convId, threadRootId = null) {
    const frame = { type: "typing", conversation_id: convId };
    if (threadRootId) frame.thread_root_id = threadRootId;
    stream?.send(frame);
  },

  async edit(m, text) {
    putMessage(await api.edit(m.id, text));
  },

  async recall(m) {
    try {
      putMessage(await api.recall(m.id));
    } catch { /* the message stays; the menu can be used again */ }
  },

  async toggleReaction(m, emoji) {
    const mine = m.reactions?.find((r) => r.emoji === emoji)?.user_ids.includes(state.me.id);
    try {
      const { reactions } = mine ? await api.unreact(m.id, emoji) : await api.react(m.id, emoji);
      updateMessage(m.conversation_id, m.id, () => ({ reactions }));
    } catch { /* unchanged */ }
  },

  async openThread(convId, rootId) {
    try {
      await sync.openThread(convId, rootId);
    } catch {
      actions.closeThread();
    }
  },

  closeThread() {
    state.thread = null;
    emit("thread");
    document.querySelector("[data-testid=composer]")?.focus();
  },

  loadOlder(convId) {
    return sync.loadHistory(convId, { older: true }).catch(() => 0);
  },

  async createConversation(body) {
    const c = await api.createConversation(body);
    sync.addConversation(c);
    actions.open(c.id);
  },

  async joinChannel(id) {
    if (!state.convs.has(id)) sync.addConversation(await api.join(id));
    actions.open(id);
  },

  async logout() {
    try {
      await api.logout();
    } catch { /* the token is dropped either way */ }
    signOut();
  },
};

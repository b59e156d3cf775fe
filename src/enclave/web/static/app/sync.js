// Loading from REST and applying server frames to the store. Every stored event is applied at
// most once: an event whose seq is not above the conversation's cursor was already applied.
import { api } from "./api.js";
import {
  state, emit, putMessage, updateMessage, historyOf, saveCursors, findMessage, removeMessages,
} from "./store.js";
import { settle } from "./outbox.js";

let stream = null;
const hooks = { onMessage: () => {}, onRemoved: () => {} };

export function attach(s, h = {}) {
  stream = s;
  Object.assign(hooks, h);
}

// -- REST loaders ----------------------------------------------------------------------------------

export async function loadUsers() {
  let after = "";
  for (;;) {
    const { users } = await api.users(after);
    for (const u of users) state.users.set(u.id, u);
    if (users.length < 1000) break;
    after = users[users.length - 1].username;
  }
  emit("users");
}

// What I may do in my organization (docs/permissions.md, "Capabilities"): the tools shown
// follow it. Asked at start, when my role or department changes, and by the People screen.
export async function loadCapabilities() {
  state.caps = await api.capabilities();
}

const asking = new Set();
export async function ensureUser(id) {
  if (!id || state.users.has(id) || asking.has(id)) return;
  asking.add(id);
  try {
    state.users.set(id, await api.user(id));
    emit("users");
    emit("convs");
  } catch { /* not visible to us: shown as "…" */ } finally {
    asking.delete(id);
  }
}

/**
 * The list from REST is a snapshot up to each conversation's last_seq. On the first load the
 * cursor starts there (there is no cached history to patch); later loads only set cursors for
 * conversations that have none, so that a live catch-up is never cut short.
 */
export async function loadConversations({ initial = false } = {}) {
  const { conversations } = await api.conversations();
  const seen = new Set();
  for (const c of conversations) {
    seen.add(c.id);
    const old = state.convs.get(c.id);
    if (!old || c.last_seq >= old.last_seq) state.convs.set(c.id, c);
    const cur = state.cursors[c.id];
    if (cur === undefined || (initial && cur < c.last_seq)) state.cursors[c.id] = c.last_seq;
    if (c.dm_peer_id) ensureUser(c.dm_peer_id);
  }
  for (const id of [...state.convs.keys()]) if (!seen.has(id)) dropConversation(id);
  saveCursors();
  watchPresence(conversations.map((c) => c.dm_peer_id).filter(Boolean));
  emit("convs");
}

const refreshing = new Map();
/** Re-read one conversation's summary (unread counts after a recall or a read elsewhere). */
export function refreshConversation(id) {
  clearTimeout(refreshing.get(id));
  refreshing.set(id, setTimeout(async () => {
    refreshing.delete(id);
    try {
      const c = await api.conversation(id);
      const old = state.convs.get(id);
      if (old && c.last_seq < old.last_seq) return; // older than what events already told us
      state.convs.set(id, c);
      if (state.cursors[id] === undefined) state.cursors[id] = c.last_seq;
      if (c.dm_peer_id) { ensureUser(c.dm_peer_id); watchPresence([c.dm_peer_id]); }
      emit("convs");
    } catch (err) {
      if (err.code === "not_found") dropConversation(id);
    }
  }, 150));
}

export function addConversation(c) {
  state.convs.set(c.id, c);
  if (state.cursors[c.id] === undefined) state.cursors[c.id] = c.last_seq;
  saveCursors();
  if (c.dm_peer_id) { ensureUser(c.dm_peer_id); watchPresence([c.dm_peer_id]); }
  emit("convs");
}

export function dropConversation(id) {
  state.convs.delete(id);
  state.history.delete(id);
  state.members.delete(id);
  delete state.cursors[id];
  saveCursors();
  hooks.onRemoved(id);
  emit("convs");
}

export const PAGE = 50;

/** Newest page (first open) or the page before the oldest loaded message. */
export async function loadHistory(convId, { older = false } = {}) {
  const h = historyOf(convId);
  if (h.loading || (older && !h.hasOlder)) return 0;
  h.loading = true;
  try {
    let before_seq;
    if (older) {
      const seqs = [...h.byKey.values()].filter((m) => !m.thread_root_id && m.seq).map((m) => m.seq);
      before_seq = seqs.length ? Math.min(...seqs) : undefined;
    }
    const { messages } = await api.messages(convId, { before_seq, limit: PAGE, include_replies: false });
    for (const m of messages) putMessage(m);
    h.hasOlder = messages.length === PAGE;
    h.loaded = true;
    emit(`messages:${convId}`);
    return messages.length;
  } finally {
    h.loading = false;
  }
}

export async function loadMembers(convId) {
  const map = new Map();
  let after = "";
  for (;;) {
    const { members } = await api.members(convId, after);
    for (const m of members) map.set(m.user_id, m);
    if (members.length < 1000) break;
    after = members[members.length - 1].user_id;
  }
  state.members.set(convId, map);
  for (const id of map.keys()) ensureUser(id);
  watchPresence([...map.keys()]);
  emit(`members:${convId}`);
}

export async function openThread(convId, rootId) {
  state.thread = { convId, rootId, root: findMessage(convId, rootId), replies: new Map(), loaded: false };
  emit("thread");
  const { root, replies } = await api.thread(rootId);
  if (state.thread?.rootId !== rootId) return;
  state.thread.root = root;
  putMessage(root);
  for (const m of replies) putMessage(m);
  state.thread.loaded = true;
  emit("thread");
}

// -- presence ------------------------------------------------------------------------------------

const watched = new Set();
export function watchPresence(ids) {
  const fresh = ids.filter((id) => id && id !== state.me?.id && !watched.has(id));
  for (const id of fresh) watched.add(id);
  if (fresh.length && stream?.ready) subscribe(fresh);
}

function subscribe(ids) {
  for (let i = 0; i < ids.length; i += 500) {
    stream.request({ type: "presence.subscribe", user_ids: ids.slice(i, i + 500) })
      .then((f) => {
        for (const [id, status] of Object.entries(f.statuses || {})) state.presence.set(id, status);
        emit("presence");
      })
      .catch(() => {});
  }
}

export function resetPresence() {
  watched.clear();
}

// -- frames ---------------------------------------------------------------------------------------

export function applyFrame(f) {
  switch (f.type) {
    case "ready": return onReady(f);
    case "synced": state.synced = true; return emit("synced");
    case "resync":
      state.cursors[f.conversation_id] = f.seq;
      saveCursors();
      return reloadConversation(f.conversation_id);
    case "conversation.removed": return dropConversation(f.conversation_id);
    case "typing": return onTyping(f);
    case "presence":
      state.presence.set(f.user_id, f.status);
      return emit("presence");
    case "account.updated": return onAccountUpdated(f.user);
    default:
      if (f.conversation_id && typeof f.seq === "number" && f.data) applyEvent(f);
  }
}

function onReady(f) {
  state.synced = false;
  for (const id of f.removed || []) dropConversation(id);
  for (const [id, seq] of Object.entries(f.resync || {})) {
    state.cursors[id] = seq;
    reloadConversation(id);
  }
  const fresh = Object.entries(f.cursors || {});
  // A cursor never moves back: `ready.cursors` names conversations the hello did not list,
  // and an event of one of them may already have been applied here.
  for (const [id, seq] of fresh) {
    const cur = state.cursors[id];
    if (cur === undefined || seq > cur) state.cursors[id] = seq;
  }
  saveCursors();
  if (fresh.length) loadConversations().catch(() => {});
  // Presence subscriptions belong to a connection: renew them on every connect.
  if (watched.size) subscribe([...watched]);
}

// My org role or department changed (docs/protocol.md): the tools shown depend on them.
function onAccountUpdated(user) {
  if (!user || user.id !== state.me?.id) return;
  state.me = { ...state.me, ...user };
  if (state.users.has(user.id)) state.users.set(user.id, { ...state.users.get(user.id), ...user });
  emit("me");
}

function reloadConversation(id) {
  refreshConversation(id);
  const h = state.history.get(id);
  if (h?.loaded || state.openId === id) {
    state.history.delete(id);
    if (state.openId === id) loadHistory(id).catch(() => {});
  }
  if (state.members.has(id)) loadMembers(id).catch(() => {});
}

function applyEvent(ev) {
  const convId = ev.conversation_id;
  const cur = state.cursors[convId];
  if (cur !== undefined && ev.seq <= cur) return; // already applied
  state.cursors[convId] = ev.seq;
  saveCursors();
  const me = state.me.id;
  const d = ev.data;
  let c = state.convs.get(convId);
  if (!c) {
    if (ev.type === "member.left" && d.user_id === me) return;
    refreshConversation(convId); // a conversation we were just added to
  }
  // Summary fields count only events newer than the REST snapshot they started from.
  const fresh = c && ev.seq > c.last_seq;
  if (fresh) c.last_seq = ev.seq;
  const members = state.members.get(convId);
  switch (ev.type) {
    case "conversation.created":
    case "conversation.updated":
      if (c && d.conversation) {
        const { last_seq, ...rest } = d.conversation;
        Object.assign(c, rest);
      }
      break;
    case "conversation.archived":
    case "conversation.unarchived":
      if (c) c.archived = ev.type === "conversation.archived";
      break;
    case "member.joined":
    case "member.role_changed":
      if (members) {
        const old = members.get(d.user_id);
        members.set(d.user_id, { user_id: d.user_id, role: d.role, joined_at: old?.joined_at ?? ev.created_at, last_read_seq: old?.last_read_seq ?? 0 });
        watchPresence([d.user_id]);
      }
      if (c && d.user_id === me && ev.type === "member.role_changed") {
        c.my_role = d.role; // e.g. made read-only, or a moderator of an announcement channel
        emit("convs");
      }
      ensureUser(d.user_id);
      emit(`members:${convId}`);
      break;
    case "member.left":
      if (d.user_id === me) return dropConversation(convId);
      members?.delete(d.user_id);
      emit(`members:${convId}`);
      break;
    case "message.created": {
      const m = d.message;
      putMessage(m);
      if (m.sender_id === me) settle(m.client_msg_id);
      ensureUser(m.sender_id);
      if (d.thread) updateMessage(convId, d.thread.root_id, () => ({ reply_count: d.thread.reply_count, last_reply_at: d.thread.last_reply_at }));
      stopTyping(convId, m.sender_id);
      if (fresh) {
        c.last_message = m;
        if (m.sender_id !== me && m.seq > c.last_read_seq) {
          c.unread_count = (c.unread_count || 0) + 1;
          if (m.mentions?.includes(me)) c.mention_count = (c.mention_count || 0) + 1;
        }
      }
      if (c && m.sender_id !== me) hooks.onMessage(c, m);
      break;
    }
    case "message.edited":
      putMessage(d.message);
      if (c?.last_message?.id === d.message.id) c.last_message = d.message;
      break;
    case "message.recalled":
      updateMessage(convId, d.message_id, () => ({ recalled: true, text: null, recalled_at: d.recalled_at }));
      if (c?.last_message?.id === d.message_id) c.last_message = { ...c.last_message, recalled: true, text: null };
      if (c?.unread_count) refreshConversation(convId);
      break;
    case "reaction.added":
    case "reaction.removed":
      updateMessage(convId, d.message_id, (m) => ({ reactions: applyReaction(m.reactions || [], d, ev.type === "reaction.added") }));
      break;
    case "messages.purged": {
      // Retention removed these messages (docs/protocol.md): drop them everywhere.
      const ids = d.message_ids || [];
      removeMessages(convId, ids);
      if (c?.last_message && ids.includes(c.last_message.id)) refreshConversation(convId);
      break;
    }
    case "read.moved":
      if (members?.has(d.user_id)) {
        const mem = members.get(d.user_id);
        members.set(d.user_id, { ...mem, last_read_seq: Math.max(mem.last_read_seq, d.seq) });
        emit(`members:${convId}`);
      }
      if (d.user_id === me && c && d.seq > c.last_read_seq) {
        c.last_read_seq = d.seq;
        if (d.seq >= (c.last_message?.seq ?? 0)) { c.unread_count = 0; c.mention_count = 0; } else refreshConversation(convId);
      }
      break;
    default:
      break;
  }
  emit("convs");
}

/** Reactions are sets of users per emoji, so applying an event twice changes nothing. */
export function applyReaction(reactions, { emoji, user_id }, add) {
  const list = reactions.map((r) => ({ ...r, user_ids: [...r.user_ids] }));
  let r = list.find((x) => x.emoji === emoji);
  if (add) {
    if (!r) list.push((r = { emoji, count: 0, user_ids: [] }));
    if (!r.user_ids.includes(user_id)) r.user_ids.push(user_id);
  } else if (r) {
    r.user_ids = r.user_ids.filter((u) => u !== user_id);
  }
  for (const x of list) x.count = x.user_ids.length;
  return list.filter((x) => x.count > 0);
}

// -- typing ---------------------------------------------------------------------------------------

const TYPING_MS = 5000;
function onTyping(f) {
  if (f.user_id === state.me?.id) return;
  if (!state.typing.has(f.conversation_id)) state.typing.set(f.conversation_id, new Map());
  state.typing.get(f.conversation_id).set(f.user_id, { until: Date.now() + TYPING_MS, thread: f.thread_root_id || null });
  ensureUser(f.user_id);
  emit(`typing:${f.conversation_id}`);
  setTimeout(() => emit(`typing:${f.conversation_id}`), TYPING_MS + 50);
}

function stopTyping(convId, userId) {
  if (state.typing.get(convId)?.delete(userId)) emit(`typing:${convId}`);
}

/** Ids of the people typing now in a conversation (or one thread of it). */
export function typists(convId, thread = null) {
  const now = Date.now();
  const map = state.typing.get(convId);
  if (!map) return [];
  return [...map.entries()].filter(([, v]) => v.until > now && v.thread === thread).map(([id]) => id);
}

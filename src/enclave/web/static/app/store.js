// Client state and change notifications. Views subscribe to topics and re-render what changed;
// sync.js and outbox.js are the only writers of server-derived state.

const listeners = new Map(); // topic → Set(fn)

export function on(topic, fn) {
  if (!listeners.has(topic)) listeners.set(topic, new Set());
  listeners.get(topic).add(fn);
  return () => listeners.get(topic)?.delete(fn);
}

// Emits are batched in a microtask: several changes made by one frame or one REST answer render once.
const queued = new Set();
let scheduled = false;
export function emit(topic) {
  queued.add(topic);
  if (scheduled) return;
  scheduled = true;
  queueMicrotask(() => {
    scheduled = false;
    const topics = [...queued];
    queued.clear();
    for (const tp of topics) for (const fn of listeners.get(tp) || []) fn(tp);
  });
}

export const state = {
  me: null,
  // What I may do in my organization (GET /users/me/capabilities): the tools shown follow it.
  caps: null,
  users: new Map(), // id → user
  convs: new Map(), // id → conversation summary (REST shape, kept current by events)
  cursors: {}, // conversation id → seq of the last event applied
  history: new Map(), // conversation id → {byKey: Map, loaded, hasOlder, loading}
  members: new Map(), // conversation id → Map(user id → member)
  presence: new Map(), // user id → "online" | "away" | "offline"
  typing: new Map(), // conversation id → Map(user id → {until, thread})
  drafts: new Map(), // conversation id (or "t:" + root id) → text
  openId: null, // open conversation
  thread: null, // {rootId, convId, root, replies: Map, loaded}
  connection: "connecting",
  synced: false,
};

// -- persistence of cursors (per user, so two accounts on one browser do not mix) ---------------

const cursorKey = () => `enclave.cursors.${state.me?.id}`;

export function loadCursors() {
  try {
    state.cursors = JSON.parse(localStorage.getItem(cursorKey()) || "{}") || {};
  } catch {
    state.cursors = {};
  }
}

let saveTimer = null;
export function saveCursors() {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(() => localStorage.setItem(cursorKey(), JSON.stringify(state.cursors)), 200);
}

export function reset() {
  state.me = null;
  state.caps = null;
  for (const key of ["users", "convs", "history", "members", "presence", "typing", "drafts"]) state[key].clear();
  state.cursors = {};
  state.openId = null;
  state.thread = null;
  state.synced = false;
}

// -- selectors ------------------------------------------------------------------------------------

/** How far an org action (docs/permissions.md) reaches for me: "org", "subtree" or "none". */
export function reach(action) {
  return state.caps?.actions?.[action] || "none";
}

/** Whether I may take an org action at all (somewhere in my organization). */
export const may = (action) => reach(action) !== "none";

export function userName(id) {
  const u = state.users.get(id);
  return u ? u.display_name || u.username : "…";
}

/** The key a message is kept under: my own by client_msg_id (stable from pending to sent). */
export function msgKey(m) {
  return m.sender_id === state.me?.id ? `c:${m.client_msg_id}` : `i:${m.id}`;
}

export function historyOf(convId) {
  if (!state.history.has(convId)) {
    state.history.set(convId, { byKey: new Map(), loaded: false, hasOlder: true, loading: false });
  }
  return state.history.get(convId);
}

/** Top-level messages of a conversation in display order: by seq, pending ones last. */
export function orderedMessages(convId) {
  const h = state.history.get(convId);
  if (!h) return [];
  const list = [...h.byKey.values()].filter((m) => !m.thread_root_id);
  return list.sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity) || (a._local ?? 0) - (b._local ?? 0));
}

export function activityOf(c) {
  return c.last_message?.created_at ?? c.created_at;
}

export function totalUnread() {
  let n = 0;
  for (const c of state.convs.values()) n += c.unread_count || 0;
  return n;
}

export function membersOf(convId) {
  return state.members.get(convId) || new Map();
}

/** Merge a message into the store (REST page, event or ack); bumps _rev so views re-render. */
export function putMessage(m, { local = false } = {}) {
  const h = historyOf(m.conversation_id);
  const key = msgKey(m);
  const old = h.byKey.get(key);
  let next = m;
  if (old && !local) {
    // An older copy (e.g. a REST page fetched before an edit event) must not undo newer state.
    const stale = (old.recalled && !m.recalled) || (old.edited_at || 0) > (m.edited_at || 0);
    next = stale ? { ...m, text: old.text, recalled: old.recalled, edited_at: old.edited_at } : { ...old, ...m };
    next._state = "sent";
  } else if (!local) {
    next = { ...m, _state: "sent" };
  }
  next._rev = (old?._rev || 0) + 1;
  h.byKey.set(key, next);
  if (state.thread && (m.thread_root_id === state.thread.rootId)) {
    state.thread.replies.set(key, next);
    emit("thread");
  }
  if (state.thread && m.id && m.id === state.thread.rootId) {
    state.thread.root = next;
    emit("thread");
  }
  emit(`messages:${m.conversation_id}`);
  return next;
}

/** Find a stored message by server id (history and the open thread). */
export function findMessage(convId, id) {
  const h = state.history.get(convId);
  if (h) for (const m of h.byKey.values()) if (m.id === id) return m;
  if (state.thread) {
    if (state.thread.root?.id === id) return state.thread.root;
    for (const m of state.thread.replies.values()) if (m.id === id) return m;
  }
  return null;
}

/** Drop messages that retention purged (a `messages.purged` event) wherever they are kept. */
export function removeMessages(convId, ids) {
  const gone = new Set(ids);
  const h = state.history.get(convId);
  if (h) for (const [key, m] of [...h.byKey]) if (m.id && gone.has(m.id)) h.byKey.delete(key);
  if (state.thread && state.thread.convId === convId) {
    if (state.thread.root && gone.has(state.thread.root.id)) state.thread = null;
    else for (const [key, m] of [...state.thread.replies]) if (gone.has(m.id)) state.thread.replies.delete(key);
    emit("thread");
  }
  emit(`messages:${convId}`);
}

/** Apply a change to a stored message wherever it is kept (history and thread). */
export function updateMessage(convId, id, change) {
  const m = findMessage(convId, id);
  if (!m) return;
  const next = { ...m, ...change(m), _rev: (m._rev || 0) + 1 };
  const key = msgKey(next);
  const h = state.history.get(convId);
  if (h?.byKey.has(key)) h.byKey.set(key, next);
  if (state.thread) {
    if (state.thread.root?.id === id) state.thread.root = next;
    if (state.thread.replies.has(key)) state.thread.replies.set(key, next);
    emit("thread");
  }
  emit(`messages:${convId}`);
}

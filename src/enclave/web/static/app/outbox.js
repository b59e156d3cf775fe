// Sending. A message is shown at once as pending, kept in a queue persisted in localStorage
// (so it survives a reload or a network drop) and sent over the socket when it is online. The
// client_msg_id never changes, so a resend after a lost ack returns the original message
// instead of a duplicate (docs/protocol.md, "send").
import { state, emit, putMessage, historyOf } from "./store.js";

const TRANSIENT = new Set(["offline", "disconnected", "stopped"]);
let stream = null;
let queue = [];
let sending = false;

const storageKey = () => `enclave.outbox.${state.me.id}`;

function save() {
  localStorage.setItem(storageKey(), JSON.stringify(queue));
}

export function newClientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `w-${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

function asMessage(e) {
  return {
    id: null, conversation_id: e.conversation_id, seq: null, sender_id: state.me.id,
    client_msg_id: e.client_msg_id, text: e.text, thread_root_id: e.thread_root_id || null,
    created_at: e.at, edited_at: null, recalled: false, recalled_at: null, reply_count: 0,
    last_reply_at: null, mentions: [], reactions: [],
    _state: e.failed ? "failed" : "pending", _error: e.error || null, _local: e.at,
  };
}

/** Restore unsent messages of this user (from before a reload) and show them as pending. */
export function init(s) {
  stream = s;
  try {
    queue = JSON.parse(localStorage.getItem(storageKey()) || "[]") || [];
  } catch {
    queue = [];
  }
  queue = queue.filter((e) => state.convs.has(e.conversation_id));
  for (const e of queue) putMessage(asMessage(e), { local: true });
}

export function send(conversationId, text, threadRootId = null) {
  const e = { conversation_id: conversationId, client_msg_id: newClientId(), text, thread_root_id: threadRootId, at: Date.now(), failed: false };
  queue.push(e);
  save();
  putMessage(asMessage(e), { local: true });
  flush();
  return e.client_msg_id;
}

/** Send a failed message again with the same client_msg_id. */
export function retry(clientMsgId) {
  const e = queue.find((x) => x.client_msg_id === clientMsgId);
  if (!e) return;
  e.failed = false;
  e.error = null;
  save();
  putMessage(asMessage(e), { local: true });
  flush();
}

/** The message came back as an event (possibly before its ack): it is stored. */
export function settle(clientMsgId) {
  const before = queue.length;
  queue = queue.filter((x) => x.client_msg_id !== clientMsgId);
  if (queue.length !== before) save();
}

/** Drop a failed message for good (e.g. one the server will never accept). */
export function discard(clientMsgId) {
  const e = queue.find((x) => x.client_msg_id === clientMsgId);
  if (!e) return;
  settle(clientMsgId);
  const h = historyOf(e.conversation_id);
  h.byKey.delete(`c:${clientMsgId}`);
  if (state.thread) state.thread.replies.delete(`c:${clientMsgId}`);
  emit(`messages:${e.conversation_id}`);
  emit("thread");
}

export function forget(conversationId) {
  queue = queue.filter((x) => x.conversation_id !== conversationId);
  save();
}

/** Send queued messages one at a time, in order (the server stores concurrent sends in any order). */
export async function flush() {
  if (sending || !stream?.ready) return;
  sending = true;
  try {
    while (stream.ready) {
      const e = queue.find((x) => !x.failed);
      if (!e) break;
      try {
        const frame = { type: "send", conversation_id: e.conversation_id, client_msg_id: e.client_msg_id, text: e.text };
        if (e.thread_root_id) frame.thread_root_id = e.thread_root_id;
        const ack = await stream.request(frame);
        settle(e.client_msg_id);
        confirm(e, ack);
      } catch (err) {
        if (TRANSIENT.has(err.code)) break; // resent with the same id once the socket is back
        if (err.code === "rate_limited") {
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        e.failed = true;
        e.error = err.code || "failed";
        save();
        putMessage(asMessage(e), { local: true });
      }
    }
  } finally {
    sending = false;
  }
}

function confirm(e, ack) {
  const h = historyOf(e.conversation_id);
  const key = `c:${e.client_msg_id}`;
  const m = h.byKey.get(key);
  if (m && m._state !== "sent") {
    putMessage({ ...m, id: ack.message_id, seq: ack.seq, created_at: ack.created_at });
  }
}

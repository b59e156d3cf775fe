// The one WebSocket of the page (docs/protocol.md): hello with cursors → ready → catch-up →
// synced, then live events. Reconnects with exponential backoff and jitter and resumes from the
// cursors, so nothing is lost or doubled; the store decides what an event means.

const FATAL = { 4000: "bad_frame", 4001: "unauthenticated", 4003: "password_change_required", 4010: "session_revoked" };
const BASE_DELAY = 250;
const MAX_DELAY = 10_000;
const ACK_TIMEOUT = 15_000;

export class Stream {
  /**
   * token(): the bearer token; cursors(): {conversation id: seq};
   * onFrame(frame): every server frame; onState(state): "connecting" | "online" | "offline";
   * onFatal(code): the session cannot continue (log in again / change password).
   */
  constructor({ token, cursors, onFrame, onState, onFatal, onReady }) {
    Object.assign(this, { token, cursors, onFrame, onState, onFatal, onReady });
    this.ws = null;
    this.state = "connecting";
    this.failures = 0;
    this.stopped = true;
    this.timer = null;
    this.heartbeat = null;
    this.pending = new Map(); // req_id → {resolve, reject, timer}
    this.nextReq = 1;
    this.lastFrameAt = 0;
    this.heartbeatMs = 30_000;
    this._online = () => this.reconnectNow();
    this._offline = () => this.dropSocket();
  }

  start() {
    this.stopped = false;
    window.addEventListener("online", this._online);
    window.addEventListener("offline", this._offline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this._online);
    window.removeEventListener("offline", this._offline);
    clearTimeout(this.timer);
    clearInterval(this.heartbeat);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
    this.failAll("stopped");
  }

  get ready() {
    return this.state === "online";
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.onState(state);
  }

  /** Not online: "offline" when the browser says so or after repeated failures. */
  idleState() {
    return !navigator.onLine || this.failures >= 3 ? "offline" : "connecting";
  }

  connect() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.setState(this.idleState());
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/ws`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      // The token goes in the first frame, never in the URL (URLs end up in logs).
      ws.send(JSON.stringify({ type: "hello", token: this.token(), cursors: this.cursors() }));
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      this.lastFrameAt = Date.now();
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.handle(frame);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return;
      this.ws = null;
      clearInterval(this.heartbeat);
      this.failAll("disconnected");
      if (FATAL[ev.code]) {
        this.stopped = true;
        this.setState("offline");
        // 4003's reason says which set-up step is missing: the password change, MFA enrolment or
        // accepting new terms of use (a live socket is closed with it when terms are published).
        this.onFatal(ev.code === 4003 && ev.reason ? ev.reason : FATAL[ev.code]);
        return;
      }
      this.scheduleReconnect();
    };
  }

  handle(frame) {
    if (frame.type === "ready") {
      this.failures = 0;
      this.heartbeatMs = Math.max(5, frame.heartbeat_seconds || 30) * 1000;
      this.startHeartbeat();
      this.setState("online");
      this.onFrame(frame);
      if (this.onReady) this.onReady();
      return;
    }
    if ((frame.type === "ack" || frame.type === "error" || frame.type === "pong" || frame.type === "presence.state")
        && frame.req_id != null && this.pending.has(frame.req_id)) {
      const p = this.pending.get(frame.req_id);
      this.pending.delete(frame.req_id);
      clearTimeout(p.timer);
      if (frame.type === "error") p.reject(Object.assign(new Error(frame.message), { code: frame.code }));
      else p.resolve(frame);
    }
    this.onFrame(frame);
  }

  /** A dead network often closes nothing: ping, and drop the socket if nothing comes back. */
  startHeartbeat() {
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      if (!this.ready) return;
      if (Date.now() - this.lastFrameAt > this.heartbeatMs + 10_000) {
        this.dropSocket();
        return;
      }
      this.request({ type: "ping" }).catch(() => {});
    }, this.heartbeatMs / 2);
  }

  scheduleReconnect() {
    if (this.stopped) return;
    this.failures += 1;
    this.setState(this.idleState());
    const base = Math.min(MAX_DELAY, BASE_DELAY * 2 ** Math.min(this.failures - 1, 8));
    const delay = base / 2 + Math.random() * base / 2; // jitter: many clients do not return at once
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), navigator.onLine ? delay : MAX_DELAY);
  }

  /** Close the current socket and resume (browser went offline, or the link looks dead). */
  dropSocket() {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    clearInterval(this.heartbeat);
    try {
      ws.close(4100);
    } catch { /* already closing */ }
    this.failAll("disconnected");
    this.scheduleReconnect();
  }

  reconnectNow() {
    if (this.stopped || this.ws) return;
    this.failures = Math.min(this.failures, 1);
    this.connect();
  }

  /** Send a frame without waiting for an answer; false when not connected. */
  send(frame) {
    if (!this.ready || !this.ws) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Send a frame with a req_id; resolves with its ack (or presence.state/pong), rejects on error. */
  request(frame) {
    if (!this.ready || !this.ws) return Promise.reject(Object.assign(new Error("offline"), { code: "offline" }));
    const req_id = this.nextReq++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(req_id);
        reject(Object.assign(new Error("timeout"), { code: "timeout" }));
      }, ACK_TIMEOUT);
      this.pending.set(req_id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...frame, req_id }));
    });
  }

  failAll(code) {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(Object.assign(new Error(code), { code }));
    }
    this.pending.clear();
  }
}

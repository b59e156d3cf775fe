// REST client: JSON in and out, bearer token from localStorage, errors as ApiError with the
// server's stable code (clients branch on codes, never on messages; see docs/errors.md).

const TOKEN_KEY = "enclave.token";
const BASE = "/api/v1";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.status = status;
    this.code = code;
  }
}

let token = localStorage.getItem(TOKEN_KEY);
// Set by main.js: what to do when the session is gone (401), a new password is required, or the
// organization requires MFA that the account does not have yet.
const hooks = { authLost: () => {}, passwordChange: () => {}, mfaEnrollment: () => {}, termsRequired: () => {} };

export function setHooks(h) {
  Object.assign(hooks, h);
}

export function getToken() {
  return token;
}

export function setToken(value) {
  token = value;
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

export async function request(method, path, body, { quiet = false } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit", // bearer tokens only: no cookies, so no CSRF surface
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "network", String(err));
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const code = data?.error?.code || "http_error";
    const error = new ApiError(res.status, code, data?.error?.message);
    if (!quiet && res.status === 401 && path !== "/auth/login") hooks.authLost(error);
    if (!quiet && code === "password_change_required") hooks.passwordChange(error);
    if (!quiet && code === "mfa_enrollment_required") hooks.mfaEnrollment(error);
    if (!quiet && code === "terms_acceptance_required") hooks.termsRequired(error);
    throw error;
  }
  return data;
}

const q = (params) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") s.set(k, v);
  const str = s.toString();
  return str ? `?${str}` : "";
};
const enc = encodeURIComponent;

/**
 * Fetch a file the API sends (a zip, or a JSON document streamed) and hand it to the browser as
 * a download named `filename`. The token goes in the header, as for every call, so the file
 * cannot be fetched by a plain link.
 */
export async function download(method, path, filename) {
  let res;
  try {
    res = await fetch(BASE + path, {
      method, headers: token ? { Authorization: `Bearer ${token}` } : {}, credentials: "omit", cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "network", String(err));
  }
  if (!res.ok) {
    let data = null;
    try { data = await res.json(); } catch { data = null; }
    throw new ApiError(res.status, data?.error?.code || "http_error", data?.error?.message);
  }
  const url = URL.createObjectURL(await res.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export const api = {
  // `second` is {otp} or {recovery_code} for an account with MFA (after `mfa_required`).
  login: (username, password, second = {}) => request("POST", "/auth/login", { username, password, ...second }),
  logout: () => request("POST", "/auth/logout", undefined, { quiet: true }),
  me: () => request("GET", "/users/me"),
  capabilities: () => request("GET", "/users/me/capabilities"),
  changePassword: (current_password, new_password) =>
    request("POST", "/users/me/password", { current_password, new_password }),
  users: (after = "", limit = 1000) => request("GET", `/users${q({ after, limit })}`),
  user: (id) => request("GET", `/users/${enc(id)}`),
  sessions: () => request("GET", "/users/me/sessions"),
  revokeSession: (id) => request("DELETE", `/users/me/sessions/${enc(id)}`),
  revokeOtherSessions: () => request("DELETE", "/users/me/sessions"),
  mfaStatus: () => request("GET", "/users/me/mfa"),
  mfaStart: () => request("POST", "/users/me/mfa/totp"),
  mfaConfirm: (code) => request("POST", "/users/me/mfa/totp/confirm", { code }),
  mfaDisable: (password, code) => request("DELETE", "/users/me/mfa", { password, code }),
  mfaRegenerate: (code) => request("POST", "/users/me/mfa/recovery-codes", { code }),
  terms: () => request("GET", "/org/terms"),
  acceptTerms: (version) => request("POST", "/users/me/terms/accept", { version }),
  startExport: (body) => request("POST", "/compliance/exports", body),
  exports: (before = null) => request("GET", `/compliance/exports${q({ before, limit: 50 })}`),
  exportStatus: (id) => request("GET", `/compliance/exports/${enc(id)}`),
  downloadExport: (id) => download("GET", `/compliance/exports/${enc(id)}/download`, `enclave-export-${id}.zip`),
  downloadMyData: () => download("POST", "/users/me/export", "enclave-my-data.json"),

  conversations: () => request("GET", "/conversations"),
  conversation: (id) => request("GET", `/conversations/${enc(id)}`),
  createConversation: (body) => request("POST", "/conversations", body),
  channels: (after = "") => request("GET", `/channels${q({ after, limit: 200 })}`),
  join: (id) => request("POST", `/conversations/${enc(id)}/join`),
  members: (id, after = "") => request("GET", `/conversations/${enc(id)}/members${q({ after, limit: 1000 })}`),
  markRead: (id, seq) => request("POST", `/conversations/${enc(id)}/read`, { seq }),

  messages: (id, { before_seq, after_seq, limit = 50, include_replies = false } = {}) =>
    request("GET", `/conversations/${enc(id)}/messages${q({ before_seq, after_seq, limit, include_replies })}`),
  send: (id, body) => request("POST", `/conversations/${enc(id)}/messages`, body),
  edit: (mid, text) => request("PATCH", `/messages/${enc(mid)}`, { text }),
  recall: (mid) => request("DELETE", `/messages/${enc(mid)}`),
  thread: (mid, after_seq = 0) => request("GET", `/messages/${enc(mid)}/thread${q({ after_seq, limit: 1000 })}`),
  react: (mid, emoji) => request("PUT", `/messages/${enc(mid)}/reactions/${enc(emoji)}`),
  unreact: (mid, emoji) => request("DELETE", `/messages/${enc(mid)}/reactions/${enc(emoji)}`),
};

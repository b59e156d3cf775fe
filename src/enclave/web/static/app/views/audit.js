// The audit log screen (owners, admins and compliance officers): the organization's entries newest first, filters by
// action prefix and actor, older pages on demand, and a check of the whole hash chain.
// REST: GET /api/v1/admin/audit and /api/v1/admin/audit/verify (docs/protocol.md).
import { h } from "../dom.js";
import { t, formatTime, formatFull, formatNumber } from "../i18n.js";
import { request } from "../api.js";
import { state, may } from "../store.js";
import { openDialog, dialogHeader } from "./common.js";

const PAGE = 50;

export const canReadAudit = () => may("audit.read");

const q = (params) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") s.set(k, v);
  return s.toString() ? `?${s}` : "";
};

function userLabel(id, username) {
  if (!id) return t("audit.system");
  const u = state.users.get(id);
  if (u) return u.display_name || u.username;
  return username ? `@${username}` : id.slice(0, 8);
}

function targetLabel(e) {
  if (!e.target_type && !e.target_id) return "";
  if (e.target_type === "user" && e.target_id) return userLabel(e.target_id, e.target_username);
  const id = e.target_id || "";
  return `${t(`audit.target.${e.target_type}`)} ${id.length > 16 ? `${id.slice(0, 12)}…` : id}`.trim();
}

function outcomeLabel(outcome) {
  const key = `audit.outcome.${outcome}`;
  const text = t(key);
  return text === key ? outcome : text;
}

function row(e) {
  return h("tr", { testid: "audit-entry", data: { seq: String(e.seq), action: e.action, outcome: e.outcome } },
    h("td", {}, h("time", { dateTime: new Date(e.at).toISOString(), title: formatFull(e.at), text: formatTime(e.at) })),
    h("td", { text: userLabel(e.actor_id, e.actor_username) }),
    h("td", {}, h("code", { text: e.action })),
    h("td", { text: targetLabel(e), title: e.target_id || "" }),
    h("td", { text: e.ip || "" }),
    h("td", { class: `outcome ${e.outcome}`, text: outcomeLabel(e.outcome) }));
}

export function auditDialog() {
  const dialog = h("dialog", { testid: "audit-log", class: "dialog wide", attrs: { "aria-labelledby": "audit-title" } });
  const status = h("p", { class: "muted", attrs: { "aria-live": "polite" } });
  const body = h("tbody");
  const table = h("table", { testid: "audit-table", class: "audit-table" },
    h("caption", { class: "sr-only", text: t("audit.title") }),
    h("thead", {}, h("tr", {}, ...["time", "actor", "action", "target", "ip", "outcome"].map(
      (c) => h("th", { attrs: { scope: "col" }, text: t(`audit.col.${c}`) })))),
    body);

  const actionInput = h("input", {
    name: "action", id: "audit-action", type: "search", autocomplete: "off", maxLength: 64,
    placeholder: t("audit.actionPlaceholder"),
  });
  const actorSelect = h("select", { name: "actor", id: "audit-actor" },
    h("option", { value: "", text: t("audit.anyone") }),
    ...[...state.users.values()]
      .sort((a, b) => a.username.localeCompare(b.username))
      .map((u) => h("option", { value: u.id, text: `${u.display_name || u.username} (@${u.username})` })));
  const filters = h("form", { testid: "audit-filters", class: "audit-filters" },
    h("label", { htmlFor: "audit-action", text: t("audit.filterAction") }), actionInput,
    h("label", { htmlFor: "audit-actor", text: t("audit.filterActor") }), actorSelect,
    h("button", { type: "submit", class: "secondary", text: t("audit.apply") }));

  const older = h("button", { type: "button", testid: "audit-load-older", class: "secondary", text: t("audit.older"), hidden: true });
  const verifyResult = h("p", { testid: "audit-verify-result", class: "verify-result", attrs: { "aria-live": "polite" } });
  const verifyBtn = h("button", { type: "button", testid: "audit-verify", class: "primary", text: t("audit.verify") });

  let cursor = null;
  let filter = {};
  let loading = false;

  async function load(reset) {
    if (loading) return;
    loading = true;
    older.disabled = true;
    status.textContent = t("history.loading");
    try {
      const params = { ...filter, limit: PAGE, before_seq: reset ? null : cursor };
      const page = await request("GET", `/admin/audit${q(params)}`);
      if (reset) body.replaceChildren();
      body.append(...page.entries.map(row));
      cursor = page.next_before_seq;
      older.hidden = cursor === null;
      status.textContent = body.childElementCount ? "" : t("audit.empty");
    } catch (err) {
      const key = `error.${err.code}`;
      if (err.code === "validation_error" || err.code === "invalid_filter") status.textContent = t("audit.badFilter");
      else status.textContent = t(key) === key ? t("error.generic") : t(key);
    } finally {
      loading = false;
      older.disabled = false;
    }
  }

  filters.addEventListener("submit", (ev) => {
    ev.preventDefault();
    filter = { action: actionInput.value.trim().toLowerCase(), actor_id: actorSelect.value };
    load(true);
  });
  older.addEventListener("click", () => load(false));
  verifyBtn.addEventListener("click", async () => {
    verifyBtn.disabled = true;
    verifyResult.textContent = t("audit.verifying");
    delete verifyResult.dataset.ok;
    try {
      const r = await request("GET", "/admin/audit/verify");
      verifyResult.dataset.ok = r.ok ? "true" : "false";
      verifyResult.className = `verify-result ${r.ok ? "ok" : "bad"}`;
      const summary = r.ok
        ? t("audit.intact", { n: formatNumber(r.checked), seq: r.head_seq, hash: r.head_hash.slice(0, 16) })
        : t("audit.broken", { n: formatNumber(r.problem_count), checked: formatNumber(r.checked) });
      verifyResult.replaceChildren(summary, ...(r.ok ? [] : [h("ul", {},
        ...r.problems.slice(0, 20).map((p) => h("li", { testid: "audit-problem", data: { seq: String(p.seq), kind: p.kind }, text: t("audit.problem", { seq: p.seq, kind: t(`audit.kind.${p.kind}`) }) })))]));
    } catch {
      verifyResult.textContent = t("error.generic");
    } finally {
      verifyBtn.disabled = false;
    }
  });

  dialog.append(
    dialogHeader("audit-title", t("audit.title"), dialog),
    h("p", { class: "muted", text: t("audit.intro") }),
    filters,
    // Focusable, so that a keyboard can scroll the table.
    h("div", { class: "audit-scroll", tabIndex: 0, attrs: { role: "region", "aria-labelledby": "audit-title" } }, table),
    status,
    h("div", { class: "dialog-actions" }, older),
    h("h3", { text: t("audit.chain") }),
    h("p", { class: "muted", text: t("audit.chainIntro") }),
    verifyBtn, verifyResult);
  openDialog(dialog);
  load(true);
}

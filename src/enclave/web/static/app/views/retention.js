// "Retention & holds" (owners, admins and compliance officers): the organization's default
// retention (set by owners and admins), a preview of what the next run would delete (the dry
// run), and legal holds (compliance officers and the owner: list, place, release).
// REST: /api/v1/org/retention, /org/retention/preview, /compliance/holds (docs/compliance.md).
import { h } from "../dom.js";
import { t, formatFull, formatNumber } from "../i18n.js";
import { request } from "../api.js";
import { state, may } from "../store.js";
import { openDialog, dialogHeader, conversationName, displayName } from "./common.js";

export const canViewRetention = () => may("retention.view");
const canManageRetention = () => may("retention.manage");
const canManageHolds = () => may("compliance.holds");

function errorText(err) {
  const key = `error.${err?.code}`;
  return t(key) === key ? t("error.generic") : t(key);
}

function convLabel(id) {
  const c = state.convs.get(id);
  return c ? conversationName(c) : `${id.slice(0, 12)}…`;
}

function targetLabel(hold) {
  return hold.kind === "person" ? displayName(hold.target_id) : convLabel(hold.target_id);
}

function policySection(status) {
  const mode = h("select", { name: "retention-mode", id: "retention-mode", testid: "retention-mode" },
    h("option", { value: "forever", text: t("retention.forever") }),
    h("option", { value: "days", text: t("retention.days") }));
  const days = h("input", {
    name: "retention-days", id: "retention-days", testid: "retention-days", type: "number",
    min: 1, max: 36500, step: 1, value: "365", attrs: { "aria-label": t("retention.daysLabel") },
  });
  const save = h("button", { type: "submit", testid: "retention-save", class: "primary", text: t("retention.save") });
  const manage = canManageRetention();
  const form = h("form", { testid: "retention-form", class: "retention-form" },
    h("label", { htmlFor: "retention-mode", text: t("retention.default") }), mode, days,
    manage ? save : null);
  const overrides = h("p", { testid: "retention-overrides", class: "muted" });
  const sync = () => { days.hidden = mode.value !== "days"; };
  mode.addEventListener("change", sync);
  if (!manage) { mode.disabled = true; days.disabled = true; }

  const show = (policy) => {
    mode.value = policy.default_days === null ? "forever" : "days";
    if (policy.default_days !== null) days.value = String(policy.default_days);
    overrides.textContent = t("retention.overrides", { n: formatNumber(policy.overrides.length) });
    sync();
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const value = mode.value === "days" ? Number(days.value) : null;
    if (value !== null && !(Number.isInteger(value) && value >= 1 && value <= 36500)) {
      status.textContent = t("retention.badDays");
      return;
    }
    save.disabled = true;
    try {
      show(await request("PUT", "/org/retention", { default_days: value }));
      status.textContent = t("retention.saved");
    } catch (err) {
      status.textContent = errorText(err);
    } finally {
      save.disabled = false;
    }
  });
  request("GET", "/org/retention").then(show).catch((err) => { status.textContent = errorText(err); });
  return h("section", { attrs: { "aria-labelledby": "retention-policy-title" } },
    h("h3", { id: "retention-policy-title", text: t("retention.policy") }),
    h("p", { class: "muted", text: t("retention.policyIntro") }), form, overrides);
}

function previewSection(status) {
  const result = h("div", { testid: "retention-preview", attrs: { "aria-live": "polite" } });
  const btn = h("button", { type: "button", testid: "retention-preview-button", class: "secondary", text: t("retention.preview") });
  btn.addEventListener("click", async () => {
    btn.disabled = true;
    result.textContent = t("history.loading");
    try {
      const plan = await request("GET", "/org/retention/preview");
      const tt = plan.totals;
      const summary = h("p", { testid: "retention-preview-summary", data: { messages: String(tt.messages), keys: String(tt.key_ids.length) },
        text: t("retention.summary", { messages: formatNumber(tt.messages), conversations: formatNumber(tt.conversations), keys: formatNumber(tt.key_ids.length), held: formatNumber(tt.hidden) }) });
      if (!plan.conversations.length) {
        result.replaceChildren(summary, h("p", { class: "muted", text: t("retention.nothing") }));
        return;
      }
      const rows = plan.conversations.map((c) => h("tr", { testid: "retention-preview-row", data: { conversation: c.conversation_id } },
        h("td", { text: convLabel(c.conversation_id) }),
        h("td", { text: formatNumber(c.messages) }),
        h("td", { text: c.first_seq === null ? "" : `${c.first_seq}–${c.last_seq}` }),
        h("td", { text: formatNumber(c.hidden) }),
        h("td", { text: formatNumber(c.key_ids.length) }),
        h("td", { title: formatFull(c.cutoff), text: c.held ? t("retention.heldYes") : "" })));
      result.replaceChildren(summary, h("div", { class: "audit-scroll", tabIndex: 0, attrs: { role: "region", "aria-label": t("retention.preview") } },
        h("table", { class: "audit-table" },
          h("caption", { class: "sr-only", text: t("retention.preview") }),
          h("thead", {}, h("tr", {}, ...["conversation", "messages", "seqs", "held", "keys", "hold"].map(
            (col) => h("th", { attrs: { scope: "col" }, text: t(`retention.col.${col}`) })))),
          h("tbody", {}, ...rows))));
    } catch (err) {
      result.textContent = "";
      status.textContent = errorText(err);
    } finally {
      btn.disabled = false;
    }
  });
  return h("section", { attrs: { "aria-labelledby": "retention-preview-title" } },
    h("h3", { id: "retention-preview-title", text: t("retention.previewTitle") }),
    h("p", { class: "muted", text: t("retention.previewIntro") }), btn, result);
}

function holdsSection(status) {
  const body = h("tbody");
  const empty = h("p", { class: "muted", testid: "holds-empty", text: t("holds.empty"), hidden: true });
  const kind = h("select", { name: "hold-kind", id: "hold-kind", testid: "hold-kind" },
    h("option", { value: "person", text: t("holds.person") }),
    h("option", { value: "conversation", text: t("holds.conversation") }));
  const target = h("select", { name: "hold-target", id: "hold-target", testid: "hold-target", required: true });
  const reason = h("input", { name: "hold-reason", id: "hold-reason", testid: "hold-reason", type: "text", maxLength: 500, required: true, autocomplete: "off" });
  const create = h("button", { type: "submit", testid: "hold-create", class: "primary", text: t("holds.create") });
  const fillTargets = () => {
    const options = kind.value === "person"
      ? [...state.users.values()].sort((a, b) => a.username.localeCompare(b.username))
        .map((u) => h("option", { value: u.id, text: `${u.display_name || u.username} (@${u.username})` }))
      : [...state.convs.values()].map((c) => h("option", { value: c.id, text: conversationName(c) }));
    target.replaceChildren(...options);
  };
  kind.addEventListener("change", fillTargets);
  fillTargets();

  const row = (hold) => {
    const release = h("button", { type: "button", testid: "hold-release", class: "secondary", text: t("holds.release") });
    release.addEventListener("click", async () => {
      const why = reason.value.trim() || t("holds.releasedDefault");
      release.disabled = true;
      try {
        await request("POST", `/compliance/holds/${hold.id}/release`, { reason: why });
        status.textContent = t("holds.released");
        await load();
      } catch (err) {
        status.textContent = errorText(err);
        release.disabled = false;
      }
    });
    return h("tr", { testid: "hold-row", data: { id: hold.id, kind: hold.kind, target: hold.target_id } },
      h("td", { text: t(`holds.${hold.kind}`) }),
      h("td", { text: targetLabel(hold) }),
      h("td", { text: hold.reason }),
      h("td", {}, h("time", { dateTime: new Date(hold.created_at).toISOString(), text: formatFull(hold.created_at) })),
      h("td", {}, release));
  };
  async function load() {
    try {
      const { holds } = await request("GET", "/compliance/holds");
      body.replaceChildren(...holds.map(row));
      empty.hidden = holds.length > 0;
    } catch (err) {
      status.textContent = errorText(err);
    }
  }
  const form = h("form", { testid: "hold-form", class: "audit-filters" },
    h("label", { htmlFor: "hold-kind", text: t("holds.kind") }), kind,
    h("label", { htmlFor: "hold-target", text: t("holds.target") }), target,
    h("label", { htmlFor: "hold-reason", text: t("holds.reason") }), reason, create);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!target.value || !reason.value.trim()) {
      status.textContent = t("holds.needReason");
      return;
    }
    create.disabled = true;
    try {
      await request("POST", "/compliance/holds", { kind: kind.value, target_id: target.value, reason: reason.value.trim() });
      reason.value = "";
      status.textContent = t("holds.created");
      await load();
    } catch (err) {
      status.textContent = errorText(err);
    } finally {
      create.disabled = false;
    }
  });
  load();
  return h("section", { testid: "holds", attrs: { "aria-labelledby": "holds-title" } },
    h("h3", { id: "holds-title", text: t("holds.title") }),
    h("p", { class: "muted", text: t("holds.intro") }),
    h("div", { class: "audit-scroll", tabIndex: 0, attrs: { role: "region", "aria-labelledby": "holds-title" } },
      h("table", { testid: "holds-table", class: "audit-table" },
        h("caption", { class: "sr-only", text: t("holds.title") }),
        h("thead", {}, h("tr", {}, ...["kind", "target", "reason", "created", "actions"].map(
          (col) => h("th", { attrs: { scope: "col" }, text: t(`holds.col.${col}`) })))),
        body)),
    empty, form);
}

export function retentionDialog() {
  const dialog = h("dialog", { testid: "retention-dialog", class: "dialog wide", attrs: { "aria-labelledby": "retention-title" } });
  const status = h("p", { testid: "retention-status", class: "muted", attrs: { "aria-live": "polite" } });
  dialog.append(
    dialogHeader("retention-title", t("retention.title"), dialog),
    status,
    policySection(status),
    previewSection(status),
    canManageHolds() ? holdsSection(status) : null);
  openDialog(dialog);
}

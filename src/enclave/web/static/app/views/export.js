// The compliance export dialog (compliance officers and owners): choose people and a date
// range, start an eDiscovery export, watch its progress, download the zip.
// REST: POST /api/v1/compliance/exports, GET …/{id}, GET …/{id}/download (docs/compliance.md).
import { h } from "../dom.js";
import { t, formatNumber } from "../i18n.js";
import { api } from "../api.js";
import { state } from "../store.js";
import { openDialog, dialogHeader } from "./common.js";

const POLL_MS = 1000;

export function canExport(me) {
  return Boolean(me) && (me.role === "owner" || me.role === "compliance_officer");
}

/** The first instant of a local date input's day, in Unix ms (null when empty). */
function dayStart(value, nextDay = false) {
  if (!value) return null;
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d + (nextDay ? 1 : 0)).getTime();
}

export function exportDialog() {
  const dialog = h("dialog", { testid: "compliance-export", class: "dialog", attrs: { "aria-labelledby": "export-title" } });
  const people = h("select", { id: "export-people", name: "people", multiple: true, size: 6 },
    ...[...state.users.values()]
      .sort((a, b) => a.username.localeCompare(b.username))
      .map((u) => h("option", { value: u.id, text: `${u.display_name || u.username} (@${u.username})` })));
  const since = h("input", { id: "export-since", name: "since", type: "date" });
  const until = h("input", { id: "export-until", name: "until", type: "date" });
  const start = h("button", { type: "submit", testid: "export-start", class: "primary", text: t("export.start") });
  const status = h("p", { testid: "export-status", class: "muted", attrs: { "aria-live": "polite" } });
  const download = h("button", { type: "button", testid: "export-download", class: "primary", text: t("export.download"), hidden: true });
  const form = h("form", { testid: "export-form", class: "export-form" },
    h("label", { htmlFor: "export-people", text: t("export.people") }), people,
    h("p", { class: "muted", text: t("export.peopleHint") }),
    h("label", { htmlFor: "export-since", text: t("export.since") }), since,
    h("label", { htmlFor: "export-until", text: t("export.until") }), until,
    h("div", { class: "dialog-actions" }, start));

  let jobId = null;
  let timer = null;
  dialog.addEventListener("close", () => clearTimeout(timer));

  function show(job) {
    status.dataset.status = job.status;
    status.textContent = t(`export.status.${job.status}`, { done: formatNumber(job.done), total: formatNumber(job.total) });
    download.hidden = job.status !== "done";
    start.disabled = job.status === "queued" || job.status === "running";
    if (job.status === "queued" || job.status === "running") timer = setTimeout(poll, POLL_MS);
  }

  async function poll() {
    if (!jobId || !dialog.open) return;
    try {
      show(await api.exportStatus(jobId));
    } catch {
      status.textContent = t("error.generic");
      start.disabled = false;
    }
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearTimeout(timer);
    start.disabled = true;
    download.hidden = true;
    const body = {
      people: [...people.selectedOptions].map((o) => o.value),
      since: dayStart(since.value),
      until: dayStart(until.value, true),
    };
    try {
      const job = await api.startExport(body);
      jobId = job.id;
      show(job);
    } catch (err) {
      status.textContent = err.code === "invalid_filter" ? t("export.badRange") : t("error.generic");
      start.disabled = false;
    }
  });
  download.addEventListener("click", async () => {
    download.disabled = true;
    try {
      await api.downloadExport(jobId);
    } catch {
      status.textContent = t("error.generic");
    } finally {
      download.disabled = false;
    }
  });

  dialog.append(
    dialogHeader("export-title", t("export.title"), dialog),
    h("p", { class: "muted", text: t("export.intro") }),
    form, status,
    h("div", { class: "dialog-actions" }, download));
  openDialog(dialog);
}

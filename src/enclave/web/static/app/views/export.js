// The compliance export dialog (compliance officers and owners): choose people and a date
// range, start an eDiscovery export, watch its progress, download the zip; and the list of the
// organization's exports (who started which, when, how far it got), each finished one with its
// download. REST: POST /api/v1/compliance/exports, GET /compliance/exports, GET …/{id},
// GET …/{id}/download (docs/compliance.md).
import { h } from "../dom.js";
import { t, formatNumber, formatFull } from "../i18n.js";
import { api } from "../api.js";
import { state, may } from "../store.js";
import { openDialog, dialogHeader } from "./common.js";

const POLL_MS = 1000;

export const canExport = () => may("compliance.export");

/** The first instant of a local date input's day, in Unix ms (null when empty). */
function dayStart(value, nextDay = false) {
  if (!value) return null;
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d + (nextDay ? 1 : 0)).getTime();
}

const busy = (job) => job.status === "queued" || job.status === "running";

/** The organization's exports, newest first, refreshed while one of them runs. */
function jobsSection(dialog) {
  const body = h("tbody");
  const empty = h("p", { testid: "export-jobs-empty", class: "muted", text: t("export.jobs.empty"), hidden: true });
  const problem = h("p", { class: "muted", attrs: { "aria-live": "polite" } });
  const more = h("button", { type: "button", testid: "export-jobs-more", class: "secondary", text: t("export.jobs.more"), hidden: true });
  let jobs = [];
  let next = null;
  let timer = null;
  dialog.addEventListener("close", () => clearTimeout(timer));

  const who = (job) => (job.requested_by === null ? t("export.jobs.byOperator")
    : job.requested_by_username ? `@${job.requested_by_username}` : `${job.requested_by.slice(0, 8)}…`);
  const when = (ms) => (ms ? h("time", { dateTime: new Date(ms).toISOString(), text: formatFull(ms) }) : "");

  function row(job) {
    const download = job.status === "done" ? h("button", {
      type: "button", testid: "export-job-download", class: "secondary", text: t("export.download"),
      attrs: { "aria-label": t("export.jobs.downloadLabel", { when: formatFull(job.created_at) }) },
    }) : null;
    download?.addEventListener("click", async () => {
      download.disabled = true;
      try {
        await api.downloadExport(job.id);
      } catch (err) {
        problem.textContent = err.code === "export_not_ready" ? t("export.status.expired") : t("error.generic");
        load();
      } finally {
        download.disabled = false;
      }
    });
    return h("tr", { testid: "export-job", data: { id: job.id, status: job.status } },
      h("td", {}, when(job.created_at)),
      h("td", { text: who(job) }),
      h("td", { class: job.status === "failed" ? "outcome failure" : "", text: t(`export.state.${job.status}`) }),
      h("td", { text: t("export.jobs.progress", { done: formatNumber(job.done), total: formatNumber(job.total) }) }),
      h("td", {}, when(job.expires_at)),
      h("td", {}, download));
  }

  function render() {
    body.replaceChildren(...jobs.map(row));
    empty.hidden = jobs.length > 0;
    more.hidden = next === null;
    clearTimeout(timer);
    if (jobs.some(busy)) timer = setTimeout(load, 2000);
  }

  async function load() {
    try {
      const page = await api.exports();
      jobs = page.exports;
      next = page.next_before;
      problem.textContent = "";
      render();
    } catch {
      problem.textContent = t("error.generic");
    }
  }

  more.addEventListener("click", async () => {
    more.disabled = true;
    try {
      const page = await api.exports(next);
      jobs = [...jobs, ...page.exports.filter((j) => !jobs.some((k) => k.id === j.id))];
      next = page.next_before;
      render();
    } catch {
      problem.textContent = t("error.generic");
    } finally {
      more.disabled = false;
    }
  });

  load();
  const section = h("div", { class: "export-jobs" },
    h("h3", { id: "export-jobs-title", text: t("export.jobs.title") }),
    h("div", { class: "audit-scroll", tabIndex: 0, attrs: { role: "region", "aria-labelledby": "export-jobs-title" } },
      h("table", { testid: "export-jobs", class: "audit-table" },
        h("caption", { class: "sr-only", text: t("export.jobs.title") }),
        h("thead", {}, h("tr", {}, ...["started", "by", "status", "progress", "expires", "download"].map(
          (col) => h("th", { attrs: { scope: "col" }, text: t(`export.jobs.col.${col}`) })))),
        body)),
    empty, problem, more);
  return { section, reload: load };
}

export function exportDialog() {
  const dialog = h("dialog", { testid: "compliance-export", class: "dialog wide", attrs: { "aria-labelledby": "export-title" } });
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
  const jobs = jobsSection(dialog);

  function show(job) {
    const changed = status.dataset.status !== job.status;
    status.dataset.status = job.status;
    status.textContent = t(`export.status.${job.status}`, { done: formatNumber(job.done), total: formatNumber(job.total) });
    download.hidden = job.status !== "done";
    start.disabled = busy(job);
    if (busy(job)) timer = setTimeout(poll, POLL_MS);
    if (changed) jobs.reload();
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
    h("div", { class: "dialog-actions" }, download),
    jobs.section);
  openDialog(dialog);
}

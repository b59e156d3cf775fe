// The logged-in app: connection status, the sidebar (list and tools) and the conversation pane;
// on a phone (≤ 600 px) one pane at a time.
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { state, on, may } from "../store.js";
import { languageSelect } from "./common.js";
import { conversationList } from "./list.js";
import { conversationView } from "./conversation.js";
import { threadPanel } from "./thread.js";
import { newConversationDialog, channelBrowser } from "./dialogs.js";
import { profileDialog } from "./profile.js";
import { auditDialog, canReadAudit } from "./audit.js";
import { retentionDialog, canViewRetention } from "./retention.js";
import { exportDialog, canExport } from "./export.js";
import { peopleDialog, canManagePeople } from "./people.js";

export function makeScope() {
  const offs = [];
  return {
    on(topic, fn) { const off = on(topic, fn); offs.push(off); return off; },
    add(fn) { offs.push(fn); },
    dispose() { for (const off of offs.splice(0)) off(); },
  };
}

export const phoneQuery = window.matchMedia("(max-width: 600px)");

function connectionStatus() {
  const el = h("div", { testid: "connection-status", class: "conn", attrs: { role: "status" } });
  const render = () => {
    const s = state.connection;
    el.dataset.state = s;
    el.className = `conn ${s}`;
    el.textContent = s === "online" ? "" : t(`conn.${s}`);
    if (s === "online") el.append(h("span", { class: "sr-only", text: t("conn.online") }));
  };
  render();
  return { el, render };
}

export function mountApp(root, actions) {
  const scope = makeScope();
  const phone = phoneQuery.matches;
  const status = connectionStatus();
  scope.on("connection", status.render);

  const profileBtn = h("button", {
    type: "button", testid: "profile-button", class: "avatar",
    attrs: { "aria-label": t("profile.open", { name: state.me.display_name || state.me.username }) },
    text: (state.me.display_name || state.me.username).slice(0, 1).toUpperCase(),
    on: { click: () => profileDialog(actions) },
  });
  const sidebar = h("nav", { class: "sidebar", attrs: { "aria-label": t("list.label") } },
    h("header", { class: "sidebar-header" }, h("h1", { class: "brand", text: t("app.name") }), languageSelect(), profileBtn),
    h("div", { class: "tools" },
      // Guests may not create conversations or browse channels (docs/permissions.md).
      !may("conversation.create") ? null : h("button", { type: "button", testid: "new-conversation", class: "primary", text: t("list.new"), on: { click: () => newConversationDialog(actions) } }),
      !may("channel.browse") ? null : h("button", { type: "button", testid: "browse-channels", class: "secondary", text: t("list.browse"), on: { click: () => channelBrowser(actions) } }),
      canManagePeople() ? h("button", { type: "button", testid: "people-button", class: "secondary", text: t("people.open"), on: { click: () => peopleDialog() } }) : null,
      canReadAudit() ? h("button", { type: "button", testid: "audit-log-button", class: "secondary", text: t("audit.open"), on: { click: () => auditDialog() } }) : null,
      canViewRetention() ? h("button", { type: "button", testid: "retention-button", class: "secondary", text: t("retention.open"), on: { click: () => retentionDialog() } }) : null,
      canExport() ? h("button", { type: "button", testid: "compliance-export-button", class: "secondary", text: t("export.open"), on: { click: () => exportDialog() } }) : null),
    ...conversationList(scope, actions));

  const main = h("main", { class: "main" });
  const threadSlot = h("div", { class: "thread-slot" });
  const app = h("div", {
    testid: "app", class: "app", data: { layout: phone ? "phone" : "desktop" },
  }, status.el, h("div", { class: "panes" }, sidebar, main, threadSlot));

  let convScope = null;
  let current = null;
  function renderMain() {
    if (convScope) convScope.dispose();
    convScope = makeScope();
    current = null;
    app.dataset.pane = state.openId ? "conversation" : "list";
    if (state.openId && state.convs.has(state.openId)) {
      current = conversationView(convScope, actions, { phone });
      main.replaceChildren(current.el);
    } else {
      main.replaceChildren(h("div", { class: "placeholder" }, h("p", { class: "muted", text: t("conversation.none") })));
    }
    renderThread();
  }

  let threadScope = null;
  function renderThread() {
    if (threadScope) threadScope.dispose();
    threadScope = makeScope();
    app.dataset.thread = state.thread ? "open" : "closed";
    threadSlot.replaceChildren();
    if (state.thread && state.thread.convId === state.openId) threadSlot.append(threadPanel(threadScope, actions));
  }

  let openShown = state.openId;
  let threadShown = state.thread?.rootId;
  scope.on("open", () => {
    if (openShown !== state.openId) {
      openShown = state.openId;
      threadShown = state.thread?.rootId;
      renderMain();
      if (current && !phone) current.focus();
      else if (current) current.el.querySelector("[data-testid=back]")?.focus();
    }
  });
  scope.on("thread", () => {
    if (threadShown !== state.thread?.rootId) {
      threadShown = state.thread?.rootId;
      renderThread();
    }
  });
  scope.on("convs", () => {
    if (state.openId && !state.convs.has(state.openId)) actions.open(null);
  });

  renderMain();
  root.replaceChildren(app);
  return {
    dispose() {
      scope.dispose();
      convScope?.dispose();
      threadScope?.dispose();
    },
  };
}

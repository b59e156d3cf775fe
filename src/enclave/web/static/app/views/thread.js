// The thread panel: the root message, its replies and a composer for replies.
import { h } from "../dom.js";
import { t, formatList } from "../i18n.js";
import { state } from "../store.js";
import { typists } from "../sync.js";
import { renderMessage } from "./message.js";
import { composer } from "./composer.js";
import { displayName } from "./common.js";

export function threadPanel(scope, actions) {
  const th = state.thread;
  const ui = { menu: null, picker: null, editing: null, focus: null };
  const rootSlot = h("div", { class: "thread-root" });
  const ol = h("ol", { class: "messages thread-replies", attrs: { "aria-label": t("thread.replyList") } });
  const status = h("p", { class: "muted center" });
  const typing = h("p", { class: "typing muted", attrs: { "aria-live": "polite" } });
  const comp = composer({
    scope, convId: th.convId, threadRootId: th.rootId, testid: "thread-composer", sendTestid: "thread-send",
    draftKey: `t:${th.rootId}`, actions, label: t("thread.composerLabel"), placeholder: t("thread.placeholder"),
  });
  comp.refresh();
  const scroller = h("div", { class: "thread-scroll" }, rootSlot, status, ol);
  const panel = h("aside", { testid: "thread-panel", class: "panel thread-panel", attrs: { "aria-labelledby": "thread-title" } },
    h("header", { class: "panel-header" },
      h("h3", { id: "thread-title", text: t("thread.title") }),
      h("button", { type: "button", testid: "close-thread", class: "icon", attrs: { "aria-label": t("thread.close") }, text: "×", on: { click: () => actions.closeThread() } })),
    scroller, typing, comp.el);

  const ctx = { ui, actions, thread: true, testid: "thread-reply", rerender: () => render() };
  const rootCtx = { ...ctx, testid: "thread-root" };

  function render() {
    const cur = state.thread;
    if (!cur) return;
    const near = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
    rootSlot.replaceChildren(cur.root ? renderMessage(cur.root, "root", rootCtx) : h("p", { class: "muted", text: t("history.loading") }));
    const replies = [...cur.replies.entries()].sort(([, a], [, b]) => (a.seq ?? Infinity) - (b.seq ?? Infinity) || (a._local ?? 0) - (b._local ?? 0));
    ol.replaceChildren(...replies.map(([key, m]) => renderMessage(m, key, { ...ctx, rerender: () => render() })));
    status.textContent = cur.loaded ? (replies.length ? t("thread.count", { n: replies.length }) : t("thread.empty")) : t("history.loading");
    if (ui.focus) {
      const target = panel.querySelector(ui.focus);
      ui.focus = null;
      target?.focus();
    }
    if (near) scroller.scrollTop = scroller.scrollHeight;
  }

  function renderTyping() {
    const names = typists(th.convId, th.rootId).map(displayName);
    typing.textContent = names.length === 0 ? "" : names.length === 1 ? t("typing.one", { name: names[0] }) : t("typing.many", { names: formatList(names) });
  }

  panel.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape") return;
    ev.stopPropagation();
    if (ui.menu || ui.picker || ui.editing) {
      ui.menu = ui.picker = ui.editing = null;
      render();
    } else {
      actions.closeThread();
    }
  });

  scope.on("thread", render);
  scope.on("users", render);
  scope.on(`typing:${th.convId}`, renderTyping);
  queueMicrotask(() => { render(); comp.box.focus(); });
  return panel;
}

// A message composer: Enter sends, Shift+Enter is a newline, Enter while an IME is composing
// (Chinese, Japanese, ...) only commits the composition. @ opens a member autocomplete.
import { h, uid } from "../dom.js";
import { t } from "../i18n.js";
import { state, membersOf } from "../store.js";

const TYPING_EVERY = 2000;
const MAX_OPTIONS = 8;

/** opts: {scope, convId, threadRootId, testid, sendTestid, draftKey, actions, label} */
export function composer(opts) {
  const { scope, convId, threadRootId = null, actions } = opts;
  let composing = false;
  let lastTyping = 0;
  let options = [];
  let active = 0;
  let mention = null; // {start, query}
  let dismissed = false; // Escape closed the list: data arriving later does not reopen it

  const listId = uid();
  const box = h("textarea", {
    testid: opts.testid, class: "composer-input", rows: 1,
    value: state.drafts.get(opts.draftKey) || "",
    placeholder: opts.placeholder || "",
    attrs: { "aria-label": opts.label, "aria-autocomplete": "list", "aria-controls": listId },
  });
  const list = h("div", { id: listId, class: "mentions", attrs: { role: "listbox", "aria-label": t("mention.label") }, hidden: true });
  const sendBtn = h("button", { type: "button", testid: opts.sendTestid, class: "primary send", text: t("composer.send"), on: { click: () => send() } });
  // Archived, or a conversation where I may not post: a read-only member, or an announcement
  // channel where I am not a moderator (docs/permissions.md). The server refuses these anyway.
  const archived = () => {
    const c = state.convs.get(convId);
    if (!c) return false;
    if (c.archived || c.my_role === "reader") return true;
    return Boolean(c.announcement) && c.my_role !== "owner" && c.my_role !== "moderator";
  };

  function send() {
    const text = box.value.trim();
    if (!text || archived()) return;
    actions.send(convId, text, threadRootId);
    box.value = "";
    state.drafts.delete(opts.draftKey);
    closeMentions();
    autosize();
    box.focus();
  }

  function autosize() {
    box.style.height = "auto";
    box.style.height = `${Math.min(box.scrollHeight, 160)}px`;
  }

  // -- @mention autocomplete --
  function findMention() {
    const upto = box.value.slice(0, box.selectionStart);
    const match = /(^|\s)@([\p{L}\p{N}._-]*)$/u.exec(upto);
    return match ? { start: upto.length - match[2].length - 1, query: match[2].toLowerCase() } : null;
  }

  function updateMentions() {
    mention = findMention();
    if (!mention) return closeMentions();
    const ids = [...membersOf(convId).keys()].filter((id) => id !== state.me.id);
    options = ids.map((id) => state.users.get(id)).filter(Boolean)
      .filter((u) => u.username.startsWith(mention.query) || (u.display_name || "").toLowerCase().includes(mention.query))
      .sort((a, b) => a.username.localeCompare(b.username))
      .slice(0, MAX_OPTIONS);
    if (!options.length) return closeMentions();
    active = Math.min(active, options.length - 1);
    renderMentions();
  }

  function renderMentions() {
    list.replaceChildren(...options.map((u, i) => h("div", {
      testid: "mention-option", id: `${listId}-${i}`, class: `option${i === active ? " active" : ""}`,
      data: { username: u.username },
      attrs: { role: "option", "aria-selected": String(i === active) },
      on: { mousedown: (ev) => ev.preventDefault(), click: () => insert(u) },
    }, h("span", { class: "option-name", text: u.display_name || u.username }), " ", h("span", { class: "muted", text: `@${u.username}` }))));
    list.hidden = false;
    box.setAttribute("aria-activedescendant", `${listId}-${active}`);
  }

  function closeMentions() {
    options = [];
    mention = null;
    active = 0;
    list.hidden = true;
    list.replaceChildren();
    box.removeAttribute("aria-activedescendant");
  }

  function insert(u) {
    const m = mention || findMention();
    if (!m) return;
    const before = box.value.slice(0, m.start);
    const after = box.value.slice(box.selectionStart);
    const text = `@${u.username} `;
    box.value = before + text + after;
    const caret = before.length + text.length;
    box.setSelectionRange(caret, caret);
    state.drafts.set(opts.draftKey, box.value);
    closeMentions();
    box.focus();
  }

  box.addEventListener("compositionstart", () => { composing = true; });
  box.addEventListener("compositionend", () => { composing = false; });
  box.addEventListener("blur", () => { composing = false; });
  box.addEventListener("input", () => {
    dismissed = false;
    state.drafts.set(opts.draftKey, box.value);
    autosize();
    updateMentions();
    const now = Date.now();
    if (box.value.trim() && now - lastTyping >= TYPING_EVERY) {
      lastTyping = now;
      actions.typing(convId, threadRootId);
    }
  });
  box.addEventListener("keydown", (ev) => {
    // keyCode 229 is what browsers report for keys that go to an IME.
    const imeBusy = ev.isComposing || composing || ev.keyCode === 229;
    if (ev.key === "Escape" && !imeBusy) dismissed = true;
    if (options.length && !imeBusy) {
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        active = (active + (ev.key === "ArrowDown" ? 1 : options.length - 1)) % options.length;
        renderMentions();
        return;
      }
      if (ev.key === "Enter" || ev.key === "Tab") {
        ev.preventDefault();
        insert(options[active]);
        return;
      }
      if (ev.key === "Escape") {
        ev.preventDefault();
        ev.stopPropagation();
        closeMentions();
        return;
      }
    }
    if (ev.key === "Enter" && !ev.shiftKey) {
      // During composition Enter belongs to the IME (it commits the text): never send then,
      // and cancel the key so no stray newline is left behind.
      ev.preventDefault();
      if (!imeBusy) send();
    }
  });

  const el = h("div", { class: "composer" }, list, h("div", { class: "composer-row" }, box, sendBtn));
  queueMicrotask(autosize);
  // Members and their profiles load after the view opens: someone who typed "@bo" before they
  // arrived gets the list as soon as they do, without typing another key.
  const membersChanged = () => {
    if (document.activeElement === box && !dismissed) updateMentions();
  };
  scope.on(`members:${convId}`, membersChanged);
  scope.on("users", membersChanged);
  return { el, box, refresh: () => { box.disabled = !!archived(); sendBtn.disabled = !!archived(); } };
}

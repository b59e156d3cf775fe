// Dialogs to start a DM, create a group or channel, and browse and join public channels.
import { h, field } from "../dom.js";
import { t } from "../i18n.js";
import { state } from "../store.js";
import { api } from "../api.js";
import { openDialog, dialogHeader } from "./common.js";

function errorText(err) {
  const key = `error.${err?.code}`;
  const text = t(key);
  return text === key ? t("error.generic") : text;
}

export function newConversationDialog(actions) {
  const dialog = h("dialog", { testid: "new-conversation-dialog", class: "dialog", attrs: { "aria-labelledby": "nc-title" } });
  const kind = h("select", { name: "kind" },
    ...["dm", "group", "channel"].map((k) => h("option", { value: k, text: t(`kind.${k}`) })));
  const name = h("input", { name: "name", maxLength: 200, autocomplete: "off" });
  const visibility = h("select", { name: "visibility" },
    h("option", { value: "public", text: t("visibility.public") }),
    h("option", { value: "private", text: t("visibility.private") }));
  const search = h("input", { testid: "people-search", type: "search", autocomplete: "off", attrs: { "aria-label": t("people.search") }, placeholder: t("people.search") });
  const people = h("ul", { class: "people", attrs: { "aria-label": t("people.label") } });
  const chosen = h("p", { class: "muted chosen", attrs: { "aria-live": "polite" } });
  const error = h("p", { class: "form-error", attrs: { role: "alert" }, hidden: true });
  const submit = h("button", { type: "submit", testid: "create-conversation", class: "primary", text: t("create.submit") });
  const nameField = field(t("create.name"), name);
  const visibilityField = field(t("create.visibility"), visibility);
  const peopleLabel = h("p", { class: "label", text: t("people.label") });
  const selected = new Set();

  function sync() {
    const k = kind.value;
    nameField.hidden = k === "dm";
    visibilityField.hidden = k !== "channel";
    name.required = k === "channel";
    if (k === "dm" && selected.size > 1) {
      const first = [...selected][0];
      selected.clear();
      selected.add(first);
    }
    renderPeople();
  }

  function renderPeople() {
    const q = search.value.trim().toLowerCase();
    const users = [...state.users.values()]
      .filter((u) => u.id !== state.me.id && u.is_active)
      .filter((u) => !q || u.username.includes(q) || (u.display_name || "").toLowerCase().includes(q))
      .sort((a, b) => (a.display_name || a.username).localeCompare(b.display_name || b.username))
      .slice(0, 100);
    people.replaceChildren(...users.map((u) => h("li", {},
      h("button", {
        type: "button", testid: "person-option", class: "person", data: { id: u.id },
        attrs: { "aria-pressed": String(selected.has(u.id)) },
        on: { click: () => toggle(u.id) },
      }, h("span", { class: "check", attrs: { "aria-hidden": "true" }, text: selected.has(u.id) ? "✓" : "" }),
      h("span", { text: u.display_name || u.username }), " ", h("span", { class: "muted", text: `@${u.username}` })))));
    if (!users.length) people.append(h("li", { class: "muted", text: t("people.none") }));
    const names = [...selected].map((id) => state.users.get(id)?.display_name || state.users.get(id)?.username);
    chosen.textContent = names.length ? t("people.chosen", { names: names.join(", ") }) : "";
  }

  function toggle(id) {
    if (selected.has(id)) selected.delete(id);
    else {
      if (kind.value === "dm") selected.clear();
      selected.add(id);
    }
    renderPeople();
  }

  const form = h("form", {
    method: "dialog",
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        error.hidden = true;
        const k = kind.value;
        const body = { kind: k, members: [...selected] };
        if (k !== "dm" && name.value.trim()) body.name = name.value.trim();
        if (k === "channel") body.visibility = visibility.value;
        if ((k === "dm" && selected.size !== 1) || (k === "group" && !selected.size)) {
          error.textContent = t(k === "dm" ? "create.pickOne" : "create.pickSome");
          error.hidden = false;
          return;
        }
        submit.disabled = true;
        try {
          await actions.createConversation(body);
          dialog.close();
        } catch (err) {
          error.textContent = errorText(err);
          error.hidden = false;
        } finally {
          submit.disabled = false;
        }
      },
    },
  },
  dialogHeader("nc-title", t("create.title"), dialog),
  field(t("create.kind"), kind), nameField, visibilityField,
  peopleLabel, search, people, chosen, error,
  h("div", { class: "dialog-actions" },
    h("button", { type: "button", class: "secondary", text: t("action.cancel"), on: { click: () => dialog.close() } }),
    submit));
  kind.addEventListener("change", sync);
  search.addEventListener("input", renderPeople);
  dialog.append(form);
  sync();
  openDialog(dialog);
  kind.focus();
}

export function channelBrowser(actions) {
  const dialog = h("dialog", { testid: "channel-browser", class: "dialog", attrs: { "aria-labelledby": "cb-title" } });
  const list = h("ul", { class: "channels", attrs: { "aria-labelledby": "cb-title" } });
  const status = h("p", { class: "muted", attrs: { "aria-live": "polite" }, text: t("history.loading") });
  dialog.append(dialogHeader("cb-title", t("channels.title"), dialog), status, list);
  openDialog(dialog);

  (async () => {
    try {
      const all = [];
      let after = "";
      for (;;) {
        const { channels } = await api.channels(after);
        all.push(...channels);
        if (channels.length < 200) break;
        after = channels[channels.length - 1].name;
      }
      status.textContent = all.length ? "" : t("channels.none");
      list.replaceChildren(...all.map((c) => {
        const joined = c.joined || state.convs.has(c.id);
        const btn = h("button", {
          type: "button", testid: "join-channel", class: joined ? "secondary" : "primary",
          text: joined ? t("channels.open") : t("channels.join"),
          attrs: { "aria-label": `${joined ? t("channels.open") : t("channels.join")} ${c.name}` },
          on: {
            click: async () => {
              btn.disabled = true;
              try {
                await actions.joinChannel(c.id);
                dialog.close();
              } catch (err) {
                status.textContent = errorText(err);
                btn.disabled = false;
              }
            },
          },
        });
        return h("li", { testid: "channel-item", class: "channel-item", data: { id: c.id } },
          h("div", {}, h("p", { class: "channel-name", text: `# ${c.name}` }), c.topic ? h("p", { class: "muted", text: c.topic }) : null),
          btn);
      }));
    } catch (err) {
      status.textContent = errorText(err);
    }
  })();
}

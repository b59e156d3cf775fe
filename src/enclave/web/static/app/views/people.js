// The "People" screen (owners, admins and department admins): everyone with their role and
// department, role changes and moves, and (owners and admins) the department tree: add, rename,
// delete. The server decides every change (docs/permissions.md); controls the caller may not use
// are disabled here only as a courtesy, and a refusal is shown as a status message.
// REST: GET /users?include_inactive=true, PUT /users/{id}/role, PUT /users/{id}/department,
// GET/POST /departments, PATCH/DELETE /departments/{id}.
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { request } from "../api.js";
import { state, emit } from "../store.js";
import { openDialog, dialogHeader } from "./common.js";

const ROLES = ["owner", "admin", "compliance_officer", "department_admin", "member", "guest"];
// What each role may give and take away (mirrors GRANTABLE_ROLES in domain/policy.py).
const GRANTABLE = {
  owner: ROLES,
  admin: ["compliance_officer", "department_admin", "member", "guest"],
};
const enc = encodeURIComponent;

export function canManagePeople(me) {
  return Boolean(me) && ["owner", "admin", "department_admin"].includes(me.role);
}

function canManageDepartments(me) {
  return me.role === "owner" || me.role === "admin";
}

/** Departments in tree order, each with its depth (0 for a top-level one). */
function treeOrder(departments) {
  const children = new Map();
  for (const d of departments) {
    const key = d.parent_id || "";
    if (!children.has(key)) children.set(key, []);
    children.get(key).push(d);
  }
  const out = [];
  const walk = (key, depth) => {
    for (const d of (children.get(key) || []).sort((a, b) => a.name.localeCompare(b.name))) {
      out.push({ ...d, depth });
      walk(d.id, depth + 1);
    }
  };
  walk("", 0);
  return out;
}

/** The departments `me` administers and everything below them. */
function subtreeOf(me, departments) {
  const found = new Set(departments.filter((d) => d.admin_ids.includes(me.id)).map((d) => d.id));
  let grew = true;
  while (grew) {
    grew = false;
    for (const d of departments) {
      if (d.parent_id && found.has(d.parent_id) && !found.has(d.id)) {
        found.add(d.id);
        grew = true;
      }
    }
  }
  return found;
}

function errorText(err) {
  const key = `error.${err.code}`;
  return t(key) === key ? t("error.generic") : t(key);
}

export function peopleDialog() {
  const me = state.me;
  const dialog = h("dialog", { testid: "people", class: "dialog wide", attrs: { "aria-labelledby": "people-title" } });
  const status = h("p", { testid: "people-status", class: "muted", attrs: { "aria-live": "polite" } });
  const body = h("tbody");
  const table = h("table", { testid: "people-table", class: "audit-table" },
    h("caption", { class: "sr-only", text: t("people.title") }),
    h("thead", {}, h("tr", {}, ...["name", "role", "department", "state"].map(
      (c) => h("th", { attrs: { scope: "col" }, text: t(`people.col.${c}`) })))),
    body);
  const tree = h("ul", { testid: "department-tree", class: "department-tree", attrs: { "aria-labelledby": "departments-title" } });
  let users = [];
  let departments = [];

  function departmentOptions(selected, { none = true, exclude = null } = {}) {
    const opts = none ? [h("option", { value: "", text: t("people.noDepartment"), selected: !selected })] : [];
    for (const d of treeOrder(departments)) {
      if (exclude && d.id === exclude) continue;
      opts.push(h("option", { value: d.id, text: `${"\u00a0\u00a0".repeat(d.depth)}${d.name}`, selected: d.id === selected }));
    }
    return opts;
  }

  function personRow(u) {
    const grantable = GRANTABLE[me.role] || [];
    const roleSelect = h("select", {
      testid: "person-role", name: "role",
      attrs: { "aria-label": t("people.roleOf", { name: u.username }) },
      disabled: !grantable.includes(u.role) || u.id === me.id,
    }, ...ROLES.map((r) => h("option", {
      value: r, text: t(`role.${r}`), selected: r === u.role,
      disabled: r !== u.role && !grantable.includes(r),
    })));
    const mine = me.role === "department_admin" ? subtreeOf(me, departments) : null;
    const movable = mine === null || (mine.has(u.department_id) && ["member", "guest"].includes(u.role));
    const deptSelect = h("select", {
      testid: "person-department", name: "department",
      attrs: { "aria-label": t("people.departmentOf", { name: u.username }) },
      disabled: !movable,
    }, ...departmentOptions(u.department_id));
    roleSelect.addEventListener("change", async () => {
      roleSelect.disabled = true;
      try {
        const changed = await request("PUT", `/users/${enc(u.id)}/role`, { role: roleSelect.value });
        status.textContent = t("people.saved");
        replaceUser(changed);
      } catch (err) {
        status.textContent = errorText(err);
        roleSelect.value = u.role;
        roleSelect.disabled = false;
      }
    });
    deptSelect.addEventListener("change", async () => {
      deptSelect.disabled = true;
      try {
        const changed = await request("PUT", `/users/${enc(u.id)}/department`, { department_id: deptSelect.value || null });
        status.textContent = t("people.saved");
        replaceUser(changed);
      } catch (err) {
        status.textContent = errorText(err);
        deptSelect.value = u.department_id || "";
        deptSelect.disabled = false;
      }
    });
    return h("tr", { testid: "person-row", data: { id: u.id, username: u.username, role: u.role, department: u.department_id || "" } },
      h("td", {}, h("span", { text: u.display_name || u.username }), " ", h("span", { class: "muted", text: `@${u.username}` })),
      h("td", {}, roleSelect),
      h("td", {}, deptSelect),
      h("td", { text: u.is_active ? t("people.active") : t("people.inactive") }));
  }

  function replaceUser(changed) {
    users = users.map((u) => (u.id === changed.id ? changed : u));
    if (state.users.has(changed.id)) {
      state.users.set(changed.id, { ...state.users.get(changed.id), ...changed });
      emit("users");
    }
    if (changed.id === me.id) state.me = { ...state.me, ...changed };
    renderPeople();
  }

  function renderPeople() {
    body.replaceChildren(...users.map(personRow));
  }

  function departmentItem(d) {
    const input = h("input", {
      testid: "department-name", name: "name", maxLength: 80, value: d.name,
      attrs: { "aria-label": t("people.renameLabel", { name: d.name }) },
    });
    const save = h("button", { type: "submit", testid: "department-save", class: "secondary", text: t("people.rename") });
    const del = h("button", {
      type: "button", testid: "department-delete", class: "danger", text: t("people.delete"),
      attrs: { "aria-label": t("people.deleteLabel", { name: d.name }) },
      on: {
        click: async () => {
          del.disabled = true;
          try {
            await request("DELETE", `/departments/${enc(d.id)}`);
            status.textContent = t("people.deleted", { name: d.name });
            await load();
          } catch (err) {
            status.textContent = errorText(err);
            del.disabled = false;
          }
        },
      },
    });
    const form = h("form", { class: "department-form" }, input, save, del);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      save.disabled = true;
      try {
        await request("PATCH", `/departments/${enc(d.id)}`, { name: input.value });
        status.textContent = t("people.saved");
        await load();
      } catch (err) {
        status.textContent = errorText(err);
        save.disabled = false;
      }
    });
    const item = h("li", {
      testid: "department-item", data: { id: d.id, parent: d.parent_id || "", name: d.name, depth: String(d.depth) },
    }, form);
    item.style.marginInlineStart = `${d.depth * 1.25}rem`; // CSSOM, which the CSP allows
    return item;
  }

  function renderTree() {
    tree.replaceChildren(...treeOrder(departments).map(departmentItem));
    parentSelect.replaceChildren(h("option", { value: "", text: t("people.topLevel") }), ...departmentOptions(null, { none: false }));
  }

  const nameInput = h("input", { id: "department-new-name", name: "name", maxLength: 80, required: true, autocomplete: "off" });
  const parentSelect = h("select", { id: "department-new-parent", name: "parent" });
  const addForm = h("form", { testid: "department-add", class: "audit-filters" },
    h("label", { htmlFor: "department-new-name", text: t("people.newDepartment") }), nameInput,
    h("label", { htmlFor: "department-new-parent", text: t("people.parent") }), parentSelect,
    h("button", { type: "submit", class: "primary", text: t("people.add") }));
  addForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await request("POST", "/departments", { name: nameInput.value, parent_id: parentSelect.value || null });
      status.textContent = t("people.saved");
      nameInput.value = "";
      await load();
    } catch (err) {
      status.textContent = errorText(err);
    }
  });

  async function load() {
    try {
      const found = [];
      let after = "";
      for (;;) {
        const page = await request("GET", `/users?include_inactive=true&limit=1000${after ? `&after=${enc(after)}` : ""}`);
        found.push(...page.users);
        if (page.users.length < 1000) break;
        after = page.users[page.users.length - 1].username;
      }
      users = found;
      departments = (await request("GET", "/departments")).departments;
      renderPeople();
      if (canManageDepartments(me)) renderTree();
    } catch (err) {
      status.textContent = errorText(err);
    }
  }

  dialog.append(
    dialogHeader("people-title", t("people.title"), dialog),
    h("p", { class: "muted", text: t("people.intro") }),
    h("div", { class: "audit-scroll", tabIndex: 0, attrs: { role: "region", "aria-labelledby": "people-title" } }, table),
    status,
    ...(canManageDepartments(me) ? [
      h("h3", { id: "departments-title", text: t("people.departments") }),
      tree,
      addForm,
    ] : []));
  openDialog(dialog);
  load();
}

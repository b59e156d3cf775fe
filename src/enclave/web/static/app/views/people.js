// The "People" screen (owners, admins and department admins): everyone with their role and
// department, role changes and moves, new accounts, deactivation and reactivation, and (owners and
// admins) the department tree: add, rename, move under another department, delete, and assign
// department admins. The server decides every change (docs/permissions.md); which controls the
// caller may use comes from the server too (GET /users/me/capabilities: no permission table is
// copied here), they are disabled only as a courtesy, and a refusal is shown as a status message.
// REST: GET/POST /users, PUT /users/{id}/role, PUT /users/{id}/department,
// POST /users/{id}/deactivate|activate, GET/POST /departments, PATCH/DELETE /departments/{id},
// PUT/DELETE /departments/{id}/admins/{user_id}.
import { h } from "../dom.js";
import { t } from "../i18n.js";
import { request } from "../api.js";
import { state, emit, reach, may } from "../store.js";
import { loadCapabilities } from "../sync.js";
import { openDialog, dialogHeader } from "./common.js";

const enc = encodeURIComponent;
const PEOPLE_ACTIONS = ["user.create", "user.deactivate", "user.move_department", "user.set_role"];

export const canManagePeople = () => PEOPLE_ACTIONS.some(may);

const canManageDepartments = () => reach("department.manage") === "org";

/** Where `action` lets me act: null for the whole organization, else the set of departments
 * (my subtree; empty when the action does not reach anywhere). */
function reachOf(action) {
  const scope = reach(action);
  if (scope === "org") return null;
  return new Set(scope === "subtree" ? state.caps.department_ids : []);
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

function errorText(err) {
  const key = `error.${err.code}`;
  return t(key) === key ? t("error.generic") : t(key);
}

const nameOf = (u) => u.display_name || u.username;

export function peopleDialog() {
  const me = state.me;
  const manageTree = canManageDepartments();
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

  function departmentOptions(selected, { none = true, only = null } = {}) {
    const opts = none ? [h("option", { value: "", text: t("people.noDepartment"), selected: !selected })] : [];
    for (const d of treeOrder(departments)) {
      if (only && !only.has(d.id)) continue;
      opts.push(h("option", { value: d.id, text: `${"\u00a0\u00a0".repeat(d.depth)}${d.name}`, selected: d.id === selected }));
    }
    return opts;
  }

  /** Whether `me` may take `action` (deactivate, reactivate, move) on `u`: a role I
   * administer, where the action reaches (the server decides again). */
  function administers(u, action) {
    if (u.id === me.id || !state.caps.administered_roles.includes(u.role)) return false;
    const where = reachOf(action);
    return where === null || where.has(u.department_id);
  }

  function personRow(u) {
    // Roles a change may take away and give; the person's own role is shown in any case.
    const grantable = state.caps.set_roles;
    const shown = grantable.includes(u.role) ? grantable : [u.role, ...grantable];
    const roleSelect = h("select", {
      testid: "person-role", name: "role",
      attrs: { "aria-label": t("people.roleOf", { name: u.username }) },
      disabled: !grantable.includes(u.role) || u.id === me.id,
    }, ...shown.map((r) => h("option", {
      value: r, text: t(`role.${r}`), selected: r === u.role,
      disabled: r !== u.role && !grantable.includes(r),
    })));
    const moveAnywhere = reachOf("user.move_department") === null;
    const deptSelect = h("select", {
      testid: "person-department", name: "department",
      attrs: { "aria-label": t("people.departmentOf", { name: u.username }) },
      disabled: !(administers(u, "user.move_department") || (moveAnywhere && u.id === me.id)),
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
    const action = u.is_active ? "deactivate" : "activate";
    const toggle = h("button", {
      type: "button", testid: "person-active", class: u.is_active ? "secondary" : "primary",
      data: { action }, text: t(`people.${action}`), disabled: !administers(u, "user.deactivate"),
      attrs: { "aria-label": t(`people.${action}Label`, { name: u.username }) },
    });
    toggle.addEventListener("click", async () => {
      if (u.is_active && !window.confirm(t("people.confirmDeactivate", { name: nameOf(u) }))) return;
      toggle.disabled = true;
      try {
        const changed = await request("POST", `/users/${enc(u.id)}/${action}`);
        status.textContent = t(u.is_active ? "people.deactivated" : "people.activated", { name: nameOf(u) });
        replaceUser(changed);
      } catch (err) {
        status.textContent = errorText(err);
        toggle.disabled = false;
      }
    });
    return h("tr", {
      testid: "person-row",
      data: { id: u.id, username: u.username, role: u.role, department: u.department_id || "", active: String(u.is_active) },
    },
    h("td", {}, h("span", { text: nameOf(u) }), " ", h("span", { class: "muted", text: `@${u.username}` })),
    h("td", {}, roleSelect),
    h("td", {}, deptSelect),
    h("td", {}, h("div", { class: "person-state" }, h("span", { text: u.is_active ? t("people.active") : t("people.inactive") }), toggle)));
  }

  function replaceUser(changed) {
    users = users.map((u) => (u.id === changed.id ? changed : u));
    if (state.users.has(changed.id)) {
      state.users.set(changed.id, { ...state.users.get(changed.id), ...changed });
      emit("users");
    }
    if (changed.id === me.id) state.me = { ...state.me, ...changed };
    renderPeople();
    if (manageTree) renderTree(); // the candidates for department admins follow the roles
  }

  function renderPeople() {
    body.replaceChildren(...users.map(personRow));
  }

  // -- a new account -------------------------------------------------------------------------

  const newUsername = h("input", { id: "person-new-username", name: "username", maxLength: 32, required: true, autocomplete: "off", spellcheck: false });
  const newDisplay = h("input", { id: "person-new-display", name: "display_name", maxLength: 100, autocomplete: "off" });
  const newPassword = h("input", { id: "person-new-password", name: "password", type: "password", maxLength: 1024, required: true, autocomplete: "new-password" });
  const newRole = h("select", { id: "person-new-role", name: "role" },
    ...state.caps.grant_roles.map((r) => h("option", { value: r, text: t(`role.${r}`), selected: r === "member" })));
  const newDepartment = h("select", { id: "person-new-department", name: "department" });
  const createButton = h("button", { type: "submit", class: "primary", text: t("people.create.submit") });
  const createForm = h("form", { testid: "person-create", class: "audit-filters", attrs: { "aria-labelledby": "person-new-title" } },
    h("label", { htmlFor: "person-new-username", text: t("people.create.username") }), newUsername,
    h("label", { htmlFor: "person-new-display", text: t("people.create.displayName") }), newDisplay,
    h("label", { htmlFor: "person-new-password", text: t("people.create.password") }), newPassword,
    h("label", { htmlFor: "person-new-role", text: t("people.create.role") }), newRole,
    h("label", { htmlFor: "person-new-department", text: t("people.create.department") }), newDepartment,
    createButton);
  createForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    createButton.disabled = true;
    try {
      const created = await request("POST", "/users", {
        username: newUsername.value.trim(),
        password: newPassword.value,
        display_name: newDisplay.value.trim(),
        role: newRole.value,
        department_id: newDepartment.value || null,
      });
      status.textContent = t("people.created", { username: created.username });
      createForm.reset();
      newRole.value = "member"; // reset() would pick the first role, which may be "owner"
      await load();
    } catch (err) {
      status.textContent = errorText(err);
    } finally {
      createButton.disabled = false;
    }
  });

  function renderNewDepartment() {
    // Department admins create people only inside their own departments (one is required).
    const mine = reachOf("user.create");
    const kept = newDepartment.value;
    newDepartment.replaceChildren(...departmentOptions(null, { none: mine === null, only: mine }));
    if (kept) newDepartment.value = kept;
  }

  // -- the department tree (owners and admins) ---------------------------------------------------

  /** The admins assigned to `d`, each with a button that takes the assignment away. */
  function adminsOf(d) {
    const byId = new Map(users.map((u) => [u.id, u]));
    const list = h("ul", { testid: "department-admins", class: "department-admins", attrs: { "aria-label": t("people.adminsOf", { name: d.name }) } },
      ...d.admin_ids.map((uid) => {
        const u = byId.get(uid);
        const label = u ? nameOf(u) : uid.slice(0, 8);
        const remove = h("button", {
          type: "button", testid: "department-admin-remove", class: "secondary", text: t("people.removeAdmin"),
          attrs: { "aria-label": t("people.removeAdminLabel", { person: label, name: d.name }) },
        });
        remove.addEventListener("click", async () => {
          remove.disabled = true;
          try {
            await request("DELETE", `/departments/${enc(d.id)}/admins/${enc(uid)}`);
            status.textContent = t("people.saved");
            await load();
          } catch (err) {
            status.textContent = errorText(err);
            remove.disabled = false;
          }
        });
        return h("li", { testid: "department-admin", data: { id: uid } }, h("span", { text: t("people.adminIs", { name: label }) }), remove);
      }));
    return d.admin_ids.length ? list : null;
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
    }, form, adminsOf(d));
    item.style.marginInlineStart = `${Math.min(d.depth, 4) * 1.25}rem`; // CSSOM, which the CSP allows
    return item;
  }

  function renderTree() {
    tree.replaceChildren(...treeOrder(departments).map(departmentItem));
    parentSelect.replaceChildren(h("option", { value: "", text: t("people.topLevel") }), ...departmentOptions(null, { none: false }));
    keep(moveWhich, () => departmentOptions(null, { none: false }));
    keep(moveWhere, () => [h("option", { value: "", text: t("people.topLevel") }), ...departmentOptions(null, { none: false })]);
    keep(assignWhere, () => departmentOptions(null, { none: false }));
    keep(assignWho, () => users.filter((u) => u.role === "department_admin" && u.is_active)
      .map((u) => h("option", { value: u.id, text: `${nameOf(u)} (@${u.username})` })));
  }

  /** Refill a select, keeping its choice when it is still there. */
  function keep(select, options) {
    const kept = select.value;
    select.replaceChildren(...options());
    if ([...select.options].some((o) => o.value === kept)) select.value = kept;
  }

  // Move a department under another one (never under itself or below it: 422 department_cycle).
  const moveWhich = h("select", { id: "department-move-which", name: "department" });
  const moveWhere = h("select", { id: "department-move-where", name: "parent" });
  const moveForm = h("form", { testid: "department-move", class: "audit-filters" },
    h("label", { htmlFor: "department-move-which", text: t("people.moveWhich") }), moveWhich,
    h("label", { htmlFor: "department-move-where", text: t("people.moveWhere") }), moveWhere,
    h("button", { type: "submit", class: "secondary", text: t("people.move") }));
  moveForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!moveWhich.value) return;
    try {
      await request("PATCH", `/departments/${enc(moveWhich.value)}`, { parent_id: moveWhere.value || null });
      status.textContent = t("people.saved");
      await load();
    } catch (err) {
      status.textContent = errorText(err);
    }
  });

  // Assign a department admin (a person whose role is department_admin) to a department.
  const assignWhere = h("select", { id: "department-admin-where", name: "department" });
  const assignWho = h("select", { id: "department-admin-who", name: "admin" });
  const assignForm = h("form", { testid: "department-admin-assign", class: "audit-filters" },
    h("label", { htmlFor: "department-admin-who", text: t("people.adminWho") }), assignWho,
    h("label", { htmlFor: "department-admin-where", text: t("people.adminWhere") }), assignWhere,
    h("button", { type: "submit", class: "secondary", text: t("people.assignAdmin") }));
  assignForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!assignWho.value || !assignWhere.value) {
      status.textContent = t("people.needAdmin");
      return;
    }
    try {
      await request("PUT", `/departments/${enc(assignWhere.value)}/admins/${enc(assignWho.value)}`);
      status.textContent = t("people.saved");
      await load();
    } catch (err) {
      status.textContent = errorText(err);
    }
  });

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
      await loadCapabilities(); // assignments to departments may have changed meanwhile
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
      renderNewDepartment();
      if (manageTree) renderTree();
    } catch (err) {
      status.textContent = errorText(err);
    }
  }

  dialog.append(
    dialogHeader("people-title", t("people.title"), dialog),
    h("p", { class: "muted", text: t("people.intro") }),
    h("div", { class: "audit-scroll", tabIndex: 0, attrs: { role: "region", "aria-labelledby": "people-title" } }, table),
    status,
    h("h3", { id: "person-new-title", text: t("people.create.title") }),
    createForm,
    ...(manageTree ? [
      h("h3", { id: "departments-title", text: t("people.departments") }),
      tree,
      addForm,
      h("h4", { id: "department-move-title", text: t("people.moveTitle") }),
      moveForm,
      h("h4", { id: "department-admin-title", text: t("people.adminsTitle") }),
      h("p", { class: "muted", text: t("people.adminsIntro") }),
      assignForm,
    ] : []));
  openDialog(dialog);
  load();
}

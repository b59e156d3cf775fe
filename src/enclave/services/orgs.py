"""Organizations (tenants), their department trees and department admins, where people belong,
and org roles. Every change here is audited in its own transaction; every permission question
goes through `gates` (and so through the policy table)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from enclave.crypto import tokens
from enclave.domain.errors import Conflict, InvalidInput, NotFound
from enclave.domain.ids import DepartmentId, OrgId, UserId, new_id
from enclave.domain.models import Department, Org, OrgRole, User
from enclave.domain.policy import DEPARTMENT_MAX_DEPTH, OrgAction
from enclave.domain.signals import AccessChanged
from enclave.services import audit, gates, validate
from enclave.services.accounts import Bootstrap, insert_org_with_owner, org_required
from enclave.services.context import Changes, Context, write
from enclave.storage import accounts as account_store
from enclave.storage import orgs as store
from enclave.storage.base import Tx, UniqueViolation

ORG_NAME_MAX = 100
DEPARTMENT_NAME_MAX = 80
MAX_DEPARTMENTS = 1000
"""Departments per organization."""


@dataclass(frozen=True)
class DepartmentView:
    """A department with the people assigned to administer it."""

    department: Department
    admin_ids: tuple[UserId, ...]


# -- organizations (the operator, at the server's shell) ------------------------------------


async def create_org(ctx: Context, name: str, owner_username: str) -> Bootstrap:
    """A new organization with its first owner, who gets a one-time password (shown once)."""
    clean = validate.line(name, field="name", max_chars=ORG_NAME_MAX)
    username = validate.username(owner_username)
    password = tokens.new_password()
    pw_hash = await ctx.cpu(ctx.passwords.hash, password)

    def work(ch: Changes) -> Bootstrap:
        try:
            org, owner = insert_org_with_owner(ch, clean, username, pw_hash)
        except UniqueViolation:
            raise Conflict("username_taken", f"username {username!r} is taken") from None
        audit.record(
            ctx,
            ch,
            "org.created",
            audit.Actor.operator(org.id),
            target=audit.Target("org", org.id),
            details={"name": clean, "owner_id": owner.id, "owner": username, "via": "cli"},
        )
        return Bootstrap(org=org, owner=owner, one_time_password=password)

    return await write(ctx, work)


async def list_orgs(ctx: Context) -> list[tuple[Org, int]]:
    """Every organization of the installation with its number of active people (the CLI)."""
    return await ctx.db.read(store.all_orgs)


async def operator_org(ctx: Context, which: str | None) -> Org:
    """The organization the operator names (the CLI's `--org`): by its id, or else by its name
    (ignoring case). Without a name, the only organization; with several, `org_required`, as
    when a name fits more than one. An unknown one is not found."""
    orgs = [org for org, _people in await ctx.db.read(store.all_orgs)]
    if not orgs:
        raise Conflict("not_initialized", "run `enclave init` first")
    if which is None:
        if len(orgs) > 1:
            raise org_required(orgs)
        return orgs[0]
    wanted = which.strip()
    fits = [o for o in orgs if o.id == wanted] or [
        o for o in orgs if o.name.casefold() == wanted.casefold()
    ]
    if not fits:
        raise NotFound(f"organization {wanted!r}")
    if len(fits) > 1:
        raise org_required(fits, f"{len(fits)} organizations are named {wanted!r}; use the id")
    return fits[0]


# -- departments ------------------------------------------------------------------------------


def _views(tx: Tx, org_id: OrgId) -> list[DepartmentView]:
    admins: dict[DepartmentId, list[UserId]] = {}
    for dept_id, user_id in store.admin_assignments(tx, org_id):
        admins.setdefault(dept_id, []).append(user_id)
    return [DepartmentView(d, tuple(admins.get(d.id, ()))) for d in store.departments(tx, org_id)]


def _view(tx: Tx, dept: Department) -> DepartmentView:
    found = [v for v in _views(tx, dept.org_id) if v.department.id == dept.id]
    return found[0] if found else DepartmentView(dept, ())


async def list_departments(ctx: Context, actor: User) -> list[DepartmentView]:
    """The actor's organization's departments, by name (a flat list with parent ids)."""
    gates.require_org(actor, OrgAction.VIEW_DEPARTMENTS)
    return await ctx.db.read(lambda tx: _views(tx, actor.org_id))


def _depth(parents: dict[DepartmentId, DepartmentId | None], dept_id: DepartmentId | None) -> int:
    """Levels from the root down to `dept_id` (a root is 1; None, above the roots, is 0)."""
    depth = 0
    while dept_id is not None and depth <= len(parents):
        depth += 1
        dept_id = parents.get(dept_id)
    return depth


def _height(parents: dict[DepartmentId, DepartmentId | None], dept_id: DepartmentId) -> int:
    """Levels of the subtree under and including `dept_id` (a leaf is 1)."""
    children: dict[DepartmentId | None, list[DepartmentId]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)

    def height(node: DepartmentId, seen: int) -> int:
        if seen > len(parents):
            return seen  # a cycle cannot exist, but never loop
        return 1 + max((height(c, seen + 1) for c in children.get(node, [])), default=0)

    return height(dept_id, 0)


def _descendants(
    parents: dict[DepartmentId, DepartmentId | None], dept_id: DepartmentId
) -> set[DepartmentId]:
    """`dept_id` and every department below it."""
    found = {dept_id}
    changed = True
    while changed:
        changed = False
        for child, parent in parents.items():
            if parent in found and child not in found:
                found.add(child)
                changed = True
    return found


def _parents(tx: Tx, org_id: OrgId) -> dict[DepartmentId, DepartmentId | None]:
    return {d.id: d.parent_id for d in store.departments(tx, org_id)}


async def create_department(
    ctx: Context, actor: User, *, name: str, parent_id: str | None, ip: str | None = None
) -> DepartmentView:
    gates.require_org(actor, OrgAction.MANAGE_DEPARTMENTS)
    clean = validate.line(name, field="name", max_chars=DEPARTMENT_NAME_MAX)

    def work(ch: Changes) -> DepartmentView:
        parent = gates.department_in_org(ch.tx, actor, parent_id) if parent_id else None
        parents = _parents(ch.tx, actor.org_id)
        if len(parents) >= MAX_DEPARTMENTS:
            raise Conflict("too_many_departments", "the organization has too many departments")
        if _depth(parents, parent.id if parent else None) + 1 > DEPARTMENT_MAX_DEPTH:
            raise InvalidInput("department_too_deep", "departments nest at most 10 levels deep")
        dept = Department(
            id=DepartmentId(new_id()),
            org_id=actor.org_id,
            parent_id=parent.id if parent else None,
            name=clean,
            created_at=ch.now,
        )
        try:
            store.insert_department(ch.tx, dept)
        except UniqueViolation:
            raise Conflict("department_name_taken", f"{clean!r} exists here already") from None
        audit.record(
            ctx,
            ch,
            "department.created",
            audit.Actor.of(actor, ip),
            target=audit.Target("department", dept.id),
            details={"name": clean, "parent_id": dept.parent_id},
        )
        return DepartmentView(dept, ())

    return await write(ctx, work)


async def update_department(
    ctx: Context,
    actor: User,
    dept_id: str,
    *,
    name: str | None = None,
    move: bool = False,
    parent_id: str | None = None,
    ip: str | None = None,
) -> DepartmentView:
    """Rename a department, and/or move it (`move`) under `parent_id` (None: to the top)."""
    gates.require_org(actor, OrgAction.MANAGE_DEPARTMENTS)
    clean = (
        validate.line(name, field="name", max_chars=DEPARTMENT_NAME_MAX)
        if name is not None
        else None
    )

    def work(ch: Changes) -> DepartmentView:
        dept = gates.department(ch.tx, actor, dept_id, OrgAction.MANAGE_DEPARTMENTS)
        changed = dept
        if clean is not None:
            changed = replace(changed, name=clean)
        if move:
            parent = gates.department_in_org(ch.tx, actor, parent_id) if parent_id else None
            parents = _parents(ch.tx, actor.org_id)
            if parent is not None and parent.id in _descendants(parents, dept.id):
                raise InvalidInput("department_cycle", "a department cannot be its own ancestor")
            new_parent = parent.id if parent else None
            if _depth(parents, new_parent) + _height(parents, dept.id) > DEPARTMENT_MAX_DEPTH:
                raise InvalidInput("department_too_deep", "departments nest at most 10 levels deep")
            changed = replace(changed, parent_id=new_parent)
        diff = {
            key: {"from": getattr(dept, key), "to": getattr(changed, key)}
            for key in ("name", "parent_id")
            if getattr(dept, key) != getattr(changed, key)
        }
        if not diff:
            return _view(ch.tx, dept)
        try:
            store.update_department(ch.tx, changed)
        except UniqueViolation:
            raise Conflict("department_name_taken", "the name exists there already") from None
        audit.record(
            ctx,
            ch,
            "department.updated",
            audit.Actor.of(actor, ip),
            target=audit.Target("department", dept.id),
            details={"changed": diff},
        )
        return _view(ch.tx, changed)

    return await write(ctx, work)


async def delete_department(ctx: Context, actor: User, dept_id: str, ip: str | None = None) -> None:
    """Delete an empty department (no sub-departments, nobody in it); its admin assignments go
    with it."""
    gates.require_org(actor, OrgAction.MANAGE_DEPARTMENTS)

    def work(ch: Changes) -> None:
        dept = gates.department(ch.tx, actor, dept_id, OrgAction.MANAGE_DEPARTMENTS)
        if store.has_children(ch.tx, dept.id) or store.count_people(ch.tx, dept.id) > 0:
            raise Conflict("department_not_empty", "move its people and sub-departments first")
        admins = [u for d, u in store.admin_assignments(ch.tx, actor.org_id) if d == dept.id]
        store.delete_department(ch.tx, dept.id)
        audit.record(
            ctx,
            ch,
            "department.deleted",
            audit.Actor.of(actor, ip),
            target=audit.Target("department", dept.id),
            details={"name": dept.name, "parent_id": dept.parent_id, "admins_removed": admins},
        )

    await write(ctx, work)


async def add_department_admin(
    ctx: Context, actor: User, dept_id: str, user_id: str, ip: str | None = None
) -> DepartmentView:
    """Let a department admin administer the department and everything below it."""
    gates.require_org(actor, OrgAction.ASSIGN_DEPARTMENT_ADMINS)

    def work(ch: Changes) -> DepartmentView:
        dept = gates.department(ch.tx, actor, dept_id, OrgAction.ASSIGN_DEPARTMENT_ADMINS)
        target = gates.org_user(ch.tx, actor, user_id)
        if target.role is not OrgRole.DEPARTMENT_ADMIN:
            raise Conflict(
                "not_department_admin", "give the person the department_admin role first"
            )
        if store.add_admin(ch.tx, dept.id, target.id, ch.now):
            audit.record(
                ctx,
                ch,
                "department.admin_added",
                audit.Actor.of(actor, ip),
                target=audit.Target("user", target.id),
                details={"department_id": dept.id, "username": target.username},
            )
        return _view(ch.tx, dept)

    return await write(ctx, work)


async def remove_department_admin(
    ctx: Context, actor: User, dept_id: str, user_id: str, ip: str | None = None
) -> DepartmentView:
    gates.require_org(actor, OrgAction.ASSIGN_DEPARTMENT_ADMINS)

    def work(ch: Changes) -> DepartmentView:
        dept = gates.department(ch.tx, actor, dept_id, OrgAction.ASSIGN_DEPARTMENT_ADMINS)
        target = gates.org_user(ch.tx, actor, user_id)
        if not store.remove_admin(ch.tx, dept.id, target.id):
            raise NotFound("department admin")
        audit.record(
            ctx,
            ch,
            "department.admin_removed",
            audit.Actor.of(actor, ip),
            target=audit.Target("user", target.id),
            details={"department_id": dept.id, "username": target.username},
        )
        return _view(ch.tx, dept)

    return await write(ctx, work)


# -- people -----------------------------------------------------------------------------------


async def move_user(
    ctx: Context, actor: User, user_id: str, department_id: str | None, ip: str | None = None
) -> User:
    """Put a person into a department (None: into none). Department admins move only people of
    their subtree, and only within it."""
    gates.require_scope(actor, OrgAction.MOVE_USER)

    def work(ch: Changes) -> tuple[User, bool]:
        target = gates.user_admin(ch.tx, actor, OrgAction.MOVE_USER, user_id)
        dept = gates.placement(ch.tx, actor, OrgAction.MOVE_USER, department_id, None)
        new_id_ = dept.id if dept else None
        if new_id_ == target.department_id:
            return target, False
        store.set_department(ch.tx, target.id, new_id_)
        audit.record(
            ctx,
            ch,
            "user.department_changed",
            audit.Actor.of(actor, ip),
            target=audit.Target("user", target.id),
            details={"username": target.username, "from": target.department_id, "to": new_id_},
        )
        return replace(target, department_id=new_id_), True

    return await _changed_access(ctx, await write(ctx, work))


async def set_role(
    ctx: Context, actor: User, user_id: str, role: OrgRole, ip: str | None = None
) -> User:
    """Change a person's org role. Owners give any role; admins give and take away only
    compliance officer, department admin, member and guest; the last owner stays one."""
    gates.require_org(actor, OrgAction.SET_USER_ROLE)

    def work(ch: Changes) -> tuple[User, bool]:
        target = gates.role_change(ch.tx, actor, user_id, role)
        if target.role is role:
            return target, False
        demoting_owner = target.role is OrgRole.OWNER and target.is_active
        if demoting_owner and account_store.count_owners(ch.tx, target.org_id) <= 1:
            raise Conflict("last_owner", "the last owner cannot be demoted")
        store.set_role(ch.tx, target.id, role)
        removed = 0
        if target.role is OrgRole.DEPARTMENT_ADMIN:
            removed = store.remove_all_admin_assignments(ch.tx, target.id)
        audit.record(
            ctx,
            ch,
            "user.role_changed",
            audit.Actor.of(actor, ip),
            target=audit.Target("user", target.id),
            details={
                "username": target.username,
                "from": target.role.value,
                "to": role.value,
                "department_admin_assignments_removed": removed,
            },
        )
        return replace(target, role=role), True

    return await _changed_access(ctx, await write(ctx, work))


async def _changed_access(ctx: Context, result: tuple[User, bool]) -> User:
    """After a committed change of a person's role or department: their live connections
    (on every node) take it at once."""
    user, changed = result
    if changed:
        await ctx.bus.publish(AccessChanged(user.org_id, user.id))
    return user

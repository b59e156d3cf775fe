"""Departments, department admins, and where people belong and which org role they have."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from enclave.api import schemas as s
from enclave.api.deps import Actor, ClientIp, Ctx
from enclave.api.errors import ERROR_RESPONSES
from enclave.domain import wire
from enclave.domain.models import OrgRole
from enclave.services import orgs

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

PathId = Annotated[str, Path(max_length=s.MAX_ID)]


def _department(view: orgs.DepartmentView) -> dict[str, Any]:
    return wire.department(view.department, view.admin_ids)


@router.get("/departments", response_model=s.DepartmentList, tags=["departments"])
async def list_departments(ctx: Ctx, actor: Actor) -> dict[str, Any]:
    """Your organization's departments as a flat list (each names its parent), by name.
    Everyone but guests (403 `forbidden`)."""
    found = await orgs.list_departments(ctx, actor)
    return {"departments": [_department(v) for v in found]}


@router.post("/departments", status_code=201, response_model=s.DepartmentOut, tags=["departments"])
async def create_department(
    body: s.DepartmentCreateIn, ctx: Ctx, actor: Actor, ip: ClientIp
) -> dict[str, Any]:
    """Create a department, at the top or under `parent_id` (owners and admins). Names are
    unique among siblings (409 `department_name_taken`); at most 10 levels deep."""
    view = await orgs.create_department(ctx, actor, name=body.name, parent_id=body.parent_id, ip=ip)
    return _department(view)


@router.patch("/departments/{dept_id}", response_model=s.DepartmentOut, tags=["departments"])
async def update_department(
    dept_id: PathId, body: s.DepartmentUpdateIn, ctx: Ctx, actor: Actor, ip: ClientIp
) -> dict[str, Any]:
    """Rename a department, or move it: `parent_id` given (null: to the top). A department
    cannot move under itself or below (422 `department_cycle`). Owners and admins."""
    view = await orgs.update_department(
        ctx,
        actor,
        dept_id,
        name=body.name,
        move="parent_id" in body.model_fields_set,
        parent_id=body.parent_id,
        ip=ip,
    )
    return _department(view)


@router.delete("/departments/{dept_id}", status_code=204, tags=["departments"])
async def delete_department(dept_id: PathId, ctx: Ctx, actor: Actor, ip: ClientIp) -> Response:
    """Delete an empty department (no sub-departments, nobody in it; else 409
    `department_not_empty`). Owners and admins."""
    await orgs.delete_department(ctx, actor, dept_id, ip)
    return Response(status_code=204)


@router.put(
    "/departments/{dept_id}/admins/{user_id}",
    response_model=s.DepartmentOut,
    tags=["departments"],
)
async def add_department_admin(
    dept_id: PathId, user_id: PathId, ctx: Ctx, actor: Actor, ip: ClientIp
) -> dict[str, Any]:
    """Let a person whose role is `department_admin` administer this department and everything
    below it (409 `not_department_admin` otherwise). Owners and admins."""
    return _department(await orgs.add_department_admin(ctx, actor, dept_id, user_id, ip))


@router.delete(
    "/departments/{dept_id}/admins/{user_id}",
    response_model=s.DepartmentOut,
    tags=["departments"],
)
async def remove_department_admin(
    dept_id: PathId, user_id: PathId, ctx: Ctx, actor: Actor, ip: ClientIp
) -> dict[str, Any]:
    """Stop a department admin administering this department. Owners and admins."""
    return _department(await orgs.remove_department_admin(ctx, actor, dept_id, user_id, ip))


@router.put("/users/{user_id}/department", response_model=s.UserOut, tags=["users"])
async def move_user(
    user_id: PathId, body: s.UserDepartmentIn, ctx: Ctx, actor: Actor, ip: ClientIp
) -> dict[str, Any]:
    """Put a person into a department (`null`: into none). Owners and admins anywhere;
    department admins only people of their departments, and only into them."""
    return wire.user(await orgs.move_user(ctx, actor, user_id, body.department_id, ip))


@router.put("/users/{user_id}/role", response_model=s.UserOut, tags=["users"])
async def set_role(
    user_id: PathId, body: s.UserRoleIn, ctx: Ctx, actor: Actor, ip: ClientIp
) -> dict[str, Any]:
    """Change a person's org role. Owners may give any role; admins give and take away only
    `compliance_officer`, `department_admin`, `member` and `guest` (403 `forbidden`
    otherwise); the last owner cannot be demoted (409 `last_owner`). Audited."""
    return wire.user(await orgs.set_role(ctx, actor, user_id, OrgRole(body.role), ip))

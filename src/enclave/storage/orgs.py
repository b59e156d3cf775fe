"""Organizations as tenants, their department trees, department admins, roles, and the views of
the directory that depend on who asks."""

from __future__ import annotations

from enclave.domain.ids import DepartmentId, OrgId, UserId
from enclave.domain.models import Department, Org, OrgRole, User
from enclave.storage import accounts
from enclave.storage.base import Row, Tx

# -- organizations ----------------------------------------------------------------------------


def all_orgs(tx: Tx) -> list[tuple[Org, int]]:
    """Every organization of the installation, oldest first, with its number of active people."""
    rows = tx.fetchall(
        "SELECT o.id, o.name, o.created_at,"
        " (SELECT COUNT(*) FROM users u WHERE u.org_id = o.id AND u.is_active = 1) AS people"
        " FROM orgs o ORDER BY o.created_at, o.id"
    )
    return [
        (Org(id=OrgId(r["id"]), name=r["name"], created_at=r["created_at"]), int(r["people"]))
        for r in rows
    ]


# -- departments ------------------------------------------------------------------------------


def _department(row: Row) -> Department:
    return Department(
        id=DepartmentId(row["id"]),
        org_id=OrgId(row["org_id"]),
        parent_id=DepartmentId(row["parent_id"]) if row["parent_id"] else None,
        name=row["name"],
        created_at=row["created_at"],
    )


def insert_department(tx: Tx, dept: Department) -> None:
    """Insert; raises UniqueViolation if a sibling has the same name (case-insensitive)."""
    tx.execute(
        "INSERT INTO departments (id, org_id, parent_id, parent_key, name, name_key, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            dept.id,
            dept.org_id,
            dept.parent_id,
            dept.parent_id or "",
            dept.name,
            dept.name.casefold(),
            dept.created_at,
        ),
    )


def department(tx: Tx, dept_id: str) -> Department | None:
    row = tx.fetchone(
        "SELECT id, org_id, parent_id, name, created_at FROM departments WHERE id = ?", (dept_id,)
    )
    return _department(row) if row else None


def departments(tx: Tx, org_id: OrgId) -> list[Department]:
    """Every department of the organization, by name."""
    return [
        _department(r)
        for r in tx.fetchall(
            "SELECT id, org_id, parent_id, name, created_at FROM departments WHERE org_id = ?"
            " ORDER BY name_key, id",
            (org_id,),
        )
    ]


def count_departments(tx: Tx, org_id: OrgId) -> int:
    row = tx.fetchone("SELECT COUNT(*) AS n FROM departments WHERE org_id = ?", (org_id,))
    return int(row["n"]) if row else 0


def update_department(tx: Tx, dept: Department) -> None:
    """Rename or move; raises UniqueViolation if the new siblings have the name already."""
    tx.execute(
        "UPDATE departments SET parent_id = ?, parent_key = ?, name = ?, name_key = ? WHERE id = ?",
        (dept.parent_id, dept.parent_id or "", dept.name, dept.name.casefold(), dept.id),
    )


def delete_department(tx: Tx, dept_id: DepartmentId) -> None:
    tx.execute("DELETE FROM department_admins WHERE department_id = ?", (dept_id,))
    tx.execute("DELETE FROM departments WHERE id = ?", (dept_id,))


def has_children(tx: Tx, dept_id: DepartmentId) -> bool:
    row = tx.fetchone("SELECT 1 AS x FROM departments WHERE parent_id = ? LIMIT 1", (dept_id,))
    return row is not None


def count_people(tx: Tx, dept_id: DepartmentId) -> int:
    """People in the department itself (deactivated accounts too), not below it."""
    row = tx.fetchone("SELECT COUNT(*) AS n FROM users WHERE department_id = ?", (dept_id,))
    return int(row["n"]) if row else 0


# -- department admins ------------------------------------------------------------------------


def admin_assignments(tx: Tx, org_id: OrgId) -> list[tuple[DepartmentId, UserId]]:
    """Every (department, admin) pair of the organization."""
    return [
        (DepartmentId(r["department_id"]), UserId(r["user_id"]))
        for r in tx.fetchall(
            "SELECT a.department_id, a.user_id FROM department_admins a"
            " JOIN departments d ON d.id = a.department_id WHERE d.org_id = ?"
            " ORDER BY a.department_id, a.user_id",
            (org_id,),
        )
    ]


def departments_administered(tx: Tx, user_id: UserId) -> list[DepartmentId]:
    return [
        DepartmentId(r["department_id"])
        for r in tx.fetchall(
            "SELECT department_id FROM department_admins WHERE user_id = ? ORDER BY department_id",
            (user_id,),
        )
    ]


def add_admin(tx: Tx, dept_id: DepartmentId, user_id: UserId, now: int) -> bool:
    """Make `user_id` an admin of the department; False if they were one already."""
    return (
        tx.execute(
            "INSERT INTO department_admins (user_id, department_id, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (user_id, dept_id, now),
        )
        == 1
    )


def remove_admin(tx: Tx, dept_id: DepartmentId, user_id: UserId) -> bool:
    return (
        tx.execute(
            "DELETE FROM department_admins WHERE user_id = ? AND department_id = ?",
            (user_id, dept_id),
        )
        == 1
    )


def remove_all_admin_assignments(tx: Tx, user_id: UserId) -> int:
    return tx.execute("DELETE FROM department_admins WHERE user_id = ?", (user_id,))


def in_subtree(tx: Tx, admin_id: UserId, dept_id: str) -> bool:
    """True if `dept_id` is a department `admin_id` administers, or one below it."""
    # Trees have no cycles (the service refuses moves that would make one), and UNION would
    # stop at one anyway.
    row = tx.fetchone(
        "WITH RECURSIVE sub(id) AS ("
        " SELECT department_id FROM department_admins WHERE user_id = ?"
        " UNION SELECT d.id FROM departments d JOIN sub ON d.parent_id = sub.id)"
        " SELECT 1 AS x FROM sub WHERE id = ?",
        (admin_id, dept_id),
    )
    return row is not None


def subtree_ids(tx: Tx, admin_id: UserId) -> list[DepartmentId]:
    """The departments `admin_id` administers, and every one below them."""
    return [
        DepartmentId(r["id"])
        for r in tx.fetchall(
            "WITH RECURSIVE sub(id) AS ("
            " SELECT department_id FROM department_admins WHERE user_id = ?"
            " UNION SELECT d.id FROM departments d JOIN sub ON d.parent_id = sub.id)"
            " SELECT id FROM sub ORDER BY id",
            (admin_id,),
        )
    ]


# -- people -----------------------------------------------------------------------------------


def set_role(tx: Tx, user_id: UserId, role: OrgRole) -> None:
    tx.execute("UPDATE users SET role = ? WHERE id = ?", (role.value, user_id))


def set_department(tx: Tx, user_id: UserId, dept_id: DepartmentId | None) -> None:
    tx.execute("UPDATE users SET department_id = ? WHERE id = ?", (dept_id, user_id))


def shares_conversation(tx: Tx, user_id: str, other_id: str) -> bool:
    """True if the two people are members of at least one common conversation."""
    row = tx.fetchone(
        "SELECT 1 AS x FROM members a JOIN members b ON b.conversation_id = a.conversation_id"
        " WHERE a.user_id = ? AND b.user_id = ? LIMIT 1",
        (user_id, other_id),
    )
    return row is not None


def users_sharing_conversations(tx: Tx, user: User, *, after: str, limit: int) -> list[User]:
    """Active people who share a conversation with `user` (and `user`), by username: the
    directory as a guest sees it."""
    return [
        accounts.user_from_row(tx, r)
        for r in tx.fetchall(
            "SELECT u.id, u.org_id, u.username, u.display_name, u.role, u.is_active,"
            " u.must_change_password, u.created_at, u.department_id FROM users u"
            " WHERE u.org_id = ? AND u.username > ? AND u.is_active = 1"
            " AND (u.id = ? OR EXISTS (SELECT 1 FROM members a JOIN members b"
            " ON b.conversation_id = a.conversation_id"
            " WHERE a.user_id = ? AND b.user_id = u.id))"
            " ORDER BY u.username LIMIT ?",
            (user.org_id, after, user.id, user.id, limit),
        )
    ]


def users_with_inactive_in_subtree(tx: Tx, admin: User, *, after: str, limit: int) -> list[User]:
    """Active people of the organization and the deactivated ones of the departments `admin`
    administers (and below), by username: the directory as a department admin sees it."""
    return [
        accounts.user_from_row(tx, r)
        for r in tx.fetchall(
            "WITH RECURSIVE sub(id) AS ("
            " SELECT department_id FROM department_admins WHERE user_id = ?"
            " UNION SELECT d.id FROM departments d JOIN sub ON d.parent_id = sub.id)"
            " SELECT u.id, u.org_id, u.username, u.display_name, u.role, u.is_active,"
            " u.must_change_password, u.created_at, u.department_id FROM users u"
            " WHERE u.org_id = ? AND u.username > ?"
            " AND (u.is_active = 1 OR u.department_id IN (SELECT id FROM sub))"
            " ORDER BY u.username LIMIT ?",
            (admin.id, admin.org_id, after, limit),
        )
    ]

"""Organizations, users and sessions."""

from __future__ import annotations

from enclave.domain.ids import DepartmentId, OrgId, UserId, user_scope
from enclave.domain.models import Org, OrgRole, OrgSettings, Session, User
from enclave.storage.base import Row, Tx


def name_aad(user_id: str) -> str:
    return f"users.display_name|{user_id}"


def _user(tx: Tx, row: Row) -> User:
    display_name = tx.sealer.open(tx, name_aad(row["id"]), row["display_name"])
    return User(
        id=UserId(row["id"]),
        org_id=OrgId(row["org_id"]),
        username=row["username"],
        display_name=display_name or "",
        role=OrgRole(row["role"]),
        is_active=bool(row["is_active"]),
        must_change_password=bool(row["must_change_password"]),
        created_at=row["created_at"],
        department_id=DepartmentId(row["department_id"]) if row["department_id"] else None,
    )


user_from_row = _user
"""A `User` from a row of the users table's columns (display name opened)."""


def insert_org(tx: Tx, org: Org) -> None:
    tx.execute(
        "INSERT INTO orgs (id, name, created_at) VALUES (?, ?, ?)",
        (org.id, org.name, org.created_at),
    )


def org_by_id(tx: Tx, org_id: OrgId) -> Org | None:
    row = tx.fetchone("SELECT id, name, created_at FROM orgs WHERE id = ?", (org_id,))
    if row is None:
        return None
    return Org(id=OrgId(row["id"]), name=row["name"], created_at=row["created_at"])


def org_settings(tx: Tx, org_id: OrgId) -> OrgSettings:
    """An organization's settings; the defaults until an admin changes one."""
    row = tx.fetchone(
        "SELECT require_mfa, updated_at, erasure_mode FROM org_settings WHERE org_id = ?",
        (org_id,),
    )
    if row is None:
        return OrgSettings(org_id=org_id)
    return OrgSettings(
        org_id=org_id,
        require_mfa=bool(row["require_mfa"]),
        updated_at=row["updated_at"],
        erasure_mode=row["erasure_mode"],
    )


def put_org_settings(tx: Tx, settings: OrgSettings) -> None:
    tx.execute(
        "INSERT INTO org_settings (org_id, require_mfa, updated_at, erasure_mode)"
        " VALUES (?, ?, ?, ?)"
        " ON CONFLICT (org_id) DO UPDATE SET require_mfa = excluded.require_mfa,"
        " updated_at = excluded.updated_at, erasure_mode = excluded.erasure_mode",
        (settings.org_id, int(settings.require_mfa), settings.updated_at, settings.erasure_mode),
    )


def first_org(tx: Tx) -> Org | None:
    row = tx.fetchone("SELECT id, name, created_at FROM orgs ORDER BY created_at, id LIMIT 1")
    if row is None:
        return None
    return Org(id=OrgId(row["id"]), name=row["name"], created_at=row["created_at"])


def insert_user(tx: Tx, user: User, password_hash: str) -> None:
    """Insert a user; raises UniqueViolation if the username is taken."""
    tx.execute(
        "INSERT INTO users (id, org_id, username, display_name, password_hash, role, is_active,"
        " must_change_password, created_at, department_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            user.id,
            user.org_id,
            user.username,
            tx.sealer.seal(
                tx, user_scope(user.id), user.created_at, name_aad(user.id), user.display_name
            ),
            password_hash,
            user.role.value,
            int(user.is_active),
            int(user.must_change_password),
            user.created_at,
            user.department_id,
        ),
    )


def user_by_id(tx: Tx, user_id: str) -> User | None:
    row = tx.fetchone(
        "SELECT id, org_id, username, display_name, role, is_active, must_change_password,"
        " created_at, department_id"
        " FROM users WHERE id = ?",
        (user_id,),
    )
    return _user(tx, row) if row else None


def user_with_hash(tx: Tx, username: str) -> tuple[User, str] | None:
    row = tx.fetchone(
        "SELECT id, org_id, username, display_name, role, is_active, must_change_password,"
        " created_at, department_id"
        ", password_hash FROM users WHERE username = ?",
        (username,),
    )
    return (_user(tx, row), row["password_hash"]) if row else None


def password_hash(tx: Tx, user_id: UserId) -> str | None:
    row = tx.fetchone("SELECT password_hash FROM users WHERE id = ?", (user_id,))
    return row["password_hash"] if row else None


def users_in_org(
    tx: Tx, org_id: OrgId, *, include_inactive: bool, after: str, limit: int
) -> list[User]:
    """Users ordered by username, paged by the last username seen."""
    return [
        _user(tx, r)
        for r in tx.fetchall(
            "SELECT id, org_id, username, display_name, role, is_active, must_change_password,"
            " created_at, department_id"
            " FROM users WHERE org_id = ? AND username > ?"
            " AND (is_active = 1 OR ? = 1) ORDER BY username LIMIT ?",
            (org_id, after, int(include_inactive), limit),
        )
    ]


def active_users_by_username(tx: Tx, org_id: OrgId, usernames: list[str]) -> list[User]:
    found = []
    for name in usernames:
        row = tx.fetchone(
            "SELECT id, org_id, username, display_name, role, is_active, must_change_password,"
            " created_at, department_id"
            " FROM users WHERE username = ? AND org_id = ?"
            " AND is_active = 1",
            (name, org_id),
        )
        if row:
            found.append(_user(tx, row))
    return found


def count_owners(tx: Tx, org_id: OrgId) -> int:
    row = tx.fetchone(
        "SELECT COUNT(*) AS n FROM users WHERE org_id = ? AND role = 'owner' AND is_active = 1",
        (org_id,),
    )
    return int(row["n"]) if row else 0


def set_active(tx: Tx, user_id: UserId, active: bool) -> None:
    tx.execute("UPDATE users SET is_active = ? WHERE id = ?", (int(active), user_id))


def replace_hash(tx: Tx, user_id: UserId, old_hash: str, new_hash: str) -> None:
    """Swap a password hash for an equivalent one, unless the password changed meanwhile."""
    tx.execute(
        "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?",
        (new_hash, user_id, old_hash),
    )


def set_password(tx: Tx, user_id: UserId, new_hash: str, *, must_change: bool) -> None:
    tx.execute(
        "UPDATE users SET password_hash = ?, must_change_password = ? WHERE id = ?",
        (new_hash, int(must_change), user_id),
    )


# -- sessions ---------------------------------------------------------------------------------


def insert_session(tx: Tx, session: Session) -> None:
    tx.execute(
        "INSERT INTO sessions (token_hash, user_id, created_at, last_used_at, expires_at,"
        " user_agent, last_ip) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            session.token_hash,
            session.user_id,
            session.created_at,
            session.last_used_at,
            session.expires_at,
            session.user_agent,
            session.last_ip,
        ),
    )


def session_user(tx: Tx, token_hash: bytes) -> tuple[Session, User] | None:
    found = session_state(tx, token_hash)
    return (found[0], found[1]) if found else None


def session_state(tx: Tx, token_hash: bytes) -> tuple[Session, User, bool, bool] | None:
    """A session, its user, whether the user must still enrol in MFA (their organization
    requires it and they have no confirmed second factor), and whether they must still accept
    their organization's current terms of use, in one query."""
    row = tx.fetchone(
        "SELECT s.token_hash, s.user_id, s.created_at AS s_created, s.last_used_at, s.expires_at,"
        " s.user_agent, s.last_ip,"
        " u.id, u.org_id, u.username, u.display_name, u.role, u.is_active,"
        " u.must_change_password, u.created_at, u.department_id,"
        " (SELECT o.require_mfa FROM org_settings o WHERE o.org_id = u.org_id) AS require_mfa,"
        " (SELECT m.confirmed_at FROM user_mfa m WHERE m.user_id = u.id) AS mfa_confirmed_at,"
        " (SELECT MAX(t.seq) FROM terms t WHERE t.org_id = u.org_id) AS terms_seq,"
        " (SELECT MAX(a.terms_seq) FROM terms_acceptances a WHERE a.user_id = u.id)"
        " AS accepted_terms_seq"
        " FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.token_hash = ?",
        (token_hash,),
    )
    if row is None:
        return None
    session = Session(
        token_hash=bytes(row["token_hash"]),
        user_id=UserId(row["user_id"]),
        created_at=row["s_created"],
        last_used_at=row["last_used_at"],
        expires_at=row["expires_at"],
        user_agent=row["user_agent"],
        last_ip=row["last_ip"],
    )
    mfa_missing = bool(row["require_mfa"]) and row["mfa_confirmed_at"] is None
    current_terms, accepted = row["terms_seq"], row["accepted_terms_seq"]
    terms_pending = current_terms is not None and (accepted is None or accepted < current_terms)
    return session, _user(tx, row), mfa_missing, terms_pending


def touch_session(tx: Tx, token_hash: bytes, now: int, ip: str | None = None) -> None:
    """Record a use of the session (and its address, when known)."""
    tx.execute(
        "UPDATE sessions SET last_used_at = ?, last_ip = COALESCE(?, last_ip) WHERE token_hash = ?",
        (now, ip, token_hash),
    )


def delete_session(tx: Tx, token_hash: bytes) -> None:
    tx.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))


def delete_user_sessions(tx: Tx, user_id: UserId, *, keep: bytes | None = None) -> int:
    return tx.execute(
        "DELETE FROM sessions WHERE user_id = ? AND token_hash <> ?", (user_id, keep or b"")
    )


def user_sessions(tx: Tx, user_id: UserId) -> list[Session]:
    """A user's sessions, most recently used first."""
    return [
        Session(
            token_hash=bytes(r["token_hash"]),
            user_id=UserId(r["user_id"]),
            created_at=r["created_at"],
            last_used_at=r["last_used_at"],
            expires_at=r["expires_at"],
            user_agent=r["user_agent"],
            last_ip=r["last_ip"],
        )
        for r in tx.fetchall(
            "SELECT token_hash, user_id, created_at, last_used_at, expires_at, user_agent, last_ip"
            " FROM sessions WHERE user_id = ? ORDER BY last_used_at DESC, created_at DESC",
            (user_id,),
        )
    ]

"""The one access gate: `authorize(actor, action, ...)`, deny by default.

A decision is ALLOW, DENY (the caller can see the resource but may not act: 403) or HIDE (the
caller may not even see it: answered exactly like a resource that does not exist, 404).

Everything here is a table or a pure function of one; `services/gates.py` is the only caller,
and `scripts/gen_permissions_doc.py` renders the tables into docs/permissions.md (a test checks
that the document is up to date).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum, StrEnum

from enclave.domain.ids import DepartmentId
from enclave.domain.models import (
    Conversation,
    ConversationKind,
    Member,
    MemberRole,
    OrgRole,
    User,
    Visibility,
)


class Decision(Enum):
    ALLOW = "allow"
    DENY = "deny"
    HIDE = "hide"


class Scope(Enum):
    """How far an org action reaches for the actor's role."""

    NONE = "none"
    SUBTREE = "subtree"
    """Only people in the departments the actor administers, and their sub-departments."""
    ORG = "org"


class OrgAction(StrEnum):
    CREATE_USER = "user.create"
    DEACTIVATE_USER = "user.deactivate"
    LIST_INACTIVE_USERS = "user.list_inactive"
    REVOKE_USER_SESSIONS = "user.revoke_sessions"
    SET_USER_ROLE = "user.set_role"
    MOVE_USER = "user.move_department"
    BROWSE_DIRECTORY = "user.directory"
    VIEW_ORG_SETTINGS = "org.settings.view"
    CHANGE_ORG_SETTINGS = "org.settings.change"
    CREATE_CONVERSATION = "conversation.create"
    BROWSE_CHANNELS = "channel.browse"
    READ_AUDIT = "audit.read"
    VIEW_DEPARTMENTS = "department.view"
    MANAGE_DEPARTMENTS = "department.manage"
    ASSIGN_DEPARTMENT_ADMINS = "department.assign_admins"
    EXPORT_EDISCOVERY = "compliance.export"
    ERASE_USER = "user.erase"
    MANAGE_TERMS = "org.terms.manage"
    VIEW_RETENTION = "retention.view"
    MANAGE_RETENTION = "retention.manage"
    MANAGE_HOLDS = "compliance.holds"
    MANAGE_JOBS = "jobs.manage"


class ConvAction(StrEnum):
    VIEW = "view"
    POST = "post"
    REACT = "react"
    JOIN = "join"
    LEAVE = "leave"
    ADD_MEMBERS = "members.add"
    REMOVE_MEMBER = "members.remove"
    SET_MEMBER_ROLE = "members.set_role"
    UPDATE = "update"
    ARCHIVE = "archive"
    MARK_READ = "mark_read"
    MODERATE_MESSAGES = "messages.moderate"


_ALL = frozenset(OrgRole)
_ADMINS = frozenset({OrgRole.OWNER, OrgRole.ADMIN})
_AUDITORS = _ADMINS | {OrgRole.COMPLIANCE_OFFICER}
_NOT_GUESTS = _ALL - {OrgRole.GUEST}
_DEPARTMENT_ADMINS = frozenset({OrgRole.DEPARTMENT_ADMIN})
_MODERATORS = frozenset({MemberRole.OWNER, MemberRole.MODERATOR})

# Org-level actions: which org roles may perform them across the whole organization.
ORG_RULES: dict[OrgAction, frozenset[OrgRole]] = {
    OrgAction.CREATE_USER: _ADMINS,
    OrgAction.DEACTIVATE_USER: _ADMINS,
    OrgAction.LIST_INACTIVE_USERS: _AUDITORS,
    OrgAction.REVOKE_USER_SESSIONS: _ADMINS,
    OrgAction.SET_USER_ROLE: _ADMINS,
    OrgAction.MOVE_USER: _ADMINS,
    # Guests see only the people they share a conversation with.
    OrgAction.BROWSE_DIRECTORY: _NOT_GUESTS,
    OrgAction.VIEW_ORG_SETTINGS: _ADMINS,
    OrgAction.CHANGE_ORG_SETTINGS: _ADMINS,
    OrgAction.CREATE_CONVERSATION: _NOT_GUESTS,
    OrgAction.BROWSE_CHANNELS: _NOT_GUESTS,
    # Reading and verifying the audit log of one's own organization.
    OrgAction.READ_AUDIT: _AUDITORS,
    OrgAction.VIEW_DEPARTMENTS: _NOT_GUESTS,
    OrgAction.MANAGE_DEPARTMENTS: _ADMINS,
    OrgAction.ASSIGN_DEPARTMENT_ADMINS: _ADMINS,
    # eDiscovery exports read every conversation: compliance officers (and the owner) only.
    OrgAction.EXPORT_EDISCOVERY: frozenset({OrgRole.OWNER, OrgRole.COMPLIANCE_OFFICER}),
    # GDPR erasure (Art. 17) is executed by an owner or admin at the person's request.
    OrgAction.ERASE_USER: _ADMINS,
    OrgAction.MANAGE_TERMS: _ADMINS,
    # Retention: admins set and run it; compliance officers read it (and its preview).
    OrgAction.VIEW_RETENTION: _AUDITORS,
    OrgAction.MANAGE_RETENTION: _ADMINS,
    # Legal holds: compliance officers (and the owner); nobody else learns that a hold exists.
    OrgAction.MANAGE_HOLDS: frozenset({OrgRole.OWNER, OrgRole.COMPLIANCE_OFFICER}),
    # The organization's background jobs (exports, retention runs): list, show, retry, cancel.
    OrgAction.MANAGE_JOBS: _ADMINS,
}

# The same actions, for roles that may take them only within their department subtree (the
# departments they are assigned to administer, and everything below). Checked after ORG_RULES.
SUBTREE_RULES: dict[OrgAction, frozenset[OrgRole]] = {
    OrgAction.CREATE_USER: _DEPARTMENT_ADMINS,
    OrgAction.DEACTIVATE_USER: _DEPARTMENT_ADMINS,
    OrgAction.LIST_INACTIVE_USERS: _DEPARTMENT_ADMINS,
    OrgAction.REVOKE_USER_SESSIONS: _DEPARTMENT_ADMINS,
    OrgAction.MOVE_USER: _DEPARTMENT_ADMINS,
}

# Whose accounts each role may administer (deactivate, activate, sign out, move): the target's
# role must be in the actor's set. Roles not listed administer nobody.
ADMINISTERED_ROLES: dict[OrgRole, frozenset[OrgRole]] = {
    OrgRole.OWNER: _ALL,
    OrgRole.ADMIN: _ALL - {OrgRole.OWNER},
    OrgRole.DEPARTMENT_ADMIN: frozenset({OrgRole.MEMBER, OrgRole.GUEST}),
}

# Which roles each role may give (creating an account, or changing a role) and take away (a
# role change needs both the old and the new role in the set).
GRANTABLE_ROLES: dict[OrgRole, frozenset[OrgRole]] = {
    OrgRole.OWNER: _ALL,
    OrgRole.ADMIN: frozenset(
        {OrgRole.COMPLIANCE_OFFICER, OrgRole.DEPARTMENT_ADMIN, OrgRole.MEMBER, OrgRole.GUEST}
    ),
    OrgRole.DEPARTMENT_ADMIN: frozenset({OrgRole.MEMBER, OrgRole.GUEST}),
}

# What a guest may do in a conversation they were added to, whatever their role in it.
GUEST_CONVERSATION_ACTIONS = frozenset(
    {ConvAction.VIEW, ConvAction.POST, ConvAction.REACT, ConvAction.MARK_READ, ConvAction.LEAVE}
)

# Audit entries that a reader of the log (`audit.read`) sees only if they may also take the
# action named here, by prefix of the entry's action. Legal hold entries name who or what is
# held, and only holders of `compliance.holds` may learn that a hold exists.
RESTRICTED_AUDIT: dict[str, OrgAction] = {
    "legal_hold.": OrgAction.MANAGE_HOLDS,
}

DEPARTMENT_MAX_DEPTH = 10
"""A department tree is at most this many levels deep (a root department is level 1)."""


def org_scope(actor: User, action: OrgAction) -> Scope:
    """How far `action` reaches for the actor: the whole organization, a subtree, or nowhere."""
    if not actor.is_active:
        return Scope.NONE
    if actor.role in ORG_RULES.get(action, frozenset()):
        return Scope.ORG
    if actor.role in SUBTREE_RULES.get(action, frozenset()):
        return Scope.SUBTREE
    return Scope.NONE


def authorize_org(actor: User, action: OrgAction) -> Decision:
    """Decide an action on the actor's own organization as a whole."""
    return Decision.ALLOW if org_scope(actor, action) is Scope.ORG else Decision.DENY


def hidden_audit_prefixes(actor: User) -> tuple[str, ...]:
    """Action prefixes of the audit entries the actor may not see, even when they may read the
    log: those of `RESTRICTED_AUDIT` whose action the actor may not take."""
    return tuple(
        prefix
        for prefix, action in RESTRICTED_AUDIT.items()
        if authorize_org(actor, action) is not Decision.ALLOW
    )


def authorize_user_admin(
    actor: User, action: OrgAction, target: User, *, in_subtree: bool
) -> Decision:
    """Decide an administrative `action` on the account `target`.

    `in_subtree` is whether the target belongs to a department the actor administers (or one
    below it). People of other organizations do not exist for the actor."""
    if target.org_id != actor.org_id:
        return Decision.HIDE
    scope = org_scope(actor, action)
    if scope is Scope.NONE or (scope is Scope.SUBTREE and not in_subtree):
        return Decision.DENY
    if target.role not in ADMINISTERED_ROLES.get(actor.role, frozenset()):
        return Decision.DENY
    return Decision.ALLOW


def authorize_placement(
    actor: User, action: OrgAction, role: OrgRole | None, *, into_subtree: bool
) -> Decision:
    """Decide putting a person with `role` into a department by `action` (a new account, or a
    move): org-wide actors anywhere (and out of every department), subtree actors only into
    their own subtree; `role` (the new account's) must be one the actor may grant."""
    scope = org_scope(actor, action)
    if scope is Scope.NONE or (scope is Scope.SUBTREE and not into_subtree):
        return Decision.DENY
    if role is not None and role not in GRANTABLE_ROLES.get(actor.role, frozenset()):
        return Decision.DENY
    return Decision.ALLOW


def authorize_role_change(actor: User, target: User, new_role: OrgRole) -> Decision:
    """Decide changing `target`'s org role to `new_role` (the last owner is a state rule,
    checked by the service)."""
    if target.org_id != actor.org_id:
        return Decision.HIDE
    if authorize_org(actor, OrgAction.SET_USER_ROLE) is not Decision.ALLOW:
        return Decision.DENY
    grantable = GRANTABLE_ROLES.get(actor.role, frozenset())
    if target.role not in grantable or new_role not in grantable:
        return Decision.DENY
    return Decision.ALLOW


def can_see_user(actor: User, target: User, *, shares_conversation: bool) -> bool:
    """People of the actor's organization are visible to those who may browse the directory;
    a guest sees themselves and the people they share a conversation with."""
    if not actor.is_active or target.org_id != actor.org_id:
        return False
    if actor.id == target.id or shares_conversation:
        return True
    return authorize_org(actor, OrgAction.BROWSE_DIRECTORY) is Decision.ALLOW


def can_see(actor: User, conv: Conversation, member: Member | None) -> bool:
    """Members see their conversations; anyone in the org but a guest sees public channels."""
    if not actor.is_active or conv.org_id != actor.org_id:
        return False
    if member is not None:
        return True
    if authorize_org(actor, OrgAction.BROWSE_CHANNELS) is not Decision.ALLOW:
        return False
    return conv.kind is ConversationKind.CHANNEL and conv.visibility is Visibility.PUBLIC


def authorize_conversation(
    actor: User, action: ConvAction, conv: Conversation, member: Member | None
) -> Decision:
    """Decide `action` on `conv` for `actor`, whose membership row is `member` (or None)."""
    if not can_see(actor, conv, member):
        return Decision.HIDE
    allowed = _conversation_rule(actor, action, conv, member)
    return Decision.ALLOW if allowed else Decision.DENY


def _conversation_rule(
    actor: User, action: ConvAction, conv: Conversation, member: Member | None
) -> bool:
    if actor.role is OrgRole.GUEST and action not in GUEST_CONVERSATION_ACTIONS:
        return False
    is_dm = conv.kind is ConversationKind.DM
    is_channel = conv.kind is ConversationKind.CHANNEL
    moderator = member is not None and member.role in _MODERATORS
    writer = member is not None and member.role is not MemberRole.READER
    org_admin = actor.role in _ADMINS
    match action:
        case ConvAction.VIEW:
            return True
        case ConvAction.JOIN:
            return member is None and is_channel and conv.visibility is Visibility.PUBLIC
        case ConvAction.POST:
            return writer and (moderator or not conv.announcement)
        case ConvAction.REACT:
            return writer
        case ConvAction.MARK_READ:
            return member is not None
        case ConvAction.LEAVE:
            return member is not None and not is_dm
        case ConvAction.ADD_MEMBERS:
            return writer and not is_dm
        case ConvAction.REMOVE_MEMBER | ConvAction.MODERATE_MESSAGES:
            return moderator and not is_dm
        case ConvAction.SET_MEMBER_ROLE:
            return member is not None and member.role is MemberRole.OWNER and not is_dm
        case ConvAction.UPDATE:
            if is_dm:
                return False
            return moderator if is_channel else writer
        case ConvAction.ARCHIVE:
            if is_dm:
                return False
            return moderator or (org_admin and is_channel)
    return False  # deny by default


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a person may do in their organization, from the tables above, so that clients show
    the tools a person may use without copying the tables (the server still decides each
    request)."""

    actions: dict[OrgAction, Scope]
    """Every org action and how far it reaches for the person."""
    grant_roles: frozenset[OrgRole]
    """Roles the person may give a new account."""
    set_roles: frozenset[OrgRole]
    """Roles a role change by the person may take away and give (both must be in it)."""
    administered_roles: frozenset[OrgRole]
    """Roles of the accounts the person administers (deactivate, activate, sign out, move)."""
    department_ids: tuple[DepartmentId, ...]
    """Where the person's subtree-scoped actions reach (their departments and those below);
    empty when none of their actions is subtree-scoped."""


def capabilities(actor: User, subtree: Iterable[DepartmentId]) -> Capabilities:
    """The actor's capabilities; `subtree` is the departments they administer and those below
    (asked of storage only when some action is subtree-scoped for them)."""
    actions = {action: org_scope(actor, action) for action in OrgAction}
    reach = actions[OrgAction.CREATE_USER] is not Scope.NONE
    granted = GRANTABLE_ROLES.get(actor.role, frozenset()) if actor.is_active else frozenset()
    admin_actions = (
        OrgAction.DEACTIVATE_USER,
        OrgAction.MOVE_USER,
        OrgAction.REVOKE_USER_SESSIONS,
    )
    administers = any(actions[a] is not Scope.NONE for a in admin_actions)
    return Capabilities(
        actions=actions,
        grant_roles=granted if reach else frozenset(),
        set_roles=granted if actions[OrgAction.SET_USER_ROLE] is Scope.ORG else frozenset(),
        administered_roles=(
            ADMINISTERED_ROLES.get(actor.role, frozenset()) if administers else frozenset()
        ),
        department_ids=(tuple(sorted(subtree)) if Scope.SUBTREE in actions.values() else ()),
    )


def has_subtree_actions(actor: User) -> bool:
    """Whether some org action reaches only the actor's department subtree."""
    return any(org_scope(actor, action) is Scope.SUBTREE for action in OrgAction)

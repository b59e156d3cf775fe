"""The one access gate: `authorize(actor, action, ...)`, deny by default.

A decision is ALLOW, DENY (the caller can see the resource but may not act: 403) or HIDE (the
caller may not even see it: answered exactly like a resource that does not exist, 404).
"""

from __future__ import annotations

from enum import Enum, StrEnum

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


class OrgAction(StrEnum):
    CREATE_USER = "user.create"
    DEACTIVATE_USER = "user.deactivate"
    LIST_INACTIVE_USERS = "user.list_inactive"
    REVOKE_USER_SESSIONS = "user.revoke_sessions"
    VIEW_ORG_SETTINGS = "org.settings.view"
    CHANGE_ORG_SETTINGS = "org.settings.change"
    CREATE_CONVERSATION = "conversation.create"
    BROWSE_CHANNELS = "channel.browse"
    READ_AUDIT = "audit.read"


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


_ADMINS = frozenset({OrgRole.OWNER, OrgRole.ADMIN})
_MODERATORS = frozenset({MemberRole.OWNER, MemberRole.MODERATOR})

# Org-level actions: which org roles may perform them.
ORG_RULES: dict[OrgAction, frozenset[OrgRole]] = {
    OrgAction.CREATE_USER: _ADMINS,
    OrgAction.DEACTIVATE_USER: _ADMINS,
    OrgAction.LIST_INACTIVE_USERS: _ADMINS,
    OrgAction.REVOKE_USER_SESSIONS: _ADMINS,
    OrgAction.VIEW_ORG_SETTINGS: _ADMINS,
    OrgAction.CHANGE_ORG_SETTINGS: _ADMINS,
    OrgAction.CREATE_CONVERSATION: frozenset(OrgRole),
    OrgAction.BROWSE_CHANNELS: frozenset(OrgRole),
    # Reading and verifying the audit log of one's own organization (compliance officers too,
    # once that role exists).
    OrgAction.READ_AUDIT: _ADMINS,
}


def authorize_org(actor: User, action: OrgAction) -> Decision:
    """Decide an action on the actor's own organization."""
    if actor.is_active and actor.role in ORG_RULES.get(action, frozenset()):
        return Decision.ALLOW
    return Decision.DENY


def can_see(actor: User, conv: Conversation, member: Member | None) -> bool:
    """Members see their conversations; anyone in the org sees public channels."""
    if not actor.is_active or conv.org_id != actor.org_id:
        return False
    if member is not None:
        return True
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
    is_dm = conv.kind is ConversationKind.DM
    is_channel = conv.kind is ConversationKind.CHANNEL
    moderator = member is not None and member.role in _MODERATORS
    org_admin = actor.role in _ADMINS
    match action:
        case ConvAction.VIEW:
            return True
        case ConvAction.JOIN:
            return member is None and is_channel and conv.visibility is Visibility.PUBLIC
        case ConvAction.POST | ConvAction.REACT | ConvAction.MARK_READ:
            return member is not None
        case ConvAction.LEAVE:
            return member is not None and not is_dm
        case ConvAction.ADD_MEMBERS:
            return member is not None and not is_dm
        case ConvAction.REMOVE_MEMBER | ConvAction.MODERATE_MESSAGES:
            return moderator and not is_dm
        case ConvAction.SET_MEMBER_ROLE:
            return member is not None and member.role is MemberRole.OWNER and not is_dm
        case ConvAction.UPDATE:
            if is_dm:
                return False
            return moderator if is_channel else member is not None
        case ConvAction.ARCHIVE:
            if is_dm:
                return False
            return moderator or (org_admin and is_channel)
    return False  # deny by default

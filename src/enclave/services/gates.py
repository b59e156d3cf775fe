"""Access gates: every permission-crossing fetch goes through here, and a resource the actor
may not see fails exactly like one that does not exist."""

from __future__ import annotations

from enclave.domain.errors import Conflict, Forbidden, NotFound
from enclave.domain.ids import OrgId, is_valid_id
from enclave.domain.models import Conversation, Member, Message, User
from enclave.domain.policy import (
    ConvAction,
    Decision,
    OrgAction,
    authorize_conversation,
    authorize_org,
)
from enclave.storage import accounts as account_store
from enclave.storage import conversations as conv_store
from enclave.storage import messages as msg_store
from enclave.storage.base import Tx

# Actions a member may still take in an archived conversation.
_ALLOWED_WHEN_ARCHIVED = frozenset(
    {ConvAction.VIEW, ConvAction.ARCHIVE, ConvAction.LEAVE, ConvAction.MARK_READ}
)
_MEMBER_ONLY = frozenset({ConvAction.POST, ConvAction.REACT, ConvAction.MARK_READ})


def require_org(actor: User, action: OrgAction) -> None:
    if authorize_org(actor, action) is not Decision.ALLOW:
        raise Forbidden("forbidden", f"your role may not {action.value}")


def conversation(
    tx: Tx, actor: User, conv_id: str, action: ConvAction, *, allow_archived: bool = False
) -> tuple[Conversation, Member | None]:
    """Load a conversation for `action`, or fail as if it did not exist."""
    conv, member = (
        conv_store.with_member(tx, conv_id, actor.id) if is_valid_id(conv_id) else (None, None)
    )
    if conv is None:
        raise NotFound("conversation")
    decision = authorize_conversation(actor, action, conv, member)
    if decision is Decision.HIDE:
        raise NotFound("conversation")
    if decision is Decision.DENY:
        if action in _MEMBER_ONLY and member is None:
            raise Forbidden("not_a_member", "join the conversation first")
        raise Forbidden("forbidden", f"you may not {action.value} in this conversation")
    if conv.archived and action not in _ALLOWED_WHEN_ARCHIVED and not allow_archived:
        raise Conflict("conversation_archived", "the conversation is archived")
    return conv, member


def message(
    tx: Tx, actor: User, message_id: str, action: ConvAction
) -> tuple[Message, Conversation, Member | None]:
    """Load a message through its conversation's gate; hidden messages do not exist."""
    msg = msg_store.by_id(tx, message_id) if is_valid_id(message_id) else None
    if msg is None:
        raise NotFound("message")
    try:
        conv, member = conversation(tx, actor, msg.conversation_id, ConvAction.VIEW)
    except NotFound:
        raise NotFound("message") from None
    if action is not ConvAction.VIEW:
        conversation(tx, actor, conv.id, action)
    return msg, conv, member


def org_user(tx: Tx, actor: User, user_id: str) -> User:
    """A user of the actor's own organization; users elsewhere do not exist."""
    found = account_store.user_by_id(tx, user_id) if is_valid_id(user_id) else None
    if found is None or found.org_id != actor.org_id:
        raise NotFound("user")
    return found


def same_org_active(tx: Tx, org_id: OrgId, user_ids: list[str]) -> list[User]:
    """Resolve user ids to active users of `org_id`; any other id fails as not found."""
    users = []
    for uid in dict.fromkeys(user_ids):
        found = account_store.user_by_id(tx, uid) if is_valid_id(uid) else None
        if found is None or found.org_id != org_id or not found.is_active:
            raise NotFound("user")
        users.append(found)
    return users

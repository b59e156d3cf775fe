"""Access gates: every permission-crossing fetch goes through here, and a resource the actor
may not see fails exactly like one that does not exist."""

from __future__ import annotations

from enclave.domain import policy
from enclave.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from enclave.domain.ids import ConversationId, OrgId, UserId, is_valid_id
from enclave.domain.models import (
    Conversation,
    Department,
    Member,
    MemberRole,
    Message,
    OrgRole,
    User,
)
from enclave.domain.policy import (
    ConvAction,
    Decision,
    OrgAction,
    Scope,
    authorize_conversation,
    authorize_org,
    org_scope,
)
from enclave.storage import accounts as account_store
from enclave.storage import conversations as conv_store
from enclave.storage import jobs as job_store
from enclave.storage import messages as msg_store
from enclave.storage import orgs as org_store
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
        reader = member is not None and member.role is MemberRole.READER
        if reader and action in (ConvAction.POST, ConvAction.REACT):
            raise Forbidden("read_only_member", "you are a read-only member here")
        if conv.announcement and action is ConvAction.POST:
            raise Forbidden("announcement_channel", "only moderators post in this channel")
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


def own_membership(tx: Tx, actor: User, conv_id: str) -> tuple[Conversation, Member] | None:
    """The conversation and the actor's membership of it, if the actor is a member (a member
    may always learn that); None for anything else, which the caller then asks `conversation`
    about."""
    conv, member = (
        conv_store.with_member(tx, conv_id, actor.id) if is_valid_id(conv_id) else (None, None)
    )
    return (conv, member) if conv is not None and member is not None else None


def member(
    tx: Tx, conv: Conversation, me: Member | None, user_id: str, action: ConvAction
) -> Member:
    """The membership of `user_id` in `conv`, which `conversation(..., action)` let the actor
    (`me`) into: someone who is not a member does not exist here (404), and only an owner may
    remove an owner (403)."""
    target = conv_store.member(tx, conv.id, user_id) if is_valid_id(user_id) else None
    if target is None:
        raise NotFound("member")
    removing_owner = action is ConvAction.REMOVE_MEMBER and target.role is MemberRole.OWNER
    if removing_owner and (me is None or me.role is not MemberRole.OWNER):
        raise Forbidden("forbidden", "only an owner may remove an owner")
    return target


def is_member(tx: Tx, user_id: UserId, conv_id: ConversationId) -> bool:
    """Whether `user_id` still belongs to `conv_id` (so its connections still receive it)."""
    return conv_store.member(tx, conv_id, user_id) is not None


def members_among(tx: Tx, conv: Conversation, user_ids: list[UserId]) -> list[UserId]:
    """Those of `user_ids` who are members of `conv` (a mention of anyone else notifies no one
    and tells them nothing)."""
    return [uid for uid in user_ids if conv_store.member(tx, conv.id, uid) is not None]


def thread_root(tx: Tx, conv: Conversation, message_id: str) -> Message:
    """A top-level message of `conv` (which a gate let the actor into) to reply to; a message of
    another conversation fails exactly like one that does not exist."""
    root = msg_store.by_id(tx, message_id) if is_valid_id(message_id) else None
    if root is None or root.conversation_id != conv.id or root.thread_root_id:
        raise InvalidInput("invalid_thread_root", "thread_root_id is not a top-level message here")
    return root


def org_conversation(tx: Tx, actor: User, conv_id: str) -> Conversation:
    """Any conversation of the actor's organization, whatever the actor's membership: for
    organization-wide duties already allowed by the caller (legal holds). A conversation of
    another organization does not exist."""
    conv = conv_store.by_id(tx, conv_id) if is_valid_id(conv_id) else None
    if conv is None or conv.org_id != actor.org_id:
        raise NotFound("conversation")
    return conv


def org_user(tx: Tx, actor: User, user_id: str) -> User:
    """A user of the actor's own organization whom the actor may see (a guest sees only the
    people they share a conversation with); anyone else does not exist."""
    found = account_store.user_by_id(tx, user_id) if is_valid_id(user_id) else None
    if found is None or not _may_see(tx, actor, found):
        raise NotFound("user")
    return found


def _may_see(tx: Tx, actor: User, target: User) -> bool:
    if target.org_id != actor.org_id:
        return False
    if policy.can_see_user(actor, target, shares_conversation=False):
        return True
    shares = org_store.shares_conversation(tx, actor.id, target.id)
    return policy.can_see_user(actor, target, shares_conversation=shares)


def visible_user_ids(tx: Tx, actor: User, user_ids: list[str]) -> list[UserId]:
    """The ids among `user_ids` of people the actor may see (the others vanish silently)."""
    found = []
    for uid in dict.fromkeys(user_ids):
        user = account_store.user_by_id(tx, uid) if is_valid_id(uid) else None
        if user is not None and _may_see(tx, actor, user):
            found.append(user.id)
    return found


def hidden_audit_prefixes(actor: User) -> tuple[str, ...]:
    """Action prefixes of the audit entries the actor may not see (legal holds, for anyone but
    compliance officers and owners); such entries are left out as if they did not exist."""
    return policy.hidden_audit_prefixes(actor)


def audit_username(tx: Tx, actor: User, user_id: str) -> str | None:
    """The username an audit entry shows the actor for `user_id`: only people of the actor's
    own organization (active or not) are named; anyone else, or no one, is None."""
    found = account_store.user_by_id(tx, user_id)
    return found.username if found is not None and found.org_id == actor.org_id else None


def may_see_holds(actor: User) -> bool:
    """Whether the actor may learn that legal holds exist; to anyone else they do not."""
    return authorize_org(actor, OrgAction.MANAGE_HOLDS) is Decision.ALLOW


def may_browse_directory(actor: User) -> bool:
    """Whether the actor sees every person of the organization (else only those they share a
    conversation with)."""
    return authorize_org(actor, OrgAction.BROWSE_DIRECTORY) is Decision.ALLOW


# -- administration of people and departments --------------------------------------------------


def require_scope(actor: User, action: OrgAction) -> Scope:
    """The reach of `action` for the actor (the whole organization or a subtree); 403 if none.
    A cheap check before expensive work; the target is checked by `user_admin`/`placement`."""
    scope = org_scope(actor, action)
    if scope is Scope.NONE:
        raise Forbidden("forbidden", f"your role may not {action.value}")
    return scope


def _in_subtree(tx: Tx, actor: User, action: OrgAction, department_id: str | None) -> bool:
    """Whether `department_id` is in the actor's subtree; asked only of subtree-scoped actors."""
    if department_id is None or org_scope(actor, action) is not Scope.SUBTREE:
        return False
    return org_store.in_subtree(tx, actor.id, department_id)


def user_admin(tx: Tx, actor: User, action: OrgAction, user_id: str) -> User:
    """Load the account `user_id` for the administrative `action` (deactivate, activate, sign
    out, move): hidden people do not exist (404), others may be out of reach (403)."""
    target = org_user(tx, actor, user_id)
    in_subtree = _in_subtree(tx, actor, action, target.department_id)
    decision = policy.authorize_user_admin(actor, action, target, in_subtree=in_subtree)
    if decision is Decision.HIDE:
        raise NotFound("user")
    if decision is Decision.DENY:
        raise Forbidden("forbidden", f"you may not {action.value} this person")
    return target


def placement(
    tx: Tx, actor: User, action: OrgAction, department_id: str | None, role: OrgRole | None
) -> Department | None:
    """Check that the actor may put a person (of `role`, if new) into `department_id` (None:
    no department) by `action`; returns the department. Departments of other organizations
    do not exist."""
    dept = department_in_org(tx, actor, department_id) if department_id is not None else None
    into = _in_subtree(tx, actor, action, dept.id if dept else None)
    if policy.authorize_placement(actor, action, role, into_subtree=into) is not Decision.ALLOW:
        raise Forbidden("forbidden", f"you may not {action.value} there")
    return dept


def role_change(tx: Tx, actor: User, user_id: str, role: OrgRole) -> User:
    """Load the account `user_id` for a change of its org role to `role`."""
    target = org_user(tx, actor, user_id)
    decision = policy.authorize_role_change(actor, target, role)
    if decision is Decision.HIDE:
        raise NotFound("user")
    if decision is Decision.DENY:
        raise Forbidden("forbidden", "your role may not give or take away this role")
    return target


def department_in_org(tx: Tx, actor: User, department_id: str) -> Department:
    """A department of the actor's organization; any other id does not exist."""
    dept = org_store.department(tx, department_id) if is_valid_id(department_id) else None
    if dept is None or dept.org_id != actor.org_id:
        raise NotFound("department")
    return dept


def department(tx: Tx, actor: User, department_id: str, action: OrgAction) -> Department:
    """Load a department of the actor's organization for `action` (403 if the role may not)."""
    require_org(actor, action)
    return department_in_org(tx, actor, department_id)


def same_org_active(tx: Tx, org_id: OrgId, user_ids: list[str]) -> list[User]:
    """Resolve user ids to active users of `org_id`; any other id fails as not found."""
    users = []
    for uid in dict.fromkeys(user_ids):
        found = account_store.user_by_id(tx, uid) if is_valid_id(uid) else None
        if found is None or found.org_id != org_id or not found.is_active:
            raise NotFound("user")
        users.append(found)
    return users


def org_people(tx: Tx, org_id: OrgId, user_ids: list[str]) -> list[User]:
    """People of the organization `org_id`, active or not (an eDiscovery export covers people
    who left); an id of anyone else, or of no one, fails as not found."""
    users = []
    for uid in dict.fromkeys(user_ids):
        found = account_store.user_by_id(tx, uid) if is_valid_id(uid) else None
        if found is None or found.org_id != org_id:
            raise NotFound("user")
        users.append(found)
    return users


def job(tx: Tx, actor: User, job_id: str, action: OrgAction) -> job_store.Job:
    """A job of the actor's organization for `action` (403 if the role may not); another
    organization's jobs and the installation's own do not exist."""
    require_org(actor, action)
    found = job_store.get(tx, job_id) if is_valid_id(job_id) else None
    if found is None or found.org_id != actor.org_id:
        raise NotFound("job")
    return found


def capabilities(tx: Tx, actor: User) -> policy.Capabilities:
    """What the actor may do in their organization, with the departments their subtree-scoped
    actions reach (for clients to show tools; every request is still decided here)."""
    subtree = org_store.subtree_ids(tx, actor.id) if policy.has_subtree_actions(actor) else []
    return policy.capabilities(actor, subtree)

"""Enclave's async Python SDK.

    async with EnclaveClient("https://chat.example.com") as client:
        await client.login("alice", "correct horse battery staple")
        convs = await client.list_conversations()
        await client.send_message(convs[0].id, "hello")

Every failure raises a subclass of `EnclaveError`; see `enclave_client.errors`.
"""

from enclave_client.client import EnclaveClient
from enclave_client.errors import (
    Conflict,
    ConnectionFailed,
    EnclaveError,
    ErrorDetail,
    Forbidden,
    InvalidCredentials,
    MfaRequired,
    NotFound,
    PasswordChangeRequired,
    ProtocolError,
    RateLimited,
    ServerError,
    Unauthenticated,
    ValidationFailed,
)
from enclave_client.models import (
    Channel,
    Conversation,
    ConversationId,
    ConversationKind,
    Member,
    MemberRole,
    Message,
    MessageId,
    MessageVersion,
    Reaction,
    SentMessage,
    Terms,
    Thread,
    User,
    UserId,
    UserRole,
    Visibility,
)
from enclave_client.stream import Ack, EventStream, StreamItem

__all__ = [
    "Ack",
    "Channel",
    "Conflict",
    "ConnectionFailed",
    "Conversation",
    "ConversationId",
    "ConversationKind",
    "EnclaveClient",
    "EnclaveError",
    "ErrorDetail",
    "EventStream",
    "Forbidden",
    "InvalidCredentials",
    "Member",
    "MemberRole",
    "Message",
    "MessageId",
    "MessageVersion",
    "MfaRequired",
    "NotFound",
    "PasswordChangeRequired",
    "ProtocolError",
    "RateLimited",
    "Reaction",
    "SentMessage",
    "ServerError",
    "StreamItem",
    "Terms",
    "Thread",
    "Unauthenticated",
    "User",
    "UserId",
    "UserRole",
    "ValidationFailed",
    "Visibility",
]

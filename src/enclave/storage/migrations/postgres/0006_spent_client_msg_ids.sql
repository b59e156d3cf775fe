-- Issue 6: a retry of a message that retention removed is not posted again.

-- One row per message retention deleted: a digest of its (sender_id, client_msg_id), nothing
-- else (no conversation, no time, no text). A send that repeats such a client_msg_id answers
-- `message_expired`, exactly like a retry of a message retention hid because a legal hold keeps
-- it, so that a retry never tells the sender which of the two happened (docs/protocol.md).
CREATE TABLE spent_client_msg_ids (
    digest TEXT PRIMARY KEY
);

-- Issue 5: data keys for encryption at rest, the hash-chained audit log, and MFA.

-- One data key per scope ('conv:<id>' or 'user:<id>') and epoch, wrapped by a key-encryption key.
-- Shredding sets wrapped to NULL; the row stays so that the key id is known to be destroyed.
CREATE TABLE data_keys (
    id TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    kek_id TEXT,
    wrapped BLOB,
    created_at BIGINT NOT NULL,
    shredded_at BIGINT,
    UNIQUE (scope, epoch)
);
CREATE INDEX data_keys_kek ON data_keys (kek_id);

-- Append-only; each entry's hash covers its content and the previous entry's hash.
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    org_id TEXT,
    at BIGINT NOT NULL,
    actor_id TEXT,
    action TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    ip TEXT,
    outcome TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_org ON audit_log (org_id, seq);
CREATE INDEX audit_log_action ON audit_log (action, seq);

-- One row: the chain head, locked by every append so that appends are serialized.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);

-- TOTP secret (sealed with the user's data key) and hashed one-time recovery codes.
CREATE TABLE user_mfa (
    user_id TEXT PRIMARY KEY REFERENCES users(id),
    secret TEXT NOT NULL,
    confirmed_at BIGINT,
    last_step BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users(id),
    code_hash TEXT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- Organization-wide security settings that admins change at run time.
CREATE TABLE org_settings (
    org_id TEXT PRIMARY KEY REFERENCES orgs(id),
    require_mfa INTEGER NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The address a session was last used from, shown in the person's list of sessions.
ALTER TABLE sessions ADD COLUMN last_ip TEXT;

-- One-off data tasks that run after a migration (for example sealing rows written in plaintext
-- by an earlier version); a row means the task finished.
CREATE TABLE maintenance_done (
    name TEXT PRIMARY KEY,
    done_at BIGINT NOT NULL
);

-- Issue 6: retention policies, legal holds, purge runs.

-- The organization's default retention: days NULL means keep forever (also when no row exists).
CREATE TABLE retention_org (
    org_id TEXT PRIMARY KEY REFERENCES orgs(id),
    days INTEGER,
    updated_by TEXT,
    updated_at BIGINT NOT NULL
);

-- A conversation's override of the default: days NULL means keep forever. No row: the default.
CREATE TABLE retention_conversation (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations(id),
    days INTEGER,
    updated_by TEXT,
    updated_at BIGINT NOT NULL
);

-- How far retention has cut a conversation's event log: events with seq <= purged_seq are gone
-- (in a conversation under legal hold they are kept, and not replayed to clients).
CREATE TABLE retention_state (
    conversation_id TEXT PRIMARY KEY REFERENCES conversations(id),
    purged_seq BIGINT NOT NULL,
    purged_at BIGINT NOT NULL
);

-- A message past retention that a legal hold preserves: kept for compliance, hidden from members.
ALTER TABLE messages ADD COLUMN retention_hidden_at BIGINT;

-- One retention run per organization at a time; an unfinished row is resumed (same as_of, so
-- the same cutoffs) and its progress (counts, shredded key ids) becomes the deletion receipt.
CREATE TABLE retention_runs (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    as_of BIGINT NOT NULL,
    started_at BIGINT NOT NULL,
    actor_id TEXT,
    finished_at BIGINT,
    progress TEXT NOT NULL
);
CREATE INDEX retention_runs_org ON retention_runs (org_id, finished_at);

-- Legal holds on a person ('person', target a user id) or a conversation ('conversation').
-- A hold is active while released_at is NULL; released holds stay as the record.
CREATE TABLE legal_holds (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    kind TEXT NOT NULL,
    target_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    released_by TEXT,
    released_at BIGINT,
    release_reason TEXT
);
CREATE INDEX legal_holds_target ON legal_holds (kind, target_id, released_at);
CREATE INDEX legal_holds_org ON legal_holds (org_id, created_at);

-- Cluster-wide leases of periodic jobs: a node runs a job only while it holds its row.
CREATE TABLE job_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

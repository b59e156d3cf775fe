-- Issue 6: export jobs, erasure, consent to terms.

-- eDiscovery export jobs: what was asked (query, JSON), by whom, and how far it got. The files
-- live in data_dir/exports/<id>/ until expires_at (compliance.export_ttl_hours).
CREATE TABLE export_jobs (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    requested_by TEXT,
    query TEXT NOT NULL,
    status TEXT NOT NULL,
    done BIGINT NOT NULL,
    total BIGINT NOT NULL,
    error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    expires_at BIGINT
);
CREATE INDEX export_jobs_org ON export_jobs (org_id, created_at);
CREATE INDEX export_jobs_status ON export_jobs (status, expires_at);

-- Terms of use an organization publishes; the one with the highest seq is current.
CREATE TABLE terms (
    org_id TEXT NOT NULL REFERENCES orgs(id),
    seq BIGINT NOT NULL,
    version TEXT NOT NULL,
    text TEXT NOT NULL,
    published_by TEXT,
    published_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, seq),
    UNIQUE (org_id, version)
);

-- Consent records: who accepted which version of the terms, and when.
CREATE TABLE terms_acceptances (
    user_id TEXT NOT NULL REFERENCES users(id),
    org_id TEXT NOT NULL,
    terms_seq BIGINT NOT NULL,
    version TEXT NOT NULL,
    accepted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, terms_seq)
);

-- Erasure: what happens to an erased person's messages ('pseudonymize' or 'delete'), and when a
-- person was erased.
ALTER TABLE org_settings ADD COLUMN erasure_mode TEXT NOT NULL DEFAULT 'pseudonymize';
ALTER TABLE users ADD COLUMN erased_at BIGINT;

-- A person's messages and events, for the GDPR export and erasure.
CREATE INDEX messages_sender ON messages (sender_id, created_at, id);
CREATE INDEX events_actor ON events (actor_id, conversation_id, seq);

-- Issue 12: the durable job queue (storage/jobs.py, services/jobs.py, docs/architecture.md
-- "The job path"). A job is queued until its run_at, then claimed by one worker with a lease
-- (lease_owner until lease_expires_at); a worker that dies loses the lease and another claims
-- the job again. attempts counts claims; after max_attempts failures the job is dead.
-- payload is JSON text, sealed (like message text) when sealed = 1.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    org_id TEXT REFERENCES orgs(id),
    payload TEXT NOT NULL,
    sealed SMALLINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    run_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    lease_owner TEXT,
    lease_expires_at BIGINT,
    idempotency_key TEXT UNIQUE,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX jobs_due ON jobs (kind, state, run_at);
CREATE INDEX jobs_lease ON jobs (state, lease_expires_at);
CREATE INDEX jobs_org ON jobs (org_id, created_at);
CREATE INDEX jobs_finished ON jobs (state, finished_at);

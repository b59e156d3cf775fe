-- Enclave's database on a PostgreSQL primary (15 or later). Run once, as a superuser:
--
--   sudo -u postgres psql -v ON_ERROR_STOP=1 \
--        -v enclave_password="$(openssl rand -base64 32)" \
--        -v replicator_password="$(openssl rand -base64 32)" \
--        -f deploy/postgresql/setup.sql
--
-- and keep both passwords in your secret store: the first goes into every node's
-- ENCLAVE_DATABASE_URL (deploy/enclave.env.example), the second into each standby's
-- primary_conninfo (docs/scaling.md, "PostgreSQL"). Enclave creates and migrates its own tables
-- at start (under an advisory lock, so nodes starting together migrate once).

-- The application role: owns its database and nothing else; no superuser, no CREATEROLE.
-- The connection limit leaves room under max_connections for standbys and administrators;
-- nodes need at most database.pool_size (8) connections each, plus one while migrating.
CREATE ROLE enclave LOGIN PASSWORD :'enclave_password' CONNECTION LIMIT 200;
CREATE DATABASE enclave OWNER enclave ENCODING 'UTF8' TEMPLATE template0;

-- A transaction left open by a node that hung must not hold row locks (a conversation's
-- sequence row) for long: a unit of work in Enclave takes milliseconds.
ALTER ROLE enclave SET idle_in_transaction_session_timeout = '60s';

-- Streaming replication for the standbys (no login to any database).
CREATE ROLE replicator REPLICATION LOGIN PASSWORD :'replicator_password';

\connect enclave
-- Only Enclave's role may create objects in its database (the PostgreSQL 15 default, stated).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
ALTER SCHEMA public OWNER TO enclave;

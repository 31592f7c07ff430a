-- store/postgres/schema_v4.sql — Aspen's store schema, version 4, for PostgreSQL: the same tables,
-- columns, constraints and version number as the SQLite schema (store/sqlite/sqlite_open.c,
-- migrations 1-4; docs/STORE.md "Schema"), written for PostgreSQL.
--
-- The PostgreSQL backend (store/postgres/pg_open.c) runs this file, embedded into the library by
-- store/CMakeLists.txt, inside its own transaction under an advisory lock when it opens a database
-- that has no Aspen schema yet (so the file has no BEGIN/COMMIT). PostgreSQL databases begin at
-- version 4: versions 1-3 predate the backend; later versions will be migrations from 4.
-- tests/store/test_store_pg.c applies it to a fresh database and reads it back.
--
-- Differences from SQLite, and why:
-- - Times stay unix milliseconds (bigint), so every backend hands the same numbers to the API;
--   the backend is to compute "now" from the database's clock, not the caller's.
-- - payload and tags are `json` (validated, stored as given: key order and spacing kept, which
--   `jsonb` would not), with the same constraint names the SQLite messages key on.
-- - No job_payloads table: PostgreSQL keeps a big value out of line (TOAST) and an UPDATE of other
--   columns carries the pointer over without rewriting the value, which is what version 4 bought
--   on SQLite. payload_ext stays (always false here) so both schemas have the same jobs columns.
-- - Identity columns never reuse a value, like SQLite's AUTOINCREMENT for engines.
-- - The version lives in aspen_schema (SQLite: PRAGMA user_version / application_id), with
--   data_version: bumped by every committing write (pg_tx_commit), read by aspen_store_data_version
--   (SQLite: PRAGMA data_version), so the console and idle engines notice other hosts' writes.

CREATE TABLE aspen_schema (
  version integer NOT NULL,
  application_id bigint NOT NULL,
  data_version bigint NOT NULL DEFAULT 0);
INSERT INTO aspen_schema (version, application_id) VALUES (4, 1098084462); -- 0x4173706e "Aspn"

CREATE TABLE binaries (
  sha256 text PRIMARY KEY CHECK (length(sha256) = 64),
  name text,
  size bigint NOT NULL,
  bytes bytea NOT NULL,
  created_at bigint NOT NULL);

CREATE TABLE jobs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  type text NOT NULL CONSTRAINT type_nonempty CHECK (length(type) > 0),
  binary_sha256 text REFERENCES binaries (sha256),
  binary_name text,
  payload json NOT NULL DEFAULT '{}'
    -- \u0000 (an escaped NUL, an odd number of backslashes before u0000) is valid JSON, but
    -- PostgreSQL cannot turn it into text: one such job would make every payload filter fail.
    CONSTRAINT payload_no_nul CHECK (strpos(payload::text, E'\\u0000') = 0
      OR payload::text !~ E'(^|[^\\\\])(\\\\\\\\)*\\\\u0000'),
  state text NOT NULL CONSTRAINT state_known CHECK
    (state IN ('queued', 'scheduled', 'running', 'succeeded', 'failed', 'cancelled')),
  priority integer NOT NULL DEFAULT 0,
  run_at bigint NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
  timeout_ms bigint NOT NULL DEFAULT 30000,
  memory_bytes bigint NOT NULL DEFAULT 0,
  isolation integer NOT NULL DEFAULT 0,
  tags json NOT NULL DEFAULT '[]' CONSTRAINT tags_array CHECK (json_typeof(tags) = 'array')
    CONSTRAINT tags_no_nul CHECK (strpos(tags::text, E'\\u0000') = 0
      OR tags::text !~ E'(^|[^\\\\])(\\\\\\\\)*\\\\u0000'),
  created_at bigint NOT NULL,
  started_at bigint,
  finished_at bigint,
  result bytea,
  error text,
  rerun_of bigint,
  owner bigint,
  cancel_requested boolean NOT NULL DEFAULT false,
  source_dir text,
  log_count integer NOT NULL DEFAULT 0,
  log_dropped bigint NOT NULL DEFAULT 0,
  payload_ext boolean NOT NULL DEFAULT false);

-- The same partial indexes as SQLite: finished jobs cost nothing in them.
CREATE INDEX jobs_queue ON jobs (priority DESC, run_at, id) WHERE state = 'queued';
CREATE INDEX jobs_due ON jobs (run_at) WHERE state = 'scheduled';
CREATE INDEX jobs_running ON jobs (owner) WHERE state = 'running';
CREATE INDEX jobs_succeeded ON jobs (state) WHERE state = 'succeeded';
CREATE INDEX jobs_failed ON jobs (state) WHERE state = 'failed';
CREATE INDEX jobs_cancelled ON jobs (state) WHERE state = 'cancelled';
CREATE INDEX jobs_rerun ON jobs (rerun_of) WHERE rerun_of IS NOT NULL;

CREATE TABLE attempts (
  job bigint NOT NULL,
  number integer NOT NULL,
  engine bigint,
  started_at bigint,
  finished_at bigint,
  wall_us bigint NOT NULL DEFAULT 0,
  exits bigint NOT NULL DEFAULT 0,
  host_calls bigint NOT NULL DEFAULT 0,
  pages_dirtied bigint NOT NULL DEFAULT 0,
  bytes_in bigint NOT NULL DEFAULT 0,
  bytes_out bigint NOT NULL DEFAULT 0,
  outcome text NOT NULL CHECK
    (outcome IN ('succeeded', 'failed', 'timeout', 'cancelled', 'recovered')),
  error text,
  recovered boolean NOT NULL DEFAULT false,
  PRIMARY KEY (job, number));

CREATE TABLE logs (
  job bigint NOT NULL,
  seq bigint NOT NULL,
  attempt integer NOT NULL,
  time_ms bigint NOT NULL,
  line text NOT NULL,
  PRIMARY KEY (job, seq));

CREATE TABLE engines (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  pid bigint NOT NULL,
  host text NOT NULL,
  started_at bigint NOT NULL,
  lease_until bigint NOT NULL);

-- Per-state counts, adjusted once per write transaction as on SQLite. With many hosts these six
-- rows are updated by every commit and serialise the writers: the backend must decide whether to
-- keep them (and batch) or count from the partial indexes instead.
CREATE TABLE job_counts (
  state text PRIMARY KEY,
  n bigint NOT NULL);
INSERT INTO job_counts (state, n) VALUES ('queued', 0), ('scheduled', 0), ('running', 0),
  ('succeeded', 0), ('failed', 0), ('cancelled', 0);

CREATE TABLE settings (
  key text PRIMARY KEY,
  value text NOT NULL);

-- Version 3: reservations (a claimed job stays queued; see docs/STORE.md "Claiming").
CREATE TABLE claims (
  job bigint PRIMARY KEY,
  engine bigint NOT NULL,
  claimed_at bigint NOT NULL);

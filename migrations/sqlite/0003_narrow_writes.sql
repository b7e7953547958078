-- Narrower writes for the hot path: every request inserts one request row and one row
-- per attempt, and each B-tree an insert touches costs CPU on the core that serves
-- requests.
-- * Both tables become WITHOUT ROWID, clustered on their primary key: a row is one
--   B-tree insert instead of two (the rowid table and the primary key's index). Rows
--   are small and ids are time-ordered (uuid v7), so inserts append at the right edge.
-- * ledger_attempts_started_at goes: no query reads attempts by time yet. The per-target
--   statistics that will can add it back together with the query.
-- * The attempts' foreign key goes: the writer inserts a request and its attempts in one
--   transaction, and the check was one more primary-key lookup per attempt.
-- Rebuilt by copy, since SQLite cannot change these in place; the attempts first, so
-- that nothing references the old requests table when it is dropped.

CREATE TABLE ledger_attempts_v3 (
    request_id         TEXT    NOT NULL,
    attempt_index      INTEGER NOT NULL,
    target             TEXT    NOT NULL,
    provider           TEXT    NOT NULL,
    provider_kind      TEXT    NOT NULL,
    model              TEXT    NOT NULL,
    started_at_ms      BIGINT  NOT NULL,
    latency_ms         BIGINT  NOT NULL,
    ttft_ms            BIGINT,
    input_tokens       BIGINT  NOT NULL,
    output_tokens      BIGINT  NOT NULL,
    cache_read_tokens  BIGINT  NOT NULL,
    cache_write_tokens BIGINT  NOT NULL,
    reasoning_tokens   BIGINT  NOT NULL,
    cost_micros        BIGINT  NOT NULL,
    priced             BOOLEAN NOT NULL,
    outcome            TEXT    NOT NULL,
    error_kind         TEXT,
    status             INTEGER,
    retry_after_ms     BIGINT,
    PRIMARY KEY (request_id, attempt_index)
) WITHOUT ROWID;
INSERT INTO ledger_attempts_v3 SELECT * FROM ledger_attempts;
DROP TABLE ledger_attempts;
ALTER TABLE ledger_attempts_v3 RENAME TO ledger_attempts;

CREATE TABLE ledger_requests_v3 (
    id                 TEXT    PRIMARY KEY,
    started_at_ms      BIGINT  NOT NULL,
    route              TEXT    NOT NULL,
    key_id             TEXT    NOT NULL,
    front_door         TEXT    NOT NULL,
    stream             BOOLEAN NOT NULL,
    target             TEXT,
    provider           TEXT,
    provider_kind      TEXT,
    model              TEXT,
    input_tokens       BIGINT  NOT NULL,
    output_tokens      BIGINT  NOT NULL,
    cache_read_tokens  BIGINT  NOT NULL,
    cache_write_tokens BIGINT  NOT NULL,
    reasoning_tokens   BIGINT  NOT NULL,
    cost_micros        BIGINT  NOT NULL,
    latency_ms         BIGINT  NOT NULL,
    ttft_ms            BIGINT,
    outcome            TEXT    NOT NULL,
    status             INTEGER NOT NULL,
    attempt_count      INTEGER NOT NULL,
    failover_reason    TEXT
) WITHOUT ROWID;
INSERT INTO ledger_requests_v3 SELECT * FROM ledger_requests;
DROP TABLE ledger_requests;
ALTER TABLE ledger_requests_v3 RENAME TO ledger_requests;
CREATE INDEX ledger_requests_started_at ON ledger_requests (started_at_ms);

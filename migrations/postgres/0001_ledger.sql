-- The ledger: one row per request and one per upstream attempt made for it.
-- Append-only: rows are inserted once (ON CONFLICT DO NOTHING) and never updated.
-- Times are unix milliseconds, money is integer micro-dollars, so this and the
-- SQLite schema (migrations/sqlite/0001_ledger.sql) hold identical values; keep them in step.

CREATE TABLE ledger_requests (
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
);

-- Spend reports filter on a time window and group by route, key or target.
CREATE INDEX ledger_requests_started_at ON ledger_requests (started_at_ms);
CREATE INDEX ledger_requests_route_started_at ON ledger_requests (route, started_at_ms);
CREATE INDEX ledger_requests_key_started_at ON ledger_requests (key_id, started_at_ms);
CREATE INDEX ledger_requests_target_started_at ON ledger_requests (target, started_at_ms);

CREATE TABLE ledger_attempts (
    request_id         TEXT    NOT NULL REFERENCES ledger_requests (id),
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
);

-- Per-target attempt statistics (failure rates, latency) scan attempts by time.
CREATE INDEX ledger_attempts_started_at ON ledger_attempts (started_at_ms);

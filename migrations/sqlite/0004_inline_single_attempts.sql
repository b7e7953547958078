-- Most requests make exactly one upstream attempt, and it succeeds: its row repeated
-- the request's target, tokens, cost and time to first token, and writing it (a
-- second B-tree insert and 20 more values per request) was a third of the ledger's
-- CPU on the core that serves requests. Such an attempt is now kept in its request's
-- row: the columns below hold what it does not share with the request (the model is
-- the one configured, where the request's is the one the upstream named), and are
-- NULL for every other request. Attempts of requests that failed
-- over, retried, or failed stay rows of their own, in `ledger_attempt_rows`.
--
-- The view `ledger_attempts` shows both kinds as before, one row per attempt, so
-- queries (and people) reading attempts see no difference. A request row written
-- first holds its attempt for good: should a retried batch carry an altered copy of
-- the entry whose attempt no longer fits in the row (the request insert then does
-- nothing), the attempt row it adds is not shown.

ALTER TABLE ledger_requests ADD COLUMN attempt_started_at_ms BIGINT;
ALTER TABLE ledger_requests ADD COLUMN attempt_latency_ms BIGINT;
ALTER TABLE ledger_requests ADD COLUMN attempt_priced BOOLEAN;
ALTER TABLE ledger_requests ADD COLUMN attempt_model TEXT;
ALTER TABLE ledger_requests ADD COLUMN attempt_status INTEGER;

ALTER TABLE ledger_attempts RENAME TO ledger_attempt_rows;

CREATE VIEW ledger_attempts AS
SELECT request_id, attempt_index, target, provider, provider_kind, model, started_at_ms,
       latency_ms, ttft_ms, input_tokens, output_tokens, cache_read_tokens,
       cache_write_tokens, reasoning_tokens, cost_micros, priced, outcome, error_kind,
       status, retry_after_ms
FROM ledger_attempt_rows AS a
WHERE NOT EXISTS (
    SELECT 1 FROM ledger_requests AS r
    WHERE r.id = a.request_id AND r.attempt_started_at_ms IS NOT NULL
)
UNION ALL
SELECT id, 0, target, provider, provider_kind, attempt_model, attempt_started_at_ms,
       attempt_latency_ms, ttft_ms, input_tokens, output_tokens, cache_read_tokens,
       cache_write_tokens, reasoning_tokens, cost_micros, attempt_priced, 'success', NULL,
       attempt_status, NULL
FROM ledger_requests
WHERE attempt_started_at_ms IS NOT NULL;

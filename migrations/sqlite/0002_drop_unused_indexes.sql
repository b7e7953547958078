-- Every ledger query filters on started_at_ms alone (reports group the rows of a time
-- window in one pass), so the per-route, per-key and per-target indexes were never
-- read, yet every insert paid to maintain them. Keep started_at_ms's index only.

DROP INDEX IF EXISTS ledger_requests_route_started_at;
DROP INDEX IF EXISTS ledger_requests_key_started_at;
DROP INDEX IF EXISTS ledger_requests_target_started_at;

-- Reports read requests by start time, but request ids are uuid v7 strings, which
-- sort by the time they were made: a query by time can bound the primary key
-- instead (`store::lowest_id_since`). The start-time index was one more B-tree insert
-- per request on the core that serves requests, about a tenth of the ledger's cost.
DROP INDEX IF EXISTS ledger_requests_started_at;

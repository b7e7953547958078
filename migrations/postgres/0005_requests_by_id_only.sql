-- Kept in step with migrations/sqlite/0005_requests_by_id_only.sql in number only:
-- PostgreSQL keeps its start-time index. Its rows are a heap, not clustered on the
-- id, and a report on a shared database should not depend on a text collation
-- ordering ids the way SQLite's byte order does.
SELECT 1;

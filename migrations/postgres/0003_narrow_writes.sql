-- Kept in step with migrations/sqlite/0003_narrow_writes.sql: no query reads attempts
-- by time yet, and the attempts' foreign key was one more primary-key lookup per
-- attempt for rows the writer always inserts together with their request. (Tables are
-- heaps in PostgreSQL; SQLite's WITHOUT ROWID has no counterpart to change here.)

DROP INDEX IF EXISTS ledger_attempts_started_at;
ALTER TABLE ledger_attempts DROP CONSTRAINT IF EXISTS ledger_attempts_request_id_fkey;

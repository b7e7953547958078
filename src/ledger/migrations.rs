//! The database migrations, compiled into the binary so `switchyard serve` needs no
//! files next to it.
//!
//! sqlx's `migrate!` macro needs sqlx's `macros` feature, which we leave off (no
//! compile-time database checks), so the SQL files under `migrations/sqlite/` and
//! `migrations/postgres/` are embedded with `include_str!` and handed to sqlx's
//! runtime `Migrator`, which keeps its usual `_sqlx_migrations` bookkeeping and
//! checksums. Every new migration file must be added to both lists below; a unit
//! test compares the lists with the directories so a forgotten file fails the build.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::error::BoxDynError;
use sqlx::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};

/// (version, description, SQL) of one embedded migration file `NNNN_description.sql`.
type EmbeddedFile = (i64, &'static str, &'static str);

const SQLITE: &[EmbeddedFile] = &[
    (1, "ledger", include_str!("../../migrations/sqlite/0001_ledger.sql")),
    (2, "drop_unused_indexes", include_str!("../../migrations/sqlite/0002_drop_unused_indexes.sql")),
    (3, "narrow_writes", include_str!("../../migrations/sqlite/0003_narrow_writes.sql")),
    (4, "inline_single_attempts", include_str!("../../migrations/sqlite/0004_inline_single_attempts.sql")),
    (5, "requests_by_id_only", include_str!("../../migrations/sqlite/0005_requests_by_id_only.sql")),
];

const POSTGRES: &[EmbeddedFile] = &[
    (1, "ledger", include_str!("../../migrations/postgres/0001_ledger.sql")),
    (2, "drop_unused_indexes", include_str!("../../migrations/postgres/0002_drop_unused_indexes.sql")),
    (3, "narrow_writes", include_str!("../../migrations/postgres/0003_narrow_writes.sql")),
    (4, "inline_single_attempts", include_str!("../../migrations/postgres/0004_inline_single_attempts.sql")),
    (5, "requests_by_id_only", include_str!("../../migrations/postgres/0005_requests_by_id_only.sql")),
];

/// Which directory of migrations to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A `MigrationSource` over the files embedded above.
#[derive(Debug)]
struct Embedded(&'static [EmbeddedFile]);

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        let migrations = self
            .0
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    Cow::Borrowed(*sql),
                    false,
                )
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}

/// The migrator for one backend's directory.
pub(crate) async fn migrator(dialect: Dialect) -> Result<Migrator, MigrateError> {
    let files = match dialect {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
    };
    Migrator::new(Embedded(files)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_disk(dir: &str) -> Vec<(i64, String)> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dir);
        let mut files: Vec<(i64, String)> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".sql"))
            .map(|name| {
                let (version, rest) = name.split_once('_').unwrap();
                let description = rest.trim_end_matches(".sql").to_string();
                (version.parse().unwrap(), description)
            })
            .collect();
        files.sort();
        files
    }

    fn embedded(files: &[EmbeddedFile]) -> Vec<(i64, String)> {
        files.iter().map(|(v, d, _)| (*v, d.to_string())).collect()
    }

    /// A ledger written before 0003 keeps every row through the table rebuilds, and the
    /// rebuilt tables are clustered on their keys.
    #[tokio::test]
    async fn narrowing_the_tables_keeps_the_rows_already_written() {
        use sqlx::sqlite::SqliteConnectOptions;
        use sqlx::{ConnectOptions, Connection, Row};
        use std::str::FromStr;

        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
        let mut conn = SqliteConnectOptions::from_str(&url).unwrap().create_if_missing(true).connect().await.unwrap();
        Migrator::new(Embedded(&SQLITE[..2])).await.unwrap().run(&mut conn).await.unwrap();
        sqlx::query(
            "INSERT INTO ledger_requests VALUES ('r1', 1000, 'support', 'anonymous', 'openai-chat', FALSE, 'openai/gpt-4.1', \
             'openai', 'openai', 'gpt-4.1', 10, 20, 0, 0, 0, 123, 50, NULL, 'success', 200, 2, 'upstream_5xx')",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        for (index, outcome) in [(0, "failed"), (1, "success")] {
            sqlx::query(
                "INSERT INTO ledger_attempts VALUES ('r1', $1, 'openai/gpt-4.1', 'openai', 'openai', 'gpt-4.1', 1000, 25, NULL, \
                 10, 20, 0, 0, 0, 123, TRUE, $2, NULL, NULL, NULL)",
            )
            .bind(index)
            .bind(outcome)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        conn.close().await.unwrap();

        let store = crate::ledger::LedgerStore::connect(&url).await.unwrap();
        let requests = store.requests_since(chrono::DateTime::UNIX_EPOCH).await.unwrap();
        assert_eq!(requests.len(), 1);
        assert_eq!((&*requests[0].id, requests[0].cost_micros, requests[0].attempt_count), ("r1", 123, 2));
        let attempts = store.attempts_for("r1").await.unwrap();
        let outcomes: Vec<&str> = attempts.iter().map(|a| a.outcome.as_str()).collect();
        assert_eq!(outcomes, ["failed", "success"]);
        store.close().await;

        let mut conn = SqliteConnectOptions::from_str(&url).unwrap().connect().await.unwrap();
        let schema: Vec<String> = sqlx::query("SELECT sql FROM sqlite_master WHERE type = 'table' AND name LIKE 'ledger_%' ORDER BY name")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get("sql"))
            .collect();
        assert_eq!(schema.len(), 2, "{schema:?}");
        assert!(schema.iter().all(|sql| sql.ends_with("WITHOUT ROWID")), "{schema:?}");
        let indexes: Vec<String> = sqlx::query("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get("name"))
            .collect();
        // Both tables are clustered on their keys, and requests are found by time
        // through their uuid v7 ids: no secondary index for inserts to keep up.
        assert!(indexes.is_empty(), "{indexes:?}");
    }

    #[test]
    fn every_migration_file_is_embedded() {
        assert_eq!(embedded(SQLITE), on_disk("sqlite"));
        assert_eq!(embedded(POSTGRES), on_disk("postgres"));
    }
}

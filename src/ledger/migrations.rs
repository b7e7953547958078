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
];

const POSTGRES: &[EmbeddedFile] = &[
    (1, "ledger", include_str!("../../migrations/postgres/0001_ledger.sql")),
    (2, "drop_unused_indexes", include_str!("../../migrations/postgres/0002_drop_unused_indexes.sql")),
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

    #[test]
    fn every_migration_file_is_embedded() {
        assert_eq!(embedded(SQLITE), on_disk("sqlite"));
        assert_eq!(embedded(POSTGRES), on_disk("postgres"));
    }
}

//! The ledger's INSERT statements, shared by both backends: their text, made once per
//! statement size and placeholder style, and how a batch is cut into statements.

use std::sync::OnceLock;

/// Rows per INSERT statement. A batch is one transaction of several statements: a
/// statement's fixed cost is shared by its rows (in SQLite, one row per statement cost
/// 40% more than 32), and bind parameters (27 per request row) stay far below the
/// databases' limits.
pub(super) const ROWS_PER_STATEMENT: usize = 32;

/// Cuts `rows` into INSERT statements of a few fixed sizes: full statements of
/// [`ROWS_PER_STATEMENT`] rows, then the rest in powers of two (100 = 3 × 32 + 4).
/// With so few distinct statements, every one can stay prepared on the connection:
/// the batch pays for binding, not for parsing and planning a statement of a new shape,
/// and the cache of prepared statements cannot grow without bound.
pub(super) fn statement_chunks<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = if rest.len() >= ROWS_PER_STATEMENT { ROWS_PER_STATEMENT } else { 1 << rest.len().ilog2() };
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        Some(chunk)
    })
}

/// One table's multi-row INSERT, its text made once per statement size: a batch binds
/// values to statements it already has, instead of writing out hundreds of
/// placeholders per statement and having the driver hash the result to find it
/// prepared.
pub(super) struct Insert {
    head: &'static str,
    pub(super) columns: usize,
    tail: &'static str,
    /// By placeholder style, then by log2 of the row count (the sizes
    /// [`statement_chunks`] makes).
    texts: [[OnceLock<String>; STATEMENT_SIZES]; 2],
}

/// How a backend writes bind parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placeholders {
    /// `?`, bound in order (SQLite). SQLite also reads `$1`, but as a parameter *name*
    /// that binding looks up among all the statement's names, which for a 700-value
    /// statement costs more than the insert itself.
    Positional,
    /// `$1`, `$2`, ... (PostgreSQL).
    Numbered,
}

/// 1, 2, 4, ... [`ROWS_PER_STATEMENT`] rows.
pub(super) const STATEMENT_SIZES: usize = ROWS_PER_STATEMENT.ilog2() as usize + 1;

impl Insert {
    const fn new(head: &'static str, columns: usize, tail: &'static str) -> Insert {
        Insert { head, columns, tail, texts: [const { [const { OnceLock::new() }; STATEMENT_SIZES] }; 2] }
    }

    /// The statement for `rows` rows, a power of two up to [`ROWS_PER_STATEMENT`].
    pub(super) fn sql(&self, placeholders: Placeholders, rows: usize) -> &str {
        debug_assert!(rows.is_power_of_two() && rows <= ROWS_PER_STATEMENT);
        self.texts[placeholders as usize][rows.ilog2() as usize].get_or_init(|| {
            let mut sql = String::from(self.head);
            sql.push_str("VALUES ");
            for row in 0..rows {
                sql.push_str(if row == 0 { "(" } else { ", (" });
                for column in 0..self.columns {
                    let separator = if column == 0 { "" } else { ", " };
                    match placeholders {
                        Placeholders::Positional => {
                            sql.push_str(separator);
                            sql.push('?');
                        }
                        Placeholders::Numbered => sql.push_str(&format!("{separator}${}", row * self.columns + column + 1)),
                    }
                }
                sql.push(')');
            }
            sql.push_str(self.tail);
            sql
        })
    }
}

pub(super) static REQUEST_INSERT: Insert = Insert::new(
    "INSERT INTO ledger_requests (id, started_at_ms, route, key_id, front_door, stream, target, \
     provider, provider_kind, model, input_tokens, output_tokens, cache_read_tokens, \
     cache_write_tokens, reasoning_tokens, cost_micros, latency_ms, ttft_ms, outcome, status, \
     attempt_count, failover_reason, attempt_started_at_ms, attempt_latency_ms, attempt_priced, attempt_model, attempt_status) ",
    27,
    " ON CONFLICT (id) DO NOTHING",
);

pub(super) static ATTEMPT_INSERT: Insert = Insert::new(
    "INSERT INTO ledger_attempt_rows (request_id, attempt_index, target, provider, provider_kind, \
     model, started_at_ms, latency_ms, ttft_ms, input_tokens, output_tokens, cache_read_tokens, \
     cache_write_tokens, reasoning_tokens, cost_micros, priced, outcome, error_kind, status, \
     retry_after_ms) ",
    20,
    " ON CONFLICT (request_id, attempt_index) DO NOTHING",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_insert_statement_has_one_placeholder_per_value_in_the_backends_style() {
        let insert = Insert::new("INSERT INTO t (a, b) ", 2, " ON CONFLICT (a) DO NOTHING");
        let numbered = |rows| insert.sql(Placeholders::Numbered, rows);
        assert_eq!(numbered(1), "INSERT INTO t (a, b) VALUES ($1, $2) ON CONFLICT (a) DO NOTHING");
        assert_eq!(numbered(2), "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT (a) DO NOTHING");
        assert_eq!(insert.sql(Placeholders::Positional, 2), "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) ON CONFLICT (a) DO NOTHING");
        assert!(REQUEST_INSERT.sql(Placeholders::Numbered, ROWS_PER_STATEMENT).ends_with("$863, $864) ON CONFLICT (id) DO NOTHING"));
    }

    #[test]
    fn a_batch_is_cut_into_statements_of_few_distinct_sizes_keeping_every_row_once() {
        for n in [0, 1, 2, 3, 100, 255, 256, 257, 1000] {
            let rows: Vec<usize> = (0..n).collect();
            let chunks: Vec<&[usize]> = statement_chunks(&rows).collect();
            assert_eq!(chunks.concat(), rows, "{n} rows");
            assert!(
                chunks.iter().all(|c| c.len() == ROWS_PER_STATEMENT || c.len().is_power_of_two()),
                "{n} rows: sizes {:?}",
                chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
            );
        }
        let sizes: Vec<usize> = statement_chunks(&[0; 100]).map(<[i32]>::len).collect();
        assert_eq!(sizes, [32, 32, 32, 4]);
    }
}

//! The price catalog: effective-dated prices per catalog provider and model, and the
//! arithmetic that turns a [`Usage`] into integer micro-dollars.
//!
//! Prices arrive as floats in USD per million tokens (the built-in
//! `catalog/prices.toml` and config overrides) and are converted once, on load, into
//! integer micro-dollars per million tokens; every computation after that is integer.
//! A change of price is a new row with a later `effective_from`, never an edit, so a
//! past request is always priced by the row that was in force when it started.
//! This module knows nothing about providers' configuration or the database.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::canonical::Usage;

/// The built-in catalog, compiled in so the binary carries its own prices.
const BUILTIN: &str = include_str!("../../catalog/prices.toml");

/// The highest price accepted, in USD per million tokens: far above any real price,
/// low enough that a typo (a per-token price entered per million, say) is caught and
/// that micro-dollar arithmetic cannot overflow.
const MAX_USD_PER_MTOK: f64 = 100_000.0;

/// One price row as written in `catalog/prices.toml` or in config: USD per 1M tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceRow {
    /// Catalog provider id: openai, azure-openai, anthropic, bedrock, vertex, gemini,
    /// mistral. Not a configured provider's name.
    pub provider: String,
    pub model: String,
    /// First day (UTC) this price applies to; it holds until a later row's date.
    #[serde(deserialize_with = "date_from_toml_or_string")]
    pub effective_from: NaiveDate,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// Falls back to the input price when absent.
    #[serde(default)]
    pub cache_read_per_mtok: Option<f64>,
    /// Falls back to the input price when absent.
    #[serde(default)]
    pub cache_write_per_mtok: Option<f64>,
    /// Where the figures come from (a URL).
    pub source: String,
}

/// A validated price in integer micro-dollars per 1M tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub input: u64,
    pub output: u64,
    pub cache_read: Option<u64>,
    pub cache_write: Option<u64>,
}

impl Price {
    /// What `usage` costs at this price, in micro-dollars. See [`cost_micros`].
    pub fn cost_micros(&self, usage: &Usage) -> i64 {
        cost_micros(self, usage)
    }
}

/// What `usage` costs at `price`, in micro-dollars: Σ tokens × micro-dollars per 1M
/// tokens ÷ 1M, rounded half-up once on the total so per-category rounding never
/// adds up to a visible error.
///
/// Cache reads and writes without their own price are billed at the input price.
/// Reasoning tokens are already part of `output_tokens` and are not billed again.
/// Saturates at `i64::MAX` instead of overflowing.
pub fn cost_micros(price: &Price, usage: &Usage) -> i64 {
    let terms = [
        (usage.input_tokens, price.input),
        (usage.output_tokens, price.output),
        (
            usage.cache_read_tokens,
            price.cache_read.unwrap_or(price.input),
        ),
        (
            usage.cache_write_tokens,
            price.cache_write.unwrap_or(price.input),
        ),
    ];
    let micro_micros: u128 = terms.iter().fold(0u128, |sum, (tokens, per_mtok)| {
        sum.saturating_add(u128::from(*tokens).saturating_mul(u128::from(*per_mtok)))
    });
    let rounded = micro_micros.saturating_add(500_000) / 1_000_000;
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

/// A price file or override that cannot be used, naming the row at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PriceError {
    #[error("{origin}: cannot parse price list: {message}")]
    Parse { origin: String, message: String },
    #[error("{origin}: price row {row}: {problem}")]
    Invalid {
        origin: String,
        row: String,
        problem: String,
    },
    #[error("{origin}: price row {row} repeats {provider}/{model} effective {effective_from}; a price change needs a later effective_from")]
    Duplicate {
        origin: String,
        row: String,
        provider: String,
        model: String,
        effective_from: NaiveDate,
    },
}

/// One validated row: its parsed form (kept for its source and for listing) and its
/// integer price.
#[derive(Debug, Clone, PartialEq)]
struct DatedPrice {
    row: PriceRow,
    price: Price,
}

/// Effective-dated prices keyed by (catalog provider id, model id).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceCatalog {
    /// By provider, then model (nested, so that a lookup borrows the names instead of
    /// building a key: it runs for every request). Each list is sorted by
    /// `effective_from` with no two rows on the same date.
    by_model: BTreeMap<String, BTreeMap<String, Vec<DatedPrice>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    #[serde(default)]
    price: Vec<PriceRow>,
}

impl PriceCatalog {
    /// The catalog compiled from `catalog/prices.toml`.
    pub fn builtin() -> Result<Self, PriceError> {
        Self::from_toml_str(BUILTIN, "catalog/prices.toml")
    }

    /// Parses a price file of `[[price]]` tables. `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, PriceError> {
        let file: PriceFile = toml::from_str(text).map_err(|e| PriceError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        let mut catalog = PriceCatalog::default();
        catalog.add_rows(file.price, origin, Conflict::Reject)?;
        Ok(catalog)
    }

    /// Adds configured rows. A row with the same provider, model and effective date
    /// as a built-in one replaces it; any other row is a new dated price. Two
    /// override rows for the same provider, model and date are an error.
    pub fn with_overrides(
        mut self,
        rows: impl IntoIterator<Item = PriceRow>,
    ) -> Result<Self, PriceError> {
        let rows: Vec<PriceRow> = rows.into_iter().collect();
        // Reject duplicates among the overrides themselves before replacing anything.
        PriceCatalog::default().add_rows(rows.clone(), "price overrides", Conflict::Reject)?;
        self.add_rows(rows, "price overrides", Conflict::Replace)?;
        Ok(self)
    }

    fn add_rows(
        &mut self,
        rows: Vec<PriceRow>,
        origin: &str,
        on_conflict: Conflict,
    ) -> Result<(), PriceError> {
        for (i, row) in rows.into_iter().enumerate() {
            let name = format!(
                "#{} ({}/{} from {})",
                i + 1,
                row.provider,
                row.model,
                row.effective_from
            );
            let price = validate(&row).map_err(|problem| PriceError::Invalid {
                origin: origin.to_string(),
                row: name.clone(),
                problem,
            })?;
            let list = self.by_model.entry(row.provider.clone()).or_default().entry(row.model.clone()).or_default();
            let dated = DatedPrice { row, price };
            match list.binary_search_by_key(&dated.row.effective_from, |d| d.row.effective_from) {
                Ok(at) => match (on_conflict, list.get_mut(at)) {
                    (Conflict::Replace, Some(slot)) => *slot = dated,
                    _ => {
                        return Err(PriceError::Duplicate {
                            origin: origin.to_string(),
                            row: name,
                            provider: dated.row.provider,
                            model: dated.row.model,
                            effective_from: dated.row.effective_from,
                        })
                    }
                },
                Err(at) => list.insert(at, dated),
            }
        }
        Ok(())
    }

    /// The price in force for `provider`/`model` at `at`: the latest row whose
    /// `effective_from` is on or before `at`'s UTC date.
    pub fn price_at(&self, provider: &str, model: &str, at: DateTime<Utc>) -> Option<&Price> {
        self.dated_at(provider, model, at).map(|d| &d.price)
    }

    /// The row behind [`PriceCatalog::price_at`], for its source and dates.
    pub fn row_at(&self, provider: &str, model: &str, at: DateTime<Utc>) -> Option<&PriceRow> {
        self.dated_at(provider, model, at).map(|d| &d.row)
    }

    fn dated_at(&self, provider: &str, model: &str, at: DateTime<Utc>) -> Option<&DatedPrice> {
        let day = at.date_naive();
        self.by_model
            .get(provider)?
            .get(model)?
            .iter()
            .rev()
            .find(|d| d.row.effective_from <= day)
    }

    /// Every row, by provider, model and date.
    pub fn rows(&self) -> impl Iterator<Item = &PriceRow> {
        self.by_model.values().flat_map(BTreeMap::values).flatten().map(|d| &d.row)
    }

    pub fn len(&self) -> usize {
        self.by_model.values().flat_map(BTreeMap::values).map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_model.is_empty()
    }
}

#[derive(Clone, Copy)]
enum Conflict {
    Reject,
    Replace,
}

fn validate(row: &PriceRow) -> Result<Price, String> {
    if row.provider.trim().is_empty() {
        return Err("provider is empty".to_string());
    }
    if row.model.trim().is_empty() {
        return Err("model is empty".to_string());
    }
    let optional = |field: &str, value: Option<f64>| value.map(|v| micros(field, v)).transpose();
    Ok(Price {
        input: micros("input_per_mtok", row.input_per_mtok)?,
        output: micros("output_per_mtok", row.output_per_mtok)?,
        cache_read: optional("cache_read_per_mtok", row.cache_read_per_mtok)?,
        cache_write: optional("cache_write_per_mtok", row.cache_write_per_mtok)?,
    })
}

/// USD per 1M tokens → micro-dollars per 1M tokens. The only place floats meet money.
fn micros(field: &str, usd_per_mtok: f64) -> Result<u64, String> {
    if !usd_per_mtok.is_finite() {
        return Err(format!("{field} is not a number"));
    }
    if usd_per_mtok < 0.0 {
        return Err(format!("{field} is negative ({usd_per_mtok})"));
    }
    if usd_per_mtok > MAX_USD_PER_MTOK {
        return Err(format!(
            "{field} is {usd_per_mtok} USD per 1M tokens, above the {MAX_USD_PER_MTOK} sanity limit"
        ));
    }
    // Bounded above, so the cast cannot saturate; rounding absorbs binary noise such
    // as 4.125 * 1e6 = 4124999.9999.
    Ok((usd_per_mtok * 1_000_000.0).round() as u64)
}

/// Accepts a TOML date (`2026-09-01`) or a string holding one, so rows read the same
/// from TOML files and from JSON (admin API).
fn date_from_toml_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    use serde::de::Error;
    let text = match toml::Value::deserialize(d)? {
        toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => dt.to_string(),
        toml::Value::String(s) => s,
        other => {
            return Err(D::Error::custom(format!(
                "effective_from must be a date like 2026-09-01, not {other}"
            )))
        }
    };
    NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|e| {
        D::Error::custom(format!(
            "effective_from {text:?} is not a date like 2026-09-01: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalog_loads() {
        let catalog = PriceCatalog::builtin().unwrap();
        assert!(catalog.len() > 20);
        assert!(catalog.rows().all(|r| r.source.starts_with("https://")));
    }

    #[test]
    fn float_prices_become_exact_micros() {
        assert_eq!(micros("x", 4.125), Ok(4_125_000));
        assert_eq!(micros("x", 0.275), Ok(275_000));
        assert_eq!(micros("x", 0.0), Ok(0));
        assert!(micros("x", f64::NAN).is_err());
        assert!(micros("x", -0.01).is_err());
        assert!(micros("x", 1e9).is_err());
    }
}

//! The price catalog through its public API: built-in figures, effective dating,
//! config overrides, validation errors, and the integer cost arithmetic.

use chrono::{DateTime, NaiveDate, Utc};
use proptest::prelude::*;
use switchyard::canonical::Usage;
use switchyard::ledger::{cost_micros, Price, PriceCatalog, PriceError, PriceRow};

fn t(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

fn date(ymd: &str) -> NaiveDate {
    NaiveDate::parse_from_str(ymd, "%Y-%m-%d").unwrap()
}

fn builtin() -> PriceCatalog {
    PriceCatalog::builtin().unwrap()
}

fn tokens(input: u64, output: u64, cache_read: u64, cache_write: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cache_read_tokens: cache_read,
        cache_write_tokens: cache_write,
        reasoning_tokens: 0,
    }
}

fn row(provider: &str, model: &str, from: &str, input: f64, output: f64) -> PriceRow {
    PriceRow {
        provider: provider.to_string(),
        model: model.to_string(),
        effective_from: date(from),
        input_per_mtok: input,
        output_per_mtok: output,
        cache_read_per_mtok: None,
        cache_write_per_mtok: None,
        source: "https://example.com/our-contract".to_string(),
    }
}

const MID_2026: &str = "2026-06-15T12:00:00Z";

#[test]
fn builtin_prices_are_held_as_integer_micro_dollars_per_million_tokens() {
    let catalog = builtin();
    let gpt5 = catalog.price_at("openai", "gpt-5", t(MID_2026)).unwrap();
    assert_eq!(
        *gpt5,
        Price {
            input: 1_250_000,
            output: 10_000_000,
            cache_read: Some(125_000),
            cache_write: None
        }
    );
    let bedrock = catalog
        .price_at("bedrock", "us.anthropic.claude-sonnet-4-6", t(MID_2026))
        .unwrap();
    assert_eq!(
        *bedrock,
        Price {
            input: 3_300_000,
            output: 16_500_000,
            cache_read: Some(330_000),
            cache_write: Some(4_125_000)
        }
    );
}

#[test]
fn every_model_the_gateway_ships_with_has_a_price() {
    let catalog = builtin();
    let expected = [
        ("openai", "gpt-5.5"),
        ("openai", "gpt-5.4"),
        ("openai", "gpt-5"),
        ("openai", "gpt-5-mini"),
        ("openai", "gpt-4.1"),
        ("openai", "gpt-4.1-mini"),
        ("openai", "o3"),
        ("openai", "o4-mini"),
        ("azure-openai", "gpt-5"),
        ("anthropic", "claude-opus-5-5"),
        ("anthropic", "claude-sonnet-5-5"),
        ("anthropic", "claude-sonnet-5"),
        ("anthropic", "claude-sonnet-4-6"),
        ("anthropic", "claude-haiku-5-5"),
        ("anthropic", "claude-haiku-4-5"),
        ("gemini", "gemini-2.5-pro"),
        ("gemini", "gemini-2.5-flash"),
        ("gemini", "gemini-3.1-pro-preview"),
        ("vertex", "gemini-2.5-pro"),
        ("bedrock", "meta.llama4-maverick-17b-instruct-v1:0"),
        ("bedrock", "us.meta.llama3-3-70b-instruct-v1:0"),
        ("bedrock", "anthropic.claude-sonnet-4-6"),
        ("bedrock", "us.anthropic.claude-sonnet-4-6"),
        ("bedrock", "mistral.mistral-large-3-675b-instruct"),
        ("mistral", "mistral-large-latest"),
    ];
    for (provider, model) in expected {
        assert!(
            catalog.price_at(provider, model, t(MID_2026)).is_some(),
            "no price for {provider}/{model}"
        );
        let row = catalog.row_at(provider, model, t(MID_2026)).unwrap();
        assert!(
            row.source.starts_with("https://"),
            "{provider}/{model} has no source URL"
        );
    }
    assert!(catalog
        .price_at("openai", "gpt-unknown", t(MID_2026))
        .is_none());
    assert!(catalog.price_at("sim", "gpt-5", t(MID_2026)).is_none());
}

#[test]
fn claude_sonnet_5_is_priced_by_the_row_in_force_on_either_side_of_2026_09_01() {
    let catalog = builtin();
    let before = catalog
        .price_at("anthropic", "claude-sonnet-5", t("2026-08-31T23:59:59Z"))
        .unwrap();
    let after = catalog
        .price_at("anthropic", "claude-sonnet-5", t("2026-09-01T00:00:00Z"))
        .unwrap();
    assert_eq!((before.input, before.output), (2_000_000, 10_000_000));
    assert_eq!((after.input, after.output), (3_000_000, 15_000_000));
    assert_eq!(after.cache_read, Some(300_000));
    assert_eq!(after.cache_write, Some(3_750_000));
    // Long after the change, the change still holds.
    let later = catalog
        .price_at("anthropic", "claude-sonnet-5", t("2027-03-01T00:00:00Z"))
        .unwrap();
    assert_eq!(later, after);
}

#[test]
fn a_request_before_the_first_price_row_finds_no_price() {
    let catalog = builtin();
    assert!(catalog
        .price_at("anthropic", "claude-sonnet-5", t("2025-12-31T23:59:59Z"))
        .is_none());
}

#[test]
fn a_known_request_costs_an_exact_number_of_micro_dollars() {
    let sonnet = *builtin()
        .price_at("anthropic", "claude-sonnet-4-6", t(MID_2026))
        .unwrap();
    // 1,000 × $3 + 500 × $15 + 2,000 × $0.30 + 100 × $3.75 per 1M tokens
    // = 3,000 + 7,500 + 600 + 375 micro-dollars.
    assert_eq!(
        cost_micros(&sonnet, &tokens(1_000, 500, 2_000, 100)),
        11_475
    );
    // A million output tokens at $15/M is exactly $15.
    assert_eq!(sonnet.cost_micros(&tokens(0, 1_000_000, 0, 0)), 15_000_000);
}

#[test]
fn cache_tokens_without_their_own_price_are_billed_at_the_input_price() {
    let catalog = builtin();
    // gpt-5 has a cache-read price but no cache-write price: writes bill as input.
    let gpt5 = catalog.price_at("openai", "gpt-5", t(MID_2026)).unwrap();
    assert_eq!(cost_micros(gpt5, &tokens(0, 0, 0, 1_000)), 1_250);
    assert_eq!(cost_micros(gpt5, &tokens(0, 0, 1_000, 0)), 125);
    // Llama on Bedrock has no cache prices at all.
    let llama = catalog
        .price_at("bedrock", "us.meta.llama3-3-70b-instruct-v1:0", t(MID_2026))
        .unwrap();
    assert_eq!(cost_micros(llama, &tokens(0, 0, 1_000, 1_000)), 1_440);
}

#[test]
fn rounding_is_half_up_once_on_the_total() {
    let price = Price {
        input: 100_000,
        output: 500_000,
        cache_read: None,
        cache_write: Some(125_000),
    };
    assert_eq!(cost_micros(&price, &tokens(4, 0, 0, 0)), 0); // 0.4 µ$
    assert_eq!(cost_micros(&price, &tokens(5, 0, 0, 0)), 1); // 0.5 µ$ rounds up
                                                             // 0.4 + 0.125 = 0.525 µ$: rounding each part first would give 0.
    assert_eq!(cost_micros(&price, &tokens(4, 0, 0, 1)), 1);
    assert_eq!(cost_micros(&price, &tokens(0, 0, 0, 0)), 0);
}

#[test]
fn reasoning_tokens_are_not_billed_on_top_of_output() {
    let price = *builtin().price_at("openai", "o3", t(MID_2026)).unwrap();
    let plain = tokens(100, 1_000, 0, 0);
    let thinking = Usage {
        reasoning_tokens: 800,
        ..plain
    };
    assert_eq!(cost_micros(&price, &plain), cost_micros(&price, &thinking));
    assert_eq!(cost_micros(&price, &thinking), 200 + 8_000);
}

#[test]
fn huge_usage_saturates_instead_of_overflowing() {
    let price = Price {
        input: u64::MAX,
        output: u64::MAX,
        cache_read: None,
        cache_write: None,
    };
    let usage = tokens(u64::MAX, u64::MAX, u64::MAX, u64::MAX);
    assert_eq!(cost_micros(&price, &usage), i64::MAX);
}

#[test]
fn an_override_with_the_same_date_replaces_the_builtin_row() {
    let negotiated = row("openai", "gpt-5", "2026-01-01", 1.0, 8.0);
    let catalog = builtin().with_overrides([negotiated.clone()]).unwrap();
    let price = catalog.price_at("openai", "gpt-5", t(MID_2026)).unwrap();
    assert_eq!((price.input, price.output), (1_000_000, 8_000_000));
    assert_eq!(
        price.cache_read, None,
        "the override replaces the whole row"
    );
    assert_eq!(
        catalog.row_at("openai", "gpt-5", t(MID_2026)),
        Some(&negotiated)
    );
    assert_eq!(catalog.len(), builtin().len());
}

#[test]
fn an_override_with_a_later_date_is_a_price_change_not_an_edit() {
    let cut = row("openai", "gpt-5", "2027-01-01", 0.5, 4.0);
    let catalog = builtin().with_overrides([cut]).unwrap();
    let before = catalog
        .price_at("openai", "gpt-5", t("2026-12-31T23:59:59Z"))
        .unwrap();
    let after = catalog
        .price_at("openai", "gpt-5", t("2027-01-01T00:00:00Z"))
        .unwrap();
    assert_eq!(before.input, 1_250_000);
    assert_eq!(after.input, 500_000);
    assert_eq!(catalog.len(), builtin().len() + 1);
}

#[test]
fn an_override_can_price_a_model_the_catalog_lacks() {
    let custom = row("azure-openai", "gpt-4.1", "2026-01-01", 2.0, 8.0);
    let catalog = builtin().with_overrides([custom]).unwrap();
    assert_eq!(
        catalog
            .price_at("azure-openai", "gpt-4.1", t(MID_2026))
            .map(|p| p.input),
        Some(2_000_000)
    );
}

#[test]
fn two_overrides_for_the_same_model_and_date_are_refused() {
    let a = row("openai", "gpt-5", "2027-01-01", 0.5, 4.0);
    let b = row("openai", "gpt-5", "2027-01-01", 0.6, 4.0);
    let error = builtin().with_overrides([a, b]).unwrap_err();
    assert!(matches!(error, PriceError::Duplicate { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("#2 (openai/gpt-5 from 2027-01-01)"),
        "{error}"
    );
}

#[test]
fn a_negative_price_is_refused_naming_the_row() {
    let bad = row("mistral", "mistral-small", "2026-01-01", -0.1, 0.3);
    let error = builtin().with_overrides([bad]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "price overrides: price row #1 (mistral/mistral-small from 2026-01-01): input_per_mtok is negative (-0.1)"
    );
}

#[test]
fn a_duplicate_row_in_one_price_file_is_refused() {
    let text = r#"
        [[price]]
        provider = "openai"
        model = "gpt-5"
        effective_from = 2026-01-01
        input_per_mtok = 1.25
        output_per_mtok = 10.0
        source = "https://example.com/a"

        [[price]]
        provider = "openai"
        model = "gpt-5"
        effective_from = 2026-01-01
        input_per_mtok = 1.5
        output_per_mtok = 10.0
        source = "https://example.com/b"
    "#;
    let error = PriceCatalog::from_toml_str(text, "prices.toml").unwrap_err();
    assert_eq!(
        error,
        PriceError::Duplicate {
            origin: "prices.toml".to_string(),
            row: "#2 (openai/gpt-5 from 2026-01-01)".to_string(),
            provider: "openai".to_string(),
            model: "gpt-5".to_string(),
            effective_from: date("2026-01-01"),
        }
    );
}

#[test]
fn a_bad_date_is_refused_with_the_text_that_was_wrong() {
    let text = r#"
        [[price]]
        provider = "openai"
        model = "gpt-5"
        effective_from = "2026-13-01"
        input_per_mtok = 1.25
        output_per_mtok = 10.0
        source = "https://example.com/a"
    "#;
    let error = PriceCatalog::from_toml_str(text, "prices.toml").unwrap_err();
    assert!(matches!(error, PriceError::Parse { .. }), "{error:?}");
    assert!(error.to_string().contains("\"2026-13-01\""), "{error}");

    let datetime = text.replace("\"2026-13-01\"", "2026-09-01T10:00:00Z");
    let error = PriceCatalog::from_toml_str(&datetime, "prices.toml").unwrap_err();
    assert!(error.to_string().contains("must be a date"), "{error}");
}

#[test]
fn a_price_row_reads_from_config_toml_and_from_json() {
    let from_toml: PriceRow = toml::from_str(
        r#"
        provider = "anthropic"
        model = "claude-haiku-4-5"
        effective_from = 2026-10-01
        input_per_mtok = 0.8
        output_per_mtok = 4
        cache_read_per_mtok = 0.08
        source = "https://example.com/contract"
        "#,
    )
    .unwrap();
    assert_eq!(from_toml.effective_from, date("2026-10-01"));
    assert_eq!(from_toml.output_per_mtok, 4.0);

    let from_json: PriceRow = serde_json::from_str(
        r#"{"provider":"anthropic","model":"claude-haiku-4-5","effective_from":"2026-10-01",
            "input_per_mtok":0.8,"output_per_mtok":4,"cache_read_per_mtok":0.08,
            "source":"https://example.com/contract"}"#,
    )
    .unwrap();
    assert_eq!(from_json, from_toml);
}

fn any_price() -> impl Strategy<Value = Price> {
    // Up to $100,000 per 1M tokens, the catalog's own ceiling.
    let per_mtok = 0u64..=100_000_000_000;
    (
        per_mtok.clone(),
        per_mtok.clone(),
        proptest::option::of(per_mtok.clone()),
        proptest::option::of(per_mtok),
    )
        .prop_map(|(input, output, cache_read, cache_write)| Price {
            input,
            output,
            cache_read,
            cache_write,
        })
}

fn any_usage() -> impl Strategy<Value = Usage> {
    let count = 0u64..=10_000_000_000;
    (
        count.clone(),
        count.clone(),
        count.clone(),
        count.clone(),
        count,
    )
        .prop_map(
            |(input, output, cache_read, cache_write, reasoning)| Usage {
                input_tokens: input,
                output_tokens: output,
                cache_read_tokens: cache_read,
                cache_write_tokens: cache_write,
                reasoning_tokens: reasoning.min(output),
            },
        )
}

proptest! {
    #[test]
    fn cost_is_never_negative_and_never_falls_when_tokens_rise(
        price in any_price(),
        usage in any_usage(),
        extra in 0u64..=1_000_000,
        category in 0usize..4,
    ) {
        let base = cost_micros(&price, &usage);
        prop_assert!(base >= 0);
        let mut more = usage;
        match category {
            0 => more.input_tokens += extra,
            1 => more.output_tokens += extra,
            2 => more.cache_read_tokens += extra,
            _ => more.cache_write_tokens += extra,
        }
        prop_assert!(cost_micros(&price, &more) >= base);
    }

    #[test]
    fn splitting_usage_in_two_changes_the_cost_by_at_most_one_micro_dollar(
        price in any_price(),
        a in any_usage(),
        b in any_usage(),
    ) {
        let sum = Usage {
            input_tokens: a.input_tokens + b.input_tokens,
            output_tokens: a.output_tokens + b.output_tokens,
            cache_read_tokens: a.cache_read_tokens + b.cache_read_tokens,
            cache_write_tokens: a.cache_write_tokens + b.cache_write_tokens,
            reasoning_tokens: a.reasoning_tokens + b.reasoning_tokens,
        };
        let whole = cost_micros(&price, &sum);
        let parts = cost_micros(&price, &a) + cost_micros(&price, &b);
        prop_assert!((whole - parts).abs() <= 1, "whole {} vs parts {}", whole, parts);
    }
}

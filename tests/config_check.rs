//! `switchyard check` and config validation: every problem is reported with the path
//! of the value at fault, all at once.

use std::process::Command;

use switchyard::config::Config;

fn env(name: &str) -> Option<String> {
    match name {
        "OPENAI_API_KEY" => Some("sk-test-123".to_owned()),
        _ => None,
    }
}

fn errors(toml: &str) -> Vec<String> {
    match Config::from_toml(toml, &env) {
        Ok(_) => panic!("expected the config to be rejected"),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

const PROVIDERS: &str = r#"
[providers.openai]
kind = "openai"
api_key = "${OPENAI_API_KEY}"

[providers.bedrock]
kind = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
"#;

#[test]
fn a_misspelled_provider_in_a_route_is_named_with_its_path_and_a_suggestion() {
    let toml = format!("{PROVIDERS}\n[routes.support]\ntargets = [{{ provider = \"openai\", model = \"gpt-4.1\" }}, {{ provider = \"bedrok\", model = \"x\" }}]\n");
    assert_eq!(errors(&toml), vec![r#"routes.support.targets[1].provider: no provider named "bedrok" (did you mean "bedrock"?)"#]);
}

#[test]
fn a_missing_secret_variable_is_named() {
    let toml = r#"
[providers.azure]
kind = "azure-openai"
endpoint = "https://example.openai.azure.com"
api_version = "2024-10-21"
api_key = "${AZURE_OPENAI_API_KEY}"

[routes.chat]
targets = [{ provider = "azure", model = "gpt-4o-deploy" }]
"#;
    assert_eq!(errors(toml), vec!["providers.azure.api_key: environment variable AZURE_OPENAI_API_KEY is not set"]);
}

#[test]
fn every_problem_is_reported_at_once() {
    let toml = r#"
[providers.local]
kind = "openai-compatibel"

[providers.azure]
kind = "azure-openai"

[routes.chat]
targets = []
retries = 50
"#;
    let found = errors(toml);
    assert!(found.contains(&r#"providers.local.kind: unknown provider kind "openai-compatibel" (did you mean "openai-compatible"?) (known: openai, azure-openai, openai-compatible, anthropic, bedrock, vertex, gemini, sim)"#.to_owned()), "{found:#?}");
    assert!(found.contains(&r#"providers.azure.endpoint: is required for kind "azure-openai""#.to_owned()), "{found:#?}");
    assert!(found.contains(&r#"providers.azure.api_version: is required for kind "azure-openai""#.to_owned()), "{found:#?}");
    assert!(found.contains(&"routes.chat.targets: needs at least one target".to_owned()), "{found:#?}");
    assert!(found.contains(&"routes.chat.retries: must be at most 10".to_owned()), "{found:#?}");
}

#[test]
fn an_unknown_key_is_rejected_with_its_line_and_column() {
    let toml = "[routes.chat]\ntargets = []\nretrys = 3\n";
    let found = errors(toml);
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("line 3, column 1: unknown field `retrys`"), "{}", found[0]);
}

#[test]
fn a_bad_sim_setting_and_a_bad_price_row_are_named() {
    let toml = r#"
[providers.s]
kind = "sim"
sim = { failure_rate = 1.5, failure_kind = "5xxx" }

[routes.r]
targets = [{ provider = "s", model = "m" }]

[[prices]]
provider = "openai"
model = "gpt-4.1"
effective_from = "2026-13-01"
input_per_mtok = 2.0
output_per_mtok = 8.0
"#;
    let found = errors(toml);
    assert!(found.contains(&"providers.s.sim.failure_rate: must be between 0 and 1".to_owned()), "{found:#?}");
    assert!(found.iter().any(|e| e.starts_with(r#"providers.s.sim.failure_kind: unknown failure kind "5xxx" (did you mean "5xx"?)"#)), "{found:#?}");
    assert!(found.contains(&r#"prices[0].effective_from: "2026-13-01" is not a date like 2026-01-31"#.to_owned()), "{found:#?}");
}

#[test]
fn each_cloud_provider_kind_names_its_required_settings() {
    let toml = "[providers.v]\nkind = \"vertex\"\n[providers.b]\nkind = \"bedrock\"\naccess_key_id = \"AKID\"\n[providers.a]\nkind = \"anthropic\"\n[providers.g]\nkind = \"gemini\"\n[routes.r]\ntargets = [{ provider = \"v\", model = \"m\" }]\n";
    let found = errors(toml);
    for expected in [
        r#"providers.v.project: is required for kind "vertex""#,
        r#"providers.v.region: is required for kind "vertex""#,
        r#"providers.b.region: is required for kind "bedrock""#,
        "providers.b.access_key_id: and secret_access_key must be given together",
        r#"providers.a.api_key: is required for kind "anthropic""#,
        r#"providers.g.api_key: is required for kind "gemini""#,
    ] {
        assert!(found.contains(&expected.to_owned()), "missing {expected:?} in {found:#?}");
    }
}

#[test]
fn the_quickstart_configuration_is_valid_and_fully_simulated() {
    let config = Config::quickstart().expect("quickstart config is valid");
    assert!(config.routes.contains_key("chat"));
    assert!(config.providers.values().all(|p| p.kind() == "sim"));
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.ledger.url, "sqlite://switchyard.db");
}

#[test]
fn secrets_are_not_printed_by_debug_formatting() {
    let toml = format!("{PROVIDERS}\n[routes.r]\ntargets = [{{ provider = \"openai\", model = \"gpt-4.1\" }}]\n");
    let config = Config::from_toml(&toml, &env).expect("valid");
    let debug = format!("{config:?}");
    assert!(!debug.contains("sk-test-123"), "secret leaked in {debug}");
}

fn switchyard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
}

#[test]
fn check_lists_every_problem_and_exits_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, format!("{PROVIDERS}\n[routes.support]\ntargets = [{{ provider = \"bedrok\", model = \"x\" }}]\n")).unwrap();
    let output = switchyard().args(["check", "--config"]).arg(&path).env("OPENAI_API_KEY", "sk-x").output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(r#"routes.support.targets[0].provider: no provider named "bedrok" (did you mean "bedrock"?)"#), "{stderr}");
}

#[test]
fn check_names_a_missing_secret_variable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, format!("{PROVIDERS}\n[routes.r]\ntargets = [{{ provider = \"openai\", model = \"gpt-4.1\" }}]\n")).unwrap();
    let output = switchyard().args(["check", "--config"]).arg(&path).env_remove("OPENAI_API_KEY").output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("providers.openai.api_key: environment variable OPENAI_API_KEY is not set"), "{stderr}");
}

#[test]
fn serve_refuses_to_start_without_a_secret_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, format!("{PROVIDERS}\n[routes.r]\ntargets = [{{ provider = \"openai\", model = \"gpt-4.1\" }}]\n")).unwrap();
    let output = switchyard().args(["serve", "--config"]).arg(&path).env_remove("OPENAI_API_KEY").output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("providers.openai.api_key: environment variable OPENAI_API_KEY is not set"), "{stderr}");
}

#[test]
fn check_accepts_a_valid_file_and_prints_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.toml");
    std::fs::write(&path, format!("{PROVIDERS}\n[routes.r]\ntargets = [{{ provider = \"openai\", model = \"gpt-4.1\" }}]\n")).unwrap();
    let output = switchyard().args(["check", "--config"]).arg(&path).env("OPENAI_API_KEY", "sk-x").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("warning: routes.r: has a single target, so it has no failover"), "{stdout}");
    assert!(stdout.contains("ok (2 providers, 1 routes)"), "{stdout}");
}

#[test]
fn the_real_provider_example_is_valid_once_its_variables_are_set() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/providers.toml")).unwrap();
    let config = Config::from_toml(&text, &|name| Some(format!("https://{name}.example"))).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.routes.len(), 2);
    let missing = Config::from_toml(&text, &|_| None).unwrap_err().to_string();
    assert!(missing.contains("providers.openai.api_key: environment variable OPENAI_API_KEY is not set"), "{missing}");
}

#[test]
fn the_configuration_reference_in_the_readme_is_a_valid_config() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("## Configuration").expect("README has a Configuration section")..];
    let start = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    let config = Config::from_toml(block, &|name| Some(format!("{name}-value-0123456789"))).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.routes.contains_key("support"));
}

#[test]
fn a_providers_ca_file_must_be_readable_hold_certificates_and_belong_to_a_provider_that_connects() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls");
    let toml = format!(
        r#"
[providers.missing]
kind = "openai-compatible"
base_url = "https://vllm.internal:8000/v1"
ca_file = "{fixtures}/absent.pem"

[providers.key_not_ca]
kind = "openai-compatible"
base_url = "https://vllm.internal:8000/v1"
ca_file = "{fixtures}/server.key"

[providers.sim]
kind = "sim"
ca_file = "{fixtures}/ca.pem"

[routes.chat]
targets = [{{ provider = "missing", model = "m" }}, {{ provider = "key_not_ca", model = "m" }}, {{ provider = "sim", model = "m" }}]
"#
    );
    assert_eq!(
        errors(&toml),
        vec![
            format!("providers.key_not_ca.ca_file: \"{fixtures}/server.key\" holds no certificate (no \"-----BEGIN CERTIFICATE-----\" block)"),
            format!("providers.missing.ca_file: cannot read \"{fixtures}/absent.pem\": No such file or directory (os error 2)"),
            "providers.sim.ca_file: the simulator makes no connections; remove it".to_owned(),
        ]
    );
    let good = format!(
        r#"
[providers.internal]
kind = "openai-compatible"
base_url = "https://vllm.internal:8000/v1"
ca_file = "{fixtures}/ca.pem"

[routes.chat]
targets = [{{ provider = "internal", model = "m" }}]
"#
    );
    let config = Config::from_toml(&good, &env).expect("a readable CA file is accepted");
    assert_eq!(config.providers["internal"].ca_certificates.len(), 1);
}

#[test]
fn an_unknown_share_cap_dimension_is_named_with_a_suggestion_and_the_known_ones() {
    let toml = format!("{PROVIDERS}\n[routes.support]\ntargets = [{{ provider = \"openai\", model = \"gpt-4.1\" }}]\nmax_share = {{ clouds = 0.7, region = 1.5 }}\n");
    let mut found = errors(&toml);
    found.sort();
    assert_eq!(
        found,
        vec![
            r#"routes.support.max_share.clouds: unknown topology dimension (did you mean "cloud"?) (known: vendor, operator, cloud, region, accelerator)"#.to_owned(),
            "routes.support.max_share.region: must be above 0 and at most 1".to_owned(),
        ]
    );
}

#[test]
fn a_zero_header_timeout_is_refused() {
    let toml = format!("[server]\nheader_timeout = \"0s\"\n{PROVIDERS}\n[routes.support]\ntargets = [{{ provider = \"openai\", model = \"gpt-4.1\" }}]\n");
    assert_eq!(errors(&toml), vec!["server.header_timeout: must be longer than 0s (every connection would be closed before its first request)"]);
}

#[test]
fn zero_serving_threads_are_refused() {
    let toml = format!("[server]\nthreads = 0\n{PROVIDERS}\n[routes.support]\ntargets = [{{ provider = \"openai\", model = \"gpt-4.1\" }}]\n");
    assert_eq!(errors(&toml), vec!["server.threads: must be at least 1 (leave it out for one thread per CPU)"]);
}

#[test]
fn a_providers_answer_limit_below_one_kib_is_refused() {
    let toml = format!("{PROVIDERS}\n[routes.support]\ntargets = [{{ provider = \"openai\", model = \"gpt-4.1\" }}]\n")
        .replacen("[providers.openai]\n", "[providers.openai]\nmax_answer_bytes = 100\n", 1);
    assert_eq!(errors(&toml), vec!["providers.openai.max_answer_bytes: must be at least 1024"]);
}

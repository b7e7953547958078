//! The official client SDKs against a real gateway: starts mock upstreams playing
//! OpenAI, Anthropic, Bedrock and Gemini and the gateway in-process, then runs the
//! pytest suite in tests/python with `$SWITCHYARD_PYTHON` (the .venv that
//! scripts/python-env.sh builds).
//!
//! The gateway's routes (see [`gateway_config`]) and the environment pytest gets:
//!
//! - `chat` → the OpenAI mock (`openai_wire::chat_handler`): `SWITCHYARD_ROUTE`;
//! - `chat-rate-limited`, `chat-rate-limited-stream`, `chat-failing` → the same mock
//!   without retries, each on a target of its own so one test's cooldown or open
//!   circuit cannot leak into another: `SWITCHYARD_ERROR_ROUTES` (JSON);
//! - `via-anthropic`, `via-bedrock`, `via-gemini` → the mocks of
//!   `support::dialect_mocks`, with `…-rate-limited` and `…-faulty` twins of each that
//!   never retry: `SWITCHYARD_DIALECTS` (JSON: per dialect `route`,
//!   `rate_limited_route`, `faulty_route`, `upstream_url`).
//!
//! `SWITCHYARD_URL` is the gateway's root (Anthropic's SDK adds `/v1` itself),
//! `SWITCHYARD_BASE_URL` its OpenAI base URL, `SWITCHYARD_API_KEY` the client key it
//! requires, `MOCK_UPSTREAM_URL` the OpenAI mock.
//!
//! Without that interpreter the test is skipped loudly, except under `CI=true`,
//! where a missing environment is a failure.

mod support;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use support::{dialect_mocks, openai_wire, MockUpstream, TestGateway};

/// Longest the pytest run may take before the test fails.
const PYTEST_LIMIT: Duration = Duration::from_secs(180);

/// Exits non-zero naming the missing packages; finds them without importing (fast).
const FIND_SDKS: &str = "import importlib.util, sys; \
    missing = [m for m in ('openai', 'anthropic', 'httpx', 'pytest') if importlib.util.find_spec(m) is None]; \
    sys.exit('missing packages: ' + ', '.join(missing) if missing else None)";

/// The Python interpreter with the client SDKs installed, or `None` (after saying
/// why) when the test should be skipped. Under `CI=true` a missing environment panics.
fn python_with_sdks() -> Option<String> {
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let problem = match std::env::var("SWITCHYARD_PYTHON") {
        Err(_) => "SWITCHYARD_PYTHON is not set".to_string(),
        Ok(python) => {
            let check = std::process::Command::new(&python)
                .args(["-c", FIND_SDKS])
                .output();
            match check {
                Ok(output) if output.status.success() => return Some(python),
                Ok(output) => format!(
                    "{python} lacks the client SDKs: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
                Err(e) => format!("cannot run SWITCHYARD_PYTHON={python}: {e}"),
            }
        }
    };
    if in_ci {
        panic!("real-client tests cannot run under CI: {problem}; run scripts/test.sh");
    }
    // Written straight to stderr: libtest captures `eprintln!`, and a skip must be seen.
    let banner = "*".repeat(72);
    let _ = writeln!(
        std::io::stderr(),
        "\n{banner}\nSKIPPED: real-client tests ({problem}).\n         \
         Run scripts/test.sh, which builds .venv and sets SWITCHYARD_PYTHON.\n{banner}"
    );
    None
}

/// The mock upstreams the gateway sends to.
struct Upstreams {
    openai: MockUpstream,
    anthropic: MockUpstream,
    bedrock: MockUpstream,
    gemini: MockUpstream,
}

impl Upstreams {
    async fn start() -> Upstreams {
        let upstreams = Upstreams {
            openai: MockUpstream::start().await,
            anthropic: MockUpstream::start().await,
            bedrock: MockUpstream::start().await,
            gemini: MockUpstream::start().await,
        };
        upstreams.openai.set_default(openai_wire::chat_handler());
        upstreams.anthropic.set_default(dialect_mocks::anthropic_handler());
        upstreams.bedrock.set_default(dialect_mocks::bedrock_handler());
        upstreams.gemini.set_default(dialect_mocks::gemini_handler());
        upstreams
    }
}

/// The client key the gateway requires, and the SDKs are given (`SWITCHYARD_API_KEY`).
const CLIENT_KEY: &str = "sk-switchyard-sdk-tests";

/// Each dialect's provider name (also its routes' suffix) and the model its routes target.
const DIALECT_TARGETS: [(&str, &str); 3] = [
    ("anthropic", "claude-sonnet-4-5-20250929"),
    // A colon in the model id: Bedrock's path must carry it percent-encoded.
    ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("gemini", "gemini-3-flash-preview"),
];

/// One provider per upstream, the routes listed in the module docs. Error routes do no
/// retries (a 429's one-second retry hint would otherwise be waited out) and each has
/// a target (provider/model) of its own, because a failure cools its target down.
fn gateway_config(upstreams: &Upstreams) -> String {
    let mut config = format!(
        r#"
[ledger]
url = "{{LEDGER}}"

# Both SDKs send it as `authorization: Bearer`.
[keys.sdk-tests]
secret = "{CLIENT_KEY}"

[providers.mock]
kind = "openai-compatible"
base_url = "{openai}/v1"
api_key = "sk-test"

[providers.anthropic]
kind = "anthropic"
base_url = "{anthropic}"
api_key = "sk-ant-test"

[providers.bedrock]
kind = "bedrock"
region = "us-east-1"
endpoint = "{bedrock}"
access_key_id = "AKIDMOCKTEST"
secret_access_key = "mock/secret+key"

[providers.gemini]
kind = "gemini"
base_url = "{gemini}"
api_key = "AIza-mock-test-key"

[routes.chat]
targets = [{{ provider = "mock", model = "gpt-4.1-mini" }}]

[routes.chat-rate-limited]
retries = 0
targets = [{{ provider = "mock", model = "gpt-rate-limited" }}]

[routes.chat-rate-limited-stream]
retries = 0
targets = [{{ provider = "mock", model = "gpt-rate-limited-stream" }}]

[routes.chat-failing]
retries = 0
targets = [{{ provider = "mock", model = "gpt-failing" }}]
"#,
        openai = upstreams.openai.base_url(),
        anthropic = upstreams.anthropic.base_url(),
        bedrock = upstreams.bedrock.base_url(),
        gemini = upstreams.gemini.base_url(),
    );
    for (provider, model) in DIALECT_TARGETS {
        config.push_str(&format!(
            r#"
[routes.via-{provider}]
targets = [{{ provider = "{provider}", model = "{model}" }}]

[routes.via-{provider}-rate-limited]
retries = 0
targets = [{{ provider = "{provider}", model = "{model}-rate-limited" }}]

[routes.via-{provider}-faulty]
retries = 0
targets = [{{ provider = "{provider}", model = "{model}-faulty" }}]
"#
        ));
    }
    config
}

/// `SWITCHYARD_DIALECTS`: per dialect, its routes and its mock.
fn dialects_env(upstreams: &Upstreams) -> String {
    let url = |provider: &str| match provider {
        "anthropic" => upstreams.anthropic.base_url(),
        "bedrock" => upstreams.bedrock.base_url(),
        _ => upstreams.gemini.base_url(),
    };
    let dialects: serde_json::Map<String, serde_json::Value> = DIALECT_TARGETS
        .iter()
        .map(|(provider, _)| {
            let entry = json!({
                "route": format!("via-{provider}"),
                "rate_limited_route": format!("via-{provider}-rate-limited"),
                "faulty_route": format!("via-{provider}-faulty"),
                "upstream_url": url(provider),
            });
            (provider.to_string(), entry)
        })
        .collect();
    serde_json::Value::Object(dialects).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_and_anthropic_python_sdks_work_against_the_gateway() {
    let Some(python) = python_with_sdks() else {
        return;
    };
    let upstreams = Upstreams::start().await;
    let gateway = TestGateway::start(&gateway_config(&upstreams)).await;
    let error_routes = json!({
        "rate_limited": "chat-rate-limited",
        "rate_limited_stream": "chat-rate-limited-stream",
        "failing": "chat-failing",
    });

    let mut pytest = tokio::process::Command::new(&python);
    pytest
        .args([
            "-m",
            "pytest",
            "tests/python",
            "-q",
            "-rfEsxX",
            "-p",
            "no:cacheprovider",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("SWITCHYARD_URL", &gateway.url)
        .env("SWITCHYARD_API_KEY", CLIENT_KEY)
        .env("SWITCHYARD_BASE_URL", gateway.v1_url())
        .env("MOCK_UPSTREAM_URL", upstreams.openai.base_url())
        .env("SWITCHYARD_ROUTE", "chat")
        .env("SWITCHYARD_ERROR_ROUTES", error_routes.to_string())
        .env("SWITCHYARD_DIALECTS", dialects_env(&upstreams))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(PYTEST_LIMIT, pytest.output())
        .await
        .unwrap_or_else(|_| panic!("pytest did not finish within {PYTEST_LIMIT:?}"))
        .expect("run pytest");
    gateway.shutdown().await;

    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("--- pytest stdout ---\n{stdout}");
    println!(
        "--- pytest stderr ---\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "pytest failed ({}); its output is above",
        output.status
    );
    assert!(
        stdout.contains(" passed"),
        "pytest passed nothing; its output is above"
    );
}

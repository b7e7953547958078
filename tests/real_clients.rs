//! The official client SDKs against a real gateway: starts a mock upstream playing
//! OpenAI and the gateway in-process, then runs the pytest suite in tests/python
//! with `$SWITCHYARD_PYTHON` (the .venv that scripts/python-env.sh builds).
//!
//! Without that interpreter the test is skipped loudly, except under `CI=true`,
//! where a missing environment is a failure.

mod support;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use support::{mock_config, openai_wire, MockUpstream, TestGateway};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_python_sdk_works_against_the_gateway() {
    let Some(python) = python_with_sdks() else {
        return;
    };
    let upstream = MockUpstream::start().await;
    upstream.set_default(openai_wire::chat_handler());
    let gateway = TestGateway::start(&mock_config(&upstream)).await;

    let mut pytest = tokio::process::Command::new(&python);
    pytest
        .args([
            "-m",
            "pytest",
            "tests/python",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("SWITCHYARD_BASE_URL", gateway.v1_url())
        .env("MOCK_UPSTREAM_URL", upstream.base_url())
        .env("SWITCHYARD_ROUTE", "chat")
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

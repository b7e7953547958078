#!/usr/bin/env bash
# The whole test suite, as CI runs it: Rust unit, integration and doc tests, plus
# the real-client tests that drive the gateway with the official Python SDKs.
#
# Needs only a Rust toolchain and Python 3; the Python packages are installed into
# .venv by scripts/python-env.sh (fast when already installed). Extra arguments go
# to `cargo test`, e.g. `scripts/test.sh -- --nocapture`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/python-env.sh

# tests/real_clients.rs runs pytest with this interpreter.
export SWITCHYARD_PYTHON="$PWD/.venv/bin/python"
export PYTHONDONTWRITEBYTECODE=1

echo "test.sh: cargo test --all-targets $*"
cargo test --all-targets "$@"

# --all-targets skips doc tests; they are cheap, so run them too (lib only).
echo "test.sh: cargo test --doc"
cargo test --doc

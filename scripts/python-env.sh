#!/usr/bin/env bash
# Creates or updates the Python virtualenv the real-client tests use (.venv at the
# repository root) from tests/python/requirements.txt.
#
# Idempotent and fast: a stamp file in .venv records the hash of the requirements
# file and the interpreter version, and nothing is installed while it matches.
# Needs only `python3` (3.9+, with the venv module) and access to PyPI.
#
# Usage: scripts/python-env.sh        (PYTHON=/path/to/python3 to pick an interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
requirements=tests/python/requirements.txt
stamp="$venv/.requirements.stamp"
python=${PYTHON:-python3}

say() { echo "python-env: $*"; }

if ! command -v "$python" >/dev/null 2>&1; then
    say "cannot find '$python'; install Python 3 or set PYTHON=/path/to/python3" >&2
    exit 1
fi

# A venv whose interpreter no longer runs (moved repo, removed Python) is rebuilt.
if [ -e "$venv" ] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    say "$venv is broken; recreating it"
    rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv with $("$python" --version 2>&1)"
    if ! "$python" -m venv "$venv"; then
        say "'$python -m venv' failed; on Debian/Ubuntu install python3-venv" >&2
        exit 1
    fi
fi

want=$("$venv/bin/python" - "$requirements" <<'PY'
import hashlib, sys
with open(sys.argv[1], "rb") as f:
    digest = hashlib.sha256(f.read()).hexdigest()
print(f"{digest} python{sys.version_info[0]}.{sys.version_info[1]}")
PY
)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "$venv is up to date with $requirements"
    exit 0
fi

say "installing $requirements into $venv"
"$venv/bin/python" -m pip install --disable-pip-version-check --quiet -r "$requirements"
echo "$want" > "$stamp"
say "installed: $("$venv/bin/python" -m pip freeze --disable-pip-version-check | grep -iE '^(openai|anthropic|httpx|pytest)==' | tr '\n' ' ')"

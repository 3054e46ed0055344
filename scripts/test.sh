#!/usr/bin/env bash
# Every test: formatting, lints, unit and integration tests, the cross-checks against Python's
# `cryptography`, and the supply-chain audit. Installs what it needs (a Python venv in .venv,
# cargo-deny and Prism in .tools) when missing; both are git-ignored.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "python venv for cross-checks, and the secret-store servers (OpenBao, moto)"
if ! .venv/bin/python -c 'import cryptography, phonenumbers, jsonschema, moto, aiosmtpd, schemathesis, playwright' 2>/dev/null \
    || [ ! -x .venv/bin/bao ] || [ ! -x .venv/bin/moto_server ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
fi
export HUSHFLOW_TEST_PYTHON="$root/.venv/bin/python"
# The secret-store tests start `bao` and `moto_server` from that venv, and must not be skipped
# here (without this a plain `cargo test` skips them and says why).
export HUSHFLOW_TEST_REQUIRE_SERVICES=1

step "Apache Airflow 3.3.2 and the hushflow-airflow provider (the Airflow tests run exported DAGs on it)"
# A venv of its own in .tools/airflow-venv (git-ignored): uv from PyPI, then Airflow by uv (about
# 3 s; pip takes a minute), the provider as an editable install and pytest. The Rust tests in
# crates/hushflow/tests/cli/airflow.rs find it there and, with HUSHFLOW_TEST_REQUIRE_SERVICES=1,
# fail when it is missing.
airflow_venv=.tools/airflow-venv
if ! "$airflow_venv/bin/python" -c 'import airflow, hushflow_airflow, pytest, jsonschema' 2>/dev/null \
    || [ "$("$airflow_venv/bin/python" -c 'import importlib.metadata as m; print(m.version("apache-airflow"))' 2>/dev/null)" != 3.3.2 ]; then
  [ -x "$airflow_venv/bin/python" ] || python3 -m venv "$airflow_venv"
  "$airflow_venv/bin/pip" install --quiet --disable-pip-version-check uv
  "$airflow_venv/bin/uv" pip install --quiet --python "$airflow_venv/bin/python" \
    apache-airflow==3.3.2 pytest jsonschema -e integrations/airflow
fi
step "hushflow-airflow unit tests (pytest)"
(cd integrations/airflow && AIRFLOW__CORE__LOAD_EXAMPLES=False "$root/$airflow_venv/bin/python" -m pytest -q -p no:cacheprovider)

step "Prism (the HubSpot and Salesforce tests run through it, validating traffic against tests/openapi/)"
# npm's @stoplight/prism-cli into .tools/prism (git-ignored); the tests start
# .tools/prism/node_modules/.bin/prism themselves and, with HUSHFLOW_TEST_REQUIRE_SERVICES=1,
# fail when it is missing rather than run without it.
if [ ! -x .tools/prism/node_modules/.bin/prism ]; then
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get install -y -qq nodejs npm >/dev/null 2>&1 || { $sudo apt-get update -qq && $sudo apt-get install -y -qq nodejs npm; }
  fi
  mkdir -p .tools/prism
  (cd .tools/prism && npm install --no-audit --no-fund --silent @stoplight/prism-cli@5.14)
fi
.tools/prism/node_modules/.bin/prism --version

step "the age CLI (staged files are checked against it)"
if ! command -v age >/dev/null 2>&1 || ! command -v age-keygen >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get install -y -qq age >/dev/null 2>&1 || { $sudo apt-get update -qq && $sudo apt-get install -y -qq age; }
fi
age --version

step "chromium (the dashboard's browser test drives it through Playwright; no browser download)"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get install -y -qq chromium >/dev/null 2>&1 || { $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium; }
fi
chromium --version

step "Prometheus and promtool (the monitoring tests scrape with the real server)"
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get install -y -qq prometheus >/dev/null 2>&1 || { $sudo apt-get update -qq && $sudo apt-get install -y -qq prometheus; }
fi
promtool --version | head -n 1

step "PostgreSQL at 127.0.0.1:5432 (the database tests use a real server)"
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    $sudo apt-get install -y -qq postgresql >/dev/null 2>&1 || { $sudo apt-get update -qq && $sudo apt-get install -y -qq postgresql; }
    # A fresh cluster asks for passwords on TCP; the tests connect as postgres over loopback.
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
      $sudo sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
    done
  fi
  $sudo pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432
# The database tests use this server and must not be skipped here (without these variables a
# plain `cargo test` skips them and says why).
export HUSHFLOW_TEST_PG="postgres://postgres@127.0.0.1:5432" HUSHFLOW_TEST_REQUIRE_PG=1

step "cargo test"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  cargo test --workspace --locked --doc
else
  cargo test --workspace --locked
fi

step "cargo deny (advisories from a snapshot beside the checkout, when there is one)"
if ! command -v cargo-deny >/dev/null 2>&1 && [ ! -x .tools/bin/cargo-deny ]; then
  cargo install cargo-deny --locked --version '^0.20' --root .tools
fi
export PATH="$root/.tools/bin:$PATH"
# An offline advisory snapshot tool, when one sits beside this checkout (../shared/tools).
advisories=""
for candidate in "$root/../shared/tools/advisory-db"; do
  if [ -x "$candidate" ]; then advisories=$candidate; break; fi
done
if [ -n "$advisories" ]; then
  "$advisories" target/advisory-db >/dev/null
  cargo fetch --locked --quiet  # deny reads metadata for every target, not just this one
  cargo deny --offline check
else
  echo "no advisory snapshot (shared/tools/advisory-db) found; checking licenses, bans and sources only"
  cargo deny --offline check licenses bans sources
fi

step "all tests passed"

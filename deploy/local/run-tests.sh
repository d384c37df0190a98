#!/usr/bin/env bash
# Runs the test suite against real Kafka and PostgreSQL.
# - KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL set: use those servers, start nothing.
# - otherwise: start the local Kafka and PostgreSQL that are not running yet, run the
#   tests, and stop exactly what this script started, even when the tests fail.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python

if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" && -n "${DATABASE_URL:-}" ]]; then
  echo "[test] using KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL from the environment"
  exec "$PY" -m pytest "$@"
fi

mkdir -p .stack
started=.stack/started-by-tests
cleanup() { python3 deploy/local/stack.py stop-listed "$started"; }
trap cleanup EXIT INT TERM
python3 deploy/local/stack.py infra-up --started-file "$started" || exit 2
# shellcheck disable=SC1091
source .stack/env
"$PY" -m pytest "$@"

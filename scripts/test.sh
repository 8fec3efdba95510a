#!/usr/bin/env bash
# Runs the whole test suite. Integration tests start their own nats-server, DuckDB and local S3 processes,
# so this first installs what is missing (a no-op when everything is there).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-test-deps.sh
exec dotnet test Kawa.Dataflow.sln -c Release "$@"

#!/usr/bin/env bash
# Installs what the test suite needs when it is missing: nats-server (Debian package) and the Node.js
# peers in tools/node (DuckDB reads our Parquet files, s3rver is a local S3, the NATS JS client is a perf peer).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  echo "ensure-test-deps: installing nats-server from the OS package manager"
  if command -v apt-get >/dev/null 2>&1; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nats-server >/dev/null
  else
    echo "ensure-test-deps: nats-server is missing and there is no apt-get; install nats-server 2.9+ and put it on PATH" >&2
    exit 1
  fi
fi

# Fault tests: strace checks the commit's system-call order; setpriv/prlimit/unshare (util-linux) drop privileges
# and set file-size limits so permission and disk-full failures are real even when CI runs as root.
missing_pkgs=()
command -v strace >/dev/null 2>&1 || missing_pkgs+=(strace)
command -v setpriv >/dev/null 2>&1 || missing_pkgs+=(util-linux)
if [ ${#missing_pkgs[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-test-deps: installing ${missing_pkgs[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing_pkgs[@]}" >/dev/null
fi

if ! command -v node >/dev/null 2>&1; then
  echo "ensure-test-deps: installing Node.js from the OS package manager"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq nodejs npm >/dev/null
fi

if [ ! -d tools/node/node_modules/@duckdb/node-api ] || [ tools/node/package-lock.json -nt tools/node/node_modules/.package-lock.json ]; then
  echo "ensure-test-deps: installing Node.js test peers (npm install in tools/node)"
  # Not `npm ci`: the lock lists DuckDB's optional bindings for other platforms without versions (the registry
  # copy here lacks them), which `npm ci` rejects as out of sync; `npm install` follows the lock for the rest.
  (cd tools/node && npm install --no-audit --no-fund --loglevel=error)
fi

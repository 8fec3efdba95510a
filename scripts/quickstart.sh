#!/usr/bin/env bash
# Quick start: access-log lines → JetStream → kawa → Parquet lake, on this machine.
#   scripts/quickstart.sh [ACCESS_LOG]      (default samples/access.log; run from anywhere)
# Steps: ensure nats-server; start a JetStream server in a temp dir on a free port; create the stream and publish the
# log with `kawa publish`; `kawa run --drain` examples/jetstream-access-log-to-lake.json into ./lake; summarize with
# `kawa inspect` (rows per partition, top status codes); stop the server. Exits non-zero naming the failed step:
# 3 when the access log is not found (before anything starts), 4 when nats-server is missing or does not start, kawa's
# own exit code when `kawa run` fails. Temporary files (the JetStream store) go under $TMPDIR and are removed on exit.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log="${1:-$repo/samples/access.log}"
# Checked before realpath, which fails on a missing directory and would exit 1 without saying which file.
[ -f "$log" ] || { echo "quickstart: access log '$log' not found" >&2; exit 3; }
log="$(realpath "$log")"
cd "$repo"

step() { printf '\n== %s\n' "$*" >&2; }

step "1/6 nats-server"
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  # As root, or with password-less sudo; a fresh machine may have no package lists yet, hence the update.
  if [ "$(id -u)" = 0 ]; then as_root=(); elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as_root=(sudo -n); else as_root=(none); fi
  if command -v apt-get >/dev/null 2>&1 && [ "${as_root[*]}" != none ]; then
    "${as_root[@]}" apt-get update -qq >&2
    "${as_root[@]}" apt-get install -y nats-server >&2
  else
    echo "quickstart: nats-server is not installed. Install it first:" >&2
    echo "  Debian/Ubuntu: sudo apt-get install nats-server" >&2
    echo "  or download a release from https://github.com/nats-io/nats-server/releases and put it on PATH" >&2
    exit 4
  fi
fi
nats_server="$(command -v nats-server || echo /usr/sbin/nats-server)"

step "2/6 build kawa"
dotnet build Kawa.Dataflow.Cli -v q -nologo >&2
kawa() { dotnet "$repo/Kawa.Dataflow.Cli/bin/Debug/net10.0/kawa.dll" "$@"; }

step "3/6 start JetStream"
work="$(mktemp -d -t kawa-quickstart-XXXXXX)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$nats_server" -js -a 127.0.0.1 -p "$port" -sd "$work/store" >"$work/nats.log" 2>&1 &
nats_pid=$!
cleanup() { kill "$nats_pid" 2>/dev/null || true; wait "$nats_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
url="nats://127.0.0.1:$port"
for _ in $(seq 1 50); do
  grep -q "Server is ready" "$work/nats.log" && break
  sleep 0.1
done
grep -q "Server is ready" "$work/nats.log" || { echo "quickstart: nats-server did not start:" >&2; cat "$work/nats.log" >&2; exit 4; }
echo "nats-server $url (store $work/store)" >&2

step "4/6 publish $(wc -l <"$log") lines to stream ACCESS"
kawa publish --url "$url" --subject access.log --create-stream ACCESS "$log"

step "5/6 kawa run --drain into ./lake"
if [ -d lake ] && [ -n "$(find lake -name '*.parquet' -print -quit)" ]; then
  echo "note: ./lake already holds Parquet files from an earlier run; the summary below counts them too (remove ./lake for a fresh count)" >&2
fi
kawa run --drain --config examples/jetstream-access-log-to-lake.json --set "pipeline.source.servers[0]=$url" \
  || { rc=$?; echo "quickstart: step 5 (kawa run) failed with exit code $rc (see 'Exit codes' in docs/cli.md)" >&2; exit "$rc"; }

step "6/6 summary"
kawa inspect ./lake --rows 3 --top status

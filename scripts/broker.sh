#!/usr/bin/env bash
# Starts the Tansu test broker (memory-only) on 127.0.0.1:PORT in the background and waits until it
# accepts connections. Prints its PID. Usage: scripts/broker.sh [PORT] [LOGFILE]
set -euo pipefail
DEPS=${KFLOW_DEPS:-/opt/kflow-deps}
port=${1:-9092}
log=${2:-/dev/null}
url=tcp://127.0.0.1:$port
# Its own session: a Ctrl-C meant for kflow (make run) must not stop the broker before kflow flushes.
setsid "$DEPS/bin/tansu" broker --listener-url "$url" --advertised-listener-url "$url" \
  --storage-engine memory://tansu/ >"$log" 2>&1 </dev/null &
pid=$!
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$pid"; exit 0; fi
  kill -0 "$pid" 2>/dev/null || { echo "tansu exited; see $log" >&2; exit 1; }
  sleep 0.05
done
echo "tansu did not listen on $port within 5 s" >&2
kill "$pid" 2>/dev/null || true
exit 1

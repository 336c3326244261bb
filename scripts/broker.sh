#!/usr/bin/env bash
# Starts the Tansu test broker (memory-only) on 127.0.0.1:PORT in the background and waits (at most
# WAIT_SECONDS, default 5) until it accepts connections. Prints its PID. The project's one way to start
# Tansu: `make run`, the Swift Kafka tests and the Python harness (Tests/e2e/support/procs.py: the
# end-to-end tests and bench/) all run it. Usage: scripts/broker.sh [PORT] [LOGFILE] [WAIT_SECONDS]
set -euo pipefail
DEPS=${KFLOW_DEPS:-/opt/kflow-deps}
port=${1:-9092}
log=${2:-/dev/null}
wait_seconds=${3:-5}
url=tcp://127.0.0.1:$port
# Its own session: a Ctrl-C meant for kflow (make run) must not stop the broker before kflow flushes.
# The log is appended to, so a broker restarted on the same port keeps its earlier log.
setsid "$DEPS/bin/tansu" broker --listener-url "$url" --advertised-listener-url "$url" \
  --storage-engine memory://tansu/ >>"$log" 2>&1 </dev/null &
pid=$!
for _ in $(seq 1 $((wait_seconds * 20))); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$pid"; exit 0; fi
  kill -0 "$pid" 2>/dev/null || { echo "tansu exited; see $log" >&2; exit 1; }
  sleep 0.05
done
echo "tansu did not listen on $port within $wait_seconds s" >&2
kill "$pid" 2>/dev/null || true
exit 1

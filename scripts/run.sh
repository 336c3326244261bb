#!/usr/bin/env bash
# `make run`: runs kflow-master in the foreground. When the effective bootstrap server is the default
# (localhost:9092) and nothing listens there, a local Tansu broker is started first and stopped after.
# Usage: scripts/run.sh BIN_DIR [kflow-master arguments...]
set -euo pipefail
bin=$1; shift
cd "$(dirname "$0")/.."
bootstrap=$("$bin/kflow-master" --print-config "$@" 2>/dev/null | awk '$1 == "kafka.props.bootstrap.servers" || $1 ~ /^kafka.props.bootstrap.servers=/ {print}' | head -n1)
broker_pid=""
if [[ "$bootstrap" == *"localhost:9092"* ]] && ! (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null; then
  mkdir -p out
  broker_pid=$(scripts/broker.sh 9092 out/tansu.log)
  echo "run: started a local Tansu broker on 127.0.0.1:9092 (pid $broker_pid, log out/tansu.log)" >&2
  trap 'kill $broker_pid 2>/dev/null || true' EXIT
fi
"$bin/kflow-master" "$@" &
master=$!
trap 'kill -TERM $master 2>/dev/null || true; wait $master; [ -n "$broker_pid" ] && kill $broker_pid 2>/dev/null || true' INT TERM
wait $master

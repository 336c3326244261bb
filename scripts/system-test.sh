#!/usr/bin/env bash
# The Debian package under a real systemd: builds the package (unless KFLOW_DEB names one), makes sure the
# cached Debian 12 root file system exists, and runs Tests/system in a guest booted with systemd-nspawn.
# Needs root. Extra arguments go to pytest (e.g. -k reload). Exit status is pytest's.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
DEPS=${KFLOW_DEPS:-/opt/kflow-deps}

[ "$(id -u)" -eq 0 ] || { echo "system-test: needs root (systemd-nspawn)" >&2; exit 1; }
command -v systemd-nspawn >/dev/null || { echo "system-test: systemd-nspawn missing (run scripts/setup.sh)" >&2; exit 1; }

if [ -z "${KFLOW_DEB:-}" ]; then
  KFLOW_DEB=$(bash scripts/deb.sh)
fi
export KFLOW_DEB
export KFLOW_NSPAWN_ROOT
KFLOW_NSPAWN_ROOT=$(bash scripts/nspawn-rootfs.sh)

exec "$DEPS/venv/bin/python" -m pytest -v -p no:cacheprovider Tests/system "$@"

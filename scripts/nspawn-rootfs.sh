#!/usr/bin/env bash
# Creates, once, the minimal Debian 12 root file system that Tests/system boots with systemd-nspawn, and
# prints its path. The guest is booted with --volatile=overlay, so this tree is never modified by a test.
# Usage: scripts/nspawn-rootfs.sh   Environment: KFLOW_DEPS (/opt/kflow-deps), KFLOW_NSPAWN_ROOT.
set -euo pipefail

DEPS=${KFLOW_DEPS:-/opt/kflow-deps}
root=${KFLOW_NSPAWN_ROOT:-$DEPS/nspawn-bookworm}
# Bump when the contents below change, so that an old cache is rebuilt.
stamp=$root/.kflow-rootfs-v1
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf 'nspawn-rootfs: %s\n' "$*" >&2; }

if [ -f "$stamp" ]; then echo "$root"; exit 0; fi
command -v debootstrap >/dev/null || { log "debootstrap is missing (run scripts/setup.sh)"; exit 1; }
[ "$(id -u)" -eq 0 ] || { log "debootstrap needs root"; exit 1; }

# systemd as init, dbus for systemctl, procps for the test's pgrep/ps; the rest are what kflow's
# ${shlibs:Depends} resolves to, because the guest has no network for apt to fetch them.
packages=systemd,systemd-sysv,dbus,procps,libssl3,liblz4-1,libzstd1,zlib1g
tmp=$root.tmp
rm -rf "$tmp"
log "debootstrap bookworm into $tmp (a few minutes, once)"
debootstrap --variant=minbase --include="$packages" bookworm "$tmp" "$mirror" >&2

echo kflow-guest >"$tmp/etc/hostname"
# An empty machine-id makes systemd generate a transient one at each boot.
: >"$tmp/etc/machine-id"
# Nothing in a test guest needs a login prompt or periodic maintenance; masking them keeps boots quick
# and the journal quiet.
for unit in getty@tty1.service console-getty.service apt-daily.timer apt-daily-upgrade.timer \
            dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer systemd-pstore.service; do
  ln -sfn /dev/null "$tmp/etc/systemd/system/$unit"
done
rm -f "$tmp/etc/systemd/system/getty.target.wants/getty@tty1.service"
apt_lists=("$tmp"/var/lib/apt/lists/*_Packages)
rm -f "${apt_lists[@]}" "$tmp"/var/cache/apt/archives/*.deb

rm -rf "$root"
mv "$tmp" "$root"
touch "$stamp"
log "ready: $root"
echo "$root"

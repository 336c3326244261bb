#!/usr/bin/env bash
# Creates, once, the minimal Debian 12 root file system that Tests/system boots with systemd-nspawn, and
# prints its path. The guest is booted with --volatile=overlay, so a test never modifies this tree.
# Usage: scripts/nspawn-rootfs.sh   Environment: KFLOW_DEPS (/opt/kflow-deps), KFLOW_NSPAWN_ROOT.
set -euo pipefail

DEPS=${KFLOW_DEPS:-/opt/kflow-deps}
root=${KFLOW_NSPAWN_ROOT:-$DEPS/nspawn-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Bump when the package list changes, so that an old cache is bootstrapped again.
base_stamp=.kflow-rootfs-base-v1

log() { printf 'nspawn-rootfs: %s\n' "$*" >&2; }

if [ ! -f "$root/$base_stamp" ]; then
  command -v debootstrap >/dev/null || { log "debootstrap is missing (run scripts/setup.sh)"; exit 1; }
  [ "$(id -u)" -eq 0 ] || { log "debootstrap needs root"; exit 1; }
  # systemd as init, dbus for systemctl, procps for ps; the rest are what kflow's ${shlibs:Depends}
  # resolves to, because the guest has no network for apt to fetch them.
  packages=systemd,systemd-sysv,dbus,procps,libssl3,liblz4-1,libzstd1,zlib1g
  tmp=$root.tmp
  rm -rf "$tmp"
  log "debootstrap bookworm into $tmp (a few minutes, once)"
  debootstrap --variant=minbase --include="$packages" bookworm "$tmp" "$mirror" >&2
  rm -f "$tmp"/var/lib/apt/lists/*_Packages "$tmp"/var/cache/apt/archives/*.deb
  touch "$tmp/$base_stamp"
  rm -rf "$root"
  mv "$tmp" "$root"
fi

# The settings below are cheap and idempotent, so they are (re)applied on every call.
echo kflow-guest >"$root/etc/hostname"
# debootstrap writes no /etc/hosts; without it "localhost" (kafka.props.bootstrap.servers' default)
# does not resolve.
cat >"$root/etc/hosts" <<'HOSTS'
127.0.0.1	localhost
127.0.1.1	kflow-guest
::1		localhost ip6-localhost ip6-loopback
HOSTS
# An empty machine-id makes systemd generate a transient one at each boot.
: >"$root/etc/machine-id"
# Nothing in a test guest needs a login prompt or periodic maintenance; masking them keeps boots quick
# and the journal quiet.
for unit in getty@tty1.service console-getty.service apt-daily.timer apt-daily-upgrade.timer \
            dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer systemd-pstore.service; do
  ln -sfn /dev/null "$root/etc/systemd/system/$unit"
done
rm -f "$root/etc/systemd/system/getty.target.wants/getty@tty1.service"
echo "$root"

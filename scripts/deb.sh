#!/usr/bin/env bash
# Builds the kflow Debian package: a release build with the Swift runtime linked statically, a staged
# source tree (packaging/ plus the two binaries), dpkg-buildpackage -b, then lintian.
# Prints the path of the .deb on stdout. Usage: scripts/deb.sh [OUTDIR]   (default: out/deb)
# Environment: DEB_SCRATCH (SwiftPM scratch path, default .build-deb), KFLOW_DEPS (/opt/kflow-deps).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
DEPS=${KFLOW_DEPS:-/opt/kflow-deps}
scratch=${DEB_SCRATCH:-.build-deb}
outdir=${1:-out/deb}
export PKG_CONFIG_PATH=$DEPS/librdkafka/static${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}

log() { printf 'deb: %s\n' "$*" >&2; }
fail() { log "$*"; exit 1; }

for tool in dpkg-buildpackage dh lintian fakeroot swift; do
  command -v "$tool" >/dev/null || fail "$tool is missing (run scripts/setup.sh)"
done

log "release build with the Swift runtime linked statically (scratch $scratch)"
# The flags every release build uses (static Swift runtime, -z now, lld with packed relocations).
read -ra flags <<<"$(grep -v '^#' scripts/release-flags | tr '\n' ' ')"
build=(swift build --scratch-path "$scratch" "${flags[@]}")
"${build[@]}" --product kflow-master >&2
"${build[@]}" --product kflow-worker >&2
bin=$("${build[@]}" --show-bin-path)

# The target has no Swift toolchain and Debian 12's librdkafka is too old: neither may be a run-time need.
for exe in kflow-master kflow-worker; do
  [ -x "$bin/$exe" ] || fail "$bin/$exe was not built"
  if ldd "$bin/$exe" | grep -E 'libswift|libFoundation|lib_FoundationICU|libdispatch|librdkafka'; then
    fail "$exe links one of the libraries above dynamically; it must carry them statically"
  fi
done

# Issue 13 (docs/PACKAGING.md, "Size"): no ICU or full Foundation in either binary (63 MB each when they
# crept in through a dependency's default trait), and not even FoundationEssentials in the worker.
for exe in kflow-master kflow-worker; do
  nm "$bin/$exe" | grep -E 'icu_[0-9]+|\$s10Foundation|FoundationInternationalization' >/dev/null \
    && fail "$exe links Foundation or ICU (see docs/PACKAGING.md, Size)"
done
nm "$bin/kflow-worker" | grep 'FoundationEssentials' >/dev/null \
  && fail "kflow-worker links FoundationEssentials (a module it uses imports it or swift-configuration)"

version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
stage=$outdir/kflow-$version
rm -rf "$stage"
mkdir -p "$stage/bin"
cp -a packaging/. "$stage/"
install -m 0755 "$bin/kflow-master" "$bin/kflow-worker" "$stage/bin/"

# The conffile is the master's own reference configuration (every key, its comment, its default) with
# each setting commented out, so it can never disagree with the binary it ships with.
reference=$("$bin/kflow-master" --print-reference) \
  || fail "kflow-master --print-reference failed; it is the source of /etc/kflow/kflow.properties"
grep -qE '^[a-z][a-z0-9.]*=' <<<"$reference" || fail "kflow-master --print-reference printed no key=value line"
{
  printf '%s\n' "# /etc/kflow/kflow.properties: read by kflow.service (kflow-master --config this file)." \
    "# Every setting is listed below, commented out, at its built-in default: uncomment a line to change it," \
    "# then run 'kflow-master --check-config --config /etc/kflow/kflow.properties' and 'systemctl reload kflow'." \
    "#"
  # Templates survive restarts in the unit's StateDirectory= (the one setting the package changes).
  sed -E 's/^([a-z][a-z0-9.]*=)/#\1/; s|^#templates\.state\.dir=$|templates.state.dir=/var/lib/kflow|' <<<"$reference"
} >"$stage/kflow.properties"
grep -qx 'templates.state.dir=/var/lib/kflow' "$stage/kflow.properties" \
  || fail "the reference configuration has no empty templates.state.dir line to set for the package"

log "dpkg-buildpackage in $stage"
(cd "$stage" && dpkg-buildpackage -b -uc -us >&2)

arch=$(dpkg --print-architecture)
deb=$outdir/kflow_${version}_${arch}.deb
[ -f "$deb" ] || fail "$deb was not produced"

log "lintian"
# Errors fail the build; every remaining warning is explained in docs/PACKAGING.md.
lintian --fail-on error --info "$outdir/kflow_${version}_${arch}.changes" >&2

echo "$deb"

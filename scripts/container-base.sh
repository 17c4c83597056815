#!/usr/bin/env bash
# Builds a local stand-in for node:20-bookworm-slim when the registry's images cannot be pulled:
# Debian bookworm (mmdebstrap, minbase) with this machine's Node, npm and Node headers copied to
# where the official image keeps them (/usr/local). Imports it into podman and prints its name.
#
#   scripts/container-base.sh [NODE_BINARY]      # default: the node on PATH
#
# Reused when present: the image tag carries the Node version and a hash of this script, and the
# root filesystem tarball is kept under $PORTCULLIS_CI_CACHE (default /var/cache/portcullis-ci),
# so a machine builds it once. Needs root, mmdebstrap and podman.
set -euo pipefail

node_bin=$(readlink -f "${1:-$(command -v node)}")
node_root=$(dirname "$(dirname "$node_bin")")
version=$("$node_bin" --version)
npm_dir="$node_root/lib/node_modules/npm"
headers="$node_root/include/node"
for path in "$npm_dir/bin/npm-cli.js" "$headers/node.h" "$headers/common.gypi"; do
  [ -e "$path" ] || { echo "container-base: $path not found (npm and the Node headers must sit beside $node_bin)" >&2; exit 1; }
done

script_hash=$(sha256sum "$0" | cut -c1-10)
image="localhost/portcullis-base:node-${version}-${script_hash}"
cache=${PORTCULLIS_CI_CACHE:-/var/cache/portcullis-ci}
tarball="$cache/portcullis-base-node-${version}-${script_hash}.tar"

if podman image exists "$image"; then
  echo "$image"
  exit 0
fi

mkdir -p "$cache"
if [ ! -s "$tarball" ]; then
  echo "container-base: building $tarball with mmdebstrap" >&2
  partial="$tarball.partial.$$"
  trap 'rm -f "$partial"' EXIT
  # Hooks get the root directory as $1; the copied paths are this machine's Node install.
  mmdebstrap --variant=minbase --mode=root --format=tar \
    --include=ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='mkdir -p "$1/usr/local/bin" "$1/usr/local/lib/node_modules" "$1/usr/local/include"' \
    --customize-hook="copy-in $node_bin /usr/local/bin" \
    --customize-hook="copy-in $npm_dir /usr/local/lib/node_modules" \
    --customize-hook="copy-in $headers /usr/local/include" \
    --customize-hook='ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm"' \
    --customize-hook='ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
    --customize-hook='chroot "$1" /usr/local/bin/node --version' \
    bookworm "$partial" >&2
  mv "$partial" "$tarball"
  trap - EXIT
fi

podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=${version#v}" \
  --change 'CMD ["node"]' \
  "$tarball" "$image" >&2
echo "$image"

#!/usr/bin/env bash
# Runs the smoke test in the built image's root, called by container.test.ts under
# `unshare --net --mount`: a network namespace holding only loopback and a private mount
# namespace, so nothing here reaches the host's network or its mounts.
#   container-chroot.sh ROOT UID:GID SPEC_JSON
set -euo pipefail
root=$1
user=$2
spec=$3
ip link set lo up
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
exec chroot --userspec="$user" "$root" /usr/local/bin/node /tmp/container-smoke.mjs "$spec"

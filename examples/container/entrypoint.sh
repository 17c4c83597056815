#!/bin/sh
# The image's entrypoint: writes a random admin token on first start (the default configuration
# reads it from the data volume), then runs portcullis with the given arguments as PID 1.
set -eu
token_file=${PORTCULLIS_ADMIN_TOKEN_FILE:-/var/lib/portcullis/admin-token}
if [ ! -s "$token_file" ] && [ -w "$(dirname "$token_file")" ]; then
  umask 077
  node -e 'process.stdout.write(require("node:crypto").randomBytes(24).toString("base64url") + "\n")' >"$token_file.tmp"
  mv "$token_file.tmp" "$token_file"
  echo "portcullis: wrote a new admin token to $token_file" >&2
fi
exec portcullis "$@"

#!/usr/bin/env bash
# make run: nginx in the foreground with conf/maestro.conf, state in var/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

mkdir -p var/logs var/tmp

/usr/sbin/nginx -p "$root/var/" -c "$root/conf/maestro.conf" -t -q
echo "Maestro on http://127.0.0.1:8080/ (Ctrl-C stops it)"
exec /usr/sbin/nginx -p "$root/var/" -c "$root/conf/maestro.conf"

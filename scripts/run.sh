#!/usr/bin/env bash
# make run: nginx in the foreground with conf/maestro.conf (or CONF=...),
# state in var/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
conf=$root/${CONF:-conf/maestro.conf}

if grep -q '^ *maestro_auth *on' "$conf" && [ -z "${MAESTRO_ADMIN_KEY:-}" ] \
   && ! grep -q '^ *maestro_admin_key' "$conf"; then
    echo "run: $conf needs an admin credential, e.g." >&2
    echo "  MAESTRO_ADMIN_KEY=\$(openssl rand -hex 32) make run CONF=$CONF" >&2
    exit 1
fi

mkdir -p var/logs var/tmp

/usr/sbin/nginx -p "$root/var/" -c "$conf" -t -q
echo "Maestro on http://127.0.0.1:8080/ (Ctrl-C stops it)"
exec /usr/sbin/nginx -p "$root/var/" -c "$conf"

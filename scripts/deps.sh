#!/usr/bin/env bash
# Installs what Maestro needs to build, run and test on Debian 12, and nothing
# that is already there. Idempotent: a second run does no network I/O.
set -euo pipefail

pkgs=(build-essential nginx-core nginx-dev liblmdb-dev lmdb-utils
      libjansson-dev libcurl4-openssl-dev libpcre2-dev libssl-dev zlib1g-dev
      libwslay-dev libutf8proc-dev
      libcmocka-dev valgrind curl rsync openssl ca-certificates nodejs npm
      chromium fonts-nanum)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' \
        || missing+=("$p")
done

# nodejs from the machine image may come from outside apt: accept any node >= 18
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    major=$(node -p 'process.versions.node.split(".")[0]')
    if [ "$major" -ge 18 ]; then
        missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
    fi
fi
read -r -a missing <<< "${missing[*]:-}"

if [ "${#missing[@]}" -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's nginx package starts a system nginx on :80; we never need it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q nginx 2>/dev/null; then
    systemctl stop nginx || true
fi

#!/usr/bin/env bash
# make bench: orchestration overhead (vs LangGraph.js) and GET /healthz
# (vs nginx return 200). Prints a table and writes bench/results/latest.txt.
# Bounded: the whole run is killed after BENCH_TIMEOUT seconds (default 600).
# Env: BENCH_QUICK=1 (small sizes), BENCH_N, BENCH_N_SYNC, BENCH_N_LAT,
# BENCH_N_SSE, BENCH_CONC, BENCH_N_LG, BENCH_WRK_DURATION, BENCH_WRK_RUNS,
# BENCH_KEEP=1 (keep the nginx prefixes), NGINX, BUILD, MAESTRO_PEERS.

set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PEERS_SRC=${MAESTRO_PEERS:-/work/shared/peers}
export BUILD

for f in "$BUILD/ngx_http_maestro_module.so" "$BUILD/fixtures/noop.so"; do
    [ -f "$f" ] || { echo "bench: $f is missing (run make first)" >&2; exit 1; }
done

if ! command -v wrk >/dev/null; then
    echo "bench: installing wrk" >&2
    apt-get install -y wrk >/dev/null 2>&1 \
        || { apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null; }
fi
command -v node >/dev/null || { echo "bench: node is required" >&2; exit 1; }

# the load client
mkdir -p "$BUILD/bench"
if [ ! -x "$BUILD/bench/wfload" ] || [ bench/wfload.c -nt "$BUILD/bench/wfload" ]
then
    ${CC:-cc} -O2 -g -std=gnu11 -D_GNU_SOURCE -Wall -Wextra \
        -Wno-unused-parameter -Werror -o "$BUILD/bench/wfload" bench/wfload.c \
        -lpthread
fi

# LangGraph.js peer: a writable copy, npm install only once
if [ ! -d "$BUILD/peers/node_modules/@langchain/langgraph" ]; then
    if [ -d "$PEERS_SRC" ]; then
        echo "bench: npm install in $BUILD/peers (once)" >&2
        mkdir -p "$BUILD/peers"
        cp "$PEERS_SRC"/* "$BUILD/peers/"
        chmod -R u+w "$BUILD/peers"
        (cd "$BUILD/peers" && timeout 300 npm install --no-audit --no-fund \
            >/dev/null 2>&1) \
            || echo "bench: npm install failed; LangGraph.js is skipped" >&2
    else
        echo "bench: $PEERS_SRC not found; LangGraph.js is skipped" >&2
    fi
fi

exec timeout --kill-after=10 "${BENCH_TIMEOUT:-600}" node bench/bench.mjs

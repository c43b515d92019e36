#!/usr/bin/env bash
# make bench: orchestration overhead (vs LangGraph.js) and GET /healthz
# (vs nginx return 200), the LLM gateway (vs proxy_pass and Portkey), then
# SSE / WebSocket fan-out (vs nchan). Prints the tables and writes
# bench/results/latest.txt.
# Bounded: bench.mjs is killed after BENCH_TIMEOUT seconds (default 600),
# gateway.mjs after BENCH_GATEWAY_TIMEOUT (300), fanout.mjs after
# BENCH_FANOUT_TIMEOUT (default 420).
# Env: BENCH_ONLY=orchestration|gateway|fanout (one of them), BENCH_QUICK=1 (small
# sizes), BENCH_N, BENCH_N_SYNC, BENCH_N_LAT, BENCH_N_SSE, BENCH_CONC,
# BENCH_N_LG, BENCH_WRK_DURATION, BENCH_WRK_RUNS, BENCH_FANOUT_* (see
# bench/README.md), BENCH_KEEP=1 (keep the nginx prefixes), NGINX, BUILD.
# The npm peers (LangGraph.js, the Portkey gateway) are bench/package.json
# and its lock, installed with npm ci into $BUILD/peers beside the helper
# scripts of bench/peers/.

set -euo pipefail

# no IBM telemetry from Carbon's postinstall scripts (see Makefile)
export IBM_TELEMETRY_DISABLED=true IBM_TELEMETRY_EXPORT_DISABLED=true

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PEERS=$BUILD/peers
export BUILD

ONLY=${BENCH_ONLY:-}
case "$ONLY" in
    ""|orchestration|gateway|fanout) ;;
    *) echo "bench: BENCH_ONLY=$ONLY: use orchestration, gateway or fanout" >&2
       exit 1 ;;
esac

for f in "$BUILD/ngx_http_maestro_module.so" "$BUILD/fixtures/noop.so" \
         "$BUILD/fixtures/sleep.so" "$BUILD/fixtures/fail.so"; do
    [ -f "$f" ] || { echo "bench: $f is missing (run make first)" >&2; exit 1; }
done
command -v node >/dev/null || { echo "bench: node is required" >&2; exit 1; }
mkdir -p "$BUILD/bench"

# fan-out: the nchan peer, the C load client, file descriptors for 10k
# subscribers (the hard limit if 65536 is refused)
if [ "$ONLY" != orchestration ]; then
    if [ ! -f /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
        echo "bench: installing libnginx-mod-nchan" >&2
        apt-get install -y libnginx-mod-nchan >/dev/null 2>&1 \
            || { apt-get update >/dev/null 2>&1 \
                 && apt-get install -y libnginx-mod-nchan >/dev/null; } \
            || echo "bench: nchan could not be installed; it is skipped" >&2
    fi
    if [ ! -x "$BUILD/bench/fanload" ] \
       || [ bench/fanload.c -nt "$BUILD/bench/fanload" ]
    then
        ${CC:-cc} -O2 -g -std=gnu11 -D_GNU_SOURCE -Wall -Wextra \
            -Wno-unused-parameter -Werror -o "$BUILD/bench/fanload" \
            bench/fanload.c
    fi
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi

run_fanout() {
    timeout --kill-after=10 "${BENCH_FANOUT_TIMEOUT:-420}" \
        node bench/fanout.mjs
}

if [ "$ONLY" = fanout ]; then
    run_fanout
    exit $?
fi

if ! command -v wrk >/dev/null; then
    echo "bench: installing wrk" >&2
    apt-get install -y wrk >/dev/null 2>&1 \
        || { apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null; }
fi

# the load client
if [ ! -x "$BUILD/bench/wfload" ] || [ bench/wfload.c -nt "$BUILD/bench/wfload" ]
then
    ${CC:-cc} -O2 -g -std=gnu11 -D_GNU_SOURCE -Wall -Wextra \
        -Wno-unused-parameter -Werror -o "$BUILD/bench/wfload" bench/wfload.c \
        -lpthread
fi

# the runner alone: the core compiled in, optimised, no sanitizers
CORE_DIRS="ngx_maestro_module/core ngx_maestro_module/core/store
    ngx_maestro_module/core/flow ngx_maestro_module/core/llm
    ngx_maestro_module/core/text ngx_maestro_module/core/access"
CORE_SRC=$(for d in $CORE_DIRS; do ls $d/*.c; done)
CORE_INC=$(for d in $CORE_DIRS; do printf -- '-I%s ' $d; done)
if [ ! -x "$BUILD/bench/corebench" ] \
   || [ -n "$(find bench/corebench.c ngx_maestro_module/core \
              -newer "$BUILD/bench/corebench" -print -quit)" ]
then
    ${CC:-cc} -O2 -g -std=gnu11 -D_GNU_SOURCE -Wall -Wextra \
        -Wno-unused-parameter -Werror $CORE_INC \
        -Iplugins/include -o "$BUILD/bench/corebench" bench/corebench.c \
        $CORE_SRC -llmdb -ljansson -lcurl -lpcre2-8 -lutf8proc -lz -ldl \
        -lcrypto -lpthread -lm -rdynamic
fi

# the npm peers: npm ci once, and again when the lock changes; bench.mjs
# and gateway.mjs run them from $PEERS
mkdir -p "$PEERS"
if [ ! -f "$PEERS/node_modules/.installed" ] \
   || [ bench/package-lock.json -nt "$PEERS/node_modules/.installed" ]
then
    echo "bench: npm ci in $PEERS (LangGraph.js, Portkey)" >&2
    cp bench/package.json bench/package-lock.json "$PEERS/"
    if (cd "$PEERS" && timeout 300 npm ci --no-audit --no-fund \
            > npm.log 2>&1)
    then
        touch "$PEERS/node_modules/.installed"
    else
        echo "bench: npm ci failed (see $PEERS/npm.log); LangGraph.js and" \
             "Portkey are skipped" >&2
    fi
fi
cp bench/peers/* "$PEERS/"

rc=0
if [ -z "$ONLY" ] || [ "$ONLY" = orchestration ]; then
    timeout --kill-after=10 "${BENCH_TIMEOUT:-600}" node bench/bench.mjs \
        || rc=$?
fi
if [ -z "$ONLY" ] || [ "$ONLY" = gateway ]; then
    timeout --kill-after=10 "${BENCH_GATEWAY_TIMEOUT:-300}" \
        node bench/gateway.mjs || rc=$?
fi
if [ -z "$ONLY" ]; then
    run_fanout || rc=$?
fi
exit $rc

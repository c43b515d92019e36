#!/usr/bin/env bash
#
# Copyright (C) Maestro authors
#
# The test runner `make test` calls after building: the source checks
# (scripts/check-style.sh: README sections, tabs, 80 columns, file sizes;
# one test each), the C unit tests (build/tests/test_*, cmocka, TAP
# output) and the integration tests (tests/integration/*.test.mjs,
# node:test, TAP output). All output goes to the terminal and to
# build/test.log; the last line is "N passed, N failed" and the exit
# status is non-zero when anything failed.
#
# Environment: MST_BUILD (default build), NODE (default node),
# MST_SKIP_UNIT=1 / MST_SKIP_INTEGRATION=1 to run one half,
# MST_TEST_FILES="tests/integration/api.test.mjs ..." to pick files (the
# source checks and the web UI are then left out), MST_SKIP_CHECKS=1 to
# leave out the source checks, MST_SKIP_UI=1 to leave out the web UI's
# Vitest and e2e runs, MST_TEST_SEAL=1 to run every integration test with
# the store sealed (maestro_store_encryption_key; the unit tests that
# open a store always run a second time sealed).

set -u
set -o pipefail

# no IBM telemetry from Carbon's postinstall scripts (see Makefile)
export IBM_TELEMETRY_DISABLED=true IBM_TELEMETRY_EXPORT_DISABLED=true

cd "$(dirname "$0")/.." || exit 2

BUILD=${MST_BUILD:-build}
NODE=${NODE:-node}
LOG=$BUILD/test.log

mkdir -p "$BUILD"
: > "$LOG"

passed=0
failed=0

# every process the run starts carries this (the leftover check below)
MST_TEST_RUN="mst-$$-$(date +%s%N)"
export MST_TEST_RUN
ROOT=$PWD
ABS_BUILD=$(cd "$BUILD" && pwd)

log() {
    printf '%s\n' "$*" | tee -a "$LOG"
}


# --- node dependencies ------------------------------------------------------

ensure_node_modules() {
    local need=0

    if [ ! -d tests/node_modules ]; then
        need=1
    elif [ tests/package.json -nt tests/node_modules ]; then
        need=1
    elif [ -f tests/package-lock.json ] \
         && [ tests/package-lock.json -nt tests/node_modules ]; then
        need=1
    fi

    [ "$need" = 1 ] || return 0

    log "# installing tests/node_modules"
    (
        cd tests || exit 1
        if [ -f package-lock.json ]; then
            npm ci --no-audit --no-fund || npm install --no-audit --no-fund
        else
            npm install --no-audit --no-fund
        fi
    ) 2>&1 | tee -a "$LOG"
    local rc=${PIPESTATUS[0]}

    if [ "$rc" -ne 0 ]; then
        log "# npm install failed ($rc)"
        return 1
    fi
    touch tests/node_modules
}


# --- TAP of one program: count its ok / not ok lines -------------------------

# run_tap NAME COMMAND...: runs it, logs its output and counts its tests; a
# non-zero exit without a "not ok" (a crash, a leak, a failure outside a
# test) counts as one failure
run_tap() {
    local name=$1 out rc ok nok

    shift
    out=$("$@" 2>&1)
    rc=$?
    printf '%s\n' "$out" | tee -a "$LOG"

    ok=$(printf '%s\n' "$out" | grep -cE '^ok [0-9]+')
    nok=$(printf '%s\n' "$out" | grep -cE '^not ok [0-9]+')

    passed=$((passed + ok))
    failed=$((failed + nok))

    if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
        log "not ok - $name exited with status $rc"
        failed=$((failed + 1))
    fi
}


# --- source checks ----------------------------------------------------------

run_checks() {
    log "# checks: scripts/check-style.sh"
    run_tap scripts/check-style.sh scripts/check-style.sh
}


# --- unit tests -------------------------------------------------------------

run_unit() {
    local bin

    shopt -s nullglob
    local bins=("$BUILD"/tests/test_*)
    shopt -u nullglob

    if [ "${#bins[@]}" -eq 0 ]; then
        log "# no unit test binaries in $BUILD/tests"
        return
    fi

    for bin in "${bins[@]}"; do
        [ -x "$bin" ] && [ -f "$bin" ] || continue

        log "# unit: $bin"
        CMOCKA_MESSAGE_OUTPUT=TAP MST_BUILD=$BUILD run_tap "$bin" "$bin"
    done

    # the tests that open a store, again with every value sealed
    # (MST_TEST_CRYPT, tests/unit/mst_test.h)
    for bin in "${bins[@]}"; do
        case "${bin##*/}" in
            test_store_crypt) continue ;;
            test_store*|test_feed|test_run*|test_host|test_erase) ;;
            *) continue ;;
        esac

        log "# unit (sealed store): $bin"
        CMOCKA_MESSAGE_OUTPUT=TAP MST_BUILD=$BUILD MST_TEST_CRYPT=1 \
            run_tap "$bin (sealed)" "$bin"
    done
}


# --- integration tests ------------------------------------------------------

tap_count() {
    # the last "# NAME N" summary line of the TAP output in $1
    grep -E "^# $2 [0-9]+\$" "$1" | tail -1 | awk '{ print $3 }'
}

run_integration() {
    local out rc p f c nok files

    if ! ensure_node_modules; then
        failed=$((failed + 1))
        return
    fi

    if [ -n "${MST_TEST_FILES:-}" ]; then
        # shellcheck disable=SC2206
        files=($MST_TEST_FILES)
    else
        files=(tests/integration/)
    fi

    log "# integration: ${files[*]}"
    out=$(mktemp)

    MST_BUILD=$BUILD "$NODE" --test --test-reporter=tap \
        --test-concurrency=1 "${files[@]}" 2>&1 | tee -a "$LOG" | tee "$out"
    rc=${PIPESTATUS[0]}

    p=$(tap_count "$out" pass)
    f=$(tap_count "$out" fail)
    c=$(tap_count "$out" cancelled)
    # suites whose hooks failed (after: assertCleanLog) are "not ok" at the
    # top level without counting in "# fail"
    nok=$(grep -cE '^not ok [0-9]+' "$out")

    p=${p:-0}
    f=${f:-0}
    c=${c:-0}

    passed=$((passed + p))
    failed=$((failed + f + c))

    if [ "$rc" -ne 0 ] && [ $((f + c)) -eq 0 ]; then
        # a hook failed, a file crashed or did not load
        if [ "$nok" -gt 0 ]; then
            failed=$((failed + nok))
        else
            failed=$((failed + 1))
        fi
        log "not ok - node --test exited with status $rc"
    fi

    rm -f "$out"
}


# --- the web UI: Vitest, then end-to-end in headless Chromium ----------------

run_ui_unit() {
    local out rc p f

    [ -d html/node_modules ] || { log "# no html/node_modules: make ui"; \
                                  failed=$((failed + 1)); return; }

    log "# ui: vitest"
    out=$(mktemp)
    (cd html && npx vitest run --reporter=default 2>&1) | tee -a "$LOG" \
        | tee "$out"
    rc=${PIPESTATUS[0]}

    # "Tests  2 failed | 37 passed (39)" or "Tests  39 passed (39)"
    p=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -E '^ *Tests ' | tail -1 \
        | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
    f=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -E '^ *Tests ' | tail -1 \
        | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')

    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))

    if [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
        log "not ok - vitest exited with status $rc"
        failed=$((failed + 1))
    fi

    rm -f "$out"
}


# --- processes left running -------------------------------------------------

# "pid@start-time" of every process now
proc_snapshot() {
    ps -e -o pid=,lstart= | awk '{ print $1 "@" $2 $3 $4 $5 $6 }'
}

# whether pid is the run's: it carries MST_TEST_RUN (every child does), or
# it is an nginx working in the tree or the build (nginx overwrites its
# environment with its process title, so only its cwd is left to tell)
proc_ours() {
    local pid=$1 cwd

    { grep -qazxF "MST_TEST_RUN=$MST_TEST_RUN" "/proc/$pid/environ"; } \
        2>/dev/null && return 0

    { grep -qa '^nginx: ' "/proc/$pid/cmdline"; } 2>/dev/null || return 1

    cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) || return 1
    case "$cwd/" in
        "$ROOT"/*|"$ABS_BUILD"/*) return 0 ;;
    esac
    return 1
}

# whether pid is this script or runs under it (the check's own commands)
proc_mine() {
    local pid=$1 stat rest

    while [ "$pid" -gt 1 ]; do
        [ "$pid" = "$$" ] && return 0
        { read -r stat < "/proc/$pid/stat"; } 2>/dev/null || return 1
        rest=${stat##*) }           # after "pid (comm) "
        rest=${rest#* }             # after the state
        pid=${rest%% *}
    done
    return 1
}

# pids of the run's processes started after PROC_BEFORE was taken
proc_leftovers() {
    local entry pid
    local -A before=()

    while read -r entry; do
        before[$entry]=1
    done < "$PROC_BEFORE"

    while read -r entry; do
        [ -n "${before[$entry]:-}" ] && continue
        pid=${entry%@*}
        proc_mine "$pid" && continue
        proc_ours "$pid" && echo "$pid"
    done < <(proc_snapshot)
}

# every test stops what it starts: a process of the run still there a few
# seconds after the last test (an nginx, a fake server, a browser, a
# telemetry collector of an npm install) is a failure, then killed
check_leftovers() {
    local left pid i

    for i in $(seq 1 20); do
        left=$(proc_leftovers)
        [ -z "$left" ] && break
        sleep 0.5
    done

    if [ -z "$left" ]; then
        log "ok - no process of the run is left running"
        passed=$((passed + 1))
        return
    fi

    for pid in $left; do
        log "not ok - left running: $pid $(tr '\0' ' ' \
            < "/proc/$pid/cmdline" 2>/dev/null)"
        failed=$((failed + 1))
    done
    # shellcheck disable=SC2086
    kill -9 $left 2>/dev/null
}

PROC_BEFORE=$(mktemp)
proc_snapshot > "$PROC_BEFORE"

if [ "${MST_SKIP_CHECKS:-0}" != 1 ] && [ -z "${MST_TEST_FILES:-}" ]; then
    run_checks
fi
[ "${MST_SKIP_UNIT:-0}" = 1 ] || run_unit
[ "${MST_SKIP_INTEGRATION:-0}" = 1 ] || run_integration

if [ "${MST_SKIP_UI:-0}" != 1 ] && [ -z "${MST_TEST_FILES:-}" ]; then
    run_ui_unit
    MST_TEST_FILES=tests/e2e/ run_integration
fi

check_leftovers
rm -f "$PROC_BEFORE"

log "$passed passed, $failed failed"

[ "$failed" -eq 0 ]

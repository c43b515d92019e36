#!/usr/bin/env bash
#
# Copyright (C) Maestro authors
#
# Source checks that `make test` runs (scripts/test.sh counts each as one
# test): every maestro_* directive has its README.md section, and the
# module keeps nginx's style: no tab, no line over 80 columns, no file
# over 1,500 lines (nor elsewhere in what the project writes by hand). TAP output, one "ok" / "not ok" per check, each
# offending place on a "# FILE:LINE: ..." line; the exit status is the
# number of failed checks.

set -u

cd "$(dirname "$0")/.." || exit 2

export LC_ALL=C.UTF-8           # grep -P counts characters, not bytes

MAX_COLS=80
MAX_LINES=1500
SHOW=50                         # offending places printed per check

n=0
failed=0

# report "description" "offending places, one per line"
report() {
    local what=$1 found=$2 count

    n=$((n + 1))

    if [ -z "$found" ]; then
        echo "ok $n - $what"
        return
    fi

    failed=$((failed + 1))
    count=$(printf '%s\n' "$found" | wc -l)
    echo "not ok $n - $what"
    printf '%s\n' "$found" | head -n "$SHOW" | sed 's/^/# /'
    if [ "$count" -gt "$SHOW" ]; then
        echo "# ... and $((count - SHOW)) more"
    fi
}

mapfile -t SOURCES < <(find ngx_maestro_module -name '*.[ch]' | sort)
mapfile -t ALL_SOURCES < <(find ngx_maestro_module plugins -name '*.[ch]' \
                           | sort)
# everything else written by hand: tests, benchmarks, scripts, the web UI
mapfile -t OTHER_SOURCES < <(find tests bench scripts html/src html/sw \
    \( -name node_modules -o -name dist -o -name out \) -prune -o -type f \
    \( -name '*.[ch]' -o -name '*.mjs' -o -name '*.js' -o -name '*.cjs' \
       -o -name '*.ts' -o -name '*.tsx' -o -name '*.css' -o -name '*.sh' \
       -o -name '*.lua' \) -print 2>/dev/null | sort)


# --- every directive has its README.md section ("### maestro_NAME") -------

# command table entries: "    { ngx_string("maestro_NAME"),"
directives() {
    grep -nE '^[[:space:]]*\{[[:space:]]*ngx_string\("maestro_[a-z0-9_]+"\)' \
        "${SOURCES[@]}" \
        | sed -E 's/^([^:]+:[0-9]+):.*ngx_string\("([a-z0-9_]+)"\).*/\2 \1/'
}

undocumented() {
    directives | while read -r name where; do
        grep -qxE "### $name" README.md \
            || echo "$where: $name has no \"### $name\" section in README.md"
    done
}

# and the other way: a section for a directive that no longer exists
stale_sections() {
    grep -nE '^### maestro_[a-z0-9_]+$' README.md | while IFS=: read -r l h
    do
        directives | grep -q "^${h#\#\#\# } " \
            || echo "README.md:$l: \"$h\" names no directive of the module"
    done
}

report 'README.md has a section for every maestro_* directive' \
    "$(undocumented)"
report 'every maestro_* section of README.md names a directive' \
    "$(stale_sections)"


# --- nginx style in ngx_maestro_module/ ---------------------------------

tabs() {
    grep -nP '\t' "${SOURCES[@]}" | cut -d: -f1,2 | sed 's/$/: a tab/'
}

long_lines() {
    grep -nP "^.{$((MAX_COLS + 1)),}" "${SOURCES[@]}" \
        | while IFS=: read -r file line text; do
            echo "$file:$line: ${#text} columns"
        done
}

long_files() {
    local f lines

    for f in "$@"; do
        lines=$(wc -l < "$f")
        [ "$lines" -le "$MAX_LINES" ] || echo "$f:$lines: $lines lines"
    done
}

report 'no tab in ngx_maestro_module/' "$(tabs)"
report "no line over $MAX_COLS columns in ngx_maestro_module/" "$(long_lines)"
report "no file over $MAX_LINES lines in ngx_maestro_module/, plugins/" \
    "$(long_files "${ALL_SOURCES[@]}")"
report "no file over $MAX_LINES lines in tests/, bench/, scripts/, html/" \
    "$(long_files "${OTHER_SOURCES[@]}")"

exit "$failed"

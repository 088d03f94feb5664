#!/usr/bin/env bash
# The suite (`swift test -c release`, arguments passed on) with a time limit: MI_TEST_TIMEOUT
# seconds (default 2700). Output is line-buffered, so a log cut off by a kill still ends where the
# suite was; past the limit the suite is stopped and the tests that started and never ended are
# named, then the exit status is 124.
set -uo pipefail
limit="${MI_TEST_TIMEOUT:-2700}"
log=$(mktemp "${TMPDIR:-/tmp}/mi-test-XXXXXX.log")
trap 'rm -f "$log"' EXIT
stdbuf -oL -eL timeout -k 30 "$limit" swift test -c release "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" = 124 ] || [ "$status" = 137 ]; then
    echo "test-suite: stopped after ${limit} s (MI_TEST_TIMEOUT); tests started and not ended:" >&2
    # Swift Testing's "◇ Test NAME started." against its "✔/✘ Test NAME passed/failed/skipped".
    sed -n -E 's/^◇ Test (.*) started\.$/\1/p' "$log" | grep -v -e '^case passing' -e '^run$' | sort -u >"$log.started"
    sed -n -E 's/^(✔|✘|➜) Test (.*) (passed|failed|skipped)( after .*)?\.?$/\2/p' "$log" |
        sed -E 's/ with [0-9]+ test cases?$//' | sort -u >"$log.ended"
    comm -23 "$log.started" "$log.ended" | sed 's/^/  /' >&2
    rm -f "$log.started" "$log.ended"
    exit 124
fi
exit "$status"

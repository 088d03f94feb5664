#!/usr/bin/env bash
# The checks `make test` runs before the suite: swift format's lint with the checked-in
# .swift-format, and no function, initializer or subscript in Sources longer than 90 lines
# (counted from its declaration to its closing brace, comments and blank lines included).
set -euo pipefail
cd "$(dirname "$0")/.."
swift format lint --strict --recursive Sources Tests Package.swift
limit=${MI_FUNCTION_LINES:-90}
find Sources -name '*.swift' -print0 | sort -z | xargs -0 awk -v limit="$limit" '
    FNR == 1 { depth = 0; n = 0 }
    {
        line = $0
        gsub(/"([^"\\]|\\.)*"/, "\"\"", line)   # braces inside string literals do not count
        sub(/\/\/.*/, "", line)
        # A declaration opens a function unless one is open already (nested ones count toward it).
        if (n == 0 && line ~ /(^|[^A-Za-z0-9_])(func|init|subscript)[ (<?!]/ && line !~ /^[ \t]*(protocol|\/\/\/)/) {
            n = 1; start = FNR; name = $0; base = depth; opened = 0
        }
        opens = gsub(/\{/, "{", line); closes = gsub(/\}/, "}", line)
        depth += opens - closes
        if (n) {
            if (opens) opened = 1
            if (opened && depth <= base) {
                if (FNR - start + 1 > limit) {
                    sub(/^[ \t]+/, "", name)
                    printf "%s:%d: %d lines (limit %d): %s\n", FILENAME, start, FNR - start + 1, limit, name
                    bad = 1
                }
                n = 0
            } else if (!opened && FNR - start > 12) {
                n = 0   # a requirement or a declaration without a body
            }
        }
    }
    END { exit bad }'

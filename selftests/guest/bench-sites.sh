#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# How many RESULT lines a `bench tail-call` run must have printed: one per
# site of its table that is not "n/a". A site may be n/a only where the
# bench cannot build it: tree above 8 entries (the largest compare tree),
# header at other than 8 (its tree is compiled for 8 slots). The table
# lists at least var, poison, const and tree (the benchmark's patch);
# c-var, c-const and header come with the tree header's patch.
# Used by selftests/guest/selftests.sh (guest) and scripts/bench-host.sh.
#
# Usage: bench-sites.sh FILE ENTRIES   prints the count; exit 1 otherwise
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: bench-sites.sh FILE ENTRIES" >&2; exit 2; }
f=$1 entries=$2
sites=0 na=0
while read -r site rest; do
	sites=$((sites + 1))
	case "$rest" in
	n/a*)
		na=$((na + 1))
		case "$site" in
		tree) [ "$entries" -gt 8 ] || { echo "bench-sites: tree n/a at $entries entries" >&2; exit 1; } ;;
		header) [ "$entries" -ne 8 ] || { echo "bench-sites: header n/a at 8 entries" >&2; exit 1; } ;;
		*) echo "bench-sites: $site n/a" >&2; exit 1 ;;
		esac ;;
	esac
done < <(grep -E '^[a-z-]+ +(n/a|[0-9.-]+ ns/tail call)' "$f" || true)
[ "$sites" -ge 4 ] || { echo "bench-sites: $sites sites in $f, want at least var, poison, const, tree" >&2; exit 1; }
echo $((sites - na))

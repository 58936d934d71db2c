#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# What the series must not add (v2 review): no sysctl or other new ABI for
# measurement, no export for lib/test_bpf (which the series leaves alone),
# no encoding of the verifier's knowledge in a tail call's imm, and no new
# function that emits a tail-call sequence (each JIT's existing emitter is
# taught the known-array case). Prints one line per rule and the JIT
# patches' diffstats.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

tree=$("$TOP/scripts/fetch-base.sh")
mapfile -t patches < <(sed -n -e '/^[^#]/s|^|'"$TOP"'/patches/|p' "$TOP/patches/series")
[ "${#patches[@]}" -gt 0 ] || die "patches/series is empty"
added() { cat "${patches[@]}" | grep -E '^\+[^+]' || true; }
pass=0 fail=0
rule() {
	local what=$1 hits=$2
	if [ -z "$hits" ]; then
		log "shape: $what: none"
		pass=$((pass + 1))
	else
		printf '%s\n' "$hits" | head -5 >&2
		log "shape: $what: FOUND"
		fail=$((fail + 1))
	fi
}
rule "new sysctl" "$(added | grep -E 'register_sysctl|ctl_table' || true)"
rule "new export" "$(added | grep -E 'EXPORT_SYMBOL' || true)"
rule "change to lib/test_bpf.c" "$(grep -l '^diff --git a/lib/test_bpf.c' "${patches[@]}" || true)"
rule "tail call imm set by the verifier" \
	"$(cat "${patches[@]}" | awk '/^diff --git/ { f = $3 } /^\+/ && f ~ /kernel\/bpf\/(fixups|verifier)\.c/' |
		grep -E 'imm *=' || true)"
# A function whose name says it emits a tail call, defined by the series
# but not in the base tree, is a second emitter.
new_emitters=""
while read -r name; do
	[ -n "$name" ] || continue
	grep -rqs --include='*.c' -E "^[a-z].*[ *]$name\(" "$tree/arch" ||
		new_emitters+="$name "
done < <(added | sed -n -E 's/^\+[a-z_ ]+[ *](emit_[a-z0-9_]*tail_call[a-z0-9_]*)\(.*/\1/p' | sort -u)
rule "new tail-call emitter" "$new_emitters"
for p in "${patches[@]}"; do
	case "$(basename "$p")" in
	*x86*|*arm64*) log "diffstat of $(basename "$p"):"
		sed -n '/^---$/,/^$/p' "$p" | sed '1d;$d' >&2 ;;
	esac
done
echo "series shape: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

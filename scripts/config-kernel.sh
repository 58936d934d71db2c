#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Configure the kernel: tinyconfig + Kconfig.fragment, then check that every
# option of the fragment is in the final .config (Kconfig silently drops
# options whose dependencies fail; that is an error here).
# Usage: config-kernel.sh TREE BUILD_DIR [EXTRA_FRAGMENT...]
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

tree=$1 b=$2
shift 2
mkdir -p "$b"
frag=$(mktemp)
trap 'rm -f "$frag" "$b/.config.prev"' EXIT
base_frag=${TCC_FRAGMENT:-$TOP/Kconfig.fragment}
# Keep the common lines, this ARCH's section and, with the series, the
# series section (see the head of Kconfig.fragment).
awk -v arch="$ARCH" -v series="${SERIES:-series}" '
	/^# --- [a-z0-9_]+ ---$/ { sec = $3; next }
	sec == "" || sec == arch || (sec == "series" && series != "none")
' "$base_frag" >"$frag"
# A prefix of the series may come before the patch that adds a series
# option (check-bisect.sh): leave out the series section's options that the
# tree's Kconfig does not define, saying so.
if [ "${SERIES:-series}" != none ]; then
	while read -r opt; do
		grep -rqs --include='Kconfig*' -x "config ${opt#CONFIG_}" "$tree/kernel" "$tree/arch/$ARCH" "$tree/init" || {
			log "config: $opt is not defined in this tree (a prefix of the series before it): left out"
			grep -v -E "^$opt=" "$frag" >"$frag.base" || true
			mv "$frag.base" "$frag"
		}
	done < <(awk '/^# --- [a-z0-9_]+ ---$/ { sec = $3; next }
		sec == "series" && /^CONFIG_/ { sub(/=.*/, ""); print }' "$base_frag")
fi
# An extra fragment (a FLAVOR) overrides the lines of the base fragment for
# the options it sets (e.g. nocache: CONFIG_BPF_TAILCALL_CACHE=n).
if [ $# -gt 0 ]; then
	over=$(cat "$@" | sed -n -E 's/^(CONFIG_[A-Z0-9_]+)=.*/\1/p')
	if [ -n "$over" ]; then
		grep -v -E "^($(paste -sd'|' <<<"$over"))=" "$frag" >"$frag.base" || true
		mv "$frag.base" "$frag"
	fi
fi
for f in "$@"; do cat "$f" >>"$frag"; done

mk=(make -s -C "$tree" O="$b" ARCH="$ARCH" ${MAKE_LLVM:+LLVM=$MAKE_LLVM})
"${mk[@]}" rustavailable >/dev/null 2>&1 || {
	"${mk[@]}" rustavailable || true
	die "Rust is not available for this tree (see above); run scripts/deps.sh"
}

[ -f "$b/.config" ] && cp -p "$b/.config" "$b/.config.prev"
"${mk[@]}" tinyconfig >/dev/null || die "make tinyconfig failed"
"$tree/scripts/kconfig/merge_config.sh" -m -O "$b" "$b/.config" "$frag" >/dev/null ||
	die "merge_config.sh failed"
"${mk[@]}" olddefconfig >/dev/null || die "make olddefconfig failed"

bad=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=n) opt=${line%%=*}
		if grep -q "^$opt=[ym]" "$b/.config"; then
			log "config: $line wanted, got $(grep "^$opt=" "$b/.config")"
			bad=1
		fi ;;
	CONFIG_*=*)
		grep -qx "$line" "$b/.config" || {
			opt=${line%%=*}
			log "config: $line was dropped (now: $(grep -E "^(# )?${opt}[= ]" "$b/.config" || echo unset))"
			bad=1
		} ;;
	esac
done <"$frag"
[ "$bad" -eq 0 ] || die "Kconfig dropped options of the fragment (unmet dependencies); see above"

# Keep the old timestamp when nothing changed, so make does not resync.
if [ -f "$b/.config.prev" ] && cmp -s "$b/.config" "$b/.config.prev"; then
	touch -r "$b/.config.prev" "$b/.config"
fi
log "config verified: $(grep -c '^CONFIG_.*=[ym]' "$b/.config") options set, all $(grep -c '^CONFIG_' "$frag") of the fragment present"

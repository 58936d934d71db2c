#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the kernel after each patch of the series (bisectability) and the
# whole series with CONFIG_BPF_TAILCALL_CACHE=n, in the shared build
# directory. Slow (a vmlinux link with BTF per step): not part of make test.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

mapfile -t all < <(grep -v -e '^#' -e '^$' "$TOP/patches/series")
series=$(mktemp) frag=$(mktemp)
trap 'rm -f "$series" "$frag"' EXIT
results=()

# try_build LABEL [VAR=VALUE...]: build with the given environment, record it.
try_build() {
	local label=$1
	shift
	log "bisect: building $label"
	if env "$@" "$TOP/scripts/build-kernel.sh" >/dev/null; then
		results+=("$label: builds")
	else
		results+=("$label: BUILD FAILED")
	fi
}

for n in $(seq 1 "${#all[@]}"); do
	printf '%s\n' "${all[@]:0:n}" >"$series"
	try_build "patch $n (${all[n-1]})" TCC_SERIES_FILE="$series"
done
sed 's/^CONFIG_BPF_TAILCALL_CACHE=y$/CONFIG_BPF_TAILCALL_CACHE=n/' "$TOP/Kconfig.fragment" >"$frag"
try_build "whole series, CONFIG_BPF_TAILCALL_CACHE=n" TCC_FRAGMENT="$frag"
printf '%s\n' "${results[@]}"
! printf '%s\n' "${results[@]}" | grep -q FAILED

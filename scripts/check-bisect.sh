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
for n in $(seq 1 "${#all[@]}"); do
	printf '%s\n' "${all[@]:0:n}" >"$series"
	log "bisect: building with patches 1-$n"
	if TCC_SERIES_FILE=$series "$TOP/scripts/build-kernel.sh" >/dev/null; then
		results+=("patch $n (${all[n-1]}): builds")
	else
		results+=("patch $n (${all[n-1]}): BUILD FAILED")
	fi
done
sed 's/^CONFIG_BPF_TAILCALL_CACHE=y$/CONFIG_BPF_TAILCALL_CACHE=n/' "$TOP/Kconfig.fragment" >"$frag"
log "bisect: building the series with CONFIG_BPF_TAILCALL_CACHE=n"
if TCC_FRAGMENT=$frag "$TOP/scripts/build-kernel.sh" >/dev/null; then
	results+=("whole series, CONFIG_BPF_TAILCALL_CACHE=n: builds")
else
	results+=("whole series, CONFIG_BPF_TAILCALL_CACHE=n: BUILD FAILED")
fi
printf '%s\n' "${results[@]}"
! printf '%s\n' "${results[@]}" | grep -q FAILED

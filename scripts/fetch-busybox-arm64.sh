#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Fetch Debian bookworm's static busybox for arm64 (the arm64 guest's
# initramfs) with a private apt state, so the host's apt configuration and
# architectures stay as they are. Cached by version; prints the binary's path.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

dir=$CACHE/busybox-arm64
if [ -x "$dir/busybox" ] && [ -f "$dir/version" ]; then
	printf '%s\n' "$dir/busybox"
	exit 0
fi
apt=$CACHE/apt-arm64
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$dir"
printf 'deb http://deb.debian.org/debian bookworm main\n' >"$apt/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$apt/sources.list"
	  -o Dir::Etc::SourceParts=/dev/null
	  -o "Dir::State::Lists=$apt/lists"
	  -o "Dir::Cache=$apt/cache"
	  -o APT::Architecture=arm64 -o APT::Architectures=arm64
	  -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
log "downloading busybox-static for arm64 (Debian bookworm, about 1 MB)"
apt-get "${apt_opts[@]}" update -qq || die "apt-get update of bookworm (arm64) failed"
tmp=$(mktemp -d "$CACHE/busybox.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get "${apt_opts[@]}" download -qq busybox-static:arm64) ||
	die "apt-get download busybox-static:arm64 failed"
deb=$(find "$tmp" -maxdepth 1 -name 'busybox-static_*_arm64.deb' | head -1)
[ -n "$deb" ] || die "no busybox-static arm64 .deb was downloaded"
dpkg -x "$deb" "$tmp/x" || die "dpkg -x $deb failed"
[ -f "$tmp/x/bin/busybox" ] || die "$deb has no bin/busybox"
file -b "$tmp/x/bin/busybox" 2>/dev/null | grep -q 'ARM aarch64' ||
	die "$deb: bin/busybox is not an aarch64 binary"
install -m 0755 "$tmp/x/bin/busybox" "$dir/busybox"
printf '%s sha256 %s\n' "$(basename "$deb")" "$(sha256sum "$deb" | cut -d' ' -f1)" >"$dir/version"
log "busybox: $(cat "$dir/version")"
printf '%s\n' "$dir/busybox"

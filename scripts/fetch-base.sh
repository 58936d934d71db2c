#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Fetch the pinned base tree (Debian's linux-source-7.3, 7.3.4) with a private
# apt state, so the system's apt sources never see trixie; verify its sha256;
# unpack it once into the cache. Prints the path of the unpacked tree.
# With KDIR=, checks that KDIR is a kernel tree and prints it instead.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

if [ -n "${KDIR:-}" ]; then
	[ -d "$KDIR" ] || die "KDIR=$KDIR: no such directory"
	for f in Makefile Kconfig kernel/bpf/arraymap.c arch/x86/net/bpf_jit_comp.c; do
		[ -f "$KDIR/$f" ] || die "KDIR=$KDIR is not a kernel tree (no $f)"
	done
	realpath "$KDIR"
	exit 0
fi

src=$CACHE/src/linux-$BASE_VERSION
if [ -f "$src/.unpacked" ]; then
	printf '%s\n' "$src"
	exit 0
fi

mkdir -p "$CACHE/src" "$CACHE/deb" "$CACHE/apt/lists/partial" "$CACHE/apt/cache/archives/partial"
deb=$CACHE/deb/$BASE_DEB
if [ ! -f "$deb" ]; then
	printf 'deb %s\n' "$BASE_SUITE" >"$CACHE/apt/sources.list"
	apt_opts=(-o "Dir::Etc::SourceList=$CACHE/apt/sources.list"
		  -o Dir::Etc::SourceParts=/dev/null
		  -o "Dir::State::Lists=$CACHE/apt/lists"
		  -o "Dir::Cache=$CACHE/apt/cache"
		  -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
	log "downloading linux-source-7.3=$BASE_DEB_VERSION (167 MB) with a private apt state"
	apt-get "${apt_opts[@]}" update -qq || die "apt-get update of trixie-backports failed"
	if ! (cd "$CACHE/deb" && apt-get "${apt_opts[@]}" download -qq \
		"linux-source-7.3=$BASE_DEB_VERSION"); then
		avail=$(apt-cache "${apt_opts[@]}" policy linux-source-7.3 2>/dev/null |
			sed -n 's/^ *Candidate: //p')
		die "linux-source-7.3 $BASE_DEB_VERSION is no longer in the archive (candidate now: ${avail:-none}). Debian keeps only the newest 7.3.y: update BASE_DEB_VERSION and BASE_SHA256 in scripts/lib.sh after checking the series still applies, or pass your own tree with KDIR="
	fi
fi
sum=$(sha256sum "$deb" | cut -d' ' -f1)
if [ "$sum" != "$BASE_SHA256" ]; then
	mv -f "$deb" "$deb.bad"
	die "sha256 mismatch for $BASE_DEB: got $sum, want $BASE_SHA256 (moved to $deb.bad)"
fi
log "sha256 of $BASE_DEB verified"

tmp=$(mktemp -d "$CACHE/unpack.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "unpacking the base tree (about 30 s)"
dpkg -x "$deb" "$tmp/deb" || die "dpkg -x $deb failed"
tar -C "$tmp" -xf "$tmp/deb/usr/src/linux-source-7.3.tar.xz" || die "untar failed"
[ -f "$tmp/linux-source-7.3/Makefile" ] || die "unexpected layout in $BASE_DEB"
rm -rf "$src"
mv "$tmp/linux-source-7.3" "$src"
touch "$src/.unpacked"
printf '%s\n' "$src"

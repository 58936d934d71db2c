#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The JIT-configuration tier (make test-jitcfg): build the series with
# retpolines, return thunks, IBT and kCFI/FineIBT compiled in
# (FLAVOR=jitcfg, selftests/config/jitcfg.config, clang), then boot it once
# per indirect-branch form and run test_bpf (all suites with the JIT) and
# selftests/tailcall_cache in each (its images: static-map sites cached,
# poisoned sites and programs loaded with bpf_jit_harden=2 legacy). Per form
# it checks that the guest really ran in that form (the boot log's Spectre
# v2 and CFI lines) and, in the JITed images, that every tail-call sequence
# ends in that form's jump, that the landing pad at X86_TAIL_CALL_OFFSET is
# endbr64 and that bpf_func starts as the CFI mode lays it out
# (scripts/jit-loads.py --jump/--endbr).
#
# IBT and FineIBT are checked for layout and behaviour only: TCG has no
# CET, so endbr64 is a NOP here and no landing pad is enforced; under KVM
# on a CET host the same run enforces them. cfi=fineibt is honoured without
# CET (alternative.c patches the FineIBT preambles whenever it is asked to).
#
# Knobs: JITCFG_FORMS="reg retpoline lfence" (default "reg retpoline"),
# JITCFG_NO_BUILD=1 boots the last jitcfg build.
#
# lfence is not in the default: this kernel (7.3.4, clang, CFI compiled in)
# does not boot with spectre_v2=retpoline,lfence, with cfi=kcfi or cfi=off:
# apply_retpolines() warns at alternative.c:736 (emit_indirect: the
# retpoline call site is too short for lfence + jmp) and the guest dies,
# long before any BPF code runs.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

export FLAVOR=jitcfg
OUT_TOP=${OUT:-$TOP/out}/jitcfg
read -r -a forms <<<"${JITCFG_FORMS:-reg retpoline}"

# form -> kernel arguments, expected jump form, boot-log lines that prove it
form_args() {
	case "$1" in
	reg) echo "spectre_v2=off cfi=kcfi" ;;
	retpoline) echo "spectre_v2=retpoline,generic cfi=fineibt" ;;
	lfence) echo "spectre_v2=retpoline,lfence cfi=kcfi" ;;
	*) die "unknown JITCFG_FORMS entry '$1' (reg, retpoline, lfence)" ;;
	esac
}
form_jump() { case "$1" in retpoline) echo thunk ;; *) echo "$1" ;; esac; }
form_entry() { case "$1" in retpoline) echo poison ;; *) echo endbr64 ;; esac; }
form_log() {
	case "$1" in
	reg) echo 'CFI: Using .*kCFI' ;;
	retpoline) echo 'Spectre V2 : Mitigation: Retpolines|Using .*FineIBT' ;;
	lfence) echo 'Spectre V2 : Vulnerable: LFENCE|CFI: Using .*kCFI' ;;
	esac
}
for f in "${forms[@]}"; do form_args "$f" >/dev/null; done

t_start=$(date +%s)
if [ "${JITCFG_NO_BUILD:-0}" != 1 ]; then
	t0=$(date +%s)
	"$TOP/scripts/build-kernel.sh" >/dev/null
	log "jitcfg kernel ready in $(( $(date +%s) - t0 ))s"
fi
b=$(build_dir)
[ -f "$b/.config" ] || die "no jitcfg build in $b (drop JITCFG_NO_BUILD)"
for o in MITIGATION_RETPOLINE MITIGATION_RETHUNK X86_KERNEL_IBT CFI FINEIBT BPF_TAILCALL_CACHE; do
	grep -qx "CONFIG_$o=y" "$b/.config" || die "the jitcfg kernel in $b lacks CONFIG_$o"
done

rm -rf "$OUT_TOP"
mkdir -p "$OUT_TOP"
summary=$OUT_TOP/summary.txt
: >"$summary"
failed=0
for f in "${forms[@]}"; do
	out=$OUT_TOP/$f
	mkdir -p "$out"
	log "form $f: booting with '$(form_args "$f")'"
	rc=0
	OUT=$out VM_APPEND=$(form_args "$f") TEST_BPF_PASSES=jit \
		"$TOP/scripts/run-test-bpf.sh" >"$out/run.log" 2>&1 || rc=$?
	res=$out/test_bpf-${SERIES:-series}
	problems=()
	[ "$rc" -eq 0 ] || problems+=("test_bpf/tailcall_cache run failed (exit $rc): $out/run.log")
	if [ -f "$res/dmesg.txt" ]; then
		IFS='|' read -r -a want <<<"$(form_log "$f")"
		for w in "${want[@]}"; do
			grep -Eq "$w" "$res/dmesg.txt" ||
				problems+=("the boot log has no '$w': the guest did not run in form $f")
		done
		"$TOP/scripts/jit-loads.py" --jump "$(form_jump "$f")" \
			--endbr "$(form_entry "$f")" "$res" \
			>"$out/jit-form.txt" 2>&1 || problems+=("JITed images: $(tail -n 3 "$out/jit-form.txt" | tr '\n' ' ')")
	else
		problems+=("no kernel log from the guest")
	fi
	tb=$(grep -Eo 'test_bpf total: [0-9]+ passed, [0-9]+ failed' "$out/run.log" | tail -n 1 || true)
	tc=$(grep -Eo '^tailcall_cache: [0-9]+ passed, [0-9]+ failed' "$out/run.log" | tail -n 1 || true)
	if [ "${#problems[@]}" -eq 0 ]; then
		echo "jitcfg $f: passed (${tb:-test_bpf: ?}; ${tc:-tailcall_cache: ?}; $(tail -n 1 "$out/jit-form.txt"))" | tee -a "$summary"
	else
		failed=$((failed + 1))
		echo "jitcfg $f: FAILED" | tee -a "$summary"
		printf '  %s\n' "${problems[@]}" | tee -a "$summary" >&2
	fi
done
log "jitcfg tier: $(( $(date +%s) - t_start ))s; summary: $summary"
echo "jitcfg: $(( ${#forms[@]} - failed )) passed, $failed failed"
[ "$failed" -eq 0 ] || die "jitcfg tier failed"

// SPDX-License-Identifier: GPL-2.0

//! Compare trees for variable-key tail calls: the kernel side.
//!
//! [`tailcall_tree_core`], shared verbatim with the host tests of the
//! series, plans the tree. This file writes it as BPF instructions for
//! `do_misc_fixups()` (`include/linux/bpf_tailcall_cache.h`), which patches
//! it over the tail call and gives each leaf its poke descriptor.

use kernel::bindings;
use kernel::error::code::EINVAL;
use kernel::ffi::c_int;
use kernel::prelude::*;

pub mod tailcall_tree_core;

use tailcall_tree_core::{tree_len, tree_plan, Op};

/// `BPF_JMP32 | BPF_JGE | BPF_K` on `R3`, or `BPF_JMP | BPF_JA`.
fn jump(code: u32, imm: u32, off: i16) -> Option<bindings::bpf_insn> {
    let dst = if code == bindings::BPF_JMP | bindings::BPF_JA {
        0
    } else {
        u8::try_from(bindings::BPF_REG_3).ok()?
    };
    Some(bindings::bpf_insn {
        code: u8::try_from(code).ok()?,
        _bitfield_1: bindings::bpf_insn::new_bitfield_1(dst, 0),
        off,
        imm: i32::try_from(imm).ok()?,
    })
}

/// The instruction of `op`; a leaf is `tail_call` (the site's
/// `BPF_JMP | BPF_TAIL_CALL`) with the 1-based poke descriptor index
/// `poke_base + key + 1` as its immediate.
fn insn(op: Op, tail_call: &bindings::bpf_insn, poke_base: u32) -> Option<bindings::bpf_insn> {
    match op {
        Op::Jge { imm, off } => jump(
            bindings::BPF_JMP32 | bindings::BPF_JGE | bindings::BPF_K,
            imm,
            off,
        ),
        Op::Ja { off } => jump(bindings::BPF_JMP | bindings::BPF_JA, 0, off),
        Op::TailCall { key } => {
            let index = poke_base.checked_add(key)?.checked_add(1)?;
            Some(bindings::bpf_insn {
                imm: i32::try_from(index).ok()?,
                ..*tail_call
            })
        }
    }
}

/// Writes into `buf` (room for `cnt` instructions) the compare tree that
/// replaces `*tail_call`, a tail call with a variable key into a prog
/// array of `max_entries`; leaf `key` takes poke descriptor
/// `poke_base + key`, and the leaves come in key order. Returns the tree's
/// length, 0 when such an array gets no tree, `-EINVAL` when `buf` is too
/// small or an index does not fit (`buf` is then partly written).
///
/// # Safety
///
/// `tail_call` is valid for reads; `buf` is valid for writes of `cnt`
/// instructions and does not overlap `tail_call`.
#[export]
pub unsafe extern "C" fn bpf_tailcall_tree_emit(
    max_entries: u32,
    tail_call: *const bindings::bpf_insn,
    poke_base: u32,
    buf: *mut bindings::bpf_insn,
    cnt: u32,
) -> c_int {
    let Some(len) = tree_len(max_entries) else {
        return 0;
    };
    if len > cnt {
        return EINVAL.to_errno();
    }
    // SAFETY: The caller guarantees `tail_call` is valid for reads.
    let tail_call = unsafe { *tail_call };
    let mut pos = 0u32;
    let mut bad = false;
    tree_plan(max_entries, &mut |op| {
        match insn(op, &tail_call, poke_base) {
            // The plan has `len <= cnt` instructions.
            Some(i) if pos < len => {
                // SAFETY: `pos < len <= cnt`: inside `buf`, which the
                // caller guarantees is valid for `cnt` writes.
                unsafe { buf.add(pos as usize).write(i) };
                pos = pos.wrapping_add(1);
            }
            _ => bad = true,
        }
    });
    if bad || pos != len {
        return EINVAL.to_errno();
    }
    c_int::try_from(len).unwrap_or(EINVAL.to_errno())
}

#[kunit_tests(bpf_tailcall_tree)]
mod tests {
    use super::*;
    use tailcall_tree_core::{TREE_MAX_ENTRIES, TREE_MAX_INSNS};

    /// The site as `do_misc_fixups()` hands it over.
    fn tail_call() -> bindings::bpf_insn {
        bindings::bpf_insn {
            code: 0xf5, // BPF_JMP | BPF_TAIL_CALL
            _bitfield_1: bindings::bpf_insn::new_bitfield_1(0, 0),
            off: 0,
            imm: 0,
        }
    }

    fn emit(n: u32, base: u32, buf: &mut [bindings::bpf_insn]) -> c_int {
        let t = tail_call();
        // SAFETY: `t` and `buf` are valid for the call and do not overlap.
        unsafe { bpf_tailcall_tree_emit(n, &t, base, buf.as_mut_ptr(), buf.len() as u32) }
    }

    /// Every size up to K: the length, one leaf per key in key order with
    /// its descriptor index, and the bound check first.
    #[test]
    fn tree_emit() {
        let mut buf = [tail_call(); TREE_MAX_INSNS as usize];
        for n in 1..=TREE_MAX_ENTRIES {
            assert_eq!(emit(n, 10, &mut buf), (3 * n - 1) as c_int);
            let leaves: KVec<i32> = {
                let mut v = KVec::new();
                for i in &buf[..(3 * n - 1) as usize] {
                    if i.code == 0xf5 {
                        v.push(i.imm, GFP_KERNEL).unwrap();
                    }
                }
                v
            };
            assert_eq!(leaves.len(), n as usize);
            for (key, imm) in leaves.iter().enumerate() {
                assert_eq!(*imm, 10 + key as i32 + 1);
            }
            assert_eq!(buf[0].code, 0x36); // BPF_JMP32 | BPF_JGE | BPF_K
            assert_eq!(buf[0].dst_reg(), 3);
            assert_eq!(buf[0].imm, n as i32);
            assert_eq!(buf[0].off, (3 * n - 2) as i16);
        }
    }

    /// No tree for 0 and above K; a buffer too small or a descriptor
    /// index past `i32` is an error, not a truncated tree.
    #[test]
    fn no_tree() {
        let mut buf = [tail_call(); TREE_MAX_INSNS as usize];
        assert_eq!(emit(0, 0, &mut buf), 0);
        assert_eq!(emit(TREE_MAX_ENTRIES + 1, 0, &mut buf), 0);
        assert_eq!(emit(u32::MAX, 0, &mut buf), 0);
        assert_eq!(emit(TREE_MAX_ENTRIES, 0, &mut buf[..4]), EINVAL.to_errno());
        // A descriptor index past i32.
        assert_eq!(emit(2, u32::MAX - 1, &mut buf), EINVAL.to_errno());
    }
}

// SPDX-License-Identifier: GPL-2.0

//! Compare trees for variable-key tail calls into small prog arrays.
//!
//! Where indirect jumps are thunks (retpolines, ITS), the thunk is most of
//! the cost of a tail call. A constant-key tail call has none: the JIT
//! emits a direct jump, which `prog_array_map_poke_run()` patches whenever
//! the slot changes. For a tail call whose prog array the verifier knows,
//! whose key is not constant and whose `max_entries` is at most
//! [`TREE_MAX_ENTRIES`], the verifier replaces the call with the plan
//! below: a bound check, a balanced tree of compares on the key, and one
//! constant-key tail call per slot.
//!
//! ```text
//!          if w3 >= n goto out          the u32 bound check
//!          if w3 >= m goto R            m = lo + ceil((hi - lo) / 2)
//!          ...                          left: keys [lo, m)
//!          tail_call key lo; goto out   a leaf: on an empty slot the
//!          ...                          tail call falls through
//!     R:   ...                          right: keys [m, hi)
//!          tail_call key n - 1          the last leaf falls through
//!     out:                              the instruction after the site
//! ```
//!
//! Every compare is `BPF_JMP32 | BPF_JGE | BPF_K` on `w3`: the tail call's
//! index is a `u32` (the interpreter and every JIT use the low 32 bits of
//! `R3`), so a register with the upper 32 bits set selects the same slot or
//! falls through as it does today. `R1`..`R3` are not written: a leaf's
//! `R3` still holds the key, which is the leaf's, so the interpreter runs
//! the rewritten program as it ran the original.
//!
//! A plan of `n` entries has `3n - 1` instructions; a key below `n`
//! reaches its leaf after at most `1 + ceil(log2 n)` conditional jumps (at
//! least `1 + floor(log2 n)`), and any other key reaches `out` after one,
//! the bound check.
//!
//! This file is shared verbatim between the host test crate (`rust/src/`)
//! and the kernel (`kernel/bpf/`). It has no dependencies, no `unsafe`, no
//! allocation and no panicking path.

#![forbid(unsafe_code)]

/// Largest `max_entries` the verifier rewrites (`K`).
///
/// Chosen from image size and update cost, not from the tail call alone:
/// a site of `n` entries JITs to `n` direct tail calls (on x86-64 about 30
/// bytes each) and takes `n` of the program's 1024 poke descriptors; every
/// slot change text-pokes one jump per site, and a delete waits one RCU
/// grace period per site. At 8, a site is under 400 bytes of x86-64 code,
/// a program keeps room for 128 sites, and a key that is random over the
/// 8 slots still costs less than the thunk it replaces (see the cover
/// letter of the series for the measurements).
pub const TREE_MAX_ENTRIES: u32 = 8;

/// Instructions of the largest plan (`3 * TREE_MAX_ENTRIES - 1`).
pub const TREE_MAX_INSNS: u32 = 3 * TREE_MAX_ENTRIES - 1;

/// One instruction of a plan. Offsets are BPF's: relative to the next
/// instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `if w3 >= imm goto pc + off` (`BPF_JMP32 | BPF_JGE | BPF_K`).
    Jge {
        /// The compared immediate.
        imm: u32,
        /// The jump offset when taken.
        off: i16,
    },
    /// A tail call into slot `key` of the site's prog array, with a poke
    /// descriptor of its own (`BPF_JMP | BPF_TAIL_CALL`, constant key).
    TailCall {
        /// The slot.
        key: u32,
    },
    /// `goto pc + off` (`BPF_JMP | BPF_JA`), after a leaf: to `out`.
    Ja {
        /// The jump offset.
        off: i16,
    },
}

/// The number of instructions of the plan for `max_entries`, `None` when
/// the array gets no tree (0, or above [`TREE_MAX_ENTRIES`]).
#[must_use]
pub fn tree_len(max_entries: u32) -> Option<u32> {
    if max_entries == 0 || max_entries > TREE_MAX_ENTRIES {
        return None;
    }
    // max_entries <= TREE_MAX_ENTRIES: no overflow.
    Some(max_entries.wrapping_mul(3).wrapping_sub(1))
}

/// Instructions of a subtree of `leaves` leaves that are all followed by
/// `goto out` (`leaves - 1` compares, `leaves` tail calls and jumps).
fn subtree_len(leaves: u32) -> u32 {
    leaves.wrapping_mul(3).wrapping_sub(1)
}

/// Emits the plan for `max_entries`, in program order, through `emit`;
/// returns its length, `None` (and emits nothing) when the array gets no
/// tree. The leaves come in key order: the `i`-th tail call is key `i`.
pub fn tree_plan(max_entries: u32, emit: &mut impl FnMut(Op)) -> Option<u32> {
    let total = tree_len(max_entries)?;
    let mut pos = 0u32;
    // `out` is at `total`; the bound check is at 0.
    emit(Op::Jge {
        imm: max_entries,
        off: offset_to(0, total),
    });
    pos = pos.wrapping_add(1);
    subtree(0, max_entries, true, total, &mut pos, emit);
    Some(total)
}

/// The offset of a jump at `from` to `to` (both within a plan, so far
/// below `i16::MAX`).
fn offset_to(from: u32, to: u32) -> i16 {
    i16::try_from(to.wrapping_sub(from).wrapping_sub(1)).unwrap_or(i16::MAX)
}

/// Emits the subtree of keys `[lo, hi)`, `hi > lo`, at `*pos`; `last`: it
/// ends the plan, so its last leaf falls through to `out`.
fn subtree(lo: u32, hi: u32, last: bool, total: u32, pos: &mut u32, emit: &mut impl FnMut(Op)) {
    let leaves = hi.wrapping_sub(lo);
    if leaves <= 1 {
        emit(Op::TailCall { key: lo });
        *pos = pos.wrapping_add(1);
        if !last {
            emit(Op::Ja {
                off: offset_to(*pos, total),
            });
            *pos = pos.wrapping_add(1);
        }
        return;
    }
    let left = leaves.wrapping_add(1) / 2;
    let mid = lo.wrapping_add(left);
    emit(Op::Jge {
        imm: mid,
        off: i16::try_from(subtree_len(left)).unwrap_or(i16::MAX),
    });
    *pos = pos.wrapping_add(1);
    subtree(lo, mid, false, total, pos, emit);
    subtree(mid, hi, last, total, pos, emit);
}

/// Most conditional jumps on the way from the site to a leaf:
/// `1 + ceil(log2 max_entries)`, the bound check included.
#[must_use]
pub fn tree_depth(max_entries: u32) -> Option<u32> {
    tree_len(max_entries)?;
    let levels = max_entries
        .checked_next_power_of_two()
        .map_or(0, u32::trailing_zeros);
    Some(levels.wrapping_add(1))
}

// SPDX-License-Identifier: GPL-2.0

//! A host-side interpreter of [`tailcall_tree_core`] plans, with BPF's
//! semantics, for the property tests and the benchmark's generator.

use crate::tailcall_tree_core::{tree_plan, Op};
use alloc::vec::Vec;

/// The plan for `max_entries` as a vector, `None` when there is no tree.
#[must_use]
pub fn plan(max_entries: u32) -> Option<Vec<Op>> {
    let mut ops = Vec::new();
    let len = tree_plan(max_entries, &mut |op| ops.push(op))?;
    (usize::try_from(len).ok() == Some(ops.len())).then_some(ops)
}

/// Where a walk ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The tail call of slot `key`, at instruction `pc`.
    Leaf {
        /// Its key.
        key: u32,
        /// Its index in the plan.
        pc: usize,
    },
    /// `out`: the instruction after the site.
    Out,
}

/// A walk: where it ended and how many conditional jumps it executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    /// Where it ended.
    pub end: End,
    /// Conditional jumps executed (taken or not).
    pub compares: u32,
}

/// Runs `ops` from `pc` with `R3 = r3` until a tail call or `out`.
/// A tail call ends the walk; `resume_after_leaf` continues after it, as
/// when its slot is empty. Returns `None` on a jump outside the plan, a
/// backward jump or a walk longer than the plan (a malformed plan).
#[must_use]
pub fn walk_from(ops: &[Op], mut pc: usize, r3: u64, resume_after_leaf: bool) -> Option<Walk> {
    let w3 = r3 as u32; // BPF_JMP32 compares the low 32 bits
    let mut compares = 0;
    let mut skip_leaf = resume_after_leaf;
    for _ in 0..=ops.len() {
        if pc == ops.len() {
            return Some(Walk {
                end: End::Out,
                compares,
            });
        }
        match *ops.get(pc)? {
            Op::Jge { imm, off } => {
                compares += 1;
                let off = usize::try_from(off).ok()?;
                pc += 1 + if w3 >= imm { off } else { 0 };
            }
            Op::TailCall { key } => {
                if !skip_leaf {
                    return Some(Walk {
                        end: End::Leaf { key, pc },
                        compares,
                    });
                }
                skip_leaf = false;
                pc += 1;
            }
            Op::Ja { off } => pc += 1 + usize::try_from(off).ok()?,
        }
        if pc > ops.len() {
            return None;
        }
    }
    None
}

/// Runs the whole plan with `R3 = r3`.
#[must_use]
pub fn walk(ops: &[Op], r3: u64) -> Option<Walk> {
    walk_from(ops, 0, r3, false)
}

// SPDX-License-Identifier: GPL-2.0

//! Prints `bpf_tail_call_tree.h`: for BPF programs written in C, the
//! compare trees of the verifier's rewrite ([`tailcall_tree_core`]) as
//! nested `if`s on the key whose leaves are `bpf_tail_call_static()`, one
//! inline function per `max_entries` from 1 to `TREE_MAX_ENTRIES`, and a
//! macro that picks the function for a constant `max_entries`. Every leaf
//! is a constant-key tail call, which the x86-64 JIT emits as a direct,
//! poked jump on any kernel that has them: the dispatch without an
//! indirect jump (or a retpoline thunk) that a program can use today.
//!
//!     cargo run --quiet --bin bpf_tail_call_tree > bpf_tail_call_tree.h
//!
//! `scripts/check-tree-header.sh` checks the copy the series carries
//! (`tools/testing/selftests/bpf/bpf_tail_call_tree.h`).
//!
//! [`tailcall_tree_core`]: bpf_tailcall_cache::tailcall_tree_core

use bpf_tailcall_cache::tailcall_tree_core::{Op, TREE_MAX_ENTRIES};
use bpf_tailcall_cache::tree_walk::{plan, walk, End};
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

const HEAD: &str = "\
/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Generated from kernel/bpf/tailcall_tree_core.rs by bpf_tail_call_tree
 * (rust/src/bin/bpf_tail_call_tree.rs, bpf-tailcall-cache): do not edit.
 *
 * bpf_tail_call_tree(ctx, map, key, max_entries) does what
 * bpf_tail_call(ctx, map, key) does for a prog array of max_entries <=
 * BPF_TAIL_CALL_TREE_MAX slots, without a variable-key tail call: a
 * balanced tree of compares on key, one bpf_tail_call_static() of a
 * constant slot at each leaf. The verifier sees a constant key at every
 * leaf, so the x86-64 JIT emits each as a direct jump that the prog array
 * pokes when the slot changes, instead of the indirect jump (a retpoline
 * thunk where Spectre v2 is mitigated with retpolines) of bpf_tail_call();
 * but not where the JIT blinds the program's constants (bpf_jit_harden),
 * which keeps every tail call indirect.
 * Like bpf_tail_call(), it returns only when key >= max_entries or the
 * slot is empty, or the tail-call limit is reached. max_entries must be
 * a compile-time constant and equal the map's: a key past it returns,
 * slots past it are never reached.
 *
 * What it costs: up to ceil(log2(max_entries)) + 1 compares per call, one
 * poke descriptor (of 1024 per program) per leaf, and a text poke per leaf
 * on every update of a slot it reaches (the JIT pokes the direct jumps of
 * the slot's leaves; a delete waits for a grace period first).
 *
 * The trees are the ones the series' verifier rewrite writes in place of
 * a variable-key tail call into such an array where indirect jumps are
 * costly: a program written with this header gets them on any kernel.
 */
#ifndef __BPF_TAIL_CALL_TREE_H
#define __BPF_TAIL_CALL_TREE_H

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

";

const MACRO: &str = "\
/*
 * max_entries: a literal from 1 to BPF_TAIL_CALL_TREE_MAX, or a macro that
 * expands to one (anything else does not compile).
 */
#define bpf_tail_call_tree(ctx, map, key, max_entries)\t\t\t\\
\t___bpf_tail_call_tree(ctx, map, key, max_entries)
#define ___bpf_tail_call_tree(ctx, map, key, n)\t\t\t\t\\
\tbpf_tail_call_tree_##n(ctx, map, key)

";

/// A node of the tree the plan encodes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    /// `if (key < imm) lo else hi`.
    Below {
        imm: u32,
        lo: Box<Node>,
        hi: Box<Node>,
    },
    /// `bpf_tail_call_static(ctx, map, key)`.
    Leaf(u32),
    /// Nothing: fall through to the end of the site.
    Out,
}

/// The tree of `ops[a..b]`, where `b` is where the range's jumps to the end
/// land; `None` if the range is not a tree of the plan's shape.
fn tree(ops: &[Op], a: usize, b: usize) -> Option<Node> {
    if a >= b {
        return (a == b).then_some(Node::Out);
    }
    match *ops.get(a)? {
        Op::Jge { imm, off } => {
            let t = a.checked_add(1)?.checked_add(usize::try_from(off).ok()?)?;
            if t > b {
                return None;
            }
            // Not taken: a + 1 up to the taken target, which ends in a jump
            // to b (or is the last leaf before it).
            let lo = tree(ops, a + 1, t)?;
            let hi = tree(ops, t, b)?;
            Some(Node::Below {
                imm,
                lo: Box::new(lo),
                hi: Box::new(hi),
            })
        }
        Op::TailCall { key } => {
            // The leaf, then its jump to the end of the plan (none for the
            // last one).
            match ops.get(a + 1..b)? {
                [] => Some(Node::Leaf(key)),
                [Op::Ja { off }] if usize::try_from(*off).ok()? == ops.len() - a - 2 => {
                    Some(Node::Leaf(key))
                }
                _ => None,
            }
        }
        Op::Ja { .. } => None,
    }
}

/// The key a tree dispatches `key` to, or `None` for the end of the site.
fn dispatch(node: &Node, key: u32) -> Option<u32> {
    match node {
        Node::Below { imm, lo, hi } => dispatch(if key < *imm { lo } else { hi }, key),
        Node::Leaf(k) => Some(*k),
        Node::Out => None,
    }
}

fn indent(c: &mut String, depth: usize) {
    for _ in 0..depth {
        c.push('\t');
    }
}

/// Appends the C of `node`, at `depth` tabs, in kernel style: an arm that
/// is one tail call has no braces unless the other arm needs them.
fn emit(c: &mut String, node: &Node, depth: usize) -> Option<()> {
    match node {
        Node::Below { imm, lo, hi } => {
            let simple = |n: &Node| !matches!(n, Node::Below { .. });
            let braces = !simple(lo) || !simple(hi);
            indent(c, depth);
            writeln!(c, "if (key < {imm}){}", if braces { " {" } else { "" }).ok()?;
            emit(c, lo, depth + 1)?;
            if **hi != Node::Out {
                indent(c, depth);
                c.push_str(if braces { "} else {\n" } else { "else\n" });
                emit(c, hi, depth + 1)?;
            }
            if braces {
                indent(c, depth);
                c.push_str("}\n");
            }
        }
        Node::Leaf(k) => {
            indent(c, depth);
            writeln!(c, "bpf_tail_call_static(ctx, map, {k});").ok()?;
        }
        Node::Out => {}
    }
    Some(())
}

/// The tree of the plan for `n` entries, checked against it: every key
/// from 0 to `n` + 1 (and `u32::MAX`) must reach the plan's leaf.
fn checked_tree(n: u32) -> Option<Node> {
    let ops = plan(n)?;
    let t = tree(&ops, 0, ops.len())?;
    for key in (0..=n.checked_add(1)?).chain([u32::MAX]) {
        let want = match walk(&ops, u64::from(key))?.end {
            End::Leaf { key, .. } => Some(key),
            End::Out => None,
        };
        if dispatch(&t, key) != want {
            return None;
        }
    }
    Some(t)
}

/// The header, `None` if a plan is missing or malformed.
fn header() -> Option<String> {
    let mut h = String::from(HEAD);
    writeln!(h, "#define BPF_TAIL_CALL_TREE_MAX\t{TREE_MAX_ENTRIES}\n").ok()?;
    for n in 1..=TREE_MAX_ENTRIES {
        let t = checked_tree(n)?;
        writeln!(
            h,
            "/* bpf_tail_call(ctx, map, key) for a prog array of {n} slot{} */",
            if n == 1 { "" } else { "s" }
        )
        .ok()?;
        writeln!(h, "static __always_inline void\nbpf_tail_call_tree_{n}(void *ctx, void *map, __u32 key)\n{{").ok()?;
        emit(&mut h, &t, 1)?;
        h.push_str("}\n\n");
    }
    h.push_str(MACRO);
    h.push_str("#endif /* __BPF_TAIL_CALL_TREE_H */\n");
    Some(h)
}

fn main() -> ExitCode {
    let Some(h) = header() else {
        eprintln!("bpf_tail_call_tree: a plan is missing or not a tree");
        return ExitCode::FAILURE;
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(h.as_bytes()).and_then(|()| out.flush()) {
        eprintln!("bpf_tail_call_tree: writing the header: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_is_a_tree_that_dispatches_as_the_plan() {
        for n in 1..=TREE_MAX_ENTRIES {
            let t = checked_tree(n).expect("plan is a tree");
            for key in 0..n {
                assert_eq!(dispatch(&t, key), Some(key), "n={n} key={key}");
            }
            assert_eq!(dispatch(&t, n), None);
            assert_eq!(dispatch(&t, u32::MAX), None);
        }
    }

    #[test]
    fn a_malformed_plan_is_refused() {
        let mut ops = plan(4).expect("plan");
        ops.swap(2, 3);
        assert_eq!(tree(&ops, 0, ops.len()), None);
        assert_eq!(tree(&[Op::Ja { off: 0 }], 0, 1), None);
    }

    #[test]
    fn header_has_one_function_per_size() {
        let h = header().expect("header");
        for n in 1..=TREE_MAX_ENTRIES {
            assert!(h.contains(&format!("bpf_tail_call_tree_{n}(void *ctx")));
            let calls = h
                .split(&format!("bpf_tail_call_tree_{n}(void *ctx"))
                .nth(1)
                .and_then(|s| s.split("\n}\n").next())
                .expect("body")
                .matches("bpf_tail_call_static(")
                .count();
            assert_eq!(calls, usize::try_from(n).expect("n"));
        }
        assert!(h.lines().all(|l| l.replace('\t', "        ").len() <= 80));
    }
}

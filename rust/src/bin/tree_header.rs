// SPDX-License-Identifier: GPL-2.0

//! Prints `bench_tail_call_tree.h`: the verifier's compare-tree plans
//! ([`tailcall_tree_core`]) for every `max_entries` from 1 to
//! `TREE_MAX_ENTRIES`, as C tables for the selftests' `bench tail-call`,
//! whose `tree` site is built from them, so that the benchmark times the
//! exact shape the verifier's rewrite produces.
//!
//!     cargo run --quiet --bin tree_header > bench_tail_call_tree.h
//!
//! `scripts/check-tree-header.sh` checks the copy the series carries.
//!
//! [`tailcall_tree_core`]: bpf_tailcall_cache::tailcall_tree_core

use bpf_tailcall_cache::tailcall_tree_core::{tree_len, Op, TREE_MAX_ENTRIES, TREE_MAX_INSNS};
use bpf_tailcall_cache::tree_walk::plan;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

/// Columns of a table line, its leading tab counted as 8: entries are
/// packed up to this width.
const COLUMNS: usize = 80;

const HEAD: &str = "\
/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Generated from kernel/bpf/tailcall_tree_core.rs by tree_header
 * (rust/src/bin/tree_header.rs, bpf-tailcall-cache): do not edit.
 *
 * The compare trees the verifier writes in place of a variable-key tail
 * call into a prog array of max_entries <= TC_TREE_MAX_ENTRIES: one plan
 * per max_entries, in program order. A plan of n entries has 3n - 1
 * instructions: the bound check, a balanced tree of compares on w3, and
 * one tail call per slot, in key order. Offsets are BPF's (from the next
 * instruction); \"out\", where every jump to the end goes, is the
 * instruction after the plan. R1 (ctx), R2 (the map) and R3 (the key) are
 * not written: at the leaf of slot k the compares leave R3 == k.
 */
#ifndef __BENCH_TAIL_CALL_TREE_H
#define __BENCH_TAIL_CALL_TREE_H

#include <linux/types.h>

";

const TYPES: &str = "\
enum tc_tree_kind {
\tTC_TREE_JGE,\t/* if w3 >= imm goto pc + off (BPF_JMP32, BPF_JGE) */
\tTC_TREE_CALL,\t/* bpf_tail_call() of slot imm, with R3 == imm */
\tTC_TREE_JA,\t/* goto pc + off (BPF_JMP, BPF_JA) */
};

struct tc_tree_op {
\t__u8 kind;\t\t/* enum tc_tree_kind */
\t__u32 imm;
\t__s16 off;
};

struct tc_tree_plan {
\tconst struct tc_tree_op *op;
\t__u32 len;
};

";

fn entry(op: Op) -> String {
    match op {
        Op::Jge { imm, off } => format!("{{ TC_TREE_JGE, {imm}, {off} }}"),
        Op::TailCall { key } => format!("{{ TC_TREE_CALL, {key}, 0 }}"),
        Op::Ja { off } => format!("{{ TC_TREE_JA, 0, {off} }}"),
    }
}

/// The header, `None` if a plan is missing or not of its stated length.
fn header() -> Option<String> {
    let mut h = String::from(HEAD);
    writeln!(h, "#define TC_TREE_MAX_ENTRIES\t{TREE_MAX_ENTRIES}").ok()?;
    writeln!(h, "#define TC_TREE_MAX_INSNS\t{TREE_MAX_INSNS}\n").ok()?;
    h.push_str(TYPES);
    let mut index = String::new();
    for n in 1..=TREE_MAX_ENTRIES {
        let ops = plan(n)?;
        let len = tree_len(n)?;
        if usize::try_from(len).ok()? != ops.len() || len > TREE_MAX_INSNS {
            return None;
        }
        writeln!(h, "static const struct tc_tree_op tc_tree_plan_{n}[] = {{").ok()?;
        let mut line = String::new();
        for &op in &ops {
            let item = entry(op);
            // "\t" + line + " " + item + ","
            if !line.is_empty() && 8 + line.len() + 1 + item.len() + 1 > COLUMNS {
                writeln!(h, "\t{line}").ok()?;
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&item);
            line.push(',');
        }
        writeln!(h, "\t{line}").ok()?;
        h.push_str("};\n\n");
        writeln!(index, "\t[{n}] = {{ tc_tree_plan_{n}, {len} }},").ok()?;
    }
    h.push_str("/* tc_tree_plans[n]: the plan for max_entries n (1..TC_TREE_MAX_ENTRIES) */\n");
    h.push_str("static const struct tc_tree_plan tc_tree_plans[TC_TREE_MAX_ENTRIES + 1] = {\n");
    h.push_str(&index);
    h.push_str("};\n\n#endif /* __BENCH_TAIL_CALL_TREE_H */\n");
    Some(h)
}

fn main() -> ExitCode {
    let Some(h) = header() else {
        eprintln!("tree_header: a plan is missing or malformed");
        return ExitCode::FAILURE;
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(h.as_bytes()).and_then(|()| out.flush()) {
        eprintln!("tree_header: writing the header: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

// SPDX-License-Identifier: GPL-2.0
//! The compare-tree plan: for every `max_entries` up to K and every key,
//! the walk reaches leaf `key` when `key < max_entries` (low 32 bits) and
//! falls through to `out` otherwise, with the stated depth; a leaf whose
//! slot is empty continues to `out`.

use bpf_tailcall_cache::tailcall_tree_core::{
    tree_depth, tree_len, tree_plan, Op, TREE_MAX_ENTRIES, TREE_MAX_INSNS,
};
use bpf_tailcall_cache::tree_walk::{plan, walk, walk_from, End};
use proptest::prelude::*;

fn check_key(n: u32, r3: u64) {
    let ops = plan(n).unwrap();
    let depth = tree_depth(n).unwrap();
    let w = walk(&ops, r3).unwrap_or_else(|| panic!("n={n} r3={r3:#x}: malformed walk"));
    let key = r3 as u32;
    if key < n {
        match w.end {
            End::Leaf { key: k, pc } => {
                assert_eq!(k, key, "n={n} r3={r3:#x}: wrong leaf");
                // 1 + ceil(log2 n) at most, 1 + floor(log2 n) at least.
                assert!(w.compares <= depth, "n={n} r3={r3:#x}: deeper than stated");
                assert!(w.compares > n.ilog2(), "n={n} r3={r3:#x}: too shallow");
                // An empty slot: the tail call falls through, to out.
                let after = walk_from(&ops, pc, r3, true).unwrap();
                assert_eq!(
                    after.end,
                    End::Out,
                    "n={n} key={key}: leaf does not go to out"
                );
                assert_eq!(after.compares, 0, "n={n} key={key}: compares after a leaf");
            }
            End::Out => panic!("n={n} r3={r3:#x}: in-range key fell through"),
        }
    } else {
        assert_eq!(
            w.end,
            End::Out,
            "n={n} r3={r3:#x}: out-of-range key reached a leaf"
        );
        assert_eq!(w.compares, 1, "n={n} r3={r3:#x}: only the bound check");
    }
}

#[test]
fn every_size_every_small_key() {
    for n in 1..=TREE_MAX_ENTRIES {
        for key in 0..=u64::from(n) + 4 {
            check_key(n, key);
            check_key(n, key | 0xffff_ffff_0000_0000);
            check_key(n, key | 1 << 32);
        }
        for key in [
            u64::from(u32::MAX),
            0x8000_0000,
            0x7fff_ffff,
            u64::MAX,
            1 << 32,
        ] {
            check_key(n, key);
        }
    }
}

#[test]
fn shape() {
    for n in 1..=TREE_MAX_ENTRIES {
        let ops = plan(n).unwrap();
        assert_eq!(ops.len() as u32, 3 * n - 1, "n={n}");
        assert_eq!(tree_len(n), Some(3 * n - 1));
        assert!(ops.len() as u32 <= TREE_MAX_INSNS);
        // The leaves come in key order, each key once.
        let keys: Vec<u32> = ops
            .iter()
            .filter_map(|op| match op {
                Op::TailCall { key } => Some(*key),
                _ => None,
            })
            .collect();
        assert_eq!(keys, (0..n).collect::<Vec<_>>(), "n={n}");
        // The bound check first, against max_entries, to out.
        assert_eq!(
            ops[0],
            Op::Jge {
                imm: n,
                off: (3 * n - 2) as i16
            }
        );
        // Only forward jumps, none past out.
        for (pc, op) in ops.iter().enumerate() {
            if let Op::Jge { off, .. } | Op::Ja { off } = op {
                assert!(
                    *off >= 0 && pc + 1 + *off as usize <= ops.len(),
                    "n={n} pc={pc}"
                );
            }
        }
        let depth = 1 + (32 - (n - 1).leading_zeros()).min(if n == 1 { 0 } else { 32 });
        assert_eq!(tree_depth(n), Some(depth), "n={n}");
    }
    // n = 1: the bound check and the tail call.
    assert_eq!(
        plan(1).unwrap(),
        vec![Op::Jge { imm: 1, off: 1 }, Op::TailCall { key: 0 }]
    );
}

#[test]
fn no_tree_outside_1_to_k() {
    for n in [0, TREE_MAX_ENTRIES + 1, 256, u32::MAX] {
        let mut emitted = 0;
        assert_eq!(tree_plan(n, &mut |_| emitted += 1), None, "n={n}");
        assert_eq!(emitted, 0);
        assert_eq!(tree_len(n), None);
        assert_eq!(tree_depth(n), None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]
    #[test]
    fn any_key(n in 1..=TREE_MAX_ENTRIES, r3 in any::<u64>()) {
        check_key(n, r3);
    }

    #[test]
    fn any_u32_key_near_bound(n in 1..=TREE_MAX_ENTRIES, d in 0u32..64, hi in any::<u32>()) {
        let key = n.wrapping_sub(32).wrapping_add(d);
        check_key(n, u64::from(hi) << 32 | u64::from(key));
    }
}

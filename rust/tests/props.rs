// SPDX-License-Identifier: GPL-2.0

//! Property tests: the layout arithmetic and its speculation bounds, the
//! JIT's disp32 choice, jump targets, and sequences of updates through the
//! real `update()` on the single-threaded recording prog array.

use bpf_tailcall_cache::recorder::{Call, Recorder};
use bpf_tailcall_cache::*;
use proptest::prelude::*;

/// Mix of small, power-of-two-adjacent and huge `max_entries` values.
fn max_entries() -> impl Strategy<Value = u32> {
    prop_oneof![
        0u32..=64,
        (0u32..32).prop_flat_map(|s| {
            let p = 1u32 << s;
            prop_oneof![Just(p), Just(p - 1), Just(p.saturating_add(1))]
        }),
        (MAX_ENTRIES - 2)..=(MAX_ENTRIES + 2),
        any::<u32>(),
    ]
}

/// `ptrs` offsets in `struct bpf_array`: realistic ones, small, any.
fn ptrs_offset() -> impl Strategy<Value = u32> {
    prop_oneof![Just(328u32), Just(352u32), 0u32..4096, any::<u32>()]
}

/// Indices: small, around the layout's edges (added by the tests), any.
fn indices() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(prop_oneof![0u32..64, any::<u32>()], 16)
}

fn next_pow2(m: u32) -> u64 {
    u64::from(m).next_power_of_two()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn new_ok_iff_in_range(max in max_entries()) {
        match Layout::new(max) {
            Ok(l) => {
                prop_assert!((1..=MAX_ENTRIES).contains(&max));
                prop_assert!(l.cache_index(max - 1).is_some());
                prop_assert_eq!(l.cache_index(max), None);
            }
            Err(Error::Inval) => prop_assert_eq!(max, 0),
            Err(Error::TooBig) => prop_assert!(max > MAX_ENTRIES),
        }
    }

    #[test]
    fn layout_and_speculation_bounds(max in max_entries(), idxs in indices()) {
        let Ok(l) = Layout::new(max) else { return Ok(()) };
        let n = l.slots();
        prop_assert_eq!(u64::from(n), next_pow2(max));
        prop_assert_eq!(l.index_mask(), n - 1);
        prop_assert!(n >= max);
        prop_assert_eq!(l.total_ptrs(), 2 * u64::from(n));
        prop_assert_eq!(l.total_ptrs() * 8, l.ptrs_bytes());
        prop_assert!(l.ptrs_bytes() <= 1 << 34);
        // The array re-derives the same layout from its fields.
        prop_assert_eq!(Layout::of_array(max, l.index_mask()), Ok(l));

        let edges = [0, 1, max - 1, max, max.saturating_add(1), n - 1, n, n.saturating_add(1), u32::MAX];
        for &idx in idxs.iter().chain(edges.iter()) {
            // A masked speculative index stays in the slots and padding.
            prop_assert!(idx & l.index_mask() < n);
            match l.cache_index(idx) {
                Some(ci) => {
                    prop_assert!(idx < max);
                    prop_assert_eq!(ci, n + idx);
                    prop_assert!(ci >= n && u64::from(ci) < 2 * u64::from(n));
                    prop_assert!(u64::from(ci) < l.total_ptrs());
                }
                // Keys past max_entries (the padding included) have none.
                None => prop_assert!(idx >= max),
            }
        }
    }

    #[test]
    fn of_array_needs_the_exact_mask(max in max_entries(), mask in prop_oneof![any::<u32>(), 0u32..64]) {
        let expected = match Layout::new(max) {
            Ok(l) if l.index_mask() == mask => Ok(l),
            Ok(_) => Err(Error::Inval),
            Err(e) => Err(e),
        };
        prop_assert_eq!(Layout::of_array(max, mask), expected);
    }

    #[test]
    fn jit_site_iff_disp32_fits(max in max_entries(), off in ptrs_offset()) {
        let Ok(l) = Layout::new(max) else { return Ok(()) };
        let disp = u64::from(off) + 8 * u64::from(l.slots());
        let fits = disp <= u64::from(i32::MAX.unsigned_abs());
        match l.jit_site(off) {
            Some(site) => {
                prop_assert!(fits);
                prop_assert_eq!(i64::from(site.cache_disp), i64::try_from(disp).unwrap());
                prop_assert_eq!(site.max_entries, max);
                // The JIT's address of entry k is the cache entry of slot k.
                let k = max - 1;
                let byte = u64::from(site.cache_disp.unsigned_abs()) + 8 * u64::from(k);
                prop_assert_eq!(
                    Some((byte - u64::from(off)) / 8),
                    l.cache_index(k).map(u64::from)
                );
            }
            None => prop_assert!(!fits),
        }
    }

    #[test]
    fn jump_target_checked(f in prop_oneof![any::<usize>(), (usize::MAX - 4096)..=usize::MAX], off in any::<u32>()) {
        let sum = u128::try_from(f).unwrap() + u128::from(off);
        match jump_target(f, off) {
            Some(t) => prop_assert_eq!(u128::try_from(t).unwrap(), sum),
            None => prop_assert!(sum > u128::try_from(usize::MAX).unwrap()),
        }
    }

    #[test]
    fn update_sequences_keep_cache_in_step(
        max in 1u32..=9,
        offset in prop_oneof![Just(None), Just(Some(0u32)), Just(Some(11u32)), any::<u32>().prop_map(Some)],
        funcs in prop::collection::vec(
            prop_oneof![
                Just(None),
                (1usize..1 << 40).prop_map(Some),
                (usize::MAX - 64..=usize::MAX).prop_map(Some),
                any::<usize>().prop_map(Some),
            ],
            1..=6,
        ),
        ops in prop::collection::vec((0u32..12, any::<prop::sample::Index>(), any::<bool>(), any::<bool>()), 0..48),
    ) {
        let nprogs = funcs.len();
        let a = Recorder::new(max, offset, funcs.clone()).unwrap();
        let n = usize::try_from(Layout::new(max).unwrap().slots()).unwrap();
        let maxu = usize::try_from(max).unwrap();
        // Reference model: slot contents, removals and puts per program.
        let mut slots: Vec<Option<usize>> = vec![None; maxu];
        let mut removed = vec![0u32; nprogs];
        let mut puts = vec![0u32; nprogs];
        let target = |p: Option<usize>| -> (usize, bool) {
            let (Some(p), Some(off)) = (p, offset) else { return (0, false) };
            let Some(f) = funcs[p] else { return (0, false) };
            match f.checked_add(usize::try_from(off).unwrap()) {
                Some(t) => (t, false),
                None => (0, true),
            }
        };

        for (key, prog, delete, need_defer) in ops {
            let new = if delete { None } else { Some(prog.index(nprogs)) };
            let res = update(&a, key, new, need_defer);
            let calls = a.take_calls();
            prop_assert!(!a.locked());
            let k = usize::try_from(key).unwrap();
            let (_, bad) = target(new);
            if key >= max {
                prop_assert_eq!(res, Err(Refused::BadKey));
                prop_assert_eq!(calls, vec![]);
            } else if bad {
                // Refused before anything changed; no put.
                prop_assert_eq!(res, Err(Refused::BadTarget));
                prop_assert_eq!(calls, vec![]);
            } else {
                let old = std::mem::replace(&mut slots[k], new);
                prop_assert_eq!(res, Ok(old.is_some()));
                for c in &calls {
                    if let Call::Put { prog, need_defer: nd } = *c {
                        prop_assert_eq!(nd, need_defer);
                        puts[prog] += 1;
                    }
                }
                if let Some(p) = old {
                    removed[p] += 1;
                    prop_assert_eq!(calls.last(), Some(&Call::Put { prog: p, need_defer }));
                } else {
                    prop_assert_eq!(calls.last(), Some(&Call::Unlock));
                }
            }
            // Every program was put exactly once per removal from a slot.
            prop_assert_eq!(&puts, &removed);
            let got_slots = a.slots();
            let cache = a.cache();
            for i in 0..n {
                if i < maxu {
                    prop_assert_eq!(got_slots[i], slots[i]);
                    prop_assert_eq!(cache[i], target(slots[i]).0);
                } else {
                    // Padding: slot NULL, cache entry never set.
                    prop_assert_eq!(got_slots[i], None);
                    prop_assert_eq!(cache[i], 0);
                }
            }
        }
    }
}

// SPDX-License-Identifier: GPL-2.0

//! Property tests for the layout arithmetic and the `imm` codec.

use bpf_tailcall_cache::*;
use proptest::prelude::*;

/// Mix of small, power-of-two-adjacent and huge `max_entries` values.
fn max_entries() -> impl Strategy<Value = u32> {
    prop_oneof![
        1u32..=64,
        (0u32..32).prop_flat_map(|s| {
            let p = 1u32 << s;
            prop_oneof![
                Just(p),
                Just(p.saturating_sub(1).max(1)),
                Just(p.saturating_add(1))
            ]
        }),
        1u32..=u32::MAX,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn layout_invariants(max in max_entries(), pad in any::<bool>(), idxs in prop::collection::vec(any::<u32>(), 16)) {
        let Ok(l) = Layout::for_prog_array(max, pad) else {
            // Only failure mode for max >= 1: pointer count overflows u32.
            let alloc = if pad { u64::from(max).next_power_of_two() } else { u64::from(max) };
            prop_assert!(2 * alloc > u64::from(u32::MAX));
            return Ok(());
        };
        // The same layout is accepted by the validating constructor.
        prop_assert_eq!(Layout::new(l.max_entries(), l.alloc_entries()), Ok(l));
        // (1)
        prop_assert!(l.cache_base() >= l.alloc_entries());
        prop_assert!(l.alloc_entries() >= l.max_entries());
        prop_assert_eq!(l.max_entries(), max);
        prop_assert_eq!(u64::from(l.index_mask()) + 1, u64::from(max).next_power_of_two());
        prop_assert_eq!(l.total_ptrs(), 2 * u64::from(l.alloc_entries()));
        prop_assert!(l.total_ptrs() <= u64::from(u32::MAX));
        prop_assert_eq!(l.cache_bytes(), 8 * u64::from(l.alloc_entries()));
        if pad {
            prop_assert_eq!(u64::from(l.alloc_entries()), u64::from(l.index_mask()) + 1);
        } else {
            prop_assert_eq!(l.alloc_entries(), max);
        }
        let extremes = [0, 1, max - 1, max, l.index_mask(), u32::MAX];
        for &idx in idxs.iter().chain(extremes.iter()) {
            // Architectural path: a bounds-checked index has a cache entry.
            if idx < max {
                let ci = l.cache_index(idx);
                prop_assert_eq!(ci, Some(l.cache_base() + idx));
            }
            if pad {
                let m = idx & l.index_mask();
                // (2) masked speculative slot read stays in slots/padding.
                prop_assert!(m < l.alloc_entries());
                prop_assert!(m < l.cache_base());
                // (3) masked speculative cache read stays in the allocation.
                let ci = l.cache_index(m);
                prop_assert!(ci.is_some());
                prop_assert!(u64::from(ci.unwrap()) < l.total_ptrs());
                prop_assert!(ci.unwrap() >= l.cache_base());
            }
            prop_assert_eq!(l.cache_index(idx).is_some(), idx < l.alloc_entries());
        }
    }

    #[test]
    fn disp32_iff_fits(max in max_entries(), pad in any::<bool>(), off in prop_oneof![Just(352u32), 0u32..4096, any::<u32>()]) {
        if let Ok(l) = Layout::for_prog_array(max, pad) {
            let d = l.cache_disp_u64(off);
            prop_assert_eq!(d, u64::from(off) + 8 * u64::from(l.cache_base()));
            // (4)
            prop_assert_eq!(l.cache_disp32(off).is_some(), d <= i32::MAX as u64);
            if let Some(d32) = l.cache_disp32(off) {
                prop_assert_eq!(i64::from(d32), d as i64);
            }
        }
    }

    #[test]
    fn static_roundtrip(m in 0u32..65536, extra in 1u32..=1024) {
        let imm = encode_static(m);
        prop_assert!(imm < 0);
        prop_assert_eq!(decode(imm, m + extra, 0), Site::Static { map_index: m });
        prop_assert_eq!(decode(imm, m, u32::MAX), Site::Invalid);
    }

    #[test]
    fn direct_roundtrip(p in prop_oneof![0u32..1024, 0u32..(i32::MAX as u32)], extra in 1u32..=1024) {
        let imm = encode_direct(p);
        prop_assert!(imm > 0);
        prop_assert_eq!(decode(imm, u32::MAX, p.saturating_add(extra)), Site::Direct { poke_index: p });
        prop_assert_eq!(decode(imm, u32::MAX, p), Site::Invalid);
    }

    #[test]
    fn decode_never_exceeds_counts(imm in any::<i32>(), maps in any::<u32>(), pokes in any::<u32>()) {
        match decode(imm, maps, pokes) {
            Site::Legacy => prop_assert_eq!(imm, 0),
            Site::Direct { poke_index } => {
                prop_assert!(imm > 0);
                prop_assert!(poke_index < pokes);
                prop_assert_eq!(encode_direct(poke_index), imm);
            }
            Site::Static { map_index } => {
                prop_assert!(imm < 0);
                prop_assert!(map_index < maps);
                prop_assert!(map_index < 1 << MAP_INDEX_BITS);
                prop_assert_eq!(encode_static(map_index), imm);
            }
            Site::Invalid => prop_assert_ne!(imm, 0),
        }
    }

    #[test]
    fn encode_never_truncates(v in any::<u32>()) {
        let d = encode_direct(v);
        if d == 0 {
            prop_assert!(u64::from(v) + 1 > i32::MAX as u64);
        } else {
            prop_assert_eq!(decode(d, 0, u32::MAX), Site::Direct { poke_index: v });
        }
        let s = encode_static(v);
        if s == 0 {
            prop_assert!(v >= 1 << MAP_INDEX_BITS);
        } else {
            prop_assert_eq!(decode(s, u32::MAX, 0), Site::Static { map_index: v });
        }
    }

    #[test]
    fn jump_target_checked(f in any::<u64>(), off in any::<u32>()) {
        match jump_target(f, off) {
            Ok(t) if f == 0 => prop_assert_eq!(t, 0),
            Ok(t) => prop_assert_eq!(u128::from(t), u128::from(f) + u128::from(off)),
            Err(e) => {
                prop_assert_eq!(e, Error::Overflow);
                prop_assert!(u128::from(f) + u128::from(off) > u128::from(u64::MAX));
            }
        }
    }
}

// SPDX-License-Identifier: GPL-2.0

//! Host-side crate for the BPF prog-array tail-call target cache.
//!
//! The actual logic lives in [`tailcall_cache_core`], a single file that is
//! copied verbatim into the kernel as `kernel/bpf/tailcall_cache_core.rs`.
//! This crate root only wraps it for host testing: unit tests below,
//! property tests in `tests/props.rs`, a loom model in `tests/model.rs`,
//! and [`recorder`], a single-threaded [`ProgArray`] the tests share.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

/// The shared core (identical to `kernel/bpf/tailcall_cache_core.rs`).
///
/// The extra lints enforce, on the host, the "no panicking path" rule of the
/// kernel copy.
#[path = "tailcall_cache_core.rs"]
#[deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented,
    clippy::as_conversions
)]
pub mod tailcall_cache_core;

/// The compare-tree plan (identical to `kernel/bpf/tailcall_tree_core.rs`).
#[path = "tailcall_tree_core.rs"]
#[deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented,
    clippy::as_conversions
)]
pub mod tailcall_tree_core;

pub mod recorder;
pub mod tree_walk;

pub use tailcall_cache_core::*;

#[cfg(test)]
mod tests {
    use super::recorder::{Call, Recorder};
    use super::*;
    use std::vec;
    use std::vec::Vec;

    const OFF: u32 = 11;
    const A: usize = 0;
    const B: usize = 1;
    const INTERP: usize = 2;
    const HUGE: usize = 3;
    const A_FUNC: usize = 0x1000;
    const B_FUNC: usize = 0x2000;
    const HUGE_FUNC: usize = usize::MAX - 5;

    fn layout(m: u32) -> Layout {
        Layout::new(m).unwrap()
    }

    /// Programs A, B (JITed), INTERP (interpreted), HUGE (target wraps).
    fn array(max_entries: u32, target_offset: Option<u32>) -> Recorder {
        Recorder::new(
            max_entries,
            target_offset,
            vec![Some(A_FUNC), Some(B_FUNC), None, Some(HUGE_FUNC)],
        )
        .unwrap()
    }

    // ---- Layout ----

    #[test]
    fn layout_one_entry() {
        let l = layout(1);
        assert_eq!(l.cache_index(0), Some(1));
        assert_eq!(l.cache_index(1), None);
        assert_eq!(l.index_mask(), 0);
        assert_eq!(l.slots(), 1);
        assert_eq!(l.total_ptrs(), 2);
        assert_eq!(l.ptrs_bytes(), 16);
        assert_eq!(l.cache_index(0), Some(1));
        assert_eq!(l.cache_index(1), None);
        assert_eq!(l.cache_index(u32::MAX), None);
        assert_eq!(
            l.jit_site(352),
            Some(JitSite {
                max_entries: 1,
                cache_disp: 360
            })
        );
    }

    #[test]
    fn layout_two_entries() {
        let l = layout(2);
        assert_eq!(l.index_mask(), 1);
        assert_eq!(l.slots(), 2);
        assert_eq!(l.total_ptrs(), 4);
        assert_eq!(l.ptrs_bytes(), 32);
        assert_eq!(l.cache_index(0), Some(2));
        assert_eq!(l.cache_index(1), Some(3));
        assert_eq!(l.cache_index(2), None);
        assert_eq!(l.jit_site(328).unwrap().cache_disp, 328 + 16);
    }

    #[test]
    fn layout_three_entries_padded_to_four() {
        let l = layout(3);
        assert_eq!(l.index_mask(), 3);
        assert_eq!(l.slots(), 4);
        assert_eq!(l.total_ptrs(), 8);
        assert_eq!(l.ptrs_bytes(), 64);
        assert_eq!(l.cache_index(0), Some(4));
        assert_eq!(l.cache_index(2), Some(6));
        // Key 3 is padding: its entry (ptrs[7]) is never set.
        assert_eq!(l.cache_index(3), None);
        assert_eq!(l.cache_index(4), None);
        for idx in 0..64u32 {
            assert!(idx & l.index_mask() < l.slots());
        }
        assert_eq!(
            l.jit_site(328),
            Some(JitSite {
                max_entries: 3,
                cache_disp: 328 + 32
            })
        );
    }

    #[test]
    fn layout_five_entries_padded_to_eight() {
        let l = layout(5);
        assert_eq!(l.index_mask(), 7);
        assert_eq!(l.slots(), 8);
        assert_eq!(l.total_ptrs(), 16);
        assert_eq!(l.ptrs_bytes(), 128);
        assert_eq!(l.cache_index(4), Some(12));
        for k in 5..=8 {
            assert_eq!(l.cache_index(k), None);
        }
        assert_eq!(l.jit_site(352).unwrap().cache_disp, 352 + 64);
    }

    #[test]
    fn layout_zero_is_inval() {
        assert_eq!(Layout::new(0), Err(Error::Inval));
        assert_eq!(Layout::of_array(0, 0), Err(Error::Inval));
        assert_eq!(Layout::of_array(0, u32::MAX), Err(Error::Inval));
    }

    #[test]
    fn layout_largest_and_too_big() {
        let l = layout(MAX_ENTRIES);
        assert_eq!(MAX_ENTRIES, 1 << 30);
        assert_eq!(l.index_mask(), (1 << 30) - 1);
        assert_eq!(l.slots(), 1 << 30);
        assert_eq!(l.total_ptrs(), 1 << 31);
        assert_eq!(l.ptrs_bytes(), 1 << 34);
        assert_eq!(l.cache_index(0), Some(1 << 30));
        assert_eq!(l.cache_index((1 << 30) - 1), Some(u32::MAX >> 1));
        assert_eq!(l.cache_index(1 << 30), None);
        assert_eq!(l.jit_site(0), None);
        assert_eq!(l.jit_site(352), None);
        // Between the powers of two, (1 << 29) + 1 rounds up to the largest.
        assert_eq!(layout((1 << 29) + 1).slots(), 1 << 30);

        assert_eq!(Layout::new(MAX_ENTRIES + 1), Err(Error::TooBig));
        assert_eq!(Layout::new(1 << 31), Err(Error::TooBig));
        assert_eq!(Layout::new((1 << 31) + 1), Err(Error::TooBig));
        assert_eq!(Layout::new(u32::MAX), Err(Error::TooBig));
        assert_eq!(
            Layout::of_array(MAX_ENTRIES + 1, u32::MAX >> 1),
            Err(Error::TooBig)
        );
    }

    #[test]
    fn of_array_checks_index_mask() {
        for m in [1, 2, 3, 4, 5, 1000, MAX_ENTRIES] {
            let l = layout(m);
            assert_eq!(Layout::of_array(m, l.index_mask()), Ok(l));
        }
        // Wrong masks: off by one, not a power of two minus one, too large
        // (no Spectre padding is still the rounded-up mask), zero.
        for (m, mask) in [
            (1, 1),
            (2, 0),
            (2, 3),
            (3, 2),
            (3, 7),
            (4, 7),
            (5, 5),
            (5, 4),
            (3, u32::MAX),
            (MAX_ENTRIES, u32::MAX),
            (MAX_ENTRIES, 0),
        ] {
            assert_eq!(Layout::of_array(m, mask), Err(Error::Inval), "{m} {mask}");
        }
    }

    #[test]
    fn jit_site_disp32_boundary() {
        for off in [328u32, 352] {
            for m in [(1 << 27) - 1, 1 << 27] {
                // N = 2^27: the cache starts at off + 2^30.
                let site = layout(m).jit_site(off).unwrap();
                assert_eq!(site.max_entries, m);
                assert_eq!(i64::from(site.cache_disp), i64::from(off) + (1 << 30));
            }
            // N = 2^28: off + 2^31 does not fit a disp32.
            assert_eq!(layout((1 << 27) + 1).jit_site(off), None);
            assert_eq!(layout(1 << 28).jit_site(off), None);
        }
        // The exact edge in ptrs_offset, for N = 2^27 and N = 1.
        let l = layout(1 << 27);
        let edge = u32::try_from(i32::MAX).unwrap() - (1 << 30);
        assert_eq!(l.jit_site(edge).unwrap().cache_disp, i32::MAX);
        assert_eq!(l.jit_site(edge + 1), None);
        let l = layout(1);
        let edge = u32::try_from(i32::MAX).unwrap() - 8;
        assert_eq!(l.jit_site(edge).unwrap().cache_disp, i32::MAX);
        assert_eq!(l.jit_site(edge + 1), None);
        assert_eq!(l.jit_site(u32::MAX), None);
        assert_eq!(l.jit_site(0).unwrap().cache_disp, 8);
    }

    #[test]
    fn jump_targets() {
        assert_eq!(jump_target(0, 0), Some(0));
        assert_eq!(jump_target(0x1000, 11), Some(0x100b));
        assert_eq!(jump_target(0x1000, u32::MAX), Some(0x1000 + 0xffff_ffff));
        assert_eq!(jump_target(usize::MAX - 11, 11), Some(usize::MAX));
        assert_eq!(jump_target(usize::MAX - 10, 11), None);
        assert_eq!(jump_target(usize::MAX, 0), Some(usize::MAX));
        assert_eq!(jump_target(usize::MAX, 1), None);
        assert_eq!(jump_target(HUGE_FUNC, OFF), None);
    }

    // ---- update() ----

    fn a_target() -> usize {
        A_FUNC + 11
    }

    fn b_target() -> usize {
        B_FUNC + 11
    }

    #[test]
    fn update_order_insert_then_replace() {
        let a = array(3, Some(OFF));
        assert_eq!(update(&a, 1, Some(A), false), Ok(false));
        assert_eq!(
            a.take_calls(),
            [
                Call::Lock,
                Call::SwapSlot {
                    key: 1,
                    new: Some(A),
                    old: None
                },
                Call::SwapTarget {
                    index: 5,
                    target: a_target(),
                    old: 0
                },
                Call::PokeRun {
                    key: 1,
                    old: None,
                    new: Some(A)
                },
                Call::Unlock,
            ]
        );
        assert_eq!(update(&a, 1, Some(B), false), Ok(true));
        assert_eq!(
            a.take_calls(),
            [
                Call::Lock,
                Call::SwapSlot {
                    key: 1,
                    new: Some(B),
                    old: Some(A)
                },
                Call::SwapTarget {
                    index: 5,
                    target: b_target(),
                    old: a_target()
                },
                Call::PokeRun {
                    key: 1,
                    old: Some(A),
                    new: Some(B)
                },
                Call::Unlock,
                Call::Put {
                    prog: A,
                    need_defer: false
                },
            ]
        );
        assert_eq!(a.slots(), [None, Some(B), None, None]);
        assert_eq!(a.cache(), [0, b_target(), 0, 0]);
        assert!(!a.locked());
    }

    #[test]
    fn update_delete_sets_target_zero() {
        let a = array(2, Some(OFF));
        assert_eq!(update(&a, 0, Some(A), true), Ok(false));
        a.clear_calls();
        assert_eq!(update(&a, 0, None, true), Ok(true));
        assert_eq!(
            a.take_calls(),
            [
                Call::Lock,
                Call::SwapSlot {
                    key: 0,
                    new: None,
                    old: Some(A)
                },
                Call::SwapTarget {
                    index: 2,
                    target: 0,
                    old: a_target()
                },
                Call::PokeRun {
                    key: 0,
                    old: Some(A),
                    new: None
                },
                Call::Unlock,
                Call::Put {
                    prog: A,
                    need_defer: true
                },
            ]
        );
        assert_eq!(a.cache(), [0, 0]);
        // Deleting an empty slot still goes through the mutex, puts nothing.
        assert_eq!(update(&a, 0, None, true), Ok(false));
        let calls = a.take_calls();
        assert!(calls.contains(&Call::SwapTarget {
            index: 2,
            target: 0,
            old: 0
        }));
        assert!(!calls.iter().any(|c| matches!(c, Call::Put { .. })));
        assert_eq!(calls.last(), Some(&Call::Unlock));
    }

    #[test]
    fn update_interpreted_program_target_zero() {
        let a = array(1, Some(OFF));
        assert_eq!(update(&a, 0, Some(A), false), Ok(false));
        a.clear_calls();
        assert_eq!(update(&a, 0, Some(INTERP), false), Ok(true));
        let calls = a.take_calls();
        assert!(calls.contains(&Call::SwapTarget {
            index: 1,
            target: 0,
            old: a_target()
        }));
        assert!(!calls.iter().any(|c| matches!(c, Call::Warn(_))));
        assert_eq!(a.slots(), [Some(INTERP)]);
        assert_eq!(a.cache(), [0]);
    }

    #[test]
    fn update_overflowing_target_is_refused() {
        let a = array(1, Some(OFF));
        assert_eq!(update(&a, 0, Some(A), false), Ok(false));
        a.clear_calls();
        // Refused before the lock: A stays in the slot with its target,
        // and HUGE's reference stays with the caller (no put).
        assert_eq!(update(&a, 0, Some(HUGE), false), Err(Refused::BadTarget));
        assert_eq!(a.take_calls(), []);
        assert_eq!(a.slots(), [Some(A)]);
        assert_eq!(a.cache(), [a_target()]);
        // A delete needs no target: it is never refused for one.
        assert_eq!(update(&a, 0, None, false), Ok(true));
        assert_eq!(a.cache(), [0]);
    }

    #[test]
    fn update_bad_key_touches_nothing() {
        let a = array(3, Some(OFF));
        assert_eq!(update(&a, 0, Some(A), false), Ok(false));
        a.clear_calls();
        // 3 is a padding slot, the others are past the array.
        for key in [3, 4, 7, 8, u32::MAX] {
            for new in [Some(B), None] {
                assert_eq!(update(&a, key, new, false), Err(Refused::BadKey));
                assert_eq!(a.take_calls(), []);
            }
        }
        assert_eq!(a.slots(), [Some(A), None, None, None]);
        assert_eq!(a.cache(), [a_target(), 0, 0, 0]);
    }

    #[test]
    fn update_bad_layout_touches_nothing() {
        for mask in [0, 1, 2, 7, u32::MAX] {
            let a = array(3, Some(OFF)).with_index_mask(mask);
            for key in [0, 2] {
                assert_eq!(update(&a, key, Some(A), false), Err(Refused::BadLayout));
                assert_eq!(a.take_calls(), [Call::Warn(Refused::BadLayout)]);
            }
            // The key is checked first, against max_entries.
            assert_eq!(update(&a, 3, Some(A), false), Err(Refused::BadKey));
            assert_eq!(a.take_calls(), []);
            assert_eq!(a.slots(), [None; 4]);
            assert_eq!(a.cache(), [0; 4]);
        }
    }

    /// An array without a cache keeps any size `array_map_alloc()`
    /// accepted: its layout is not asked for.
    #[test]
    fn update_without_cache_ignores_layout() {
        let a = array(3, None).with_index_mask(7);
        assert_eq!(update(&a, 2, Some(A), false), Ok(false));
        assert_eq!(update(&a, 2, None, true), Ok(true));
        let calls = a.take_calls();
        assert!(!calls.iter().any(|c| matches!(c, Call::Warn(_))));
        assert!(!calls.iter().any(|c| matches!(c, Call::SwapTarget { .. })));
        assert_eq!(a.slots(), [None; 4]);
    }

    #[test]
    fn update_without_cache_never_swaps_target() {
        let a = array(2, None);
        assert_eq!(update(&a, 1, Some(A), false), Ok(false));
        assert_eq!(update(&a, 1, Some(B), false), Ok(true));
        assert_eq!(update(&a, 1, None, false), Ok(true));
        let calls = a.take_calls();
        assert!(!calls.iter().any(|c| matches!(c, Call::SwapTarget { .. })));
        assert_eq!(
            calls[4..9],
            [
                Call::Lock,
                Call::SwapSlot {
                    key: 1,
                    new: Some(B),
                    old: Some(A)
                },
                Call::PokeRun {
                    key: 1,
                    old: Some(A),
                    new: Some(B)
                },
                Call::Unlock,
                Call::Put {
                    prog: A,
                    need_defer: false
                },
            ]
        );
        assert_eq!(a.cache(), [0, 0]);
        assert_eq!(a.slots(), [None, None]);
    }

    #[test]
    fn update_returns_whether_slot_held_a_program() {
        let a = array(2, Some(OFF));
        assert_eq!(update(&a, 0, None, false), Ok(false));
        assert_eq!(update(&a, 0, Some(A), false), Ok(false));
        // The same program again: the slot's old reference is put.
        assert_eq!(update(&a, 0, Some(A), false), Ok(true));
        assert_eq!(update(&a, 0, None, false), Ok(true));
        assert_eq!(update(&a, 0, None, false), Ok(false));
        let puts: Vec<_> = a
            .take_calls()
            .into_iter()
            .filter(|c| matches!(c, Call::Put { .. }))
            .collect();
        assert_eq!(
            puts,
            [Call::Put {
                prog: A,
                need_defer: false
            }; 2]
        );
    }

    // ---- clear() ----

    #[test]
    fn clear_order_is_update_order_for_all_slots() {
        let a = array(40, Some(OFF));
        update(&a, 33, Some(A), false).unwrap();
        update(&a, 35, Some(B), false).unwrap();
        a.clear_calls();
        assert_eq!(clear(&a, 32, 40, true), Ok(2));
        let calls = a.take_calls();
        let l = Layout::new(40).unwrap();
        let mut want = vec![Call::Lock];
        for key in 32..40 {
            let old = match key {
                33 => Some(A),
                35 => Some(B),
                _ => None,
            };
            let stored = match old {
                Some(A) => a_target(),
                Some(_) => b_target(),
                None => 0,
            };
            want.push(Call::SwapSlot {
                key,
                new: None,
                old,
            });
            want.push(Call::SwapTarget {
                index: l.cache_index(key).unwrap(),
                target: 0,
                old: stored,
            });
        }
        let mut old = [None; CLEAR_CHUNK];
        old[1] = Some(A);
        old[3] = Some(B);
        want.push(Call::PokeClear {
            lo: 32,
            hi: 40,
            old,
        });
        want.push(Call::Unlock);
        want.push(Call::Put {
            prog: A,
            need_defer: true,
        });
        want.push(Call::Put {
            prog: B,
            need_defer: true,
        });
        assert_eq!(calls, want);
        assert!(a.slots().iter().all(Option::is_none));
        assert!(a.cache().iter().all(|&t| t == 0));
    }

    #[test]
    fn clear_bad_range_touches_nothing() {
        let a = array(64, Some(OFF));
        update(&a, 3, Some(A), false).unwrap();
        a.clear_calls();
        let chunk = u32::try_from(CLEAR_CHUNK).unwrap();
        assert_eq!(clear(&a, 0, chunk + 1, false), Err(Refused::BadKey));
        assert_eq!(clear(&a, 5, 4, false), Err(Refused::BadKey));
        assert_eq!(clear(&a, 60, 65, false), Err(Refused::BadKey));
        assert_eq!(a.take_calls(), []);
        assert_eq!(clear(&a, 0, chunk, false), Ok(1));
        assert_eq!(clear(&a, 64, 64, false), Ok(0));
    }

    #[test]
    fn clear_without_cache_swaps_no_target() {
        let a = array(4, None);
        update(&a, 1, Some(A), false).unwrap();
        a.clear_calls();
        assert_eq!(clear(&a, 0, 4, false), Ok(1));
        assert!(!a
            .take_calls()
            .iter()
            .any(|c| matches!(c, Call::SwapTarget { .. })));
    }

    #[test]
    fn update_passes_need_defer_to_put() {
        for need_defer in [false, true] {
            let a = array(1, Some(OFF));
            assert_eq!(update(&a, 0, Some(A), !need_defer), Ok(false));
            assert_eq!(update(&a, 0, Some(B), need_defer), Ok(true));
            assert_eq!(
                a.take_calls().last(),
                Some(&Call::Put {
                    prog: A,
                    need_defer
                })
            );
            assert_eq!(update(&a, 0, None, need_defer), Ok(true));
            assert_eq!(
                a.take_calls().last(),
                Some(&Call::Put {
                    prog: B,
                    need_defer
                })
            );
        }
    }
}

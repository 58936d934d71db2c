// SPDX-License-Identifier: GPL-2.0

//! Host-side crate for the BPF prog-array tail-call target cache.
//!
//! The actual logic lives in [`tailcall_cache_core`], a single file that is
//! copied verbatim into the kernel as `kernel/bpf/tailcall_cache_core.rs`.
//! This crate root only wraps it for host testing (unit tests below,
//! property tests in `tests/props.rs`, a loom model in `tests/model.rs`).

#![no_std]
#![forbid(unsafe_code)]

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

pub use tailcall_cache_core::*;

/// Host-only implementation used by tests: a plain atomic word.
impl TargetSlot for core::sync::atomic::AtomicU64 {
    fn exchange(&self, new: u64) -> u64 {
        self.swap(new, core::sync::atomic::Ordering::SeqCst)
    }

    fn read(&self) -> u64 {
        self.load(core::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;
    use core::sync::atomic::AtomicU64;
    use std::vec::Vec;

    /// A slot that counts how often it was exchanged.
    #[derive(Default)]
    struct CountingSlot {
        value: Cell<u64>,
        writes: Cell<u32>,
    }

    impl TargetSlot for CountingSlot {
        fn exchange(&self, new: u64) -> u64 {
            self.writes.set(self.writes.get() + 1);
            self.value.replace(new)
        }

        fn read(&self) -> u64 {
            self.value.get()
        }
    }

    fn slots(n: usize) -> Vec<CountingSlot> {
        (0..n).map(|_| CountingSlot::default()).collect()
    }

    #[test]
    fn errno_values() {
        assert_eq!(Error::InvalidArgument.to_errno(), -22);
        assert_eq!(Error::OutOfRange.to_errno(), -7);
        assert_eq!(Error::Overflow.to_errno(), -75);
    }

    #[test]
    fn single_entry() {
        for pad in [false, true] {
            let l = Layout::for_prog_array(1, pad).unwrap();
            assert_eq!(l.max_entries(), 1);
            assert_eq!(l.alloc_entries(), 1);
            assert_eq!(l.index_mask(), 0);
            assert_eq!(l.cache_base(), 1);
            assert_eq!(l.total_ptrs(), 2);
            assert_eq!(l.cache_bytes(), 8);
            assert_eq!(l.cache_index(0), Some(1));
            assert_eq!(l.cache_index(1), None);
            assert_eq!(l.cache_disp32(352), Some(360));
        }
    }

    #[test]
    fn three_entries_padded_to_four() {
        let l = Layout::for_prog_array(3, true).unwrap();
        assert_eq!(l.alloc_entries(), 4);
        assert_eq!(l.index_mask(), 3);
        assert_eq!(l.cache_base(), 4);
        assert_eq!(l.total_ptrs(), 8);
        assert_eq!(l.cache_bytes(), 32);
        // Padding slot 3 has a cache entry too (masked speculative index).
        assert_eq!(l.cache_index(3), Some(7));
        assert_eq!(l.cache_index(4), None);
        for idx in 0..64u32 {
            assert!(idx & l.index_mask() < l.alloc_entries());
        }

        let u = Layout::for_prog_array(3, false).unwrap();
        assert_eq!(u.alloc_entries(), 3);
        assert_eq!(u.index_mask(), 3);
        assert_eq!(u.cache_base(), 3);
        assert_eq!(u.cache_index(2), Some(5));
        assert_eq!(u.cache_index(3), None);
    }

    #[test]
    fn layout_new_validation() {
        assert_eq!(Layout::new(0, 0), Err(Error::InvalidArgument));
        assert_eq!(Layout::new(0, 1), Err(Error::InvalidArgument));
        assert_eq!(Layout::new(4, 3), Err(Error::InvalidArgument));
        // Not a power of two.
        assert_eq!(Layout::new(3, 5), Err(Error::InvalidArgument));
        // Power of two but not the rounding of max_entries.
        assert_eq!(Layout::new(3, 8), Err(Error::InvalidArgument));
        assert_eq!(Layout::new(4, 8), Err(Error::InvalidArgument));
        assert!(Layout::new(3, 4).is_ok());
        assert!(Layout::new(5, 5).is_ok());
        // Largest representable: 2 * alloc must fit u32.
        assert!(Layout::new(i32::MAX as u32, i32::MAX as u32).is_ok());
        assert_eq!(Layout::new(1 << 31, 1 << 31), Err(Error::OutOfRange));
        assert_eq!(Layout::new(u32::MAX, u32::MAX), Err(Error::OutOfRange));
    }

    #[test]
    fn huge_max_entries() {
        // 2 * alloc_entries would overflow the u32 pointer count.
        for pad in [false, true] {
            assert_eq!(
                Layout::for_prog_array(u32::MAX, pad),
                Err(Error::OutOfRange)
            );
            assert_eq!(Layout::for_prog_array(1 << 31, pad), Err(Error::OutOfRange));
        }
        assert_eq!(
            Layout::for_prog_array(u32::MAX, true)
                .unwrap_err()
                .to_errno(),
            -7
        );
        // (1 << 30) + 1 pads to 1 << 31: too big; unpadded it fits.
        assert_eq!(
            Layout::for_prog_array((1 << 30) + 1, true),
            Err(Error::OutOfRange)
        );
        let l = Layout::for_prog_array((1 << 30) + 1, false).unwrap();
        assert_eq!(l.index_mask(), u32::MAX >> 1);
        assert_eq!(l.total_ptrs(), (1u64 << 31) + 2);
        assert_eq!(l.cache_disp32(352), None);
        assert_eq!(l.cache_disp_u64(352), 352 + 8 * ((1u64 << 30) + 1));
        assert_eq!(Layout::for_prog_array(0, true), Err(Error::InvalidArgument));
        assert_eq!(
            Layout::for_prog_array(0, false),
            Err(Error::InvalidArgument)
        );
    }

    #[test]
    fn disp32_boundary() {
        let off = 352u32;
        let largest = ((i32::MAX as u64 - u64::from(off)) / PTR_SIZE) as u32;
        assert_eq!(largest, 268_435_411);
        let l = Layout::new(largest, largest).unwrap();
        let d = l.cache_disp32(off).unwrap();
        assert_eq!(i64::from(d), i64::from(off) + 8 * i64::from(largest));
        let l1 = Layout::new(largest + 1, largest + 1).unwrap();
        assert_eq!(l1.cache_disp32(off), None);
        assert_eq!(l1.cache_disp_u64(off), i32::MAX as u64 + 1);
    }

    #[test]
    fn jump_targets() {
        assert_eq!(jump_target(0, 0), Ok(0));
        assert_eq!(jump_target(0, 11), Ok(0));
        assert_eq!(jump_target(0x1000, 11), Ok(0x100b));
        assert_eq!(jump_target(u64::MAX - 11, 11), Ok(u64::MAX));
        assert_eq!(jump_target(u64::MAX - 10, 11), Err(Error::Overflow));
        assert_eq!(jump_target(u64::MAX, 1), Err(Error::Overflow));
    }

    #[test]
    fn codec_roundtrip_and_fallbacks() {
        assert_eq!(decode(0, 0, 0), Site::Legacy);
        assert_eq!(encode_direct(0), 1);
        assert_eq!(decode(1, 0, 1), Site::Direct { poke_index: 0 });
        assert_eq!(decode(1, 0, 0), Site::Invalid);
        assert_eq!(encode_direct(i32::MAX as u32 - 1), i32::MAX);
        assert_eq!(encode_direct(i32::MAX as u32), 0);
        assert_eq!(encode_direct(u32::MAX), 0);

        assert_eq!(STATIC_FLAG, 0x8000_0000);
        assert_eq!(encode_static(0), i32::MIN);
        assert_eq!(decode(i32::MIN, 1, 0), Site::Static { map_index: 0 });
        assert_eq!(decode(i32::MIN, 0, 0), Site::Invalid);
        assert_eq!(encode_static(0xffff), i32::MIN | 0xffff);
        assert_eq!(
            decode(encode_static(0xffff), 0x1_0000, 0),
            Site::Static { map_index: 0xffff }
        );
        assert_eq!(encode_static(1 << 16), 0);
        assert_eq!(encode_static(u32::MAX), 0);

        // Forged imms: reserved bits 16..=30 set.
        assert_eq!(decode(-1, u32::MAX, u32::MAX), Site::Invalid);
        assert_eq!(decode(i32::MIN | (1 << 16), u32::MAX, 0), Site::Invalid);
        assert_eq!(decode(i32::MIN | (1 << 30), u32::MAX, 0), Site::Invalid);
        assert_eq!(
            decode(i32::MAX, 0, u32::MAX),
            Site::Direct {
                poke_index: i32::MAX as u32 - 1
            }
        );
        assert_eq!(decode(i32::MAX, 0, i32::MAX as u32 - 1), Site::Invalid);
    }

    #[test]
    fn publish_and_clear() {
        let l = Layout::for_prog_array(3, true).unwrap();
        let cache = slots(4);
        assert_eq!(first_stale(&cache), None);
        assert_eq!(publish(&l, &cache, 1, 0x1234), Ok(0));
        assert_eq!(first_stale(&cache), Some(1));
        assert_eq!(publish(&l, &cache, 1, 0x5678), Ok(0x1234));
        assert_eq!(publish(&l, &cache, 2, 0x9abc), Ok(0));
        assert_eq!(clear(&l, &cache, 1), Ok(0x5678));
        assert_eq!(first_stale(&cache), Some(2));
        assert_eq!(clear(&l, &cache, 2), Ok(0x9abc));
        assert_eq!(first_stale(&cache), None);
    }

    #[test]
    fn publish_out_of_range_touches_nothing() {
        let l = Layout::for_prog_array(3, true).unwrap();
        let cache = slots(4);
        // Key 3 is a padding slot: inside the cache, but not a real slot.
        assert_eq!(publish(&l, &cache, 3, 1), Err(Error::OutOfRange));
        assert_eq!(publish(&l, &cache, 4, 1), Err(Error::OutOfRange));
        assert_eq!(publish(&l, &cache, u32::MAX, 1), Err(Error::OutOfRange));
        assert_eq!(clear(&l, &cache, 3), Err(Error::OutOfRange));
        // Wrong cache length.
        assert_eq!(publish(&l, &cache[..3], 0, 1), Err(Error::InvalidArgument));
        let longer = slots(5);
        assert_eq!(publish(&l, &longer, 0, 1), Err(Error::InvalidArgument));
        for s in cache.iter().chain(longer.iter()) {
            assert_eq!(s.writes.get(), 0);
            assert_eq!(s.read(), 0);
        }
    }

    #[test]
    fn atomic_slot_impl() {
        let l = Layout::new(2, 2).unwrap();
        let cache = [AtomicU64::new(0), AtomicU64::new(0)];
        assert_eq!(publish(&l, &cache, 1, 7), Ok(0));
        assert_eq!(first_stale(&cache), Some(1));
        assert_eq!(clear(&l, &cache, 1), Ok(7));
        assert_eq!(first_stale(&cache), None);
    }
}

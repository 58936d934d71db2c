// SPDX-License-Identifier: GPL-2.0

//! Tail-call target cache of BPF prog arrays: the kernel side.
//!
//! The logic (layout, jump target, `imm` codec, update protocol) is in
//! [`tailcall_cache_core`], which is shared verbatim with the host test
//! crate of the series. This file exports it to C, declared in
//! `include/linux/bpf_tailcall_cache.h`, and implements the cache entries
//! with the kernel's atomics.
//!
//! Callers are `kernel/bpf/arraymap.c` (allocation, every slot change,
//! map free), the verifier fixups (`imm` encoding) and the JITs (`imm`
//! decoding, displacement of the cache).

use core::ptr;
use core::slice;
use kernel::bindings;
use kernel::error::code::ERANGE;
use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::sync::atomic::{ordering::Full, ordering::Relaxed, Atomic};

pub mod tailcall_cache_core;

use tailcall_cache_core::{Error, Layout, Site, TargetSlot};

impl TargetSlot for Atomic<*mut c_void> {
    fn exchange(&self, new: u64) -> u64 {
        let new = ptr::with_exposed_provenance_mut::<c_void>(new as usize);
        self.xchg(new, Full).expose_provenance() as u64
    }

    fn read(&self) -> u64 {
        self.load(Relaxed).expose_provenance() as u64
    }
}

/// Layout of the prog array: the cache always starts at `index_mask + 1`.
fn layout(max_entries: u32, index_mask: u32) -> Result<Layout, Error> {
    let alloc = index_mask.checked_add(1).ok_or(Error::OutOfRange)?;
    Layout::new(max_entries, alloc)
}

/// Returns the cache of a prog array as a slice of atomics.
///
/// # Safety
///
/// `ptrs` must be `array->ptrs` of a live prog array allocated with
/// [`bpf_tcc_ptrs_entries`] pointer entries for `l.max_entries()`, and every
/// access to its cache entries must be atomic.
unsafe fn cache<'a>(ptrs: *mut *mut c_void, l: &Layout) -> &'a [Atomic<*mut c_void>] {
    // SAFETY: The caller guarantees `ptrs` has `2 * alloc_entries` entries;
    // the cache is the upper half. `Atomic<*mut c_void>` has the size,
    // alignment and bit validity of `*mut c_void`, and all accesses to these
    // entries go through atomics, so there is no data race.
    unsafe {
        let base = ptrs.add(l.cache_base() as usize);
        slice::from_raw_parts(
            base.cast::<Atomic<*mut c_void>>(),
            l.alloc_entries() as usize,
        )
    }
}

/// Stores in `*entries` the number of pointers `array->ptrs[]` of a prog
/// array of `max_entries` needs: slots, padding to a power of two, cache.
///
/// # Safety
///
/// `entries` must be valid for writes.
#[export]
pub unsafe extern "C" fn bpf_tcc_ptrs_entries(max_entries: u32, entries: *mut u64) -> c_int {
    match Layout::for_prog_array(max_entries, true) {
        Ok(l) => {
            // SAFETY: The caller guarantees `entries` is valid for writes.
            unsafe { *entries = l.total_ptrs() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// Swaps the cached jump target of slot `key` to `bpf_func +
/// prologue_offset` (or NULL when `bpf_func` is NULL).
///
/// The caller holds `poke_mutex` and has already swapped `ptrs[key]`; the
/// old program is put only after the mutex is dropped. See
/// [`tailcall_cache_core::publish`] for why no reader can reach a freed
/// image.
///
/// # Safety
///
/// `ptrs` must be `array->ptrs` of a live prog array with the cache, of
/// `max_entries` slots and `index_mask`.
#[export]
pub unsafe extern "C" fn bpf_tcc_publish(
    ptrs: *mut *mut c_void,
    max_entries: u32,
    index_mask: u32,
    key: u32,
    bpf_func: *const c_void,
    prologue_offset: u32,
) -> c_int {
    let l = match layout(max_entries, index_mask) {
        Ok(l) => l,
        Err(e) => return e.to_errno(),
    };
    // SAFETY: Guaranteed by the caller.
    let cache = unsafe { cache(ptrs, &l) };
    // A target that cannot be computed must not leave the old one behind:
    // the caller puts the old program whatever this returns.
    let (target, err) = match tailcall_cache_core::jump_target(
        bpf_func.expose_provenance() as u64,
        prologue_offset,
    ) {
        Ok(t) => (t, 0),
        Err(e) => (0, e.to_errno()),
    };
    match tailcall_cache_core::publish(&l, cache, key, target) {
        Ok(_) => err,
        Err(e) => e.to_errno(),
    }
}

/// Returns the first slot whose cached target is still set, or -1 when the
/// cache is empty (as it must be when the map is freed).
///
/// # Safety
///
/// As for [`bpf_tcc_publish`].
#[export]
pub unsafe extern "C" fn bpf_tcc_first_stale(
    ptrs: *mut *mut c_void,
    max_entries: u32,
    index_mask: u32,
) -> c_int {
    let Ok(l) = layout(max_entries, index_mask) else {
        return -1;
    };
    // SAFETY: Guaranteed by the caller.
    let cache = unsafe { cache(ptrs, &l) };
    tailcall_cache_core::first_stale(cache)
        .and_then(|i| c_int::try_from(i).ok())
        .unwrap_or(-1)
}

/// Stores in `*disp` the byte displacement from the map pointer to the cache
/// when it fits a signed 32-bit field; returns `-ERANGE` when it does not.
///
/// # Safety
///
/// `disp` must be valid for writes.
#[export]
pub unsafe extern "C" fn bpf_tcc_cache_disp32(
    max_entries: u32,
    index_mask: u32,
    ptrs_offset: u32,
    disp: *mut i32,
) -> c_int {
    let l = match layout(max_entries, index_mask) {
        Ok(l) => l,
        Err(e) => return e.to_errno(),
    };
    match l.cache_disp32(ptrs_offset) {
        Some(d) => {
            // SAFETY: The caller guarantees `disp` is valid for writes.
            unsafe { *disp = d };
            0
        }
        None => ERANGE.to_errno(),
    }
}

/// Returns the `imm` of a tail call through `used_maps[map_index]`, or 0
/// (the legacy sequence) when the index does not fit the encoding.
///
/// # Safety
///
/// Always safe to call. It is `unsafe` only because `#[export]` compares it
/// with the `unsafe` declaration bindgen makes, which rustc before 1.93
/// refuses for a safe function.
#[export]
pub unsafe extern "C" fn bpf_tcc_encode_static(map_index: u32) -> i32 {
    tailcall_cache_core::encode_static(map_index)
}

/// Decodes the `imm` of a tail call into an `enum bpf_tcc_site`; stores the
/// poke table or `used_maps` index in `*index`.
///
/// # Safety
///
/// `index` must be valid for writes.
#[export]
pub unsafe extern "C" fn bpf_tcc_decode(
    imm: i32,
    used_map_cnt: u32,
    poke_tab_size: u32,
    index: *mut u32,
) -> u32 {
    let (kind, i) = match tailcall_cache_core::decode(imm, used_map_cnt, poke_tab_size) {
        Site::Legacy => (bindings::bpf_tcc_site_BPF_TCC_SITE_LEGACY, 0),
        Site::Direct { poke_index } => (bindings::bpf_tcc_site_BPF_TCC_SITE_DIRECT, poke_index),
        Site::Static { map_index } => (bindings::bpf_tcc_site_BPF_TCC_SITE_STATIC, map_index),
        Site::Invalid => (bindings::bpf_tcc_site_BPF_TCC_SITE_INVALID, 0),
    };
    // SAFETY: The caller guarantees `index` is valid for writes.
    unsafe { *index = i };
    kind
}

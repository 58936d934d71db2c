// SPDX-License-Identifier: GPL-2.0

//! Tail-call target cache of BPF prog arrays: the kernel side.
//!
//! [`tailcall_cache_core`], shared verbatim with the host tests of the
//! series, has the layout, the update step of a slot and the JIT's choice
//! of sequence. This file applies them to `struct bpf_array` and exports
//! them to C (`include/linux/bpf_tailcall_cache.h`): `arraymap.c` calls
//! [`bpf_tailcall_cache_ptrs_size`] when it allocates a prog array and
//! [`bpf_tailcall_cache_update`] on every slot change, and the JITs call
//! [`bpf_tailcall_cache_jit_site`] for every tail call whose prog array the verifier
//! knows.
//!
//! The cached targets are read by JITed code with plain 64-bit loads,
//! outside the Rust memory model; every write here is a fully ordered
//! `xchg`, and a reader that loaded a target is kept out of freed memory by
//! the RCU grace period before the old program's image is freed (see
//! [`tailcall_cache_core::update`]).

use kernel::bindings;
use kernel::error::code::{E2BIG, EINVAL, EOPNOTSUPP};
use kernel::ffi::c_int;
use kernel::prelude::*;
use kernel::sync::atomic::{self, ordering::Full};

pub mod tailcall_cache_core;

/// Prefix of the messages printed here (`pr_err!`).
const __LOG_PREFIX: &[u8] = b"bpf\0";

use tailcall_cache_core::{Error, Layout, ProgArray, Refused, CLEAR_CHUNK};

/// The arch's tail-call entry offset, when its JIT uses the cache.
fn target_offset() -> Option<u32> {
    // SAFETY: The hook has no preconditions.
    u32::try_from(unsafe { bindings::bpf_arch_tail_call_target_offset() }).ok()
}

fn errno(e: Error) -> c_int {
    match e {
        Error::Inval => EINVAL.to_errno(),
        Error::TooBig => E2BIG.to_errno(),
    }
}

/// Offset of `ptrs[]` in `struct bpf_array`.
const PTRS_OFFSET: usize = core::mem::offset_of!(bindings::bpf_array, __bindgen_anon_1);

/// Stores in `*size` the bytes of `array->ptrs[]` of a prog array of
/// `max_entries` with the cache: the slots rounded up to a power of two,
/// then as many cached targets. `-EOPNOTSUPP` when the arch's JIT does not
/// use the cache (the array then has none), `-E2BIG` above 2^30 entries.
///
/// # Safety
///
/// `size` must be valid for writes.
#[export]
pub unsafe extern "C" fn bpf_tailcall_cache_ptrs_size(max_entries: u32, size: *mut u64) -> c_int {
    if target_offset().is_none() {
        return EOPNOTSUPP.to_errno();
    }
    match Layout::new(max_entries) {
        Ok(l) => {
            // SAFETY: The caller guarantees `size` is valid for writes.
            unsafe { *size = l.ptrs_bytes() };
            0
        }
        Err(e) => errno(e),
    }
}

/// A prog array.
///
/// # Invariants
///
/// `self.0` points to the `struct bpf_array` of a live
/// `BPF_MAP_TYPE_PROG_ARRAY` map built by `array_map_alloc()`: its
/// `ptrs[]` has the slots and, when [`target_offset`] is `Some`, the cache
/// laid out as [`Layout`] says; its `aux` is set.
struct Array(*mut bindings::bpf_array);

impl Array {
    /// `&array->ptrs[index]`, for an index below [`Layout::total_ptrs`]
    /// (or below `max_entries` without the cache).
    fn entry(&self, index: u32) -> *mut usize {
        // The callers pass indices that `Layout` computed for this array:
        // by the type invariant they are inside the allocation.
        self.0
            .cast::<u8>()
            .wrapping_add(PTRS_OFFSET)
            .cast::<usize>()
            .wrapping_add(index as usize)
    }

    fn map(&self) -> *mut bindings::bpf_map {
        // SAFETY: `self.0` is valid (type invariant); no reference is made.
        unsafe { &raw mut (*self.0).map }
    }

    fn poke_mutex(&self) -> *mut bindings::mutex {
        // SAFETY: `self.0` and its `aux` are valid (type invariant).
        unsafe { &raw mut (*(*self.0).aux).poke_mutex }
    }
}

impl ProgArray for Array {
    type Prog = *mut bindings::bpf_prog;

    fn max_entries(&self) -> u32 {
        // SAFETY: `self.0` is valid (type invariant); `max_entries` is set
        // once, before the map is published.
        unsafe { (*self.0).map.max_entries }
    }

    fn layout(&self) -> Result<Layout, Error> {
        // SAFETY: `self.0` is valid (type invariant); both fields are
        // set once, before the map is published.
        let (max_entries, index_mask) =
            unsafe { ((*self.0).map.max_entries, (*self.0).index_mask) };
        Layout::of_array(max_entries, index_mask)
    }

    fn target_offset(&self) -> Option<u32> {
        target_offset()
    }

    fn bpf_func(&self, prog: Self::Prog) -> Option<usize> {
        // SAFETY: The slot owns a reference to `prog`, taken by the caller
        // of `bpf_tailcall_cache_update()`: it is alive, and `jited` and `bpf_func` do
        // not change once it is exposed to a prog array.
        let (jited, func) = unsafe { ((*prog).jited() != 0, (*prog).bpf_func) };
        if !jited {
            return None;
        }
        func.map(|f| f as usize)
    }

    fn lock(&self) {
        // SAFETY: `poke_mutex` is initialised with the array (type invariant).
        unsafe { bindings::mutex_lock(self.poke_mutex()) };
    }

    fn unlock(&self) {
        // SAFETY: Called by `update()` after `lock()`, in the same task.
        unsafe { bindings::mutex_unlock(self.poke_mutex()) };
    }

    fn swap_slot(&self, key: u32, new: Option<Self::Prog>) -> Option<Self::Prog> {
        let slot = self.entry(key).cast::<*mut bindings::bpf_prog>();
        // SAFETY: `key < max_entries` (checked by `update()` against the
        // layout), so `slot` is a slot of the live array, pointer aligned.
        // C accesses it with xchg() (under `poke_mutex`), READ_ONCE() and
        // the JITs' plain loads: the exchange is atomic.
        let old = unsafe { atomic::xchg(slot, new.unwrap_or(core::ptr::null_mut()), Full) };
        (!old.is_null()).then_some(old)
    }

    fn swap_target(&self, index: u32, target: usize) -> usize {
        // SAFETY: `index` is `Layout::cache_index()` of a key below
        // `max_entries`: a cache entry of the live array, which has the
        // cache since `target_offset()` is `Some`. Writers exchange it only
        // here, under `poke_mutex`; readers are the JITs' plain 64-bit loads.
        unsafe { atomic::xchg(self.entry(index), target, Full) }
    }

    fn poke_run(&self, key: u32, old: Option<Self::Prog>, new: Option<Self::Prog>) {
        let map = self.map();
        // SAFETY: `map` is valid (type invariant); its ops are static.
        if let Some(poke_run) = unsafe { (*(*map).ops).map_poke_run } {
            let old = old.unwrap_or(core::ptr::null_mut());
            let new = new.unwrap_or(core::ptr::null_mut());
            // SAFETY: Called under `poke_mutex` after the slot changed, as
            // `prog_array_map_poke_run()` expects.
            unsafe { poke_run(map, key, old.cast(), new.cast()) };
        }
    }

    fn poke_clear(&self, lo: u32, hi: u32, old: &[Option<Self::Prog>; CLEAR_CHUNK]) {
        let mut ptrs = [core::ptr::null_mut(); CLEAR_CHUNK];
        for (p, o) in ptrs.iter_mut().zip(old.iter()) {
            *p = o.unwrap_or(core::ptr::null_mut());
        }
        // SAFETY: `self.0` is valid (type invariant). Called by `clear()`
        // under `poke_mutex` after slots `lo..hi` were emptied, with their
        // old programs from `ptrs[0]` on, as `bpf_prog_array_poke_clear()`
        // expects; `clear()` checked `hi - lo <= CLEAR_CHUNK`.
        unsafe { bindings::bpf_prog_array_poke_clear(self.map(), lo, hi, ptrs.as_mut_ptr()) };
    }

    fn put(&self, old: Self::Prog, need_defer: bool) {
        let map = self.map();
        // SAFETY: `map` is valid (type invariant); its ops are static.
        if let Some(put) = unsafe { (*(*map).ops).map_fd_put_ptr } {
            // SAFETY: `old` was the slot's reference, now out of the array.
            unsafe { put(map, old.cast(), need_defer) };
        }
    }

    fn warn(&self, what: Refused) {
        pr_err!("prog array tail-call cache: {:?}\n", what);
        kernel::warn_on!(true);
    }
}

/// Changes slot `key` of `array` to `new` (NULL: delete), keeps its cached
/// target in step, and puts the old program; returns 1 when the slot held
/// one, 0 when it did not. See [`tailcall_cache_core::update`] for the
/// order.
///
/// Returns `-E2BIG` for a key past `max_entries` and `-EINVAL` for an
/// array whose layout is inconsistent or a program whose target does not
/// compute: then nothing changed, and the reference to `new` is still the
/// caller's to put.
///
/// # Safety
///
/// `array` is a live prog array built by `array_map_alloc()`; `new` is NULL
/// or a program the caller's reference keeps alive, which passes to the
/// array when 0 or 1 is returned; the caller does not hold `poke_mutex`.
#[export]
pub unsafe extern "C" fn bpf_tailcall_cache_update(
    array: *mut bindings::bpf_array,
    key: u32,
    new: *mut bindings::bpf_prog,
    need_defer: bool,
) -> c_int {
    // INVARIANT: Guaranteed by the caller.
    let a = Array(array);
    match tailcall_cache_core::update(&a, key, (!new.is_null()).then_some(new), need_defer) {
        Ok(held) => c_int::from(held),
        Err(Refused::BadKey) => E2BIG.to_errno(),
        Err(Refused::BadLayout | Refused::BadTarget) => EINVAL.to_errno(),
    }
}

/// Empties slots `lo..hi` of `array` (at most `PROG_ARRAY_CLEAR_CHUNK`)
/// as one change, their cached targets with them, and puts their
/// programs; returns how many held one. See [`tailcall_cache_core::clear`]
/// for the order.
///
/// Returns `-E2BIG` for a range past `max_entries` or longer than
/// `PROG_ARRAY_CLEAR_CHUNK` and `-EINVAL` for an array whose layout is
/// inconsistent: then nothing changed.
///
/// # Safety
///
/// `array` is a live prog array built by `array_map_alloc()`; the caller
/// does not hold `poke_mutex`.
#[export]
pub unsafe extern "C" fn bpf_tailcall_cache_clear(
    array: *mut bindings::bpf_array,
    lo: u32,
    hi: u32,
    need_defer: bool,
) -> c_int {
    // INVARIANT: Guaranteed by the caller.
    let a = Array(array);
    match tailcall_cache_core::clear(&a, lo, hi, need_defer) {
        Ok(held) => c_int::try_from(held).unwrap_or(c_int::MAX),
        Err(Refused::BadKey) => E2BIG.to_errno(),
        Err(Refused::BadLayout | Refused::BadTarget) => EINVAL.to_errno(),
    }
}

const _: () = assert!(CLEAR_CHUNK == bindings::PROG_ARRAY_CLEAR_CHUNK as usize);

/// Whether a tail call through `map`, which the verifier knows, may
/// compare the index against `max_entries` as an immediate and jump
/// through the cached target; fills `*tc` when it may.
///
/// # Safety
///
/// `map` is a live map; `tc` is valid for writes.
#[export]
pub unsafe extern "C" fn bpf_tailcall_cache_jit_site(
    map: *const bindings::bpf_map,
    tc: *mut bindings::bpf_tail_call_cached,
) -> bool {
    if target_offset().is_none() {
        return false;
    }
    // SAFETY: `map` is live (caller); `map_type` is set at creation.
    if unsafe { (*map).map_type } != bindings::bpf_map_type_BPF_MAP_TYPE_PROG_ARRAY {
        return false;
    }
    // SAFETY: A prog array's map is the `map` member of its `bpf_array`.
    let array = unsafe { kernel::container_of!(map.cast_mut(), bindings::bpf_array, map) };
    // SAFETY: `array` is live; both fields are set at creation.
    let (max_entries, index_mask) = unsafe { ((*array).map.max_entries, (*array).index_mask) };
    let site = Layout::of_array(max_entries, index_mask)
        .ok()
        .and_then(|l| l.jit_site(u32::try_from(PTRS_OFFSET).ok()?));
    let Some(site) = site else {
        return false;
    };
    // SAFETY: The caller guarantees `tc` is valid for writes.
    unsafe {
        (*tc).max_entries = site.max_entries;
        (*tc).cache_disp = site.cache_disp;
    }
    true
}

#[kunit_tests(bpf_tailcall_cache)]
mod tests {
    use super::*;
    use core::mem::MaybeUninit;
    use core::sync::atomic::{AtomicU32, Ordering};

    /// A zeroed prog array of `max_entries` (no aux, no ops).
    fn array(max_entries: u32) -> bindings::bpf_array {
        // SAFETY: All-zero is a valid `bpf_array`: integers, raw pointers
        // and `Option`s of function pointers.
        let mut a: bindings::bpf_array = unsafe { MaybeUninit::zeroed().assume_init() };
        a.map.map_type = bindings::bpf_map_type_BPF_MAP_TYPE_PROG_ARRAY;
        a.map.max_entries = max_entries;
        a.index_mask = max_entries.next_power_of_two() - 1;
        a
    }

    fn site(a: &bindings::bpf_array) -> Option<(u32, i32)> {
        let mut tc = bindings::bpf_tail_call_cached {
            max_entries: 0,
            cache_disp: 0,
        };
        // SAFETY: `a` and `tc` are valid for the call.
        unsafe { bpf_tailcall_cache_jit_site(&a.map, &mut tc) }
            .then_some((tc.max_entries, tc.cache_disp))
    }

    #[test]
    fn jit_site() {
        let off = PTRS_OFFSET as i64;
        for (max, slots) in [(1u32, 1i64), (5, 8), (1 << 27, 1 << 27)] {
            let want = target_offset().map(|_| (max, i32::try_from(off + 8 * slots).unwrap()));
            assert_eq!(site(&array(max)), want);
        }
        // 2^28 slots: a 4 GiB array whose cache is out of disp32 reach.
        assert_eq!(site(&array(1 << 28)), None);
        assert_eq!(site(&array(1 << 30)), None);
        // Not a prog array, or an index_mask that does not fit.
        let mut a = array(4);
        a.map.map_type = bindings::bpf_map_type_BPF_MAP_TYPE_ARRAY;
        assert_eq!(site(&a), None);
        let mut a = array(4);
        a.index_mask = 7;
        assert_eq!(site(&a), None);
    }

    #[test]
    fn ptrs_size() {
        let mut size = 0u64;
        // SAFETY: `size` is valid for writes.
        let err = unsafe { bpf_tailcall_cache_ptrs_size((1 << 30) + 1, &mut size) };
        if target_offset().is_none() {
            assert_eq!(err, EOPNOTSUPP.to_errno());
            return;
        }
        assert_eq!(err, E2BIG.to_errno());
        // SAFETY: As above.
        assert_eq!(
            unsafe { bpf_tailcall_cache_ptrs_size(0, &mut size) },
            EINVAL.to_errno()
        );
        // SAFETY: As above.
        assert_eq!(unsafe { bpf_tailcall_cache_ptrs_size(5, &mut size) }, 0);
        assert_eq!(size, 2 * 8 * 8);
    }

    static PUTS: AtomicU32 = AtomicU32::new(0);
    static POKES: AtomicU32 = AtomicU32::new(0);

    unsafe extern "C" fn poke_run(
        _map: *mut bindings::bpf_map,
        _key: u32,
        _old: *mut bindings::bpf_prog,
        _new: *mut bindings::bpf_prog,
    ) {
        POKES.fetch_add(1, Ordering::Relaxed);
    }

    unsafe extern "C" fn put(
        _map: *mut bindings::bpf_map,
        _ptr: *mut kernel::ffi::c_void,
        _need_defer: bool,
    ) {
        PUTS.fetch_add(1, Ordering::Relaxed);
    }

    /// A program whose image starts at `func`.
    fn prog(func: usize) -> bindings::bpf_prog {
        // SAFETY: All-zero is a valid `bpf_prog` header.
        let mut p: bindings::bpf_prog = unsafe { MaybeUninit::zeroed().assume_init() };
        p.set_jited(1);
        // SAFETY: A function pointer may hold any non-null address; it is
        // never called, only added to.
        p.bpf_func = unsafe { core::mem::transmute::<usize, _>(func) };
        p
    }

    /// The update step on a real allocation of a prog array: the target
    /// of each slot follows its program, and a key past `max_entries` or a
    /// target that does not compute is refused with nothing changed.
    #[test]
    fn update() {
        let Some(off) = target_offset() else {
            return;
        };
        let max = 3u32;
        let l = Layout::new(max).unwrap();
        let size = PTRS_OFFSET + l.ptrs_bytes() as usize;
        // SAFETY: `bpf_map_area_alloc()` returns zeroed memory or NULL.
        let mem = unsafe { bindings::bpf_map_area_alloc(size as u64, bindings::NUMA_NO_NODE) };
        assert!(!mem.is_null());
        let raw = mem.cast::<bindings::bpf_array>();
        // SAFETY: All-zero is a valid `bpf_array_aux` and `bpf_map_ops`.
        let mut aux: bindings::bpf_array_aux = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: As above.
        let mut ops: bindings::bpf_map_ops = unsafe { MaybeUninit::zeroed().assume_init() };
        ops.map_poke_run = Some(poke_run);
        ops.map_fd_put_ptr = Some(put);
        let key = kernel::static_lock_class!();
        // SAFETY: `aux.poke_mutex` is valid and not yet initialised.
        unsafe {
            bindings::__mutex_init(
                &mut aux.poke_mutex,
                c"tailcall_cache_test".as_ptr().cast(),
                key.as_ptr(),
            )
        };
        // SAFETY: `raw` is a zeroed allocation large enough for the array.
        unsafe {
            (*raw).map = array(max).map;
            (*raw).index_mask = l.index_mask();
            (*raw).map.ops = &ops;
            (*raw).aux = &mut aux;
        }
        let a = Array(raw);
        let entry = |k: u32| {
            // SAFETY: A cache entry of the live test array; no writer runs.
            unsafe { *a.entry(l.cache_index(k).unwrap()) }
        };
        let mut good = prog(0x1000);
        let mut bad = prog(usize::MAX - 1);
        PUTS.store(0, Ordering::Relaxed);
        POKES.store(0, Ordering::Relaxed);
        // SAFETY: `raw` is the test array; the programs outlive it.
        unsafe {
            assert_eq!(bpf_tailcall_cache_update(raw, 1, &mut good, false), 0);
            assert_eq!(entry(1), 0x1000 + off as usize);
            // A target that does not compute: refused, nothing changed.
            assert_eq!(
                bpf_tailcall_cache_update(raw, 1, &mut bad, false),
                EINVAL.to_errno()
            );
            assert_eq!(entry(1), 0x1000 + off as usize);
            assert_eq!(
                bpf_tailcall_cache_update(raw, 1, core::ptr::null_mut(), true),
                1
            );
            assert_eq!(entry(1), 0);
            assert_eq!(
                bpf_tailcall_cache_update(raw, 1, core::ptr::null_mut(), true),
                0
            );
            // Past max_entries: refused, nothing changed.
            assert_eq!(
                bpf_tailcall_cache_update(raw, max, &mut good, false),
                E2BIG.to_errno()
            );
        }
        assert_eq!(entry(0), 0);
        assert_eq!(entry(2), 0);
        // Only the delete of good put a program; the refusals poked nothing.
        assert_eq!(PUTS.load(Ordering::Relaxed), 1);
        assert_eq!(POKES.load(Ordering::Relaxed), 3);

        // The deferred clear's step: slots 0 and 2 filled, then all three
        // emptied as one change (no direct tail call is tracked: an empty
        // poke_progs), their targets with them; a range past max_entries
        // or longer than PROG_ARRAY_CLEAR_CHUNK is refused.
        let progs = &raw mut aux.poke_progs;
        // SAFETY: `progs` is the test aux's list head: INIT_LIST_HEAD().
        unsafe {
            (*progs).next = progs;
            (*progs).prev = progs;
        }
        let mut other = prog(0x2000);
        // SAFETY: `raw` is the test array; the programs outlive it.
        unsafe {
            assert_eq!(bpf_tailcall_cache_update(raw, 0, &mut good, false), 0);
            assert_eq!(bpf_tailcall_cache_update(raw, 2, &mut other, false), 0);
            assert_eq!(entry(2), 0x2000 + off as usize);
            assert_eq!(
                bpf_tailcall_cache_clear(raw, 0, max + 1, true),
                E2BIG.to_errno()
            );
            assert_eq!(entry(2), 0x2000 + off as usize);
            assert_eq!(bpf_tailcall_cache_clear(raw, 0, max, true), 2);
            assert_eq!(bpf_tailcall_cache_clear(raw, 0, max, true), 0);
        }
        for k in 0..max {
            assert_eq!(entry(k), 0);
        }
        assert_eq!(PUTS.load(Ordering::Relaxed), 3);
        // SAFETY: Allocated above, no longer used.
        unsafe { bindings::bpf_map_area_free(mem) };
    }
}

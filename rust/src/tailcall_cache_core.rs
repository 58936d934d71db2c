// SPDX-License-Identifier: GPL-2.0

//! Tail-call target cache of BPF prog arrays: layout, jump targets, the
//! JIT's choice of sequence, and the update step of a slot.
//!
//! A prog array keeps, after its program slots in `ptrs[]`, the ready jump
//! target of the program in each slot (`prog->bpf_func` plus the arch's
//! tail-call entry offset). For a tail call whose prog array the verifier
//! knows, the JIT compares the index against `max_entries` as an immediate
//! and jumps through the cached target, without loading `map.max_entries`
//! or `prog->bpf_func` at run time.
//!
//! This file is shared verbatim between the host test crate (`rust/src/`)
//! and the kernel (`kernel/bpf/`). It has no dependencies, no `unsafe`, no
//! allocation and no panicking path.
//!
//! Only 64-bit architectures (x86-64, arm64) use it, see [`PTR_SIZE`].

#![forbid(unsafe_code)]

/// Size in bytes of one `ptrs[]` entry on the supported 64-bit arches.
pub const PTR_SIZE: u64 = 8;

/// Largest `max_entries` of a prog array with a target cache.
///
/// Without the cache, `array_map_alloc()` accepts up to 2^31 entries for
/// an array masked against Spectre v1 and any `max_entries` it can
/// allocate for one that bypasses the masking; with the cache the pointer
/// array is `2 * roundup_pow_of_two(max_entries)` entries, so prog arrays
/// are limited to 2^30 entries (2^31 pointers, 16 GiB), and a larger
/// `max_entries` is refused with `-E2BIG`.
pub const MAX_ENTRIES: u32 = 1 << 30;

/// Errors of the layout computation, as kernel errno values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// `max_entries == 0`, or an `index_mask` that is not the one of
    /// `max_entries` (`-EINVAL`).
    Inval,
    /// `max_entries` above [`MAX_ENTRIES`] (`-E2BIG`).
    TooBig,
}

/// Layout of a prog array's `ptrs[]` with the target cache.
///
/// With `N = index_mask + 1` (`max_entries` rounded up to a power of two,
/// as `array_map_alloc()` computes `index_mask`):
///
/// ```text
///   ptrs[0 .. max_entries)   the slots (struct bpf_prog *)
///   ptrs[max_entries .. N)   NULL padding
///   ptrs[N .. 2 * N)         the cached targets, ptrs[N + i] for slot i
/// ```
///
/// The cache starts at `N` whether or not the Spectre v1 mitigation
/// rounded the slots up, so the JIT and the update step derive it from the
/// map alone.
///
/// # Speculation
///
/// For an array that does not bypass Spectre v1 masking the verifier
/// bounds-checks the index against `max_entries` and masks it with
/// `index_mask` before the tail call, so a mispredicted bounds check can
/// only use `i & index_mask < N`:
///
/// * the legacy sequence's `ptrs[i & index_mask]` reads a slot or NULL
///   padding, never a cached code address;
/// * the cached sequence's `ptrs[N + (i & index_mask)]` stays inside the
///   allocation and reads a target or 0 (padding entries are never set,
///   see [`Layout::cache_index`]).
///
/// An array that bypasses the masking (created with `CAP_PERFMON`) has
/// only the architectural bounds check, as it has for `ptrs[]` today: a
/// speculated `ptrs[i]` with `i >= N` may now read a code address where it
/// read the next heap object before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    max_entries: u32,
    index_mask: u32,
}

/// The JIT's tail-call sequence for a prog array it knows: the bound is
/// an immediate and the target is loaded from `array + cache_disp +
/// index * 8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitSite {
    /// `map.max_entries`, compared against the index as an immediate.
    pub max_entries: u32,
    /// Byte offset of the cache (`ptrs[N]`) from the `struct bpf_array`.
    pub cache_disp: i32,
}

impl Layout {
    /// The layout of a prog array of `max_entries`; checked once, when the
    /// array is allocated.
    ///
    /// # Errors
    ///
    /// [`Error::Inval`] for 0, [`Error::TooBig`] above [`MAX_ENTRIES`].
    pub fn new(max_entries: u32) -> Result<Self, Error> {
        if max_entries == 0 {
            return Err(Error::Inval);
        }
        if max_entries > MAX_ENTRIES {
            return Err(Error::TooBig);
        }
        let slots = max_entries
            .checked_next_power_of_two()
            .ok_or(Error::TooBig)?;
        Ok(Layout {
            max_entries,
            index_mask: slots.wrapping_sub(1),
        })
    }

    /// The layout of an allocated array, from its `max_entries` and
    /// `index_mask`, which must agree.
    ///
    /// # Errors
    ///
    /// As [`Layout::new`], and [`Error::Inval`] when `index_mask` is not
    /// the one of `max_entries`.
    pub fn of_array(max_entries: u32, index_mask: u32) -> Result<Self, Error> {
        let l = Layout::new(max_entries)?;
        if l.index_mask != index_mask {
            return Err(Error::Inval);
        }
        Ok(l)
    }

    /// `roundup_pow_of_two(max_entries) - 1`.
    #[must_use]
    pub fn index_mask(&self) -> u32 {
        self.index_mask
    }

    /// `N`: the slots with their padding, and the first cache entry.
    #[must_use]
    pub fn slots(&self) -> u32 {
        // index_mask < MAX_ENTRIES, so this cannot wrap.
        self.index_mask.wrapping_add(1)
    }

    /// Entries of `ptrs[]`: slots, padding and cache (`2 * N`).
    #[must_use]
    pub fn total_ptrs(&self) -> u64 {
        u64::from(self.slots()).saturating_mul(2)
    }

    /// Bytes of `ptrs[]` (what `array_map_alloc()` allocates after the
    /// `struct bpf_array` and `array_map_mem_usage()` reports).
    #[must_use]
    pub fn ptrs_bytes(&self) -> u64 {
        self.total_ptrs().saturating_mul(PTR_SIZE)
    }

    /// Index in `ptrs[]` of the cache entry of slot `key`, for
    /// `key < max_entries` only: the padding's entries are never set.
    #[must_use]
    pub fn cache_index(&self, key: u32) -> Option<u32> {
        if key < self.max_entries {
            self.slots().checked_add(key)
        } else {
            None
        }
    }

    /// The JIT's cached sequence for this array, when the cache's
    /// displacement from the array, `ptrs_offset + 8 * N`, fits a signed
    /// 32-bit field (x86-64's disp32; arm64 uses the same bound); `None`
    /// means the legacy sequence.
    #[must_use]
    pub fn jit_site(&self, ptrs_offset: u32) -> Option<JitSite> {
        let disp = u64::from(self.slots())
            .checked_mul(PTR_SIZE)?
            .checked_add(u64::from(ptrs_offset))?;
        Some(JitSite {
            max_entries: self.max_entries,
            cache_disp: i32::try_from(disp).ok()?,
        })
    }
}

/// The jump target of a JITed program entered by a tail call:
/// `bpf_func + offset`, or `None` if that wraps.
#[must_use]
pub fn jump_target(bpf_func: usize, offset: u32) -> Option<usize> {
    bpf_func.checked_add(usize::try_from(offset).ok()?)
}

/// Why [`update`] refused a change. Nothing was changed: the slot, its
/// cached target and the direct tail calls are as they were, and the
/// caller keeps its reference to the new program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The key is past `max_entries` (`-E2BIG`, what `arraymap.c` answers
    /// for such a key before it calls [`update`]).
    BadKey,
    /// The array has a cache but its `max_entries` and `index_mask`
    /// disagree (`-EINVAL`). `array_map_alloc()` never builds such an
    /// array: [`update`] warns.
    BadLayout,
    /// The new program's jump target does not compute (`-EINVAL`).
    BadTarget,
}

/// A prog array, as the update step sees it. The kernel implements it on
/// `struct bpf_array`; the host's model checker on a model of it.
pub trait ProgArray {
    /// A program reference (the `struct bpf_prog *` a slot owns).
    type Prog: Copy + PartialEq;

    /// The array's `max_entries`: its slots.
    fn max_entries(&self) -> u32;
    /// The layout of the array's slots and cache, from its `max_entries`
    /// and `index_mask` (only asked when it has a cache).
    fn layout(&self) -> Result<Layout, Error>;
    /// The arch's tail-call entry offset, `None` when the arch does not
    /// JIT the cache: the array then has no cache.
    fn target_offset(&self) -> Option<u32>;
    /// `prog->bpf_func` of a JITed program, `None` for an interpreted one
    /// (its callers never read the cache: a prog array never mixes JITed
    /// and interpreted programs).
    fn bpf_func(&self, prog: Self::Prog) -> Option<usize>;
    /// Take the array's `poke_mutex`.
    fn lock(&self);
    /// Drop it.
    fn unlock(&self);
    /// `xchg(&ptrs[key], new)`, fully ordered; returns the old program.
    fn swap_slot(&self, key: u32, new: Option<Self::Prog>) -> Option<Self::Prog>;
    /// `xchg(&ptrs[index], target)`, fully ordered, for a cache entry.
    fn swap_target(&self, index: u32, target: usize) -> usize;
    /// Patch the direct tail calls into slot `key` (`map_poke_run`).
    fn poke_run(&self, key: u32, old: Option<Self::Prog>, new: Option<Self::Prog>);
    /// Patch the direct tail calls into slots `lo..hi`, emptied, whose
    /// programs were `old[key - lo]`, as one change
    /// (`bpf_prog_array_poke_clear()`: one wait, two text poke batches).
    fn poke_clear(&self, lo: u32, hi: u32, old: &[Option<Self::Prog>; CLEAR_CHUNK]);
    /// Drop the slot's reference to `old` (`map_fd_put_ptr`): its image is
    /// freed after an RCU grace period (RCU tasks trace for sleepable
    /// programs).
    fn put(&self, old: Self::Prog, need_defer: bool);
    /// `WARN_ONCE()`: only for what cannot happen ([`Refused::BadLayout`]).
    fn warn(&self, what: Refused);
}

/// What [`update`] decides before it changes anything: the slot's cache
/// index and the new program's target (0 for none or an interpreted
/// program), `None` when the array has no cache.
///
/// # Errors
///
/// As [`update`].
pub fn plan_update<A: ProgArray>(
    a: &A,
    key: u32,
    new: Option<A::Prog>,
) -> Result<Option<(u32, usize)>, Refused> {
    if key >= a.max_entries() {
        return Err(Refused::BadKey);
    }
    // An array without a cache keeps any size it was built with.
    let Some(offset) = a.target_offset() else {
        return Ok(None);
    };
    let Some(index) = a.layout().ok().and_then(|l| l.cache_index(key)) else {
        a.warn(Refused::BadLayout);
        return Err(Refused::BadLayout);
    };
    let target = match new.and_then(|p| a.bpf_func(p)) {
        None => 0,
        Some(func) => jump_target(func, offset).ok_or(Refused::BadTarget)?,
    };
    Ok(Some((index, target)))
}

/// Changes slot `key` of a prog array to `new` (`None`: delete) and keeps
/// its cached target in step; returns whether the slot held a program.
///
/// The order is the protocol that keeps a reader of the cache out of
/// freed memory:
///
/// 1. under `poke_mutex`, the slot is exchanged, then its cache entry is
///    set to the new program's target (0 for none), then the direct tail
///    calls are patched, and the mutex is dropped;
/// 2. only then is the old program put. `bpf_prog_put()` frees its image
///    after an RCU grace period (RCU tasks trace for sleepable programs; a
///    prog array never mixes the two), and every tail call runs inside the
///    matching read-side section. A reader that loaded the old target
///    (one plain load of the entry, then the jump) has left the image
///    before it is freed, and no reader can load the old target after the
///    exchange.
///
/// Everything that can refuse the change is decided before step 1, so the
/// change is made whole or not at all.
///
/// # Errors
///
/// [`Refused`]: a key past `max_entries`, an array with a cache whose
/// layout is inconsistent (warned: `arraymap.c` built it, so it cannot
/// happen), or a new program whose target does not compute. Nothing was
/// changed and the caller still owns its reference to `new`.
pub fn update<A: ProgArray>(
    a: &A,
    key: u32,
    new: Option<A::Prog>,
    need_defer: bool,
) -> Result<bool, Refused> {
    let cache = plan_update(a, key, new)?;
    a.lock();
    let old = a.swap_slot(key, new);
    if let Some((index, target)) = cache {
        a.swap_target(index, target);
    }
    a.poke_run(key, old, new);
    a.unlock();
    match old {
        Some(prog) => {
            a.put(prog, need_defer);
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Slots [`clear`] empties as one change: `PROG_ARRAY_CLEAR_CHUNK` of
/// `arraymap.c`, which the deferred clear of a prog array passes.
pub const CLEAR_CHUNK: usize = 32;

/// Empties slots `lo..hi` of a prog array, at most [`CLEAR_CHUNK`] of them,
/// as one change (the deferred clear, when the array's last user reference
/// goes); returns how many held a program.
///
/// The order is [`update`]'s, for all of the slots at once: under
/// `poke_mutex`, each slot is exchanged with `None` and its cache entry set
/// to 0, then the direct tail calls into all of them are patched
/// ([`ProgArray::poke_clear`]), the mutex is dropped, and only then are the
/// old programs put.
///
/// # Errors
///
/// [`Refused::BadKey`] for a range that is past `max_entries`, reversed or
/// longer than [`CLEAR_CHUNK`]; [`Refused::BadLayout`] as [`update`].
/// Nothing was changed.
pub fn clear<A: ProgArray>(a: &A, lo: u32, hi: u32, need_defer: bool) -> Result<u32, Refused> {
    let n = hi.checked_sub(lo).ok_or(Refused::BadKey)?;
    if hi > a.max_entries() || usize::try_from(n).map_or(true, |n| n > CLEAR_CHUNK) {
        return Err(Refused::BadKey);
    }
    let mut index = [None; CLEAR_CHUNK];
    for (key, i) in (lo..hi).zip(index.iter_mut()) {
        *i = plan_update(a, key, None)?.map(|(index, _)| index);
    }
    let mut old = [None; CLEAR_CHUNK];
    a.lock();
    for ((key, i), o) in (lo..hi).zip(index.iter()).zip(old.iter_mut()) {
        *o = a.swap_slot(key, None);
        if let Some(index) = *i {
            a.swap_target(index, 0);
        }
    }
    a.poke_clear(lo, hi, &old);
    a.unlock();
    let mut held: u32 = 0;
    for prog in old.iter().flatten() {
        a.put(*prog, need_defer);
        held = held.saturating_add(1);
    }
    Ok(held)
}

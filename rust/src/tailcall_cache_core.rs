// SPDX-License-Identifier: GPL-2.0

//! Core logic of the BPF prog-array tail-call target cache.
//!
//! A prog array (C `struct bpf_array`) keeps, after its program slots in
//! `ptrs[]`, a second array of cached jump targets
//! (`prog->bpf_func + arch prologue offset`). The JIT uses those targets for
//! tail calls whose map is known at verification time: it compares the index
//! against `max_entries` as an immediate and jumps through the cached target
//! without dereferencing the `struct bpf_prog`.
//!
//! This file is shared verbatim between the host test crate of the series
//! (`rust/src/`) and the kernel (`kernel/bpf/`). It therefore has no dependencies,
//! no `unsafe`, performs no allocation and has no panicking path: every
//! fallible computation uses checked arithmetic and returns [`Result`] or
//! [`Option`].
//!
//! Only 64-bit architectures (x86-64, arm64) are supported, see [`PTR_SIZE`].

#![forbid(unsafe_code)]

/// Size in bytes of one `ptrs[]` entry (a pointer) on the supported 64-bit
/// architectures.
pub const PTR_SIZE: u64 = 8;

/// `EINVAL` errno value.
const EINVAL: i32 = 22;
/// `E2BIG` errno value.
const E2BIG: i32 = 7;
/// `EOVERFLOW` errno value.
const EOVERFLOW: i32 = 75;

/// Errors reported by the cache core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// An argument is malformed (maps to `-EINVAL`).
    InvalidArgument,
    /// A size or index is out of the representable or allowed range
    /// (maps to `-E2BIG`).
    OutOfRange,
    /// An address computation wrapped around (maps to `-EOVERFLOW`).
    Overflow,
}

impl Error {
    /// Returns the negative kernel errno corresponding to this error.
    #[must_use]
    pub fn to_errno(self) -> i32 {
        match self {
            Error::InvalidArgument => -EINVAL,
            Error::OutOfRange => -E2BIG,
            Error::Overflow => -EOVERFLOW,
        }
    }
}

// ---------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------

/// Memory layout of a prog array's `ptrs[]` including the jump-target cache.
///
/// `array_map_alloc()` computes
/// `index_mask = roundup_pow_of_two(max_entries) - 1` and, when the Spectre
/// v1 mitigation is on (`!bypass_spec_v1`), allocates
/// `alloc_entries = index_mask + 1` program slots, the slots
/// `max_entries..alloc_entries` being zero (NULL) padding. Otherwise
/// `alloc_entries == max_entries`.
///
/// The kernel always uses the padded layout for a prog array
/// (`Layout::for_prog_array(max_entries, true)`), whether or not the
/// mitigation rounded the slots: the cache then starts at
/// `array->index_mask + 1`, which a JIT and the update path can derive
/// from the map alone.
///
/// The cache occupies pointer indices `alloc_entries..2 * alloc_entries` of
/// `ptrs[]`: it starts *after* all (possibly padded) program slots and has
/// `alloc_entries` entries.
///
/// # Speculation argument
///
/// With the mitigation on, the verifier rewrites a tail call so that the
/// index is bounds-checked against `max_entries` and then masked with
/// `index_mask`. A mis-predicted bounds check can therefore only let the CPU
/// use `idx & index_mask`, which is `<= index_mask < alloc_entries`.
///
/// * A speculative read of `ptrs[idx & index_mask]` (the legacy sequence)
///   hits either a real program slot or NULL padding. It can never land in
///   the cache region (which starts at `alloc_entries`), so it never yields a
///   code address that would then be dereferenced as a `struct bpf_prog *`.
/// * A speculative read of the cache at `cache_base + (idx & index_mask)`
///   stays below `cache_base + alloc_entries == 2 * alloc_entries`, i.e.
///   inside the allocation. It yields either a cached target of a real slot
///   or 0 from the padding entries (which are never published, since
///   [`publish`] rejects keys `>= max_entries`).
///
/// Without the mitigation no masking happens and the architectural bounds
/// check against `max_entries` is the only protection, exactly as for the
/// existing `ptrs[]` access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    max_entries: u32,
    alloc_entries: u32,
}

impl Layout {
    /// Validates and creates a layout.
    ///
    /// Requirements: `max_entries >= 1`; `alloc_entries >= max_entries`;
    /// either `alloc_entries == max_entries` or `alloc_entries` is a power of
    /// two smaller than `2 * max_entries` (the Spectre rounding). Violations
    /// return [`Error::InvalidArgument`]. The total pointer count
    /// `2 * alloc_entries` must fit in a `u32`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an inconsistent pair,
    /// [`Error::OutOfRange`] if the pointer count does not fit a `u32`.
    pub fn new(max_entries: u32, alloc_entries: u32) -> Result<Self, Error> {
        if max_entries == 0 || alloc_entries < max_entries {
            return Err(Error::InvalidArgument);
        }
        if alloc_entries != max_entries {
            let twice_max = u64::from(max_entries).saturating_mul(2);
            if !alloc_entries.is_power_of_two() || u64::from(alloc_entries) >= twice_max {
                return Err(Error::InvalidArgument);
            }
        }
        if alloc_entries.checked_mul(2).is_none() {
            return Err(Error::OutOfRange);
        }
        Ok(Layout {
            max_entries,
            alloc_entries,
        })
    }

    /// Mirrors the sizing done by `array_map_alloc()` for a prog array.
    ///
    /// `index_mask = next_power_of_two(max_entries) - 1` is computed in
    /// `u64`; `alloc_entries` is `index_mask + 1` when `spectre_pad` is set
    /// (Spectre v1 mitigation on) and `max_entries` otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for `max_entries == 0`,
    /// [`Error::OutOfRange`] when the allocation does not fit (like the
    /// `-E2BIG` of `array_map_alloc()`).
    pub fn for_prog_array(max_entries: u32, spectre_pad: bool) -> Result<Self, Error> {
        if max_entries == 0 {
            return Err(Error::InvalidArgument);
        }
        let alloc = if spectre_pad {
            let rounded = u64::from(max_entries)
                .checked_next_power_of_two()
                .ok_or(Error::OutOfRange)?;
            u32::try_from(rounded).map_err(|_| Error::OutOfRange)?
        } else {
            max_entries
        };
        Layout::new(max_entries, alloc)
    }

    /// Number of usable program slots (the map's `max_entries`).
    #[must_use]
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    /// Number of allocated program slots (`max_entries` plus padding).
    #[must_use]
    pub fn alloc_entries(&self) -> u32 {
        self.alloc_entries
    }

    /// `next_power_of_two(max_entries) - 1`, as computed by
    /// `array_map_alloc()`.
    #[must_use]
    pub fn index_mask(&self) -> u32 {
        // A valid layout has max_entries <= alloc_entries < 2^31, so the
        // rounding never fails; saturate defensively anyway.
        self.max_entries
            .checked_next_power_of_two()
            .map_or(u32::MAX, |p| p.saturating_sub(1))
    }

    /// First pointer index of the cache in `ptrs[]` (equals
    /// `alloc_entries`).
    #[must_use]
    pub fn cache_base(&self) -> u32 {
        self.alloc_entries
    }

    /// Total number of pointers in `ptrs[]`: slots plus cache.
    #[must_use]
    pub fn total_ptrs(&self) -> u64 {
        u64::from(self.alloc_entries).saturating_mul(2)
    }

    /// Bytes taken by the cache, to be added by `array_map_mem_usage()`.
    #[must_use]
    pub fn cache_bytes(&self) -> u64 {
        u64::from(self.alloc_entries).saturating_mul(PTR_SIZE)
    }

    /// Pointer index in `ptrs[]` of the cache entry for `key`, if
    /// `key < alloc_entries`.
    #[must_use]
    pub fn cache_index(&self, key: u32) -> Option<u32> {
        if key < self.alloc_entries {
            self.cache_base().checked_add(key)
        } else {
            None
        }
    }

    /// Byte displacement from the start of `struct bpf_array` to cache entry
    /// 0, given `ptrs_offset = offsetof(struct bpf_array, ptrs)`.
    #[must_use]
    pub fn cache_disp_u64(&self, ptrs_offset: u32) -> u64 {
        u64::from(self.cache_base())
            .saturating_mul(PTR_SIZE)
            .saturating_add(u64::from(ptrs_offset))
    }

    /// Like [`Layout::cache_disp_u64`], but returns `None` if the
    /// displacement does not fit an `i32` (the x86-64 `disp32` encoding).
    #[must_use]
    pub fn cache_disp32(&self, ptrs_offset: u32) -> Option<i32> {
        i32::try_from(self.cache_disp_u64(ptrs_offset)).ok()
    }
}

// ---------------------------------------------------------------------------
// Jump target
// ---------------------------------------------------------------------------

/// Computes the cached jump target `bpf_func + prologue_offset`.
///
/// `bpf_func == 0` (no program) yields `Ok(0)`, the "empty" target.
///
/// # Errors
///
/// [`Error::Overflow`] if the addition wraps.
pub fn jump_target(bpf_func: u64, prologue_offset: u32) -> Result<u64, Error> {
    if bpf_func == 0 {
        return Ok(0);
    }
    bpf_func
        .checked_add(u64::from(prologue_offset))
        .ok_or(Error::Overflow)
}

// ---------------------------------------------------------------------------
// Tail-call `imm` codec
// ---------------------------------------------------------------------------

/// Bit 31 of the tail call's `imm`: the call site uses a map known at
/// verification time (a "static" map).
pub const STATIC_FLAG: u32 = 1 << 31;

/// Number of low `imm` bits holding the index into `prog->aux->used_maps[]`
/// for a static site.
pub const MAP_INDEX_BITS: u32 = 16;

/// Mask of the map-index bits of a static site's `imm`.
const MAP_INDEX_MASK: u32 = (1 << MAP_INDEX_BITS) - 1;

/// Bits 16..=30 of a static site's `imm`; they must be zero.
const RESERVED_MASK: u32 = !(STATIC_FLAG | MAP_INDEX_MASK);

/// Kind of tail-call site, as encoded in the instruction's `imm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// `imm == 0`: dynamic sequence loading `max_entries` and
    /// `prog->bpf_func` at run time (also used by programs built outside
    /// the verifier, e.g. `lib/test_bpf`).
    Legacy,
    /// `imm > 0`: direct tail call patched through the poke table.
    Direct {
        /// Index into `prog->aux->poke_tab[]` (`imm - 1`).
        poke_index: u32,
    },
    /// `imm < 0`: tail call through the jump-target cache of a map known at
    /// verification time.
    Static {
        /// Index into `prog->aux->used_maps[]`.
        map_index: u32,
    },
    /// Malformed or out-of-range `imm`.
    Invalid,
}

/// Reinterprets the bits of a `u32` as an `i32`.
fn u32_bits_to_i32(v: u32) -> i32 {
    i32::from_ne_bytes(v.to_ne_bytes())
}

/// Reinterprets the bits of an `i32` as a `u32`.
fn i32_bits_to_u32(v: i32) -> u32 {
    u32::from_ne_bytes(v.to_ne_bytes())
}

/// Encodes a direct (poke table) site: `poke_index + 1`.
///
/// Returns 0 (legacy site) if the result does not fit `1..=i32::MAX`; the
/// index is never truncated.
#[must_use]
pub fn encode_direct(poke_index: u32) -> i32 {
    poke_index
        .checked_add(1)
        .and_then(|v| i32::try_from(v).ok())
        .unwrap_or(0)
}

/// Encodes a static-map site: `STATIC_FLAG | map_index`.
///
/// Returns 0 (legacy site) if `map_index >= 1 << MAP_INDEX_BITS`; the index
/// is never truncated.
#[must_use]
pub fn encode_static(map_index: u32) -> i32 {
    if map_index > MAP_INDEX_MASK {
        return 0;
    }
    u32_bits_to_i32(STATIC_FLAG | map_index)
}

/// Decodes a tail call's `imm`.
///
/// `used_map_cnt` is `prog->aux->used_map_cnt` and `poke_tab_size` is
/// `prog->aux->size_poke_tab`. Any returned index is strictly below the
/// corresponding count; anything else yields [`Site::Invalid`].
#[must_use]
pub fn decode(imm: i32, used_map_cnt: u32, poke_tab_size: u32) -> Site {
    if imm == 0 {
        return Site::Legacy;
    }
    let bits = i32_bits_to_u32(imm);
    if bits & STATIC_FLAG == 0 {
        // Positive: 1..=i32::MAX, so `bits - 1` cannot wrap.
        return match bits.checked_sub(1) {
            Some(poke_index) if poke_index < poke_tab_size => Site::Direct { poke_index },
            _ => Site::Invalid,
        };
    }
    if bits & RESERVED_MASK != 0 {
        return Site::Invalid;
    }
    let map_index = bits & MAP_INDEX_MASK;
    if map_index < used_map_cnt {
        Site::Static { map_index }
    } else {
        Site::Invalid
    }
}

// ---------------------------------------------------------------------------
// Update protocol
// ---------------------------------------------------------------------------

/// One cache entry: a word holding a jump target (0 = empty).
pub trait TargetSlot {
    /// Fully ordered exchange (like the kernel's `xchg()`); returns the
    /// previous value.
    fn exchange(&self, new: u64) -> u64;
    /// Relaxed/plain read (for debug checks).
    fn read(&self) -> u64;
}

/// Publishes the jump target for `key` in `cache` and returns the previous
/// target.
///
/// `cache` must be the whole cache, i.e. exactly `alloc_entries` slots.
///
/// # Protocol
///
/// (a) Under the map's `poke_mutex`, the writer `xchg()`s `ptrs[key]` to the
///     new program, then calls this function to `xchg()` the cache entry to
///     [`jump_target`] of the new program (0 for a delete, see [`clear`]),
///     then runs the poke (patching of direct tail calls).
///
/// (b) Only after `poke_mutex` is dropped is the old program's reference
///     put. `bpf_prog_put()` frees the image only after an RCU grace period
///     (RCU tasks trace for sleepable programs; a prog array never mixes
///     sleepable and non-sleepable programs), and every reader of a cached
///     target runs inside the matching read-side critical section. A reader
///     that loaded the old target therefore finishes before the image is
///     freed.
///
/// (c) Readers never read both `ptrs[]` and the cache for one call, so the
///     relative order of the two exchanges is invisible to them. Both are
///     done before the syscall returns, so the next call after an update or
///     delete sees the new state.
///
/// # Errors
///
/// [`Error::InvalidArgument`] if `cache.len() != alloc_entries`;
/// [`Error::OutOfRange`] if `key >= max_entries`. No slot is touched on
/// error.
pub fn publish<S: TargetSlot>(
    layout: &Layout,
    cache: &[S],
    key: u32,
    target: u64,
) -> Result<u64, Error> {
    let alloc = usize::try_from(layout.alloc_entries()).map_err(|_| Error::InvalidArgument)?;
    if cache.len() != alloc {
        return Err(Error::InvalidArgument);
    }
    if key >= layout.max_entries() {
        return Err(Error::OutOfRange);
    }
    let idx = usize::try_from(key).map_err(|_| Error::OutOfRange)?;
    let slot = cache.get(idx).ok_or(Error::OutOfRange)?;
    Ok(slot.exchange(target))
}

/// Clears the cache entry for `key` (a [`publish`] of 0) and returns the
/// previous target. Used when a slot is deleted.
///
/// # Errors
///
/// Same as [`publish`].
pub fn clear<S: TargetSlot>(layout: &Layout, cache: &[S], key: u32) -> Result<u64, Error> {
    publish(layout, cache, key, 0)
}

/// Debug check used when the map is freed: returns the index of the first
/// non-zero cache entry, if any.
#[must_use]
pub fn first_stale<S: TargetSlot>(cache: &[S]) -> Option<u32> {
    cache
        .iter()
        .position(|slot| slot.read() != 0)
        .and_then(|i| u32::try_from(i).ok())
}

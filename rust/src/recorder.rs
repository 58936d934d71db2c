// SPDX-License-Identifier: GPL-2.0

//! A single-threaded [`ProgArray`] for host tests: a prog array of plain
//! cells that records every call [`update`](crate::update) makes.
//!
//! Host-only: it is not part of the kernel copy. It checks the locking
//! discipline as it goes and panics on a violation (an exchange or a
//! `poke_run` outside `poke_mutex`, a `put` inside it, a double lock or
//! unlock, an exchange outside its part of `ptrs[]`).

use crate::{jump_target, Error, Layout, ProgArray, Refused, CLEAR_CHUNK};
use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

/// A program of a [`Recorder`]: its index in the program table.
pub type ProgId = usize;

/// One call of the update step into its [`ProgArray`], in the order made.
// PokeClear carries its slots' programs by value, so that Call stays Copy:
// host tests only.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// [`ProgArray::lock`].
    Lock,
    /// [`ProgArray::unlock`].
    Unlock,
    /// [`ProgArray::swap_slot`], with the program it returned.
    SwapSlot {
        /// The slot.
        key: u32,
        /// The program stored.
        new: Option<ProgId>,
        /// The program returned.
        old: Option<ProgId>,
    },
    /// [`ProgArray::swap_target`], with the target it returned.
    SwapTarget {
        /// Index in `ptrs[]` of the cache entry.
        index: u32,
        /// The target stored.
        target: usize,
        /// The target returned.
        old: usize,
    },
    /// [`ProgArray::poke_run`].
    PokeRun {
        /// The slot.
        key: u32,
        /// Its old program.
        old: Option<ProgId>,
        /// Its new program.
        new: Option<ProgId>,
    },
    /// [`ProgArray::poke_clear`], with the slots' old programs.
    PokeClear {
        /// The first slot.
        lo: u32,
        /// Past the last slot.
        hi: u32,
        /// Their old programs, from `lo`.
        old: [Option<ProgId>; CLEAR_CHUNK],
    },
    /// [`ProgArray::put`].
    Put {
        /// The program put.
        prog: ProgId,
        /// As passed to the update step.
        need_defer: bool,
    },
    /// [`ProgArray::warn`].
    Warn(Refused),
}

/// A prog array of cells; programs are indices into a table of their
/// `bpf_func` (`None`: interpreted).
#[derive(Debug)]
pub struct Recorder {
    max_entries: u32,
    index_mask: u32,
    target_offset: Option<u32>,
    bpf_funcs: Vec<Option<usize>>,
    /// `ptrs[0 .. N)`: the slots and their padding.
    slots: RefCell<Vec<Option<ProgId>>>,
    /// `ptrs[N .. 2 * N)`: the cache.
    cache: RefCell<Vec<usize>>,
    locked: Cell<bool>,
    calls: RefCell<Vec<Call>>,
}

impl Recorder {
    /// An empty array of `max_entries` (small: `ptrs[]` is allocated),
    /// with the arch's `target_offset` and the programs' `bpf_func`s.
    ///
    /// # Errors
    ///
    /// As [`Layout::new`].
    pub fn new(
        max_entries: u32,
        target_offset: Option<u32>,
        bpf_funcs: Vec<Option<usize>>,
    ) -> Result<Self, Error> {
        let layout = Layout::new(max_entries)?;
        let n = usize::try_from(layout.slots()).map_err(|_| Error::TooBig)?;
        Ok(Recorder {
            max_entries,
            index_mask: layout.index_mask(),
            target_offset,
            bpf_funcs,
            slots: RefCell::new(vec![None; n]),
            cache: RefCell::new(vec![0; n]),
            locked: Cell::new(false),
            calls: RefCell::new(Vec::new()),
        })
    }

    /// Corrupts the array's `index_mask` (what [`ProgArray::layout`]
    /// reports), keeping its storage.
    #[must_use]
    pub fn with_index_mask(mut self, index_mask: u32) -> Self {
        self.index_mask = index_mask;
        self
    }

    /// The target the cache must hold for `prog` (0 for none, for an
    /// interpreted program, for an array without cache and for a target
    /// that does not compute).
    #[must_use]
    pub fn expected_target(&self, prog: Option<ProgId>) -> usize {
        let func = prog.and_then(|p| self.bpf_funcs.get(p).copied().flatten());
        match (func, self.target_offset) {
            (Some(f), Some(off)) => jump_target(f, off).unwrap_or(0),
            _ => 0,
        }
    }

    /// `ptrs[0 .. N)`.
    #[must_use]
    pub fn slots(&self) -> Vec<Option<ProgId>> {
        self.slots.borrow().clone()
    }

    /// `ptrs[N .. 2 * N)`.
    #[must_use]
    pub fn cache(&self) -> Vec<usize> {
        self.cache.borrow().clone()
    }

    /// The calls made since the last [`Recorder::take_calls`].
    #[must_use]
    pub fn take_calls(&self) -> Vec<Call> {
        self.calls.take()
    }

    /// Forgets the calls made so far.
    pub fn clear_calls(&self) {
        self.calls.borrow_mut().clear();
    }

    /// Whether `poke_mutex` is held.
    #[must_use]
    pub fn locked(&self) -> bool {
        self.locked.get()
    }

    fn record(&self, call: Call) {
        self.calls.borrow_mut().push(call);
    }

    fn assert_locked(&self, what: &str) {
        assert!(self.locked.get(), "{what} outside poke_mutex");
    }
}

impl ProgArray for Recorder {
    type Prog = ProgId;

    fn max_entries(&self) -> u32 {
        self.max_entries
    }

    fn layout(&self) -> Result<Layout, Error> {
        Layout::of_array(self.max_entries, self.index_mask)
    }

    fn target_offset(&self) -> Option<u32> {
        self.target_offset
    }

    fn bpf_func(&self, prog: ProgId) -> Option<usize> {
        *self.bpf_funcs.get(prog).expect("unknown program")
    }

    fn lock(&self) {
        assert!(!self.locked.replace(true), "poke_mutex taken twice");
        self.record(Call::Lock);
    }

    fn unlock(&self) {
        assert!(self.locked.replace(false), "poke_mutex not held");
        self.record(Call::Unlock);
    }

    fn swap_slot(&self, key: u32, new: Option<ProgId>) -> Option<ProgId> {
        self.assert_locked("swap_slot");
        assert!(key < self.max_entries, "swap_slot of padding slot {key}");
        let mut slots = self.slots.borrow_mut();
        let slot = slots
            .get_mut(usize::try_from(key).expect("key"))
            .expect("swap_slot outside the slots");
        let old = core::mem::replace(slot, new);
        self.record(Call::SwapSlot { key, new, old });
        old
    }

    fn swap_target(&self, index: u32, target: usize) -> usize {
        self.assert_locked("swap_target");
        let n = self.index_mask.wrapping_add(1);
        let key = index
            .checked_sub(n)
            .expect("swap_target below the cache (in the slots)");
        assert!(key < self.max_entries, "swap_target of padding entry {key}");
        let mut cache = self.cache.borrow_mut();
        let entry = cache
            .get_mut(usize::try_from(key).expect("key"))
            .expect("swap_target past the cache");
        let old = core::mem::replace(entry, target);
        self.record(Call::SwapTarget { index, target, old });
        old
    }

    fn poke_run(&self, key: u32, old: Option<ProgId>, new: Option<ProgId>) {
        self.assert_locked("poke_run");
        self.record(Call::PokeRun { key, old, new });
    }

    fn poke_clear(&self, lo: u32, hi: u32, old: &[Option<ProgId>; CLEAR_CHUNK]) {
        self.assert_locked("poke_clear");
        self.record(Call::PokeClear { lo, hi, old: *old });
    }

    fn put(&self, old: ProgId, need_defer: bool) {
        assert!(!self.locked.get(), "put under poke_mutex");
        self.record(Call::Put {
            prog: old,
            need_defer,
        });
    }

    fn warn(&self, what: Refused) {
        self.record(Call::Warn(what));
    }
}

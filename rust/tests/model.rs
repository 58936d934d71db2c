// SPDX-License-Identifier: GPL-2.0

//! Loom model check of the cache update protocol.
//!
//! A prog array of one slot, programs `A` (index 0) and `B` (index 1) whose
//! "image" is a `freed` flag, a cache of loom atomics updated with the real
//! [`publish`]/[`clear`], and a minimal RCU (a reader counter). The writer
//! updates slot 0 from `A` to `B` and then deletes it, freeing each old
//! program after a grace period. Readers tail-call through the cache (or,
//! for the legacy path, through `ptrs[]`) inside a read-side section and
//! assert that they never jump into a freed program.
//!
//! Negative tests show the model catches a premature free and a delete that
//! forgets to clear the cache.

use bpf_tailcall_cache::{clear, first_stale, jump_target, publish, Layout, TargetSlot};
use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// Cache entry backed by a loom atomic.
struct Slot(AtomicU64);

impl TargetSlot for Slot {
    fn exchange(&self, new: u64) -> u64 {
        self.0.swap(new, SeqCst)
    }

    fn read(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A program: only its lifetime matters.
struct Prog {
    freed: AtomicBool,
}

/// Writer bugs injected by the negative tests.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bug {
    None,
    /// Put the old program before the grace period.
    FreeBeforeGracePeriod,
    /// Delete the slot without clearing its cache entry.
    DeleteKeepsCache,
}

/// How readers perform their tail call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    /// JIT'ed static-map site: jump through the cached target.
    Cached,
    /// Legacy site: load `ptrs[key]` and jump to its `bpf_func`.
    Legacy,
}

const A: u64 = 1; // program index 0, bpf_func 1 ("prog index + 1")
const B: u64 = 2; // program index 1
const PROLOGUE: u32 = 0;

struct World {
    layout: Layout,
    /// `ptrs[]` program slots: program index + 1, 0 = NULL.
    ptrs: Vec<AtomicU64>,
    cache: Vec<Slot>,
    poke_mutex: Mutex<()>,
    progs: Vec<Prog>,
    /// Minimal RCU: number of readers inside a read-side section.
    readers: AtomicUsize,
}

impl World {
    fn new() -> Self {
        let layout = Layout::for_prog_array(1, true).unwrap();
        let n = layout.alloc_entries() as usize;
        let w = World {
            layout,
            ptrs: (0..n).map(|_| AtomicU64::new(0)).collect(),
            cache: (0..n).map(|_| Slot(AtomicU64::new(0))).collect(),
            poke_mutex: Mutex::new(()),
            progs: (0..2)
                .map(|_| Prog {
                    freed: AtomicBool::new(false),
                })
                .collect(),
            readers: AtomicUsize::new(0),
        };
        // Initial state: slot 0 holds A (set up through the protocol too).
        w.update(0, A);
        w
    }

    fn read_lock(&self) {
        self.readers.fetch_add(1, SeqCst);
    }

    fn read_unlock(&self) {
        self.readers.fetch_sub(1, SeqCst);
    }

    /// Wait for all pre-existing readers. The check is an RMW rather than a
    /// plain SeqCst load: loom models SeqCst as AcqRel, and an RMW always
    /// reads the latest value, giving the full-barrier semantics of
    /// `synchronize_rcu()` without relying on SeqCst total order.
    fn synchronize(&self) {
        while self.readers.fetch_add(0, SeqCst) != 0 {
            thread::yield_now();
        }
    }

    /// Map update (or delete with `new == 0`) under `poke_mutex`; returns
    /// the old program (0 = none). Follows the protocol of `publish()`.
    fn update(&self, key: u32, new: u64) -> u64 {
        self.update_with(key, new, Bug::None)
    }

    fn update_with(&self, key: u32, new: u64, bug: Bug) -> u64 {
        let _guard = self.poke_mutex.lock().unwrap();
        let old = self.ptrs[key as usize].swap(new, SeqCst);
        if new == 0 {
            if bug != Bug::DeleteKeepsCache {
                let prev = clear(&self.layout, &self.cache, key).unwrap();
                assert_eq!(prev, jump_target(old, PROLOGUE).unwrap());
            }
        } else {
            let prev = publish(
                &self.layout,
                &self.cache,
                key,
                jump_target(new, PROLOGUE).unwrap(),
            )
            .unwrap();
            assert_eq!(prev, jump_target(old, PROLOGUE).unwrap());
        }
        // (poke of direct tail calls would run here)
        old
    }

    /// `bpf_prog_put()` of `old`: free the image after a grace period.
    fn put(&self, old: u64, bug: Bug) {
        if old == 0 {
            return;
        }
        if bug != Bug::FreeBeforeGracePeriod {
            self.synchronize();
        }
        self.progs[(old - 1) as usize].freed.store(true, Release);
    }

    fn writer(&self, bug: Bug) {
        let old = self.update_with(0, B, bug);
        assert_eq!(old, A);
        self.put(old, bug);
        let old = self.update_with(0, 0, bug);
        assert_eq!(old, B);
        self.put(old, bug);
    }

    fn reader(&self, path: Path) {
        self.read_lock();
        let t = match path {
            Path::Cached => self.cache[0].0.load(Acquire),
            Path::Legacy => self.ptrs[0].load(Acquire),
        };
        if t != 0 {
            assert!(
                !self.progs[(t - 1) as usize].freed.load(Acquire),
                "reader jumped into a freed program"
            );
        }
        self.read_unlock();
    }

    /// After the writer: every cache entry equals the target of its slot.
    fn check_invariant(&self) {
        for (slot, entry) in self.ptrs.iter().zip(self.cache.iter()) {
            let p = slot.load(SeqCst);
            assert_eq!(entry.read(), jump_target(p, PROLOGUE).unwrap());
        }
    }
}

fn run(readers: usize, path: Path, bug: Bug, preemption_bound: usize) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemption_bound);
    builder.check(move || {
        let w = Arc::new(World::new());
        let rs: Vec<_> = (0..readers)
            .map(|_| {
                let w = w.clone();
                thread::spawn(move || w.reader(path))
            })
            .collect();
        w.writer(bug);
        for r in rs {
            r.join().unwrap();
        }
        if bug == Bug::None {
            w.check_invariant();
            assert_eq!(first_stale(&w.cache), None);
        }
    });
}

#[test]
fn cached_reader_never_sees_freed_program() {
    run(1, Path::Cached, Bug::None, 3);
}

#[test]
fn two_cached_readers_never_see_freed_program() {
    run(2, Path::Cached, Bug::None, 2);
}

#[test]
fn legacy_reader_never_sees_freed_program() {
    run(1, Path::Legacy, Bug::None, 3);
}

#[test]
#[should_panic(expected = "reader jumped into a freed program")]
fn negative_free_before_grace_period() {
    run(1, Path::Cached, Bug::FreeBeforeGracePeriod, 2);
}

#[test]
#[should_panic(expected = "reader jumped into a freed program")]
fn negative_delete_keeps_cache() {
    run(1, Path::Cached, Bug::DeleteKeepsCache, 2);
}

/// The invariant check itself catches a delete that keeps the cache even
/// without a racing reader.
#[test]
#[should_panic]
fn negative_delete_keeps_cache_invariant() {
    loom::model(|| {
        let w = World::new();
        w.writer(Bug::DeleteKeepsCache);
        w.check_invariant();
    });
}

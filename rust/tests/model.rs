// SPDX-License-Identifier: GPL-2.0

//! Loom model check of the cache update protocol, through the real
//! [`update`].
//!
//! The world is a prog array of one or two slots laid out as in the
//! kernel: `ptrs[]` holds the slots (program index + 1, 0 = NULL), the
//! padding and the cache (jump targets, 0 = none), all loom atomics
//! exchanged with `SeqCst` (the kernel's fully ordered `xchg()`).
//! `poke_mutex` is a loom [`Mutex`], taken and dropped through
//! [`ProgArray::lock`]/[`ProgArray::unlock`]. A program's image is a
//! `freed` flag. RCU is modelled by reader counters, one per flavour:
//! normal RCU (non-sleepable programs) and RCU tasks trace (sleepable
//! ones); a prog array never mixes the two, so each world has one flavour.
//! [`ProgArray::put`] is `bpf_prog_put()` of the slot's last reference: it
//! queues the free (`call_rcu()` or `call_rcu_tasks_trace()`), and an RCU
//! thread frees the image after a grace period of the program's flavour
//! that starts after the put.
//!
//! A reader is the JITed tail call: read-side section of its flavour,
//! bounds check against the immediate `max_entries`, ONE `Relaxed` load of
//! the cache entry at the JIT's displacement, and if non-zero a jump into
//! the program, which runs until the section ends. It asserts the image is
//! not freed at the jump and still not freed at the end of the section.
//!
//! Negative tests (`#[should_panic]`) break one step each, all else equal,
//! and show the model catches the use-after-free.

use bpf_tailcall_cache::{
    clear, plan_update, update, Error, Layout, ProgArray, Refused, CLEAR_CHUNK,
};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use loom::sync::{Arc, Mutex, MutexGuard};
use loom::thread;
use std::cell::RefCell;

/// Offset of `ptrs[]` in `struct bpf_array` (x86-64).
const PTRS_OFFSET: u32 = 352;
/// The arch's tail-call entry offset.
const TARGET_OFFSET: u32 = 11;
/// Program `p`'s image is at `(p + 1) * IMAGE_STRIDE`.
const IMAGE_STRIDE: usize = 0x1000;

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const NPROGS: usize = 3;

/// RCU flavour of a world's readers and grace periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    /// Non-sleepable programs: `rcu_read_lock()`, `synchronize_rcu()`.
    Rcu,
    /// Sleepable programs: `rcu_read_lock_trace()`,
    /// `synchronize_rcu_tasks_trace()`.
    TasksTrace,
}

/// How [`ProgArray::put`] frees a program's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Put {
    /// After a grace period of the program's flavour (the kernel).
    GracePeriod,
    /// BROKEN: at once.
    FreeBeforeGracePeriod,
    /// BROKEN: after a normal RCU grace period, whatever the flavour.
    RcuGracePeriodOnly,
}

/// Which update step the writers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// The real [`update`].
    Real,
    /// BROKEN: [`update_put_before_cache_update`].
    PutBeforeCacheUpdate,
    /// [`update_cache_updated_before_slot`].
    CacheUpdatedBeforeSlot,
}

struct Prog {
    freed: AtomicBool,
}

struct World {
    max_entries: u32,
    layout: Layout,
    flavour: Flavour,
    put: Put,
    /// Whether `lock()` takes `poke_mutex` (false: BROKEN).
    locking: bool,
    /// `ptrs[0 .. 2 * N)`.
    ptrs: Vec<AtomicUsize>,
    poke_mutex: Mutex<()>,
    progs: Vec<Prog>,
    /// Readers inside an RCU read-side section.
    rcu_readers: AtomicUsize,
    /// Readers inside an RCU tasks trace read-side section.
    trace_readers: AtomicUsize,
    /// Callbacks queued by `put`: a bit per program.
    callbacks: AtomicUsize,
}

fn usz(v: u32) -> usize {
    usize::try_from(v).unwrap()
}

impl World {
    /// A world of `max_entries` slots, `initial[k]` in slot `k` (installed
    /// through the real update step).
    fn new(max_entries: u32, flavour: Flavour, put: Put, initial: &[Option<usize>]) -> Self {
        let layout = Layout::new(max_entries).unwrap();
        let total = usize::try_from(layout.total_ptrs()).unwrap();
        let w = World {
            max_entries,
            layout,
            flavour,
            put,
            locking: true,
            ptrs: (0..total).map(|_| AtomicUsize::new(0)).collect(),
            poke_mutex: Mutex::new(()),
            progs: (0..NPROGS)
                .map(|_| Prog {
                    freed: AtomicBool::new(false),
                })
                .collect(),
            rcu_readers: AtomicUsize::new(0),
            trace_readers: AtomicUsize::new(0),
            callbacks: AtomicUsize::new(0),
        };
        for (key, &p) in initial.iter().enumerate() {
            assert_eq!(
                w.writer()
                    .update(Order::Real, u32::try_from(key).unwrap(), p),
                Ok(false)
            );
        }
        w
    }

    fn writer(&self) -> Writer<'_> {
        Writer {
            w: self,
            guard: RefCell::new(None),
        }
    }

    fn readers(&self, f: Flavour) -> &AtomicUsize {
        match f {
            Flavour::Rcu => &self.rcu_readers,
            Flavour::TasksTrace => &self.trace_readers,
        }
    }

    fn read_lock(&self, f: Flavour) {
        self.readers(f).fetch_add(1, SeqCst);
    }

    fn read_unlock(&self, f: Flavour) {
        self.readers(f).fetch_sub(1, SeqCst);
    }

    /// Wait for the readers of flavour `f` that are inside a section. The
    /// check is an RMW rather than a plain load: an RMW reads the latest
    /// value and, as a SeqCst RMW, is both acquire and release. Either it
    /// reads a reader's `read_lock` (it then waits for, and synchronizes
    /// with, that reader's `read_unlock`: the section happens before what
    /// follows the grace period) or the reader's `read_lock` reads it (what
    /// precedes the grace period happens before the section). That is the
    /// RCU guarantee, without relying on loom's SeqCst total order.
    fn synchronize(&self, f: Flavour) {
        while self.readers(f).fetch_add(0, SeqCst) != 0 {
            thread::yield_now();
        }
    }

    fn image(p: usize) -> usize {
        (p + 1) * IMAGE_STRIDE
    }

    /// The program whose tail-call entry is `target`.
    fn prog_of(target: usize) -> usize {
        let image = target - usz(TARGET_OFFSET);
        assert_eq!(image % IMAGE_STRIDE, 0, "target {target:#x} is no entry");
        let p = image / IMAGE_STRIDE - 1;
        assert!(p < NPROGS);
        p
    }

    /// `bpf_prog_put()` of the program a slot dropped: queue its free.
    fn put(&self, p: usize) {
        if self.put == Put::FreeBeforeGracePeriod {
            self.free(p);
            return;
        }
        // call_rcu(): what precedes it happens before the grace period
        // that runs the callback (SeqCst: release here, acquire in `rcu`).
        let prev = self.callbacks.fetch_or(1 << p, SeqCst);
        assert_eq!(prev & (1 << p), 0, "program {p} put twice");
    }

    fn free(&self, p: usize) {
        // Relaxed: nothing but the grace period may order the free after
        // the readers (see `assert_alive`).
        self.progs[p].freed.store(true, Relaxed);
    }

    /// The RCU machinery: runs the callbacks of `frees` puts, each batch
    /// after a grace period that starts after the batch was queued.
    fn rcu(&self, frees: u32) {
        let flavour = match self.put {
            Put::RcuGracePeriodOnly => Flavour::Rcu,
            Put::GracePeriod | Put::FreeBeforeGracePeriod => self.flavour,
        };
        let mut done = 0;
        while done < frees {
            let batch = self.callbacks.swap(0, SeqCst);
            if batch == 0 {
                thread::yield_now();
                continue;
            }
            self.synchronize(flavour);
            for p in 0..NPROGS {
                if batch & (1 << p) != 0 {
                    self.free(p);
                }
            }
            done += batch.count_ones();
        }
    }

    fn assert_alive(&self, p: usize, what: &str) {
        // Relaxed, like the free: loom lets this load read the free in
        // some execution unless this load happens before the free, and the
        // only thing that may order the two is the grace period (the
        // reader's `read_unlock` synchronizing with the RCU thread's
        // `synchronize`). Acquire would not change the values this load
        // may read, only add an ordering for later loads that the JITed
        // code, plain loads, does not have.
        assert!(!self.progs[p].freed.load(Relaxed), "{what} a freed program");
    }

    /// The JITed tail call through slot `key`: returns the program run.
    fn tail_call(&self, key: u32) -> Option<usize> {
        let f = self.flavour;
        self.read_lock(f);
        let site = self.layout.jit_site(PTRS_OFFSET).unwrap();
        let mut ran = None;
        if key < site.max_entries {
            let disp = usz(site.cache_disp.unsigned_abs()) + 8 * usz(key);
            let index = (disp - usz(PTRS_OFFSET)) / 8;
            // The one load of the cache entry (`mov rax, [array + disp]`).
            let target = self.ptrs[index].load(Relaxed);
            if target != 0 {
                let p = Self::prog_of(target);
                self.assert_alive(p, "tail call jumped into");
                ran = Some(p);
            }
        }
        // The program runs until the caller's section ends.
        if let Some(p) = ran {
            self.assert_alive(p, "tail-called program ran in");
        }
        self.read_unlock(f);
        ran
    }

    /// Quiescent state: every cache entry is its slot's target (0 for an
    /// empty slot or padding), `live` are the programs in the slots, not
    /// freed, and `freed` the programs freed.
    fn check_quiescent(&self, live: &[usize], freed: &[usize]) {
        let n = usz(self.layout.slots());
        for key in 0..n {
            let slot = self.ptrs[key].load(SeqCst);
            let entry = self.ptrs[n + key].load(SeqCst);
            let expected = match slot.checked_sub(1) {
                None => 0,
                Some(p) => Self::image(p) + usz(TARGET_OFFSET),
            };
            assert_eq!(entry, expected, "stale cache entry of slot {key}");
        }
        for (p, prog) in self.progs.iter().enumerate() {
            let in_slot = (0..n).any(|k| self.ptrs[k].load(SeqCst) == p + 1);
            assert_eq!(in_slot, live.contains(&p), "program {p} in a slot");
            let is_freed = prog.freed.load(SeqCst);
            assert_eq!(is_freed, freed.contains(&p), "program {p} freed");
        }
    }
}

/// A writer's view of the world as a [`ProgArray`]; it holds the
/// `poke_mutex` guard between `lock()` and `unlock()`.
struct Writer<'a> {
    w: &'a World,
    guard: RefCell<Option<MutexGuard<'a, ()>>>,
}

impl Writer<'_> {
    fn update(&self, order: Order, key: u32, new: Option<usize>) -> Result<bool, Refused> {
        match order {
            Order::Real => update(self, key, new, false),
            Order::PutBeforeCacheUpdate => update_put_before_cache_update(self, key, new, false),
            Order::CacheUpdatedBeforeSlot => {
                update_cache_updated_before_slot(self, key, new, false)
            }
        }
    }
}

impl ProgArray for Writer<'_> {
    type Prog = usize;

    fn max_entries(&self) -> u32 {
        self.w.max_entries
    }

    fn layout(&self) -> Result<Layout, Error> {
        Ok(self.w.layout)
    }

    fn target_offset(&self) -> Option<u32> {
        Some(TARGET_OFFSET)
    }

    fn bpf_func(&self, prog: usize) -> Option<usize> {
        Some(World::image(prog))
    }

    fn lock(&self) {
        if self.w.locking {
            let g = self.w.poke_mutex.lock().unwrap();
            assert!(self.guard.borrow_mut().replace(g).is_none());
        }
    }

    fn unlock(&self) {
        if self.w.locking {
            let g = self.guard.borrow_mut().take();
            assert!(g.is_some(), "poke_mutex not held");
            drop(g);
        }
    }

    fn swap_slot(&self, key: u32, new: Option<usize>) -> Option<usize> {
        assert!(
            self.w.layout.cache_index(key).is_some(),
            "key past max_entries"
        );
        let old = self.w.ptrs[usz(key)].swap(new.map_or(0, |p| p + 1), SeqCst);
        old.checked_sub(1)
    }

    fn swap_target(&self, index: u32, target: usize) -> usize {
        assert!(index >= self.w.layout.slots());
        self.w.ptrs[usz(index)].swap(target, SeqCst)
    }

    fn poke_run(&self, _key: u32, _old: Option<usize>, _new: Option<usize>) {
        // No direct tail calls in the model.
    }

    fn poke_clear(&self, _lo: u32, _hi: u32, _old: &[Option<usize>; CLEAR_CHUNK]) {
        // No direct tail calls in the model.
    }

    fn put(&self, old: usize, _need_defer: bool) {
        self.w.put(old);
    }

    fn warn(&self, what: Refused) {
        panic!("unexpected warning {what:?}");
    }
}

/// BROKEN copy of [`update`]: the old program is put (grace period and
/// free) before its cache entry is exchanged. A reader that enters its
/// section after the grace period still loads the old target.
fn update_put_before_cache_update<A: ProgArray>(
    a: &A,
    key: u32,
    new: Option<A::Prog>,
    need_defer: bool,
) -> Result<bool, Refused> {
    let cache = plan_update(a, key, new)?;
    a.lock();
    let old = a.swap_slot(key, new);
    // BROKEN: put before the cache entry changes.
    if let Some(prog) = old {
        a.put(prog, need_defer);
    }
    if let Some((index, target)) = cache {
        a.swap_target(index, target);
    }
    a.poke_run(key, old, new);
    a.unlock();
    Ok(old.is_some())
}

/// Copy of [`update`] that exchanges the cache entry before the slot, all
/// else equal. It is SAFE, see [`cache_updated_before_slot_is_safe`].
fn update_cache_updated_before_slot<A: ProgArray>(
    a: &A,
    key: u32,
    new: Option<A::Prog>,
    need_defer: bool,
) -> Result<bool, Refused> {
    let cache = plan_update(a, key, new)?;
    a.lock();
    // Swapped: the cache entry first ...
    if let Some((index, target)) = cache {
        a.swap_target(index, target);
    }
    // ... then the slot.
    let old = a.swap_slot(key, new);
    a.poke_run(key, old, new);
    a.unlock();
    if let Some(prog) = old {
        a.put(prog, need_defer);
    }
    Ok(old.is_some())
}

/// Starts the RCU thread for `frees` puts (none when `put` frees at once).
fn spawn_rcu(w: &Arc<World>, frees: u32) -> thread::JoinHandle<()> {
    let w = w.clone();
    let frees = if w.put == Put::FreeBeforeGracePeriod {
        0
    } else {
        frees
    };
    thread::spawn(move || w.rcu(frees))
}

/// Preemption bound of the worlds with one writer (three threads: the
/// writer, a reader, the RCU thread): 5 explores about 45k executions.
const ONE_WRITER: usize = 5;
/// Preemption bound of the worlds with two racing writers (four threads):
/// 3 explores about 80k executions.
const TWO_WRITERS: usize = 3;

fn check(preemption_bound: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(preemption_bound);
    b.check(f);
}

/// Slot 0 holds A; the writer (main thread) updates it to B, then deletes
/// it; one reader tail-calls through slot 0.
fn replace_then_delete(flavour: Flavour, put: Put, order: Order, preemption_bound: usize) {
    check(preemption_bound, move || {
        let w = Arc::new(World::new(1, flavour, put, &[Some(A)]));
        let rcu = spawn_rcu(&w, 2);
        let r = {
            let w = w.clone();
            thread::spawn(move || w.tail_call(0))
        };
        let wr = w.writer();
        assert_eq!(wr.update(order, 0, Some(B)), Ok(true));
        assert_eq!(wr.update(order, 0, None), Ok(true));
        let ran = r.join().unwrap();
        rcu.join().unwrap();
        assert!(matches!(ran, None | Some(A) | Some(B)));
        w.check_quiescent(&[], &[A, B]);
    });
}

#[test]
fn rcu_replace_then_delete() {
    replace_then_delete(Flavour::Rcu, Put::GracePeriod, Order::Real, ONE_WRITER);
}

#[test]
fn tasks_trace_replace_then_delete() {
    replace_then_delete(
        Flavour::TasksTrace,
        Put::GracePeriod,
        Order::Real,
        ONE_WRITER,
    );
}

/// Two slots: slot 0 goes A -> B -> empty while a reader tail-calls
/// through slot 1, which holds C throughout.
#[test]
fn two_slots_update_one_read_other() {
    for flavour in [Flavour::Rcu, Flavour::TasksTrace] {
        check(ONE_WRITER + 1, move || {
            let w = Arc::new(World::new(
                2,
                flavour,
                Put::GracePeriod,
                &[Some(A), Some(C)],
            ));
            let rcu = spawn_rcu(&w, 2);
            let r = {
                let w = w.clone();
                thread::spawn(move || w.tail_call(1))
            };
            let wr = w.writer();
            assert_eq!(wr.update(Order::Real, 0, Some(B)), Ok(true));
            assert_eq!(wr.update(Order::Real, 0, None), Ok(true));
            assert_eq!(r.join().unwrap(), Some(C));
            rcu.join().unwrap();
            w.check_quiescent(&[C], &[A, B]);
        });
    }
}

/// The deferred clear: slots 0 and 1 hold A and C; one writer empties both
/// as one change ([`clear`]) while a reader tail-calls through slot 0 and
/// a second writer replaces slot 1 with B (serialized by `poke_mutex`).
#[test]
fn clear_with_reader_and_writer() {
    for flavour in [Flavour::Rcu, Flavour::TasksTrace] {
        check(TWO_WRITERS, move || {
            let w = Arc::new(World::new(
                2,
                flavour,
                Put::GracePeriod,
                &[Some(A), Some(C)],
            ));
            let rcu = spawn_rcu(&w, 3);
            let r = {
                let w = w.clone();
                thread::spawn(move || w.tail_call(0))
            };
            let w2 = {
                let w = w.clone();
                thread::spawn(move || w.writer().update(Order::Real, 1, Some(B)))
            };
            let held = clear(&w.writer(), 0, 2, false);
            let replaced = w2.join().unwrap();
            let ran = r.join().unwrap();
            // Either order of the two writers: the replace came first
            // (it put C, the clear A and B), or the clear did (it put A and
            // C, the replace filled the empty slot 1, deleted here).
            match (held, replaced) {
                (Ok(2), Ok(true)) => {}
                (Ok(2), Ok(false)) => {
                    assert_eq!(w.writer().update(Order::Real, 1, None), Ok(true));
                }
                other => panic!("clear / replace: {other:?}"),
            }
            rcu.join().unwrap();
            w.check_quiescent(&[], &[A, B, C]);
            assert!(matches!(ran, None | Some(A)));
        });
    }
}

/// Two writers race on slot 0 (A -> B and A/B -> C, serialized by
/// `poke_mutex`) while a reader tail-calls through it.
fn racing_writers(order: Order, locking: bool, reader: bool, preemption_bound: usize) {
    check(preemption_bound, move || {
        let mut world = World::new(1, Flavour::Rcu, Put::GracePeriod, &[Some(A)]);
        world.locking = locking;
        let w = Arc::new(world);
        let rcu = spawn_rcu(&w, 2);
        let other = {
            let w = w.clone();
            thread::spawn(move || {
                let _ = w.writer().update(order, 0, Some(C));
            })
        };
        let r = reader.then(|| {
            let w = w.clone();
            thread::spawn(move || w.tail_call(0))
        });
        let _ = w.writer().update(order, 0, Some(B));
        other.join().unwrap();
        if let Some(r) = r {
            r.join().unwrap();
        }
        rcu.join().unwrap();
        // A was put by whichever writer came first; the loser of the race
        // was put by the other one; the winner is in the slot.
        let winner = w.ptrs[0].load(SeqCst).checked_sub(1).unwrap();
        let loser = if winner == B { C } else { B };
        w.check_quiescent(&[winner], &[A, loser]);
    });
}

#[test]
fn racing_writers_serialized_by_poke_mutex() {
    racing_writers(Order::Real, true, true, TWO_WRITERS);
}

/// Without `poke_mutex` the two exchanges of two writers interleave and
/// the cache keeps the target of a program that is put and freed.
#[test]
#[should_panic(expected = "stale cache entry")]
fn racing_writers_without_poke_mutex() {
    racing_writers(Order::Real, false, false, TWO_WRITERS);
}

/// (a) The old program is put, grace period included, before its cache
/// entry is exchanged.
#[test]
#[should_panic(expected = "a freed program")]
fn put_before_cache_update() {
    replace_then_delete(
        Flavour::Rcu,
        Put::GracePeriod,
        Order::PutBeforeCacheUpdate,
        ONE_WRITER,
    );
}

/// (b) `put` frees the image without waiting for a grace period.
#[test]
#[should_panic(expected = "a freed program")]
fn free_before_grace_period() {
    replace_then_delete(
        Flavour::Rcu,
        Put::FreeBeforeGracePeriod,
        Order::Real,
        ONE_WRITER,
    );
}

/// (c) A sleepable program (reader under RCU tasks trace) freed after a
/// normal RCU grace period only.
#[test]
#[should_panic(expected = "a freed program")]
fn wrong_flavour_grace_period() {
    replace_then_delete(
        Flavour::TasksTrace,
        Put::RcuGracePeriodOnly,
        Order::Real,
        ONE_WRITER,
    );
}

/// The same put with the right flavour (a non-sleepable program after a
/// normal RCU grace period) is the correct protocol: the failure above is
/// the flavour, not the harness.
#[test]
fn right_flavour_grace_period() {
    replace_then_delete(
        Flavour::Rcu,
        Put::RcuGracePeriodOnly,
        Order::Real,
        ONE_WRITER,
    );
}

/// (d) The cache entry exchanged before the slot is NOT a use-after-free,
/// so this test passes (it is no `#[should_panic]`):
///
/// * the old program is put only after both exchanges and the unlock, and
///   freed only after a grace period that starts after the put. A reader
///   that entered its section before the grace period has left it before
///   the free; one that enters after it is ordered after the cache
///   exchange (the grace period synchronizes with its `read_lock`) and
///   cannot load the old target. Which of the two exchanges came first
///   inside the critical section plays no part in that argument;
/// * between the two exchanges the cache already holds the new program's
///   target while the slot still holds the old one. The new program is
///   alive then: the updater holds the reference the slot is about to own
///   (`map_fd_get_ptr()`), and no other writer can put it before the slot
///   owns it, because every writer of a prog array (update, delete, clear
///   on release) holds `poke_mutex` for both exchanges;
/// * after the unlock the entry equals the slot's target again, as with
///   the real order, so no writer ever sees the mismatch.
///
/// The model checks it with one writer and with racing writers; the
/// `racing_writers_without_poke_mutex` test shows that the mutex, not the
/// order, is what keeps the cache and the slot in step.
#[test]
fn cache_updated_before_slot_is_safe() {
    for flavour in [Flavour::Rcu, Flavour::TasksTrace] {
        replace_then_delete(
            flavour,
            Put::GracePeriod,
            Order::CacheUpdatedBeforeSlot,
            ONE_WRITER,
        );
    }
    racing_writers(Order::CacheUpdatedBeforeSlot, true, true, TWO_WRITERS);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Tail-call update storm (raw bpf(2), no libbpf), bounded in time.
 *
 * Writer threads update, replace and delete prog-array slots, load new
 * target programs and drop the old ones (so that programs leave every
 * slot and are freed while callers run), and create prog arrays with
 * their own callers, close the arrays' last fd (the deferred clear runs
 * while the callers still run) and then free them by closing the callers.
 *
 * Caller threads BPF_PROG_TEST_RUN programs that tail call through
 *   - static: the map is known, the key comes from cb[0] (the cache),
 *   - legacy: the same program loaded with bpf_jit_harden=2 (constant
 *     blinding keeps the legacy sequence; the previous value is restored,
 *     and no other program is loaded meanwhile),
 *   - poisoned: the map depends on cb[1] (legacy sequence in any case),
 *   - direct: constant key (text-poked jump),
 * with keys inside the array, at max_entries and 0xffffffff.
 *
 * Every target program returns its own value. A caller's result must be
 * FALLTHROUGH or the value of a program that was, at some point of the
 * run, installed in the slot it called (recorded before the update is
 * issued); for a key past the end only FALLTHROUGH. Anything else, or a
 * failed test run, is a failure. Splats are judged from the kernel log by
 * the host.
 *
 * Usage: tailcall_storm [-t SECONDS] [-w WRITERS] [-c CALLERS] [-D]
 *                       [--break-checker]
 *   -D               no direct sites (multi-threaded TCG: see README)
 *   --break-checker  do not record one install, to show the checker fails
 * Prints counts and "tailcall_storm: N passed, M failed".
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "bpf_raw.h"

#define MAX_SLOTS	8
#define MAX_VALUES	65536		/* distinct target programs per run */
#define VALUE_BASE	0x1000
#define POOL		12		/* live target programs */
#define NPERSIST	3
#define NEPHEM		4
#define NMAPS		(NPERSIST + NEPHEM)
#define MAX_WRITERS	8
#define MAX_CALLERS	16

enum site { SITE_STATIC, SITE_LEGACY, SITE_POISONED, SITE_DIRECT, NSITES };
static const char *const site_name[NSITES] = { "static", "legacy", "poisoned", "direct" };

struct marr {
	pthread_rwlock_t lock;		/* callers read, retire writes */
	int state;			/* 0 free, 1 map fd open, 2 map fd closed */
	int map;			/* fd while state == 1 */
	unsigned int max_entries;
	int st, lg, po;			/* static, legacy, poisoned callers */
	int di[MAX_SLOTS + 1];		/* direct callers for keys 0..max_entries */
	/* installed[k]: bit v set once value v was (about to be) put in slot k */
	_Atomic uint64_t installed[MAX_SLOTS][MAX_VALUES / 64];
};

static struct marr arrs[NMAPS];
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static int pool_fd[POOL], pool_val[POOL];
static atomic_int next_value;
static atomic_int stop;
static atomic_uint ephem_cursor;
static int no_direct, break_checker;
static _Atomic int broke_once;

static atomic_ulong n_calls[NSITES], n_jumped[NSITES], n_fell;
static atomic_ulong n_updates, n_deletes, n_loads, n_frees_pool;
static atomic_ulong n_created, n_closed, n_retired, n_upd_closed;
static atomic_ulong n_fail, n_err;
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

static unsigned int rnd(unsigned int *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

__attribute__((format(printf, 1, 2)))
static void fail(const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&n_fail, 1) >= 30)
		return;
	pthread_mutex_lock(&print_lock);
	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	pthread_mutex_unlock(&print_lock);
}

__attribute__((format(printf, 1, 2)))
static void error(const char *fmt, ...)
{
	va_list ap;

	atomic_fetch_add(&n_err, 1);
	pthread_mutex_lock(&print_lock);
	printf("ERROR: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(": %s\n", strerror(errno));
	fflush(stdout);
	pthread_mutex_unlock(&print_lock);
}

static void record(struct marr *a, unsigned int key, int value)
{
	unsigned int v = value - VALUE_BASE;

	/* --break-checker: the first install in slot 0 of array 0 (at setup) */
	if (break_checker && a == &arrs[0] && key == 0 && !atomic_exchange(&broke_once, 1))
		return;		/* deliberately unrecorded: must be reported */
	atomic_fetch_or(&a->installed[key][v / 64], 1ull << (v % 64));
}

static int allowed(struct marr *a, unsigned int key, long r)
{
	unsigned long v;

	if (r == FALLTHROUGH)
		return 1;
	if (key >= a->max_entries || r < VALUE_BASE || r >= VALUE_BASE + MAX_VALUES)
		return 0;
	v = r - VALUE_BASE;
	return !!(atomic_load(&a->installed[key][v / 64]) & (1ull << (v % 64)));
}

/* A new target program with a value never used before; -1 when out of values. */
static int new_target(int *value)
{
	int v = atomic_fetch_add(&next_value, 1), fd;

	if (v >= MAX_VALUES)
		return -1;
	/* not while a legacy caller is loaded with bpf_jit_harden=2 */
	pthread_mutex_lock(&load_lock);
	fd = target(VALUE_BASE + v);
	pthread_mutex_unlock(&load_lock);
	if (fd < 0) {
		error("target load");
		return -1;
	}
	atomic_fetch_add(&n_loads, 1);
	*value = VALUE_BASE + v;
	return fd;
}

/*
 * Load the callers of @a (map fd @map). Every program load holds
 * load_lock: bpf_jit_harden=2 is global while the legacy caller loads, and
 * must reach no other program (nor two threads switch and restore it).
 */
static int load_callers(struct marr *a, int map, int other)
{
	pthread_mutex_lock(&load_lock);
	a->st = caller_static(map);
	a->po = caller_poisoned(map, other);
	for (unsigned int k = 0; k <= a->max_entries; k++)
		a->di[k] = no_direct ? -1 : caller_direct(map, k);
	a->lg = caller_hardened(map);
	pthread_mutex_unlock(&load_lock);
	if (a->lg == -2) {
		error("legacy caller: bpf_jit_harden=2 and back (%s)", JIT_HARDEN_PATH);
		a->lg = -1;
		return -1;
	}
	if (a->st < 0 || a->po < 0 || a->lg < 0) {
		error("caller load");
		return -1;
	}
	for (unsigned int k = 0; k <= a->max_entries; k++)
		if (!no_direct && a->di[k] < 0) {
			error("direct caller load");
			return -1;
		}
	return 0;
}

static void close_callers(struct marr *a)
{
	close(a->st);
	close(a->po);
	close(a->lg);
	for (unsigned int k = 0; k <= a->max_entries; k++)
		if (a->di[k] >= 0)
			close(a->di[k]);
	a->st = a->po = a->lg = -1;
}

/* Install a pool program in @a's slot @key; the array's lock is held (read). */
static void do_update(struct marr *a, unsigned int key, unsigned int r)
{
	int fd, val;

	pthread_mutex_lock(&pool_lock);
	fd = dup(pool_fd[r % POOL]);
	val = pool_val[r % POOL];
	pthread_mutex_unlock(&pool_lock);
	if (fd < 0) {
		error("dup");
		return;
	}
	record(a, key, val);
	if (map_update(a->map, key, fd))
		error("update map slot %u", key);
	else
		atomic_fetch_add(&n_updates, 1);
	close(fd);
}

/* Replace a pool program by a new one; the old one lives on in its slots. */
static void refresh_pool(unsigned int r)
{
	int val, fd = new_target(&val), old;

	if (fd < 0)
		return;
	pthread_mutex_lock(&pool_lock);
	old = pool_fd[r % POOL];
	pool_fd[r % POOL] = fd;
	pool_val[r % POOL] = val;
	pthread_mutex_unlock(&pool_lock);
	close(old);
	atomic_fetch_add(&n_frees_pool, 1);
}

/*
 * Ephemeral arrays: 0 -> create with callers (1) -> close the array's last
 * fd (2) -> close the callers, which frees the array (0). One step per call,
 * under the array's lock (written).
 */
static void ephemeral_step(struct marr *a, unsigned int r)
{
	static const unsigned int sizes[] = { 1, 2, 3, 4, 5, 8 };
	unsigned int me;
	int map;

	pthread_rwlock_wrlock(&a->lock);
	switch (a->state) {
	case 0:
		me = sizes[r % ARRAY_SIZE(sizes)];
		map = prog_array_create(me);
		if (map < 0) {
			error("prog array create");
			break;
		}
		memset(a->installed, 0, sizeof(a->installed));
		a->max_entries = me;
		a->map = map;
		if (load_callers(a, map, arrs[0].map)) {
			close(map);
			a->map = -1;
			break;
		}
		for (unsigned int k = 0; k < me; k++)
			if (rnd(&r) & 1)
				do_update(a, k, rnd(&r));
		a->state = 1;
		atomic_fetch_add(&n_created, 1);
		break;
	case 1:
		/*
		 * Last user fd of the array: prog_array_map_clear() empties it
		 * (deferred) while callers keep running through it.
		 */
		close(a->map);
		a->map = -1;
		a->state = 2;
		atomic_fetch_add(&n_closed, 1);
		break;
	case 2:
		/* Drop the callers: the array and its programs are freed. */
		close_callers(a);
		a->state = 0;
		atomic_fetch_add(&n_retired, 1);
		break;
	}
	pthread_rwlock_unlock(&a->lock);
}

static void *writer(void *arg)
{
	unsigned int id = (uintptr_t)arg, r = 0x9e3779b9u * (id + 1);

	while (!atomic_load(&stop)) {
		unsigned int op = rnd(&r) % 100, m;
		struct marr *a;

		if (op < 6) {
			refresh_pool(rnd(&r));
			continue;
		}
		if (op < 18) {
			/* round robin: the ephemeral arrays go through their lives in turn */
			m = NPERSIST + atomic_fetch_add(&ephem_cursor, 1) % NEPHEM;
			ephemeral_step(&arrs[m], rnd(&r));
			continue;
		}
		m = rnd(&r) % NMAPS;
		a = &arrs[m];
		if (pthread_rwlock_tryrdlock(&a->lock))
			continue;
		if (a->state == 1 || m < NPERSIST) {
			unsigned int key = rnd(&r) % a->max_entries;

			if (op < 70) {
				do_update(a, key, rnd(&r));
			} else if (!map_delete(a->map, key)) {
				atomic_fetch_add(&n_deletes, 1);
			} else if (errno != ENOENT) {
				error("delete map slot %u", key);
			}
		} else if (a->state == 2) {
			/* Its last fd is gone: updates are impossible, count the tries. */
			atomic_fetch_add(&n_upd_closed, 1);
		}
		pthread_rwlock_unlock(&a->lock);
	}
	return NULL;
}

static void call_one(struct marr *a, enum site s, unsigned int key, unsigned int sel, int prog,
		     int m)
{
	long ret = run(prog, key, sel);
	struct marr *used = a;

	atomic_fetch_add(&n_calls[s], 1);
	if (s == SITE_POISONED && sel)
		used = &arrs[0];
	if (ret < 0) {
		errno = -ret;
		error("test run of the %s caller of array %d", site_name[s], m);
		return;
	}
	if (!allowed(used, key, ret)) {
		fail("%s caller of array %d, key %u%s: returned %ld (0x%lx), never installed there",
		     site_name[s], m, key, sel ? " (through array 0)" : "", ret, ret);
		return;
	}
	if (ret == FALLTHROUGH)
		atomic_fetch_add(&n_fell, 1);
	else
		atomic_fetch_add(&n_jumped[s], 1);
}

static void *caller(void *arg)
{
	unsigned int id = (uintptr_t)arg, r = 0x85ebca6bu * (id + 7);

	while (!atomic_load(&stop)) {
		unsigned int m = rnd(&r) % NMAPS, key, sel = 0, x = rnd(&r);
		struct marr *a = &arrs[m];
		enum site s = rnd(&r) % NSITES;
		int prog;

		if (pthread_rwlock_tryrdlock(&a->lock))
			continue;
		if (a->state == 0 && m >= NPERSIST) {
			pthread_rwlock_unlock(&a->lock);
			continue;
		}
		/* keys: mostly inside, some at max_entries and 0xffffffff */
		key = x % 16 == 0 ? 0xffffffffu : x % (a->max_entries + 1);
		switch (s) {
		case SITE_STATIC:
			prog = a->st;
			break;
		case SITE_LEGACY:
			prog = a->lg;
			break;
		case SITE_POISONED:
			prog = a->po;
			/* sel != 0 goes through array 0 (persistent, never closed) */
			sel = (x >> 8) & 1;
			if (sel && key != 0xffffffffu)
				key %= arrs[0].max_entries + 1;
			break;
		default:
			if (no_direct) {
				prog = a->st;
				s = SITE_STATIC;
				break;
			}
			if (key > a->max_entries)
				key = a->max_entries;
			prog = a->di[key];
			break;
		}
		call_one(a, s, key, sel, prog, m);
		pthread_rwlock_unlock(&a->lock);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static const unsigned int psizes[NPERSIST] = { 4, 1, 5 };
	unsigned int secs = 10, nw = 2, nc = 3;
	pthread_t th[MAX_WRITERS + MAX_CALLERS];
	pthread_rwlockattr_t ra;
	unsigned long calls = 0, jumped = 0;
	struct timespec t0, t1;
	int passed;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-t") && i + 1 < argc)
			secs = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "-w") && i + 1 < argc)
			nw = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "-c") && i + 1 < argc)
			nc = strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "-D"))
			no_direct = 1;
		else if (!strcmp(argv[i], "--break-checker"))
			break_checker = 1;
		else {
			fprintf(stderr, "usage: %s [-t SECONDS] [-w WRITERS] [-c CALLERS] [-D] [--break-checker]\n",
				argv[0]);
			return 2;
		}
	}
	if (!nw || nw > MAX_WRITERS || !nc || nc > MAX_CALLERS) {
		fprintf(stderr, "1..%d writers and 1..%d callers\n", MAX_WRITERS, MAX_CALLERS);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("storm: %u s, %u writers, %u callers, %ld CPUs online, sites: static legacy(bpf_jit_harden=2) poisoned%s\n",
	       secs, nw, nc, sysconf(_SC_NPROCESSORS_ONLN), no_direct ? "" : " direct");

	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	for (int i = 0; i < NMAPS; i++) {
		pthread_rwlock_init(&arrs[i].lock, &ra);
		arrs[i].map = arrs[i].st = arrs[i].po = arrs[i].lg = -1;
		arrs[i].max_entries = 1;
	}
	for (int i = 0; i < POOL; i++) {
		pool_fd[i] = new_target(&pool_val[i]);
		if (pool_fd[i] < 0)
			return 1;
	}
	for (int i = 0; i < NPERSIST; i++) {
		struct marr *a = &arrs[i];

		a->max_entries = psizes[i];
		a->map = prog_array_create(a->max_entries);
		if (a->map < 0) {
			error("prog array create");
			return 1;
		}
	}
	for (int i = 0; i < NPERSIST; i++) {
		if (load_callers(&arrs[i], arrs[i].map, arrs[0].map))
			return 1;
		arrs[i].state = 1;
		for (unsigned int k = 0; k < arrs[i].max_entries; k++)
			do_update(&arrs[i], k, k);
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned int i = 0; i < nw; i++)
		pthread_create(&th[i], NULL, writer, (void *)(uintptr_t)i);
	for (unsigned int i = 0; i < nc; i++)
		pthread_create(&th[nw + i], NULL, caller, (void *)(uintptr_t)i);
	for (unsigned int s = 0; s < secs; s++) {
		sleep(1);
		if (secs >= 60 && (s + 1) % 60 == 0)
			printf("storm: %u s: %lu calls, %lu updates, %lu failures\n", s + 1,
			       atomic_load(&n_calls[0]) + atomic_load(&n_calls[1]) +
			       atomic_load(&n_calls[2]) + atomic_load(&n_calls[3]),
			       atomic_load(&n_updates), atomic_load(&n_fail));
	}
	atomic_store(&stop, 1);
	for (unsigned int i = 0; i < nw + nc; i++)
		pthread_join(th[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);

	/* Tear down: free every array and program. */
	for (int i = 0; i < NMAPS; i++) {
		if (arrs[i].state == 1)
			close(arrs[i].map);
		if (arrs[i].state)
			close_callers(&arrs[i]);
	}
	for (int i = 0; i < POOL; i++)
		close(pool_fd[i]);

	for (int s = 0; s < NSITES; s++) {
		printf("storm: %-8s calls %lu, jumped %lu\n", site_name[s],
		       atomic_load(&n_calls[s]), atomic_load(&n_jumped[s]));
		calls += atomic_load(&n_calls[s]);
		jumped += atomic_load(&n_jumped[s]);
	}
	printf("storm: %.1f s: calls %lu (jumped %lu, fell through %lu), updates %lu, deletes %lu, "
	       "target loads %lu (old dropped %lu), arrays created %lu, last fd closed %lu, freed %lu, "
	       "errors %lu, failures %lu\n",
	       (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, calls, jumped,
	       atomic_load(&n_fell), atomic_load(&n_updates), atomic_load(&n_deletes),
	       atomic_load(&n_loads), atomic_load(&n_frees_pool), atomic_load(&n_created),
	       atomic_load(&n_closed), atomic_load(&n_retired), atomic_load(&n_err),
	       atomic_load(&n_fail));
	/*
	 * Checks: results (every call's value allowed), no syscall error, and
	 * the storm really stormed (calls jumped on every site kind, updates,
	 * arrays went through their whole life).
	 */
	passed = 0;
	{
		int ok[7], n = 0, exercised;

		ok[n++] = atomic_load(&n_fail) == 0;
		ok[n++] = atomic_load(&n_err) == 0;
		/*
		 * The storm really stormed: calls jumped on every kind of site
		 * it ran, slots were updated and deleted, and (given the time
		 * for it) arrays went through their whole life. A site it did
		 * not run is not checked, and not counted.
		 */
		ok[n++] = atomic_load(&n_jumped[SITE_STATIC]) > 0 &&
			  atomic_load(&n_jumped[SITE_POISONED]) > 0;
		ok[n++] = atomic_load(&n_jumped[SITE_LEGACY]) > 0;
		if (!no_direct)
			ok[n++] = atomic_load(&n_jumped[SITE_DIRECT]) > 0;
		ok[n++] = atomic_load(&n_updates) > 0 && atomic_load(&n_deletes) > 0;
		if (secs >= 5)
			ok[n++] = atomic_load(&n_retired) > 0;
		else
			printf("note: %u s is too short to require a freed array: not checked\n", secs);
		for (int i = 0; i < n; i++)
			passed += ok[i];
		exercised = 1;
		for (int i = 2; i < n; i++)
			exercised &= ok[i];
		if (!exercised)
			printf("FAIL: the storm did not exercise every path (jumps per site, updates, deletes, a freed array)\n");
		printf("tailcall_storm: %d passed, %d failed\n", passed, n - passed);
		return passed == n ? 0 : 1;
	}
}

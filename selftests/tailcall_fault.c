// SPDX-License-Identifier: GPL-2.0
/*
 * Fault injection on the prog-array paths (raw bpf(2), no libbpf).
 *
 * For each operation below, /proc/thread-self/fail-nth makes the nth fault
 * point of the one bpf(2) call fail (failslab, fail_page_alloc and
 * fail_usercopy with their GFP filters off), for nth = 1, 2, ... until the
 * call runs with no fault injected. For every nth:
 *   - an injected fault must give an error to user space, or be absorbed
 *     by the kernel (the call succeeds and works); a call that fails with
 *     no fault injected is a failure;
 *   - afterwards every slot of the prog array is checked behaviourally:
 *     BPF_MAP_LOOKUP_ELEM gives the id of the slot's program, and the
 *     static-map (cache), legacy (the static caller loaded with
 *     bpf_jit_harden=2: constant blinding keeps the legacy sequence) and
 *     direct callers must return that program's value, or fall through
 *     for an empty slot. A cache that points at a program not in its slot
 *     fails.
 * Operations: prog-array create (small: kmalloc, large: vmalloc), update of
 * an empty slot of an array with no owner yet (owner allocation), update
 * into an empty slot and replace under callers, delete, and the loads of
 * static, direct and legacy callers (verifier fixups, poke descriptors,
 * map_poke_track, JIT; for the legacy one also constant blinding).
 * A bpf_jit_harden that cannot be set to 2 and back is a failed check.
 *
 * Before each call "tcc-fault: OP nth=N" goes to /dev/kmsg, so the host can
 * match the kernel's "FAULT_INJECTION: forcing a failure" stack dumps with
 * the calls. One line per call: "fault: OP nth=N injected=Y|N ret=...".
 * With -k, kmemleak is cleared first and scanned at the end; its report is
 * printed. Prints "tailcall_fault: N passed, M failed".
 */
#include <fcntl.h>
#include <time.h>

#include "bpf_raw.h"
#include "tcc_check.h"

#define NT 4
#define MAX_NTH 20000

static int t[NT], tval[NT];
static unsigned int tid[NT];
static unsigned long injected_total, absorbed_total;

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok ? 0 : -1;
}

__attribute__((format(printf, 1, 2)))
static void kmsg(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "tcc-fault: ");
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	write_file("/dev/kmsg", buf);
}

static int failnth_fd = -1;

/* Arm fail-nth, run fn once, disarm; returns 1 if the fault was injected. */
static int with_fault(unsigned int nth, long (*fn)(void *), void *arg, long *ret, int *err)
{
	char buf[32];
	ssize_t n;
	int len = snprintf(buf, sizeof(buf), "%u", nth);

	if (pwrite(failnth_fd, buf, len, 0) != len) {
		perror("fail-nth write");
		exit(1);
	}
	errno = 0;
	*ret = fn(arg);
	*err = errno;
	/*
	 * The read and the disarming write copy to and from user space, which
	 * are fault points too (fail_usercopy): a call that took fewer than
	 * nth points leaves the rest to them. The value read is taken before
	 * the read's own copy; EFAULT on the read means the count was still 1
	 * after the call (not injected there). A write that fails with EFAULT
	 * consumed the last count: the task is disarmed either way.
	 */
	n = pread(failnth_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0 && errno != EFAULT) {
		perror("fail-nth read");
		exit(1);
	}
	if (pwrite(failnth_fd, "0", 1, 0) != 1 &&
	    (errno != EFAULT || pwrite(failnth_fd, "0", 1, 0) != 1)) {
		perror("fail-nth disarm");
		exit(1);
	}
	if (n <= 0)
		return 0;
	buf[n] = 0;
	return atoi(buf) == 0;
}

/* The arrays and callers under test. */
struct arr {
	int map;
	unsigned int max_entries;
	int st, lg, di;		/* static, legacy, direct (key dkey) callers */
	unsigned int dkey;
};

static int value_of_id(unsigned int id)
{
	for (int i = 0; i < NT; i++)
		if (tid[i] == id)
			return tval[i];
	return -1;
}

/*
 * Every slot: the program in the slot (by id) is what every caller reaches,
 * or an empty slot falls through; max_entries and 0xffffffff fall through.
 * Returns the number of mismatches (each printed).
 */
static int verify(const struct arr *a, const char *what)
{
	int bad = 0;

	for (unsigned int k = 0; k <= a->max_entries; k++) {
		unsigned int id = 0;
		long want, got;

		if (k == a->max_entries) {
			want = FALLTHROUGH;
		} else if (map_lookup(a->map, k, &id)) {
			if (errno != ENOENT) {
				printf("  %s: lookup of slot %u: %s\n", what, k, strerror(errno));
				bad++;
				continue;
			}
			want = FALLTHROUGH;
		} else {
			want = value_of_id(id);
			if (want < 0) {
				printf("  %s: slot %u holds prog id %u, not a target of the test\n",
				       what, k, id);
				bad++;
				continue;
			}
		}
		if (a->st >= 0 && (got = run(a->st, k, 0)) != want) {
			printf("  %s: static caller, key %u: got %ld, slot has %ld\n", what, k, got, want);
			bad++;
		}
		if (a->lg >= 0 && (got = run(a->lg, k, 0)) != want) {
			printf("  %s: legacy caller, key %u: got %ld, slot has %ld\n", what, k, got, want);
			bad++;
		}
		if (a->di >= 0 && k == a->dkey && (got = run(a->di, 0, 0)) != want) {
			printf("  %s: direct caller, key %u: got %ld, slot has %ld\n", what, k, got, want);
			bad++;
		}
	}
	if (a->st >= 0 && run(a->st, 0xffffffffu, 0) != FALLTHROUGH) {
		printf("  %s: static caller, key 0xffffffff does not fall through\n", what);
		bad++;
	}
	return bad;
}

/* The operations, each one bpf(2) call. */
struct op_arg {
	struct arr *a;
	unsigned int key, max_entries;
	int prog, kind;
	int made;		/* fd created by the call */
};

static long op_create(void *p)
{
	struct op_arg *o = p;

	return o->made = prog_array_create(o->max_entries);
}

static long op_update(void *p)
{
	struct op_arg *o = p;

	return map_update(o->a->map, o->key, o->prog);
}

static long op_delete(void *p)
{
	struct op_arg *o = p;

	return map_delete(o->a->map, o->key);
}

static long op_load(void *p)
{
	struct op_arg *o = p;

	switch (o->kind) {
	case 0:
		return o->made = caller_static(o->a->map);
	default:
		return o->made = caller_direct(o->a->map, o->a->dkey);
	}
}

/*
 * Run @fn for nth = 1.. until no fault is injected. @after checks the
 * result of one call and undoes it (may be NULL); @a (may be NULL) is
 * verified after every call.
 */
static void set_verbose(const char *v)
{
	static const char *const f[] = {
		"/sys/kernel/debug/failslab/verbose",
		"/sys/kernel/debug/fail_page_alloc/verbose",
		"/sys/kernel/debug/fail_usercopy/verbose",
	};

	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		if (write_file(f[i], v))
			check(0, "set %s = %s: %s", f[i], v, strerror(errno));
}

/*
 * verbose 2: the kernel logs a stack for each injected fault (the host
 * names the fault sites from it); 1: one line each (the loads have
 * hundreds of fault points in the verifier).
 */
static void fault_loop(const char *name, long (*fn)(void *), struct op_arg *o,
		       int (*after)(struct op_arg *o, long ret, int injected),
		       struct arr *a, const char *verbose)
{
	unsigned int nth, inj = 0, errs = 0, absorbed = 0, bad_state = 0, bad = 0;
	long ret;
	int err, injected;

	set_verbose(verbose);

	for (nth = 1; nth <= MAX_NTH; nth++) {
		kmsg("%s nth=%u\n", name, nth);
		o->made = -1;
		injected = with_fault(nth, fn, o, &ret, &err);
		printf("fault: %s nth=%u injected=%s result=%s\n", name, nth,
		       injected ? "Y" : "N", ret < 0 ? strerror(err) : "ok");
		if (injected) {
			inj++;
			if (ret < 0)
				errs++;
			else
				absorbed++;
		} else if (ret < 0) {
			printf("  %s: failed with no fault injected: %s\n", name, strerror(err));
			bad++;
		}
		if (after && after(o, ret, injected))
			bad++;
		if (a && verify(a, name))
			bad_state++;
		if (!injected)
			break;
	}
	injected_total += inj;
	absorbed_total += absorbed;
	printf("summary: %s: %u fault points, %u injected: %u returned an error, %u absorbed (call succeeded)\n",
	       name, nth > MAX_NTH ? MAX_NTH : nth - 1, inj, errs, absorbed);
	if (!inj && nth <= MAX_NTH && !bad && !bad_state) {
		/* Nothing was injected: there is nothing to count as passed. */
		printf("note: %s: no fault point on this path: not counted\n", name);
		return;
	}
	check(nth <= MAX_NTH && !bad && !bad_state,
	      "%s: every injected fault gave an error or was absorbed; the call succeeds without one; "
	      "cache and slots agree after each (%u faults)", name, inj);
}

/* after-hooks: check the made object works, then drop it */
static int after_create(struct op_arg *o, long ret, int injected)
{
	unsigned int id = 0;
	int bad = 0;

	(void)injected;
	if (ret < 0)
		return 0;
	if (map_update(o->made, 0, t[0]) || map_lookup(o->made, 0, &id) || id != tid[0]) {
		printf("  created array does not hold a program: %s\n", strerror(errno));
		bad = 1;
	}
	close(o->made);
	return bad;
}

static int after_owner_update(struct op_arg *o, long ret, int injected)
{
	unsigned int id = 0;
	int bad = 0, r;

	(void)injected;
	r = map_lookup(o->a->map, o->key, &id);
	if (ret == 0 && (r || id != tid[0])) {
		printf("  update succeeded but the slot holds id %u\n", id);
		bad = 1;
	}
	if (ret < 0 && !(r && errno == ENOENT)) {
		printf("  update failed but the slot is not empty\n");
		bad = 1;
	}
	/* a fresh array without owner for the next try */
	close(o->a->map);
	o->a->map = prog_array_create(o->a->max_entries);
	if (o->a->map < 0) {
		printf("  prog array create: %s\n", strerror(errno));
		exit(1);
	}
	return bad;
}

static int after_delete(struct op_arg *o, long ret, int injected)
{
	(void)injected;
	if (ret == 0 && map_update(o->a->map, o->key, o->prog)) {
		printf("  refill after delete: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

static int after_load(struct op_arg *o, long ret, int injected)
{
	struct arr c = *o->a;
	int bad;

	(void)injected;
	if (ret < 0)
		return 0;
	c.st = c.lg = c.di = -1;
	if (o->kind == 0)
		c.st = o->made;
	else
		c.di = o->made;
	bad = verify(&c, "new caller") != 0;
	close(o->made);
	return bad;
}

static void kmemleak_report(void)
{
	char line[512];
	int objs = 0, bpf = 0, in_obj = 0, obj_bpf = 0;
	FILE *f;

	for (int i = 0; i < 2; i++) {
		/* objects younger than 5 s are not reported */
		sleep(6);
		if (write_file("/sys/kernel/debug/kmemleak", "scan")) {
			check(0, "kmemleak scan: %s", strerror(errno));
			return;
		}
	}
	f = fopen("/sys/kernel/debug/kmemleak", "r");
	if (!f) {
		check(0, "kmemleak report: %s", strerror(errno));
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		printf("kmemleak: %s", line);
		if (!strncmp(line, "unreferenced object", 19)) {
			if (in_obj && obj_bpf)
				bpf++;
			objs++;
			in_obj = 1;
			obj_bpf = 0;
		} else if (strstr(line, "bpf") || strstr(line, "array_map") ||
			   strstr(line, "prog_array") || strstr(line, "tcc")) {
			obj_bpf = 1;
		}
	}
	if (in_obj && obj_bpf)
		bpf++;
	fclose(f);
	printf("kmemleak: %d unreferenced objects, %d with bpf frames in their allocation trace\n",
	       objs, bpf);
	check(objs == 0, "kmemleak: no leak after the fault injection (%d objects, %d in bpf paths)",
	      objs, bpf);
}

int main(int argc, char **argv)
{
	static const char *const knobs[][2] = {
		{ "/sys/kernel/debug/failslab/ignore-gfp-wait", "N" },
		{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "N" },
		{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem", "N" },
		{ "/sys/kernel/debug/fail_page_alloc/min-order", "0" },
	};
	int leak = argc > 1 && !strcmp(argv[1], "-k");
	struct arr m = { .max_entries = 4, .dkey = 1 }, owner = { .max_entries = 2 };
	struct op_arg o = { 0 };
	int harden;

	setvbuf(stdout, NULL, _IOLBF, 0);
	failnth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
	if (failnth_fd < 0) {
		printf("tailcall_fault: skipped: no /proc/thread-self/fail-nth (CONFIG_FAULT_INJECTION off)\n");
		return 4;
	}
	for (size_t i = 0; i < ARRAY_SIZE(knobs); i++)
		check(!write_file(knobs[i][0], knobs[i][1]), "set %s = %s", knobs[i][0], knobs[i][1]);
	if (leak)
		check(!write_file("/sys/kernel/debug/kmemleak", "clear"), "kmemleak: clear");

	for (int i = 0; i < NT; i++) {
		tval[i] = 100 + i;
		t[i] = target(tval[i]);
		tid[i] = t[i] >= 0 ? prog_id(t[i]) : 0;
		if (t[i] < 0 || !tid[i]) {
			check(0, "target load");
			return 1;
		}
	}
	m.map = prog_array_create(m.max_entries);
	m.st = caller_static(m.map);
	m.di = caller_direct(m.map, m.dkey);
	m.lg = caller_hardened(m.map);
	if (m.lg == -2) {
		check(0, "setup: the legacy caller: bpf_jit_harden=2 (%s): %s", JIT_HARDEN_PATH,
		      strerror(errno));
		return 1;
	}
	owner.map = prog_array_create(owner.max_entries);
	owner.st = owner.lg = owner.di = -1;
	if (m.map < 0 || m.st < 0 || m.di < 0 || m.lg < 0 || owner.map < 0) {
		check(0, "setup: %s", strerror(errno));
		return 1;
	}
	map_update(m.map, 0, t[0]);
	map_update(m.map, 1, t[1]);
	check(!verify(&m, "setup"), "setup: array of 4 with static, legacy and direct callers");

	o.max_entries = 4;
	fault_loop("create prog array max_entries=4", op_create, &o, after_create, NULL, "2");
	o.max_entries = 1 << 16;
	fault_loop("create prog array max_entries=65536", op_create, &o, after_create, NULL, "2");

	o.a = &owner;
	o.key = 1;
	o.prog = t[0];
	fault_loop("update: first program of an array (owner allocation)", op_update, &o,
		   after_owner_update, NULL, "2");

	o.a = &m;
	o.key = 1;
	o.prog = t[2];
	fault_loop("update: replace slot 1 under callers", op_update, &o, NULL, &m, "2");
	map_delete(m.map, 2);
	o.key = 2;
	o.prog = t[3];
	fault_loop("update: empty slot 2 under callers", op_update, &o, NULL, &m, "2");
	o.key = 1;
	o.prog = t[1];
	fault_loop("delete: slot 1 under callers", op_delete, &o, after_delete, &m, "2");

	o.kind = 0;
	fault_loop("load: static caller", op_load, &o, after_load, &m, "1");
	o.kind = 1;
	fault_loop("load: direct caller", op_load, &o, after_load, &m, "1");
	harden = jit_harden_get();
	if (harden < 0 || jit_harden_set(2)) {
		check(0, "set %s to 2 for the legacy caller's load: %s", JIT_HARDEN_PATH,
		      strerror(errno));
	} else {
		o.kind = 0;
		fault_loop("load: static caller with bpf_jit_harden=2", op_load, &o,
			   after_load, &m, "1");
		check(!jit_harden_set(harden), "restore %s to %d", JIT_HARDEN_PATH, harden);
	}
	check(!verify(&m, "end"), "end: every caller agrees with every slot");

	/* Drop everything; the clear and the frees run before the scan. */
	close(m.st);
	close(m.di);
	close(m.lg);
	close(m.map);
	close(owner.map);
	for (int i = 0; i < NT; i++)
		close(t[i]);
	printf("faults: %lu injected in all, %lu absorbed\n", injected_total, absorbed_total);
	if (leak)
		kmemleak_report();
	printf("tailcall_fault: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

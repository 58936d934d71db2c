// SPDX-License-Identifier: GPL-2.0
/*
 * The cost of a slot change of a prog array when the array's callers use
 * direct (constant-key, text-poked) tail calls, against the legacy
 * variable-key sequence, on the running kernel (scripts/bench-poke.sh).
 *
 * The RFC part of the series rewrites a variable-key tail call into a known
 * prog array of <= 8 entries into a compare tree whose leaves are
 * constant-key tail calls: one poke descriptor per slot and site. The
 * running kernel does not have the series, but constant-key tail calls
 * produce exactly these descriptors, so a program with S sites of 8
 * constant-key tail calls (keys 0..7) is what the rewrite leaves behind:
 *
 *   tree  each site: r1 = r6 (ctx); r2 = map; r3 = k; call bpf_tail_call,
 *         for k = 0..7: 8 poke descriptors per site (S = 100: 800, under
 *         the kernel's 1024 per program; S at most 128);
 *   var   each site: r3 = cb[0] (not constant); r1 = r6; r2 = map;
 *         call bpf_tail_call: the legacy sequence, no poke descriptor.
 *
 * On x86-64 every slot change runs prog_array_map_poke_run() under the
 * array's poke_mutex, which calls bpf_arch_poke_desc_update() for each
 * descriptor of the slot's key: one text poke (insert, replace) or, for a
 * delete (slot -> NULL), a poke of the bypass jump, synchronize_rcu() and
 * a poke of the target jump. So a delete waits S grace periods, and the
 * deferred clear (prog_array_map_clear_deferred(): the same
 * __fd_array_map_delete_elem() for keys 0..max_entries-1, from a work item,
 * when the last user reference of the array goes) waits 8 x S.
 *
 * What it does, for each S (-s, default 1,10,100), both flavours side by
 * side (one prog array and one user program per flavour, the reps of an
 * operation interleaved var, tree, var, tree ...):
 *
 *  - loads the user program and checks its JITed image (jited_prog_insns:
 *    the live text, pokes included): with slots 0..7 holding T0..T7, a
 *    tree program must have exactly S rel32 jumps into each Tk's image and
 *    no jump to an indirect-branch thunk (__x86_indirect_*) and no inline
 *    "jmp *%rcx"; a var program exactly S indirect jumps (thunk or inline)
 *    and no direct one. Image bytes per site = the growth of jited_prog_len
 *    between the smallest and the largest S (for the tree, a lower bound:
 *    the rewrite's compares of the key come on top of the 8 leaves). A
 *    test run checks each program's result;
 *  - times, with CLOCK_MONOTONIC around the bpf(2) call:
 *      replace  BPF_MAP_UPDATE_ELEM of slot 0 holding a program (T0 <-> B)
 *      insert   BPF_MAP_UPDATE_ELEM of an empty slot 0
 *      delete   BPF_MAP_DELETE_ELEM of slot 0 (-> NULL)
 *      clear8   BPF_MAP_DELETE_ELEM of slots 0..7, one after another, all
 *               holding a program: the work of the deferred clear, which
 *               runs the same fd_array delete loop from a work item;
 *    after the first delete and insert the live image is read again: the
 *    tree program's jumps to T0 must be gone, then back;
 *  - -d times (none with -D): the real deferred clear. A new array and
 *    user program, 8 new targets put in the slots whose fds are closed
 *    (the array holds the only reference); the array's fd is closed (its last user
 *    reference: prog_array_map_clear() schedules the work) and
 *    BPF_PROG_GET_FD_BY_ID of the target of slot 7, the last the clear
 *    visits, is polled (every POLL_US) until it fails with ENOENT: its
 *    refcount reached zero, which happens in the put right after slot 7's
 *    pokes. Then every target must be gone and the user program must fall
 *    through;
 *  - a grace-period reference: membarrier(MEMBARRIER_CMD_GLOBAL), which is
 *    one synchronize_rcu() on a machine with more than one CPU online.
 *
 * Output: a table on stdout, progress on stderr, and with -o FILE a
 * tab-separated file, one figure a line: kind, name, flavour, S, field,
 * value. Ends with "poke: N passed, M failed" (the checks); exit status 1
 * if any check failed, 2 on an error (a bpf(2) call that failed, bad usage).
 *
 *   poke [-s 1,10,100] [-r N] [-R N] [-c N] [-C N] [-g N] [-d N] [-D] [-m] [-o FILE]
 *     -r N  reps of replace/insert/delete for S <= 10 (default 21)
 *     -R N  the same for S > 10 (default 11)
 *     -c N  reps of clear8 for S <= 10 (default 7)
 *     -C N  the same for S > 10 (default 5)
 *     -g N  reps of the grace-period reference (default 21)
 *     -d N  reps of the real deferred clear (default 3)
 *     -D    no deferred clear
 *     -m    write "tcc: begin OP FLAVOUR S" / "tcc: end" to tracefs's
 *           trace_marker around every operation (replace, insert, delete,
 *           clear8, deferred, and "load": the load of a user program into
 *           an array whose slots are filled, which -m adds), so that a
 *           trace of the functions that wait and poke can be counted per
 *           operation (scripts/poke-count.sh, in a guest); a var site may
 *           then also be the series' compare tree (S direct jumps into
 *           each target, no indirect one)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/membarrier.h>
#include <time.h>

#include "../bpf_raw.h"
#include "../btf_raw.h"

#define NSLOTS		8
#define MAX_S		128		/* 1024 poke descriptors, the kernel's limit */
#define MAX_SN		8
#define MAX_REPS	1001
#define POLL_US		20
#define DEFER_TIMEOUT_S	600
#define RET_T(k)	(0x10 + (k))	/* T0..T7 */
#define RET_B		0x40		/* the replacement in slot 0 */
#define RET_D(k)	(0x80 + (k))	/* the deferred clear's targets */

enum { VAR, TREE, NFLAV };
static const char *const flav_name[NFLAV] = { "var", "tree" };
enum { OP_REPLACE, OP_INSERT, OP_DELETE, OP_CLEAR8, NOPS };
static const char *const op_name[NOPS] = { "replace", "insert", "delete", "clear8" };

static int passed, failed;
static FILE *tsv;
static int marker_fd = -1;

static void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "poke: error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(2);
}

static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		passed++;
		return;
	}
	failed++;
	fprintf(stderr, "poke: FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

static double now_us(void);
static double t_start;

static void progress(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "poke [%6.1fs] ", (now_us() - t_start) / 1e6);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

/* mark(FMT, ...): a line in the trace (-m), around one operation */
static void mark(const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	int n;

	if (marker_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf) || write(marker_fd, buf, n) != n)
		die("trace_marker: %s", strerror(errno));
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void out_tsv(const char *kind, const char *name, const char *flav, int s,
		    const char *field, double v)
{
	if (tsv)	/* to 0.001: integers print as such */
		fprintf(tsv, "%s\t%s\t%s\t%d\t%s\t%.10g\n", kind, name, flav, s, field,
			(double)(long long)(v * 1000 + (v < 0 ? -0.5 : 0.5)) / 1000);
}

/* ------------------------------------------------------------ programs */

/* Load, and on failure load again with a log and print its tail. */
static int load(const struct bpf_insn *insns, size_t n, const char *what)
{
	static char logbuf[1 << 24];
	int fd = prog_load_ex(BPF_PROG_TYPE_SOCKET_FILTER, 0, insns, n, NULL, 0);
	size_t l;

	if (fd >= 0)
		return fd;
	fd = prog_load_ex(BPF_PROG_TYPE_SOCKET_FILTER, 0, insns, n, logbuf, sizeof(logbuf));
	if (fd >= 0)
		return fd;
	l = strlen(logbuf);
	die("loading %s (%zu insns): %s\n...%s", what, n, strerror(errno),
	    logbuf + (l > 2000 ? l - 2000 : 0));
	return -1;
}

static int load_target(unsigned int ret)
{
	struct bpf_insn insns[] = { MOV64_IMM(BPF_REG_0, ret), EXIT() };

	return load(insns, ARRAY_SIZE(insns), "a target");
}

/* The user program: S sites of the flavour's kind, then return FALLTHROUGH. */
static int load_user(int flav, int s, int map, unsigned int *ninsns, double *load_us)
{
	size_t max = 3 + (size_t)s * NSLOTS * 5, n = 0;
	struct bpf_insn *p = calloc(max, sizeof(*p));
	double t0;
	int fd;

	if (!p)
		die("out of memory");
	p[n++] = MOV64_REG(BPF_REG_6, BPF_REG_1);
	for (int i = 0; i < s; i++) {
		if (flav == TREE) {
			for (int k = 0; k < NSLOTS; k++) {
				struct bpf_insn site[] = {
					MOV64_REG(BPF_REG_1, BPF_REG_6),
					LD_MAP(BPF_REG_2, map),
					MOV64_IMM(BPF_REG_3, k),
					CALL(BPF_FUNC_tail_call),
				};

				memcpy(p + n, site, sizeof(site));
				n += ARRAY_SIZE(site);
			}
		} else {
			struct bpf_insn site[] = {
				LDX_W(BPF_REG_3, BPF_REG_6, CB0),
				MOV64_REG(BPF_REG_1, BPF_REG_6),
				LD_MAP(BPF_REG_2, map),
				CALL(BPF_FUNC_tail_call),
			};

			memcpy(p + n, site, sizeof(site));
			n += ARRAY_SIZE(site);
		}
	}
	p[n++] = MOV64_IMM(BPF_REG_0, FALLTHROUGH);
	p[n++] = EXIT();
	if (n > max)
		die("user program: %zu insns, room for %zu", n, max);
	t0 = now_us();
	fd = load(p, n, flav == TREE ? "the tree user program" : "the var user program");
	*load_us = now_us() - t0;
	*ninsns = n;
	free(p);
	return fd;
}

struct image {
	uint32_t id, len;
	uint64_t addr;		/* jited_ksyms[0]: bpf_func */
	unsigned char *bytes;	/* the live text */
};

static void prog_image(int fd, struct image *im)
{
	struct bpf_prog_info info = { 0 };
	union bpf_attr a = { 0 };
	uint64_t ksym = 0;
	uint32_t len;

	a.info.bpf_fd = fd;
	a.info.info_len = sizeof(info);
	a.info.info = (uintptr_t)&info;
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a))
		die("BPF_OBJ_GET_INFO_BY_FD: %s", strerror(errno));
	len = info.jited_prog_len;
	if (!len)
		die("program %u is not JITed (jited_prog_len 0)", info.id);
	free(im->bytes);
	im->bytes = calloc(1, len);
	if (!im->bytes)
		die("out of memory");
	memset(&info, 0, sizeof(info));
	info.jited_prog_len = len;
	info.jited_prog_insns = (uintptr_t)im->bytes;
	info.nr_jited_ksyms = 1;
	info.jited_ksyms = (uintptr_t)&ksym;
	memset(&a, 0, sizeof(a));
	a.info.bpf_fd = fd;
	a.info.info_len = sizeof(info);
	a.info.info = (uintptr_t)&info;
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a))
		die("BPF_OBJ_GET_INFO_BY_FD (image): %s", strerror(errno));
	if (info.jited_prog_len != len)
		die("program %u: image length changed (%u, %u)", info.id, len, info.jited_prog_len);
	if (!ksym)
		die("program %u: no image address (kptr_restrict? bpf_jit_kallsyms?)", info.id);
	im->id = info.id;
	im->len = len;
	im->addr = ksym;
}

/* ----------------------------------------------------- image scanning */

static uint64_t *thunks;	/* the kernel's __x86_indirect_* symbols */
static size_t nthunks;

static void read_thunks(void)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[512], name[256], t;
	unsigned long long addr;
	size_t cap = 0;

	if (!f)
		die("/proc/kallsyms: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %c %255s", &addr, &t, name) != 3)
			continue;
		if (strncmp(name, "__x86_indirect_", 15) || !addr)
			continue;
		if (nthunks == cap) {
			cap = cap ? 2 * cap : 64;
			thunks = realloc(thunks, cap * sizeof(*thunks));
			if (!thunks)
				die("out of memory");
		}
		thunks[nthunks++] = addr;
	}
	fclose(f);
	if (!nthunks)
		die("no __x86_indirect_* symbol in /proc/kallsyms (addresses hidden?)");
}

/* A thunk is at most 32 bytes (RETPOLINE_THUNK_SIZE); arrays hold one per register. */
static int is_thunk(uint64_t a)
{
	for (size_t i = 0; i < nthunks; i++)
		if (a >= thunks[i] && a < thunks[i] + 32)
			return 1;
	return 0;
}

struct scan {
	/* rel32 jumps into T0..T7, B (at bpf_func + X86_TAIL_CALL_OFFSET) */
	unsigned int direct[NSLOTS + 1];
	long land;				/* offset in the target they land at; -1 none */
	unsigned int land_mismatch;		/* direct jumps landing elsewhere */
	unsigned int thunk;			/* rel32 jumps/calls to __x86_indirect_* */
	unsigned int inline_ind;		/* lfence; jmp *%rcx or jmp *%rcx; int3 */
};

static struct image tgt_img[NSLOTS + 1];

static void scan_image(const struct image *im, struct scan *sc)
{
	const unsigned char *b = im->bytes;

	memset(sc, 0, sizeof(*sc));
	sc->land = -1;
	for (uint32_t p = 0; p + 5 <= im->len; p++) {
		if (b[p] == 0xe9 || b[p] == 0xe8) {
			int32_t rel;
			uint64_t to;

			memcpy(&rel, b + p + 1, 4);
			to = im->addr + p + 5 + (int64_t)rel;
			for (int k = 0; k <= NSLOTS; k++)
				if (b[p] == 0xe9 && to >= tgt_img[k].addr &&
				    to < tgt_img[k].addr + tgt_img[k].len) {
					sc->direct[k]++;
					if (sc->land < 0)
						sc->land = to - tgt_img[k].addr;
					else if (sc->land != (long)(to - tgt_img[k].addr))
						sc->land_mismatch++;
				}
			if (is_thunk(to))
				sc->thunk++;
		}
	}
	for (uint32_t p = 0; p + 2 <= im->len; p++) {
		if (b[p] != 0xff || b[p + 1] != 0xe1)
			continue;
		if ((p >= 3 && b[p - 3] == 0x0f && b[p - 2] == 0xae && b[p - 1] == 0xe8) ||
		    (p + 2 < im->len && b[p + 2] == 0xcc))
			sc->inline_ind++;
	}
}

static unsigned int direct_total(const struct scan *sc)
{
	unsigned int n = 0;

	for (int k = 0; k <= NSLOTS; k++)
		n += sc->direct[k];
	return n;
}

/* ------------------------------------------------------------ helpers */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct stat3 {
	int n;
	double med, min, max;
};

static struct stat3 stats(const double *v, int n)
{
	double s[MAX_REPS];
	struct stat3 r = { n, 0, 0, 0 };

	if (!n)
		return r;
	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	r.med = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	r.min = s[0];
	r.max = s[n - 1];
	return r;
}

static double timed_update(int map, unsigned int key, int prog)
{
	double t0 = now_us();

	if (map_update(map, key, prog))
		die("BPF_MAP_UPDATE_ELEM key %u: %s", key, strerror(errno));
	return now_us() - t0;
}

static double timed_delete(int map, unsigned int key)
{
	double t0 = now_us();

	if (map_delete(map, key))
		die("BPF_MAP_DELETE_ELEM key %u: %s", key, strerror(errno));
	return now_us() - t0;
}

static int prog_fd_by_id(uint32_t id)
{
	union bpf_attr a = { 0 };

	a.prog_id = id;
	return sys_bpf(BPF_PROG_GET_FD_BY_ID, &a);
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/* What the user program returns with slot state @filled (bit k: slot k holds Tk). */
static long expect_ret(int flav, unsigned int filled, unsigned int key)
{
	if (flav == VAR)
		return filled & (1u << key) ? RET_T(key) : FALLTHROUGH;
	for (int k = 0; k < NSLOTS; k++)
		if (filled & (1u << k))
			return RET_T(k);
	return FALLTHROUGH;
}

static void check_run(int flav, int s, int prog, unsigned int filled, const char *when)
{
	for (unsigned int key = 0; key < (flav == VAR ? NSLOTS : 1); key++) {
		long r = run(prog, key, 0), want = expect_ret(flav, filled, key);

		check(r == want, "%s S=%d %s: test run (cb[0]=%u) returned %ld, want %ld",
		      flav_name[flav], s, when, key, r, want);
	}
}

/* ----------------------------------------------------------------- main */

static int parse_list(const char *arg, int *v, int max)
{
	int n = 0;
	char *dup = strdup(arg), *save = NULL;

	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *end;
		long x = strtol(t, &end, 10);

		if (*end || x < 1 || x > MAX_S || n == max)
			die("-s: want up to %d site counts in 1..%d, got '%s'", max, MAX_S, arg);
		v[n++] = x;
	}
	free(dup);
	if (!n)
		die("-s: empty list");
	return n;
}

static int parse_reps(const char *arg, const char *opt)
{
	char *end;
	long x = strtol(arg, &end, 10);

	if (*end || x < 1 || x > MAX_REPS)
		die("%s: want 1..%d, got '%s'", opt, MAX_REPS, arg);
	return x;
}

static void usage(void)
{
	fprintf(stderr, "usage: poke [-s 1,10,100] [-r N] [-R N] [-c N] [-C N] [-g N] [-d N] [-D] [-m] [-o FILE]\n");
	exit(2);
}

struct result {
	struct stat3 st[NOPS][NFLAV];
	struct image img[NFLAV];
	struct scan scan[NFLAV];
	unsigned int insns[NFLAV];
	double load_us[NFLAV];
	struct stat3 deferred[NFLAV];
	int have_deferred;
};

static struct result res[MAX_SN];
static int sites[MAX_SN], nsites;
static int tfd[NSLOTS + 1];	/* T0..T7, B */

static void deferred_clear(int s, struct result *r, int dreps)
{
	double v[NFLAV][MAX_REPS];
	int n[NFLAV] = { 0 };

	for (int i = 0; i < dreps; i++)
		for (int f = 0; f < NFLAV; f++) {
			int map = prog_array_create(NSLOTS), user, d[NSLOTS], fd = -1;
			uint32_t did[NSLOTS];
			unsigned int ninsns;
			double load_us, t0, t1, deadline;
			struct image im = { 0 };

			if (map < 0)
				die("BPF_MAP_CREATE: %s", strerror(errno));
			user = load_user(f, s, map, &ninsns, &load_us);
			for (int k = 0; k < NSLOTS; k++) {
				d[k] = load_target(RET_D(k));
				prog_image(d[k], &im);
				did[k] = im.id;
				if (map_update(map, k, d[k]))
					die("BPF_MAP_UPDATE_ELEM: %s", strerror(errno));
				close(d[k]);
			}
			free(im.bytes);
			check(run(user, 0, 0) == RET_D(0), "deferred %s S=%d: test run before the clear",
			      flav_name[f], s);
			progress("S=%d %s: deferred clear %d/%d (close the array's last fd, poll target id %u)",
				 s, flav_name[f], i + 1, dreps, did[NSLOTS - 1]);
			mark("tcc: begin deferred %s %d", flav_name[f], s);
			t0 = now_us();
			close(map);
			deadline = t0 + DEFER_TIMEOUT_S * 1e6;
			for (;;) {
				fd = prog_fd_by_id(did[NSLOTS - 1]);
				if (fd < 0)
					break;
				close(fd);
				if (now_us() > deadline)
					break;
				sleep_us(POLL_US);
			}
			t1 = now_us();
			mark("tcc: end");
			if (fd >= 0 || errno != ENOENT) {
				check(0, "deferred %s S=%d: slot 7's target still there after %d s (%s)",
				      flav_name[f], s, DEFER_TIMEOUT_S, fd >= 0 ? "alive" : strerror(errno));
				close(user);
				continue;
			}
			v[f][n[f]++] = t1 - t0;
			for (int k = 0; k < NSLOTS; k++) {
				fd = prog_fd_by_id(did[k]);
				check(fd < 0 && errno == ENOENT, "deferred %s S=%d: slot %d's target still alive",
				      flav_name[f], s, k);
				if (fd >= 0)
					close(fd);
			}
			check(run(user, 0, 0) == FALLTHROUGH,
			      "deferred %s S=%d: the user program does not fall through after the clear",
			      flav_name[f], s);
			close(user);
		}
	for (int f = 0; f < NFLAV; f++)
		r->deferred[f] = stats(v[f], n[f]);
	r->have_deferred = 1;
}

static void bench_s(int si, int reps, int creps)
{
	int s = sites[si], map[NFLAV], user[NFLAV];
	struct result *r = &res[si];
	double v[NOPS][NFLAV][MAX_REPS];
	struct scan sc;

	progress("S=%d: loading (tree: %d poke descriptors)", s, s * NSLOTS);
	for (int f = 0; f < NFLAV; f++) {
		map[f] = prog_array_create(NSLOTS);
		if (map[f] < 0)
			die("BPF_MAP_CREATE: %s", strerror(errno));
		user[f] = load_user(f, s, map[f], &r->insns[f], &r->load_us[f]);
		for (int k = 0; k < NSLOTS; k++)
			if (map_update(map[f], k, tfd[k]))
				die("BPF_MAP_UPDATE_ELEM: %s", strerror(errno));
		prog_image(user[f], &r->img[f]);
		scan_image(&r->img[f], &r->scan[f]);
		check_run(f, s, user[f], 0xff, "all slots filled");
	}
	for (int k = 0; k < NSLOTS; k++)
		check(r->scan[TREE].direct[k] == (unsigned int)s,
		      "tree S=%d: %u direct jumps into T%d's image, want %d", s, r->scan[TREE].direct[k], k, s);
	check(r->scan[TREE].land > 0 && !r->scan[TREE].land_mismatch,
	      "tree S=%d: direct jumps land at %u different offsets in their targets (first %ld), want one",
	      s, r->scan[TREE].land_mismatch + 1, r->scan[TREE].land);
	check(r->scan[TREE].thunk == 0 && r->scan[TREE].inline_ind == 0,
	      "tree S=%d: %u thunk jumps and %u inline indirect jumps, want none", s,
	      r->scan[TREE].thunk, r->scan[TREE].inline_ind);
	if (marker_fd >= 0 && direct_total(&r->scan[VAR])) {
		/* -m, on a kernel with the series under retpolines: the
		 * verifier made each variable-key site a compare tree.
		 */
		for (int k = 0; k < NSLOTS; k++)
			check(r->scan[VAR].direct[k] == (unsigned int)s,
			      "var S=%d (a compare tree): %u direct jumps into T%d's image, want %d",
			      s, r->scan[VAR].direct[k], k, s);
		check(r->scan[VAR].thunk + r->scan[VAR].inline_ind == 0,
		      "var S=%d (a compare tree): %u thunk + %u inline indirect jumps, want none", s,
		      r->scan[VAR].thunk, r->scan[VAR].inline_ind);
	} else {
		check(direct_total(&r->scan[VAR]) == 0,
		      "var S=%d: %u direct jumps into a target, want none", s,
		      direct_total(&r->scan[VAR]));
		check(r->scan[VAR].thunk + r->scan[VAR].inline_ind == (unsigned int)s,
		      "var S=%d: %u thunk + %u inline indirect jumps, want %d in all", s,
		      r->scan[VAR].thunk, r->scan[VAR].inline_ind, s);
	}

	/* With -m: a program loaded into the filled array: its fixup pokes. */
	for (int f = 0; f < NFLAV && marker_fd >= 0; f++) {
		unsigned int ninsns;
		double load_us;
		int fd;

		mark("tcc: begin load %s %d", flav_name[f], s);
		fd = load_user(f, s, map[f], &ninsns, &load_us);
		mark("tcc: end");
		check_run(f, s, fd, 0xff, "loaded into the filled array");
		close(fd);
	}

	/* (a) replace: slot 0 holds T0 or B; swap. */
	progress("S=%d: replace x%d", s, reps);
	for (int i = 0; i < reps; i++)
		for (int f = 0; f < NFLAV; f++) {
			mark("tcc: begin replace %s %d", flav_name[f], s);
			v[OP_REPLACE][f][i] = timed_update(map[f], 0, i % 2 ? tfd[0] : tfd[NSLOTS]);
			mark("tcc: end");
		}
	for (int f = 0; f < NFLAV; f++) {
		if (reps % 2) {
			if (map_update(map[f], 0, tfd[0]))
				die("BPF_MAP_UPDATE_ELEM: %s", strerror(errno));
		}
		check_run(f, s, user[f], 0xff, "after replace");
	}

	/* (c) delete then (b) insert into the emptied slot, rep by rep. */
	progress("S=%d: delete + insert x%d (tree: %d synchronize_rcu() per delete)", s, reps, s);
	for (int i = 0; i < reps; i++) {
		for (int f = 0; f < NFLAV; f++) {
			mark("tcc: begin delete %s %d", flav_name[f], s);
			v[OP_DELETE][f][i] = timed_delete(map[f], 0);
			mark("tcc: end");
			if (i == 0) {
				check_run(f, s, user[f], 0xfe, "slot 0 deleted");
				if (f == TREE) {
					prog_image(user[f], &r->img[f]);
					scan_image(&r->img[f], &sc);
					check(sc.direct[0] == 0 && sc.direct[1] == (unsigned int)s,
					      "tree S=%d after delete: %u jumps to T0 (want 0), %u to T1 (want %d)",
					      s, sc.direct[0], sc.direct[1], s);
				}
			}
			mark("tcc: begin insert %s %d", flav_name[f], s);
			v[OP_INSERT][f][i] = timed_update(map[f], 0, tfd[0]);
			mark("tcc: end");
			if (i == 0) {
				check_run(f, s, user[f], 0xff, "slot 0 inserted");
				if (f == TREE) {
					prog_image(user[f], &r->img[f]);
					scan_image(&r->img[f], &sc);
					check(sc.direct[0] == (unsigned int)s,
					      "tree S=%d after insert: %u jumps to T0, want %d", s, sc.direct[0], s);
				}
			}
		}
		if (s >= 10)
			progress("S=%d: delete + insert %d/%d", s, i + 1, reps);
	}

	/* (d) the deferred clear's loop, from user space: delete 0..7. */
	progress("S=%d: clear8 x%d (tree: %d synchronize_rcu() each)", s, creps, s * NSLOTS);
	for (int i = 0; i < creps; i++) {
		for (int f = 0; f < NFLAV; f++) {
			double t0;

			mark("tcc: begin clear8 %s %d", flav_name[f], s);
			t0 = now_us();
			for (unsigned int k = 0; k < NSLOTS; k++)
				if (map_delete(map[f], k))
					die("BPF_MAP_DELETE_ELEM key %u: %s", k, strerror(errno));
			v[OP_CLEAR8][f][i] = now_us() - t0;
			mark("tcc: end");
			if (i == 0)
				check_run(f, s, user[f], 0, "all slots deleted");
			if (i + 1 < creps)
				for (int k = 0; k < NSLOTS; k++)
					if (map_update(map[f], k, tfd[k]))
						die("BPF_MAP_UPDATE_ELEM: %s", strerror(errno));
		}
		if (s >= 10)
			progress("S=%d: clear8 %d/%d", s, i + 1, creps);
	}
	/* Every slot is empty: closing the arrays pokes nothing. */
	for (int f = 0; f < NFLAV; f++) {
		close(user[f]);
		close(map[f]);
	}
	for (int o = 0; o < NOPS; o++)
		for (int f = 0; f < NFLAV; f++)
			r->st[o][f] = stats(v[o][f], o == OP_CLEAR8 ? creps : reps);
}

int main(int argc, char **argv)
{
	int reps_small = 21, reps_big = 11, creps_small = 7, creps_big = 5, greps = 21, dreps = 3;
	const char *tsv_path = NULL;
	double gv[MAX_REPS];
	struct stat3 gp;
	long desc_size = -1;
	int c;

	t_start = now_us();
	sites[0] = 1, sites[1] = 10, sites[2] = 100, nsites = 3;
	while ((c = getopt(argc, argv, "s:r:R:c:C:g:d:Dmo:h")) != -1) {
		switch (c) {
		case 's': nsites = parse_list(optarg, sites, MAX_SN); break;
		case 'r': reps_small = parse_reps(optarg, "-r"); break;
		case 'R': reps_big = parse_reps(optarg, "-R"); break;
		case 'c': creps_small = parse_reps(optarg, "-c"); break;
		case 'C': creps_big = parse_reps(optarg, "-C"); break;
		case 'g': greps = parse_reps(optarg, "-g"); break;
		case 'd': dreps = parse_reps(optarg, "-d"); break;
		case 'D': dreps = 0; break;
		case 'o': tsv_path = optarg; break;
		case 'm':
			marker_fd = open("/sys/kernel/tracing/trace_marker", O_WRONLY);
			if (marker_fd < 0)
				die("/sys/kernel/tracing/trace_marker: %s", strerror(errno));
			break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if (tsv_path) {
		tsv = fopen(tsv_path, "w");
		if (!tsv)
			die("%s: %s", tsv_path, strerror(errno));
		fprintf(tsv, "kind\tname\tflavour\tS\tfield\tvalue\n");
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	{
		struct btf_blob b = { 0 };
		const char *why = "";
		uint32_t id;

		if (!btf_load(&b, &why) && (id = btf_struct(&b, "bpf_jit_poke_descriptor")))
			desc_size = b.types[id]->size;
		free(b.types);
		free(b.data);
	}
	read_thunks();
	for (int k = 0; k <= NSLOTS; k++) {
		tfd[k] = load_target(k < NSLOTS ? RET_T(k) : RET_B);
		prog_image(tfd[k], &tgt_img[k]);
	}

	/* The grace-period reference. */
	progress("grace-period reference: membarrier(MEMBARRIER_CMD_GLOBAL) x%d", greps);
	for (int i = 0; i < greps; i++) {
		double t0 = now_us();

		if (syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0))
			die("membarrier(MEMBARRIER_CMD_GLOBAL): %s", strerror(errno));
		gv[i] = now_us() - t0;
	}
	gp = stats(gv, greps);

	for (int i = 0; i < nsites; i++) {
		int big = sites[i] > 10;

		bench_s(i, big ? reps_big : reps_small, big ? creps_big : creps_small);
		if (dreps)
			deferred_clear(sites[i], &res[i], dreps);
	}

	/* ---- report */
	printf("# grace-period reference, membarrier(MEMBARRIER_CMD_GLOBAL) = one synchronize_rcu() (%ld CPUs online):\n",
	       sysconf(_SC_NPROCESSORS_ONLN));
	printf("#   median %.0f us [min %.0f, max %.0f] over %d\n", gp.med, gp.min, gp.max, gp.n);
	out_tsv("gp", "membarrier_global", "-", 0, "median_us", gp.med);
	out_tsv("gp", "membarrier_global", "-", 0, "min_us", gp.min);
	out_tsv("gp", "membarrier_global", "-", 0, "max_us", gp.max);
	out_tsv("gp", "membarrier_global", "-", 0, "n", gp.n);

	printf("\n# JITed user programs (slots 0..7 holding T0..T7; jumps counted in the live image)\n");
	printf("%-5s %4s %6s %9s %8s %8s %7s %7s %9s\n", "flav", "S", "insns", "jited_len", "pokes",
	       "direct", "thunk", "inline", "load_us");
	for (int i = 0; i < nsites; i++)
		for (int f = 0; f < NFLAV; f++) {
			struct result *r = &res[i];
			unsigned int pokes = f == TREE ? sites[i] * NSLOTS : 0;

			printf("%-5s %4d %6u %9u %8u %8u %7u %7u %9.0f\n", flav_name[f], sites[i], r->insns[f],
			       r->img[f].len, pokes, direct_total(&r->scan[f]), r->scan[f].thunk,
			       r->scan[f].inline_ind, r->load_us[f]);
			out_tsv("image", "user", flav_name[f], sites[i], "insns", r->insns[f]);
			out_tsv("image", "user", flav_name[f], sites[i], "jited_len", r->img[f].len);
			out_tsv("image", "user", flav_name[f], sites[i], "poke_descriptors", pokes);
			out_tsv("image", "user", flav_name[f], sites[i], "direct_jumps", direct_total(&r->scan[f]));
			out_tsv("image", "user", flav_name[f], sites[i], "thunk_jumps", r->scan[f].thunk);
			out_tsv("image", "user", flav_name[f], sites[i], "inline_indirect", r->scan[f].inline_ind);
			out_tsv("image", "user", flav_name[f], sites[i], "load_us", r->load_us[f]);
		}
	{
		int lo = 0, hi = 0;

		for (int i = 1; i < nsites; i++) {
			if (sites[i] < sites[lo])
				lo = i;
			if (sites[i] > sites[hi])
				hi = i;
		}
		printf("# direct jumps land at bpf_func + %ld of their target (X86_TAIL_CALL_OFFSET)\n",
		       res[hi].scan[TREE].land);
		printf("# image bytes per site (growth of jited_len from S=%d to S=%d):", sites[lo], sites[hi]);
		for (int f = 0; f < NFLAV; f++) {
			double per = sites[hi] > sites[lo] ?
				(double)((long)res[hi].img[f].len - (long)res[lo].img[f].len) / (sites[hi] - sites[lo]) :
				(double)res[hi].img[f].len / sites[hi];

			printf(" %s %.1f", flav_name[f], per);
			out_tsv("image", "bytes_per_site", flav_name[f], 0, "bytes", per);
		}
		printf("\n");
		if (desc_size > 0) {
			printf("# poke descriptors per tree site: %d x sizeof(struct bpf_jit_poke_descriptor) = %d x %ld = %ld bytes of poke_tab (BTF)\n",
			       NSLOTS, NSLOTS, desc_size, NSLOTS * desc_size);
			out_tsv("image", "poke_tab_bytes_per_site", "tree", 0, "bytes", NSLOTS * desc_size);
		}
	}

	printf("\n# slot changes, us per bpf(2) call (clear8: the 8 deletes together); median [min..max] (reps)\n");
	printf("%-8s %4s %30s %34s %9s %13s\n", "op", "S", "var", "tree", "tree/var", "(tree-var)/S");
	for (int i = 0; i < nsites; i++)
		for (int o = 0; o < NOPS; o++) {
			struct stat3 *v = &res[i].st[o][VAR], *t = &res[i].st[o][TREE];
			double ratio = v->med > 0 ? t->med / v->med : 0, per = (t->med - v->med) / sites[i];
			char a[64], b[64];

			snprintf(a, sizeof(a), "%.1f [%.1f..%.1f] (%d)", v->med, v->min, v->max, v->n);
			snprintf(b, sizeof(b), "%.1f [%.1f..%.1f] (%d)", t->med, t->min, t->max, t->n);
			printf("%-8s %4d %30s %34s %9.1f %13.1f\n", op_name[o], sites[i], a, b, ratio, per);
			for (int f = 0; f < NFLAV; f++) {
				struct stat3 *x = &res[i].st[o][f];

				out_tsv("op", op_name[o], flav_name[f], sites[i], "median_us", x->med);
				out_tsv("op", op_name[o], flav_name[f], sites[i], "min_us", x->min);
				out_tsv("op", op_name[o], flav_name[f], sites[i], "max_us", x->max);
				out_tsv("op", op_name[o], flav_name[f], sites[i], "n", x->n);
			}
			out_tsv("op", op_name[o], "tree/var", sites[i], "ratio_median", ratio);
			out_tsv("op", op_name[o], "tree-var", sites[i], "us_per_site", per);
		}
	printf("# per tree poke descriptor: delete (median/S) and clear8 (median/(8*S)), against one grace period (%.0f us)\n",
	       gp.med);
	for (int i = 0; i < nsites; i++) {
		double d = res[i].st[OP_DELETE][TREE].med / sites[i];
		double c8 = res[i].st[OP_CLEAR8][TREE].med / (NSLOTS * sites[i]);

		printf("#   S=%-3d delete %.0f us/descriptor, clear8 %.0f us/descriptor (%.2f, %.2f grace periods)\n",
		       sites[i], d, c8, gp.med > 0 ? d / gp.med : 0, gp.med > 0 ? c8 / gp.med : 0);
		out_tsv("per_descriptor", "delete", "tree", sites[i], "us", d);
		out_tsv("per_descriptor", "clear8", "tree", sites[i], "us", c8);
	}
	if (dreps) {
		printf("\n# the real deferred clear: close(last array fd) -> slot 7's target freed, us; median [min..max] (reps)\n");
		printf("%-4s %34s %36s %9s %13s\n", "S", "var", "tree", "tree/var", "tree/(8*S)");
		for (int i = 0; i < nsites; i++) {
			struct stat3 *v = &res[i].deferred[VAR], *t = &res[i].deferred[TREE];
			char a[64], b[64];

			snprintf(a, sizeof(a), "%.0f [%.0f..%.0f] (%d)", v->med, v->min, v->max, v->n);
			snprintf(b, sizeof(b), "%.0f [%.0f..%.0f] (%d)", t->med, t->min, t->max, t->n);
			printf("%-4d %34s %36s %9.1f %13.0f\n", sites[i], a, b, v->med > 0 ? t->med / v->med : 0,
			       t->med / (NSLOTS * sites[i]));
			for (int f = 0; f < NFLAV; f++) {
				struct stat3 *x = &res[i].deferred[f];

				out_tsv("deferred_clear", "close_to_freed", flav_name[f], sites[i], "median_us", x->med);
				out_tsv("deferred_clear", "close_to_freed", flav_name[f], sites[i], "min_us", x->min);
				out_tsv("deferred_clear", "close_to_freed", flav_name[f], sites[i], "max_us", x->max);
				out_tsv("deferred_clear", "close_to_freed", flav_name[f], sites[i], "n", x->n);
			}
			out_tsv("deferred_clear", "close_to_freed", "tree/var", sites[i], "ratio_median",
				v->med > 0 ? t->med / v->med : 0);
		}
		printf("# (polled every %d us with BPF_PROG_GET_FD_BY_ID: resolution about %d us plus a syscall)\n",
		       POLL_US, POLL_US);
	} else {
		printf("\n# the real deferred clear: not measured (-D)\n");
	}
	for (int k = 0; k <= NSLOTS; k++) {
		close(tfd[k]);
		free(tgt_img[k].bytes);
	}
	for (int i = 0; i < nsites; i++)
		for (int f = 0; f < NFLAV; f++)
			free(res[i].img[f].bytes);
	free(thunks);
	if (tsv && fclose(tsv))
		die("%s: %s", tsv_path, strerror(errno));
	printf("\npoke: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

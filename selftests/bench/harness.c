// SPDX-License-Identifier: GPL-2.0
/*
 * Host harness for the tail-call benchmark (scripts/bench.sh): executes the
 * JITed images the guest dumped, natively, and times them.
 *
 * The cases come from scripts/bench-prepare.py: for every program its bytes
 * and what to relocate. The harness lays out, like the kernel does, a
 * struct bpf_array (max_entries and ptrs[] at the offsets of the built
 * vmlinux, the cached targets at ptrs[index_mask + 1 + key]) and one
 * struct bpf_prog per program, each on its own page (bpf_func at its
 * offset), copies the images into executable memory, patches the prog
 * array's address (and the legacy variant's poisoning array's: an empty
 * prog array its call site reaches on a path that never runs) and the
 * poked direct jumps, and for form "plain" checks
 * that the bytes it executes are the dumped bytes except in the relocated
 * fields. Every call's return value is checked (N + 1: the chain ran).
 * The gotox case gets its jump table (insn array) the same way.
 *
 *   harness [-d DUMP_DIR] CASES time ROUNDS TARGET_MS
 *       hot: the chain in a tight loop, 15 batches, the median batch;
 *       cold: before each call the lines of the prog array, cache slots and
 *       bpf_prog structures it reads are clflush'ed (outside the timed
 *       region), each call timed with rdtsc, the median call. Cases are interleaved within
 *       each round, the order rotated every round. One JSON line per
 *       measurement on stdout.
 *   harness [-d DUMP_DIR] CASES cg CASE hot|cold ITERS EVICT_BYTES
 *       for cachegrind: ITERS calls; cold evicts
 *       by reading EVICT_BYTES before each call (cachegrind ignores clflush).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <x86intrin.h>

#define MAX_PROGS 40
#define MAX_CASES 64
#define MAX_RELS 256
#define PAGE 4096

enum { R_ARRAY, R_PROG, R_THUNK, R_TABLE, R_OTHER };

/* Relocations that hold a 64-bit address (the others a rel32). */
#define REL_ABS64(k) ((k) == R_ARRAY || (k) == R_TABLE || (k) == R_OTHER)

struct rel { int slot, kind, off, tslot, addend; };
struct img { size_t len; char file[256]; unsigned char *bytes, *code; };
struct bcase {
	char name[96], variant[16], form[16];
	int n, max_entries, index_mask, nprogs, nrel, nflush, ntab;
	int tab_off[MAX_PROGS];	/* gotox: JITed offsets of the jump targets */
	void **table;
	struct img img[MAX_PROGS];
	struct rel rel[MAX_RELS];
	unsigned char *array, *other, *prog[MAX_PROGS + 1];
	void *flush[4 * MAX_PROGS + 8];
	unsigned int (*entry)(void *ctx, const void *insn);
};

static struct bcase cases[MAX_CASES];
static int ncases, off_max, off_ptrs, off_func, tail_off, ctx_off;
static const char *dump_dir;
static _Alignas(64) unsigned char ctx[1024];

/* __x86_indirect_thunk_rcx with X86_FEATURE_RETPOLINE (arch/x86/lib/retpoline.S). */
extern const unsigned char tcc_thunk_rcx[], tcc_thunk_rcx_end[];
__asm__(".pushsection .text\n"
	".balign 32\n"
	".globl tcc_thunk_rcx\n"
	"tcc_thunk_rcx:\n"
	"	call 2f\n"
	"1:	pause\n"
	"	lfence\n"
	"	jmp 1b\n"
	"2:	mov %rcx, (%rsp)\n"
	"	ret\n"
	"	int3\n"
	".globl tcc_thunk_rcx_end\n"
	"tcc_thunk_rcx_end:\n"
	".popsection\n");

static void die(const char *what, const char *name)
{
	fprintf(stderr, "bench harness: %s%s%s\n", what, name ? ": " : "", name ? name : "");
	exit(1);
}

static void *map_pages(size_t size, int prot)
{
	void *p = mmap(NULL, (size + PAGE - 1) & ~(size_t)(PAGE - 1), prot,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		die("mmap failed", NULL);
	return p;
}

static int kv(const char *line, const char *key)
{
	const char *p = strstr(line, key);

	if (!p)
		die("missing field", key);
	return atoi(p + strlen(key));
}

static void read_cases(const char *path)
{
	FILE *f = fopen(path, "r");
	static char line[1 << 20];
	struct bcase *c = NULL;

	if (!f)
		die("cannot open", path);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "meta ", 5)) {
			off_max = kv(line, "off_max=");
			off_ptrs = kv(line, "off_ptrs=");
			off_func = kv(line, "off_func=");
			tail_off = kv(line, "tail_off=");
			ctx_off = kv(line, "ctx_off=");
			if (ctx_off < 0 || ctx_off + 4 > (int)sizeof(ctx))
				die("ctx offset out of range", NULL);
		} else if (!strncmp(line, "case ", 5)) {
			if (ncases == MAX_CASES)
				die("too many cases", NULL);
			c = &cases[ncases++];
			if (sscanf(line, "case %95s variant=%15s n=%d form=%15s", c->name,
				   c->variant, &c->n, c->form) != 4)
				die("bad case line", line);
			c->max_entries = kv(line, "max_entries=");
			c->index_mask = kv(line, "index_mask=");
			c->nprogs = kv(line, "nprogs=");
			if (c->nprogs < 1 || c->nprogs > MAX_PROGS)
				die("bad program count", c->name);
		} else if (!strncmp(line, "img ", 4)) {
			int slot, pos;
			size_t len;
			char file[256];

			if (!c || sscanf(line, "img %d %zu %255s %n", &slot, &len, file, &pos) != 3 ||
			    slot < 0 || slot >= c->nprogs || strlen(line + pos) < 2 * len)
				die("bad img line", c ? c->name : NULL);
			c->img[slot].len = len;
			snprintf(c->img[slot].file, sizeof(c->img[slot].file), "%s", file);
			c->img[slot].bytes = malloc(len);
			for (size_t i = 0; i < len; i++)
				sscanf(line + pos + 2 * i, "%2hhx", &c->img[slot].bytes[i]);
		} else if (!strncmp(line, "tab ", 4)) {
			int k, o;

			if (!c || sscanf(line, "tab %d %d", &k, &o) != 2 || k != c->ntab ||
			    k >= MAX_PROGS || o < 0)
				die("bad tab line", c ? c->name : NULL);
			c->tab_off[c->ntab++] = o;
		} else if (!strncmp(line, "rel ", 4)) {
			struct rel *r;
			char kind[16];
			int n;

			if (!c || c->nrel == MAX_RELS)
				die("bad rel line", NULL);
			r = &c->rel[c->nrel++];
			n = sscanf(line, "rel %d %15s %d %d %d", &r->slot, kind, &r->off, &r->tslot, &r->addend);
			r->kind = !strcmp(kind, "array") ? R_ARRAY : !strcmp(kind, "prog") ? R_PROG :
				  !strcmp(kind, "thunk") ? R_THUNK : !strcmp(kind, "table") ? R_TABLE :
				  !strcmp(kind, "other") ? R_OTHER : -1;
			if (r->kind < 0 || n < 3 || (r->kind == R_PROG && n != 5) ||
			    r->slot < 0 || r->slot >= c->nprogs ||
			    (r->kind == R_PROG && (r->tslot < 0 || r->tslot >= c->nprogs)))
				die("bad relocation", c->name);
		}
	}
	fclose(f);
	if (!ncases)
		die("no cases in", path);
}

static void put_rel32(unsigned char *at, const unsigned char *target)
{
	int64_t d = target - (at + 4);
	int32_t d32 = (int32_t)d;

	if (d != d32)
		die("relocation out of rel32 reach", NULL);
	memcpy(at, &d32, 4);
}

/* Is byte i of image slot inside a relocated field? */
static int in_reloc(const struct bcase *c, int slot, size_t i)
{
	for (int r = 0; r < c->nrel; r++) {
		const struct rel *x = &c->rel[r];
		size_t w = REL_ABS64(x->kind) ? 8 : 4;

		if (x->slot == slot && i >= (size_t)x->off && i < x->off + w)
			return 1;
	}
	return 0;
}

static void add_flush(struct bcase *c, void *p)
{
	void *line = (void *)((uintptr_t)p & ~(uintptr_t)63);

	for (int i = 0; i < c->nflush; i++)
		if (c->flush[i] == line)
			return;
	c->flush[c->nflush++] = line;
}

static void setup(struct bcase *c)
{
	size_t total = 64, pos = 64, asize;
	unsigned char *code;
	void **ptrs;

	for (int i = 0; i < c->nprogs; i++)
		total += (c->img[i].len + 63) & ~(size_t)63;
	code = map_pages(total, PROT_READ | PROT_WRITE);
	memcpy(code, tcc_thunk_rcx, tcc_thunk_rcx_end - tcc_thunk_rcx);
	for (int i = 0; i < c->nprogs; i++) {
		c->img[i].code = code + pos;
		memcpy(c->img[i].code, c->img[i].bytes, c->img[i].len);
		pos += (c->img[i].len + 63) & ~(size_t)63;
	}
	/* struct bpf_array: max_entries, ptrs[], cache after ptrs[index_mask]. */
	asize = off_ptrs + 16 * (size_t)(c->index_mask + 1) + 64;
	c->array = map_pages(asize, PROT_READ | PROT_WRITE);
	memcpy(c->array + off_max, &c->max_entries, 4);
	ptrs = (void **)(c->array + off_ptrs);
	/* The poisoning array: same size, every slot empty (never reached). */
	c->other = map_pages(asize, PROT_READ | PROT_WRITE);
	memcpy(c->other + off_max, &c->max_entries, 4);
	for (int i = 0; i < c->nprogs; i++) {
		/* struct bpf_prog, vmalloc'ed: a page of its own. */
		c->prog[i] = map_pages(PAGE, PROT_READ | PROT_WRITE);
		*(void **)(c->prog[i] + off_func) = c->img[i].code;
		if (c->max_entries) {
			if (i >= c->max_entries)
				die("more programs than slots", c->name);
			ptrs[i] = c->prog[i];
			ptrs[c->index_mask + 1 + i] = c->img[i].code + tail_off;
		}
	}
	/* gotox: the insn array's jump table (JITed addresses). */
	c->table = map_pages(8 * (c->ntab + 1), PROT_READ | PROT_WRITE);
	for (int k = 0; k < c->ntab; k++) {
		if ((size_t)c->tab_off[k] >= c->img[0].len)
			die("jump table entry outside the image", c->name);
		c->table[k] = c->img[0].code + c->tab_off[k];
	}
	for (int r = 0; r < c->nrel; r++) {
		const struct rel *x = &c->rel[r];
		unsigned char *at = c->img[x->slot].code + x->off;

		if (x->off < 0 || (size_t)x->off + (REL_ABS64(x->kind) ? 8 : 4) > c->img[x->slot].len)
			die("relocation outside its image", c->name);
		if (x->kind == R_ARRAY)
			memcpy(at, &c->array, 8);
		else if (x->kind == R_OTHER)
			memcpy(at, &c->other, 8);
		else if (x->kind == R_TABLE)
			memcpy(at, &c->table, 8);
		else if (x->kind == R_PROG)
			put_rel32(at, c->img[x->tslot].code + x->addend);
		else
			put_rel32(at, code);
	}
	/* What runs is what the JIT emitted, but for the relocated fields. */
	if (!strcmp(c->form, "plain")) {
		for (int i = 0; i < c->nprogs; i++) {
			char path[600];
			unsigned char buf[16384];
			size_t n;
			FILE *f;

			snprintf(path, sizeof(path), "%s/%s", dump_dir, c->img[i].file);
			f = fopen(path, "rb");
			if (!f)
				die("cannot open the dumped image", path);
			n = fread(buf, 1, sizeof(buf), f);
			fclose(f);
			if (n != c->img[i].len)
				die("the image differs in size from the guest's dump", path);
			for (size_t b = 0; b < n; b++)
				if (!in_reloc(c, i, b) && buf[b] != c->img[i].code[b])
					die("the image to execute differs from the guest's dump", path);
		}
	}
	if (mprotect(code, (total + PAGE - 1) & ~(size_t)(PAGE - 1), PROT_READ | PROT_EXEC))
		die("mprotect failed", c->name);
	c->entry = (unsigned int (*)(void *, const void *))c->img[0].code;
	/* Lines a call reads: max_entries, every slot and cache slot, bpf_func. */
	add_flush(c, c->array + off_max);
	for (int i = 0; i <= c->nprogs && c->max_entries; i++) {
		add_flush(c, &ptrs[i]);
		add_flush(c, &ptrs[c->index_mask + 1 + i]);
	}
	for (int i = 0; i < c->nprogs; i++)
		add_flush(c, c->prog[i] + off_func);
	for (int k = 0; k < c->ntab; k++)
		add_flush(c, &c->table[k]);
}

__attribute__((noinline)) unsigned int run_one(struct bcase *c)
{
	*(volatile uint32_t *)(ctx + ctx_off) = 0;
	return c->entry(ctx, NULL);
}

static void check_ret(const struct bcase *c, unsigned int r)
{
	if (r != (unsigned int)c->n + 1) {
		fprintf(stderr, "bench harness: %s returned %u, want %d\n", c->name, r, c->n + 1);
		exit(1);
	}
}

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC_RAW, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static double ns_per_tick;

static void calibrate_tsc(void)
{
	double t0 = now_ns(), t1;
	uint64_t c0 = __rdtsc(), c1;

	do {
		t1 = now_ns();
	} while (t1 - t0 < 100e6);
	c1 = __rdtsc();
	ns_per_tick = (t1 - t0) / (double)(c1 - c0);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/*
 * The median of BATCHES batches of iters / BATCHES calls, in ns per call:
 * a batch hit by an interrupt or a preemption (the host is shared) does
 * not move it. *mean gets the plain mean over all calls.
 */
#define BATCHES 15

static double time_hot(struct bcase *c, long iters, double *mean)
{
	double t[BATCHES], total = 0;
	long per = iters / BATCHES + 1;

	for (int i = 0; i < 100; i++)
		check_ret(c, run_one(c));
	for (int b = 0; b < BATCHES; b++) {
		double t0 = now_ns();

		for (long i = 0; i < per; i++)
			check_ret(c, run_one(c));
		t[b] = (now_ns() - t0) / per;
		total += t[b];
	}
	qsort(t, BATCHES, sizeof(t[0]), cmp_double);
	*mean = total / BATCHES;
	return t[BATCHES / 2];
}

static void flush(const struct bcase *c)
{
	for (int i = 0; i < c->nflush; i++)
		_mm_clflush(c->flush[i]);
	_mm_mfence();
}

/* Each call timed alone after the flush; the median call, in ns. */
static double time_cold(struct bcase *c, long iters, double *mean)
{
	static double t[1 << 20];
	double total = 0;
	unsigned int aux, r;

	if (iters > (long)(sizeof(t) / sizeof(t[0])))
		iters = sizeof(t) / sizeof(t[0]);
	for (long i = 0; i < iters; i++) {
		uint64_t t0, t1;

		flush(c);
		_mm_lfence();
		t0 = __rdtsc();
		_mm_lfence();
		r = run_one(c);
		t1 = __rdtscp(&aux);
		_mm_lfence();
		check_ret(c, r);
		t[i] = (t1 - t0) * ns_per_tick;
		total += t[i];
	}
	qsort(t, iters, sizeof(t[0]), cmp_double);
	*mean = total / iters;
	return t[iters / 2];
}

static int cmd_time(int rounds, double target_ms)
{
	long iters[MAX_CASES][2];
	const char *modes[2] = { "hot", "cold" };

	calibrate_tsc();
	printf("{\"tsc_ns_per_tick\": %.6f}\n", ns_per_tick);
	/* Iterations per measurement: about target_ms each. */
	for (int i = 0; i < ncases; i++) {
		double m, h = time_hot(&cases[i], 3000, &m), k = time_cold(&cases[i], 500, &m);

		iters[i][0] = target_ms * 1e6 / h + 1;
		iters[i][1] = target_ms * 1e6 / (k + 60 * ns_per_tick * cases[i].nflush) + 1;
	}
	for (int r = 0; r < rounds; r++) {
		for (int m = 0; m < 2; m++) {
			for (int k = 0; k < ncases; k++) {
				int i = (k + r) % ncases;
				struct bcase *c = &cases[i];
				double mean, ns = m ? time_cold(c, iters[i][1], &mean) :
						      time_hot(c, iters[i][0], &mean);

				printf("{\"case\": \"%s\", \"variant\": \"%s\", \"form\": \"%s\", \"n\": %d, "
				       "\"mode\": \"%s\", \"round\": %d, \"iters\": %ld, \"ns_per_run\": %.3f, "
				       "\"ns_per_run_mean\": %.3f}\n",
				       c->name, c->variant, c->form, c->n, modes[m], r, iters[i][m], ns, mean);
			}
			fflush(stdout);
		}
	}
	return 0;
}

static int cmd_cg(const char *name, const char *mode, long iters, size_t evict_bytes)
{
	struct bcase *c = NULL;
	volatile unsigned char *ev = NULL;
	unsigned int sink = 0;
	int cold = !strcmp(mode, "cold");

	for (int i = 0; i < ncases; i++)
		if (!strcmp(cases[i].name, name))
			c = &cases[i];
	if (!c)
		die("no such case", name);
	if (cold)
		ev = map_pages(evict_bytes, PROT_READ | PROT_WRITE);
	for (long i = 0; i < iters; i++) {
		if (cold)
			for (size_t b = 0; b < evict_bytes; b += 64)
				sink += ev[b];
		check_ret(c, run_one(c));
	}
	printf("cg %s %s %ld done%s\n", name, mode, iters, sink == 0xdeadbeef ? " " : "");
	return 0;
}

int main(int argc, char **argv)
{
	int a = 1;

	if (argc > 2 && !strcmp(argv[1], "-d")) {
		dump_dir = argv[2];
		a = 3;
	}
	if (argc - a < 2 || !dump_dir)
		die("usage: harness -d DUMP_DIR CASES time ROUNDS TARGET_MS | cg CASE hot|cold ITERS EVICT_BYTES", NULL);
	read_cases(argv[a]);
	for (int i = 0; i < ncases; i++)
		setup(&cases[i]);
	if (!strcmp(argv[a + 1], "time") && argc - a == 4)
		return cmd_time(atoi(argv[a + 2]), atof(argv[a + 3]));
	if (!strcmp(argv[a + 1], "cg") && argc - a == 6)
		return cmd_cg(argv[a + 2], argv[a + 3], atol(argv[a + 4]), strtoull(argv[a + 5], NULL, 0));
	die("bad command line", NULL);
	return 1;
}

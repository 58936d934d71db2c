// SPDX-License-Identifier: GPL-2.0
/*
 * Named dispatch workloads (scripts/bench-workloads.sh): one event per
 * invocation, a key per event read from a table, one dispatch per event
 * into a large prog array, and the work a real handler does.
 *
 *   falco           Falco-shaped syscall dispatch: a 512-entry prog array
 *                   keyed by the syscall number (syscall_exit_tail_table),
 *                   keys drawn from a recorded syscall mix
 *                   (selftests/bench/data/), one handler per syscall of the
 *                   mix copying a 96-byte event (header and six arguments)
 *                   into an 8 MiB ring (Falco's default per-CPU buffer).
 *   cilium-zipf     Cilium-shaped policy dispatch: a 65535-entry prog array
 *   cilium-uniform  keyed by the endpoint id, 256 live endpoints with ids
 *                   drawn at random from 1..4095, keys Zipf (s = 1) or
 *                   uniform over them; each handler reads a 64-byte policy
 *                   entry of its endpoint (a 16 KiB table per endpoint,
 *                   picked by a hash of the packet number) and updates its
 *                   packet and byte counters: 4 MiB touched, more than L2.
 *   usm             small-array protocol dispatch (as in Datadog's USM): an
 *                   8-entry prog array keyed by a protocol id, an
 *                   illustrative skewed mix (50/20/10/8/5/4/2/1 %, not a
 *                   recording), falco's handler work.
 *
 * Variants of each workload's dispatch site, the handlers being the same
 * programs in every tail-call variant:
 *
 *   cache   bpf_tail_call() through the array the verifier knows (the
 *           series: cached target, immediate bound)
 *   legacy  the same entry with the site poisoned by a second prog array on
 *           a path that never runs (the legacy sequence)
 *   gotox   one program: BPF_JA|BPF_X through a BPF_MAP_TYPE_INSN_ARRAY
 *           jump table as large as the prog array, a block per handler
 *   floor   one program: the key read and the handler's work, no dispatch
 *   tree    (arrays of up to 8 slots) a bound check, a balanced tree of
 *           compares and one constant-key tail call per slot: what
 *           bpf_tail_call_tree.h (selftests/bpf) compiles to, direct
 *           (poked) jumps on any kernel
 *
 * The state (event counter, ring position, counters, key table, ring or
 * policy tables) is the value of one mmapable array map; the programs
 * reach it through ld_imm64 of its value address.
 *
 *   dispatch load OUT_DIR SYSCALL_TSV [-v VARIANTS] [-t ROUNDS] WORKLOAD...
 *       load (and check by running them) every variant, dump the JITed
 *       images, their translated ld_imm64 references, the jump tables and
 *       the keys into OUT_DIR (manifest.txt); with -t also time every
 *       variant in this kernel with BPF_PROG_TEST_RUN (ROUNDS rounds,
 *       variants interleaved) into OUT_DIR/kernel-time.txt.
 *   dispatch harness CASES ROUNDS TARGET_MS
 *       execute the images natively from the cases file
 *       (scripts/bench-workloads-prepare.py), one JSON line per
 *       measurement.
 *
 * Exits non-zero on any failure.
 */
#define _GNU_SOURCE
#include "../bpf_raw.h"
#include <sys/mman.h>
#include <time.h>

/* The state value. */
#define S_IDX		0	/* u32 events so far (the entry bumps it) */
#define S_POS		8	/* u64 ring position (falco) */
#define S_CALLS		16	/* u64 handler runs */
#define S_FELL		24	/* u64 events no handler took */
#define S_ARGS		64	/* 10 x u64 syscall arguments (the event's payload) */
#define S_KEYS		256	/* u32 keys[NKEYS] */
#define NKEYS		16384
#define S_REGION	69632	/* ring or policy tables, page aligned */
#define EV_SIZE		96
#define RING		(8u << 20)
#define EP_MAX		4096
#define EP_SHIFT	14	/* 16 KiB of policy per endpoint */
#define POL_ENTRIES	256	/* 64-byte entries */
#define N_EP		256
#define HASH_MUL	0x2545F491
#define POISON_KEY	0x7fffffff
#define MAX_LIVE	512

#define MAP_TYPE_INSN_ARRAY 34	/* 7.3 uapi; the host's headers may predate it */
struct insn_array_value {
	uint32_t orig_off, xlated_off, jitted_off, pad;
};

struct workload {
	const char *name;
	int kind;			/* 0 falco, 1 cilium */
	uint32_t entries, value_size;
	uint32_t nlive, live[MAX_LIVE];	/* the keys with a handler */
	uint32_t keys[NKEYS];
};

static uint32_t wl_value_size(int kind)
{
	return kind ? S_REGION + ((uint32_t)EP_MAX << EP_SHIFT) + 64 : S_REGION + RING + 128;
}

static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "dispatch: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

/*
 * The last event's effect, which only the right handler leaves: falco's
 * event header holds the key and the event number, cilium's endpoint entry
 * its packet counter. *why on failure.
 */
static int check_last(const struct workload *w, const uint8_t *st, const char **why)
{
	uint32_t idx = *(const uint32_t *)(st + S_IDX);
	uint32_t key = w->keys[(idx - 1) & (NKEYS - 1)];

	if (!w->kind) {
		uint64_t pos = *(const uint64_t *)(st + S_POS) - EV_SIZE;
		const uint64_t *ev = (const uint64_t *)(st + S_REGION + (pos & (RING - 1)));

		if (ev[0] != key || ev[1] != idx) {
			*why = "the last event's header is not the key's handler's";
			return -1;
		}
		return 0;
	}
	uint64_t e = ((uint64_t)idx * HASH_MUL >> 16) & (POL_ENTRIES - 1);
	const uint64_t *pol = (const uint64_t *)(st + S_REGION + ((uint64_t)key << EP_SHIFT) + e * 64);

	if (!pol[1]) {
		*why = "the last packet's endpoint entry was not counted";
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ loader */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

/* Draw NKEYS keys with the weights w[0..n) over vals[0..n). */
static void draw(struct workload *w, const uint32_t *vals, const double *wt, uint32_t n)
{
	double sum = 0, acc;

	for (uint32_t i = 0; i < n; i++)
		sum += wt[i];
	for (uint32_t k = 0; k < NKEYS; k++) {
		double u = (next_rand() >> 11) * (1.0 / 9007199254740992.0) * sum;
		uint32_t i = 0;

		for (acc = wt[0]; acc <= u && i + 1 < n; acc += wt[++i])
			;
		w->keys[k] = vals[i];
	}
}

static void setup_falco(struct workload *w, const char *tsv)
{
	static double wt[MAX_LIVE];
	char line[256];
	FILE *f = fopen(tsv, "r");

	if (!f)
		fail("cannot open %s: %s", tsv, strerror(errno));
	rng = 0x9e3779b97f4a7c15ull;	/* each workload its own keys, in any order */
	while (fgets(line, sizeof(line), f)) {
		unsigned int nr;
		double calls;
		char name[64];

		if (line[0] == '#' || sscanf(line, "%u %63s %lf", &nr, name, &calls) != 3)
			continue;
		if (nr >= w->entries || w->nlive == MAX_LIVE || calls <= 0)
			fail("%s: bad line: %s", tsv, line);
		wt[w->nlive] = calls;
		w->live[w->nlive++] = nr;
	}
	fclose(f);
	if (!w->nlive)
		fail("%s: no syscalls", tsv);
	draw(w, w->live, wt, w->nlive);
}

static void setup_cilium(struct workload *w, int zipf)
{
	static double wt[N_EP];
	uint8_t used[EP_MAX] = { 0 };

	rng = 0x853c49e6748fea9bull;	/* the same endpoints for both key laws */
	while (w->nlive < N_EP) {
		uint32_t id = 1 + next_rand() % (EP_MAX - 1);

		if (used[id])
			continue;
		used[id] = 1;
		wt[w->nlive] = zipf ? 1.0 / (w->nlive + 1) : 1.0;
		w->live[w->nlive++] = id;
	}
	draw(w, w->live, wt, w->nlive);
}

static void setup_usm(struct workload *w)
{
	static const double wt[8] = { 50, 20, 10, 8, 5, 4, 2, 1 };

	rng = 0xda942042e4dd58b5ull;
	for (uint32_t k = 0; k < 8; k++)
		w->live[w->nlive++] = k;
	draw(w, w->live, wt, 8);
}

struct code {
	struct bpf_insn i[8192];
	int n;
};

static void e(struct code *c, struct bpf_insn x)
{
	if (c->n == (int)ARRAY_SIZE(c->i))
		fail("program too long");
	c->i[c->n++] = x;
}

#define ALU64_K(op, d, imm)	INSN(BPF_ALU64 | (op) | BPF_K, d, 0, 0, imm)
#define ALU64_X(op, d, s)	INSN(BPF_ALU64 | (op) | BPF_X, d, s, 0, 0)
#define STX(sz, d, s, o)	INSN(BPF_STX | BPF_MEM | (sz), d, s, o, 0)
#define LDX(sz, d, s, o)	INSN(BPF_LDX | BPF_MEM | (sz), d, s, o, 0)

static void ld_value(struct code *c, int reg, int map, int off)
{
	e(c, INSN(BPF_LD | BPF_DW | BPF_IMM, reg, BPF_PSEUDO_MAP_VALUE, 0, map));
	e(c, INSN(0, 0, 0, 0, off));
}

static void ld_map(struct code *c, int reg, int map)
{
	e(c, INSN(BPF_LD | BPF_DW | BPF_IMM, reg, BPF_PSEUDO_MAP_FD, 0, map));
	e(c, INSN(0, 0, 0, 0, 0));
}

static void count(struct code *c, int field)
{
	e(c, LDX(BPF_DW, BPF_REG_1, BPF_REG_7, field));
	e(c, ADD64_IMM(BPF_REG_1, 1));
	e(c, STX(BPF_DW, BPF_REG_7, BPF_REG_1, field));
}

/* r6 = ctx, r7 = state, r3 = keys[idx++ & (NKEYS - 1)] */
static void prologue(struct code *c, int state)
{
	e(c, MOV64_REG(BPF_REG_6, BPF_REG_1));
	ld_value(c, BPF_REG_7, state, 0);
	e(c, LDX(BPF_W, BPF_REG_1, BPF_REG_7, S_IDX));
	e(c, MOV64_REG(BPF_REG_2, BPF_REG_1));
	e(c, ADD64_IMM(BPF_REG_2, 1));
	e(c, STX(BPF_W, BPF_REG_7, BPF_REG_2, S_IDX));
	e(c, ALU64_K(BPF_AND, BPF_REG_1, NKEYS - 1));
	e(c, ALU64_K(BPF_LSH, BPF_REG_1, 2));
	e(c, ALU64_X(BPF_ADD, BPF_REG_1, BPF_REG_7));
	e(c, LDX(BPF_W, BPF_REG_3, BPF_REG_1, S_KEYS));
}

/* The handler's work for key @k, or for the key in r3 when k < 0; r7 = state. */
static void work(struct code *c, int kind, int k)
{
	if (!kind) {
		e(c, LDX(BPF_DW, BPF_REG_1, BPF_REG_7, S_POS));
		e(c, MOV64_REG(BPF_REG_2, BPF_REG_1));
		e(c, ADD64_IMM(BPF_REG_2, EV_SIZE));
		e(c, STX(BPF_DW, BPF_REG_7, BPF_REG_2, S_POS));
		e(c, ALU64_K(BPF_AND, BPF_REG_1, RING - 1));
		e(c, ALU64_X(BPF_ADD, BPF_REG_1, BPF_REG_7));
		e(c, ADD64_IMM(BPF_REG_1, S_REGION));
		if (k >= 0)
			e(c, ST_DW(BPF_REG_1, 0, k));
		else
			e(c, STX(BPF_DW, BPF_REG_1, BPF_REG_3, 0));
		e(c, LDX(BPF_W, BPF_REG_2, BPF_REG_7, S_IDX));
		e(c, STX(BPF_DW, BPF_REG_1, BPF_REG_2, 8));
		for (int j = 0; j < 10; j++) {
			e(c, LDX(BPF_DW, BPF_REG_2, BPF_REG_7, S_ARGS + 8 * j));
			e(c, STX(BPF_DW, BPF_REG_1, BPF_REG_2, 16 + 8 * j));
		}
		e(c, MOV64_IMM(BPF_REG_0, 1));
	} else {
		e(c, LDX(BPF_W, BPF_REG_1, BPF_REG_7, S_IDX));
		e(c, ALU64_K(BPF_MUL, BPF_REG_1, HASH_MUL));
		e(c, ALU64_K(BPF_RSH, BPF_REG_1, 16));
		e(c, ALU64_K(BPF_AND, BPF_REG_1, POL_ENTRIES - 1));
		e(c, ALU64_K(BPF_LSH, BPF_REG_1, 6));
		e(c, ALU64_X(BPF_ADD, BPF_REG_1, BPF_REG_7));
		if (k >= 0) {
			e(c, ADD64_IMM(BPF_REG_1, S_REGION + (k << EP_SHIFT)));
		} else {
			e(c, MOV64_REG(BPF_REG_2, BPF_REG_3));
			e(c, ALU64_K(BPF_AND, BPF_REG_2, EP_MAX - 1));
			e(c, ALU64_K(BPF_LSH, BPF_REG_2, EP_SHIFT));
			e(c, ALU64_X(BPF_ADD, BPF_REG_1, BPF_REG_2));
			e(c, ADD64_IMM(BPF_REG_1, S_REGION));
		}
		e(c, LDX(BPF_DW, BPF_REG_0, BPF_REG_1, 0));	/* the verdict */
		e(c, LDX(BPF_DW, BPF_REG_4, BPF_REG_1, 8));
		e(c, ADD64_IMM(BPF_REG_4, 1));
		e(c, STX(BPF_DW, BPF_REG_1, BPF_REG_4, 8));
		e(c, LDX(BPF_DW, BPF_REG_4, BPF_REG_1, 16));
		e(c, ADD64_IMM(BPF_REG_4, 64));
		e(c, STX(BPF_DW, BPF_REG_1, BPF_REG_4, 16));
		e(c, ALU64_K(BPF_OR, BPF_REG_0, 1));
	}
	count(c, S_CALLS);
	e(c, EXIT());
}

static char log_buf[1 << 20];

static int load(struct code *c, const char *what)
{
	int fd = prog_load_ex(BPF_PROG_TYPE_SOCKET_FILTER, 0, c->i, c->n, log_buf, sizeof(log_buf));

	if (fd < 0)
		fail("loading %s failed: %s\n%s", what, strerror(errno), log_buf);
	return fd;
}

static int handler_prog(int state, int kind, int k)
{
	struct code c = { .n = 0 };

	ld_value(&c, BPF_REG_7, state, 0);
	work(&c, kind, k);
	return load(&c, "a handler");
}

static int entry_prog(int state, int array, int poison)
{
	struct code c = { .n = 0 };

	prologue(&c, state);
	ld_map(&c, BPF_REG_2, poison);
	e(&c, JEQ_IMM(BPF_REG_3, POISON_KEY, 2));
	ld_map(&c, BPF_REG_2, array);
	e(&c, MOV64_REG(BPF_REG_1, BPF_REG_6));
	e(&c, CALL(BPF_FUNC_tail_call));
	count(&c, S_FELL);
	e(&c, MOV64_IMM(BPF_REG_0, 0));
	e(&c, EXIT());
	return load(&c, "the dispatch entry");
}

/* The tree over keys lo..hi: JGE to the upper half, a tail call per leaf. */
static void tree(struct code *c, int array, uint32_t lo, uint32_t hi, int *fell, int *nfell)
{
	if (lo == hi) {
		ld_map(c, BPF_REG_2, array);
		e(c, MOV64_REG(BPF_REG_1, BPF_REG_6));
		e(c, MOV64_IMM(BPF_REG_3, lo));
		e(c, CALL(BPF_FUNC_tail_call));
		fell[(*nfell)++] = c->n;
		e(c, INSN(BPF_JMP | BPF_JA, 0, 0, 0, 0));	/* to the fall-through */
		return;
	}
	uint32_t mid = (lo + hi + 1) / 2;
	int j = c->n;

	e(c, INSN(BPF_JMP32 | BPF_JGE | BPF_K, BPF_REG_3, 0, 0, mid));
	tree(c, array, lo, mid - 1, fell, nfell);
	c->i[j].off = c->n - (j + 1);
	tree(c, array, mid, hi, fell, nfell);
}

static int tree_prog(int state, int array, uint32_t entries)
{
	struct code c = { .n = 0 };
	int fell[8], nfell = 0, jge;

	prologue(&c, state);
	jge = c.n;
	e(&c, INSN(BPF_JMP32 | BPF_JGE | BPF_K, BPF_REG_3, 0, 0, entries));
	tree(&c, array, 0, entries - 1, fell, &nfell);
	c.i[jge].off = c.n - (jge + 1);
	for (int i = 0; i < nfell; i++)
		c.i[fell[i]].off = c.n - (fell[i] + 1);
	count(&c, S_FELL);
	e(&c, MOV64_IMM(BPF_REG_0, 0));
	e(&c, EXIT());
	return load(&c, "the tree dispatch");
}

static int floor_prog(int state, int kind)
{
	struct code c = { .n = 0 };

	prologue(&c, state);
	work(&c, kind, -1);
	return load(&c, "the floor");
}

static int gotox_prog(int state, const struct workload *w, int *table_out)
{
	static struct code c;
	static int32_t target[65536];
	union bpf_attr a = {
		.map_type = MAP_TYPE_INSN_ARRAY, .key_size = 4,
		.value_size = sizeof(struct insn_array_value), .max_entries = w->entries,
	};
	int table, jge, def;

	table = sys_bpf(BPF_MAP_CREATE, &a);
	if (table < 0)
		return -1;
	c.n = 0;
	prologue(&c, state);
	jge = c.n;
	e(&c, INSN(BPF_JMP | BPF_JGE | BPF_K, BPF_REG_3, 0, 0, w->entries));
	e(&c, ALU64_K(BPF_LSH, BPF_REG_3, 3));
	ld_value(&c, BPF_REG_1, table, 0);
	e(&c, ALU64_X(BPF_ADD, BPF_REG_1, BPF_REG_3));
	e(&c, LDX(BPF_DW, BPF_REG_2, BPF_REG_1, 0));
	e(&c, INSN(BPF_JMP | BPF_JA | BPF_X, BPF_REG_2, 0, 0, 0));	/* gotox r2 */
	for (uint32_t k = 0; k < w->entries; k++)
		target[k] = -1;
	for (uint32_t i = 0; i < w->nlive; i++) {
		target[w->live[i]] = c.n;
		work(&c, w->kind, w->live[i]);
	}
	def = c.n;
	c.i[jge].off = def - (jge + 1);
	count(&c, S_FELL);
	e(&c, MOV64_IMM(BPF_REG_0, 0));
	e(&c, EXIT());
	for (uint32_t k = 0; k < w->entries; k++) {
		struct insn_array_value v = { .orig_off = target[k] < 0 ? def : target[k] };
		union bpf_attr u = { .map_fd = table, .key = (uintptr_t)&k, .value = (uintptr_t)&v };

		if (sys_bpf(BPF_MAP_UPDATE_ELEM, &u))
			fail("jump table update failed: %s", strerror(errno));
	}
	memset(&a, 0, sizeof(a));
	a.map_fd = table;
	if (sys_bpf(BPF_MAP_FREEZE, &a))
		fail("jump table freeze failed: %s", strerror(errno));
	*table_out = table;
	return load(&c, "the gotox dispatch");
}

static const char *out_dir;
static FILE *manifest;

static uint32_t obj_id(int fd, int is_map)
{
	struct bpf_prog_info pi = { 0 };
	struct bpf_map_info mi = { 0 };
	union bpf_attr a = { 0 };

	a.info.bpf_fd = fd;
	a.info.info_len = is_map ? sizeof(mi) : sizeof(pi);
	a.info.info = is_map ? (uintptr_t)&mi : (uintptr_t)&pi;
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a))
		fail("get info failed: %s", strerror(errno));
	return is_map ? mi.id : pi.id;
}

static void write_file(const char *name, const void *b, size_t n)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", out_dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(b, 1, n, f) != n || fclose(f))
		fail("writing %s failed", path);
}

/* Dump @prog's image as NAME.bin; manifest: ksym, length, its ld_imm64s. */
static void dump(int prog, const char *name, const char *attrs)
{
	static unsigned char img[1 << 18];
	static struct bpf_insn xl[16384];
	struct bpf_prog_info info;
	uint64_t ksym;
	char file[300];
	size_t nx;

	if (prog_info_image(prog, &info, img, sizeof(img), xl, sizeof(xl), &ksym))
		fail("get info of %s failed: %s", name, strerror(errno));
	if (!info.jited_prog_len || info.jited_prog_len > sizeof(img) || !ksym)
		fail("%s: no JITed image or address (is the JIT on, are we root?)", name);
	if (info.xlated_prog_len > sizeof(xl))
		fail("%s: translated program too long", name);
	snprintf(file, sizeof(file), "%s.bin", name);
	write_file(file, img, info.jited_prog_len);
	fprintf(manifest, "prog %s %s ksym=0x%llx len=%u file=%s imm64=", name, attrs,
		(unsigned long long)ksym, info.jited_prog_len, file);
	nx = info.xlated_prog_len / sizeof(xl[0]);
	for (size_t i = 0, first = 1; i + 1 < nx; i++) {
		if (xl[i].code != (BPF_LD | BPF_DW | BPF_IMM))
			continue;
		/* maps come back as id (imm) and offset (next imm) */
		fprintf(manifest, "%s%u:%u:%u", first ? "" : ",", xl[i].src_reg, xl[i].imm,
			xl[i + 1].imm);
		first = 0;
		i++;
	}
	fprintf(manifest, "\n");
}

static uint8_t *map_mmap(int fd, size_t size)
{
	void *p = mmap(NULL, (size + 4095) & ~(size_t)4095, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		fail("mmap of the state map failed: %s", strerror(errno));
	return p;
}

/* @repeat events through @prog; returns the kernel's mean ns per run. */
static uint32_t test_run(int prog, uint32_t repeat, uint32_t *retval)
{
	unsigned char data[64] = { 0 };
	union bpf_attr a = { 0 };

	a.test.prog_fd = prog;
	a.test.data_in = (uintptr_t)data;
	a.test.data_size_in = sizeof(data);
	a.test.repeat = repeat;
	if (sys_bpf(BPF_PROG_TEST_RUN, &a))
		fail("test run failed: %s", strerror(errno));
	*retval = a.test.retval;
	return a.test.duration;
}

struct loaded {
	const char *variant;
	int prog;
};

/* Run @repeat events and check their effect; returns ns per event. */
static uint32_t run_checked(const struct workload *w, uint8_t *st, const struct loaded *l,
			    uint32_t repeat)
{
	uint64_t c0 = *(volatile uint64_t *)(st + S_CALLS), f0 = *(volatile uint64_t *)(st + S_FELL);
	uint64_t p0 = *(volatile uint64_t *)(st + S_POS);
	uint32_t ret, ns = test_run(l->prog, repeat, &ret);
	const char *why = NULL;

	if (ret != 1 || *(volatile uint64_t *)(st + S_CALLS) - c0 != repeat ||
	    *(volatile uint64_t *)(st + S_FELL) != f0 ||
	    (!w->kind && *(volatile uint64_t *)(st + S_POS) - p0 != (uint64_t)EV_SIZE * repeat) ||
	    check_last(w, st, &why))
		fail("%s %s: %u events: returned %u, %llu handled, %llu fell through%s%s", w->name,
		     l->variant, repeat, ret,
		     (unsigned long long)(*(volatile uint64_t *)(st + S_CALLS) - c0),
		     (unsigned long long)(*(volatile uint64_t *)(st + S_FELL) - f0),
		     why ? ": " : "", why ? why : "");
	return ns;
}

static void one_workload(struct workload *w, const char *variants, int rounds, FILE *kt)
{
	union bpf_attr a = {
		.map_type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = w->value_size,
		.max_entries = 1, .map_flags = BPF_F_MMAPABLE,
	};
	struct loaded l[5];
	int nl = 0, state, array, poison, handler[MAX_LIVE], table = -1;
	char name[128], attrs[256];
	uint8_t *st;

	state = sys_bpf(BPF_MAP_CREATE, &a);
	array = prog_array_create(w->entries);
	poison = prog_array_create(w->entries);
	if (state < 0 || array < 0 || poison < 0)
		fail("%s: map create failed: %s", w->name, strerror(errno));
	st = map_mmap(state, w->value_size);
	memcpy(st + S_KEYS, w->keys, sizeof(w->keys));
	for (int j = 0; j < 10; j++)
		((uint64_t *)(st + S_ARGS))[j] = 0x1000 * (j + 1);
	snprintf(name, sizeof(name), "%s-keys.bin", w->name);
	write_file(name, w->keys, sizeof(w->keys));
	fprintf(manifest, "workload %s kind=%d entries=%u value_size=%u nlive=%u keys=%s state=%u array=%u poison=%u\n",
		w->name, w->kind, w->entries, w->value_size, w->nlive, name, obj_id(state, 1),
		obj_id(array, 1), obj_id(poison, 1));
	for (uint32_t i = 0; i < w->nlive; i++) {
		handler[i] = handler_prog(state, w->kind, w->live[i]);
		if (map_update(array, w->live[i], handler[i]))
			fail("%s: prog array update failed: %s", w->name, strerror(errno));
	}
	if (strstr(variants, "cache"))
		l[nl++] = (struct loaded){ "cache", entry_prog(state, array, array) };
	if (strstr(variants, "legacy"))
		l[nl++] = (struct loaded){ "legacy", entry_prog(state, array, poison) };
	if (strstr(variants, "gotox")) {
		int p = gotox_prog(state, w, &table);

		if (p >= 0)
			l[nl++] = (struct loaded){ "gotox", p };
		else if (errno == EINVAL && strstr(variants, "gotox?"))
			fprintf(manifest, "unsupported %s gotox (no BPF_MAP_TYPE_INSN_ARRAY)\n", w->name);
		else
			fail("%s: jump table create failed: %s", w->name, strerror(errno));
	}
	if (strstr(variants, "floor"))
		l[nl++] = (struct loaded){ "floor", floor_prog(state, w->kind) };
	if (strstr(variants, "tree") && w->entries <= 8)
		l[nl++] = (struct loaded){ "tree", tree_prog(state, array, w->entries) };
	/* Every variant does what it must before anything is dumped or timed. */
	for (int i = 0; i < nl; i++)
		run_checked(w, st, &l[i], 2 * NKEYS + 3);
	for (uint32_t i = 0; i < w->nlive; i++) {
		snprintf(name, sizeof(name), "%s-h%u", w->name, w->live[i]);
		snprintf(attrs, sizeof(attrs), "workload=%s role=handler key=%u", w->name, w->live[i]);
		dump(handler[i], name, attrs);
	}
	for (int i = 0; i < nl; i++) {
		snprintf(name, sizeof(name), "%s-%s", w->name, l[i].variant);
		snprintf(attrs, sizeof(attrs), "workload=%s role=entry variant=%s", w->name, l[i].variant);
		dump(l[i].prog, name, attrs);
		if (strcmp(l[i].variant, "gotox"))
			continue;
		/* the jump table as the JIT filled it: image offsets */
		static uint32_t off[65536];

		for (uint32_t k = 0; k < w->entries; k++) {
			struct insn_array_value v;
			union bpf_attr u = { .map_fd = table, .key = (uintptr_t)&k, .value = (uintptr_t)&v };

			if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &u))
				fail("jump table lookup failed: %s", strerror(errno));
			off[k] = v.jitted_off;
		}
		snprintf(name, sizeof(name), "%s-table.bin", w->name);
		write_file(name, off, 4 * (size_t)w->entries);
		fprintf(manifest, "table %s file=%s\n", w->name, name);
	}
	if (!kt)
		return;
	/* In-kernel timing: rounds, variants interleaved, order rotated. */
	for (int r = 0; r < rounds; r++)
		for (int k = 0; k < nl; k++) {
			const struct loaded *x = &l[(k + r) % nl];

			fprintf(kt, "kernel %s %s %d %u\n", w->name, x->variant, r,
				run_checked(w, st, x, 8 * NKEYS));
		}
}

static int cmd_load(int argc, char **argv)
{
	const char *variants = "cache,legacy,gotox,floor,tree";
	static struct workload w;
	int rounds = 0, a = 4;
	FILE *kt = NULL;
	char path[600];

	if (argc < 5)
		fail("usage: dispatch load OUT_DIR SYSCALL_TSV [-v VARIANTS] [-t ROUNDS] WORKLOAD...");
	out_dir = argv[2];
	while (a + 1 < argc && argv[a][0] == '-') {
		if (!strcmp(argv[a], "-v"))
			variants = argv[a + 1];
		else if (!strcmp(argv[a], "-t"))
			rounds = atoi(argv[a + 1]);
		else
			fail("unknown option %s", argv[a]);
		a += 2;
	}
	snprintf(path, sizeof(path), "%s/manifest.txt", out_dir);
	manifest = fopen(path, "w");
	if (!manifest)
		fail("cannot write %s", path);
	if (rounds > 0) {
		snprintf(path, sizeof(path), "%s/kernel-time.txt", out_dir);
		kt = fopen(path, "w");
		if (!kt)
			fail("cannot write %s", path);
	}
	for (; a < argc; a++) {
		memset(&w, 0, sizeof(w));
		w.name = argv[a];
		if (!strcmp(argv[a], "falco")) {
			w.entries = 512;
			setup_falco(&w, argv[3]);
		} else if (!strcmp(argv[a], "usm")) {
			w.entries = 8;
			setup_usm(&w);
		} else if (!strcmp(argv[a], "cilium-zipf") || !strcmp(argv[a], "cilium-uniform")) {
			w.kind = 1;
			w.entries = 65535;
			setup_cilium(&w, !strcmp(argv[a], "cilium-zipf"));
		} else {
			fail("unknown workload %s (falco, cilium-zipf, cilium-uniform, usm)", argv[a]);
		}
		w.value_size = wl_value_size(w.kind);
		one_workload(&w, variants, rounds, kt);
		fflush(manifest);
	}
	if (fclose(manifest) || (kt && fclose(kt)))
		fail("writing %s failed", out_dir);
	return 0;
}

/*
 * dispatch kread OUT_FILE ADDR...: 64 bytes of kernel text at each ADDR
 * (the thunks the images jump to, as the kernel patched them at boot),
 * read with bpf_probe_read_kernel() from a socket filter; one line each.
 */
static int cmd_kread(int argc, char **argv)
{
	union bpf_attr a = {
		.map_type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 64,
		.max_entries = 1, .map_flags = BPF_F_MMAPABLE,
	};
	FILE *f;
	int map;
	uint8_t *buf;

	if (argc < 3)
		fail("usage: dispatch kread OUT_FILE ADDR...");
	map = sys_bpf(BPF_MAP_CREATE, &a);
	if (map < 0)
		fail("map create failed: %s", strerror(errno));
	buf = map_mmap(map, 64);
	f = fopen(argv[2], "w");
	if (!f)
		fail("cannot write %s", argv[2]);
	for (int i = 3; i < argc; i++) {
		uint64_t addr = strtoull(argv[i], NULL, 0);
		struct code c = { .n = 0 };
		uint32_t ret;
		int prog;

		ld_value(&c, BPF_REG_1, map, 0);
		e(&c, MOV64_IMM(BPF_REG_2, 64));
		e(&c, INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_3, 0, 0, (uint32_t)addr));
		e(&c, INSN(0, 0, 0, 0, (uint32_t)(addr >> 32)));
		e(&c, CALL(BPF_FUNC_probe_read_kernel));
		e(&c, EXIT());
		prog = load(&c, "the kernel text reader");
		test_run(prog, 1, &ret);
		if (ret)
			fail("bpf_probe_read_kernel(%#llx) failed: %d", (unsigned long long)addr, (int)ret);
		fprintf(f, "ktext 0x%llx ", (unsigned long long)addr);
		for (int b = 0; b < 64; b++)
			fprintf(f, "%02x", buf[b]);
		fprintf(f, "\n");
		close(prog);
	}
	if (fclose(f))
		fail("writing %s failed", argv[2]);
	return 0;
}

/* ----------------------------------------------------------- harness */

/*
 * The cases file (scripts/bench-workloads-prepare.py): per workload and form
 * the images, what to relocate in them and the keys; the harness lays out
 * the state value, the prog arrays (struct bpf_array: max_entries, ptrs[],
 * and the series' cached targets at ptrs[index_mask + 1 + key]), one
 * struct bpf_prog page per handler, the jump table, and the thunks the
 * images jump to, copies and relocates the images, and fails if the bytes
 * it executes differ from the kernel's anywhere but in relocated fields.
 */
enum { R_ARRAY, R_POISON, R_STATE, R_TABLE, R_KTEXT, R_PROG };
#define MAX_KTEXT	16
#define MAX_H		512
#define MAX_RELS	64
#define MAX_CASES	64

struct himg {
	uint32_t len, key;
	uint8_t *bytes, *code, *bpf_prog;
	int nrel;
	struct { int kind, off, reg; uint32_t addend; } rel[MAX_RELS];
};

struct hcase {
	char name[64], workload[32], variant[16], form[16];
	int kind;
	uint32_t entries, value_size, nh;
	uint32_t off_max, off_ptrs, off_func, tail_off;	/* this kernel's layout */
	uint32_t keys[NKEYS];
	struct himg entry, h[MAX_H];
	uint32_t *table_off, table_bias;	/* offsets from bpf_func - bias */
	uint8_t *state, *array, *poison, *code, *thunks;
	int nkt, invoke_kt, invoke_off;	/* invoke_kt < 0: a plain indirect call */
	int nkrel;
	struct { int k, off, tk, toff; } krel[MAX_KTEXT];	/* a thunk's jmp to another */
	uint8_t *stub;
	struct { uint64_t addr; uint8_t bytes[128]; } kt[MAX_KTEXT];	/* two lines */
	void **table;
	struct workload w;		/* keys, for check_last() */
};

static struct hcase *hcases[MAX_CASES];
static int nhcases;

static void *pages(size_t size)
{
	void *p = mmap(NULL, (size + 4095) & ~(size_t)4095, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		fail("mmap of %zu bytes failed", size);
	return p;
}

static void read_blob(const char *path, void *dst, size_t len)
{
	FILE *f = fopen(path, "rb");

	if (!f || fread(dst, 1, len, f) != len || fgetc(f) != EOF)
		fail("%s: cannot read %zu bytes (or it is longer)", path, len);
	fclose(f);
}

static uint32_t kvu(const char *line, const char *key)
{
	const char *p = strstr(line, key);

	if (!p)
		fail("missing %s in: %s", key, line);
	return strtoul(p + strlen(key), NULL, 0);
}

static void read_img(struct himg *m, const char *line)
{
	char file[512];
	const char *p = strstr(line, "file=");

	if (!p || sscanf(p, "file=%511s", file) != 1)
		fail("no file in: %s", line);
	m->len = kvu(line, "len=");
	if (!m->len || m->len > (1 << 18))
		fail("bad image length in: %s", line);
	m->bytes = malloc(m->len);
	if (!m->bytes)
		fail("out of memory");
	read_blob(file, m->bytes, m->len);
}

static void read_hcases(const char *path)
{
	static char line[1 << 16];
	struct hcase *c = NULL;
	struct himg *cur = NULL;
	FILE *f = fopen(path, "r");

	if (!f)
		fail("cannot open %s", path);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "case ", 5)) {
			char keys[512];

			if (nhcases == MAX_CASES)
				fail("too many cases");
			c = hcases[nhcases++] = calloc(1, sizeof(*c));
			if (c)
				c->invoke_kt = -1;
			if (!c || sscanf(line, "case %63s workload=%31s variant=%15s form=%15s", c->name,
					 c->workload, c->variant, c->form) != 4 ||
			    sscanf(strstr(line, "keys=") ? strstr(line, "keys=") : "", "keys=%511s", keys) != 1)
				fail("bad case line: %s", line);
			c->kind = kvu(line, "kind=");
			c->entries = kvu(line, "entries=");
			c->value_size = kvu(line, "value_size=");
			if (c->value_size != wl_value_size(c->kind) || c->entries > 65536)
				fail("%s: the layout is not this harness's", c->name);
			c->off_max = kvu(line, "off_max=");
			c->off_ptrs = kvu(line, "off_ptrs=");
			c->off_func = kvu(line, "off_func=");
			c->tail_off = kvu(line, "tail_off=");
			if (c->off_max > 4096 || c->off_ptrs > 4096 || c->off_func > 4088 || c->tail_off > 64)
				fail("%s: implausible struct offsets", c->name);
			read_blob(keys, c->keys, sizeof(c->keys));
			c->w.kind = c->kind;
			memcpy(c->w.keys, c->keys, sizeof(c->keys));
			cur = NULL;
		} else if (!strncmp(line, "entry ", 6) && c) {
			cur = &c->entry;
			read_img(cur, line);
		} else if (!strncmp(line, "handler ", 8) && c) {
			if (c->nh == MAX_H)
				fail("too many handlers");
			cur = &c->h[c->nh++];
			cur->key = kvu(line, "key=");
			if (cur->key >= c->entries)
				fail("handler key out of range: %s", line);
			read_img(cur, line);
		} else if (!strncmp(line, "table ", 6) && c) {
			char file[512];

			if (sscanf(line, "table file=%511s bias=%u", file, &c->table_bias) != 2 ||
			    c->table_bias > 16)
				fail("bad table line: %s", line);
			c->table_off = malloc(4 * (size_t)c->entries);
			if (!c->table_off)
				fail("out of memory");
			read_blob(file, c->table_off, 4 * (size_t)c->entries);
		} else if (!strncmp(line, "ktext ", 6) && c) {
			char hex[300];
			unsigned long long addr;

			if (c->nkt == MAX_KTEXT || sscanf(line, "ktext %llx %299s", &addr, hex) != 2 ||
			    strlen(hex) != 256 || (addr & 63))
				fail("bad ktext line: %s", line);
			c->kt[c->nkt].addr = addr;
			for (int b = 0; b < 128; b++)
				sscanf(hex + 2 * b, "%2hhx", &c->kt[c->nkt].bytes[b]);
			c->nkt++;
		} else if (!strncmp(line, "krel ", 5) && c) {
			int *r = &c->krel[c->nkrel].k;

			if (c->nkrel == MAX_KTEXT ||
			    sscanf(line, "krel %d %d %d %d", &r[0], &r[1], &r[2], &r[3]) != 4 ||
			    r[0] < 0 || r[0] >= c->nkt || r[2] < 0 || r[2] >= c->nkt ||
			    r[1] < 0 || r[1] > 124 || r[3] < 0 || r[3] >= 128)
				fail("bad krel line: %s", line);
			c->nkrel++;
		} else if (!strncmp(line, "invoke ", 7) && c) {
			if (sscanf(line, "invoke %d %d", &c->invoke_kt, &c->invoke_off) != 2 ||
			    c->invoke_kt < 0 || c->invoke_off < 0 || c->invoke_off >= 128)
				fail("bad invoke line: %s", line);
		} else if (!strncmp(line, "rel ", 4) && cur) {
			char kind[16];
			int off, reg = -1;
			unsigned int add = 0;

			if (cur->nrel == MAX_RELS ||
			    sscanf(line, "rel %15s %d %d %u", kind, &off, &reg, &add) < 2)
				fail("bad rel line: %s", line);
			cur->rel[cur->nrel].kind = !strcmp(kind, "array") ? R_ARRAY :
				!strcmp(kind, "poison") ? R_POISON : !strcmp(kind, "state") ? R_STATE :
				!strcmp(kind, "table") ? R_TABLE : !strcmp(kind, "ktext") ? R_KTEXT :
				!strcmp(kind, "prog") ? R_PROG : -1;
			if (cur->rel[cur->nrel].kind < 0 || off < 0 ||
			    (uint32_t)off + (cur->rel[cur->nrel].kind >= R_KTEXT ? 4 : 8) > cur->len)
				fail("bad relocation: %s", line);
			cur->rel[cur->nrel].off = off;
			cur->rel[cur->nrel].reg = reg;
			cur->rel[cur->nrel].addend = add;
			cur->nrel++;
		}
	}
	fclose(f);
	if (!nhcases)
		fail("no cases in %s", path);
}

static void put_rel32(uint8_t *at, const uint8_t *target)
{
	int64_t d = target - (at + 4);

	if (d != (int32_t)d)
		fail("a relocation out of rel32 reach");
	memcpy(at, &(int32_t){ (int32_t)d }, 4);
}

static uint8_t *place(uint8_t **pos, const struct himg *m)
{
	uint8_t *at = *pos;

	memcpy(at, m->bytes, m->len);
	*pos += (m->len + 63) & ~(size_t)63;
	return at;
}

static void relocate(struct hcase *c, struct himg *m)
{
	for (int r = 0; r < m->nrel; r++) {
		uint8_t *at = m->code + m->rel[r].off;
		uint8_t *v = NULL;

		switch (m->rel[r].kind) {
		case R_ARRAY: v = c->array; break;
		case R_POISON: v = c->poison; break;
		case R_STATE:
			if (m->rel[r].addend >= c->value_size)
				fail("%s: a state reference past its value", c->name);
			v = c->state + m->rel[r].addend;
			break;
		case R_TABLE:
			if (!c->table)
				fail("%s: a jump table reference without a table", c->name);
			v = (uint8_t *)c->table;
			break;
		case R_KTEXT:
			/* the kernel's bytes, at the same offset in a cache line */
			if (m->rel[r].reg < 0 || m->rel[r].reg >= c->nkt || m->rel[r].addend >= 128)
				fail("%s: a branch to kernel text it has no bytes of", c->name);
			put_rel32(at, c->thunks + 128 * m->rel[r].reg + m->rel[r].addend);
			continue;
		case R_PROG:
			/* a poked direct tail call: handler @reg's image + addend */
			if (m->rel[r].reg < 0 || (uint32_t)m->rel[r].reg >= c->nh ||
			    m->rel[r].addend >= c->h[m->rel[r].reg].len)
				fail("%s: a direct jump to no handler", c->name);
			put_rel32(at, c->h[m->rel[r].reg].code + m->rel[r].addend);
			continue;
		}
		memcpy(at, &v, 8);
	}
	/* What runs is what the JIT emitted but for the relocated fields. */
	for (uint32_t b = 0; b < m->len; b++) {
		int in = 0;

		for (int r = 0; r < m->nrel; r++) {
			uint32_t w = m->rel[r].kind >= R_KTEXT ? 4 : 8;

			if (b >= (uint32_t)m->rel[r].off && b < (uint32_t)m->rel[r].off + w)
				in = 1;
		}
		if (!in && m->code[b] != m->bytes[b])
			fail("%s: byte %u differs from the kernel's image", c->name, b);
	}
}

static void hsetup(struct hcase *c)
{
	size_t total = 128 * MAX_KTEXT + 64 + ((c->entry.len + 63) & ~(size_t)63);
	size_t asize = c->off_ptrs + 16 * (size_t)65536 + 64;
	uint8_t *pos;
	void **ptrs;

	for (uint32_t i = 0; i < c->nh; i++)
		total += (c->h[i].len + 63) & ~(size_t)63;
	c->code = pages(total);
	c->thunks = c->code;
	memset(c->thunks, 0xcc, 128 * MAX_KTEXT);	/* int3 around the thunks */
	for (int k = 0; k < c->nkt; k++)
		memcpy(c->thunks + 128 * k, c->kt[k].bytes, 128);
	for (int r = 0; r < c->nkrel; r++)
		put_rel32(c->thunks + 128 * c->krel[r].k + c->krel[r].off,
			  c->thunks + 128 * c->krel[r].tk + c->krel[r].toff);
	pos = c->code + 128 * MAX_KTEXT;
	/*
	 * The invocation, as bpf_prog_run() on that kernel makes it: with
	 * retpolines an indirect call through its __x86_indirect_thunk_rax,
	 * push %rbp; movabs $entry, %rax; call thunk; pop %rbp; ret.
	 */
	if (c->invoke_kt >= 0) {
		if (c->invoke_kt >= c->nkt)
			fail("%s: the invocation thunk has no bytes", c->name);
		c->stub = pos;
		pos += 64;
	}
	c->entry.code = place(&pos, &c->entry);
	for (uint32_t i = 0; i < c->nh; i++)
		c->h[i].code = place(&pos, &c->h[i]);
	c->state = pages(c->value_size);
	memcpy(c->state + S_KEYS, c->keys, sizeof(c->keys));
	for (int j = 0; j < 10; j++)
		((uint64_t *)(c->state + S_ARGS))[j] = 0x1000 * (j + 1);
	/* index_mask + 1: the entries rounded up to a power of two */
	uint32_t mask1 = 1;

	while (mask1 < c->entries)
		mask1 <<= 1;
	c->array = pages(asize);
	c->poison = pages(asize);
	memcpy(c->array + c->off_max, &c->entries, 4);
	memcpy(c->poison + c->off_max, &c->entries, 4);
	ptrs = (void **)(c->array + c->off_ptrs);
	for (uint32_t i = 0; i < c->nh; i++) {
		c->h[i].bpf_prog = pages(4096);	/* vmalloc'ed: a page of its own */
		memcpy(c->h[i].bpf_prog + c->off_func, &c->h[i].code, 8);
		ptrs[c->h[i].key] = c->h[i].bpf_prog;
		ptrs[mask1 + c->h[i].key] = c->h[i].code + c->tail_off;
	}
	if (c->table_off) {
		c->table = pages(8 * (size_t)c->entries);
		for (uint32_t k = 0; k < c->entries; k++) {
			if (c->table_off[k] < c->table_bias ||
			    c->table_off[k] - c->table_bias >= c->entry.len)
				fail("%s: a jump table entry outside the image", c->name);
			c->table[k] = c->entry.code + c->table_off[k] - c->table_bias;
		}
	}
	if (c->stub) {
		c->stub[0] = 0x55;
		c->stub[1] = 0x48;
		c->stub[2] = 0xb8;
		memcpy(c->stub + 3, &c->entry.code, 8);
		c->stub[11] = 0xe8;
		put_rel32(c->stub + 12, c->thunks + 128 * c->invoke_kt + c->invoke_off);
		c->stub[16] = 0x5d;
		c->stub[17] = 0xc3;
	}
	relocate(c, &c->entry);
	for (uint32_t i = 0; i < c->nh; i++)
		relocate(c, &c->h[i]);
	if (mprotect(c->code, (total + 4095) & ~(size_t)4095, PROT_READ | PROT_EXEC))
		fail("mprotect failed");
}

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC_RAW, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static _Alignas(64) uint8_t skb[1024];

/* @n events; ns per event. Checks the counters and the last event. */
static double hrun(struct hcase *c, uint32_t n)
{
	unsigned int (*fn)(void *, const void *) = (void *)(c->stub ? c->stub : c->entry.code);
	volatile uint64_t *calls = (uint64_t *)(c->state + S_CALLS);
	volatile uint64_t *fell = (uint64_t *)(c->state + S_FELL);
	uint64_t c0 = *calls, f0 = *fell;
	unsigned int ok = 0;
	const char *why = NULL;
	double t0, t1;

	t0 = now_ns();
	for (uint32_t i = 0; i < n; i++)
		ok += fn(skb, NULL);
	t1 = now_ns();
	if (ok != n || *calls - c0 != n || *fell != f0 || check_last(&c->w, c->state, &why))
		fail("harness %s: %u events: %u returned 1, %llu handled, %llu fell through%s%s",
		     c->name, n, ok, (unsigned long long)(*calls - c0),
		     (unsigned long long)(*fell - f0), why ? ": " : "", why ? why : "");
	return (t1 - t0) / n;
}

static int cmd_harness(int argc, char **argv)
{
	int rounds;
	double target_ms;
	uint32_t iters[MAX_CASES];

	if (argc != 5)
		fail("usage: dispatch harness CASES ROUNDS TARGET_MS");
	read_hcases(argv[2]);
	rounds = atoi(argv[3]);
	target_ms = atof(argv[4]);
	for (int i = 0; i < nhcases; i++) {
		hsetup(hcases[i]);
		/* warm up: every key once; then size a measurement */
		double ns = hrun(hcases[i], NKEYS);

		iters[i] = (uint32_t)(target_ms * 1e6 / (ns > 0.1 ? ns : 0.1));
		iters[i] = iters[i] < NKEYS ? NKEYS : (iters[i] + NKEYS - 1) / NKEYS * NKEYS;
	}
	for (int r = 0; r < rounds; r++) {
		for (int k = 0; k < nhcases; k++) {
			struct hcase *c = hcases[(k + r) % nhcases];
			int i = (k + r) % nhcases;

			printf("{\"case\": \"%s\", \"workload\": \"%s\", \"variant\": \"%s\", \"form\": \"%s\", "
			       "\"round\": %d, \"events\": %u, \"ns_per_event\": %.4f}\n",
			       c->name, c->workload, c->variant, c->form, r, iters[i],
			       hrun(c, iters[i]));
		}
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "load"))
		return cmd_load(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "kread"))
		return cmd_kread(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "harness"))
		return cmd_harness(argc, argv);
	fail("usage: dispatch load ... | dispatch kread ... | dispatch harness ...");
	return 2;
}

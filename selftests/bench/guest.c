// SPDX-License-Identifier: GPL-2.0
/*
 * Benchmark programs for the tail-call cost on the host (scripts/bench.sh),
 * loaded in the guest with raw bpf(2) calls (no libbpf), run once each to
 * check what they compute, and dumped (JITed image, kernel address,
 * translated ctx offset) for the host harness, which executes the same
 * bytes natively.
 *
 * A chain of N tail calls: programs in slots 0..N of a prog array with
 * max_entries N + 2, at least 9 (the series' RFC patches turn variable-key
 * sites into arrays of up to 8 slots into compare trees on CPUs with
 * retpolines, and "cache" here is the cache's sequence); each one
 * increments a counter in cb[0] and tail calls
 * slot <counter>, so slot 0 entered with cb[0] = 0 runs N tail calls and
 * the last program falls through the empty slot N + 1 and returns N + 1.
 *
 *   cache   key from cb[0] (variable): the cached target
 *   legacy  the same programs, the call site poisoned: a second prog array
 *           reaches it on a path that never runs (the legacy sequence)
 *   direct  constant key per program (poked direct jump)
 *   floor   one program doing the same N + 1 increments, no tail call
 *   gotox   the same in one program, N indirect jumps through an insn array
 *
 * Usage: guest OUT_DIR TIME_ROUNDS N...   writes OUT_DIR/<case>-<slot>.bin
 * and OUT_DIR/manifest.txt; with TIME_ROUNDS > 0 also times the chains in
 * the guest (BPF_PROG_TEST_RUN, for KVM guests) into OUT_DIR/guest-time.txt.
 * Exits non-zero on any failure.
 */
#include "../bpf_raw.h"

#define STX_W(d, s, o)	INSN(BPF_STX | BPF_MEM | BPF_W, d, s, o, 0)
#define ST_W(d, o, i)	INSN(BPF_ST | BPF_MEM | BPF_W, d, 0, o, i)
/* From the 7.3 uapi (the host's linux/bpf.h may predate them). */
#define MAP_TYPE_INSN_ARRAY 34
struct insn_array_value {
	uint32_t orig_off, xlated_off, jitted_off, pad;
};
#define MAX_N 32
#define MAX_INSNS (16 + 10 * (MAX_N + 1))

static const char *out_dir;
static FILE *manifest;
static char log_buf[65536];

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "bench guest: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (errno: %s)\n", strerror(errno));
	exit(1);
}

static int prog_load(const struct bpf_insn *insns, size_t n)
{
	int fd = sock_prog_load(insns, n);

	if (fd < 0)
		die("prog load failed%s", "");
	return fd;
}

static void must_update(int map, unsigned int key, int prog)
{
	if (map_update(map, key, prog))
		die("map update failed%s", "");
}

/* Run prog repeat times with cb[0] = 0; returns retval, *ns the mean time. */
static long run_timed(int prog, unsigned int repeat, unsigned int *ns)
{
	struct __sk_buff ctx = { 0 };
	unsigned char data[64] = { 0 };
	union bpf_attr a = { 0 };

	a.test.prog_fd = prog;
	a.test.data_in = (uintptr_t)data;
	a.test.data_size_in = sizeof(data);
	a.test.ctx_in = (uintptr_t)&ctx;
	a.test.ctx_size_in = sizeof(ctx);
	a.test.repeat = repeat;
	if (sys_bpf(BPF_PROG_TEST_RUN, &a))
		die("test run failed%s", "");
	if (ns)
		*ns = a.test.duration;
	return a.test.retval;
}

/*
 * Dump prog's JITed image to OUT_DIR/<name>.bin and return its kernel
 * address; *ctx_off is the offset of the first ctx load after the
 * verifier's ctx conversion (cb[0] in struct sk_buff).
 */
static uint64_t dump(int prog, const char *name, size_t *len, int *ctx_off)
{
	static unsigned char img[16384];
	struct bpf_insn xl[2 * MAX_INSNS];
	struct bpf_prog_info info;
	uint64_t ksym;
	char path[512];
	FILE *f;

	if (prog_info_image(prog, &info, img, sizeof(img), xl, sizeof(xl), &ksym))
		die("get info of %s failed", name);
	if (!info.jited_prog_len || info.jited_prog_len > sizeof(img) || !ksym)
		die("%s: no JITed image or address (is the JIT on?)", name);
	*ctx_off = -1;
	for (size_t i = 0; i < info.xlated_prog_len / sizeof(xl[0]); i++) {
		if (BPF_CLASS(xl[i].code) == BPF_LDX) {
			*ctx_off = xl[i].off;
			break;
		}
	}
	snprintf(path, sizeof(path), "%s/%s.bin", out_dir, name);
	f = fopen(path, "w");
	if (!f || fwrite(img, 1, info.jited_prog_len, f) != info.jited_prog_len || fclose(f))
		die("writing %s failed", path);
	*len = info.jited_prog_len;
	return ksym;
}

/*
 * A link of the chain; direct_key < 0: key = the counter (variable). Every
 * link has the same code around its tail call:
 *
 *   r2 = poison; if r3 == POISON_KEY goto +2; r2 = map; [r3 = direct_key;]
 *
 * The counter in r3 (1..N + 1) is never POISON_KEY, so the call always goes
 * through @map, but the verifier cannot tell and follows both paths: with
 * @poison another prog array the site is poisoned (the legacy sequence);
 * with @poison == @map it is not (cache, direct). The cache and legacy
 * images then differ only in the tail-call sequence and in the first
 * immediate, and every variant pays the same not-taken branch.
 */
#define POISON_KEY 0x7fffffff
static int link_prog(int map, int poison, int direct_key)
{
	struct bpf_insn insns[16];
	size_t n = 0;

	insns[n++] = MOV64_REG(BPF_REG_6, BPF_REG_1);
	insns[n++] = LDX_W(BPF_REG_3, BPF_REG_6, CB0);
	insns[n++] = ADD64_IMM(BPF_REG_3, 1);
	insns[n++] = STX_W(BPF_REG_6, BPF_REG_3, CB0);
	insns[n++] = INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_2, BPF_PSEUDO_MAP_FD, 0, poison);
	insns[n++] = INSN(0, 0, 0, 0, 0);
	insns[n++] = JEQ_IMM(BPF_REG_3, POISON_KEY, 2);
	insns[n++] = INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_2, BPF_PSEUDO_MAP_FD, 0, map);
	insns[n++] = INSN(0, 0, 0, 0, 0);
	if (direct_key >= 0)
		insns[n++] = MOV64_IMM(BPF_REG_3, direct_key);
	insns[n++] = MOV64_REG(BPF_REG_1, BPF_REG_6);
	insns[n++] = CALL(BPF_FUNC_tail_call);
	insns[n++] = LDX_W(BPF_REG_0, BPF_REG_6, CB0);
	insns[n++] = ST_W(BPF_REG_6, CB0, 0);	/* ready for the next run */
	insns[n++] = EXIT();
	return prog_load(insns, n);
}

/* The same N + 1 increments of cb[0] in one program. */
static int floor_prog(unsigned int n_calls)
{
	struct bpf_insn insns[MAX_INSNS];
	size_t n = 0;

	insns[n++] = MOV64_REG(BPF_REG_6, BPF_REG_1);
	for (unsigned int i = 0; i <= n_calls; i++) {
		insns[n++] = LDX_W(BPF_REG_3, BPF_REG_6, CB0);
		insns[n++] = ADD64_IMM(BPF_REG_3, 1);
		insns[n++] = STX_W(BPF_REG_6, BPF_REG_3, CB0);
	}
	insns[n++] = LDX_W(BPF_REG_0, BPF_REG_6, CB0);
	insns[n++] = ST_W(BPF_REG_6, CB0, 0);
	insns[n++] = EXIT();
	return prog_load(insns, n);
}

/*
 * gotox (for context): the same N + 1 increments in one program, each of
 * the first N blocks reaching the next through an indirect jump
 * (BPF_JA | BPF_X) through a BPF_MAP_TYPE_INSN_ARRAY jump table (N
 * indirect jumps, like N tail calls). *map_out: the table.
 */
#define BLOCK_INSNS 10
static int gotox_prog(unsigned int n_calls, int *map_out)
{
	struct bpf_insn insns[16 + BLOCK_INSNS * (MAX_N + 1)];
	union bpf_attr a = {
		.map_type = MAP_TYPE_INSN_ARRAY,
		.key_size = 4, .value_size = sizeof(struct insn_array_value),
		.max_entries = n_calls + 1,
	};
	unsigned int end = 1 + BLOCK_INSNS * n_calls + 3;
	size_t n = 0;
	int map;

	map = sys_bpf(BPF_MAP_CREATE, &a);
	if (map < 0)
		die("insn array create failed%s", "");
	for (unsigned int k = 0; k <= n_calls; k++) {
		struct insn_array_value v = { .orig_off = 1 + BLOCK_INSNS * k };
		union bpf_attr u = { .map_fd = map, .key = (uintptr_t)&k, .value = (uintptr_t)&v };

		if (sys_bpf(BPF_MAP_UPDATE_ELEM, &u))
			die("insn array update failed%s", "");
	}
	memset(&a, 0, sizeof(a));
	a.map_fd = map;
	if (sys_bpf(BPF_MAP_FREEZE, &a))
		die("insn array freeze failed%s", "");
	insns[n++] = MOV64_REG(BPF_REG_6, BPF_REG_1);
	for (unsigned int k = 0; k <= n_calls; k++) {
		unsigned int at = 1 + BLOCK_INSNS * k;

		insns[n++] = LDX_W(BPF_REG_3, BPF_REG_6, CB0);
		insns[n++] = ADD64_IMM(BPF_REG_3, 1);
		insns[n++] = STX_W(BPF_REG_6, BPF_REG_3, CB0);
		if (k == n_calls)
			break;	/* the last block falls into the end */
		/*
		 * if (r3 != k + 1) goto end; gotox table[r3]: the verifier
		 * needs the target ahead (no loop), the JIT still loads it.
		 */
		insns[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_3, 0, end - (at + 4), k + 1);
		insns[n++] = INSN(BPF_ALU64 | BPF_LSH | BPF_K, BPF_REG_3, 0, 0, 3);
		insns[n++] = INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_1, BPF_PSEUDO_MAP_VALUE, 0, map);
		insns[n++] = INSN(0, 0, 0, 0, 0);
		insns[n++] = INSN(BPF_ALU64 | BPF_ADD | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0);
		insns[n++] = INSN(BPF_LDX | BPF_MEM | BPF_DW, BPF_REG_2, BPF_REG_1, 0, 0);
		insns[n++] = INSN(BPF_JMP | BPF_JA | BPF_X, BPF_REG_2, 0, 0, 0);	/* gotox r2 */
	}
	insns[n++] = LDX_W(BPF_REG_0, BPF_REG_6, CB0);
	insns[n++] = ST_W(BPF_REG_6, CB0, 0);
	insns[n++] = EXIT();
	*map_out = map;
	return prog_load(insns, n);
}

static int entries[32];
static char entry_names[32][32];
static int nentries;

static void one_case(const char *variant, unsigned int n_calls)
{
	unsigned int max_entries = n_calls + 2 < 9 ? 9 : n_calls + 2, nprogs = n_calls + 1;
	int map = -1, poison = -1, progs[MAX_N + 1];
	int legacy = !strcmp(variant, "legacy"), direct = !strcmp(variant, "direct");
	const char *site = legacy ? "poisoned" : direct ? "direct" : "static";
	char name[64], cname[32];
	long ret;

	snprintf(cname, sizeof(cname), "%s-n%u", variant, n_calls);
	if (!strcmp(variant, "floor")) {
		site = "none";
		nprogs = 1;
		progs[0] = floor_prog(n_calls);
	} else if (!strcmp(variant, "gotox")) {
		site = "none";
		nprogs = 1;
		progs[0] = gotox_prog(n_calls, &map);
	} else {
		map = prog_array_create(max_entries);
		/* legacy: a second, empty prog array poisons the call site */
		poison = legacy ? prog_array_create(max_entries) : map;
		if (map < 0 || poison < 0)
			die("map create failed%s", "");
		for (unsigned int i = 0; i < nprogs; i++)
			progs[i] = link_prog(map, poison, direct ? (int)i + 1 : -1);
		/* Fill the slots after loading: direct jumps are poked now. */
		for (unsigned int i = 0; i < nprogs; i++)
			must_update(map, i, progs[i]);
	}
	if (nentries < (int)ARRAY_SIZE(entries)) {
		entries[nentries] = progs[0];
		snprintf(entry_names[nentries++], sizeof(entry_names[0]), "%s", cname);
	}
	ret = run_timed(progs[0], 1, NULL);
	if (ret != (long)n_calls + 1) {
		fprintf(stderr, "bench guest: %s returned %ld, want %u\n", cname, ret, n_calls + 1);
		exit(1);
	}
	fprintf(manifest, "case %s variant=%s n=%u max_entries=%u nprogs=%u site=%s retval=%ld\n",
		cname, variant, n_calls, map >= 0 && strcmp(variant, "gotox") ? max_entries : 0,
		nprogs, site, ret);
	if (!strcmp(variant, "gotox")) {	/* the jump table: JITed offsets */
		for (unsigned int k = 0; k <= n_calls; k++) {
			struct insn_array_value v;
			union bpf_attr u = { .map_fd = map, .key = (uintptr_t)&k, .value = (uintptr_t)&v };

			if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &u))
				die("insn array lookup failed%s", "");
			fprintf(manifest, "table %s %u jitted_off=%u\n", cname, k, v.jitted_off);
		}
	}
	for (unsigned int i = 0; i < nprogs; i++) {
		size_t len;
		int ctx_off;
		uint64_t ksym;

		snprintf(name, sizeof(name), "%s-%u", cname, i);
		ksym = dump(progs[i], name, &len, &ctx_off);
		fprintf(manifest, "prog %s slot=%u ksym=0x%llx len=%zu ctx_off=%d file=%s.bin\n",
			cname, i, (unsigned long long)ksym, len, ctx_off, name);
	}
	/* The programs stay loaded (no close) so no address is reused. */
}

/*
 * In-guest timing (only meaningful under KVM): BPF_PROG_TEST_RUN with
 * repeat, rounds interleaved over the cases, the kernel's mean ns per run.
 * Hot only: user space cannot flush the kernel's prog array.
 */
static void guest_timing(int rounds, unsigned int repeat)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/guest-time.txt", out_dir);
	f = fopen(path, "w");
	if (!f)
		die("cannot write %s", path);
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < nentries; i++) {
			int e = (i + r) % nentries;
			unsigned int ns;

			run_timed(entries[e], repeat, &ns);
			fprintf(f, "time %s %d %u\n", entry_names[e], r, ns);
		}
	}
	if (fclose(f))
		die("writing %s failed", path);
}

int main(int argc, char **argv)
{
	static const char *variants[] = { "cache", "legacy", "direct", "floor", "gotox" };
	int time_rounds;
	char path[512];

	if (argc < 4) {
		fprintf(stderr, "usage: guest OUT_DIR TIME_ROUNDS N...\n");
		return 2;
	}
	raw_log = log_buf;	/* sock_prog_load() prints the verifier log */
	raw_log_size = sizeof(log_buf);
	out_dir = argv[1];
	time_rounds = atoi(argv[2]);
	argv++;
	argc--;
	snprintf(path, sizeof(path), "%s/manifest.txt", out_dir);
	manifest = fopen(path, "w");
	if (!manifest)
		die("cannot write %s", path);
	for (int a = 2; a < argc; a++) {
		unsigned int n = strtoul(argv[a], NULL, 0);

		if (n < 1 || n > MAX_N)
			die("chain length %s out of range 1..32", argv[a]);
		for (size_t v = 0; v < ARRAY_SIZE(variants); v++)
			one_case(variants[v], n);
	}
	if (fclose(manifest))
		die("writing %s failed", path);
	if (time_rounds > 0)
		guest_timing(time_rounds, 100000);
	printf("bench guest: %d chain lengths x %zu variants dumped to %s\n", argc - 2,
	       ARRAY_SIZE(variants), out_dir);
	return 0;
}

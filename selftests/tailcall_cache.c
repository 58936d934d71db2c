// SPDX-License-Identifier: GPL-2.0
/*
 * Tail calls through the prog-array target cache, checked from user space
 * in the guest with raw bpf(2) calls (no libbpf):
 *
 *  - behaviour of static-map, poisoned-map (legacy) and constant-key
 *    (direct) call sites for max_entries 1, 5 and 8: a populated slot
 *    jumps, an empty slot, index max_entries and 0xffffffff fall through,
 *    and after update, replace and delete the next call sees the new state;
 *  - the JITed image of a static-map site has no load of map.max_entries
 *    and no load of prog->bpf_func with kernel.bpf_tailcall_cache=1, and
 *    the legacy sequence with =0 (x86-64 and arm64 encodings; on arm64,
 *    which has no direct tail calls, constant-key sites take the cache
 *    sequence too).
 *
 * Prints one line per check and "tailcall_cache: N passed, M failed".
 */
#include "bpf_raw.h"
#include "tcc_check.h"

#define JA(o)		INSN(BPF_JMP | BPF_JA, 0, 0, o, 0)
#define CB2 offsetof(struct __sk_buff, cb[2])
#define STX_W(d, s, o)	INSN(BPF_STX | BPF_MEM | BPF_W, d, s, o, 0)
#define MAX_TAIL_CALL_CNT 33

static char log_buf[65536];

/* Load a socket filter; with btf >= 0, func_info names its functions. */
static int prog_load_btf(const struct bpf_insn *insns, size_t n, int btf,
			 const struct bpf_func_info *fi, size_t nfi)
{
	union bpf_attr a = {
		.prog_type = BPF_PROG_TYPE_SOCKET_FILTER,
		.insns = (uintptr_t)insns, .insn_cnt = n,
		.license = (uintptr_t)"GPL",
		.log_buf = (uintptr_t)log_buf, .log_size = sizeof(log_buf), .log_level = 1,
	};
	int fd;

	if (btf >= 0) {
		a.prog_btf_fd = btf;
		a.func_info = (uintptr_t)fi;
		a.func_info_cnt = nfi;
		a.func_info_rec_size = sizeof(*fi);
	}
	fd = sys_bpf(BPF_PROG_LOAD, &a);

	if (fd < 0)
		fprintf(stderr, "prog load: %s\n%s\n", strerror(errno), log_buf);
	return fd;
}

static size_t jited_image(int prog, unsigned char *buf, size_t len)
{
	struct bpf_prog_info info = { 0 };
	union bpf_attr a = { 0 };

	info.jited_prog_len = len;
	info.jited_prog_insns = (uintptr_t)buf;
	a.info.bpf_fd = prog;
	a.info.info_len = sizeof(info);
	a.info.info = (uintptr_t)&info;
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a))
		return 0;
	return info.jited_prog_len < len ? info.jited_prog_len : len;
}


/* With TCC_IMG_DIR set, keep each checked image for the host to disassemble. */
static void save_image(const char *what, const unsigned char *img, size_t n)
{
	const char *dir = getenv("TCC_IMG_DIR");
	char path[512], name[128];
	FILE *f;
	size_t i;

	if (!dir)
		return;
	for (i = 0; what[i] && i < sizeof(name) - 1; i++)
		name[i] = (what[i] == ' ' || what[i] == ',') ? '_' : what[i];
	name[i] = 0;
	snprintf(path, sizeof(path), "%s/%s.bin", dir, name);
	f = fopen(path, "w");
	if (!f)
		return;
	fwrite(img, 1, n, f);
	fclose(f);
}

#if defined(__x86_64__)
static int count(const unsigned char *img, size_t n, const unsigned char *pat, size_t plen)
{
	int c = 0;

	for (size_t i = 0; i + plen <= n; i++)
		c += !memcmp(img + i, pat, plen);
	return c;
}

/* x86-64 encodings emitted by the tail-call sequences */
static const unsigned char cmp_max_entries_mem[] = { 0x39, 0x56 };	/* cmp [rsi + off8], edx */
static const unsigned char load_bpf_func[] = { 0x48, 0x8b, 0x49 };	/* mov rcx, [rcx + off8] */
static const unsigned char load_ptrs_idx[] = { 0x48, 0x8b, 0x8c, 0xd6 };	/* mov rcx, [rsi+rdx*8+d32] */

static void check_image(const char *what, int prog, unsigned int max_entries, int want_static)
{
	static unsigned char img[8192];
	unsigned char cmp_imm[6] = { 0x81, 0xfa };	/* cmp edx, imm32 */
	size_t n = jited_image(prog, img, sizeof(img));
	int cmp_mem, bpf_func, cmp_i, ptrs;

	memcpy(cmp_imm + 2, &max_entries, 4);
	save_image(what, img, n);
	cmp_mem = count(img, n, cmp_max_entries_mem, sizeof(cmp_max_entries_mem));
	bpf_func = count(img, n, load_bpf_func, sizeof(load_bpf_func));
	cmp_i = count(img, n, cmp_imm, sizeof(cmp_imm));
	ptrs = count(img, n, load_ptrs_idx, sizeof(load_ptrs_idx));
	printf("  %s: %zu bytes, cmp [rsi+off],edx x%d, mov rcx,[rcx+off] x%d, cmp edx,%u x%d, mov rcx,[rsi+rdx*8+disp] x%d\n",
	       what, n, cmp_mem, bpf_func, max_entries, cmp_i, ptrs);
	if (want_static)
		check(n && !cmp_mem && !bpf_func && cmp_i == 1 && ptrs == 1,
		      "%s: JIT image has the cache sequence (no max_entries, no bpf_func load)", what);
	else
		check(n && cmp_mem == 1 && bpf_func == 1 && ptrs == 1,
		      "%s: JIT image has the legacy sequence", what);
}
#elif defined(__aarch64__)
/*
 * arm64 encodings emitted by the tail-call sequences (x1 = array,
 * x2 = index, x10/x11 = JIT temporaries): the legacy sequence loads
 * max_entries with ldr w10, [x1, x10] and bpf_func with ldr x10, [x11, x10]
 * and branches with br x10; the cache sequence moves max_entries into w10
 * and branches to the loaded target with br x11. Both load the slot with
 * ldr x11, [x10, x11].
 */
#define A64_LDR_REG(sf, rt, rn, rm) (((sf) ? 0xf8606800u : 0xb8606800u) | \
				     (rm) << 16 | (rn) << 5 | (rt))
#define A64_BR(rn)	(0xd61f0000u | (rn) << 5)

static int count_insn(const unsigned char *img, size_t n, uint32_t insn)
{
	int c = 0;

	for (size_t i = 0; i + 4 <= n; i += 4)
		c += !memcmp(img + i, &insn, 4);
	return c;
}

static void check_image(const char *what, int prog, unsigned int max_entries, int want_static)
{
	static unsigned char img[8192];
	size_t n = jited_image(prog, img, sizeof(img));
	int ld_max, ld_func, ld_slot, mov_max, br_target;

	save_image(what, img, n);
	ld_max = count_insn(img, n, A64_LDR_REG(0, 10, 1, 10));
	ld_func = count_insn(img, n, A64_LDR_REG(1, 10, 11, 10));
	ld_slot = count_insn(img, n, A64_LDR_REG(1, 11, 10, 11));
	/* movz w10, #max_entries (max_entries < 65536 here) */
	mov_max = count_insn(img, n, 0x52800000u | max_entries << 5 | 10);
	br_target = count_insn(img, n, A64_BR(11));
	printf("  %s: %zu bytes, ldr w10,[x1,x10] x%d, ldr x10,[x11,x10] x%d, ldr x11,[x10,x11] x%d, mov w10,#%u x%d, br x11 x%d\n",
	       what, n, ld_max, ld_func, ld_slot, max_entries, mov_max, br_target);
	if (want_static)
		check(n && !ld_max && !ld_func && mov_max == 1 && ld_slot == 1 && br_target == 1,
		      "%s: JIT image has the cache sequence (no max_entries, no bpf_func load)", what);
	else
		check(n && ld_max == 1 && ld_func == 1 && ld_slot == 1 && !br_target,
		      "%s: JIT image has the legacy sequence", what);
}
#else
static void check_image(const char *what, int prog, unsigned int max_entries, int want_static)
{
	(void)prog, (void)max_entries, (void)want_static;
	printf("note: %s: no image check for this architecture\n", what);
}
#endif

static void behaviour(unsigned int max_entries, int cache)
{
	int map = prog_array_create(max_entries), other = prog_array_create(max_entries);
	int t[3], st, po, di;
	unsigned int last = max_entries - 1;
	char tag[64];

	snprintf(tag, sizeof(tag), "max_entries=%u cache=%d", max_entries, cache);
	if (map < 0 || other < 0) {
		check(0, "%s: map create: %s", tag, strerror(errno));
		return;
	}
	for (int i = 0; i < 3; i++)
		t[i] = target(100 + i);
	st = caller_static(map);
	po = caller_poisoned(map, other);
	di = caller_direct(map, last);
	if (t[0] < 0 || t[1] < 0 || t[2] < 0 || st < 0 || po < 0 || di < 0) {
		check(0, "%s: program load failed", tag);
		return;
	}
	if (max_entries == 5) {
		check_image(cache > 0 ? "static site, cache on" : "static site, cache off",
			    st, max_entries, cache > 0);
		check_image("poisoned site", po, max_entries, 0);
#ifdef __aarch64__
		check_image(cache > 0 ? "constant-key site, cache on" :
			    "constant-key site, cache off", di, max_entries, cache > 0);
#endif
	}

	/* empty array */
	check(run(st, 0, 0) == FALLTHROUGH && run(po, 0, 0) == FALLTHROUGH &&
	      run(di, 0, 0) == FALLTHROUGH, "%s: empty slot falls through", tag);

	/* update */
	map_update(map, last, t[0]);
	map_update(other, last, t[2]);
	check(run(st, last, 0) == 100 && run(po, last, 0) == 100 &&
	      run(po, last, 1) == 102 && run(di, 0, 0) == 100,
	      "%s: update: every site jumps to slot %u", tag, last);
	check(run(st, max_entries, 0) == FALLTHROUGH &&
	      run(po, max_entries, 0) == FALLTHROUGH,
	      "%s: index max_entries falls through", tag);
	check(run(st, 0xffffffffu, 0) == FALLTHROUGH &&
	      run(po, 0xffffffffu, 0) == FALLTHROUGH,
	      "%s: index 0xffffffff falls through", tag);
	if (last)
		check(run(st, 0, 0) == FALLTHROUGH, "%s: other slot still empty", tag);

	/* replace */
	map_update(map, last, t[1]);
	check(run(st, last, 0) == 101 && run(po, last, 0) == 101 && run(di, 0, 0) == 101,
	      "%s: replace: every site sees the new program", tag);

	/* delete */
	map_delete(map, last);
	check(run(st, last, 0) == FALLTHROUGH && run(po, last, 0) == FALLTHROUGH &&
	      run(di, 0, 0) == FALLTHROUGH, "%s: delete: every site falls through", tag);

	/*
	 * Refill, then drop the last user reference: the deferred clear (a
	 * work item) empties it. Poll for it: a TCG guest can be slow.
	 */
	check(map_update(map, last, t[0]) == 0 && run(st, last, 0) == 100,
	      "%s: refill before the clear", tag);
	close(map);
	close(other);
	for (int ms = 0; ms < 10000; ms += 50) {
		if (run(st, last, 0) == FALLTHROUGH && run(di, 0, 0) == FALLTHROUGH)
			break;
		usleep(50 * 1000);
	}
	check(run(st, last, 0) == FALLTHROUGH && run(di, 0, 0) == FALLTHROUGH,
	      "%s: clear after the last map fd is closed: sites fall through", tag);

	for (int i = 0; i < 3; i++)
		close(t[i]);
	close(st);
	close(po);
	close(di);
}

/*
 * The 33-call limit through a static site: a program that counts its runs
 * in cb[2] and tail calls itself runs 1 + MAX_TAIL_CALL_CNT times.
 */
static void limit(int cache)
{
	int map = prog_array_create(4), prog;
	struct bpf_insn insns[] = {
		MOV64_REG(BPF_REG_6, BPF_REG_1),
		LDX_W(BPF_REG_2, BPF_REG_6, CB2),
		ADD64_IMM(BPF_REG_2, 1),
		STX_W(BPF_REG_6, BPF_REG_2, CB2),
		LDX_W(BPF_REG_3, BPF_REG_6, CB0),
		LD_MAP(BPF_REG_2, map),
		CALL(BPF_FUNC_tail_call),
		LDX_W(BPF_REG_0, BPF_REG_6, CB2),
		EXIT(),
	};
	long r;

	prog = sock_prog_load(insns, ARRAY_SIZE(insns));
	if (map < 0 || prog < 0) {
		check(0, "cache=%d: limit: setup failed", cache);
		return;
	}
	map_update(map, 2, prog);
	r = run(prog, 2, 0);
	check(r == 1 + MAX_TAIL_CALL_CNT,
	      "cache=%d: a static site that tail calls itself runs %d times (got %ld)",
	      cache, 1 + MAX_TAIL_CALL_CNT, r);
	r = run(prog, 3, 0);
	check(r == 1, "cache=%d: the same program with an empty slot runs once (got %ld)",
	      cache, r);
	map_delete(map, 2);
	close(prog);
	close(map);
}

/*
 * Tail calls in subprograms need BTF for the functions: a minimal blob
 * with "int f(void *ctx)" for the main program and its subprogram.
 */
static int load_func_btf(void)
{
	static const char strs[] = "\0int\0ctx\0main\0sub";
	struct {
		struct btf_header hdr;
		__u32 types[4 + 3 + 5 + 3 + 3];
		char strs[sizeof(strs)];
	} __attribute__((packed)) b = {
		.hdr = { .magic = BTF_MAGIC, .version = BTF_VERSION,
			 .hdr_len = sizeof(struct btf_header),
			 .type_off = 0, .type_len = sizeof(b.types),
			 .str_off = sizeof(b.types), .str_len = sizeof(strs) },
		.types = {
			/* [1] int: 4 bytes, signed, 32 bits */
			1, BTF_KIND_INT << 24, 4, (BTF_INT_SIGNED << 24) | 32,
			/* [2] void * */
			0, BTF_KIND_PTR << 24, 0,
			/* [3] int (void *ctx) */
			0, (BTF_KIND_FUNC_PROTO << 24) | 1, 1, 5, 2,
			/* [4] static int main(void *ctx) */
			9, BTF_KIND_FUNC << 24, 3,
			/* [5] static int sub(void *ctx) */
			14, BTF_KIND_FUNC << 24, 3,
		},
	};
	union bpf_attr a = { 0 };

	memcpy(b.strs, strs, sizeof(strs));
	a.btf = (uintptr_t)&b;
	a.btf_size = sizeof(b);
	return sys_bpf(BPF_BTF_LOAD, &a);
}

/* A static site in a subprogram: the tail call replaces the subprogram. */
static void subprog(int cache)
{
	int map = prog_array_create(3), t = target(100), btf = load_func_btf(), prog;
	const struct bpf_func_info fi[] = { { 0, 4 }, { 3, 5 } };
	struct bpf_insn insns[] = {
		CALL_REL(2),
		ADD64_IMM(BPF_REG_0, 1000),
		EXIT(),
		/* subprog: tail call through the map, key cb[0] */
		LDX_W(BPF_REG_3, BPF_REG_1, CB0),
		LD_MAP(BPF_REG_2, map),
		CALL(BPF_FUNC_tail_call),
		MOV64_IMM(BPF_REG_0, FALLTHROUGH),
		EXIT(),
	};

	if (btf < 0)
		fprintf(stderr, "BTF load: %s\n", strerror(errno));
	prog = prog_load_btf(insns, ARRAY_SIZE(insns), btf, fi, ARRAY_SIZE(fi));
	if (map < 0 || t < 0 || btf < 0 || prog < 0) {
		check(0, "cache=%d: subprog: setup failed", cache);
		return;
	}
	map_update(map, 1, t);
	check(run(prog, 1, 0) == 1100 && run(prog, 0, 0) == 1000 + FALLTHROUGH &&
	      run(prog, 3, 0) == 1000 + FALLTHROUGH,
	      "cache=%d: static site in a subprogram: jumps, empty slot and index past the end fall through",
	      cache);
	map_delete(map, 1);
	close(prog);
	close(btf);
	close(t);
	close(map);
}

int main(void)
{
	static const unsigned int sizes[] = { 1, 5, 8 };
	int have_sysctl;

	raw_log = log_buf;
	raw_log_size = sizeof(log_buf);
	have_sysctl = set_cache_sysctl(1) == 0;
	if (!have_sysctl)
		printf("note: no kernel.bpf_tailcall_cache; testing behaviour only\n");
	for (int cache = 1; cache >= 0; cache--) {
		if (have_sysctl && set_cache_sysctl(cache)) {
			check(0, "set kernel.bpf_tailcall_cache=%d", cache);
			continue;
		}
		if (!have_sysctl && !cache)
			break;
		for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
			behaviour(sizes[i], have_sysctl ? cache : -1);
		limit(have_sysctl ? cache : -1);
		subprog(have_sysctl ? cache : -1);
	}
	if (have_sysctl)
		set_cache_sysctl(1);
	printf("tailcall_cache: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

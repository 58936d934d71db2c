// SPDX-License-Identifier: GPL-2.0
/*
 * Tail calls through the prog-array target cache, checked from user space
 * in the guest with raw bpf(2) calls (no libbpf). Two passes:
 *
 *  - "cache": programs loaded with bpf_jit_harden=0;
 *  - "legacy": the same checks with every program loaded with
 *    bpf_jit_harden=2 (constant blinding: the JIT keeps the legacy
 *    sequence and, on x86-64, emits no direct tail calls); the previous
 *    value is restored after the pass (a bpf_jit_harden that cannot be
 *    written is a failed check).
 *
 * In each pass:
 *  - behaviour of static-map, poisoned-map (two prog arrays reach the
 *    call: the legacy sequence) and constant-key call sites for
 *    max_entries 1, 5, 8 and 9: a populated slot jumps, an empty slot, index
 *    max_entries and 0xffffffff fall through, after update, replace and
 *    delete the next call sees the new state, and the clear after the
 *    last map fd is closed empties the sites; the 33-call limit; a static
 *    site in a subprogram;
 *  - the JITed images: in the cache pass the static-map site has the
 *    cached sequence (no load of map.max_entries, no load of
 *    prog->bpf_func) and the poisoned site the legacy one; in the legacy
 *    pass every site has the legacy sequence. x86-64: the cached sequence
 *    is "mov edx, edx; cmp edx, max_entries" and "mov rcx, [rsi + rdx * 8
 *    + offsetof(struct bpf_array, ptrs) + 8 * roundup_pow_of_two(
 *    max_entries)]", the legacy one "mov edx, edx; cmp [rsi +
 *    max_entries], edx", "mov rcx, [rsi + rdx * 8 + ptrs]" and "mov rcx,
 *    [rcx + bpf_func]", with the struct offsets read from the kernel's BTF
 *    (/sys/kernel/btf/vmlinux; without it the image checks fail); a
 *    constant-key site stays a direct (poked) jump in the cache pass.
 *    arm64 (no direct tail calls): constant-key sites take the cached
 *    sequence in the cache pass too.
 *
 * A kernel without the series shows the legacy sequence at a static-map
 * site: without TCC_EXPECT_CACHE=1 in the environment that is reported
 * ("note: legacy image: kernel without the series") and the image checks
 * are printed but not counted (behaviour only). The harness sets
 * TCC_EXPECT_CACHE=1 on kernels with the series: there a legacy image at a
 * static-map site is a failure.
 *
 * Prints one line per check and "tailcall_cache: N passed, M failed".
 */
#include "bpf_raw.h"
#include "btf_raw.h"
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

/*
 * The arrays whose images are kept (TCC_IMG_DIR, for scripts/jit-loads.py
 * and compare-images.sh) and checked for every site kind: more than 8
 * slots, which keep the cached sequence where the kernel makes compare
 * trees of smaller arrays.
 */
#define IMG_ENTRIES 9

/* The sequences a tail-call site can show in its JITed image. */
enum shape { SHAPE_NONE, SHAPE_CACHED, SHAPE_LEGACY, SHAPE_DIRECT, SHAPE_TREE, SHAPE_OTHER };
static const char *const shape_name[] = {
	[SHAPE_NONE] = "no JITed image",
	[SHAPE_CACHED] = "the cached sequence (no max_entries, no bpf_func load)",
	[SHAPE_LEGACY] = "the legacy sequence",
	[SHAPE_DIRECT] = "a direct (poked) tail call, no indirect sequence",
	[SHAPE_TREE] = "a compare tree of direct (poked) tail calls, one per slot",
	[SHAPE_OTHER] = "no known tail-call sequence",
};

/* TCC_EXPECT_CACHE=1: the kernel has the series, a static site must be cached. */
static int want_cache;
/* TCC_EXPECT_CACHE=0: a kernel that must not use the cache anywhere (the
 * series with CONFIG_BPF_TAILCALL_CACHE=n, or a prefix of it before the
 * arch's JIT patch): every image is checked, a cached one is a failure. */
static int want_legacy;
/* The static site showed the legacy image and no cache is expected. */
static int base_kernel;

#if defined(__x86_64__)
/*
 * The RFC patches of the series turn a static site into a compare tree of
 * direct tail calls when max_entries <= 8 and the CPU's indirect jumps are
 * thunks (bpf_jit_wants_tail_call_tree()); a kernel has them when it has
 * bpf_tailcall_tree_emit(). TCC_EXPECT_TREE=0/1 overrides the guess.
 */
static int expect_tree(unsigned int max_entries)
{
	static int have = -1;
	const char *env = getenv("TCC_EXPECT_TREE");
	char line[256];
	FILE *f;

	if (max_entries > 8)
		return 0;
	if (env)
		return !strcmp(env, "1");
	if (have >= 0)
		return have;
	have = 0;
	f = fopen("/sys/devices/system/cpu/vulnerabilities/spectre_v2", "r");
	if (f) {
		if (fgets(line, sizeof(line), f) &&
		    (strstr(line, "Retpolines") || strstr(line, "LFENCE")))
			have = 1;
		fclose(f);
	}
	f = fopen("/sys/devices/system/cpu/vulnerabilities/indirect_target_selection", "r");
	if (f) {
		if (fgets(line, sizeof(line), f) && strstr(line, "Aligned branch/return thunks"))
			have = 1;
		fclose(f);
	}
	if (have) {
		have = 0;
		f = fopen("/proc/kallsyms", "r");
		while (f && fgets(line, sizeof(line), f))
			if (strstr(line, " bpf_tailcall_tree_emit\n")) {
				have = 1;
				break;
			}
		if (f)
			fclose(f);
	}
	printf("note: compare trees for static sites of up to 8 slots: %s\n",
	       have ? "expected (indirect jumps are thunks, kernel has bpf_tailcall_tree_emit)" : "not expected");
	return have;
}

/* Struct offsets from the kernel's BTF; -1 while unknown. */
static long off_ptrs = -1, off_max = -1, off_func = -1;

/*
 * offsetof(struct bpf_array, ptrs), of map.max_entries and of struct
 * bpf_prog's bpf_func, from the running kernel's BTF: the displacements
 * the JIT emits.
 */
static void read_offsets(void)
{
	struct btf_blob b;
	const char *why = "";
	long map;

	if (!btf_load(&b, &why)) {
		off_ptrs = btf_offsetof(&b, "bpf_array", "ptrs");
		map = btf_offsetof(&b, "bpf_array", "map");
		off_max = btf_offsetof(&b, "bpf_map", "max_entries");
		off_max = map >= 0 && off_max >= 0 ? map + off_max : -1;
		off_func = btf_offsetof(&b, "bpf_prog", "bpf_func");
		why = "no such member";
	}
	free(b.data);
	free(b.types);
	/* The legacy sequence encodes max_entries and bpf_func as disp8. */
	check(off_ptrs > 0 && off_max > 0 && off_max < 128 && off_func > 0 && off_func < 128,
	      "kernel BTF: offsetof(struct bpf_array, ptrs) = %ld, map.max_entries = %ld, "
	      "offsetof(struct bpf_prog, bpf_func) = %ld%s%s", off_ptrs, off_max, off_func,
	      off_ptrs > 0 && off_max > 0 && off_func > 0 ? "" : ": ",
	      off_ptrs > 0 && off_max > 0 && off_func > 0 ? "" : why);
}

static int count(const unsigned char *img, size_t n, const unsigned char *pat, size_t plen)
{
	int c = 0;

	for (size_t i = 0; i + plen <= n; i++)
		c += !memcmp(img + i, pat, plen);
	return c;
}

/* @len bytes of @head followed by the 1 or 4 byte little-endian @v. */
static int count_v(const unsigned char *img, size_t n, const unsigned char *head, size_t len,
		   long v, int vbytes)
{
	unsigned char pat[16];
	uint32_t v32 = (uint32_t)v;

	if (v < 0 || (vbytes == 1 && v > 127))
		return -1;	/* offset unknown: counts as not found */
	memcpy(pat, head, len);
	if (vbytes == 1)
		pat[len] = (unsigned char)v;
	else
		memcpy(pat + len, &v32, 4);
	return count(img, n, pat, len + vbytes);
}

static unsigned long roundup_pow2(unsigned long v)
{
	unsigned long r = 1;

	while (r < v)
		r <<= 1;
	return r;
}

/*
 * x86-64 encodings of the tail-call sequences (rsi = array, edx = index):
 *   cached:  mov edx, edx; cmp edx, imm32 (max_entries)   89 d2 81 fa <imm32>
 *            mov rcx, [rsi + rdx * 8 + cache_disp]         48 8b 8c d6 <disp32>
 *   legacy:  mov edx, edx; cmp [rsi + max_entries], edx   89 d2 39 56 <disp8>
 *            mov rcx, [rsi + rdx * 8 + ptrs]               48 8b 8c d6 <disp32>
 *            mov rcx, [rcx + bpf_func]                     48 8b 49 <disp8>
 *   direct:  cmp qword ptr [rax], MAX_TAIL_CALL_CNT        48 83 38 21
 *            and then a poked jump, no slot load.
 * cache_disp = offsetof(struct bpf_array, ptrs) + 8 * roundup_pow_of_two(max_entries).
 */
static enum shape classify(const char *what, const unsigned char *img, size_t n,
			   unsigned int max_entries)
{
	static const unsigned char mov_cmp_imm[] = { 0x89, 0xd2, 0x81, 0xfa };
	static const unsigned char mov_cmp_mem[] = { 0x89, 0xd2, 0x39, 0x56 };
	static const unsigned char ld_slot[] = { 0x48, 0x8b, 0x8c, 0xd6 };
	static const unsigned char ld_func[] = { 0x48, 0x8b, 0x49 };
	static const unsigned char cmp_cnt[] = { 0x48, 0x83, 0x38, 0x21 };
	long disp = off_ptrs < 0 ? -1 : off_ptrs + 8 * (long)roundup_pow2(max_entries);
	int cmp_imm = count_v(img, n, mov_cmp_imm, 4, max_entries, 4);
	int cmp_imm_any = count(img, n, mov_cmp_imm, 4);
	int cmp_mem = count_v(img, n, mov_cmp_mem, 4, off_max, 1);
	int cmp_mem_any = count(img, n, mov_cmp_mem, 4);
	int ld_cache = count_v(img, n, ld_slot, 4, disp, 4);
	int ld_ptrs = count_v(img, n, ld_slot, 4, off_ptrs, 4);
	int ld_slot_any = count(img, n, ld_slot, 4);
	int ld_fn = count_v(img, n, ld_func, 3, off_func, 1);
	int ld_fn_any = count(img, n, ld_func, 3);
	int cnt = count(img, n, cmp_cnt, 4);
	/* the compare tree's bound check: cmp edx, imm8 (max_entries <= 8) */
	static const unsigned char cmp_imm8[] = { 0x83, 0xfa };
	int bound = max_entries < 128 ? count_v(img, n, cmp_imm8, 2, max_entries, 1) : 0;

	printf("  %s: %zu bytes: cmp edx,%u x%d (any imm x%d); cmp [rsi+%ld],edx x%d (any x%d); "
	       "mov rcx,[rsi+rdx*8+%ld] x%d, +%ld x%d (any x%d); mov rcx,[rcx+%ld] x%d (any x%d); "
	       "cmp [rax],33 x%d\n", what, n, max_entries, cmp_imm, cmp_imm_any, off_max, cmp_mem,
	       cmp_mem_any, disp, ld_cache, off_ptrs, ld_ptrs, ld_slot_any, off_func, ld_fn, ld_fn_any,
	       cnt);
	if (!n)
		return SHAPE_NONE;
	if (cmp_imm == 1 && cmp_imm_any == 1 && ld_cache == 1 && ld_slot_any == 1 &&
	    !cmp_mem_any && !ld_fn_any && cnt == 1)
		return SHAPE_CACHED;
	if (cmp_mem == 1 && cmp_mem_any == 1 && ld_ptrs == 1 && ld_slot_any == 1 && ld_fn == 1 &&
	    !cmp_imm_any && cnt == 1)
		return SHAPE_LEGACY;
	if (!cmp_imm_any && !cmp_mem_any && !ld_slot_any && !ld_fn_any && bound >= 1 &&
	    cnt == (int)max_entries)
		return SHAPE_TREE;
	if (!cmp_imm_any && !cmp_mem_any && !ld_slot_any && !ld_fn_any && cnt == 1)
		return SHAPE_DIRECT;
	return SHAPE_OTHER;
}
#define HAVE_IMAGE_CHECK 1
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

static void read_offsets(void)
{
	/* the arm64 checks below need no struct offsets (and its kernel has no BTF) */
}

static int count_insn(const unsigned char *img, size_t n, uint32_t insn)
{
	int c = 0;

	for (size_t i = 0; i + 4 <= n; i += 4)
		c += !memcmp(img + i, &insn, 4);
	return c;
}

static enum shape classify(const char *what, const unsigned char *img, size_t n,
			   unsigned int max_entries)
{
	int ld_max, ld_func, ld_slot, mov_max, br_target;

	ld_max = count_insn(img, n, A64_LDR_REG(0, 10, 1, 10));
	ld_func = count_insn(img, n, A64_LDR_REG(1, 10, 11, 10));
	ld_slot = count_insn(img, n, A64_LDR_REG(1, 11, 10, 11));
	/* movz w10, #max_entries (max_entries < 65536 here) */
	mov_max = count_insn(img, n, 0x52800000u | max_entries << 5 | 10);
	br_target = count_insn(img, n, A64_BR(11));
	printf("  %s: %zu bytes, ldr w10,[x1,x10] x%d, ldr x10,[x11,x10] x%d, ldr x11,[x10,x11] x%d, mov w10,#%u x%d, br x11 x%d\n",
	       what, n, ld_max, ld_func, ld_slot, max_entries, mov_max, br_target);
	if (!n)
		return SHAPE_NONE;
	if (!ld_max && !ld_func && mov_max == 1 && ld_slot == 1 && br_target == 1)
		return SHAPE_CACHED;
	if (ld_max == 1 && ld_func == 1 && ld_slot == 1 && !br_target)
		return SHAPE_LEGACY;
	return SHAPE_OTHER;
}
#define HAVE_IMAGE_CHECK 1
#else
static void read_offsets(void)
{
}
#endif

#ifdef HAVE_IMAGE_CHECK
/*
 * The JITed image of @prog, a tail call through a prog array of
 * @max_entries, must show @want. With @save, the image is kept in
 * TCC_IMG_DIR under the name @what. On a kernel without the series
 * (base_kernel) the result is printed, not counted.
 */
static void check_image(const char *what, int prog, unsigned int max_entries, enum shape want,
			int save)
{
	static unsigned char img[8192];
	size_t n = jited_image(prog, img, sizeof(img));
	enum shape got;

	if (save)
		save_image(what, img, n);
	got = classify(what, img, n, max_entries);
	if (want_legacy && want == SHAPE_CACHED)
		want = SHAPE_LEGACY;
	if (base_kernel) {
		printf("note: %s: JIT image has %s (%s with the series; not counted)\n", what,
		       shape_name[got], got == want ? "as" : "unlike");
		return;
	}
	if (got == want)
		check(1, "%s: JIT image has %s", what, shape_name[want]);
	else
		check(0, "%s: JIT image has %s, not %s", what, shape_name[got], shape_name[want]);
}

/*
 * Which kernel: the image of a static-map site (max_entries IMG_ENTRIES, cache
 * pass). The legacy sequence there is a kernel without the series, unless
 * TCC_EXPECT_CACHE=1 says it has the series: then the image checks fail.
 */
static void probe(void)
{
	static unsigned char img[8192];
	int map = prog_array_create(IMG_ENTRIES), st = map >= 0 ? caller_static(map) : -1;
	size_t n = st >= 0 ? jited_image(st, img, sizeof(img)) : 0;
	enum shape got = classify("probe: static site", img, n, IMG_ENTRIES);

	if (want_legacy) {
		printf("note: TCC_EXPECT_CACHE=0: every site must show the legacy sequence\n");
	} else if (got == SHAPE_LEGACY && !want_cache) {
		base_kernel = 1;
		printf("note: legacy image: kernel without the series (static site, max_entries 9; "
		       "no TCC_EXPECT_CACHE=1): image checks are printed, not counted\n");
	} else if (got == SHAPE_LEGACY) {
		printf("note: legacy image at a static site although TCC_EXPECT_CACHE=1: "
		       "the image checks fail\n");
	} else if (got == SHAPE_CACHED && !want_cache) {
		printf("note: cached image without TCC_EXPECT_CACHE=1: the images are checked as with the series\n");
	}
	if (st >= 0)
		close(st);
	if (map >= 0)
		close(map);
}
#else
static void check_image(const char *what, int prog, unsigned int max_entries, enum shape want,
			int save)
{
	(void)prog, (void)max_entries, (void)want, (void)save;
	printf("note: %s: no image check for this architecture\n", what);
}

static void probe(void)
{
}
#endif

/* The two passes: programs loaded with bpf_jit_harden=0, then =2. */
enum pass { PASS_CACHE, PASS_LEGACY };
static const char *const pass_name[] = { "cache", "legacy (bpf_jit_harden=2)" };

/* The images of a pass's sites, through arrays of max_entries @me. */
static void images(enum pass pass, unsigned int me, int st, int po, int di)
{
	char what[96];

	if (pass == PASS_CACHE) {
#ifdef __x86_64__
		/* every size: the displacement follows roundup_pow_of_two(max_entries);
		 * a compare tree instead where the kernel makes one */
		snprintf(what, sizeof(what), me == IMG_ENTRIES ? "static site" : "static site, max_entries %u",
			 me);
		check_image(what, st, me, expect_tree(me) ? SHAPE_TREE : SHAPE_CACHED, me == IMG_ENTRIES);
		if (me != IMG_ENTRIES)
			return;
		check_image("poisoned site", po, me, SHAPE_LEGACY, 1);
		/* constant-key sites stay direct on x86-64: nothing to keep */
		check_image("constant-key site", di, me, SHAPE_DIRECT, 0);
#else
		if (me != IMG_ENTRIES)
			return;
		check_image("static site", st, me, SHAPE_CACHED, 1);
		check_image("poisoned site", po, me, SHAPE_LEGACY, 1);
		/* arm64 has no direct tail calls: the cache serves constant keys */
		/* TCC_EXPECT_CONST_KEY=legacy: before the patch that moves
		 * arm64's constant-key sites to the cache. */
		check_image("constant-key site", di, me,
			    getenv("TCC_EXPECT_CONST_KEY") &&
			    !strcmp(getenv("TCC_EXPECT_CONST_KEY"), "legacy") ?
			    SHAPE_LEGACY : SHAPE_CACHED, 1);
#endif
		return;
	}
	if (me != IMG_ENTRIES)
		return;
	/* blinded programs: the legacy sequence everywhere, no direct tail call */
	check_image("static site, bpf_jit_harden=2", st, me, SHAPE_LEGACY, 1);
	check_image("poisoned site, bpf_jit_harden=2", po, me, SHAPE_LEGACY, 1);
	check_image("constant-key site, bpf_jit_harden=2", di, me, SHAPE_LEGACY, 1);
	(void)what;
}

static void behaviour(unsigned int max_entries, enum pass pass)
{
	int map = prog_array_create(max_entries), other = prog_array_create(max_entries);
	int t[3], st, po, di;
	unsigned int last = max_entries - 1;
	char tag[96];

	snprintf(tag, sizeof(tag), "max_entries=%u, %s", max_entries, pass_name[pass]);
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
	images(pass, max_entries, st, po, di);
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
static void limit(enum pass pass)
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
		check(0, "%s: limit: setup failed", pass_name[pass]);
		return;
	}
	map_update(map, 2, prog);
	r = run(prog, 2, 0);
	check(r == 1 + MAX_TAIL_CALL_CNT,
	      "%s: a static site that tail calls itself runs %d times (got %ld)",
	      pass_name[pass], 1 + MAX_TAIL_CALL_CNT, r);
	r = run(prog, 3, 0);
	check(r == 1, "%s: the same program with an empty slot runs once (got %ld)",
	      pass_name[pass], r);
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
static void subprog(enum pass pass)
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
		check(0, "%s: subprog: setup failed", pass_name[pass]);
		return;
	}
	map_update(map, 1, t);
	check(run(prog, 1, 0) == 1100 && run(prog, 0, 0) == 1000 + FALLTHROUGH &&
	      run(prog, 3, 0) == 1000 + FALLTHROUGH,
	      "%s: static site in a subprogram: jumps, empty slot and index past the end fall through",
	      pass_name[pass]);
	map_delete(map, 1);
	close(prog);
	close(btf);
	close(t);
	close(map);
}

/* Set bpf_jit_harden for a pass; a value that cannot be set is a failed check. */
static int set_harden(int v)
{
	if (jit_harden_get() == v)
		return 0;
	if (jit_harden_set(v)) {
		check(0, "set %s to %d: %s", JIT_HARDEN_PATH, v, strerror(errno));
		return -1;
	}
	return 0;
}

static int harden_orig = -1;

static void restore_harden(void)
{
	if (harden_orig >= 0 && jit_harden_get() != harden_orig && jit_harden_set(harden_orig))
		fprintf(stderr, "restoring %s to %d: %s\n", JIT_HARDEN_PATH, harden_orig,
			strerror(errno));
}

int main(void)
{
	static const unsigned int sizes[] = { 1, 5, 8, 9 };
	static const int harden[] = { [PASS_CACHE] = 0, [PASS_LEGACY] = 2 };

	setvbuf(stdout, NULL, _IOLBF, 0);
	raw_log = log_buf;
	raw_log_size = sizeof(log_buf);
	want_cache = expect_cache();
	want_legacy = getenv("TCC_EXPECT_CACHE") && !strcmp(getenv("TCC_EXPECT_CACHE"), "0");
	printf("note: TCC_EXPECT_CACHE=%d: %s\n", want_cache,
	       want_cache ? "the kernel has the series: static sites must be cached"
			  : "the image of a static site tells the kernel");
	harden_orig = jit_harden_get();
	if (harden_orig < 0)
		check(0, "read %s: %s", JIT_HARDEN_PATH, strerror(errno));
	else
		atexit(restore_harden);
	read_offsets();
	for (enum pass pass = PASS_CACHE; pass <= PASS_LEGACY; pass++) {
		if (set_harden(harden[pass]))
			continue;
		if (pass == PASS_CACHE)
			probe();
		for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
			behaviour(sizes[i], pass);
		limit(pass);
		subprog(pass);
	}
	restore_harden();
	if (harden_orig >= 0)
		check(jit_harden_get() == harden_orig, "%s restored to %d", JIT_HARDEN_PATH,
		      harden_orig);
	printf("tailcall_cache: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Bad input on the tail-call paths (raw bpf(2), no libbpf): each must be
 * refused with the kernel's errno for it, and afterwards a reference prog
 * array and its static, legacy (the static caller loaded with
 * bpf_jit_harden=2: constant blinding keeps the legacy sequence) and
 * direct callers must behave exactly as before.
 *
 *  - keys past the end and 0xffffffff: update and delete E2BIG, lookup
 *    ENOENT;
 *  - absurd max_entries: 0 (EINVAL), 2^30 + 1 with the Spectre padding
 *    (CAP_BPF without CAP_PERFMON/CAP_SYS_ADMIN) and without, 2^31,
 *    2^32 - 1. With TCC_EXPECT_CACHE=1 (the harness sets it on kernels
 *    with the series) each must be E2BIG: the series refuses prog arrays
 *    above 2^30 entries where the JIT uses the cache. Without it (the
 *    base) any error is accepted but for 0;
 *  - a BPF_JMP | BPF_TAIL_CALL instruction (with imm 0, a static-site
 *    encoding, a poke index, -1) sent through bpf(2): the verifier refuses
 *    the opcode (EINVAL); the xlated dump of a loaded caller shows the
 *    helper call, never the JIT's imm encoding;
 *  - sleepable and non-sleepable programs in one prog array (uprobe-type
 *    programs: the only type here that can be both), both orders (EINVAL),
 *    and callers of the other kind (EINVAL);
 *  - a tail call reachable from a function with stack arguments (r11,
 *    BPF_REG_PARAMS), in the caller and in the callee (EINVAL), with
 *    controls: the same programs without the tail call, and with 5
 *    arguments, load.
 * Prints one line per check (with the errno and the verifier's message)
 * and "tailcall_badinput: N passed, M failed".
 */
#include <linux/capability.h>

#include "bpf_raw.h"
#include "tcc_check.h"

/* r11: stack arguments (kernel-internal name, include/linux/filter.h) */
/* the kernel's internal tail-call opcode (include/linux/filter.h) */
#ifndef BPF_TAIL_CALL
#define BPF_TAIL_CALL 0xf0
#endif
#ifndef BPF_REG_PARAMS
#define BPF_REG_PARAMS 11
#endif

static int skipped;
static char log_buf[65536];

/* The verifier's message: the last log line that is not a statistics line. */
static const char *last_log_line(void)
{
	static char line[256];
	const char *b = log_buf, *best = "", *e;
	size_t bl = 0;

	while (*b) {
		e = strchr(b, '\n');
		if (!e)
			e = b + strlen(b);
		if (e > b && strncmp(b, "processed ", 10) && strncmp(b, "verification time", 17) &&
		    strncmp(b, "stack depth", 11)) {
			best = b;
			bl = e - b;
		}
		b = *e ? e + 1 : e;
	}
	snprintf(line, sizeof(line), "%.*s", (int)bl, best);
	return line;
}

static const char *err_name(int e)
{
	switch (e) {
	case 0: return "success";
	case EINVAL: return "EINVAL";
	case E2BIG: return "E2BIG";
	case ENOMEM: return "ENOMEM";
	case ENOENT: return "ENOENT";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	default: return strerror(e);
	}
}

/* The reference array: slots 0 and 2 filled, with its callers. */
static struct {
	int map, st, lg, di, t[3];
	unsigned int id[3];
} ref;
#define REF_N 4

static int ref_value(unsigned int k)
{
	unsigned int id;

	if (map_lookup(ref.map, k, &id))
		return errno == ENOENT ? FALLTHROUGH : -1;
	for (int i = 0; i < 3; i++)
		if (ref.id[i] == id)
			return 100 + i;
	return -2;
}

/* Nothing corrupted: the reference slots and every caller are as set up. */
static void intact(const char *after)
{
	static const int want[REF_N] = { 100, FALLTHROUGH, 102, FALLTHROUGH };
	int ok = 1;

	for (unsigned int k = 0; k <= REF_N; k++) {
		long w = k < REF_N ? want[k] : FALLTHROUGH;

		if (k < REF_N && ref_value(k) != w)
			ok = 0;
		if (run(ref.st, k, 0) != w || run(ref.lg, k, 0) != w)
			ok = 0;
	}
	if (run(ref.st, 0xffffffffu, 0) != FALLTHROUGH || run(ref.di, 0, 0) != 102)
		ok = 0;
	check(ok, "after %s: reference array and its static/legacy/direct callers unchanged", after);
}

static void keys(void)
{
	static const unsigned int bad[] = { REF_N, REF_N + 1, 0x7fffffff, 0xffffffffu };
	unsigned int id;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int u = map_update(ref.map, bad[i], ref.t[1]), ue = errno;
		int d = map_delete(ref.map, bad[i]), de = errno;
		int l = map_lookup(ref.map, bad[i], &id), le = errno;

		check(u && ue == E2BIG && d && de == E2BIG && l && le == ENOENT,
		      "key %u (max_entries %u): update %s, delete %s, lookup %s (want E2BIG, E2BIG, ENOENT)",
		      bad[i], REF_N, u ? err_name(ue) : "ACCEPTED", d ? err_name(de) : "ACCEPTED",
		      l ? err_name(le) : "ACCEPTED");
	}
	intact("keys past the end");
}

static int capset_effective(int drop)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -1;
	if (drop) {
		d[0].effective &= ~(1u << CAP_SYS_ADMIN);
		d[1].effective &= ~(1u << (CAP_PERFMON - 32));
	} else {
		d[0].effective = d[0].permitted;
		d[1].effective = d[1].permitted;
	}
	return syscall(SYS_capset, &h, d);
}

static void max_entries(int series)
{
	static const struct {
		unsigned int n;
		int padded;		/* Spectre v1 rounding (no CAP_PERFMON) */
		int series_errno;	/* with the series: above 2^30 entries */
		int base_errno;		/* without it; 0: any error */
	} c[] = {
		{ 0, 0, EINVAL, EINVAL },
		{ (1u << 30) + 1, 1, E2BIG, 0 },	/* pads to 2^31: 2^32 pointers */
		{ (1u << 30) + 1, 0, E2BIG, 0 },	/* 2^31 + 2 pointers */
		{ 1u << 31, 0, E2BIG, 0 },
		{ 1u << 31, 1, E2BIG, 0 },
		{ 0xffffffffu, 0, E2BIG, 0 },
		{ 0xffffffffu, 1, E2BIG, 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		int fd, e, want;

		if (c[i].padded && capset_effective(1)) {
			check(0, "drop CAP_PERFMON/CAP_SYS_ADMIN: %s", strerror(errno));
			continue;
		}
		fd = prog_array_create(c[i].n);
		e = errno;
		if (c[i].padded && capset_effective(0)) {
			check(0, "restore capabilities: %s", strerror(errno));
			exit(1);
		}
		if (fd >= 0)
			close(fd);
		want = series ? c[i].series_errno : c[i].base_errno;
		if (want)
			check(fd < 0 && e == want, "max_entries %u (%s): %s (want %s%s)", c[i].n,
			      c[i].padded ? "CAP_BPF only, Spectre padding" : "root, no padding",
			      fd < 0 ? err_name(e) : "ACCEPTED", err_name(want),
			      series ? ": the series" : "");
		else
			check(fd < 0, "max_entries %u (%s): %s (any error: no TCC_EXPECT_CACHE=1)", c[i].n,
			      c[i].padded ? "CAP_BPF only, Spectre padding" : "root, no padding",
			      fd < 0 ? err_name(e) : "ACCEPTED");
	}
	intact("absurd max_entries");
}

/*
 * Load "r2 = the reference array; r3 = 0; @insn; r0 = FALLTHROUGH; exit"
 * through bpf(2): the verifier must refuse it.
 */
static void refused(struct bpf_insn insn, const char *what)
{
	struct bpf_insn insns[] = {
		LD_MAP(BPF_REG_2, ref.map),
		MOV64_IMM(BPF_REG_3, 0),
		insn,
		MOV64_IMM(BPF_REG_0, FALLTHROUGH),
		EXIT(),
	};
	int fd = prog_load_ex(BPF_PROG_TYPE_SOCKET_FILTER, 0, insns, ARRAY_SIZE(insns),
			      log_buf, sizeof(log_buf));
	int e = errno;

	if (fd >= 0)
		close(fd);
	check(fd < 0 && e == EINVAL, "%s: %s (want EINVAL): \"%s\"", what,
	      fd < 0 ? err_name(e) : "ACCEPTED", last_log_line());
}

static void forged_imm(void)
{
	static const int imms[] = { 0, (int)0x80000000u, 1, -1, 0x7fff };
	char what[96];

	for (size_t i = 0; i < ARRAY_SIZE(imms); i++) {
		snprintf(what, sizeof(what), "BPF_JMP|BPF_TAIL_CALL (0x%02x) with imm 0x%08x via bpf(2)",
			 BPF_JMP | BPF_TAIL_CALL, (unsigned int)imms[i]);
		refused(INSN(BPF_JMP | BPF_TAIL_CALL, 0, 0, 0, imms[i]), what);
	}
	/* a helper call to bpf_tail_call with reserved fields set */
	refused(INSN(BPF_JMP | BPF_CALL, 0, 0, 1, BPF_FUNC_tail_call),
		"call bpf_tail_call with off=1 (reserved field)");
	{
		/* user space never sees the encoding: xlated insns of the static caller */
		struct bpf_insn x[64];
		struct bpf_prog_info info = { 0 };
		union bpf_attr a = { 0 };
		int calls = 0, raw = 0;

		info.xlated_prog_len = sizeof(x);
		info.xlated_prog_insns = (uintptr_t)x;
		a.info.bpf_fd = ref.st;
		a.info.info_len = sizeof(info);
		a.info.info = (uintptr_t)&info;
		if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a)) {
			check(0, "xlated dump of the static caller: %s", strerror(errno));
		} else {
			for (size_t i = 0; i < info.xlated_prog_len / sizeof(x[0]) && i < 64; i++) {
				calls += x[i].code == (BPF_JMP | BPF_CALL) && x[i].imm == BPF_FUNC_tail_call;
				raw += x[i].code == (BPF_JMP | BPF_TAIL_CALL);
			}
			/* one call, or one per slot where the verifier made a
			 * compare tree of the site (max_entries <= 8, thunks) */
			check((calls == 1 || (REF_N <= 8 && calls == REF_N)) && raw == 0,
			      "xlated dump of a static caller: %d call bpf_tail_call, %d BPF_TAIL_CALL with imm",
			      calls, raw);
		}
	}
	intact("forged BPF_TAIL_CALL");
}

static int uprobe_prog(int sleepable, int map)
{
	struct bpf_insn tail[] = {
		LD_MAP(BPF_REG_2, map),
		MOV64_IMM(BPF_REG_3, 0),
		CALL(BPF_FUNC_tail_call),
		MOV64_IMM(BPF_REG_0, 0),
		EXIT(),
	};
	struct bpf_insn leaf[] = { MOV64_IMM(BPF_REG_0, 0), EXIT() };

	if (map >= 0)
		return prog_load_ex(BPF_PROG_TYPE_KPROBE, sleepable ? BPF_F_SLEEPABLE : 0,
				    tail, ARRAY_SIZE(tail), log_buf, sizeof(log_buf));
	return prog_load_ex(BPF_PROG_TYPE_KPROBE, sleepable ? BPF_F_SLEEPABLE : 0,
			    leaf, ARRAY_SIZE(leaf), log_buf, sizeof(log_buf));
}

/*
 * Slot 0 of the empty uprobe array @map takes @owner (of kind @okind), which
 * then owns it: @other (of the other kind) must be refused in slot 1.
 */
static void owner_refuses_other(int map, int owner, const char *okind, int other,
				const char *xkind)
{
	int r, e;

	r = map_update(map, 0, owner);
	check(!r, "uprobe array: a %s program goes in (%s)", okind, r ? strerror(errno) : "ok");
	r = map_update(map, 1, other);
	e = errno;
	check(r && e == EINVAL, "uprobe array owned by a %s program: a %s one is refused (%s)",
	      okind, xkind, r ? err_name(e) : "ACCEPTED");
}

static void sleepable(void)
{
	int ns = uprobe_prog(0, -1), sl = uprobe_prog(1, -1), a, b, r, e;

	if (ns < 0 || sl < 0) {
		printf("skip: sleepable mixing: uprobe programs do not load (%s: \"%s\"): "
		       "the kernel lacks CONFIG_BPF_EVENTS/UPROBE_EVENTS\n",
		       strerror(errno), last_log_line());
		skipped++;
		if (ns >= 0)
			close(ns);
		if (sl >= 0)
			close(sl);
		return;
	}
	a = prog_array_create(2);
	b = prog_array_create(2);
	owner_refuses_other(a, ns, "non-sleepable", sl, "sleepable");
	owner_refuses_other(b, sl, "sleepable", ns, "non-sleepable");
	{
		int c = uprobe_prog(1, a);

		e = errno;
		check(c < 0 && e == EINVAL,
		      "a sleepable caller of an array owned by a non-sleepable program is refused (%s, want EINVAL: \"%s\")",
		      c < 0 ? err_name(e) : "ACCEPTED", last_log_line());
		if (c >= 0)
			close(c);
		c = uprobe_prog(0, b);
		e = errno;
		check(c < 0 && e == EINVAL,
		      "a non-sleepable caller of an array owned by a sleepable program is refused (%s, want EINVAL: \"%s\")",
		      c < 0 ? err_name(e) : "ACCEPTED", last_log_line());
		if (c >= 0)
			close(c);
		c = uprobe_prog(1, b);
		check(c >= 0, "control: a sleepable caller of the sleepable array loads (%s)",
		      c < 0 ? strerror(errno) : "ok");
		if (c >= 0)
			close(c);
	}
	{
		/* and a socket filter (other type) in the uprobe array */
		r = map_update(a, 1, ref.t[0]);
		e = errno;
		check(r && e == EINVAL, "a socket filter in a uprobe array is refused (%s)",
		      r ? err_name(e) : "ACCEPTED");
	}
	close(a);
	close(b);
	close(ns);
	close(sl);
	intact("sleepable mixing");
}

/*
 * BTF: [1] int, [2] void *, [3] int (void *ctx), [4] main, [5] int (6 ints),
 * [6] sub6, [7] int (5 ints), [8] sub5.
 */
static int stack_arg_btf(void)
{
	static const char strs[] = "\0int\0ctx\0main\0sub6\0sub5\0a\0b\0c\0d\0e\0f";
	enum { S_INT = 1, S_CTX = 5, S_MAIN = 9, S_SUB6 = 14, S_SUB5 = 19, S_A = 24 };
	struct {
		struct btf_header hdr;
		__u32 types[4 + 3 + 5 + 3 + (3 + 12) + 3 + (3 + 10) + 3];
		char strs[sizeof(strs)];
	} __attribute__((packed)) b = { 0 };
	union bpf_attr a = { 0 };
	__u32 types[sizeof(b.types) / 4], *p = types;

	b.hdr = (struct btf_header){ .magic = BTF_MAGIC, .version = BTF_VERSION,
				     .hdr_len = sizeof(struct btf_header),
				     .type_off = 0, .type_len = sizeof(b.types),
				     .str_off = sizeof(b.types), .str_len = sizeof(strs) };
	/* [1] int */
	*p++ = S_INT; *p++ = BTF_KIND_INT << 24; *p++ = 4; *p++ = (BTF_INT_SIGNED << 24) | 32;
	/* [2] void * */
	*p++ = 0; *p++ = BTF_KIND_PTR << 24; *p++ = 0;
	/* [3] int (void *ctx) */
	*p++ = 0; *p++ = (BTF_KIND_FUNC_PROTO << 24) | 1; *p++ = 1; *p++ = S_CTX; *p++ = 2;
	/* [4] static int main(void *ctx) */
	*p++ = S_MAIN; *p++ = BTF_KIND_FUNC << 24; *p++ = 3;
	/* [5] int (int a, ..., int f) */
	*p++ = 0; *p++ = (BTF_KIND_FUNC_PROTO << 24) | 6; *p++ = 1;
	for (int i = 0; i < 6; i++) {
		*p++ = S_A + 2 * i;
		*p++ = 1;
	}
	/* [6] static int sub6(...) */
	*p++ = S_SUB6; *p++ = BTF_KIND_FUNC << 24; *p++ = 5;
	/* [7] int (int a, ..., int e) */
	*p++ = 0; *p++ = (BTF_KIND_FUNC_PROTO << 24) | 5; *p++ = 1;
	for (int i = 0; i < 5; i++) {
		*p++ = S_A + 2 * i;
		*p++ = 1;
	}
	/* [8] static int sub5(...) */
	*p++ = S_SUB5; *p++ = BTF_KIND_FUNC << 24; *p++ = 7;
	memcpy(b.types, types, sizeof(types));
	memcpy(b.strs, strs, sizeof(strs));
	a.btf = (uintptr_t)&b;
	a.btf_size = sizeof(b);
	a.btf_log_buf = (uintptr_t)log_buf;
	a.btf_log_size = sizeof(log_buf);
	a.btf_log_level = 1;
	return sys_bpf(BPF_BTF_LOAD, &a);
}

/*
 * main calls sub(ctx, 2, 3, 4, 5[, 6]) (arg 6 through r11); sub returns its
 * last argument + 2. With @tail, a tail call through the reference array
 * (key 0: returns 100) in main, or in sub with @in_sub. Returns the fd.
 */
static int stack_arg_prog(int btf, int six, int tail, int in_sub)
{
	struct bpf_insn insns[40];
	struct bpf_func_info fi[2];
	union bpf_attr a = { 0 };
	int n = 0, call_at, sub_at;

	insns[n++] = MOV64_REG(BPF_REG_6, BPF_REG_1);
	for (int r = 2; r <= 5; r++)
		insns[n++] = MOV64_IMM(r, r);
	if (six)
		insns[n++] = ST_DW(BPF_REG_PARAMS, -8, 6);
	call_at = n++;
	if (tail && !in_sub) {
		insns[n++] = MOV64_REG(BPF_REG_7, BPF_REG_0);
		insns[n++] = MOV64_REG(BPF_REG_1, BPF_REG_6);
		insns[n++] = INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_2, BPF_PSEUDO_MAP_FD, 0, ref.map);
		insns[n++] = INSN(0, 0, 0, 0, 0);
		insns[n++] = MOV64_IMM(BPF_REG_3, 0);
		insns[n++] = CALL(BPF_FUNC_tail_call);
		insns[n++] = MOV64_REG(BPF_REG_0, BPF_REG_7);
	}
	insns[n++] = EXIT();
	sub_at = n;
	insns[call_at] = CALL_REL(sub_at - call_at - 1);
	/* sub(ctx, b, c, d, e[, f]) */
	if (six)
		insns[n++] = LDX_DW(BPF_REG_7, BPF_REG_PARAMS, 8);
	else
		insns[n++] = MOV64_REG(BPF_REG_7, BPF_REG_5);
	if (tail && in_sub) {
		insns[n++] = INSN(BPF_LD | BPF_DW | BPF_IMM, BPF_REG_2, BPF_PSEUDO_MAP_FD, 0, ref.map);
		insns[n++] = INSN(0, 0, 0, 0, 0);
		insns[n++] = MOV64_IMM(BPF_REG_3, 0);
		insns[n++] = CALL(BPF_FUNC_tail_call);
	}
	insns[n++] = MOV64_REG(BPF_REG_0, BPF_REG_7);
	insns[n++] = ADD64_IMM(BPF_REG_0, 2);
	insns[n++] = EXIT();
	fi[0] = (struct bpf_func_info){ 0, 4 };
	fi[1] = (struct bpf_func_info){ sub_at, six ? 6 : 8 };
	a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
	a.insns = (uintptr_t)insns;
	a.insn_cnt = n;
	a.license = (uintptr_t)"GPL";
	a.log_buf = (uintptr_t)log_buf;
	a.log_size = sizeof(log_buf);
	a.log_level = 1;
	a.prog_btf_fd = btf;
	a.func_info = (uintptr_t)fi;
	a.func_info_cnt = 2;
	a.func_info_rec_size = sizeof(fi[0]);
	log_buf[0] = 0;
	return sys_bpf(BPF_PROG_LOAD, &a);
}

/* Load; check it loads and returns @want (control) or is refused (@want < 0). */
static void stack_case(int btf, int six, int tail, int in_sub, long want, const char *what)
{
	int fd = stack_arg_prog(btf, six, tail, in_sub), e = errno;
	long r = fd >= 0 ? run(fd, 0, 0) : 0;

	if (want >= 0)
		check(fd >= 0 && r == want, "control: %s: loads and returns %ld (%s%s%s, got %ld)",
		      what, want, fd < 0 ? err_name(e) : "ok", fd < 0 ? ": " : "",
		      fd < 0 ? last_log_line() : "", r);
	else
		check(fd < 0 && e == EINVAL &&
		      strstr(log_buf, "tail_calls are not allowed in programs with stack args"),
		      "%s: refused (%s, want EINVAL: \"%s\")", what, fd < 0 ? err_name(e) : "ACCEPTED",
		      last_log_line());
	if (fd >= 0)
		close(fd);
}

static void stack_args(void)
{
	int btf = stack_arg_btf(), fd;

	if (btf < 0) {
		check(0, "stack args: BTF load: %s: %s", strerror(errno), log_buf);
		return;
	}
	fd = stack_arg_prog(btf, 1, 0, 0);
	if (fd < 0 && (strstr(log_buf, "does not support") || strstr(log_buf, "supports at most") ||
			 strstr(log_buf, "R11 is invalid"))) {
		printf("skip: stack arguments: %s\n", last_log_line());
		skipped++;
		close(btf);
		return;
	}
	if (fd >= 0)
		close(fd);
	stack_case(btf, 1, 0, 0, 8, "sub(ctx, 2, 3, 4, 5, 6 through r11), no tail call");
	stack_case(btf, 0, 1, 0, 100, "sub(ctx, 2, 3, 4, 5) and a tail call in main");
	stack_case(btf, 0, 1, 1, 100, "sub(ctx, 2, 3, 4, 5) with a tail call in sub");
	stack_case(btf, 1, 1, 0, -1, "a tail call in main, which passes a stack argument");
	stack_case(btf, 1, 1, 1, -1, "a tail call in sub, which takes a stack argument");
	close(btf);
	intact("stack arguments");
}

int main(void)
{
	int series;

	setvbuf(stdout, NULL, _IOLBF, 0);
	series = expect_cache();
	if (!series)
		printf("note: no TCC_EXPECT_CACHE=1: kernel without the series, any error accepted for absurd max_entries but 0\n");
	ref.map = prog_array_create(REF_N);
	for (int i = 0; i < 3; i++) {
		ref.t[i] = target(100 + i);
		ref.id[i] = prog_id(ref.t[i]);
	}
	ref.st = caller_static(ref.map);
	ref.di = caller_direct(ref.map, 2);
	ref.lg = caller_hardened(ref.map);
	if (ref.lg == -2) {
		check(0, "setup: the legacy caller: bpf_jit_harden=2 (%s): %s", JIT_HARDEN_PATH,
		      strerror(errno));
		return 1;
	}
	if (ref.map < 0 || ref.t[2] < 0 || ref.st < 0 || ref.di < 0 || ref.lg < 0) {
		check(0, "setup: %s", strerror(errno));
		return 1;
	}
	map_update(ref.map, 0, ref.t[0]);
	map_update(ref.map, 2, ref.t[2]);
	intact("setup");

	keys();
	max_entries(series);
	forged_imm();
	sleepable();
	stack_args();
	printf("tailcall_badinput: %d passed, %d failed (%d skipped)\n", passed, failed, skipped);
	return failed ? 1 : 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Calibration of the host harness against the kernel's own measurement
 * (scripts/bench-calibrate.sh).
 *
 * One run of this tool is one pair of measurements of the same programs:
 *
 *  1. it starts `bench ... tail-call ...` (selftests/bpf, the command after
 *     "--"), pinned to CPU -c, and while the bench runs takes, with
 *     pidfd_getfd(2), the bench's own file descriptors of its BPF programs
 *     and maps: the programs the bench times, not copies loaded again
 *     (they stay loaded after the bench exits; a prog array keeps its slots
 *     because the file, and so its user reference, lives on);
 *  2. after the bench has exited it reads, from the running kernel: each
 *     program's JITed image (bpf_prog_info jited_prog_insns, the live text
 *     at jited_ksyms[0], pokes included), its translated instructions (to
 *     account for every 64-bit immediate), the prog arrays' slots, the
 *     struct offsets it needs from /sys/kernel/btf/vmlinux, and with a
 *     socket filter of its own calling bpf_probe_read_kernel(): the bytes
 *     of the kernel text the images jump to (retpoline and return thunks,
 *     as alternatives and return patching left them at boot), the live
 *     image bytes, and fields of the live struct bpf_array / bpf_prog /
 *     bpf_map objects, which check the BTF offsets on the real objects;
 *  3. it decodes every instruction of every image and thunk (its own
 *     decoder, instruction lengths cross-checked with LLVM's disassembler)
 *     and accounts for every reference out of an image: movabs of a map or
 *     map value address (matched, in order, with the ld_imm64 of the
 *     translated program), rel32 jumps to another image at its bpf_func +
 *     X86_TAIL_CALL_OFFSET (poked direct tail calls), rel32 jumps/calls to
 *     the kernel's thunks; anything else (RIP-relative or segment-relative
 *     operands, indirect calls, calls to other kernel text, an unknown
 *     opcode) is an error;
 *  4. it lays out in user memory what the images touch, at the BTF offsets
 *     and at the kernel objects' page offsets: each prog array (struct
 *     bpf_array: map.max_entries, ptrs[]), one struct bpf_prog per program
 *     (bpf_func), the state array's value (page aligned like an mmapable
 *     array's, the bench's keys copied), a socket buffer whose cb the
 *     programs use; it copies every image and the thunks into 2 MB blocks
 *     at their offsets in the kernel's 2 MB windows, relocates, and fails if
 *     the bytes to execute differ from the kernel's anywhere but in the
 *     relocated fields;
 *  5. it times the chains like the bench does, with the bench's parameters
 *     (read off the bench's own output): per round (the sites interleaved,
 *     the first one rotated per round) and per chain length, REPEAT
 *     invocations, ns per invocation rounded down like the kernel's
 *     test_run duration; the invocation enters the entry image as
 *     bpf_prog_run() does, a call through the copy of
 *     __x86_indirect_thunk_rax with rdi = the socket buffer and rsi = an
 *     insn pointer; the return value and the state counters are checked
 *     after each measurement like the bench does. CLOCK_MONOTONIC is read
 *     around sub-batches of SUB_BATCH (1000) invocations; a sub-batch
 *     during which this thread was switched out (an involuntary context
 *     switch: another task ran on the CPU) is taken again, up to SUB_TRIES
 *     (10) times, as the kernel's test_run leaves out the time it gives
 *     away at need_resched. Cost per tail call = the least-squares slope of
 *     the per-length medians over the rounds, as the bench computes it.
 *     These parameters are fixed here and nothing is fitted to the
 *     kernel's figures.
 *
 * The bench must be pinned with --prod-affinity CPU (its -a alone pins the
 * producer to CPU 0): the tool checks that every bench thread may only run
 * on -c CPU, where the harness runs too.
 *
 * Output on stdout, one fact per line (scripts/bench-calibrate-report.py
 * reads them): "bench ..." (the bench's RESULT lines), "harness ..." (the
 * harness's slope, intercept and per-length medians), "form ..." (the
 * tail-call sequence and indirect-jump form of each site), "offsets ...".
 *
 *   calibrate -c CPU [-w CPU] [-o DIR] -b BENCH_OUT -- BENCH ARGS...
 *     -c CPU        the CPU the bench and the harness run on
 *     -w CPU        the CPU the watcher polls on while the bench starts
 *     -o DIR        write the images, disassembly and layout to DIR
 *     -b FILE       the bench's stdout
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <llvm-c/Disassembler.h>
#include <llvm-c/Target.h>

#include "../btf_raw.h"

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif

#define MAX_PROGS	64
#define MAX_MAPS	16
#define MAX_INSNS	8192
#define MAX_IMG		65536
#define MAX_RELS	8192
#define MAX_KTEXT	16
#define MAX_LENS	33
#define MAX_ROUNDS	101
#define LINKS		8
#define NSITES		4
#define WIN		(2UL << 20)
#define PAGE		4096UL
#define KCHUNK		256
#define TC_FELL		0xfff

/* struct tc_state of bench_tail_call.c */
#define ST_IDX		0
#define ST_LEN		4
#define ST_CALLS	8
#define ST_FELL		16
#define ST_KEYS		24
#define ST_NKEYS	4096
#define ST_SIZE		(ST_KEYS + 4 * ST_NKEYS)

static const char *const site_names[NSITES] = { "var", "poison", "const", "tree" };

static void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "calibrate: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static long sys_bpf(int cmd, union bpf_attr *a)
{
	return syscall(__NR_bpf, cmd, a, sizeof(*a));
}

/* ------------------------------------------------------------------ BTF */

/* Byte offset of @member in struct @sname (selftests/btf_raw.h), or die. */
static long btf_off(const struct btf_blob *b, const char *sname, const char *member)
{
	long off = btf_offsetof(b, sname, member);

	if (off < 0)
		die("BTF: no struct %s with a byte-aligned member %s", sname, member);
	return off;
}

static long btf_sizeof(const struct btf_blob *b, const char *sname)
{
	uint32_t id = btf_struct(b, sname);

	if (!id)
		die("BTF: no struct %s", sname);
	return b->types[id]->size;
}

static struct {
	long arr_map, arr_ptrs, arr_value, map_max, map_id, map_vsize, prog_func, prog_aux,
		aux_id, skb_cb, qcb_data, skb_size, prog_size;
} off;

static void read_offsets(void)
{
	struct btf_blob b = {};
	const char *why = "";

	if (btf_load(&b, &why))
		die("/sys/kernel/btf/vmlinux: %s", why);
	off.arr_map = btf_off(&b, "bpf_array", "map");
	off.arr_ptrs = btf_off(&b, "bpf_array", "ptrs");
	off.arr_value = btf_off(&b, "bpf_array", "value");
	off.map_max = btf_off(&b, "bpf_map", "max_entries");
	off.map_id = btf_off(&b, "bpf_map", "id");
	off.map_vsize = btf_off(&b, "bpf_map", "value_size");
	off.prog_func = btf_off(&b, "bpf_prog", "bpf_func");
	off.prog_aux = btf_off(&b, "bpf_prog", "aux");
	off.aux_id = btf_off(&b, "bpf_prog_aux", "id");
	off.skb_cb = btf_off(&b, "sk_buff", "cb");
	off.qcb_data = btf_off(&b, "qdisc_skb_cb", "data");
	off.skb_size = btf_sizeof(&b, "sk_buff");
	off.prog_size = btf_sizeof(&b, "bpf_prog");
	free(b.types);
	free(b.data);
}

/* ------------------------------------------------------------- kallsyms */

struct ksym { uint64_t addr; char name[64]; };
static struct ksym *ksyms;
static size_t nksyms;

static int cmp_ksym(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;

	return (x->addr > y->addr) - (x->addr < y->addr);
}

static void read_kallsyms(void)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[512], name[256], type;
	unsigned long long a;
	size_t cap = 1 << 18;

	if (!f)
		die("cannot read /proc/kallsyms");
	ksyms = malloc(cap * sizeof(*ksyms));
	while (ksyms && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %c %255s", &a, &type, name) != 3 || !a)
			continue;
		if (nksyms == cap)
			ksyms = realloc(ksyms, (cap *= 2) * sizeof(*ksyms));
		if (!ksyms)
			die("out of memory");
		ksyms[nksyms].addr = a;
		name[sizeof(ksyms[nksyms].name) - 1] = 0;
		memcpy(ksyms[nksyms].name, name, sizeof(ksyms[nksyms].name));
		nksyms++;
	}
	fclose(f);
	if (nksyms < 1000)
		die("/proc/kallsyms has no addresses (kptr_restrict?)");
	qsort(ksyms, nksyms, sizeof(*ksyms), cmp_ksym);
}

static int ktext_ok_name(const char *n);

/*
 * The symbol starting exactly at @a and the start of the next one; of
 * aliases (__pi_ copies of the names), one the harness knows if any.
 */
static const struct ksym *ksym_at(uint64_t a, uint64_t *next)
{
	size_t lo = 0, hi = nksyms, pick;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (ksyms[mid].addr < a)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == nksyms || ksyms[lo].addr != a)
		return NULL;
	pick = lo;
	for (size_t i = lo, best = 0; i < nksyms && ksyms[i].addr == a; i++) {
		const char *n = ksyms[i].name;
		size_t l = strlen(n);
		size_t score = 1 + 4 * ktext_ok_name(n) + 2 * !!strncmp(n, "__pi_", 5) +
			       !(l > 6 && !strcmp(n + l - 6, "_array"));

		if (score > best) {
			best = score;
			pick = i;
		}
	}
	*next = a + 64;
	for (size_t i = lo + 1; i < nksyms; i++) {
		if (ksyms[i].addr > a) {
			*next = ksyms[i].addr;
			break;
		}
	}
	return &ksyms[pick];
}

static uint64_t ksym_addr(const char *name)
{
	for (size_t i = 0; i < nksyms; i++)
		if (!strcmp(ksyms[i].name, name))
			return ksyms[i].addr;
	return 0;
}

/* ----------------------------------------------- kernel memory, read back */

static int kread_map = -1, kread_prog = -1;

static void kread_init(void)
{
	static char log[16384];
	union bpf_attr a = {
		.map_type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 64 + KCHUNK,
		.max_entries = 1,
	};
	struct bpf_insn insns[8];

	memcpy(a.map_name, "tcc_kread", 10);
	kread_map = sys_bpf(BPF_MAP_CREATE, &a);
	if (kread_map < 0)
		die("creating the kernel-read map: %s", strerror(errno));
	memset(insns, 0, sizeof(insns));
	/* r6 = &value; r3 = value[0]; r1 = r6 + 64; r2 = KCHUNK;
	 * r0 = bpf_probe_read_kernel(r1, r2, r3); exit */
	insns[0] = (struct bpf_insn){ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = 6,
				      .src_reg = BPF_PSEUDO_MAP_VALUE, .imm = kread_map };
	insns[1] = (struct bpf_insn){ .imm = 0 };
	insns[2] = (struct bpf_insn){ .code = BPF_LDX | BPF_MEM | BPF_DW, .dst_reg = 3, .src_reg = 6 };
	insns[3] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 1, .src_reg = 6 };
	insns[4] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = 1, .imm = 64 };
	insns[5] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 2, .imm = KCHUNK };
	insns[6] = (struct bpf_insn){ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_probe_read_kernel };
	insns[7] = (struct bpf_insn){ .code = BPF_JMP | BPF_EXIT };
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
	a.insns = (uintptr_t)insns;
	a.insn_cnt = 8;
	a.license = (uintptr_t)"GPL";
	a.log_buf = (uintptr_t)log;
	a.log_size = sizeof(log);
	a.log_level = 1;
	memcpy(a.prog_name, "tcc_kread", 10);
	kread_prog = sys_bpf(BPF_PROG_LOAD, &a);
	if (kread_prog < 0)
		die("loading the kernel-read program (bpf_probe_read_kernel) failed: %s\n%s",
		    strerror(errno), log);
}

/* Copy @len bytes of kernel memory at @addr into @dst. */
static void kread(uint64_t addr, void *dst, size_t len)
{
	unsigned char val[64 + KCHUNK], pkt[64] = {};
	uint32_t key = 0;

	while (len) {
		size_t n = len < KCHUNK ? len : KCHUNK;
		union bpf_attr a = {};

		memset(val, 0, sizeof(val));
		memcpy(val, &addr, 8);
		a.map_fd = kread_map;
		a.key = (uintptr_t)&key;
		a.value = (uintptr_t)val;
		if (sys_bpf(BPF_MAP_UPDATE_ELEM, &a))
			die("kernel read: map update: %s", strerror(errno));
		memset(&a, 0, sizeof(a));
		a.test.prog_fd = kread_prog;
		a.test.data_in = (uintptr_t)pkt;
		a.test.data_size_in = sizeof(pkt);
		a.test.repeat = 1;
		if (sys_bpf(BPF_PROG_TEST_RUN, &a))
			die("kernel read: test run: %s", strerror(errno));
		if (a.test.retval)
			die("kernel read of %#llx failed: %d", (unsigned long long)addr,
			    (int)a.test.retval);
		memset(&a, 0, sizeof(a));
		a.map_fd = kread_map;
		a.key = (uintptr_t)&key;
		a.value = (uintptr_t)val;
		if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &a))
			die("kernel read: map lookup: %s", strerror(errno));
		memcpy(dst, val + 64, n);
		dst = (unsigned char *)dst + n;
		addr += n;
		len -= n;
	}
}

static uint64_t kread64(uint64_t addr)
{
	uint64_t v;

	kread(addr, &v, 8);
	return v;
}

static uint32_t kread32(uint64_t addr)
{
	uint32_t v;

	kread(addr, &v, 4);
	return v;
}

/* ------------------------------------------------------------- decoder */

enum { K_OTHER, K_JMP, K_JCC, K_CALL, K_MOVABS, K_RET, K_JMP_IND, K_INT3, K_UD2, K_LFENCE };

struct insn {
	int len, map, op, kind, reg;
	uint8_t rex, modrm;
	int has_modrm, p66, rel_len, imm_off, imm_len;
	int64_t imm;
};

#define F_M	1	/* ModRM */
#define F_I8	2
#define F_IZ	4	/* imm32, imm16 with 0x66 */
#define F_R8	8
#define F_R32	16
#define F_BAD	32
#define F_I64	64	/* B8+r: imm64 with REX.W */
#define F_GRP3	128	/* F6/F7: immediate only for /0 and /1 */

static int op1_flags(int op)
{
	if (op < 0x40) {
		int lo = op & 7;

		if (op == 0x0f)
			return 0;
		if (lo < 4)
			return F_M;
		if (lo == 4)
			return F_I8;
		if (lo == 5)
			return F_IZ;
		return F_BAD;
	}
	if (op >= 0x50 && op <= 0x5f)
		return 0;
	if (op >= 0x70 && op <= 0x7f)
		return F_R8;
	if (op >= 0x84 && op <= 0x8b)
		return F_M;
	if (op >= 0x90 && op <= 0x99)
		return 0;
	if (op >= 0xb0 && op <= 0xb7)
		return F_I8;
	if (op >= 0xb8 && op <= 0xbf)
		return F_I64;
	if (op >= 0xd0 && op <= 0xd3)
		return F_M;
	switch (op) {
	case 0x63: case 0x8d: case 0x8f: case 0xfe: case 0xff:
		return F_M;
	case 0x68: case 0xa9:
		return F_IZ;
	case 0x69: case 0x81: case 0xc7:
		return F_M | F_IZ;
	case 0x6a: case 0xa8:
		return F_I8;
	case 0x6b: case 0x80: case 0x83: case 0xc0: case 0xc1: case 0xc6:
		return F_M | F_I8;
	case 0xc3: case 0xc9: case 0xcc:
		return 0;
	case 0xe8: case 0xe9:
		return F_R32;
	case 0xeb:
		return F_R8;
	case 0xf6: case 0xf7:
		return F_M | F_GRP3;
	default:
		return F_BAD;
	}
}

static int op2_flags(int op)
{
	if (op >= 0x40 && op <= 0x4f)
		return F_M;
	if (op >= 0x80 && op <= 0x8f)
		return F_R32;
	if (op >= 0x90 && op <= 0x9f)
		return F_M;
	if (op >= 0xc8 && op <= 0xcf)
		return 0;
	switch (op) {
	case 0x0b:
		return 0;
	case 0x0d: case 0x18: case 0x1e: case 0x1f: case 0xa3: case 0xab: case 0xae: case 0xaf:
	case 0xb0: case 0xb1: case 0xb3: case 0xb6: case 0xb7: case 0xbb: case 0xbc: case 0xbd:
	case 0xbe: case 0xbf: case 0xc0: case 0xc1:
		return F_M;
	case 0xa4: case 0xac: case 0xba:
		return F_M | F_I8;
	default:
		return F_BAD;
	}
}

/* Decode one instruction; 0, or -1 with *why set. */
static int decode(const uint8_t *p, size_t avail, struct insn *in, const char **why)
{
	size_t i = 0;
	int flags, mod, rm;

	memset(in, 0, sizeof(*in));
	for (;; i++) {
		if (i >= avail)
			goto trunc;
		if (p[i] == 0x66)
			in->p66 = 1;
		else if (p[i] == 0xf0 || p[i] == 0xf2 || p[i] == 0xf3 || p[i] == 0x2e || p[i] == 0x3e)
			;
		else
			break;
	}
	if (p[i] == 0x64 || p[i] == 0x65 || p[i] == 0x26 || p[i] == 0x36) {
		*why = "segment override (per-CPU or other kernel data)";
		return -1;
	}
	if (p[i] == 0x67) {
		*why = "address-size prefix";
		return -1;
	}
	if ((p[i] & 0xf0) == 0x40) {
		in->rex = p[i++];
		if (i >= avail)
			goto trunc;
	}
	if (p[i] == 0xc4 || p[i] == 0xc5 || p[i] == 0x62) {
		*why = "VEX/EVEX instruction";
		return -1;
	}
	if (p[i] == 0x0f) {
		if (++i >= avail)
			goto trunc;
		if (p[i] == 0x38) {
			if (++i >= avail)
				goto trunc;
			in->map = 2;
			in->op = p[i++];
			flags = (in->op == 0xf0 || in->op == 0xf1) ? F_M : F_BAD;
		} else {
			in->map = 1;
			in->op = p[i++];
			flags = op2_flags(in->op);
		}
	} else {
		in->map = 0;
		in->op = p[i++];
		flags = op1_flags(in->op);
	}
	if (flags & F_BAD) {
		*why = "opcode the decoder does not know";
		return -1;
	}
	if (flags & F_M) {
		if (i >= avail)
			goto trunc;
		in->has_modrm = 1;
		in->modrm = p[i++];
		mod = in->modrm >> 6;
		rm = in->modrm & 7;
		if (mod != 3 && rm == 4) {
			if (i >= avail)
				goto trunc;
			if (mod == 0 && (p[i] & 7) == 5)
				i += 4;
			i++;
		}
		if (mod == 0 && rm == 5) {
			*why = "RIP-relative operand";
			return -1;
		}
		if (mod == 1)
			i += 1;
		else if (mod == 2)
			i += 4;
		if ((flags & F_GRP3) && ((in->modrm >> 3) & 7) < 2)
			flags |= in->op == 0xf6 ? F_I8 : F_IZ;
	}
	in->imm_off = i;
	if (flags & (F_I8 | F_R8))
		in->imm_len = 1;
	else if (flags & F_IZ)
		in->imm_len = in->p66 ? 2 : 4;
	else if (flags & F_R32)
		in->imm_len = 4;
	else if (flags & F_I64)
		in->imm_len = (in->rex & 8) ? 8 : in->p66 ? 2 : 4;
	if (flags & F_R8)
		in->rel_len = 1;
	if (flags & F_R32)
		in->rel_len = 4;
	i += in->imm_len;
	if (i > avail)
		goto trunc;
	if (in->imm_len == 1)
		in->imm = (int8_t)p[in->imm_off];
	else if (in->imm_len == 2)
		in->imm = (int16_t)(p[in->imm_off] | p[in->imm_off + 1] << 8);
	else if (in->imm_len == 4) {
		int32_t v;

		memcpy(&v, p + in->imm_off, 4);
		in->imm = v;
	} else if (in->imm_len == 8) {
		memcpy(&in->imm, p + in->imm_off, 8);
	}
	in->len = i;
	in->kind = K_OTHER;
	if (in->map == 0) {
		if (in->op == 0xe8)
			in->kind = K_CALL;
		else if (in->op == 0xe9 || in->op == 0xeb)
			in->kind = K_JMP;
		else if (in->op >= 0x70 && in->op <= 0x7f)
			in->kind = K_JCC;
		else if (in->op >= 0xb8 && in->op <= 0xbf && in->imm_len == 8) {
			in->kind = K_MOVABS;
			in->reg = (in->op & 7) | ((in->rex & 1) << 3);
		} else if (in->op == 0xc3)
			in->kind = K_RET;
		else if (in->op == 0xcc)
			in->kind = K_INT3;
		else if (in->op == 0xff) {
			int r = (in->modrm >> 3) & 7;

			if (r == 4 && (in->modrm >> 6) == 3) {
				in->kind = K_JMP_IND;
				in->reg = (in->modrm & 7) | ((in->rex & 1) << 3);
			} else if (r == 2 || r == 3 || r == 4 || r == 5) {
				*why = "indirect call or jump through memory";
				return -1;
			}
		}
	} else if (in->map == 1) {
		if (in->op >= 0x80 && in->op <= 0x8f)
			in->kind = K_JCC;
		else if (in->op == 0x0b)
			in->kind = K_UD2;
		else if (in->op == 0xae && in->modrm == 0xe8)
			in->kind = K_LFENCE;
	}
	return 0;
trunc:
	*why = "truncated instruction";
	return -1;
}

static LLVMDisasmContextRef llvm_dc;

static void llvm_init(void)
{
	LLVMInitializeX86TargetInfo();
	LLVMInitializeX86TargetMC();
	LLVMInitializeX86Disassembler();
	llvm_dc = LLVMCreateDisasm("x86_64-linux-gnu", NULL, 0, NULL, NULL);
	if (!llvm_dc)
		die("LLVM's x86-64 disassembler is not available");
}

/* Decode at @p and check the length against LLVM's; LLVM's text in @txt. */
static void decode_checked(const uint8_t *p, size_t avail, uint64_t pc, struct insn *in,
			   char *txt, size_t txtlen, const char *where)
{
	const char *why = NULL;
	size_t n = LLVMDisasmInstruction(llvm_dc, (uint8_t *)p, avail, pc, txt, txtlen);

	if (decode(p, avail, in, &why))
		die("%s+%#llx: cannot account for the instruction (%s): %s", where,
		    (unsigned long long)pc, why, n ? txt : "(LLVM cannot decode it either)");
	if (n != (size_t)in->len)
		die("%s+%#llx: instruction length %d, LLVM says %zu (%s)", where,
		    (unsigned long long)pc, in->len, n, txt);
	for (char *c = txt; *c; c++)
		if (*c == '\t')
			*c = ' ';
}

/* ------------------------------------------------------ bench programs */

struct prog {
	int fd;
	uint32_t id, jited_len, xlated_len, nr_maps;
	char name[BPF_OBJ_NAME_LEN];
	uint64_t ksym, kstruct;		/* bpf_func; the struct bpf_prog */
	uint8_t *img;
	struct bpf_insn *xl;
	uint32_t map_ids[MAX_MAPS];
	int site, link;			/* link: -1 for the entry */
	uint8_t *code;			/* the user copy */
	uint8_t *ustruct;		/* the fake struct bpf_prog */
	long seq[4];			/* legacy sequence: max_entries, ptrs, bpf_func, add */
};

struct map {
	int fd;
	uint32_t id, type, max_entries, value_size, flags;
	char name[BPF_OBJ_NAME_LEN];
	uint64_t kaddr;			/* struct bpf_map (== struct bpf_array) */
	uint8_t *u, *ubase;		/* fake bpf_array (or state value) */
	uint32_t *slots;		/* prog arrays: prog id per slot, 0 if empty */
};

static struct prog progs[MAX_PROGS];
static int nprogs;
static struct map maps[MAX_MAPS];
static int nmaps;
static int nsites;
static int state_map = -1;
static uint8_t *state_mm;		/* the bench's state, mmapped */

enum { R_MAPADDR, R_MAPVAL, R_PROG, R_KTEXT };
struct rel {
	int prog, off, kind, len;
	uint64_t ktarget;		/* kernel address the field holds or jumps to */
	int map, tprog;
};
static struct rel rels[MAX_RELS];
static int nrels;

static struct map *map_by_id(uint32_t id)
{
	for (int i = 0; i < nmaps; i++)
		if (maps[i].id == id)
			return &maps[i];
	return NULL;
}

static struct prog *prog_by_id(uint32_t id)
{
	for (int i = 0; i < nprogs; i++)
		if (progs[i].id == id)
			return &progs[i];
	return NULL;
}

/* Read @p's info; with @only_bench, return -1 for a program not named tc_entry/tc_link. */
static int prog_info(struct prog *p, int only_bench)
{
	struct bpf_prog_info info = {};
	union bpf_attr a = {};
	uint64_t ksyms[4];

	a.info.bpf_fd = p->fd;
	a.info.info_len = sizeof(info);
	a.info.info = (uintptr_t)&info;
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a))
		die("prog info: %s", strerror(errno));
	p->id = info.id;
	memcpy(p->name, info.name, sizeof(p->name));
	p->jited_len = info.jited_prog_len;
	p->xlated_len = info.xlated_prog_len;
	p->nr_maps = info.nr_map_ids;
	if (only_bench && strcmp(p->name, "tc_entry") && strcmp(p->name, "tc_link"))
		return -1;
	if (!p->jited_len || p->jited_len > MAX_IMG || p->xlated_len > MAX_INSNS * 8 ||
	    p->nr_maps > MAX_MAPS || info.nr_jited_ksyms != 1)
		die("program %u (%s): %u JITed bytes, %u functions, %u maps: not a bench program",
		    p->id, p->name, p->jited_len, info.nr_jited_ksyms, p->nr_maps);
	p->img = malloc(p->jited_len);
	p->xl = malloc(p->xlated_len);
	memset(&info, 0, sizeof(info));
	info.jited_prog_len = p->jited_len;
	info.jited_prog_insns = (uintptr_t)p->img;
	info.xlated_prog_len = p->xlated_len;
	info.xlated_prog_insns = (uintptr_t)p->xl;
	info.nr_jited_ksyms = 1;
	info.jited_ksyms = (uintptr_t)ksyms;
	info.nr_map_ids = p->nr_maps;
	info.map_ids = (uintptr_t)p->map_ids;
	memset(&a, 0, sizeof(a));
	a.info.bpf_fd = p->fd;
	a.info.info_len = sizeof(info);
	a.info.info = (uintptr_t)&info;
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a))
		die("prog info: %s", strerror(errno));
	if (!ksyms[0] || info.jited_prog_len != p->jited_len)
		die("program %u: no JITed image or kernel address (kptr_restrict, bpf_jit_harden?)",
		    p->id);
	p->ksym = ksyms[0];
	return 0;
}

static void map_info(struct map *m)
{
	struct bpf_map_info info = {};
	union bpf_attr a = {};

	a.info.bpf_fd = m->fd;
	a.info.info_len = sizeof(info);
	a.info.info = (uintptr_t)&info;
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a))
		die("map info: %s", strerror(errno));
	m->id = info.id;
	m->type = info.type;
	m->max_entries = info.max_entries;
	m->value_size = info.value_size;
	m->flags = info.map_flags;
	memcpy(m->name, info.name, sizeof(m->name));
}

static void read_slots(struct map *m)
{
	m->slots = calloc(m->max_entries, 4);
	for (uint32_t k = 0; k < m->max_entries; k++) {
		union bpf_attr a = {};
		uint32_t v = 0;

		a.map_fd = m->fd;
		a.key = (uintptr_t)&k;
		a.value = (uintptr_t)&v;
		if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &a)) {
			if (errno != ENOENT)
				die("prog array %u slot %u: %s", m->id, k, strerror(errno));
			v = 0;
		}
		m->slots[k] = v;
	}
}

/* ----------------------------------------------- start the bench, grab */

static int pidfd_getfd(int pidfd, int fd)
{
	return syscall(__NR_pidfd_getfd, pidfd, fd, 0);
}

static void pin(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	if (sched_setaffinity(0, sizeof(s), &s))
		die("cannot pin to CPU %d: %s", cpu, strerror(errno));
}

struct seen { uint32_t id; int is_map; };

/* The prog_id or map_id in /proc/PID/fdinfo/FD; 0 if none. */
static uint32_t fdinfo_id(pid_t pid, int fd, int is_map)
{
	char path[64], line[128];
	const char *key = is_map ? "map_id:" : "prog_id:";
	uint32_t id = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			id = strtoul(line + strlen(key), NULL, 10);
	fclose(f);
	return id;
}

/*
 * Scan the bench's fd table; take every BPF program and map not taken yet
 * (known by id: a closed fd's number is reused). Returns the number of new ones.
 */
static int grab(pid_t pid, int pidfd, struct seen *seen, int *nseen)
{
	char path[64], link[64];
	struct dirent *d;
	DIR *dir;
	int added = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		int fd = atoi(d->d_name), is_map, known = 0, mine;
		uint32_t id;
		ssize_t n;

		if (!isdigit((unsigned char)d->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = 0;
		if (!strcmp(link, "anon_inode:bpf-prog"))
			is_map = 0;
		else if (!strcmp(link, "anon_inode:bpf-map"))
			is_map = 1;
		else
			continue;
		id = fdinfo_id(pid, fd, is_map);
		if (!id)
			continue;
		for (int i = 0; i < *nseen; i++)
			if (seen[i].id == id && seen[i].is_map == is_map)
				known = 1;
		if (known)
			continue;
		mine = pidfd_getfd(pidfd, fd);
		if (mine < 0 && (errno == EPERM || errno == ENOSYS))
			die("pidfd_getfd on the bench: %s (needs kernel 5.6+ and ptrace access: root, Yama ptrace_scope < 3)",
			    strerror(errno));
		if (mine < 0)
			continue;	/* closed meanwhile */
		if (*nseen == 4 * MAX_PROGS)
			die("too many BPF fds in the bench");
		if (is_map) {
			struct map m = { .fd = mine };

			map_info(&m);
			if (m.id != id) {	/* the fd was reused meanwhile: next scan */
				close(mine);
				continue;
			}
			if (nmaps == MAX_MAPS)
				die("too many maps in the bench");
			maps[nmaps++] = m;
		} else {
			struct prog p = { .fd = mine };

			int other = prog_info(&p, 1);

			if (p.id != id) {
				close(mine);
				free(p.img);
				free(p.xl);
				continue;
			}
			if (other) {
				close(mine);
			} else {
				if (nprogs == MAX_PROGS)
					die("too many programs in the bench");
				progs[nprogs++] = p;
			}
		}
		seen[*nseen].id = id;
		seen[*nseen].is_map = is_map;
		(*nseen)++;
		added++;
	}
	closedir(dir);
	return added;
}

static pid_t bench_pid;

static void kill_bench(void)
{
	if (bench_pid > 0)
		kill(bench_pid, SIGKILL);
}

/*
 * Every thread of the bench may run on CPU @cpu only: the bench's -a alone
 * pins its producer to CPU 0 whatever the process's affinity was, so the
 * kernel's figures would come from another CPU than the harness's.
 * Checked 100 ms into the runs (the producer is pinned just after it starts).
 */
static void check_bench_affinity(pid_t pid, int cpu)
{
	char path[64], line[256], want[16];
	struct dirent *d;
	DIR *dir;

	usleep(100000);
	snprintf(want, sizeof(want), "%d\n", cpu);
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	if (!dir)
		return;		/* done already */
	while ((d = readdir(dir))) {
		FILE *f;

		if (!isdigit((unsigned char)d->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/status", pid, d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			if (strncmp(line, "Cpus_allowed_list:", 18))
				continue;
			if (strcmp(line + 18 + strspn(line + 18, " \t"), want)) {
				line[strcspn(line, "\n")] = 0;
				die("bench thread %s may run on CPUs %s, not only on CPU %d: give it --prod-affinity %d (not -a)",
				    d->d_name, line + 18 + strspn(line + 18, " \t"), cpu, cpu);
			}
		}
		fclose(f);
	}
	closedir(dir);
}

/* Start the bench; return once its programs are taken and it runs; wait for it. */
static void run_bench(char **argv, const char *out, int cpu, int wcpu)
{
	struct seen seen[4 * MAX_PROGS];
	int nseen = 0, pidfd, status, ready = 0;
	struct timespec t0, t;

	bench_pid = fork();
	if (bench_pid < 0)
		die("fork: %s", strerror(errno));
	if (!bench_pid) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd < 0 || dup2(fd, 1) < 0)
			_exit(126);
		pin(cpu);
		execvp(argv[0], argv);
		fprintf(stderr, "calibrate: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	atexit(kill_bench);
	pin(wcpu);
	pidfd = syscall(__NR_pidfd_open, bench_pid, 0);
	if (pidfd < 0)
		die("pidfd_open: %s", strerror(errno));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!ready) {
		if (waitpid(bench_pid, &status, WNOHANG) == bench_pid) {
			bench_pid = 0;
			die("the bench exited before its programs could be taken (status %#x): see %s",
			    status, out);
		}
		grab(bench_pid, pidfd, seen, &nseen);
		/* The producer sets tail_calls before its first run: setup is complete. */
		if (!state_mm) {
			for (int i = 0; i < nmaps; i++) {
				if (strcmp(maps[i].name, "tc_state") || maps[i].type != BPF_MAP_TYPE_ARRAY)
					continue;
				if (maps[i].value_size != ST_SIZE || !(maps[i].flags & BPF_F_MMAPABLE))
					die("map tc_state: value size %u, flags %#x: not the state this tool knows",
					    maps[i].value_size, maps[i].flags);
				state_mm = mmap(NULL, ST_SIZE, PROT_READ, MAP_SHARED, maps[i].fd, 0);
				if (state_mm == MAP_FAILED)
					die("mmap of tc_state: %s", strerror(errno));
				state_map = i;
			}
		}
		if (state_mm && *(volatile uint32_t *)(state_mm + ST_LEN)) {
			grab(bench_pid, pidfd, seen, &nseen);
			ready = 1;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (getenv("CAL_DEBUG"))
			fprintf(stderr, "watch: %d progs %d maps state %p\n", nprogs, nmaps, (void *)state_mm);
		if (t.tv_sec - t0.tv_sec > 60)
			die("the bench did not start its runs within 60 s");
		usleep(200);
	}
	check_bench_affinity(bench_pid, cpu);
	pin(cpu);
	if (waitpid(bench_pid, &status, 0) != bench_pid)
		die("waitpid: %s", strerror(errno));
	bench_pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		die("the bench failed (status %#x): see %s", status, out);
	close(pidfd);
}

/* ---------------------------------------------------- bench output */

static struct {
	char keys[16];
	uint32_t entries, min_len, max_len, step, rounds, repeat;
	double slope[NSITES], icpt[NSITES];
	int have[NSITES];
} bench;

static void read_bench_out(const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512], site[16], keys[16];
	int header = 0;

	if (!f)
		die("cannot read %s", path);
	while (fgets(line, sizeof(line), f)) {
		unsigned int e;
		double s, ic, r;

		if (sscanf(line, "tail-call: keys %15[a-z0-9], %u entries, %u..%u tail calls (step %u), %u rounds of %u",
			   bench.keys, &bench.entries, &bench.min_len, &bench.max_len, &bench.step,
			   &bench.rounds, &bench.repeat) == 7)
			header = 1;
		if (sscanf(line, "RESULT site=%15[a-z] keys=%15[a-z0-9] entries=%u ns_per_call=%lf ns_per_invocation=%lf ratio_const=%lf",
			   site, keys, &e, &s, &ic, &r) == 6) {
			for (int i = 0; i < NSITES; i++) {
				if (strcmp(site, site_names[i]))
					continue;
				bench.slope[i] = s;
				bench.icpt[i] = ic;
				bench.have[i] = 1;
			}
		}
	}
	fclose(f);
	if (!header)
		die("%s: no 'tail-call: keys ...' line: not the output of bench tail-call", path);
	if (bench.rounds > MAX_ROUNDS || bench.max_len > MAX_LENS || !bench.step ||
	    bench.min_len >= bench.max_len || !bench.repeat)
		die("%s: parameters out of range", path);
}

/* --------------------------------------------------- identify the sites */

static int cmp_prog_id(const void *a, const void *b)
{
	const struct prog *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

static void identify(void)
{
	/* Read again: the images were read while the bench set up, before its pokes. */
	for (int i = 0; i < nprogs; i++) {
		free(progs[i].img);
		free(progs[i].xl);
		prog_info(&progs[i], 0);
	}
	qsort(progs, nprogs, sizeof(progs[0]), cmp_prog_id);
	if (nprogs % (LINKS + 1) || nprogs / (LINKS + 1) > NSITES || nprogs < 3 * (LINKS + 1))
		die("%d tc_entry/tc_link programs: not 9 per site", nprogs);
	nsites = nprogs / (LINKS + 1);
	for (int i = 0; i < nprogs; i++) {
		struct prog *p = &progs[i];

		p->site = i / (LINKS + 1);
		p->link = i % (LINKS + 1) - 1;
		if (strcmp(p->name, p->link < 0 ? "tc_entry" : "tc_link"))
			die("program %u is %s: the load order is not entry + %d links per site",
			    p->id, p->name, LINKS);
	}
	for (int i = 0; i < nmaps; i++)
		if (maps[i].type == BPF_MAP_TYPE_PROG_ARRAY)
			read_slots(&maps[i]);
	if (state_map < 0)
		die("no tc_state map in the bench");
}

/* The prog array the site's tail calls go through: the last map of its ld_imm64s. */
static struct map *site_array(int site)
{
	struct prog *e = &progs[site * (LINKS + 1)];
	struct map *arr = NULL;

	for (uint32_t k = 0; k < e->xlated_len / 8; k++) {
		const struct bpf_insn *x = &e->xl[k];

		if (x->code == (BPF_LD | BPF_DW | BPF_IMM) && x->src_reg == BPF_PSEUDO_MAP_FD) {
			arr = map_by_id(x->imm);
			k++;
		}
	}
	if (!arr || arr->type != BPF_MAP_TYPE_PROG_ARRAY)
		die("site %s: no prog array", site_names[site]);
	return arr;
}

/* ------------------------------------------------------ account, relocate */

static uint64_t tail_call_offset;	/* X86_TAIL_CALL_OFFSET, from the pokes */
static int have_tco;

struct ktext {
	uint64_t addr, len;
	char name[64];
	uint8_t *bytes;
	int relocs[16][2];		/* offset, index into ktext of the target */
	uint64_t rtarget[16];
	int nrel;
	int used_by_images;
};
static struct ktext ktext[MAX_KTEXT];
static int nktext;

static int ktext_ok_name(const char *n)
{
	static const char *const ok[] = {
		"__x86_indirect_thunk_", "__x86_indirect_jump_thunk_", "__x86_indirect_its_thunk_",
		"__x86_indirect_call_thunk_", "__x86_return_thunk", "srso_", "retbleed_return_thunk",
		"its_return_thunk", "entry_untrain_ret",
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!strncmp(n, ok[i], strlen(ok[i])))
			return 1;
	return 0;
}

static int ktext_add(uint64_t addr, const char *why);

/* Follow every path through a thunk; every instruction must be one we know. */
static void ktext_walk(int k)
{
	struct ktext *t = &ktext[k];
	uint64_t todo[64];
	uint8_t done[256] = {};
	int ntodo = 0;
	char txt[128], where[96];

	uint64_t reach = 0;

	snprintf(where, sizeof(where), "%s", t->name);
	todo[ntodo++] = 0;
	while (ntodo) {
		uint64_t o = todo[--ntodo];

		for (;;) {
			struct insn in;

			if (o >= t->len)
				die("%s: the code runs past the symbol", t->name);
			if (done[o])
				break;
			done[o] = 1;
			decode_checked(t->bytes + o, t->len - o, t->addr + o, &in, txt, sizeof(txt), where);
			if (o + in.len > reach)
				reach = o + in.len;
			if (in.kind == K_MOVABS)
				die("%s+%#llx: a 64-bit immediate in a thunk", t->name, (unsigned long long)o);
			if (in.kind == K_JMP || in.kind == K_JCC || in.kind == K_CALL) {
				uint64_t tgt = t->addr + o + in.len + in.imm;

				if (tgt >= t->addr && tgt < t->addr + t->len) {
					if (ntodo == 64)
						die("%s: too many branches", t->name);
					todo[ntodo++] = tgt - t->addr;
				} else {
					int j;

					if (in.rel_len != 4)
						die("%s: a short branch out of the symbol", t->name);
					j = ktext_add(tgt, t->name);
					t = &ktext[k];
					if (t->nrel == 16)
						die("%s: too many relocations", t->name);
					t->relocs[t->nrel][0] = o + in.imm_off;
					t->relocs[t->nrel][1] = j;
					t->rtarget[t->nrel++] = tgt;
				}
			}
			if (in.kind == K_JMP || in.kind == K_RET || in.kind == K_JMP_IND ||
			    in.kind == K_INT3 || in.kind == K_UD2)
				break;
			o += in.len;
		}
	}
	/* Copy what runs: the symbol up to its last reachable instruction. */
	ktext[k].len = reach;
}

static int ktext_add(uint64_t addr, const char *why)
{
	const struct ksym *s;
	uint64_t next;
	int k;

	for (k = 0; k < nktext; k++)
		if (ktext[k].addr == addr)
			return k;
	s = ksym_at(addr, &next);
	if (!s)
		die("%s jumps to %#llx, not the start of a kernel symbol", why,
		    (unsigned long long)addr);
	if (!ktext_ok_name(s->name))
		die("%s jumps to kernel function %s: not a thunk the harness can copy", why, s->name);
	if (nktext == MAX_KTEXT)
		die("too many kernel thunks");
	k = nktext++;
	ktext[k].addr = addr;
	ktext[k].len = next - addr > 128 ? 128 : next - addr;
	snprintf(ktext[k].name, sizeof(ktext[k].name), "%s", s->name);
	ktext[k].bytes = malloc(ktext[k].len);
	kread(addr, ktext[k].bytes, ktext[k].len);
	ktext_walk(k);
	return k;
}

static void add_rel(int prog, int off, int kind, int len, uint64_t kt, int map, int tprog)
{
	if (nrels == MAX_RELS)
		die("too many relocations");
	rels[nrels++] = (struct rel){ prog, off, kind, len, kt, map, tprog };
}

struct site_form {
	int legacy, direct, ind_jumps;
	char jump[160];
};
static struct site_form forms[NSITES];

/* Account for every reference out of program @pi's image. */
static void account(int pi, FILE *lst)
{
	struct prog *p = &progs[pi];
	uint64_t ld[16][2];
	int nld = 0, nmov = 0, prev_lfence = 0;
	char where[64], txt[128];
	uint64_t o = 0;

	for (int i = 0; i < 4; i++)
		p->seq[i] = -1;
	snprintf(where, sizeof(where), "%s %s prog %u", site_names[p->site],
		 p->link < 0 ? "entry" : "link", p->id);
	/* The translated program's ld_imm64s, in order: map id and offset. */
	for (uint32_t k = 0; k + 1 < p->xlated_len / 8; k++) {
		const struct bpf_insn *x = &p->xl[k];

		if (x->code != (BPF_LD | BPF_DW | BPF_IMM))
			continue;
		if ((x->src_reg != BPF_PSEUDO_MAP_FD && x->src_reg != BPF_PSEUDO_MAP_VALUE) || nld == 16)
			die("%s: an ld_imm64 of kind %d in the translated program", where, x->src_reg);
		ld[nld][0] = (uint32_t)x->imm | (uint64_t)(x->src_reg == BPF_PSEUDO_MAP_VALUE) << 32;
		ld[nld][1] = (uint32_t)p->xl[k + 1].imm;
		nld++;
		k++;
	}
	if (lst)
		fprintf(lst, "\n%s (%s) at %#llx, %u bytes\n", where, p->name,
			(unsigned long long)p->ksym, p->jited_len);
	while (o < p->jited_len) {
		struct insn in;
		char note[128] = "";

		decode_checked(p->img + o, p->jited_len - o, p->ksym + o, &in, txt, sizeof(txt), where);
		if (in.kind == K_MOVABS) {
			uint64_t v = (uint64_t)in.imm;
			struct map *m;

			if (nmov >= nld)
				die("%s+%#llx: a movabs with no ld_imm64 in the translated program", where,
				    (unsigned long long)o);
			m = map_by_id((uint32_t)ld[nmov][0]);
			if (!m)
				die("%s: map id %u is not one of the bench's", where, (uint32_t)ld[nmov][0]);
			if (ld[nmov][0] >> 32) {
				uint64_t base = v - ld[nmov][1] - off.arr_value;

				if (m->kaddr && m->kaddr != base)
					die("%s: map %u at two addresses", where, m->id);
				m->kaddr = base;
				add_rel(pi, o + in.imm_off, R_MAPVAL, 8, v, m - maps, -1);
				snprintf(note, sizeof(note), "  <- value of map %u %s + %u", m->id, m->name,
					 (unsigned int)ld[nmov][1]);
			} else {
				if (ld[nmov][1])
					die("%s: a map ld_imm64 with an offset", where);
				if (m->kaddr && m->kaddr != v)
					die("%s: map %u at two addresses", where, m->id);
				m->kaddr = v;
				add_rel(pi, o + in.imm_off, R_MAPADDR, 8, v, m - maps, -1);
				snprintf(note, sizeof(note), "  <- map %u %s", m->id, m->name);
			}
			nmov++;
		} else if ((in.kind == K_JMP || in.kind == K_JCC || in.kind == K_CALL)) {
			uint64_t tgt = p->ksym + o + in.len + in.imm;

			if (tgt < p->ksym || tgt >= p->ksym + p->jited_len) {
				const struct ksym *s;
				uint64_t next;
				struct prog *q = NULL;

				if (in.rel_len != 4)
					die("%s+%#llx: a short branch out of the image", where,
					    (unsigned long long)o);
				for (int j = 0; j < nprogs; j++)
					if (tgt > progs[j].ksym && tgt < progs[j].ksym + progs[j].jited_len)
						q = &progs[j];
				if (q) {
					if (in.kind != K_JMP)
						die("%s+%#llx: a call or conditional jump into another image",
						    where, (unsigned long long)o);
					if (have_tco && tgt - q->ksym != tail_call_offset)
						die("%s: direct tail calls at two offsets", where);
					tail_call_offset = tgt - q->ksym;
					have_tco = 1;
					add_rel(pi, o + in.imm_off, R_PROG, 4, tgt, -1, q - progs);
					forms[p->site].direct++;
					snprintf(note, sizeof(note), "  <- poked: prog %u + %llu", q->id,
						 (unsigned long long)tail_call_offset);
				} else if ((s = ksym_at(tgt, &next))) {
					int k = ktext_add(tgt, where);

					ktext[k].used_by_images = 1;
					add_rel(pi, o + in.imm_off, R_KTEXT, 4, tgt, k, -1);
					snprintf(note, sizeof(note), "  <- %s", s->name);
					if (in.kind == K_JMP && strstr(s->name, "indirect")) {
						forms[p->site].legacy++;
						forms[p->site].ind_jumps++;
						snprintf(forms[p->site].jump, sizeof(forms[p->site].jump), "%s", s->name);
					}
				} else {
					die("%s+%#llx: a branch to %#llx, neither an image nor a kernel symbol",
					    where, (unsigned long long)o, (unsigned long long)tgt);
				}
			}
		} else if (in.kind == K_JMP_IND) {
			forms[p->site].legacy++;
			forms[p->site].ind_jumps++;
			static const char *const rn[16] = {
				"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
				"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
			};

			snprintf(forms[p->site].jump, sizeof(forms[p->site].jump), "%sjmp *%%%s",
				 prev_lfence ? "lfence; " : "", rn[in.reg]);
		}
		if (lst) {
			fprintf(lst, "  %04llx:", (unsigned long long)o);
			for (int b = 0; b < 12; b++)
				fprintf(lst, b < in.len ? " %02x" : "   ", p->img[o + b]);
			fprintf(lst, " %s%s\n", txt, note);
		}
		/* The legacy sequence's displacements, checked against the BTF later. */
		{
			long v;
			int n = -1;

			if (sscanf(txt, " cmpl %%edx, %ld(%%rsi)%n", &v, &n) == 1 && n > 0 && !txt[n])
				p->seq[0] = v;
			n = -1;
			if (sscanf(txt, " movq %ld(%%rsi,%%rdx,8), %%rcx%n", &v, &n) == 1 && n > 0 && !txt[n])
				p->seq[1] = v;
			n = -1;
			if (sscanf(txt, " movq %ld(%%rcx), %%rcx%n", &v, &n) == 1 && n > 0 && !txt[n])
				p->seq[2] = v;
			n = -1;
			if (sscanf(txt, " addq $%ld, %%rcx%n", &v, &n) == 1 && n > 0 && !txt[n])
				p->seq[3] = v;
		}
		prev_lfence = in.kind == K_LFENCE;
		o += in.len;
	}
	if (nmov != nld)
		die("%s: %d ld_imm64 in the translated program, %d movabs in the image", where, nld, nmov);
}

/* ----------------------------------------------------------- layout */

struct window { uint64_t kwin; uint8_t *u; };
static struct window wins[32];
static int nwins;
static uint8_t *code_lo, *code_hi;

static void add_window(uint64_t ka)
{
	uint64_t w = ka & ~(WIN - 1);

	for (int i = 0; i < nwins; i++)
		if (wins[i].kwin == w)
			return;
	if (nwins == 32)
		die("too many 2 MB windows of code");
	wins[nwins++].kwin = w;
}

static int cmp_win(const void *a, const void *b)
{
	const struct window *x = a, *y = b;

	return (x->kwin > y->kwin) - (x->kwin < y->kwin);
}

/* The user address of kernel code address @ka. */
static uint8_t *ucode(uint64_t ka)
{
	for (int i = 0; i < nwins; i++)
		if (wins[i].kwin == (ka & ~(WIN - 1)))
			return wins[i].u + (ka & (WIN - 1));
	die("no window for %#llx", (unsigned long long)ka);
	return NULL;
}

/* One 2 MB block per kernel window, in the windows' order, consecutive ones adjacent. */
static void map_code(void)
{
	size_t blocks = 0;
	uint8_t *base;

	for (int i = 0; i < nprogs; i++) {
		add_window(progs[i].ksym);
		add_window(progs[i].ksym + progs[i].jited_len - 1);
	}
	for (int k = 0; k < nktext; k++) {
		add_window(ktext[k].addr);
		add_window(ktext[k].addr + ktext[k].len - 1);
	}
	qsort(wins, nwins, sizeof(wins[0]), cmp_win);
	for (int i = 0; i < nwins; i++)
		blocks += 1 + (i && wins[i].kwin != wins[i - 1].kwin + WIN);
	/* + 1 block for the invocation stub, + 1 for alignment */
	base = mmap(NULL, (blocks + 2) * WIN, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		die("mmap of %zu code blocks: %s", blocks + 2, strerror(errno));
	base = (uint8_t *)(((uintptr_t)base + WIN - 1) & ~(WIN - 1));
	code_lo = base;
	for (int i = 0; i < nwins; i++) {
		if (i && wins[i].kwin != wins[i - 1].kwin + WIN)
			base += WIN;
		wins[i].u = base;
		base += WIN;
	}
	code_hi = base + WIN;
	memset(code_lo, 0xcc, code_hi - code_lo);
}

static void put_rel32(uint8_t *at, const uint8_t *target)
{
	int64_t d = target - (at + 4);
	int32_t d32 = (int32_t)d;

	if (d != d32)
		die("a relocation out of rel32 reach");
	memcpy(at, &d32, 4);
}

/* Memory at the same page offset as kernel address @ka. */
static uint8_t *alloc_like(uint64_t ka, size_t size)
{
	size_t po = ka & (PAGE - 1), n = (po + size + PAGE - 1) & ~(PAGE - 1);
	uint8_t *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
			  -1, 0);

	if (p == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	return p + po;
}

static uint8_t *skb, *stub;
static uint8_t fake_insnsi[64];
static uint64_t state_kval;		/* kernel address of the state value */

static void check_live_objects(void)
{
	/* Offsets of the BTF, checked on the live objects. */
	for (int i = 0; i < nmaps; i++) {
		struct map *m = &maps[i];

		if (!m->kaddr)
			continue;
		if (kread32(m->kaddr + off.arr_map + off.map_id) != m->id ||
		    kread32(m->kaddr + off.arr_map + off.map_max) != m->max_entries ||
		    kread32(m->kaddr + off.arr_map + off.map_vsize) != m->value_size)
			die("map %u at %#llx: id, max_entries or value_size not at the BTF offsets",
			    m->id, (unsigned long long)m->kaddr);
		if (m->type != BPF_MAP_TYPE_PROG_ARRAY)
			continue;
		for (uint32_t k = 0; k < m->max_entries; k++) {
			uint64_t kp = kread64(m->kaddr + off.arr_ptrs + 8 * k);
			struct prog *q;

			if (!m->slots[k]) {
				if (kp)
					die("map %u slot %u: empty but ptrs[] holds %#llx", m->id, k,
					    (unsigned long long)kp);
				continue;
			}
			q = prog_by_id(m->slots[k]);
			if (!q)
				die("map %u slot %u holds program %u, not one of the bench's", m->id, k,
				    m->slots[k]);
			if (kread64(kp + off.prog_func) != q->ksym ||
			    kread32(kread64(kp + off.prog_aux) + off.aux_id) != q->id)
				die("map %u slot %u: ptrs[] / bpf_func / aux->id not at the BTF offsets",
				    m->id, k);
			if (q->kstruct && q->kstruct != kp)
				die("program %u at two addresses", q->id);
			q->kstruct = kp;
		}
	}
	/* The live text is what bpf_prog_info returned (pokes included). */
	for (int i = 0; i < nprogs; i++) {
		uint8_t *live = malloc(progs[i].jited_len);

		kread(progs[i].ksym, live, progs[i].jited_len);
		if (memcmp(live, progs[i].img, progs[i].jited_len) && getenv("CAL_DEBUG"))
			for (uint32_t b = 0; b < progs[i].jited_len; b++)
				if (live[b] != progs[i].img[b])
					fprintf(stderr, "prog %u +%u: info %02x live %02x\n", progs[i].id, b,
						progs[i].img[b], live[b]);
		if (memcmp(live, progs[i].img, progs[i].jited_len))
			die("program %u: jited_prog_insns differ from the text at %#llx", progs[i].id,
			    (unsigned long long)progs[i].ksym);
		free(live);
	}
	/* The state value the images use is the bench's map's. */
	{
		uint8_t live[64];

		kread(state_kval, live, sizeof(live));
		if (memcmp(live, state_mm, sizeof(live)))
			die("the state value at %#llx is not the bench's tc_state",
			    (unsigned long long)state_kval);
	}
}

static int irax;		/* __x86_indirect_thunk_rax, for the invocation */

static void layout(void)
{
	struct map *st = &maps[state_map];

	state_kval = st->kaddr + off.arr_value;
	check_live_objects();
	map_code();
	/* Images and thunks at their offsets in their windows. */
	for (int i = 0; i < nprogs; i++) {
		progs[i].code = ucode(progs[i].ksym);
		memcpy(progs[i].code, progs[i].img, progs[i].jited_len);
	}
	for (int k = 0; k < nktext; k++)
		memcpy(ucode(ktext[k].addr), ktext[k].bytes, ktext[k].len);
	/* Data: struct bpf_prog per program, prog arrays, state, skb. */
	for (int i = 0; i < nprogs; i++) {
		struct prog *p = &progs[i];

		p->ustruct = alloc_like(p->kstruct ? p->kstruct : 0, off.prog_size);
		memcpy(p->ustruct + off.prog_func, &p->code, 8);
	}
	for (int i = 0; i < nmaps; i++) {
		struct map *m = &maps[i];

		if (m->type != BPF_MAP_TYPE_PROG_ARRAY || !m->kaddr)
			continue;
		m->u = alloc_like(m->kaddr, off.arr_ptrs + 8 * (size_t)m->max_entries);
		memcpy(m->u + off.arr_map + off.map_max, &m->max_entries, 4);
		memcpy(m->u + off.arr_map + off.map_id, &m->id, 4);
		for (uint32_t k = 0; k < m->max_entries; k++) {
			struct prog *q = m->slots[k] ? prog_by_id(m->slots[k]) : NULL;
			uint8_t *v = q ? q->ustruct : NULL;

			memcpy(m->u + off.arr_ptrs + 8 * k, &v, 8);
		}
	}
	st->u = alloc_like(state_kval, ST_SIZE);
	memcpy(st->u, state_mm, ST_SIZE);
	memset(st->u, 0, ST_KEYS);
	skb = alloc_like(0x100, off.skb_size);
	/* Relocate. */
	for (int r = 0; r < nrels; r++) {
		struct rel *x = &rels[r];
		uint8_t *at = progs[x->prog].code + x->off;

		if (x->kind == R_MAPADDR) {
			uint8_t *v = maps[x->map].u;

			if (!v)
				die("map %u: no fake", maps[x->map].id);
			memcpy(at, &v, 8);
		} else if (x->kind == R_MAPVAL) {
			uint8_t *v = maps[x->map].u + (x->ktarget - state_kval);

			if (x->map != state_map)
				die("a map value other than the state's");
			memcpy(at, &v, 8);
		} else {
			put_rel32(at, ucode(x->ktarget));
		}
	}
	for (int k = 0; k < nktext; k++)
		for (int r = 0; r < ktext[k].nrel; r++)
			put_rel32(ucode(ktext[k].addr) + ktext[k].relocs[r][0], ucode(ktext[k].rtarget[r]));
	stub = code_hi - WIN;
	/* push %rbp; movabs $entry, %rax (patched per site); call thunk; pop %rbp; ret */
	stub[0] = 0x55;
	stub[1] = 0x48;
	stub[2] = 0xb8;
	stub[11] = 0xe8;
	put_rel32(stub + 12, ucode(ktext[irax].addr));
	stub[16] = 0x5d;
	stub[17] = 0xc3;
}

/* The bytes to execute are the kernel's but for the relocated fields. */
static void check_bytes(void)
{
	for (int i = 0; i < nprogs; i++) {
		struct prog *p = &progs[i];

		for (uint32_t b = 0; b < p->jited_len; b++) {
			int in_rel = 0;

			for (int r = 0; r < nrels; r++)
				if (rels[r].prog == i && b >= (uint32_t)rels[r].off &&
				    b < (uint32_t)(rels[r].off + rels[r].len))
					in_rel = 1;
			if (!in_rel && p->code[b] != p->img[b])
				die("program %u byte %u differs from the kernel's image", p->id, b);
		}
	}
	for (int k = 0; k < nktext; k++) {
		uint8_t *u = ucode(ktext[k].addr);

		for (uint64_t b = 0; b < ktext[k].len; b++) {
			int in_rel = 0;

			for (int r = 0; r < ktext[k].nrel; r++)
				if (b >= (uint64_t)ktext[k].relocs[r][0] && b < (uint64_t)ktext[k].relocs[r][0] + 4)
					in_rel = 1;
			if (!in_rel && u[b] != ktext[k].bytes[b])
				die("%s byte %llu differs from the kernel's", ktext[k].name,
				    (unsigned long long)b);
		}
	}
}

/* ------------------------------------------------------------- timing */

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + t.tv_nsec;
}

typedef unsigned int (*stub_fn)(void *ctx, const void *insnsi);


static void set_entry(int site)
{
	uint8_t *e = progs[site * (LINKS + 1)].code;

	if (mprotect(code_hi - WIN, PAGE, PROT_READ | PROT_WRITE))
		die("mprotect: %s", strerror(errno));
	memcpy(stub + 3, &e, 8);
	if (mprotect(code_hi - WIN, PAGE, PROT_READ | PROT_EXEC))
		die("mprotect: %s", strerror(errno));
}

/*
 * One measurement: @repeat invocations of chains of @len, in sub-batches of
 * SUB_BATCH; ns per invocation, rounded down like test_run's duration. A
 * sub-batch during which this thread was switched out (another task ran
 * here) is taken again, up to SUB_TRIES times: the kernel's test_run leaves
 * out the time it gives away at need_resched in the same way.
 */
#define SUB_BATCH	1000
#define SUB_TRIES	10

static long subs_retaken, subs_accepted_preempted;

static uint32_t run_one(int site, uint32_t len, uint32_t repeat)
{
	uint8_t *st = maps[state_map].u;
	volatile uint64_t *calls = (uint64_t *)(st + ST_CALLS), *fell = (uint64_t *)(st + ST_FELL);
	stub_fn fn = (stub_fn)stub;
	uint64_t total = 0;

	*(volatile uint32_t *)(st + ST_LEN) = len;
	for (uint32_t done = 0; done < repeat;) {
		uint32_t n = repeat - done < SUB_BATCH ? repeat - done : SUB_BATCH;
		uint64_t t0, t1, c0, f0;
		unsigned int ret = 0;
		struct rusage r0, r1;

		for (int attempt = 0;; attempt++) {
			c0 = *calls;
			f0 = *fell;
			getrusage(RUSAGE_THREAD, &r0);
			t0 = now_ns();
			for (uint32_t i = 0; i < n; i++)
				ret = fn(skb, fake_insnsi);
			t1 = now_ns();
			getrusage(RUSAGE_THREAD, &r1);
			if (*fell != f0 || ret != len || *calls - c0 != (uint64_t)len * n)
				die("harness, %s, %u tail calls: returned %u, %llu chains fell through, %llu tail calls counted (want %llu)",
				    site_names[site], len, ret, (unsigned long long)(*fell - f0),
				    (unsigned long long)(*calls - c0), (unsigned long long)len * n);
			if (r1.ru_nivcsw == r0.ru_nivcsw)
				break;
			if (attempt == SUB_TRIES - 1) {
				subs_accepted_preempted++;
				break;
			}
			subs_retaken++;
		}
		total += t1 - t0;
		done += n;
	}
	return total / repeat;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static void harness(void)
{
	uint32_t nl = (bench.max_len - bench.min_len) / bench.step + 1;
	static uint32_t ns[NSITES][MAX_LENS][MAX_ROUNDS];

	for (uint32_t r = 0; r < bench.rounds; r++) {
		for (int k = 0; k < NSITES; k++) {
			int s = (r + k) % NSITES;

			if (s >= nsites)
				continue;
			set_entry(s);
			for (uint32_t li = 0; li < nl; li++)
				ns[s][li][r] = run_one(s, bench.min_len + li * bench.step, bench.repeat);
		}
	}
	for (int s = 0; s < nsites; s++) {
		double sx = 0, sy = 0, sxx = 0, sxy = 0, n = nl, slope, icpt;
		uint32_t med[MAX_LENS];

		for (uint32_t li = 0; li < nl; li++) {
			uint32_t v[MAX_ROUNDS];
			double x = bench.min_len + li * bench.step;

			memcpy(v, ns[s][li], bench.rounds * sizeof(v[0]));
			qsort(v, bench.rounds, sizeof(v[0]), cmp_u32);
			med[li] = v[bench.rounds / 2];
			sx += x;
			sy += med[li];
			sxx += x * x;
			sxy += x * med[li];
		}
		slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
		icpt = (sy - slope * sx) / n;
		printf("harness site=%s keys=%s entries=%u ns_per_call=%.3f ns_per_invocation=%.3f medians=",
		       site_names[s], bench.keys, bench.entries, slope, icpt);
		for (uint32_t li = 0; li < nl; li++)
			printf("%s%u", li ? "," : "", med[li]);
		printf("\n");
	}
	printf("harness_preemption sub_batch=%d retaken=%ld accepted_preempted=%ld\n", SUB_BATCH,
	       subs_retaken, subs_accepted_preempted);
}

/* ------------------------------------------------------------------ main */

static void write_file(const char *dir, const char *name, const void *b, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(b, 1, n, f) != n)
		die("cannot write %s", path);
	fclose(f);
}

int main(int argc, char **argv)
{
	const char *outdir = NULL, *bench_out = NULL;
	int cpu = -1, wcpu = -1, opt;
	FILE *lst = NULL;

	while ((opt = getopt(argc, argv, "c:w:o:b:")) != -1) {
		switch (opt) {
		case 'c': cpu = atoi(optarg); break;
		case 'w': wcpu = atoi(optarg); break;
		case 'o': outdir = optarg; break;
		case 'b': bench_out = optarg; break;
		default: die("usage: calibrate -c CPU [-w CPU] [-o DIR] -b BENCH_OUT -- BENCH ARGS...");
		}
	}
	if (cpu < 0 || !bench_out || optind >= argc)
		die("usage: calibrate -c CPU [-w CPU] [-o DIR] -b BENCH_OUT -- BENCH ARGS...");
	if (wcpu < 0)
		wcpu = cpu;
	if (geteuid())
		die("needs root (bpf(2), pidfd_getfd, kallsyms addresses)");
	setvbuf(stdout, NULL, _IOLBF, 0);
	read_offsets();
	read_kallsyms();
	llvm_init();
	run_bench(argv + optind, bench_out, cpu, wcpu);
	/* After the fork: the bench must not inherit the reader's fds. */
	kread_init();
	read_bench_out(bench_out);
	identify();
	if (outdir) {
		char path[512];

		mkdir(outdir, 0755);
		snprintf(path, sizeof(path), "%s/images.txt", outdir);
		lst = fopen(path, "w");
		if (!lst)
			die("cannot write %s", path);
	}
	for (int i = 0; i < nprogs; i++)
		account(i, lst);
	for (int s = 0; s < nsites; s++) {
		struct map *arr = site_array(s);

		if (arr->max_entries != bench.entries)
			die("site %s: a prog array of %u, the bench says %u entries", site_names[s],
			    arr->max_entries, bench.entries);
		for (uint32_t k = 0; k < arr->max_entries; k++) {
			struct prog *q = prog_by_id(arr->slots[k]);

			if (!q || q->site != s || q->link != (int)(k % LINKS))
				die("site %s slot %u: not link %u of the site", site_names[s], k, k % LINKS);
		}
	}
	/* Every legacy site reads max_entries, ptrs[] and bpf_func at the BTF offsets. */
	for (int i = 0; i < nprogs; i++) {
		struct prog *p = &progs[i];

		if (!forms[p->site].legacy)
			continue;
		if (p->seq[0] != off.arr_map + off.map_max || p->seq[1] != off.arr_ptrs ||
		    p->seq[2] != off.prog_func || (have_tco && p->seq[3] != (long)tail_call_offset))
			die("program %u: legacy sequence with displacements %ld, %ld, %ld, +%ld; BTF: %ld, %ld, %ld, +%llu",
			    p->id, p->seq[0], p->seq[1], p->seq[2], p->seq[3], off.arr_map + off.map_max,
			    off.arr_ptrs, off.prog_func, (unsigned long long)tail_call_offset);
	}
	/* The ctx offset of cb[0] the verifier wrote is the BTF's. */
	for (int s = 0; s < nsites; s++) {
		struct prog *e = &progs[s * (LINKS + 1)];
		uint32_t k = 0;

		while (k < e->xlated_len / 8 && e->xl[k].code != (BPF_ST | BPF_MEM | BPF_W))
			k++;
		if (k == e->xlated_len / 8 || e->xl[k].off != off.skb_cb + off.qcb_data)
			die("site %s: the entry's cb[0] store is not at sk_buff.cb + qdisc_skb_cb.data (%ld)",
			    site_names[s], off.skb_cb + off.qcb_data);
	}
	/* The invocation: bpf_prog_run() calls bpf_func through the rax thunk. */
	irax = ktext_add(ksym_addr("__x86_indirect_thunk_rax"), "the invocation");
	layout();
	check_bytes();
	for (int i = 0; i < nwins; i++)
		if (mprotect(wins[i].u, WIN, PROT_READ | PROT_EXEC))
			die("mprotect: %s", strerror(errno));

	printf("offsets bpf_array.map=%ld bpf_array.ptrs=%ld bpf_array.value=%ld bpf_map.max_entries=%ld bpf_prog.bpf_func=%ld sk_buff.cb=%ld qdisc_skb_cb.data=%ld tail_call_offset=%llu\n",
	       off.arr_map, off.arr_ptrs, off.arr_value, off.map_max, off.prog_func, off.skb_cb,
	       off.qcb_data, (unsigned long long)tail_call_offset);
	for (int s = 0; s < nsites; s++)
		printf("form site=%s sequence=%s jump=%s\n", site_names[s],
		       forms[s].direct && !forms[s].legacy ? "direct" :
		       forms[s].legacy && !forms[s].direct ? "legacy" : "mixed",
		       forms[s].ind_jumps ? forms[s].jump : "none");
	for (int k = 0; k < nktext; k++) {
		char txt[128];

		printf("ktext %s %#llx %llu bytes:", ktext[k].name, (unsigned long long)ktext[k].addr,
		       (unsigned long long)ktext[k].len);
		for (uint64_t o = 0; o < ktext[k].len;) {
			struct insn in;

			decode_checked(ktext[k].bytes + o, ktext[k].len - o, ktext[k].addr + o, &in, txt,
				       sizeof(txt), ktext[k].name);
			if (in.kind == K_JMP || in.kind == K_CALL || in.kind == K_JCC) {
				uint64_t tgt = ktext[k].addr + o + in.len + in.imm, next;
				const struct ksym *ts = ksym_at(tgt, &next);

				printf(" %s %s;", in.kind == K_CALL ? "call" : in.kind == K_JMP ? "jmp" : "jcc",
				       ts ? ts->name : tgt >= ktext[k].addr && tgt < ktext[k].addr + ktext[k].len ?
				       "(within)" : "?");
			} else {
				printf(" %s;", txt + strspn(txt, " "));
			}
			if (in.kind == K_RET || in.kind == K_JMP || in.kind == K_UD2 ||
			    in.kind == K_JMP_IND)
				break;
			o += in.len;
		}
		printf("\n");
	}
	for (int s = 0; s < NSITES; s++)
		if (bench.have[s])
			printf("bench site=%s keys=%s entries=%u ns_per_call=%.3f ns_per_invocation=%.3f\n",
			       site_names[s], bench.keys, bench.entries, bench.slope[s], bench.icpt[s]);
	if (lst) {
		char path[512];
		FILE *f;

		fclose(lst);
		snprintf(path, sizeof(path), "%s/layout.txt", outdir);
		f = fopen(path, "w");
		if (!f)
			die("cannot write %s", path);
		fprintf(f, "# kernel object -> the harness's copy\n");
		for (int i = 0; i < nprogs; i++)
			fprintf(f, "prog %u %s %s%d image %#llx -> %p (%u bytes), struct bpf_prog %#llx -> %p\n",
				progs[i].id, site_names[progs[i].site], progs[i].link < 0 ? "entry" : "link",
				progs[i].link < 0 ? 0 : progs[i].link, (unsigned long long)progs[i].ksym,
				(void *)progs[i].code, progs[i].jited_len,
				(unsigned long long)progs[i].kstruct, (void *)progs[i].ustruct);
		for (int i = 0; i < nmaps; i++)
			fprintf(f, "map %u %s type %u max_entries %u value_size %u %#llx -> %p\n", maps[i].id,
				maps[i].name, maps[i].type, maps[i].max_entries, maps[i].value_size,
				(unsigned long long)maps[i].kaddr, (void *)maps[i].u);
		fprintf(f, "state value %#llx -> %p\nskb %p (cb[0] at +%ld)\n",
			(unsigned long long)state_kval, (void *)maps[state_map].u, (void *)skb,
			off.skb_cb + off.qcb_data);
		for (int k = 0; k < nktext; k++) {
			fprintf(f, "text %s %#llx -> %p:", ktext[k].name, (unsigned long long)ktext[k].addr,
				(void *)ucode(ktext[k].addr));
			for (uint64_t b = 0; b < ktext[k].len; b++)
				fprintf(f, " %02x", ktext[k].bytes[b]);
			fprintf(f, "\n");
		}
		fprintf(f, "invocation stub %p\n", (void *)stub);
		fclose(f);
		for (int i = 0; i < nprogs; i++) {
			char name[64];

			snprintf(name, sizeof(name), "%s-%s%d.bin", site_names[progs[i].site],
				 progs[i].link < 0 ? "entry" : "link", progs[i].link < 0 ? 0 : progs[i].link);
			write_file(outdir, name, progs[i].img, progs[i].jited_len);
		}
	}
	pin(cpu);
	harness();
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Raw bpf(2) helpers (no libbpf) shared by tailcall_cache.c,
 * tailcall_storm.c, tailcall_fault.c, tailcall_badinput.c and
 * bench/guest.c: socket-filter programs, prog arrays, test runs with
 * cb[0] = key and cb[1] = selector.
 */
#ifndef BPF_RAW_H
#define BPF_RAW_H

#include <errno.h>
#include <linux/bpf.h>
#include <linux/btf.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), \
			     .src_reg = (s), .off = (o), .imm = (i) })
#define MOV64_IMM(d, i)	INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define MOV64_REG(d, s)	INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define ADD64_IMM(d, i)	INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define LDX_W(d, s, o)	INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define LDX_DW(d, s, o)	INSN(BPF_LDX | BPF_MEM | BPF_DW, d, s, o, 0)
#define ST_DW(d, o, i)	INSN(BPF_ST | BPF_MEM | BPF_DW, d, 0, o, i)
#define JEQ_IMM(d, i, o) INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, o, i)
#define CALL(f)		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define CALL_REL(off)	INSN(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, off)
#define EXIT()		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define LD_MAP(d, fd)	INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd), \
			INSN(0, 0, 0, 0, 0)

#define FALLTHROUGH 0xff
#define CB0 offsetof(struct __sk_buff, cb[0])
#define CB1 offsetof(struct __sk_buff, cb[1])

static inline long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static inline int prog_array_create(unsigned int max_entries)
{
	union bpf_attr a = {
		.map_type = BPF_MAP_TYPE_PROG_ARRAY,
		.key_size = 4, .value_size = 4, .max_entries = max_entries,
	};

	return sys_bpf(BPF_MAP_CREATE, &a);
}

/*
 * Load a program of type @type with @flags; the verifier log goes to
 * @log (may be NULL). Returns the fd or -1 with errno set.
 */
static inline int prog_load_ex(enum bpf_prog_type type, unsigned int flags,
			       const struct bpf_insn *insns, size_t n,
			       char *log, size_t log_size)
{
	union bpf_attr a = {
		.prog_type = type,
		.insns = (uintptr_t)insns, .insn_cnt = n,
		.license = (uintptr_t)"GPL",
		.prog_flags = flags,
	};

	if (log && log_size) {
		log[0] = 0;
		a.log_buf = (uintptr_t)log;
		a.log_size = log_size;
		a.log_level = 1;
	}
	return sys_bpf(BPF_PROG_LOAD, &a);
}

/*
 * A test that wants the verifier log of a failed sock_prog_load() on
 * stderr points raw_log at a buffer; the others stay silent (the fault
 * injection test makes loads fail on purpose).
 */
static char *raw_log;
static size_t raw_log_size;

static inline int sock_prog_load(const struct bpf_insn *insns, size_t n)
{
	int fd = prog_load_ex(BPF_PROG_TYPE_SOCKET_FILTER, 0, insns, n,
			      raw_log, raw_log_size);

	if (fd < 0 && raw_log)
		fprintf(stderr, "prog load: %s\n%s\n", strerror(errno), raw_log);
	return fd;
}

/*
 * @prog's info with its JITed image in @img, its translated instructions
 * in @xl and its kernel address (bpf_func) in *@ksym; 0 or -1 with errno.
 */
static inline int prog_info_image(int prog, struct bpf_prog_info *info,
				  void *img, uint32_t img_len,
				  struct bpf_insn *xl, uint32_t xl_len,
				  uint64_t *ksym)
{
	union bpf_attr a = { 0 };

	memset(info, 0, sizeof(*info));
	*ksym = 0;
	info->jited_prog_len = img_len;
	info->jited_prog_insns = (uintptr_t)img;
	info->nr_jited_ksyms = 1;
	info->jited_ksyms = (uintptr_t)ksym;
	info->xlated_prog_len = xl_len;
	info->xlated_prog_insns = (uintptr_t)xl;
	a.info.bpf_fd = prog;
	a.info.info_len = sizeof(*info);
	a.info.info = (uintptr_t)info;
	return sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a) ? -1 : 0;
}

/* The JITed image of @prog into @buf; 0 when there is none or it does not fit. */
static inline size_t jited_image(int prog, unsigned char *buf, size_t len)
{
	struct bpf_prog_info info = { 0 };
	union bpf_attr a = { 0 };

	info.jited_prog_len = len;
	info.jited_prog_insns = (uintptr_t)buf;
	a.info.bpf_fd = prog;
	a.info.info_len = sizeof(info);
	a.info.info = (uintptr_t)&info;
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a) || info.jited_prog_len > len)
		return 0;
	return info.jited_prog_len;
}

static inline int map_update(int map, unsigned int key, int prog)
{
	union bpf_attr a = {
		.map_fd = map, .key = (uintptr_t)&key, .value = (uintptr_t)&prog,
	};

	return sys_bpf(BPF_MAP_UPDATE_ELEM, &a);
}

static inline int map_delete(int map, unsigned int key)
{
	union bpf_attr a = { .map_fd = map, .key = (uintptr_t)&key };

	return sys_bpf(BPF_MAP_DELETE_ELEM, &a);
}

/* For a prog array, the value read back is the id of the slot's program. */
static inline int map_lookup(int map, unsigned int key, unsigned int *val)
{
	union bpf_attr a = {
		.map_fd = map, .key = (uintptr_t)&key, .value = (uintptr_t)val,
	};

	return sys_bpf(BPF_MAP_LOOKUP_ELEM, &a);
}

static inline unsigned int prog_id(int prog)
{
	struct bpf_prog_info info = { 0 };
	union bpf_attr a = { 0 };

	a.info.bpf_fd = prog;
	a.info.info_len = sizeof(info);
	a.info.info = (uintptr_t)&info;
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a))
		return 0;
	return info.id;
}

/* Run prog once with cb[0] = key and cb[1] = sel; returns retval or -errno. */
static inline long run(int prog, unsigned int key, unsigned int sel)
{
	struct __sk_buff ctx = { 0 };
	unsigned char data[64] = { 0 };
	union bpf_attr a = { 0 };

	ctx.cb[0] = key;
	ctx.cb[1] = sel;
	a.test.prog_fd = prog;
	a.test.data_in = (uintptr_t)data;
	a.test.data_size_in = sizeof(data);
	a.test.ctx_in = (uintptr_t)&ctx;
	a.test.ctx_size_in = sizeof(ctx);
	a.test.repeat = 1;
	if (sys_bpf(BPF_PROG_TEST_RUN, &a))
		return -errno;
	return a.test.retval;
}

/* A program that returns @ret. */
static inline int target(unsigned int ret)
{
	struct bpf_insn insns[] = { MOV64_IMM(BPF_REG_0, ret), EXIT() };

	return sock_prog_load(insns, ARRAY_SIZE(insns));
}

/* Static-map site: the map is known, the key comes from cb[0]. */
static inline int caller_static(int map)
{
	struct bpf_insn insns[] = {
		LDX_W(BPF_REG_3, BPF_REG_1, CB0),
		LD_MAP(BPF_REG_2, map),
		CALL(BPF_FUNC_tail_call),
		MOV64_IMM(BPF_REG_0, FALLTHROUGH),
		EXIT(),
	};

	return sock_prog_load(insns, ARRAY_SIZE(insns));
}

/* Poisoned site: cb[1] == 0 selects map, else other; always the legacy sequence. */
static inline int caller_poisoned(int map, int other)
{
	struct bpf_insn insns[] = {
		LDX_W(BPF_REG_3, BPF_REG_1, CB0),
		LDX_W(BPF_REG_4, BPF_REG_1, CB1),
		LD_MAP(BPF_REG_2, map),
		JEQ_IMM(BPF_REG_4, 0, 2),
		LD_MAP(BPF_REG_2, other),
		CALL(BPF_FUNC_tail_call),
		MOV64_IMM(BPF_REG_0, FALLTHROUGH),
		EXIT(),
	};

	return sock_prog_load(insns, ARRAY_SIZE(insns));
}

/* Direct site: constant key, patched jump. */
static inline int caller_direct(int map, int key)
{
	struct bpf_insn insns[] = {
		MOV64_IMM(BPF_REG_3, key),
		LD_MAP(BPF_REG_2, map),
		CALL(BPF_FUNC_tail_call),
		MOV64_IMM(BPF_REG_0, FALLTHROUGH),
		EXIT(),
	};

	return sock_prog_load(insns, ARRAY_SIZE(insns));
}

/*
 * net.core.bpf_jit_harden (upstream): 2 makes the JIT blind the constants
 * of every program it compiles, and a blinded program keeps the legacy
 * tail-call sequence (no cached target) and, on x86-64, has no direct
 * tail calls. It is read when a program is loaded.
 */
#define JIT_HARDEN_PATH "/proc/sys/net/core/bpf_jit_harden"

/* The current value, or -1 with errno set. */
static inline int jit_harden_get(void)
{
	FILE *f = fopen(JIT_HARDEN_PATH, "r");
	int v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%d", &v) != 1) {
		v = -1;
		errno = EIO;
	}
	fclose(f);
	return v;
}

/* Write @v and read it back: 0, or -1 with errno set. */
static inline int jit_harden_set(int v)
{
	FILE *f = fopen(JIT_HARDEN_PATH, "w");

	if (!f)
		return -1;
	fprintf(f, "%d\n", v);
	if (fclose(f))
		return -1;
	if (jit_harden_get() != v) {
		errno = EIO;
		return -1;
	}
	return 0;
}

/*
 * A static-map caller (caller_static()) loaded with bpf_jit_harden=2: the
 * legacy sequence on every kernel. The previous value is restored. Returns
 * the fd; -1 if the load failed; -2 if bpf_jit_harden could not be read,
 * set or restored (errno set in both cases). Callers that load programs
 * from several threads must serialise their loads around it.
 */
static inline int caller_hardened(int map)
{
	int prev = jit_harden_get(), fd, e;

	if (prev < 0 || jit_harden_set(2))
		return -2;
	fd = caller_static(map);
	e = errno;
	if (jit_harden_set(prev)) {
		if (fd >= 0)
			close(fd);
		return -2;
	}
	errno = e;
	return fd;
}

/* TCC_EXPECT_CACHE=1 (set by the harness on kernels with the series). */
static inline int expect_cache(void)
{
	const char *v = getenv("TCC_EXPECT_CACHE");

	return v && !strcmp(v, "1");
}

#endif /* BPF_RAW_H */

// SPDX-License-Identifier: GPL-2.0
/*
 * The JITed image of a compare tree, two ways (raw bpf(2), no libbpf):
 *
 *  - "var": a variable-key tail call into a prog array of 8, the key a
 *    32-bit load from an array map's value: the input of the RFC
 *    patches' rewrite (on an x86-64 kernel with the series whose indirect
 *    jumps are thunks, the verifier makes it a compare tree of direct
 *    tail calls);
 *  - "tree": the same program with the site written by hand as the
 *    generated plan for 8 slots (tc_tree_plans[8] of the header printed by
 *    rust/src/bin/tree_header.rs): the tree the rewrite must produce. Each
 *    leaf is a plain bpf_tail_call(); the compares leave R3 constant there,
 *    so the verifier makes it a direct (poked) tail call on any kernel.
 *
 * The two programs are the same instructions but for the site:
 *
 *	r6 = r1
 *	r7 = &key_map[0]	(ld_imm64, BPF_PSEUDO_MAP_VALUE)
 *	w3 = *(u32 *)(r7 + 0)
 *	r1 = r6
 *	r2 = prog array	(8 slots, each the same target)
 *	<site>
 *	r0 = 1
 *	exit
 *
 * The key map is writable (not frozen, not BPF_F_RDONLY_PROG): the
 * verifier cannot read the key. Usage: tree_shape DIR. Writes DIR/var.bin
 * and DIR/tree.bin (the JITed images, for scripts/tree-shape.py) and runs
 * both programs for keys 0..9: keys 0..7 must return the target's value,
 * 8 and 9 fall through (1). Prints one line per check and
 * "tree_shape: N passed, M failed".
 *
 * Build: gcc ... -Iselftests -I<dir of the generated header>, the header
 * named bench_tail_call_tree.h (tree_header's output).
 */
#include "bpf_raw.h"
#include "tcc_check.h"
#include "bench_tail_call_tree.h"

#include <sys/stat.h>

#define SLOTS		8
#define TARGET_RET	42
#define FELL		1
#define JGE32_IMM(d, i, o) INSN(BPF_JMP32 | BPF_JGE | BPF_K, d, 0, o, i)
#define JA(o)		INSN(BPF_JMP | BPF_JA, 0, 0, o, 0)
#define LD_MAP_VALUE(d, fd, o) \
	INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_VALUE, 0, fd), \
	INSN(0, 0, 0, 0, o)

static char log_buf[1 << 20];

static int key_map_create(void)
{
	union bpf_attr a = {
		.map_type = BPF_MAP_TYPE_ARRAY,
		.key_size = 4, .value_size = 4, .max_entries = 1,
	};

	return sys_bpf(BPF_MAP_CREATE, &a);
}

/* Append the generated plan for @n slots; -1 on a bad plan. */
static int emit_plan(struct bpf_insn *insn, size_t *len, size_t cap, unsigned int n)
{
	const struct tc_tree_plan *plan = &tc_tree_plans[n];

	for (__u32 i = 0; i < plan->len; i++) {
		const struct tc_tree_op *op = &plan->op[i];

		if (*len >= cap)
			return -1;
		switch (op->kind) {
		case TC_TREE_JGE:
			insn[(*len)++] = JGE32_IMM(BPF_REG_3, op->imm, op->off);
			break;
		case TC_TREE_CALL:
			insn[(*len)++] = CALL(BPF_FUNC_tail_call);
			break;
		case TC_TREE_JA:
			insn[(*len)++] = JA(op->off);
			break;
		default:
			fprintf(stderr, "tree_shape: bad plan entry %u\n", i);
			return -1;
		}
	}
	return 0;
}

/* The caller: the site is one tail call (tree = 0) or the plan for SLOTS. */
static int caller(int key_map, int array, int tree)
{
	struct bpf_insn insn[64] = {
		MOV64_REG(BPF_REG_6, BPF_REG_1),
		LD_MAP_VALUE(BPF_REG_7, key_map, 0),
		LDX_W(BPF_REG_3, BPF_REG_7, 0),
		MOV64_REG(BPF_REG_1, BPF_REG_6),
		LD_MAP(BPF_REG_2, array),
	};
	size_t n = 7;
	int fd;

	if (tree) {
		if (emit_plan(insn, &n, ARRAY_SIZE(insn) - 2, SLOTS))
			return -1;
	} else {
		insn[n++] = CALL(BPF_FUNC_tail_call);
	}
	insn[n++] = MOV64_IMM(BPF_REG_0, FELL);
	insn[n++] = EXIT();
	fd = prog_load_ex(BPF_PROG_TYPE_SOCKET_FILTER, 0, insn, n, log_buf, sizeof(log_buf));
	if (fd < 0)
		fprintf(stderr, "tree_shape: loading the %s program: %s\n%s\n",
			tree ? "tree" : "var", strerror(errno), log_buf);
	return fd;
}

/* Write the JITed image of @prog to DIR/NAME.bin; 0 or -1. */
static int save_image(const char *dir, const char *name, int prog)
{
	static unsigned char img[16384];
	size_t n = jited_image(prog, img, sizeof(img));
	char path[4096];
	FILE *f;

	if (!n)
		return -1;
	snprintf(path, sizeof(path), "%s/%s.bin", dir, name);
	f = fopen(path, "w");
	if (!f)
		return -1;
	if (fwrite(img, 1, n, f) != n) {
		fclose(f);
		return -1;
	}
	if (fclose(f))
		return -1;
	printf("note: %s: %zu bytes of JITed image\n", path, n);
	return 0;
}

/* Run @prog with the key map's value @key. */
static long run_key(int prog, int key_map, unsigned int key)
{
	unsigned int zero = 0;
	union bpf_attr a = {
		.map_fd = key_map, .key = (uintptr_t)&zero, .value = (uintptr_t)&key,
	};

	if (sys_bpf(BPF_MAP_UPDATE_ELEM, &a))
		return -errno;
	return run(prog, 0, 0);
}

int main(int argc, char **argv)
{
	static const char *const name[2] = { "var", "tree" };
	int array, key_map, t, prog[2] = { -1, -1 };
	struct stat st;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 2 || stat(argv[1], &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "usage: tree_shape DIR (an existing directory)\n");
		return 2;
	}
	if (jit_harden_get() > 0)
		printf("note: %s is %d: blinded programs have no direct tail calls\n",
		       JIT_HARDEN_PATH, jit_harden_get());
	array = prog_array_create(SLOTS);
	key_map = key_map_create();
	t = target(TARGET_RET);
	check(array >= 0 && key_map >= 0 && t >= 0, "setup: prog array of %d, key map, target",
	      SLOTS);
	if (array < 0 || key_map < 0 || t < 0)
		goto out;
	for (unsigned int k = 0; k < SLOTS; k++)
		if (map_update(array, k, t)) {
			check(0, "fill slot %u: %s", k, strerror(errno));
			goto out;
		}
	for (int i = 0; i < 2; i++) {
		prog[i] = caller(key_map, array, i);
		check(prog[i] >= 0, "%s: load", name[i]);
		if (prog[i] < 0)
			continue;
		check(!save_image(argv[1], name[i], prog[i]), "%s: JITed image written to %s/%s.bin",
		      name[i], argv[1], name[i]);
	}
	for (int i = 0; i < 2; i++) {
		int bad = 0;

		if (prog[i] < 0)
			continue;
		for (unsigned int k = 0; k < SLOTS + 2; k++) {
			long want = k < SLOTS ? TARGET_RET : FELL, got = run_key(prog[i], key_map, k);

			if (got != want) {
				printf("  %s: key %u: got %ld, want %ld\n", name[i], k, got, want);
				bad++;
			}
		}
		check(!bad, "%s: keys 0..%d return %d, keys %d and %d fall through (%d)", name[i],
		      SLOTS - 1, TARGET_RET, SLOTS, SLOTS + 1, FELL);
	}
out:
	for (int i = 0; i < 2; i++)
		if (prog[i] >= 0)
			close(prog[i]);
	if (t >= 0)
		close(t);
	if (key_map >= 0)
		close(key_map);
	if (array >= 0)
		close(array);
	printf("tree_shape: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

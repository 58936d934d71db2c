/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A minimal reader of the running kernel's BTF (/sys/kernel/btf/vmlinux),
 * without libbpf: struct member offsets for the project's user-space
 * tests (selftests/tailcall_cache.c) and the harness calibration
 * (selftests/bench/calibrate.c). Needs <linux/btf.h>, <stdint.h>,
 * <stdio.h>, <stdlib.h> and <string.h>.
 */
#ifndef BTF_RAW_H
#define BTF_RAW_H

struct btf_blob {
	unsigned char *data;
	const struct btf_type **types;	/* by type id; [0] is void */
	unsigned int ntypes;
	const char *strs;
	uint32_t str_len;
};

/* Bytes that follow a struct btf_type of this kind; -1 for an unknown kind. */
static inline long btf_extra(unsigned int kind, unsigned int vlen)
{
	switch (kind) {
	case BTF_KIND_INT:
	case BTF_KIND_VAR:
	case BTF_KIND_DECL_TAG:
		return 4;
	case BTF_KIND_PTR:
	case BTF_KIND_FWD:
	case BTF_KIND_TYPEDEF:
	case BTF_KIND_VOLATILE:
	case BTF_KIND_CONST:
	case BTF_KIND_RESTRICT:
	case BTF_KIND_FUNC:
	case BTF_KIND_FLOAT:
	case BTF_KIND_TYPE_TAG:
		return 0;
	case BTF_KIND_ARRAY:
		return sizeof(struct btf_array);
	case BTF_KIND_STRUCT:
	case BTF_KIND_UNION:
		return (long)vlen * sizeof(struct btf_member);
	case BTF_KIND_ENUM:
		return (long)vlen * sizeof(struct btf_enum);
	case BTF_KIND_FUNC_PROTO:
		return (long)vlen * sizeof(struct btf_param);
	case BTF_KIND_DATASEC:
		return (long)vlen * sizeof(struct btf_var_secinfo);
	case BTF_KIND_ENUM64:
		return (long)vlen * sizeof(struct btf_enum64);
	default:
		return -1;
	}
}

/* Read and index /sys/kernel/btf/vmlinux; 0, or -1 with *why set. */
static inline int btf_load(struct btf_blob *b, const char **why)
{
	const struct btf_header *h;
	const unsigned char *p, *end;
	size_t len = 0, cap = 1 << 20, got;
	unsigned int cap_t = 1 << 16;
	FILE *f = fopen("/sys/kernel/btf/vmlinux", "rb");

	memset(b, 0, sizeof(*b));
	if (!f) {
		*why = "no /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF off?)";
		return -1;
	}
	b->data = malloc(cap);
	while (b->data && (got = fread(b->data + len, 1, cap - len, f)) > 0) {
		len += got;
		if (len == cap) {
			unsigned char *more = realloc(b->data, cap *= 2);

			if (!more) {
				fclose(f);
				*why = "out of memory";
				return -1;	/* the caller frees b->data */
			}
			b->data = more;
		}
	}
	fclose(f);
	if (!b->data) {
		*why = "out of memory";
		return -1;
	}
	h = (const struct btf_header *)b->data;
	if (len < sizeof(*h) || h->magic != BTF_MAGIC || h->hdr_len < sizeof(*h) ||
	    (uint64_t)h->hdr_len + h->type_off + h->type_len > len ||
	    (uint64_t)h->hdr_len + h->str_off + h->str_len > len || !h->str_len) {
		*why = "not a BTF blob";
		return -1;
	}
	b->strs = (const char *)b->data + h->hdr_len + h->str_off;
	b->str_len = h->str_len;
	p = b->data + h->hdr_len + h->type_off;
	end = p + h->type_len;
	b->types = malloc(cap_t * sizeof(*b->types));
	b->ntypes = 0;
	while (b->types && p < end) {
		const struct btf_type *t = (const struct btf_type *)p;
		long extra;

		if (p + sizeof(*t) > end) {
			*why = "truncated type";
			return -1;
		}
		extra = btf_extra(BTF_INFO_KIND(t->info), BTF_INFO_VLEN(t->info));
		if (extra < 0 || p + sizeof(*t) + extra > end) {
			*why = extra < 0 ? "unknown BTF kind" : "truncated type";
			return -1;
		}
		if (++b->ntypes == cap_t) {
			const struct btf_type **more = realloc(b->types, (cap_t *= 2) * sizeof(*more));

			if (!more) {
				*why = "out of memory";
				return -1;	/* the caller frees b->types */
			}
			b->types = more;
		}
		b->types[b->ntypes] = t;
		p += sizeof(*t) + extra;
	}
	if (!b->types) {
		*why = "out of memory";
		return -1;
	}
	return 0;
}

static inline const char *btf_name(const struct btf_blob *b, uint32_t off)
{
	return off < b->str_len ? b->strs + off : "";
}

/* The struct named @name (with members, not a forward declaration); 0 if none. */
static inline uint32_t btf_struct(const struct btf_blob *b, const char *name)
{
	for (uint32_t id = 1; id <= b->ntypes; id++) {
		const struct btf_type *t = b->types[id];

		if (BTF_INFO_KIND(t->info) == BTF_KIND_STRUCT && BTF_INFO_VLEN(t->info) &&
		    !strcmp(btf_name(b, t->name_off), name))
			return id;
	}
	return 0;
}

/*
 * Bit offset of member @name of the struct or union @id, looking into its
 * anonymous struct and union members (bpf_array's ptrs sits in an
 * anonymous union); -1 if there is none.
 */
static inline long btf_member_bits(const struct btf_blob *b, uint32_t id, const char *name, int depth)
{
	const struct btf_type *t;
	const struct btf_member *m;
	unsigned int kind;

	/* typedef, const, volatile, restrict, type tag: the type they name */
	while (id && id <= b->ntypes && depth < 16) {
		kind = BTF_INFO_KIND(b->types[id]->info);
		if (kind != BTF_KIND_TYPEDEF && kind != BTF_KIND_CONST && kind != BTF_KIND_VOLATILE &&
		    kind != BTF_KIND_RESTRICT && kind != BTF_KIND_TYPE_TAG)
			break;
		id = b->types[id]->type;
		depth++;
	}
	if (!id || id > b->ntypes || depth >= 16)
		return -1;
	t = b->types[id];
	kind = BTF_INFO_KIND(t->info);
	if (kind != BTF_KIND_STRUCT && kind != BTF_KIND_UNION)
		return -1;
	m = (const struct btf_member *)(t + 1);
	for (unsigned int i = 0; i < BTF_INFO_VLEN(t->info); i++) {
		long off = BTF_INFO_KFLAG(t->info) ? BTF_MEMBER_BIT_OFFSET(m[i].offset) : m[i].offset;

		if (!m[i].name_off) {
			long sub = btf_member_bits(b, m[i].type, name, depth + 1);

			if (sub >= 0)
				return off + sub;
		} else if (!strcmp(btf_name(b, m[i].name_off), name)) {
			return off;
		}
	}
	return -1;
}

/* Byte offset of @member in struct @sname; -1 if absent or not byte aligned. */
static inline long btf_offsetof(const struct btf_blob *b, const char *sname, const char *member)
{
	uint32_t id = btf_struct(b, sname);
	long bits = id ? btf_member_bits(b, id, member, 0) : -1;

	return bits >= 0 && bits % 8 == 0 ? bits / 8 : -1;
}

#endif /* BTF_RAW_H */

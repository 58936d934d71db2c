/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One line per check ("ok: ..." or "FAIL: ..."), counted for the
 * "<test>: N passed, M failed" line the host parses. Shared by
 * tailcall_cache.c, tailcall_fault.c and tailcall_badinput.c.
 */
#ifndef TCC_CHECK_H
#define TCC_CHECK_H

#include <stdarg.h>
#include <stdio.h>

static int passed, failed;

__attribute__((format(printf, 2, 3)))
static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s: ", ok ? "ok" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (ok)
		passed++;
	else
		failed++;
}

#endif /* TCC_CHECK_H */

/*
 * What every unit test includes first: common.h (feature macros, banned functions),
 * cmocka with the headers it needs before it, and the few helpers more than one test
 * file uses. Each test includes the project headers it uses itself.
 */
#ifndef LB_UNIT_H
#define LB_UNIT_H

#include "common.h"

#include <setjmp.h>
#include <time.h>

#include <cmocka.h>

#include "xalloc.h"

/* Fail with both strings shown when `hay` does not contain `needle`. */
#define assert_contains(hay, needle)                                    \
	do {                                                            \
		const char *h_ = (hay), *n_ = (needle);                 \
		if (!strstr(h_, n_))                                    \
			fail_msg("'%s' does not contain '%s'", h_, n_); \
	} while (0)

#define assert_not_contains(hay, needle)                                \
	do {                                                            \
		const char *h_ = (hay), *n_ = (needle);                 \
		if (strstr(h_, n_))                                     \
			fail_msg("'%s' must not contain '%s'", h_, n_); \
	} while (0)

/* A string of `n` copies of `c` (caller frees). */
static inline char *repeat(char c, size_t n)
{
	char *s = xmalloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* Switch the process to time zone `tz` ("UTC", "Europe/Berlin", ...). */
static inline void set_tz(const char *tz)
{
	assert_int_equal(setenv("TZ", tz, 1), 0);
	tzset();
}

#endif

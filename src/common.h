/* Project-wide includes, attributes and the list of functions we never call. */
#ifndef LB_COMMON_H
#define LB_COMMON_H

#define _GNU_SOURCE 1

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define LB_VERSION "0.1.0"

#define LB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define LB_NORETURN	__attribute__((noreturn))
#define LB_UNUSED	__attribute__((unused))
#define LB_CLEANUP(f)	__attribute__((cleanup(f)))
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* Hand ownership of a pointer out of a cleanup-managed variable. */
#define TAKE_PTR(p)                                \
	({                                         \
		__typeof__(p) take_ptr_tmp_ = (p); \
		(p) = NULL;                        \
		take_ptr_tmp_;                     \
	})

/* Unsafe or non-reentrant functions: use the bounded/reentrant variants. */
#ifndef LB_ALLOW_BANNED
#undef strcpy
#define strcpy(...) lb_banned_strcpy
#undef strcat
#define strcat(...) lb_banned_strcat
#undef strncpy
#define strncpy(...) lb_banned_strncpy
#undef sprintf
#define sprintf(...) lb_banned_sprintf
#undef strtok
#define strtok(...) lb_banned_strtok
#undef atoi
#define atoi(...) lb_banned_atoi
#undef gmtime
#define gmtime(...) lb_banned_gmtime
#undef localtime
#define localtime(...) lb_banned_localtime
#undef mktemp
#define mktemp(...) lb_banned_mktemp
#endif

#endif

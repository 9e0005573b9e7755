/* Allocation that aborts on OOM: x-allocators, ALLOC_GROW, string copies, auto_free. */
#ifndef LB_XALLOC_H
#define LB_XALLOC_H

#include "common.h"

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* xrealloc of `nr` elements of `size` bytes; aborts on overflow as on OOM. */
void *xreallocarray(void *p, size_t nr, size_t size);

/* Grow array `x`, of `alloc` elements, to hold at least `nr` (by half again: amortised). */
#define ALLOC_GROW(x, nr, alloc)                                           \
	do {                                                               \
		if ((nr) > (alloc)) {                                      \
			(alloc) = (alloc) < 8 ? 8 : (alloc) + (alloc) / 2; \
			if ((alloc) < (nr))                                \
				(alloc) = (nr);                            \
			(x) = xreallocarray((x), (alloc), sizeof(*(x)));   \
		}                                                          \
	} while (0)
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) LB_PRINTF(1, 2);
static inline void freep(void *p)
{
	free(*(void **)p);
}
#define auto_free LB_CLEANUP(freep)

#endif

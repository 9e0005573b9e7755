/* Growable byte buffers, always NUL-terminated, optionally capped; auto_strbuf. */
#ifndef LB_STRBUF_H
#define LB_STRBUF_H

#include "common.h"

/*
 * A growable buffer, always NUL-terminated and never NULL after init.
 * `cap_max` (0 = none) bounds how large it may grow: appends past it are
 * truncated and set `overflowed`, for data a remote side controls.
 */
struct strbuf {
	char *buf;
	size_t len;
	size_t alloc;
	size_t cap_max;
	bool overflowed;
};
extern char strbuf_empty_[];
#define STRBUF_INIT                  \
	{                            \
		.buf = strbuf_empty_ \
	}

void strbuf_init(struct strbuf *sb, size_t hint);
void strbuf_release(struct strbuf *sb);
void strbuf_reset(struct strbuf *sb);
void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_addstr(struct strbuf *sb, const char *s);
void strbuf_addch(struct strbuf *sb, char c);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...) LB_PRINTF(2, 3);
void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap) LB_PRINTF(2, 0);
/* Keep only the last `keep` bytes (a log tail). */
void strbuf_keep_tail(struct strbuf *sb, size_t keep);
/* Remove trailing whitespace. */
void strbuf_rtrim(struct strbuf *sb);
/* Take ownership of the buffer; `sb` is re-initialised. */
char *strbuf_detach(struct strbuf *sb, size_t *ret_len);
/* Overwrite the content with zeros (for secrets) and release. */
void strbuf_release_secret(struct strbuf *sb);
static inline void strbuf_releasep(struct strbuf *sb)
{
	strbuf_release(sb);
}
#define auto_strbuf LB_CLEANUP(strbuf_releasep)

#endif

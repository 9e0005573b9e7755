/* Allocation that aborts on OOM, growable byte buffers, argv vectors, fd helpers. */
#ifndef LB_UTIL_H
#define LB_UTIL_H

#include "common.h"

#include "parse.h"

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

/* A NULL-terminated vector of owned strings (argv, envp). */
struct strvec {
	char **v;
	size_t nr;
	size_t alloc;
};
extern char *strvec_empty_[];
#define STRVEC_INIT                \
	{                          \
		.v = strvec_empty_ \
	}
void strvec_push(struct strvec *sv, const char *s);
void strvec_pushf(struct strvec *sv, const char *fmt, ...) LB_PRINTF(2, 3);
void strvec_release(struct strvec *sv);

/* Read a whole small file (at most `max` bytes) into `sb`; 0 or -errno. */
int read_file_capped(const char *path, size_t max, struct strbuf *sb);
/* write() all of buf, retrying on EINTR; 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);
/* read() up to len bytes, retrying on EINTR; bytes read or -errno. */
ssize_t read_retry(int fd, void *buf, size_t len);
/* Close an fd if it is >= 0 and set it to -1, keeping errno. */
void close_fd(int *fd);
/* fsync a directory by path; 0 or -errno. */
int fsync_dir(const char *dir);
/*
 * Replace `path` with `len` bytes atomically: PATH.PID.tmp (mode `mode`), write, fsync,
 * rename over `path`, fsync the directory. 0, or -errno with the temp file removed and
 * `path` as it was (only a failed directory fsync comes after the replacement). A
 * crash leaves the old file or the new one, never a mix.
 */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Remove a tree like `rm -rf`, never following symlinks; 0 or -errno. */
int remove_tree(const char *path);
/* Human-readable byte size into buf ("1.5 GiB"). */
const char *format_size(uint64_t bytes, char *buf, size_t len);
/* Is `s` valid UTF-8 (no overlongs, no surrogates)? */
bool utf8_valid(const char *s);
static inline void freep(void *p)
{
	free(*(void **)p);
}
static inline void closep(int *fd)
{
	close_fd(fd);
}
static inline void strbuf_releasep(struct strbuf *sb)
{
	strbuf_release(sb);
}
#define auto_free   LB_CLEANUP(freep)
#define auto_close  LB_CLEANUP(closep)
#define auto_strbuf LB_CLEANUP(strbuf_releasep)

#endif

/* The tar writer: libarchive's pax format over our own write callback, hashing every member. */
#include "common.h"

#include <archive.h>
#include <archive_entry.h>
#include <time.h>

#include "hash.h"
#include "log.h"
#include "manifest.h"
#include "signals.h"
#include "stream/tar-writer.h"

#define CHUNK (256 * 1024)

/*
 * libarchive's write callback. It never reports failure to libarchive: a failed
 * archive cannot be closed cleanly (its filter state would leak), so after the
 * first error it records the cause in w->err and discards the rest; every
 * caller checks w->err after each libarchive call. The bytes go to the
 * compressor's queue (no copy beyond that), whose errors surface on a later write.
 */
static la_ssize_t archive_out(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct tar_writer *w = ctx;

	(void)a;
	if (w->discard || err_isset(&w->err))
		return (la_ssize_t)len;
	w->out(w->ctx, buf, len, &w->err);
	return (la_ssize_t)len;
}

static int tarw_fail(struct tar_writer *w, const char *what, struct err *e)
{
	if (err_isset(&w->err))
		return err_set(e, w->err.code, "%s", w->err.msg);
	return err_set(e, LB_EXIT_INTERNAL, "cannot write %s to the archive: %s", what,
		       archive_error_string(w->a) ? archive_error_string(w->a) : "unknown error");
}

static int interrupted(struct err *e)
{
	return err_set(e, LB_EXIT_INTERRUPTED, "interrupted by signal %d", signals_pending());
}

int tarw_open(struct tar_writer *w, stream_out_fn out, void *ctx, struct err *e)
{
	w->out = out;
	w->ctx = ctx;
	w->buf = xmalloc(CHUNK);
	w->a = archive_write_new();
	if (archive_write_set_format_pax(w->a) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(w->a, 1) != ARCHIVE_OK ||
	    archive_write_open2(w->a, w, NULL, archive_out, NULL, NULL) != ARCHIVE_OK)
		return tarw_fail(w, "the header", e);
	return 0;
}

static void add_sum(struct tar_writer *w, struct sha256 *h, const char *apath)
{
	char hex[SHA256_HEX_LEN + 1];

	sha256_final_hex(h, hex);
	sums_add(&w->sums, hex, apath);
}

/* Copy an open regular file's first `size` bytes into the archive, hashing them. */
static int copy_data(struct tar_writer *w, int fd, const char *src, const char *apath, int64_t size,
		     struct err *e)
{
	struct sha256 h;
	int64_t pos = 0;
	bool shrank = false;

	sha256_init(&h);
	while (pos < size) {
		size_t want = size - pos > CHUNK ? CHUNK : (size_t)(size - pos);
		ssize_t n = shrank ? 0 : read_retry(fd, w->buf, want);
		if (n < 0) {
			sha256_release(&h);
			return err_set(e, LB_EXIT_SOURCE, "cannot read '%s': %s", src,
				       strerror((int)-n));
		}
		if (n == 0) {
			/* The file shrank while we read it: the header promised `size` bytes. */
			if (!shrank)
				log_warn("'%s' shrank while being read; padded with zeros", src);
			shrank = true;
			memset(w->buf, 0, want);
			n = (ssize_t)want;
		}
		if (archive_write_data(w->a, w->buf, (size_t)n) != n || err_isset(&w->err)) {
			sha256_release(&h);
			return tarw_fail(w, src, e);
		}
		sha256_update(&h, w->buf, (size_t)n);
		pos += n;
		if (signals_pending()) {
			sha256_release(&h);
			return interrupted(e);
		}
	}
	add_sum(w, &h, apath);
	w->files++;
	w->bytes += (uint64_t)size;
	return 0;
}

int tarw_add_entry(struct tar_writer *w, const char *src, const char *apath, const struct stat *st,
		   const char *link_target, int fd, struct err *e)
{
	struct archive_entry *ent = archive_entry_new();
	int ret = 0;

	archive_entry_copy_stat(ent, st);
	archive_entry_set_pathname(ent, apath);
	if (link_target)
		archive_entry_set_symlink(ent, link_target);
	if (!S_ISREG(st->st_mode))
		archive_entry_set_size(ent, 0);
	int r = archive_write_header(w->a, ent);
	if (r == ARCHIVE_WARN) {
		/* A name that is not UTF-8 is stored as raw bytes (pax hdrcharset=BINARY). */
		log_warn("'%s': %s", src, archive_error_string(w->a));
	} else if (r != ARCHIVE_OK || err_isset(&w->err)) {
		ret = tarw_fail(w, src, e);
		goto out;
	}
	if (S_ISREG(st->st_mode) && copy_data(w, fd, src, apath, st->st_size, e) < 0) {
		ret = -1;
		goto out;
	}
	if (archive_write_finish_entry(w->a) != ARCHIVE_OK || err_isset(&w->err))
		ret = tarw_fail(w, src, e);
out:
	archive_entry_free(ent);
	return ret;
}

int tarw_add_blob(struct tar_writer *w, const char *apath, const void *data, size_t len,
		  unsigned flags, struct err *e)
{
	struct archive_entry *ent = archive_entry_new();
	int ret = 0;

	archive_entry_set_pathname(ent, apath);
	archive_entry_set_filetype(ent, AE_IFREG);
	archive_entry_set_perm(ent, 0600);
	archive_entry_set_size(ent, (la_int64_t)len);
	archive_entry_set_mtime(ent, time(NULL), 0);
	if (archive_write_header(w->a, ent) != ARCHIVE_OK || err_isset(&w->err) ||
	    (len && archive_write_data(w->a, data, len) != (la_ssize_t)len) || err_isset(&w->err) ||
	    archive_write_finish_entry(w->a) != ARCHIVE_OK || err_isset(&w->err))
		ret = tarw_fail(w, apath, e);
	archive_entry_free(ent);
	if (ret)
		return ret;
	if (flags & TARW_HASH) {
		struct sha256 h;
		sha256_init(&h);
		sha256_update(&h, data, len);
		add_sum(w, &h, apath);
	}
	if (!(flags & TARW_COUNT))
		return 0;
	w->files++;
	w->bytes += len;
	return signals_pending() ? interrupted(e) : 0;
}

int tarw_close(struct tar_writer *w, struct err *e)
{
	if (archive_write_close(w->a) != ARCHIVE_OK || err_isset(&w->err))
		return tarw_fail(w, "the end of the archive", e);
	return 0;
}

void tarw_release(struct tar_writer *w, bool failed)
{
	if (w->a) {
		/* On failure, closing only flushes into the discarding callback. */
		w->discard = failed;
		archive_write_free(w->a);
		w->a = NULL;
	}
	strbuf_release(&w->sums);
	free(w->buf);
	w->buf = NULL;
}

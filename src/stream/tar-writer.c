/* The tar writer: libarchive's pax format over our own write callback, hashing every member. */
#include "common.h"

#include <archive.h>
#include <archive_entry.h>
#include <time.h>

#include "fault.h"
#include "fs.h"
#include "hash.h"
#include "manifest.h"
#include "progress.h"
#include "signals.h"
#include "strbuf.h"
#include "stream/tar-writer.h"
#include "xalloc.h"

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
		return err_copy(e, &w->err);
	return err_set(e, LB_EXIT_INTERNAL, "cannot write %s to the archive: %s", what,
		       archive_error_string(w->a) ? archive_error_string(w->a) : "unknown error");
}

static bool all_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/*
 * Does an entry named `path` (a symlink to `link` when given) read back from
 * this process's tar reader under exactly these bytes? libarchive's reader
 * converts pax UTF-8 names to Unicode NFC, so a decomposed name (as macOS
 * writes them) would come back as another name; a name in a header marked
 * hdrcharset=BINARY (`binary`) comes back as it is. Tried for real, in memory;
 * a name the writer cannot convert to UTF-8 (not UTF-8 at all) fails here too.
 */
static bool name_reads_back(const char *path, const char *link, bool binary)
{
	size_t cap = 2 * (strlen(path) + (link ? strlen(link) : 0)) + 16384, used = 0;
	char *buf = xmalloc(cap);
	struct archive *a = archive_write_new();
	struct archive *r = NULL;
	struct archive_entry *ent = archive_entry_new(), *got;
	bool same = false;

	if (FAULT("backup.name_reads_back"))
		goto out; /* as if the name had come back as other bytes */
	archive_entry_set_pathname(ent, path);
	archive_entry_set_filetype(ent, link ? AE_IFLNK : AE_IFREG);
	archive_entry_set_perm(ent, 0600);
	archive_entry_set_size(ent, 0);
	if (link)
		archive_entry_set_symlink(ent, link);
	if (archive_write_set_format_pax(a) != ARCHIVE_OK ||
	    (binary &&
	     archive_write_set_format_option(a, "pax", "hdrcharset", "BINARY") != ARCHIVE_OK) ||
	    archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
	    archive_write_open_memory(a, buf, cap, &used) != ARCHIVE_OK ||
	    archive_write_header(a, ent) != ARCHIVE_OK || archive_write_close(a) != ARCHIVE_OK)
		goto out;
	r = archive_read_new();
	archive_read_support_format_tar(r);
	if (archive_read_open_memory(r, buf, used) != ARCHIVE_OK ||
	    archive_read_next_header(r, &got) < ARCHIVE_WARN)
		goto out;
	const char *gp = archive_entry_pathname(got), *gl = archive_entry_symlink(got);
	same = gp && !strcmp(gp, path) && (!link || (gl && !strcmp(gl, link)));
out:
	if (r)
		archive_read_free(r);
	archive_write_free(a);
	archive_entry_free(ent);
	free(buf);
	return same;
}

/* libarchive's callback for a private entry writer: its end-of-archive marker is dropped. */
static la_ssize_t raw_out(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct tar_writer *w = ctx;

	if (w->raw_drop)
		return (la_ssize_t)len;
	return archive_out(a, ctx, buf, len);
}

/* A failed libarchive call on `a` for `what`: the output's error first, else libarchive's. */
static int entry_fail(struct tar_writer *w, struct archive *a, const char *what, struct err *e)
{
	if (err_isset(&w->err))
		return err_copy(e, &w->err);
	return err_set(e, LB_EXIT_INTERNAL, "cannot write '%s' to the archive: %s", what,
		       archive_error_string(a) ? archive_error_string(a) : "unknown error");
}

static int end_entry(struct tar_writer *w, struct archive *a, bool ok, const char *src,
		     struct err *e);

/*
 * Write the header of `ent` and return the writer its data and end go to: the
 * archive's own, or, for a name that would not read back as the same bytes in
 * UTF-8, a private pax writer whose headers say hdrcharset=BINARY and whose
 * output joins the same stream (the archive's writer is unbuffered, so the
 * entry lands between its neighbours). A name that cannot be stored exactly
 * either way fails the run: an archive must restore what it claims to hold.
 */
static int begin_entry(struct tar_writer *w, struct archive_entry *ent, const char *src,
		       struct archive **ret_a, struct err *e)
{
	const char *path = archive_entry_pathname(ent), *link = archive_entry_symlink(ent);
	struct archive *a = w->a;

	if ((!all_ascii(path) || (link && !all_ascii(link))) &&
	    !name_reads_back(path, link, false)) {
		if (!name_reads_back(path, link, true))
			return err_set(e, LB_EXIT_SOURCE,
				       "cannot store the name of '%s' exactly in the archive: "
				       "it would not restore under the same name",
				       src);
		a = archive_write_new();
		w->raw_drop = false;
		if (archive_write_set_format_pax(a) != ARCHIVE_OK ||
		    archive_write_set_format_option(a, "pax", "hdrcharset", "BINARY") !=
			    ARCHIVE_OK ||
		    archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
		    archive_write_open2(a, w, NULL, raw_out, NULL, NULL) != ARCHIVE_OK) {
			int r = entry_fail(w, a, src, e);
			w->raw_drop = true;
			archive_write_free(a);
			return r;
		}
	}
	*ret_a = a;
	if (archive_write_header(a, ent) != ARCHIVE_OK || err_isset(&w->err)) {
		int r = entry_fail(w, a, src, e);
		end_entry(w, a, false, src, NULL);
		return r;
	}
	return 0;
}

/* Finish the entry `begin_entry` started (when `ok`), and close a private writer. */
static int end_entry(struct tar_writer *w, struct archive *a, bool ok, const char *src,
		     struct err *e)
{
	int ret = 0;

	if (ok && (archive_write_finish_entry(a) != ARCHIVE_OK || err_isset(&w->err)))
		ret = entry_fail(w, a, src, e);
	if (a != w->a) {
		/* Nothing after the entry's padding: the stream goes on in the archive's writer. */
		w->raw_drop = true;
		archive_write_free(a);
		w->raw_drop = false;
	}
	return ret;
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
	/* Unbuffered, so an entry from a private writer (begin_entry) can join the stream. */
	if (archive_write_set_format_pax(w->a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(w->a, 0) != ARCHIVE_OK ||
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
static int copy_data(struct tar_writer *w, struct archive *a, int fd, const char *src,
		     const char *apath, int64_t size, struct err *e)
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
				report(w->report, LOG_WARN,
				       "'%s' shrank while being read; padded with zeros", src);
			shrank = true;
			memset(w->buf, 0, want);
			n = (ssize_t)want;
		}
		if (archive_write_data(a, w->buf, (size_t)n) != n || err_isset(&w->err)) {
			sha256_release(&h);
			return entry_fail(w, a, src, e);
		}
		sha256_update(&h, w->buf, (size_t)n);
		pos += n;
		progress_add((uint64_t)n);
		if (signals_pending()) {
			sha256_release(&h);
			return interrupted(e);
		}
	}
	add_sum(w, &h, apath);
	w->files++;
	w->bytes += (uint64_t)size;
	progress_file();
	return 0;
}

int tarw_add_entry(struct tar_writer *w, const char *src, const char *apath, const struct stat *st,
		   const char *link_target, int fd, struct err *e)
{
	struct archive_entry *ent = archive_entry_new();
	struct archive *a;
	int ret = 0;

	archive_entry_copy_stat(ent, st);
	/*
	 * Only what a restore sets, in the plain ustar header where it fits: no atime,
	 * ctime or birth time (a restore cannot set a ctime, and an atime it would set
	 * is stale by then), and the mtime in whole seconds, as GNU tar's and offen's
	 * default formats keep it. A sub-second part would cost a pax header (1 KiB
	 * before compression) for almost every file; an entry now gets one only when
	 * its name, link, size or ids do not fit ustar.
	 */
	archive_entry_unset_atime(ent);
	archive_entry_unset_ctime(ent);
	archive_entry_unset_birthtime(ent);
	archive_entry_set_mtime(ent, st->st_mtime, 0);
	archive_entry_set_pathname(ent, apath);
	if (link_target)
		archive_entry_set_symlink(ent, link_target);
	if (!S_ISREG(st->st_mode))
		archive_entry_set_size(ent, 0);
	if (begin_entry(w, ent, src, &a, e) < 0) {
		ret = -1;
		goto out;
	}
	if (S_ISREG(st->st_mode) && copy_data(w, a, fd, src, apath, st->st_size, e) < 0) {
		end_entry(w, a, false, src, NULL);
		ret = -1;
		goto out;
	}
	ret = end_entry(w, a, true, src, e);
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
	struct archive *a;
	if (begin_entry(w, ent, apath, &a, e) < 0) {
		ret = -1;
	} else if (len &&
		   (archive_write_data(a, data, len) != (la_ssize_t)len || err_isset(&w->err))) {
		ret = entry_fail(w, a, apath, e);
		end_entry(w, a, false, apath, NULL);
	} else {
		ret = end_entry(w, a, true, apath, e);
	}
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
	progress_add(len);
	progress_file();
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

/* The backup pipeline: tar from libarchive, compressed, into gpg; a pump thread fans out. */
#include "common.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "backup.h"
#include "compress.h"
#include "crypt.h"
#include "dbsource.h"
#include "fault.h"
#include "hash.h"
#include "log.h"
#include "manifest.h"
#include "pgzip.h"
#include "signals.h"
#include "sqlite.h"
#include "stores/store.h"
#include "zst.h"

#define CHUNK (256 * 1024)

struct dest {
	struct store *store;
	struct store_put put;
	bool open;
	bool failed;
	struct err err;
};

struct job {
	const struct config *cfg;
	bool *sqlite; /* per configured source: an SQLite database file */
	struct store_set stores;
	struct dest *dests; /* one per store */
	size_t nr_dests;
	struct crypt crypt;
	bool encrypt;
	pthread_t pump;
	bool pump_running;
	struct err pump_err;
	struct archive *a;
	bool raw_drop;	     /* a private entry writer is closing: drop its end marker */
	struct pgzip *gz;    /* parallel gzip between libarchive and gpg, when gzip */
	struct zst *zs;	     /* libzstd with worker threads, when zstd */
	struct err arch_err; /* set by the write callback */
	bool discard;	     /* the run failed: drop further archive output */
	struct strbuf sums;
	uint64_t files, content_bytes;
	size_t cur_source;   /* index of the source being archived */
	uint64_t *src_files; /* per source */
	uint64_t *src_bytes;
	unsigned char *buf;
	const struct backup_hooks *hooks;
};

/* Write to every destination still healthy; fails only when none is left. */
static int fanout_write(struct job *j, const void *buf, size_t len, struct err *e)
{
	size_t healthy = 0;

	for (size_t i = 0; i < j->nr_dests; i++) {
		struct dest *d = &j->dests[i];
		if (d->failed)
			continue;
		if (d->store->ops->put_write(&d->put, buf, len, &d->err) < 0) {
			d->failed = true;
			continue;
		}
		healthy++;
	}
	if (!healthy) {
		for (size_t i = 0; i < j->nr_dests; i++)
			if (err_isset(&j->dests[i].err))
				return err_set(e, j->dests[i].err.code, "%s", j->dests[i].err.msg);
		return err_set(e, LB_EXIT_STORE, "no destination left to write to");
	}
	return 0;
}

/* Thread: gpg's stdout to the stores. Closing the pipe early makes gpg (and then us) stop. */
static void *pump_main(void *arg)
{
	struct job *j = arg;
	unsigned char *buf = xmalloc(CHUNK);

	for (;;) {
		ssize_t n = read_retry(j->crypt.gpg.out_fd, buf, CHUNK);
		if (n < 0) {
			err_set(&j->pump_err, LB_EXIT_CRYPTO, "cannot read from gpg: %s",
				strerror((int)-n));
			break;
		}
		if (n == 0)
			break;
		if (fanout_write(j, buf, (size_t)n, &j->pump_err) < 0)
			break;
	}
	if (err_isset(&j->pump_err))
		close_fd(&j->crypt.gpg.out_fd);
	free(buf);
	return NULL;
}

/* Compressed bytes to gpg's stdin, or straight to the stores when not encrypting. */
static int deliver(struct job *j, const void *buf, size_t len, struct err *e)
{
	if (signals_pending())
		return err_set(e, LB_EXIT_INTERRUPTED, "interrupted by signal %d",
			       signals_pending());
	if (j->encrypt) {
		int r = write_all(j->crypt.gpg.in_fd, buf, len);
		if (r < 0)
			return err_set(e, LB_EXIT_CRYPTO, "gpg stopped reading: %s", strerror(-r));
		return 0;
	}
	return fanout_write(j, buf, len, e);
}

/* pgzip's and zst's output callback, on their writer threads: reports through `e` only. */
static int gz_out(void *ctx, const void *buf, size_t len, struct err *e)
{
	return deliver(ctx, buf, len, e);
}

/*
 * libarchive's write callback. It never reports failure to libarchive: a failed
 * archive cannot be closed cleanly (its filter state would leak), so after the
 * first error it records the cause in arch_err and discards the rest; every
 * caller checks arch_err after each libarchive call. With gzip the bytes go to
 * pgzip's queue (no copy beyond that), whose errors surface on a later write.
 */
static la_ssize_t archive_out(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct job *j = ctx;

	(void)a;
	if (j->discard || err_isset(&j->arch_err))
		return (la_ssize_t)len;
	if (j->gz)
		pgzip_write(j->gz, buf, len, &j->arch_err);
	else if (j->zs)
		zst_write(j->zs, buf, len, &j->arch_err);
	else
		deliver(j, buf, len, &j->arch_err);
	return (la_ssize_t)len;
}

static int arch_fail(struct job *j, const char *what, struct err *e)
{
	if (err_isset(&j->arch_err))
		return err_set(e, j->arch_err.code, "%s", j->arch_err.msg);
	return err_set(e, LB_EXIT_INTERNAL, "cannot write %s to the archive: %s", what,
		       archive_error_string(j->a) ? archive_error_string(j->a) : "unknown error");
}

/* Write an in-memory file (manifest, sums) as a regular entry. */
static int add_buffer(struct job *j, const char *path, const struct strbuf *data, bool hashed,
		      struct err *e)
{
	struct archive_entry *ent = archive_entry_new();
	int ret = 0;

	archive_entry_set_pathname(ent, path);
	archive_entry_set_filetype(ent, AE_IFREG);
	archive_entry_set_perm(ent, 0600);
	archive_entry_set_size(ent, (la_int64_t)data->len);
	archive_entry_set_mtime(ent, time(NULL), 0);
	if (archive_write_header(j->a, ent) != ARCHIVE_OK ||
	    archive_write_data(j->a, data->buf, data->len) != (la_ssize_t)data->len ||
	    err_isset(&j->arch_err))
		ret = arch_fail(j, path, e);
	archive_entry_free(ent);
	if (!ret && hashed) {
		struct sha256 h;
		char hex[SHA256_HEX_LEN + 1];
		sha256_init(&h);
		sha256_update(&h, data->buf, data->len);
		sha256_final_hex(&h, hex);
		sums_add(&j->sums, hex, path);
	}
	return ret;
}

/* Copy an open regular file's first `size` bytes into the archive, hashing them. */
static int copy_data(struct job *j, struct archive *w, int fd, const char *src, const char *apath,
		     int64_t size, struct err *e)
{
	struct sha256 h;
	char hex[SHA256_HEX_LEN + 1];
	int64_t pos = 0;
	bool shrank = false;

	sha256_init(&h);
	while (pos < size) {
		size_t want = size - pos > CHUNK ? CHUNK : (size_t)(size - pos);
		ssize_t n = shrank ? 0 : read_retry(fd, j->buf, want);
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
			memset(j->buf, 0, want);
			n = (ssize_t)want;
		}
		if (archive_write_data(w, j->buf, (size_t)n) != n || err_isset(&j->arch_err)) {
			sha256_release(&h);
			if (!err_isset(&j->arch_err))
				return err_set(e, LB_EXIT_INTERNAL,
					       "cannot write '%s' to the archive: %s", src,
					       archive_error_string(w));
			return arch_fail(j, src, e);
		}
		sha256_update(&h, j->buf, (size_t)n);
		pos += n;
		if (signals_pending()) {
			sha256_release(&h);
			return err_set(e, LB_EXIT_INTERRUPTED, "interrupted by signal %d",
				       signals_pending());
		}
	}
	sha256_final_hex(&h, hex);
	sums_add(&j->sums, hex, apath);
	j->files++;
	j->content_bytes += (uint64_t)size;
	j->src_files[j->cur_source]++;
	j->src_bytes[j->cur_source] += (uint64_t)size;
	return 0;
}

static bool is_restore_leftover(const char *name)
{
	return !strncmp(name, ".lifeboat-restore.", 18) || !strncmp(name, ".lifeboat-old.", 14);
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
	struct archive *w = archive_write_new();
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
	if (archive_write_set_format_pax(w) != ARCHIVE_OK ||
	    (binary &&
	     archive_write_set_format_option(w, "pax", "hdrcharset", "BINARY") != ARCHIVE_OK) ||
	    archive_write_set_bytes_per_block(w, 0) != ARCHIVE_OK ||
	    archive_write_open_memory(w, buf, cap, &used) != ARCHIVE_OK ||
	    archive_write_header(w, ent) != ARCHIVE_OK || archive_write_close(w) != ARCHIVE_OK)
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
	archive_write_free(w);
	archive_entry_free(ent);
	free(buf);
	return same;
}

/* libarchive's callback for a private entry writer: its end-of-archive marker is dropped. */
static la_ssize_t raw_out(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct job *j = ctx;

	if (j->raw_drop)
		return (la_ssize_t)len;
	return archive_out(a, ctx, buf, len);
}

static int end_entry(struct job *j, struct archive *w, bool ok, const char *src, struct err *e);

/*
 * Write the header of `ent` and return the writer its data and end go to: the
 * archive's own, or, for a name that would not read back as the same bytes in
 * UTF-8, a private pax writer whose headers say hdrcharset=BINARY and whose
 * output joins the same stream (the archive's writer is unbuffered, so the
 * entry lands between its neighbours). A name that cannot be stored exactly
 * either way fails the run: an archive must restore what it claims to hold.
 */
static int begin_entry(struct job *j, struct archive_entry *ent, const char *src,
		       struct archive **ret_w, struct err *e)
{
	const char *path = archive_entry_pathname(ent), *link = archive_entry_symlink(ent);
	struct archive *w = j->a;

	if ((!all_ascii(path) || (link && !all_ascii(link))) &&
	    !name_reads_back(path, link, false)) {
		if (!name_reads_back(path, link, true))
			return err_set(e, LB_EXIT_SOURCE,
				       "cannot store the name of '%s' exactly in the archive: "
				       "it would not restore under the same name",
				       src);
		w = archive_write_new();
		j->raw_drop = false;
		if (archive_write_set_format_pax(w) != ARCHIVE_OK ||
		    archive_write_set_format_option(w, "pax", "hdrcharset", "BINARY") !=
			    ARCHIVE_OK ||
		    archive_write_set_bytes_per_block(w, 0) != ARCHIVE_OK ||
		    archive_write_open2(w, j, NULL, raw_out, NULL, NULL) != ARCHIVE_OK) {
			int r = err_set(e, LB_EXIT_INTERNAL, "cannot write '%s' to the archive: %s",
					src, archive_error_string(w));
			j->raw_drop = true;
			archive_write_free(w);
			return r;
		}
	}
	*ret_w = w;
	if (archive_write_header(w, ent) != ARCHIVE_OK || err_isset(&j->arch_err)) {
		int r = err_isset(&j->arch_err)
				? err_set(e, j->arch_err.code, "%s", j->arch_err.msg)
				: err_set(e, LB_EXIT_INTERNAL,
					  "cannot write '%s' to the archive: %s", src,
					  archive_error_string(w));
		end_entry(j, w, false, src, NULL);
		return r;
	}
	return 0;
}

/* Finish the entry `begin_entry` started (when `ok`), and close a private writer. */
static int end_entry(struct job *j, struct archive *w, bool ok, const char *src, struct err *e)
{
	int ret = 0;

	if (ok && (archive_write_finish_entry(w) != ARCHIVE_OK || err_isset(&j->arch_err)))
		ret = err_isset(&j->arch_err)
			      ? err_set(e, j->arch_err.code, "%s", j->arch_err.msg)
			      : err_set(e, LB_EXIT_INTERNAL, "cannot write '%s' to the archive: %s",
					src, archive_error_string(w));
	if (w != j->a) {
		/* Nothing after the entry's padding: the stream goes on in the archive's writer. */
		j->raw_drop = true;
		archive_write_free(w);
		j->raw_drop = false;
	}
	return ret;
}

/* Write one entry (and, for a regular file, its data from `fd`). */
static int add_entry(struct job *j, const char *src, const char *apath, const struct stat *st,
		     const char *link_target, int fd, struct err *e)
{
	struct archive_entry *ent = archive_entry_new();
	struct archive *w;
	int ret = 0;

	archive_entry_copy_stat(ent, st);
	archive_entry_set_pathname(ent, apath);
	if (link_target)
		archive_entry_set_symlink(ent, link_target);
	if (!S_ISREG(st->st_mode))
		archive_entry_set_size(ent, 0);
	if (begin_entry(j, ent, src, &w, e) < 0) {
		ret = -1;
		goto out;
	}
	if (S_ISREG(st->st_mode) && copy_data(j, w, fd, src, apath, st->st_size, e) < 0) {
		end_entry(j, w, false, src, NULL);
		ret = -1;
		goto out;
	}
	ret = end_entry(j, w, true, src, e);
out:
	archive_entry_free(ent);
	return ret;
}

/* A regular member from memory: header, data, hash, per-source counters. */
static int add_blob(struct job *j, const char *apath, const void *data, size_t len, struct err *e)
{
	struct archive_entry *ent = archive_entry_new();
	int ret = 0;

	archive_entry_set_pathname(ent, apath);
	archive_entry_set_filetype(ent, AE_IFREG);
	archive_entry_set_perm(ent, 0600);
	archive_entry_set_size(ent, (la_int64_t)len);
	archive_entry_set_mtime(ent, time(NULL), 0);
	struct archive *w;
	if (begin_entry(j, ent, apath, &w, e) < 0) {
		ret = -1;
	} else if (len && (archive_write_data(w, data, len) != (la_ssize_t)len ||
			   err_isset(&j->arch_err))) {
		ret = arch_fail(j, apath, e);
		end_entry(j, w, false, apath, NULL);
	} else {
		ret = end_entry(j, w, true, apath, e);
	}
	archive_entry_free(ent);
	if (ret)
		return ret;
	struct sha256 h;
	char hex[SHA256_HEX_LEN + 1];
	sha256_init(&h);
	sha256_update(&h, data, len);
	sha256_final_hex(&h, hex);
	sums_add(&j->sums, hex, apath);
	j->files++;
	j->content_bytes += len;
	j->src_files[j->cur_source]++;
	j->src_bytes[j->cur_source] += len;
	if (signals_pending())
		return err_set(e, LB_EXIT_INTERRUPTED, "interrupted by signal %d",
			       signals_pending());
	return 0;
}

struct member_sink {
	struct job *j;
	char *prefix;	    /* postgres/NAME, mongodb/NAME */
	char *rel;	    /* the member being written; NULL between members */
	unsigned char *buf; /* one part, allocated on first use */
	size_t len;
	unsigned parts; /* parts of the current member already written */
};

static bool rel_safe(const char *rel)
{
	if (!*rel || *rel == '/' || strstr(rel, "//"))
		return false;
	for (const char *p = rel; *p;) {
		size_t n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		p += n;
		if (*p)
			p++;
	}
	return rel[strlen(rel) - 1] != '/';
}

int sink_begin(struct member_sink *s, const char *rel, struct err *e)
{
	if (s->rel)
		return err_set(e, LB_EXIT_INTERNAL, "member '%s' started inside '%s'", rel, s->rel);
	if (!rel_safe(rel))
		return err_set(e, LB_EXIT_INTERNAL, "unsafe member name '%s'", rel);
	if (!s->buf)
		s->buf = xmalloc(DB_PART_SIZE);
	s->rel = xstrdup(rel);
	s->len = 0;
	s->parts = 0;
	return 0;
}

static int sink_flush_part(struct member_sink *s, bool last, struct err *e)
{
	char *apath = last && !s->parts ? xasprintf("%s/%s", s->prefix, s->rel)
					: xasprintf("%s/%s.%06u", s->prefix, s->rel, s->parts);
	int r = 0;

	if (s->parts >= 999999)
		r = err_set(e, LB_EXIT_SOURCE, "'%s/%s' is too large (%u parts)", s->prefix, s->rel,
			    s->parts);
	if (!r)
		r = add_blob(s->j, apath, s->buf, s->len, e);
	free(apath);
	s->len = 0;
	s->parts++;
	return r;
}

int sink_write(struct member_sink *s, const void *buf, size_t len, struct err *e)
{
	const unsigned char *p = buf;

	if (!s->rel)
		return err_set(e, LB_EXIT_INTERNAL, "data written outside a member");
	while (len) {
		/* A full part is written once more data shows it is not the last. */
		if (s->len == DB_PART_SIZE && sink_flush_part(s, false, e) < 0)
			return -1;
		size_t n = DB_PART_SIZE - s->len;
		if (n > len)
			n = len;
		memcpy(s->buf + s->len, p, n);
		s->len += n;
		p += n;
		len -= n;
	}
	return 0;
}

int sink_end(struct member_sink *s, struct err *e)
{
	if (!s->rel)
		return err_set(e, LB_EXIT_INTERNAL, "no member to end");
	int r = sink_flush_part(s, true, e);
	free(s->rel);
	s->rel = NULL;
	return r;
}

int sink_add(struct member_sink *s, const char *rel, const void *buf, size_t len, struct err *e)
{
	if (sink_begin(s, rel, e) < 0 || sink_write(s, buf, len, e) < 0) {
		free(s->rel);
		s->rel = NULL;
		return -1;
	}
	return sink_end(s, e);
}

static int add_db_source(struct job *j, const struct source_spec *s, struct err *e)
{
	const struct db_ops *ops = db_ops_for(s->kind);
	struct member_sink sink = { .j = j, .prefix = source_archive_prefix(s->kind, s->name) };
	int r = ops->backup(j->cfg, s, &sink, e);

	if (r == 0 && sink.rel)
		r = err_set(e, LB_EXIT_INTERNAL, "member '%s' left open", sink.rel);
	free(sink.rel);
	free(sink.buf);
	free(sink.prefix);
	return r;
}

/*
 * Test builds: the file just opened changes size before it is read, as when an
 * application writes it: "walk.shrink" truncates it to half, "walk.grow" appends.
 */
static void fault_resize(int dfd, const char *name, off_t size, const char *src)
{
	bool shrink = FAULT("walk.shrink"), grow = FAULT("walk.grow");

	if (!shrink && !grow)
		return;
	int wfd = openat(dfd, name, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (wfd < 0 || (shrink && ftruncate(wfd, size / 2) < 0) ||
	    (grow && write_all(wfd, "grown after it was opened\n", 26) < 0))
		log_warn("fault point: cannot resize '%s'", src);
	if (wfd >= 0)
		close(wfd);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Archive the content of directory `dfd` (at `src`, archived as `apath`), depth
 * first and sorted by name, so that a directory's entries follow it directly:
 * GNU tar relies on that order to restore directory times.
 */
static int walk_dir(struct job *j, int dfd, const char *src, const char *apath, bool top,
		    struct err *e)
{
	struct strvec names = STRVEC_INIT;
	struct strbuf csrc = STRBUF_INIT, capath = STRBUF_INIT;
	int ret = -1;

	int lfd = dup(dfd);
	DIR *d = lfd < 0 ? NULL : fdopendir(lfd);
	if (!d) {
		close_fd(&lfd);
		err_set(e, LB_EXIT_SOURCE, "cannot read directory '%s': %s", src, strerror(errno));
		goto out;
	}
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			strvec_push(&names, de->d_name);
		errno = 0;
	}
	int rerr = errno;
	closedir(d);
	if (rerr) {
		err_set(e, LB_EXIT_SOURCE, "cannot read directory '%s': %s", src, strerror(rerr));
		goto out;
	}
	qsort(names.v, names.nr, sizeof(char *), cmp_names);

	for (size_t i = 0; i < names.nr; i++) {
		const char *name = names.v[i];
		struct stat st;
		strbuf_reset(&csrc);
		strbuf_addf(&csrc, "%s/%s", src, name);
		strbuf_reset(&capath);
		strbuf_addf(&capath, "%s/%s", apath, name);
		if (top && is_restore_leftover(name)) {
			log_warn("skipping '%s', left behind by an interrupted restore", csrc.buf);
			continue;
		}
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT) {
				log_warn("'%s' vanished while being backed up", csrc.buf);
				continue;
			}
			err_set(e, LB_EXIT_SOURCE, "cannot read '%s': %s", csrc.buf,
				strerror(errno));
			goto out;
		}
		if (FAULT("walk.before_open")) {
			/* Test builds: the entry is deleted right here, as by a busy application. */
			if (unlinkat(dfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0)
				log_warn("fault point: cannot delete '%s': %s", csrc.buf,
					 strerror(errno));
		}
		if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX + 1];
			ssize_t n = readlinkat(dfd, name, target, sizeof(target) - 1);
			if (n < 0 && errno == ENOENT) {
				log_warn("'%s' vanished while being backed up", csrc.buf);
				continue;
			}
			if (n < 0) {
				err_set(e, LB_EXIT_SOURCE, "cannot read link '%s': %s", csrc.buf,
					strerror(errno));
				goto out;
			}
			target[n] = '\0';
			if (add_entry(j, csrc.buf, capath.buf, &st, target, -1, e) < 0)
				goto out;
		} else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
			int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
				    (S_ISDIR(st.st_mode) ? O_DIRECTORY : O_NOCTTY);
			auto_close int fd = openat(dfd, name, flags | O_NOATIME);
			if (fd < 0 && errno == EPERM)
				fd = openat(dfd, name, flags);
			if (fd < 0 && errno == ENOENT) {
				/* Deleted since fstatat: the same as deleted a moment before it. */
				log_warn("'%s' vanished while being backed up", csrc.buf);
				continue;
			}
			if (fd < 0 || fstat(fd, &st) < 0) {
				err_set(e, LB_EXIT_SOURCE, "cannot open '%s': %s", csrc.buf,
					strerror(errno));
				goto out;
			}
			if (S_ISREG(st.st_mode))
				fault_resize(dfd, name, st.st_size, csrc.buf);
			if (add_entry(j, csrc.buf, capath.buf, &st, NULL, fd, e) < 0)
				goto out;
			if (S_ISDIR(st.st_mode) &&
			    walk_dir(j, fd, csrc.buf, capath.buf, false, e) < 0)
				goto out;
		} else {
			log_warn("skipping '%s': sockets, fifos and device files are not backed up",
				 csrc.buf);
		}
	}
	ret = 0;
out:
	strvec_release(&names);
	strbuf_release(&csrc);
	strbuf_release(&capath);
	return ret;
}

/* Archive a directory tree (as dirs/NAME) or a single file (as files/NAME/BASENAME). */
static int add_source(struct job *j, const struct source_spec *s, struct err *e)
{
	char *prefix = source_archive_prefix(s->kind, s->name);
	char *apath = NULL;
	struct stat st;
	int ret = -1;

	/* The configured path itself may be a symlink: follow it (like tar -H). */
	auto_close int fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOCTTY |
						  (s->kind == SOURCE_DIR ? O_DIRECTORY : 0));
	if (fd < 0 || fstat(fd, &st) < 0) {
		err_set(e, LB_EXIT_SOURCE, "cannot open %s '%s' (%s): %s",
			s->kind == SOURCE_DIR ? "BACKUP_DIRS entry" : "BACKUP_FILES entry", s->path,
			s->name, strerror(errno));
		goto out;
	}
	if (s->kind == SOURCE_FILE && !S_ISREG(st.st_mode)) {
		err_set(e, LB_EXIT_SOURCE, "BACKUP_FILES entry '%s' (%s) is not a regular file",
			s->path, s->name);
		goto out;
	}
	apath = s->kind == SOURCE_DIR ? xstrdup(prefix)
				      : xasprintf("%s/%s", prefix, strrchr(s->path, '/') + 1);
	if (j->sqlite[s - j->cfg->sources]) {
		/* A consistent copy even while the application writes (WAL included). */
		auto_close int copy = -1;
		struct stat cst;
		if (sqlite_snapshot(s->path, &copy, e) < 0)
			goto out;
		if (fstat(copy, &cst) < 0) {
			err_set(e, LB_EXIT_SOURCE, "cannot read the copy of '%s': %s", s->path,
				strerror(errno));
			goto out;
		}
		st.st_size = cst.st_size;
		if (add_entry(j, s->path, apath, &st, NULL, copy, e) < 0)
			goto out;
	} else if (add_entry(j, s->path, apath, &st, NULL, fd, e) < 0) {
		goto out;
	}
	if (s->kind == SOURCE_DIR && walk_dir(j, fd, s->path, prefix, true, e) < 0)
		goto out;
	ret = 0;
out:
	free(apath);
	free(prefix);
	return ret;
}

static void fill_manifest(const struct config *cfg, const bool *sqlite, const struct backup_id *id,
			  time_t now, struct manifest *m)
{
	char created[40], host[256] = "";
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%S%z", &tm);
	gethostname(host, sizeof(host) - 1);
	m->lifeboat_version = xstrdup(LB_VERSION);
	m->name = xstrdup(cfg->name);
	m->timestamp = xstrdup(id->timestamp);
	m->created = xstrdup(created);
	m->host = xstrdup(host);
	m->compression = xstrdup(compression_name(cfg->compression));
	m->encryption = xstrdup(cfg->encrypt ? "gpg" : "none");
	for (size_t i = 0; i < cfg->nr_sources; i++) {
		manifest_add_source(m, cfg->sources[i].kind, cfg->sources[i].name,
				    cfg->sources[i].path);
		m->sources[i].sqlite = sqlite[i];
	}
}

/* Sleep until just past the next second (a little past it, against clock skew). */
static void wait_next_second(void)
{
	struct timespec cur;
	clock_gettime(CLOCK_REALTIME, &cur);
	struct timespec ts = { .tv_sec = 0,
			       .tv_nsec = 1000 * 1000 * 1000 - cur.tv_nsec + 10 * 1000 * 1000 };
	if (ts.tv_nsec >= 1000 * 1000 * 1000) {
		ts.tv_sec = 1;
		ts.tv_nsec -= 1000 * 1000 * 1000;
	}
	nanosleep(&ts, NULL);
}

/*
 * Pick a timestamp later than `after` that no existing archive uses (two runs in
 * one second: the second waits for the next one).
 */
static void choose_id(struct job *j, time_t after, struct backup_id *id, time_t *ret_now)
{
	for (int tries = 0;; tries++) {
		time_t now = time(NULL);
		bool taken = now <= after;
		*id = (struct backup_id){ .compression = j->cfg->compression,
					  .encrypted = j->encrypt,
					  .time = now };
		naming_timestamp(now, id->timestamp);
		/* Whatever its compression or encryption: a timestamp names one backup. */
		for (int c = COMPRESSION_GZIP; c <= COMPRESSION_NONE && !taken; c++) {
			for (int enc = 0; enc < 2 && !taken; enc++) {
				struct backup_id any = *id;
				any.compression = (enum compression)c;
				any.encrypted = enc;
				char *file = naming_file(j->cfg->name, &any);
				for (size_t i = 0; i < j->nr_dests && !taken; i++)
					taken = j->dests[i].store->ops->exists(j->dests[i].store,
									       file);
				free(file);
			}
		}
		*ret_now = now;
		if (!taken || (tries >= 5 && now > after))
			return;
		wait_next_second();
	}
}

/*
 * libarchive writes plain tar; the write callback compresses it: gzip with
 * pgzip's worker threads, zstd with libzstd's (small jobs, bounded memory).
 */
static int set_compression(struct job *j, struct err *e)
{
	const struct config *cfg = j->cfg;

	switch (cfg->compression) {
	case COMPRESSION_GZIP:
		return pgzip_new(cfg->compression_level, cfg->compression_threads, gz_out, j,
				 &j->gz, e);
	case COMPRESSION_ZSTD:
		return zst_new(cfg->compression_level, cfg->compression_threads, gz_out, j, &j->zs,
			       e);
	case COMPRESSION_NONE:
		return 0;
	}
	return err_set(e, LB_EXIT_INTERNAL, "unknown compression");
}

static int run_archive(struct job *j, const struct manifest *m, struct err *e)
{
	struct strbuf text = STRBUF_INIT;
	int ret = -1;

	j->a = archive_write_new();
	if (archive_write_set_format_pax(j->a) != ARCHIVE_OK) {
		arch_fail(j, "the header", e);
		goto out;
	}
	if (set_compression(j, e) < 0)
		goto out;
	/* Unbuffered, so an entry from a private writer (begin_entry) can join the stream. */
	if (archive_write_set_bytes_per_block(j->a, 0) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(j->a, 1) != ARCHIVE_OK ||
	    archive_write_open2(j->a, j, NULL, archive_out, NULL, NULL) != ARCHIVE_OK) {
		arch_fail(j, "the header", e);
		goto out;
	}
	manifest_to_json(m, &text);
	if (add_buffer(j, MANIFEST_PATH, &text, true, e) < 0)
		goto out;
	for (size_t i = 0; i < j->cfg->nr_sources; i++) {
		const struct source_spec *s = &j->cfg->sources[i];
		log_info("backing up %s '%s' as '%s'", source_kind_str(s->kind), s->path, s->name);
		j->cur_source = i;
		if (source_is_db(s->kind) ? add_db_source(j, s, e) < 0 : add_source(j, s, e) < 0)
			goto out;
	}
	if (j->hooks && j->hooks->after_sources)
		j->hooks->after_sources(j->hooks->ctx);
	if (add_buffer(j, SUMS_PATH, &j->sums, false, e) < 0)
		goto out;
	if (archive_write_close(j->a) != ARCHIVE_OK || err_isset(&j->arch_err)) {
		arch_fail(j, "the end of the archive", e);
		goto out;
	}
	/* Every compressed byte has reached gpg (or the stores) when this returns. */
	if ((j->gz && pgzip_finish(j->gz, &j->arch_err) < 0) ||
	    (j->zs && zst_finish(j->zs, &j->arch_err) < 0)) {
		arch_fail(j, "the end of the archive", e);
		goto out;
	}
	ret = 0;
out:
	strbuf_release(&text);
	return ret;
}

/* The first failed destination's error, when every destination failed. */
static int first_dest_error(struct job *j, struct err *e)
{
	for (size_t i = 0; i < j->nr_dests; i++)
		if (err_isset(&j->dests[i].err))
			return err_set(e, j->dests[i].err.code, "%s", j->dests[i].err.msg);
	return err_set(e, LB_EXIT_STORE, "no destination left to write to");
}

/* Prefer the root cause: a store failure seen by the pump explains a gpg EPIPE. */
static int merge_errors(struct job *j, struct err *main_err, struct err *e)
{
	if (err_isset(&j->pump_err))
		return err_set(e, j->pump_err.code, "%s", j->pump_err.msg);
	if (err_isset(main_err))
		return err_set(e, main_err->code, "%s", main_err->msg);
	return 0;
}

int backup_run(const struct config *cfg, struct backup_result *ret, struct err *e)
{
	return backup_run_hooks(cfg, NULL, ret, e);
}

int backup_run_hooks(const struct config *cfg, const struct backup_hooks *hooks,
		     struct backup_result *ret, struct err *e)
{
	struct job j = { .cfg = cfg,
			 .encrypt = cfg->encrypt,
			 .crypt = CRYPT_INIT,
			 .sums = STRBUF_INIT,
			 .hooks = hooks };
	struct manifest m = MANIFEST_INIT;
	struct err merr = ERR_INIT;
	struct backup_id id;
	char *file = NULL;
	time_t now;
	int rc = -1;

	j.buf = xmalloc(CHUNK);
	j.src_files = xcalloc(cfg->nr_sources ? cfg->nr_sources : 1, sizeof(*j.src_files));
	j.src_bytes = xcalloc(cfg->nr_sources ? cfg->nr_sources : 1, sizeof(*j.src_bytes));
	if (store_set_open(cfg, &j.stores, e) < 0)
		goto out;
	j.dests = xcalloc(j.stores.nr, sizeof(*j.dests));
	for (size_t i = 0; i < j.stores.nr; i++)
		j.dests[i].store = j.stores.v[i];
	j.nr_dests = j.stores.nr;

	/*
	 * A destination that cannot start is reported at the end; the others go on.
	 * One where another run is writing the same timestamp (a run with another
	 * state directory, so not behind our lock) makes us take a later one.
	 */
	size_t started = 0;
	time_t after = 0;
	for (int attempt = 0;; attempt++) {
		bool taken = false;
		choose_id(&j, after, &id, &now);
		file = naming_file(cfg->name, &id);
		started = 0;
		for (size_t i = 0; i < j.nr_dests && !taken; i++) {
			struct dest *d = &j.dests[i];
			int r = d->store->ops->put_begin(d->store, file, &d->put, &d->err);
			if (r == STORE_TAKEN) {
				taken = true;
			} else if (r < 0) {
				d->failed = true;
			} else {
				d->open = true;
				started++;
			}
		}
		if (!taken)
			break;
		for (size_t i = 0; i < j.nr_dests; i++) {
			struct dest *d = &j.dests[i];
			if (d->open)
				d->store->ops->put_abort(&d->put);
			d->open = d->failed = false;
			err_clear(&d->err);
		}
		if (attempt >= 10) {
			err_set(e, LB_EXIT_STORE,
				"cannot find a free timestamp: other runs keep writing '%s'", file);
			goto out;
		}
		log_info("another run is writing '%s' into the same store: taking a later "
			 "timestamp",
			 file);
		free(file);
		file = NULL;
		after = now;
	}
	/* Decided once, so the manifest and the archived bytes agree. */
	j.sqlite = xcalloc(cfg->nr_sources ? cfg->nr_sources : 1, sizeof(*j.sqlite));
	for (size_t i = 0; i < cfg->nr_sources; i++)
		j.sqlite[i] = cfg->sources[i].kind == SOURCE_FILE &&
			      sqlite_is_database(cfg->sources[i].path);
	fill_manifest(cfg, j.sqlite, &id, now, &m);
	log_info("backup '%s' started", file);
	if (!started) {
		first_dest_error(&j, e);
		goto out;
	}
	if (j.encrypt) {
		if (crypt_encrypt_start(&j.crypt, &cfg->key, &merr) < 0)
			goto fail;
		if (pthread_create(&j.pump, NULL, pump_main, &j) != 0) {
			err_set(&merr, LB_EXIT_INTERNAL, "cannot start a thread");
			goto fail;
		}
		j.pump_running = true;
	}

	if (hooks && hooks->before_sources && hooks->before_sources(hooks->ctx, &merr) < 0)
		goto fail;
	int arc = run_archive(&j, &m, &merr);
	if (j.a) {
		/* On failure, closing only flushes into the discarding callback. */
		j.discard = arc < 0;
		archive_write_free(j.a);
		j.a = NULL;
	}
	if (arc < 0)
		goto fail;
	if (j.encrypt) {
		close_fd(&j.crypt.gpg.in_fd);
		pthread_join(j.pump, NULL);
		j.pump_running = false;
		if (merge_errors(&j, &merr, e) < 0)
			goto out;
		if (crypt_finish(&j.crypt, file, e) < 0)
			goto out;
	}
	/* Commit every healthy destination: an archive that completed is kept. */
	struct strbuf kept = STRBUF_INIT;
	for (size_t i = 0; i < j.nr_dests; i++) {
		struct dest *d = &j.dests[i];
		if (d->failed)
			continue;
		uint64_t bytes = d->put.bytes;
		if (d->store->ops->put_commit(&d->put, &d->err) < 0) {
			d->failed = true;
			continue;
		}
		d->open = false;
		ret->archive_bytes = bytes;
		strbuf_addf(&kept, "%s%s", kept.len ? ", " : "", d->store->ops->kind);
	}
	if (!kept.len) {
		strbuf_release(&kept);
		first_dest_error(&j, e);
		goto out;
	}
	ret->id = id;
	ret->file = TAKE_PTR(file);
	ret->files = j.files;
	ret->content_bytes = j.content_bytes;
	ret->kept_in = strbuf_detach(&kept, NULL);
	ret->nr_sources = cfg->nr_sources;
	ret->source_files = TAKE_PTR(j.src_files);
	ret->source_bytes = TAKE_PTR(j.src_bytes);
	rc = 0;
	for (size_t i = 0; i < j.nr_dests; i++) {
		struct dest *d = &j.dests[i];
		if (!d->failed)
			continue;
		/* Abort now, so the failure is reported after its clean-up. */
		if (d->open)
			d->store->ops->put_abort(&d->put);
		d->open = false;
		err_set(e, LB_EXIT_STORE, "the %s copy failed (kept in %s): %s",
			d->store->ops->kind, ret->kept_in, d->err.msg);
		rc = -1;
	}
	goto out;

fail:
	if (j.encrypt) {
		/*
		 * Stop gpg first so the pump sees EOF (and the compressor's writer
		 * thread, which may be writing to gpg, returns), then judge who
		 * failed first.
		 */
		if (j.crypt.gpg.pid > 0 && err_isset(&merr))
			kill(j.crypt.gpg.pid, SIGTERM);
		pgzip_free(j.gz);
		j.gz = NULL;
		zst_free(j.zs);
		j.zs = NULL;
		close_fd(&j.crypt.gpg.in_fd);
		if (j.pump_running) {
			pthread_join(j.pump, NULL);
			j.pump_running = false;
		}
	}
	merge_errors(&j, &merr, e);
out:
	pgzip_free(j.gz);
	zst_free(j.zs);
	if (j.pump_running) {
		close_fd(&j.crypt.gpg.in_fd);
		pthread_join(j.pump, NULL);
	}
	crypt_release(&j.crypt);
	for (size_t i = 0; i < j.nr_dests; i++) {
		if (j.dests[i].open)
			j.dests[i].store->ops->put_abort(&j.dests[i].put);
	}
	store_set_release(&j.stores);
	free(j.dests);
	free(j.sqlite);
	free(j.src_files);
	free(j.src_bytes);
	free(j.buf);
	free(file);
	strbuf_release(&j.sums);
	manifest_release(&m);
	return rc;
}

void backup_result_release(struct backup_result *r)
{
	free(r->file);
	r->file = NULL;
	free(r->kept_in);
	r->kept_in = NULL;
	free(r->source_files);
	free(r->source_bytes);
	r->source_files = r->source_bytes = NULL;
	r->nr_sources = 0;
}

/* The backup pipeline: tar.gz from libarchive into gpg; a pump thread fans gpg's output out. */
#include "common.h"

#include <archive.h>
#include <archive_entry.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "backup.h"
#include "crypt.h"
#include "hash.h"
#include "log.h"
#include "manifest.h"
#include "signals.h"
#include "stores/store.h"

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
	struct dest *dests;
	size_t nr_dests;
	struct crypt crypt;
	bool encrypt;
	pthread_t pump;
	bool pump_running;
	struct err pump_err;
	struct archive *a;
	struct err arch_err; /* set by the write callback */
	struct strbuf sums;
	uint64_t files, content_bytes;
	unsigned char *buf;
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

static la_ssize_t archive_out(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct job *j = ctx;

	if (signals_pending()) {
		err_set(&j->arch_err, LB_EXIT_INTERRUPTED, "interrupted by signal %d",
			signals_pending());
		archive_set_error(a, EINTR, "interrupted");
		return -1;
	}
	if (j->encrypt) {
		int r = write_all(j->crypt.gpg.in_fd, buf, len);
		if (r < 0) {
			err_set(&j->arch_err, LB_EXIT_CRYPTO, "gpg stopped reading: %s",
				strerror(-r));
			archive_set_error(a, -r, "gpg stopped reading");
			return -1;
		}
	} else if (fanout_write(j, buf, len, &j->arch_err) < 0) {
		archive_set_error(a, EIO, "%s", j->arch_err.msg);
		return -1;
	}
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
	    archive_write_data(j->a, data->buf, data->len) != (la_ssize_t)data->len)
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

/* Copy one regular file's data from the disk reader into the archive, hashing it. */
static int copy_data(struct job *j, struct archive *disk, const char *src, const char *apath,
		     la_int64_t size, struct err *e)
{
	struct sha256 h;
	char hex[SHA256_HEX_LEN + 1];
	la_int64_t pos = 0;

	sha256_init(&h);
	for (;;) {
		const void *blk;
		size_t n;
		la_int64_t off;
		int r = archive_read_data_block(disk, &blk, &n, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK) {
			sha256_release(&h);
			return err_set(e, LB_EXIT_SOURCE, "cannot read '%s': %s", src,
				       archive_error_string(disk));
		}
		if (off != pos) {
			sha256_release(&h);
			return err_set(e, LB_EXIT_INTERNAL, "unexpected hole in '%s'", src);
		}
		if (pos + (la_int64_t)n > size) {
			log_warn("'%s' grew while being read; archived its first %lld bytes", src,
				 (long long)size);
			n = (size_t)(size - pos);
		}
		if (n && archive_write_data(j->a, blk, n) != (la_ssize_t)n) {
			sha256_release(&h);
			return arch_fail(j, src, e);
		}
		sha256_update(&h, blk, n);
		pos += (la_int64_t)n;
		if (pos >= size)
			break;
	}
	if (pos < size) {
		/* The file shrank while we read it: the header promised `size` bytes. */
		log_warn("'%s' shrank while being read; padded with zeros", src);
		memset(j->buf, 0, CHUNK);
		while (pos < size) {
			size_t n = size - pos > CHUNK ? CHUNK : (size_t)(size - pos);
			if (archive_write_data(j->a, j->buf, n) != (la_ssize_t)n) {
				sha256_release(&h);
				return arch_fail(j, src, e);
			}
			sha256_update(&h, j->buf, n);
			pos += (la_int64_t)n;
		}
	}
	sha256_final_hex(&h, hex);
	sums_add(&j->sums, hex, apath);
	j->files++;
	j->content_bytes += (uint64_t)size;
	return 0;
}

static bool is_restore_leftover(const char *rel)
{
	return !strchr(rel, '/') &&
	       (!strncmp(rel, ".lifeboat-restore.", 18) || !strncmp(rel, ".lifeboat-old.", 14));
}

/* Archive a directory tree or a single file under `prefix` (dirs/NAME or files/NAME). */
static int add_source(struct job *j, const struct source_spec *s, struct err *e)
{
	struct archive *disk = archive_read_disk_new();
	struct archive_entry *ent = archive_entry_new();
	char *prefix = source_archive_prefix(s->kind, s->name);
	const char *base = strrchr(s->path, '/') + 1;
	size_t plen = strlen(s->path);
	struct strbuf apath = STRBUF_INIT;
	int ret = -1;

	archive_read_disk_set_symlink_hybrid(disk);
	archive_read_disk_set_behavior(disk, ARCHIVE_READDISK_NO_XATTR | ARCHIVE_READDISK_NO_ACL |
						     ARCHIVE_READDISK_NO_FFLAGS |
						     ARCHIVE_READDISK_NO_SPARSE);
	if (archive_read_disk_open(disk, s->path) != ARCHIVE_OK) {
		err_set(e, LB_EXIT_SOURCE, "cannot read '%s': %s", s->path,
			archive_error_string(disk));
		goto out;
	}
	for (;;) {
		if (signals_pending()) {
			err_set(e, LB_EXIT_INTERRUPTED, "interrupted by signal %d",
				signals_pending());
			goto out;
		}
		archive_entry_clear(ent);
		int r = archive_read_next_header2(disk, ent);
		if (r == ARCHIVE_EOF)
			break;
		const char *p = archive_entry_pathname(ent);
		if (r == ARCHIVE_WARN) {
			log_warn("'%s': %s", p ? p : s->path, archive_error_string(disk));
		} else if (r != ARCHIVE_OK) {
			err_set(e, LB_EXIT_SOURCE, "cannot read '%s': %s", p ? p : s->path,
				archive_error_string(disk));
			goto out;
		}
		const char *rel = p + (plen > 1 ? plen : 0);
		if (strncmp(p, s->path, plen) || (*rel && *rel != '/')) {
			err_set(e, LB_EXIT_INTERNAL, "unexpected path '%s' under '%s'", p, s->path);
			goto out;
		}
		while (*rel == '/')
			rel++;
		mode_t type = archive_entry_filetype(ent);
		if (type == AE_IFDIR)
			archive_read_disk_descend(disk);
		if (is_restore_leftover(rel)) {
			log_warn("skipping '%s', left behind by an interrupted restore", p);
			continue;
		}
		if (type != AE_IFDIR && type != AE_IFREG && type != AE_IFLNK) {
			log_warn("skipping '%s': sockets, fifos and device files are not backed up",
				 p);
			continue;
		}
		strbuf_reset(&apath);
		if (s->kind == SOURCE_FILE)
			strbuf_addf(&apath, "%s/%s", prefix, base);
		else if (*rel)
			strbuf_addf(&apath, "%s/%s", prefix, rel);
		else
			strbuf_addstr(&apath, prefix);
		archive_entry_set_pathname(ent, apath.buf);
		archive_entry_sparse_clear(ent);
		archive_entry_set_uname(ent, NULL);
		archive_entry_set_gname(ent, NULL);
		la_int64_t size = type == AE_IFREG ? archive_entry_size(ent) : 0;
		if (type != AE_IFREG)
			archive_entry_set_size(ent, 0);
		if (archive_write_header(j->a, ent) != ARCHIVE_OK) {
			arch_fail(j, p, e);
			goto out;
		}
		if (type == AE_IFREG && copy_data(j, disk, p, apath.buf, size, e) < 0)
			goto out;
		if (archive_write_finish_entry(j->a) != ARCHIVE_OK) {
			arch_fail(j, p, e);
			goto out;
		}
	}
	ret = 0;
out:
	archive_read_close(disk);
	archive_read_free(disk);
	archive_entry_free(ent);
	strbuf_release(&apath);
	free(prefix);
	return ret;
}

static void fill_manifest(const struct config *cfg, const struct backup_id *id, time_t now,
			  struct manifest *m)
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
	m->compression = xstrdup("gzip");
	m->encryption = xstrdup(cfg->encrypt ? "gpg" : "none");
	for (size_t i = 0; i < cfg->nr_sources; i++)
		manifest_add_source(m, cfg->sources[i].kind, cfg->sources[i].name,
				    cfg->sources[i].path);
}

/* Pick a timestamp no existing archive uses (two runs in one second wait a second). */
static void choose_id(struct job *j, struct backup_id *id, time_t *ret_now)
{
	for (int tries = 0;; tries++) {
		time_t now = time(NULL);
		bool taken = false;
		*id = (struct backup_id){ .compression = COMPRESSION_GZIP,
					  .encrypted = j->encrypt,
					  .time = now };
		naming_timestamp(now, id->timestamp);
		char *file = naming_file(j->cfg->name, id);
		for (size_t i = 0; i < j->nr_dests; i++)
			taken |= j->dests[i].store->ops->exists(j->dests[i].store, file);
		free(file);
		*ret_now = now;
		if (!taken || tries >= 3)
			return;
		struct timespec ts = { .tv_sec = 0, .tv_nsec = 250 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

static int run_archive(struct job *j, const struct manifest *m, struct err *e)
{
	struct strbuf text = STRBUF_INIT;
	int ret = -1;

	j->a = archive_write_new();
	if (archive_write_set_format_pax(j->a) != ARCHIVE_OK ||
	    archive_write_add_filter_gzip(j->a) != ARCHIVE_OK ||
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
		if (add_source(j, s, e) < 0)
			goto out;
	}
	if (add_buffer(j, SUMS_PATH, &j->sums, false, e) < 0)
		goto out;
	if (archive_write_close(j->a) != ARCHIVE_OK) {
		arch_fail(j, "the end of the archive", e);
		goto out;
	}
	ret = 0;
out:
	strbuf_release(&text);
	return ret;
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
	struct job j = {
		.cfg = cfg, .encrypt = cfg->encrypt, .crypt = CRYPT_INIT, .sums = STRBUF_INIT
	};
	struct manifest m = MANIFEST_INIT;
	struct err merr = ERR_INIT;
	struct backup_id id;
	char *file = NULL;
	time_t now;
	int rc = -1;

	j.buf = xmalloc(CHUNK);
	j.dests = xcalloc(1, sizeof(*j.dests));
	if (store_local_new(cfg, &j.dests[0].store, e) < 0)
		goto out;
	j.nr_dests = 1;

	choose_id(&j, &id, &now);
	file = naming_file(cfg->name, &id);
	fill_manifest(cfg, &id, now, &m);
	log_info("backup '%s' started", file);

	for (size_t i = 0; i < j.nr_dests; i++) {
		struct dest *d = &j.dests[i];
		if (d->store->ops->put_begin(d->store, file, &d->put, e) < 0)
			goto out;
		d->open = true;
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

	int arc = run_archive(&j, &m, &merr);
	if (j.a) {
		if (arc < 0)
			archive_write_fail(j.a);
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
	for (size_t i = 0; i < j.nr_dests; i++) {
		struct dest *d = &j.dests[i];
		if (d->failed) {
			err_set(e, d->err.code, "%s", d->err.msg);
			goto out;
		}
		uint64_t bytes = d->put.bytes;
		if (d->store->ops->put_commit(&d->put, &d->err) < 0) {
			err_set(e, d->err.code, "%s", d->err.msg);
			goto out;
		}
		d->open = false;
		ret->archive_bytes = bytes;
	}
	ret->id = id;
	ret->file = TAKE_PTR(file);
	ret->files = j.files;
	ret->content_bytes = j.content_bytes;
	rc = 0;
	goto out;

fail:
	if (j.encrypt) {
		/* Stop gpg first so the pump sees EOF, then judge who failed first. */
		close_fd(&j.crypt.gpg.in_fd);
		if (j.crypt.gpg.pid > 0 && err_isset(&merr))
			kill(j.crypt.gpg.pid, SIGTERM);
		if (j.pump_running) {
			pthread_join(j.pump, NULL);
			j.pump_running = false;
		}
	}
	merge_errors(&j, &merr, e);
out:
	if (j.pump_running) {
		close_fd(&j.crypt.gpg.in_fd);
		pthread_join(j.pump, NULL);
	}
	crypt_release(&j.crypt);
	for (size_t i = 0; i < j.nr_dests; i++) {
		if (j.dests[i].open)
			j.dests[i].store->ops->put_abort(&j.dests[i].put);
		store_free(j.dests[i].store);
	}
	free(j.dests);
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
}

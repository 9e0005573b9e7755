/* The backup pipeline: tar from libarchive, compressed, into gpg; a pump thread fans out. */
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>

#include "backup.h"
#include "compress.h"
#include "crypt.h"
#include "sources/source.h"
#include "fault.h"
#include "log.h"
#include "manifest.h"
#include "signals.h"
#include "sources/sqlite.h"
#include "stores/store.h"
#include "stream/compressor.h"
#include "stream/fanout.h"
#include "stream/tar-writer.h"

#define CHUNK (256 * 1024)

struct job {
	const struct config *cfg;
	bool *sqlite; /* per configured source: an SQLite database file */
	struct store_set stores;
	struct fanout out; /* the archive's bytes to every store */
	struct crypt crypt;
	bool encrypt;
	struct async pump; /* gpg's stdout to the stores */
	struct err pump_err;
	struct tar_writer tar;	/* the archive, hashed member by member */
	struct compressor comp; /* between the tar writer and gpg (or the stores) */
	uint64_t *src_files;	/* per source */
	uint64_t *src_bytes;
	const struct backup_hooks *hooks;
};

/* Pump: gpg's stdout to the stores. Its fd closes as it returns: on error gpg (then we) stop. */
static int pump(int fd, void *data)
{
	struct job *j = data;
	unsigned char *buf = xmalloc(CHUNK);

	for (;;) {
		ssize_t n = read_retry(fd, buf, CHUNK);
		if (n < 0) {
			err_set(&j->pump_err, LB_EXIT_CRYPTO, "cannot read from gpg: %s",
				strerror((int)-n));
			break;
		}
		if (n == 0)
			break;
		if (fanout_write(&j->out, buf, (size_t)n, &j->pump_err) < 0)
			break;
	}
	free(buf);
	return err_isset(&j->pump_err) ? -1 : 0;
}

/* Compressed bytes to gpg's stdin, or straight to the stores when not encrypting. */
static int deliver(struct job *j, const void *buf, size_t len, struct err *e)
{
	if (signals_pending())
		return err_set(e, LB_EXIT_INTERRUPTED, "interrupted by signal %d",
			       signals_pending());
	if (j->encrypt) {
		int r = write_all(crypt_input_fd(&j->crypt), buf, len);
		if (r < 0)
			return err_set(e, LB_EXIT_CRYPTO, "gpg stopped reading: %s", strerror(-r));
		return 0;
	}
	return fanout_write(&j->out, buf, len, e);
}

/* The compressor's output (on its writer thread, or ours for none): reports through `e` only. */
static int compressed_out(void *ctx, const void *buf, size_t len, struct err *e)
{
	return deliver(ctx, buf, len, e);
}

/* The tar writer's output: into the compressor (whose errors surface on a later write). */
static int tar_out(void *ctx, const void *buf, size_t len, struct err *e)
{
	struct job *j = ctx;

	return compressor_write(&j->comp, buf, len, e);
}

static bool is_restore_leftover(const char *name)
{
	return !strncmp(name, ".lifeboat-restore.", 18) || !strncmp(name, ".lifeboat-old.", 14);
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
		r = tarw_add_blob(&s->j->tar, apath, s->buf, s->len, TARW_HASH | TARW_COUNT, e);
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
			if (tarw_add_entry(&j->tar, csrc.buf, capath.buf, &st, target, -1, e) < 0)
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
			if (tarw_add_entry(&j->tar, csrc.buf, capath.buf, &st, NULL, fd, e) < 0)
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
		if (tarw_add_entry(&j->tar, s->path, apath, &st, NULL, copy, e) < 0)
			goto out;
	} else if (tarw_add_entry(&j->tar, s->path, apath, &st, NULL, fd, e) < 0) {
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
				for (size_t i = 0; i < j->stores.nr && !taken; i++)
					taken = j->stores.v[i]->ops->exists(j->stores.v[i], file);
				free(file);
			}
		}
		*ret_now = now;
		if (!taken || (tries >= 5 && now > after))
			return;
		wait_next_second();
	}
}

static int run_archive(struct job *j, const struct manifest *m, struct err *e)
{
	struct strbuf text = STRBUF_INIT;
	int ret = -1;

	if (compressor_open(j->cfg->compression, j->cfg->compression_level,
			    j->cfg->compression_threads, compressed_out, j, &j->comp, e) < 0 ||
	    tarw_open(&j->tar, tar_out, j, e) < 0)
		goto out;
	manifest_to_json(m, &text);
	if (tarw_add_blob(&j->tar, MANIFEST_PATH, text.buf, text.len, TARW_HASH, e) < 0)
		goto out;
	for (size_t i = 0; i < j->cfg->nr_sources; i++) {
		const struct source_spec *s = &j->cfg->sources[i];
		uint64_t files = j->tar.files, bytes = j->tar.bytes;
		log_info("backing up %s '%s' as '%s'", source_kind_str(s->kind), s->path, s->name);
		if (source_is_db(s->kind) ? add_db_source(j, s, e) < 0 : add_source(j, s, e) < 0)
			goto out;
		j->src_files[i] = j->tar.files - files;
		j->src_bytes[i] = j->tar.bytes - bytes;
	}
	if (j->hooks && j->hooks->after_sources)
		j->hooks->after_sources(j->hooks->ctx);
	if (tarw_add_blob(&j->tar, SUMS_PATH, j->tar.sums.buf, j->tar.sums.len, 0, e) < 0 ||
	    tarw_close(&j->tar, e) < 0)
		goto out;
	/* Every compressed byte has reached gpg (or the stores) when this returns. */
	if (compressor_finish(&j->comp, e) < 0)
		goto out;
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
	return backup_run_hooks(cfg, NULL, ret, e);
}

int backup_run_hooks(const struct config *cfg, const struct backup_hooks *hooks,
		     struct backup_result *ret, struct err *e)
{
	struct job j = { .cfg = cfg,
			 .encrypt = cfg->encrypt,
			 .crypt = CRYPT_INIT,
			 .pump = ASYNC_INIT,
			 .tar = TAR_WRITER_INIT,
			 .hooks = hooks };
	struct manifest m = MANIFEST_INIT;
	struct err merr = ERR_INIT;
	struct backup_id id;
	char *file = NULL;
	time_t now;
	int rc = -1;

	j.src_files = xcalloc(cfg->nr_sources ? cfg->nr_sources : 1, sizeof(*j.src_files));
	j.src_bytes = xcalloc(cfg->nr_sources ? cfg->nr_sources : 1, sizeof(*j.src_bytes));
	if (store_set_open(cfg, &j.stores, e) < 0)
		goto out;

	/*
	 * A store that cannot start is reported at the end; the others go on. One
	 * where another run is writing the same timestamp (a run with another state
	 * directory, so not behind our lock) makes us take a later one.
	 */
	time_t after = 0;
	for (int attempt = 0;; attempt++) {
		choose_id(&j, after, &id, &now);
		file = naming_file(cfg->name, &id);
		int r = fanout_begin(&j.out, &j.stores, file, e);
		if (r < 0)
			goto out;
		if (r != STORE_TAKEN)
			break;
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
	if (j.encrypt) {
		if (crypt_encrypt_start(&j.crypt, &cfg->key, &merr) < 0)
			goto fail;
		j.pump = (struct async){ .proc = pump,
					 .data = &j,
					 .fd = crypt_take_output_fd(&j.crypt) };
		if (async_start(&j.pump, &merr) < 0)
			goto fail;
	}

	if (hooks && hooks->before_sources && hooks->before_sources(hooks->ctx, &merr) < 0)
		goto fail;
	int arc = run_archive(&j, &m, &merr);
	tarw_release(&j.tar, arc < 0);
	if (arc < 0)
		goto fail;
	if (j.encrypt) {
		crypt_close_input(&j.crypt);
		async_finish(&j.pump);
		if (merge_errors(&j, &merr, e) < 0)
			goto out;
		if (crypt_finish(&j.crypt, file, e) < 0)
			goto out;
	}
	/* Commit every healthy store: an archive that completed is kept. */
	char *kept = NULL;
	uint64_t bytes = 0;
	int cr = fanout_commit(&j.out, &kept, &bytes, e);
	if (!kept)
		goto out;
	ret->archive_bytes = bytes;
	ret->id = id;
	ret->file = TAKE_PTR(file);
	ret->files = j.tar.files;
	ret->content_bytes = j.tar.bytes;
	ret->kept_in = kept;
	ret->nr_sources = cfg->nr_sources;
	ret->source_files = TAKE_PTR(j.src_files);
	ret->source_bytes = TAKE_PTR(j.src_bytes);
	rc = cr;
	goto out;

fail:
	if (j.encrypt) {
		/*
		 * Stop gpg first so the pump sees EOF (and the compressor's writer
		 * thread, which may be writing to gpg, returns), then judge who
		 * failed first.
		 */
		if (err_isset(&merr))
			crypt_kill(&j.crypt);
		compressor_close(&j.comp);
		crypt_close_input(&j.crypt);
		async_finish(&j.pump);
	}
	merge_errors(&j, &merr, e);
out:
	compressor_close(&j.comp);
	if (async_running(&j.pump)) {
		crypt_close_input(&j.crypt);
		async_finish(&j.pump);
	}
	crypt_release(&j.crypt);
	fanout_release(&j.out);
	store_set_release(&j.stores);
	free(j.sqlite);
	free(j.src_files);
	free(j.src_bytes);
	tarw_release(&j.tar, true);
	free(file);
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

/*
 * The backup pipeline: each source through its ops into a member sink, the tar
 * writer, the compressor, gpg; a pump thread fans out to the stores.
 */
#include "common.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "backup.h"
#include "compress.h"
#include "crypt.h"
#include "fs.h"
#include "log.h"
#include "manifest.h"
#include "signals.h"
#include "sources/source.h"
#include "sources/sqlite.h"
#include "stores/store.h"
#include "strbuf.h"
#include "stream/compressor.h"
#include "stream/fanout.h"
#include "stream/member-sink.h"
#include "stream/tar-writer.h"
#include "xalloc.h"

#define CHUNK (256 * 1024)

struct job {
	const struct config *cfg;
	bool *sqlite; /* per configured source: an SQLite database file */
	struct store_set stores;
	struct fanout out; /* the archive's bytes to every store */
	struct crypt crypt;
	bool encrypt;
	struct crypt signer; /* gpg --detach-sign over the archive's bytes, when signing */
	bool sign;
	struct async pump; /* gpg's stdout to the stores */
	struct err pump_err;
	struct tar_writer tar;	/* the archive, hashed member by member */
	struct compressor comp; /* between the tar writer and gpg (or the stores) */
	uint64_t *src_files;	/* per source */
	uint64_t *src_bytes;
	const struct backup_hooks *hooks;
};

/* The archive's bytes, as the stores get them: to the signer, then to every store. */
static int archive_out(struct job *j, const void *buf, size_t len, struct err *e)
{
	if (j->sign) {
		int r = write_all(crypt_input_fd(&j->signer), buf, len);
		if (r < 0)
			return err_set(e, LB_EXIT_CRYPTO, "the signer (gpg) stopped reading: %s",
				       strerror(-r));
	}
	return fanout_write(&j->out, buf, len, e);
}

/* Pump: gpg's stdout to the stores. Its fd closes as it returns: on error gpg (then we) stop. */
static int pump(int fd, void *data)
{
	struct job *j = data;
	unsigned char *buf = xmalloc(CHUNK);
	bool batch = pipe_batch_ok(fd);

	for (;;) {
		ssize_t n = read_retry(fd, buf, CHUNK);
		if (n < 0) {
			err_set(&j->pump_err, LB_EXIT_CRYPTO,
				"cannot read the encrypted stream: %s", strerror((int)-n));
			break;
		}
		if (n == 0)
			break;
		/* gpg writes 8 KiB at a time: gather them (a bounded wait; gpg's end ends it). */
		if (batch)
			pipe_batch_wait(fd, -1, (size_t)n, CHUNK);
		if (archive_out(j, buf, (size_t)n, &j->pump_err) < 0)
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
			return err_set(e, LB_EXIT_CRYPTO, "the encryption stopped reading: %s",
				       strerror(-r));
		return 0;
	}
	return archive_out(j, buf, len, e);
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
	m->compression = xstrdup(compression_name(cfg->compress.algo));
	m->encryption = xstrdup(!cfg->crypt.encrypt		    ? "none"
				: cfg->crypt.kind == ENCRYPTION_AGE ? "age"
								    : "gpg");
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
		*id = (struct backup_id){ .compression = j->cfg->compress.algo,
					  .encrypted = j->encrypt,
					  .encryption =
						  j->encrypt ? (j->cfg->crypt.kind == ENCRYPTION_AGE
									? ENCRYPTION_AGE
									: ENCRYPTION_GPG)
							     : ENCRYPTION_NONE,
					  .time = now };
		naming_timestamp(now, id->timestamp);
		/* Whatever its compression or encryption: a timestamp names one backup. */
		for (int c = COMPRESSION_GZIP; c <= COMPRESSION_NONE && !taken; c++) {
			for (int enc = ENCRYPTION_NONE; enc <= ENCRYPTION_AGE && !taken; enc++) {
				struct backup_id any = *id;
				any.compression = (enum compression)c;
				any.encryption = (enum encryption)enc;
				any.encrypted = enc != ENCRYPTION_NONE;
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

/* One source through its kind's ops, into a member sink rooted at its archive directory. */
static int backup_source(struct job *j, const struct source_backup *src, struct err *e)
{
	struct member_sink sink;

	sink_init(&sink, &j->tar, src->spec->kind, src->spec->name);
	int r = source_ops_for(src->spec->kind)->backup(src, &sink, e);
	if (r == 0 && sink.rel)
		r = err_set(e, LB_EXIT_INTERNAL, "member '%s' left open", sink.rel);
	sink_release(&sink);
	return r;
}

static int run_archive(struct job *j, struct manifest *m, struct err *e)
{
	struct strbuf text = STRBUF_INIT;
	int ret = -1;

	if (compressor_open(j->cfg->compress.algo, j->cfg->compress.level, j->cfg->compress.threads,
			    compressed_out, j, &j->comp, e) < 0 ||
	    tarw_open(&j->tar, tar_out, j, e) < 0)
		goto out;
	/* The servers' versions, for the manifest (and a wrong password fails here, early). */
	for (size_t i = 0; i < j->cfg->nr_sources; i++) {
		const struct source_spec *s = &j->cfg->sources[i];
		const struct source_ops *ops = source_ops_for(s->kind);
		struct source_backup src = { .cfg = j->cfg, .spec = s, .report = &report_log };
		if (ops->server_version &&
		    !(m->sources[i].server_version = ops->server_version(&src, e)))
			goto out;
	}
	manifest_to_json(m, &text);
	if (tarw_add_blob(&j->tar, MANIFEST_PATH, text.buf, text.len, TARW_HASH, e) < 0)
		goto out;
	for (size_t i = 0; i < j->cfg->nr_sources; i++) {
		const struct source_spec *s = &j->cfg->sources[i];
		uint64_t files = j->tar.files, bytes = j->tar.bytes;
		log_info("backing up %s '%s' as '%s'", source_kind_str(s->kind), s->path, s->name);
		struct source_backup src = {
			.cfg = j->cfg, .spec = s, .sqlite = j->sqlite[i], .report = &report_log
		};
		if (backup_source(j, &src, e) < 0)
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

/* Every remaining store failed with the same cause (the local file cannot be read back). */
static void fail_all(struct fanout *f, const struct err *why)
{
	for (size_t i = 0; i < f->nr; i++) {
		if (f->v[i].failed)
			continue;
		err_copy(&f->v[i].err, why);
		f->v[i].failed = true;
	}
}

/*
 * BACKUP_UPLOAD=after-local: the archive committed in the local store (`kept`), read back
 * from its file (no copy), to every store of `later` the same way the stream reaches them
 * (put_begin's hidden upload, then commit, then the signature), each failing on its own.
 * *ret_kept names the local store and every store that committed. A signal aborts the
 * uploads (the local copy stays). Returns 0, or -1 as fanout_commit does.
 */
static int upload_after_local(struct job *j, struct store_set *later, const char *file,
			      const char *kept, char **ret_kept, struct err *e)
{
	struct store *local = j->stores.v[0];
	struct fanout up = { .sidecar = j->out.sidecar,
			     .sidecar_buf = j->out.sidecar_buf,
			     .sidecar_len = j->out.sidecar_len,
			     .kept_before = kept };
	struct err werr = ERR_INIT;
	unsigned char *buf = NULL;
	uint64_t bytes = 0;
	int fd = -1, ret = -1;

	*ret_kept = NULL;
	int r = fanout_begin(&up, later, file, &werr);
	if (r == STORE_TAKEN) {
		/* A run with another state directory claimed it there (we hold it in local). */
		err_set(e, LB_EXIT_STORE,
			"'%s' is kept in %s only: another run writes it elsewhere", file, kept);
		*ret_kept = xstrdup(kept);
		goto out;
	}
	/* r < 0: none started, each says why in fanout_commit's report. */
	if (r == 0 && local->ops->get_open(local, file, &fd, &werr) < 0)
		fail_all(&up, &werr);
	log_info("uploading '%s' to the other stores", file);
	buf = xmalloc(CHUNK);
	while (fd >= 0) {
		if (signals_pending()) {
			err_set(e, LB_EXIT_INTERRUPTED,
				"interrupted by signal %d while uploading '%s' (kept in %s)",
				signals_pending(), file, kept);
			*ret_kept = xstrdup(kept);
			goto out;
		}
		ssize_t n = read_retry(fd, buf, CHUNK);
		if (n < 0) {
			err_set(&werr, LB_EXIT_STORE,
				"cannot read '%s' back from the local store: %s", file,
				strerror((int)-n));
			fail_all(&up, &werr);
		}
		if (n <= 0 || fanout_write(&up, buf, (size_t)n, &werr) < 0)
			break;
	}
	ret = fanout_commit(&up, ret_kept, &bytes, e);
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	fanout_release(&up);
	return ret;
}

/* Prefer the root cause: a store failure seen by the pump explains a gpg EPIPE. */
static int merge_errors(struct job *j, struct err *main_err, struct err *e)
{
	if (err_isset(&j->pump_err))
		return err_copy(e, &j->pump_err);
	if (err_isset(main_err))
		return err_copy(e, main_err);
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
			 .encrypt = cfg->crypt.encrypt,
			 .crypt = CRYPT_INIT,
			 .sign = cfg->crypt.signing_key_file != NULL,
			 .signer = CRYPT_INIT,
			 .pump = ASYNC_INIT,
			 .tar = TAR_WRITER_INIT,
			 .hooks = hooks };
	struct manifest m = MANIFEST_INIT;
	struct err merr = ERR_INIT;
	struct backup_id id;
	struct strbuf sig = STRBUF_INIT;
	char *file = NULL, *sig_file = NULL;
	struct store_set now_set = { 0 }, later = { 0 }; /* streamed to now, uploaded after */
	time_t now;
	int rc = -1;

	j.src_files = xcalloc(cfg->nr_sources ? cfg->nr_sources : 1, sizeof(*j.src_files));
	j.src_bytes = xcalloc(cfg->nr_sources ? cfg->nr_sources : 1, sizeof(*j.src_bytes));
	j.tar.report = &report_log; /* the walker's warnings and the tar writer's are logged */
	if (store_set_open(cfg, &j.stores, e) < 0)
		goto out;
	/* What killed runs left goes first; what this run makes is recorded. */
	store_set_sweep_temps(&j.stores);
	for (size_t i = 0; i < j.stores.nr; i++)
		j.stores.v[i]->record_temps = true;
	/* after-local: the stream goes to the local store (first in the set) alone. */
	now_set = j.stores;
	if (cfg->upload == UPLOAD_AFTER_LOCAL && j.stores.nr > 1 &&
	    !strcmp(j.stores.v[0]->ops->kind, "local")) {
		now_set.nr = 1;
		later = (struct store_set){ .v = j.stores.v + 1, .nr = j.stores.nr - 1 };
	}

	/*
	 * A store that cannot start is reported at the end; the others go on. One
	 * where another run is writing the same timestamp (a run with another state
	 * directory, so not behind our lock) makes us take a later one.
	 */
	time_t after = 0;
	for (int attempt = 0;; attempt++) {
		choose_id(&j, after, &id, &now);
		file = naming_file(cfg->name, &id);
		int r = fanout_begin(&j.out, &now_set, file, e);
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
	if (j.sign && crypt_sign_start(&j.signer, &cfg->crypt, &merr) < 0)
		goto fail;
	if (j.encrypt) {
		if (crypt_encrypt_start(&j.crypt, &cfg->crypt, &merr) < 0)
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
	/* The signature is complete with the archive; it goes in right after it, in each store. */
	if (j.sign) {
		if (crypt_sign_finish(&j.signer, &sig, e) < 0)
			goto out;
		sig_file = xasprintf("%s%s", file, STORE_SIG_SUFFIX);
		j.out.sidecar = sig_file;
		j.out.sidecar_buf = sig.buf;
		j.out.sidecar_len = sig.len;
	}
	/* Commit every healthy store: an archive that completed is kept. */
	char *kept = NULL;
	uint64_t bytes = 0;
	int cr = fanout_commit(&j.out, &kept, &bytes, e);
	if (!kept)
		goto out;
	/* The containers run again already; the other stores get the finished file. */
	if (later.nr) {
		char *all = NULL;
		cr = upload_after_local(&j, &later, file, kept, &all, e);
		free(kept);
		kept = all;
	}
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
	if (crypt_running(&j.signer))
		crypt_kill(&j.signer);
	crypt_release(&j.signer);
	strbuf_release(&sig);
	free(sig_file);
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

/*
 * Restore, verify and dry-run share one reader: gpg -> libarchive -> per entry.
 * A restore extracts each source into a staging directory on the target's own
 * file system, checks gpg's verdict and every SHA-256, and only then swaps the
 * staged content in, keeping the old content until every source has swapped.
 */
#include "common.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "crypt.h"
#include "fault.h"
#include "fs.h"
#include "hash.h"
#include "journal.h"
#include "log.h"
#include "manifest.h"
#include "recover.h"
#include "restore-job.h"
#include "restore.h"
#include "signals.h"
#include "sources/source.h"
#include "strbuf.h"
#include "stream/member-sink.h"
#include "stream/tar-reader.h"
#include "strvec.h"
#include "xalloc.h"

#define MANIFEST_MAX (1024 * 1024)
#define SUMS_MAX     (512u * 1024 * 1024)

void restore_drill_prefix(const struct config *cfg, char buf[32])
{
	char hex[SHA256_HEX_LEN + 1];
	struct sha256 h;

	/* Lower case hex and '_' only: a valid name for PostgreSQL, MongoDB and MySQL alike. */
	sha256_init(&h);
	sha256_update(&h, cfg->name, strlen(cfg->name));
	sha256_final_hex(&h, hex);
	snprintf(buf, 32, "lifeboat_drill_%.8s_", hex);
}

static void rsource_release(struct rsource *s)
{
	free(s->name);
	free(s->target);
	free(s->prefix);
	strvec_release(&s->seen);
}

/* A database module names a staging object: into the journal, durably, before it exists. */
static int record_db(void *ctx, const struct journal_db *d, struct err *e)
{
	struct journal *jr = ctx;

	journal_add_db(jr, d);
	return journal_write(jr, e);
}

/* APPLY: the source's kind starts its restore (jr: the journal, once there is one). */
static int begin_source(struct rjob *j, struct rsource *s, struct journal *jr, struct err *e)
{
	char prefix[32];

	restore_drill_prefix(j->cfg, prefix);
	struct source_restore_req req = { .cfg = j->cfg,
					  .target = s->cfgsrc,
					  .name = s->name,
					  .kind = s->kind,
					  .path = s->target,
					  .sqlite = s->sqlite,
					  .cwd_fd = j->cwd_fd,
					  .report = &report_log,
					  .record = record_db,
					  .record_ctx = jr,
					  .drill = j->opts->mode == RESTORE_DRILL ? prefix : NULL };

	s->begun = true; /* restore_end frees what a failed begin left */
	return s->desc->ops->restore_begin(&req, &s->ctx, e);
}

/* The sources of the manifest, and what this run does with each before the pass reads them. */
static int setup_sources(struct rjob *j, struct err *e)
{
	if (select_sources(j, e) < 0)
		return -1;
	if (j->opts->mode == RESTORE_APPLY) {
		journal_init(&j->jr, j->cfg, j->file);
		j->jr_set = true;
	}
	for (size_t i = 0; i < j->nr_src; i++) {
		struct rsource *s = &j->src[i];
		/*
		 * Every source is staged as this pass reads it; a database connects
		 * now, so a wrong target fails before anything changes.
		 */
		if (j->opts->mode == RESTORE_APPLY && begin_source(j, s, &j->jr, e) < 0)
			return -1;
		if (j->opts->mode == RESTORE_EXTRACT && extract_make_source_dir(j, s, e) < 0)
			return -1;
	}
	return 0;
}

/* Split an archive path into its source and the path relative to that source. */
static struct rsource *find_source(struct rjob *j, const char *path, const char **ret_rel)
{
	for (size_t i = 0; i < j->nr_all; i++) {
		size_t n = strlen(j->src[i].prefix);
		if (strncmp(path, j->src[i].prefix, n))
			continue;
		if (path[n] == '\0') {
			*ret_rel = path + n;
			return &j->src[i];
		}
		if (path[n] == '/') {
			*ret_rel = path + n + 1;
			return &j->src[i];
		}
	}
	return NULL;
}

/* The path an entry of the open disk writer's source lands on, for messages (caller frees). */
static char *disk_target(const struct rjob *j, const char *apath)
{
	const struct rsource *s = &j->src[j->disk_src];
	size_t n = strlen(s->prefix);
	const char *rel = !strncmp(apath, s->prefix, n) && apath[n] == '/' ? apath + n + 1 : "";

	return source_member_target(s->desc, s->target, rel);
}

static int close_disk(struct rjob *j, struct err *e)
{
	if (!j->disk)
		return 0;
	int r = tar_disk_close(&j->disk, j->src[j->disk_src].target, j->cwd_fd, e);
	j->disk_src = -1;
	return r;
}

struct entry_out {
	struct rjob *j;
	const char *apath;
	bool to_disk;
};

/* EXTRACT: an entry's data to the file of a database member, or to the disk writer. */
static int entry_out(void *ctx, const void *buf, size_t n, int64_t off, bool fill, struct err *e)
{
	struct entry_out *o = ctx;
	struct rjob *j = o->j;

	/* EXTRACT: a database member goes to its file (parts joined). */
	if (j->xfd >= 0 && extract_write(j, o->apath, buf, n, e) < 0)
		return -1;
	if (!fill && o->to_disk && archive_write_data_block(j->disk, buf, n, off) < ARCHIVE_OK) {
		auto_free char *target = disk_target(j, o->apath);
		return err_set(e, LB_EXIT_SOURCE, "cannot write '%s': %s", target,
			       tar_disk_cause(j->disk));
	}
	return 0;
}

/* Read the current entry's data: hash it, and (EXTRACT) write it to `disk` when given. */
static int copy_entry_data(struct rjob *j, const char *apath, char hex[SHA256_HEX_LEN + 1],
			   bool to_disk, struct err *e)
{
	struct entry_out o = { .j = j, .apath = apath, .to_disk = to_disk };
	uint64_t size;

	if (tar_read_data(j->in, apath, entry_out, &o, hex, &size, e) < 0)
		return -1;
	j->stats.files++;
	j->stats.bytes += size;
	return 0;
}

/* The other source's members come next: it closes what it keeps open. */
static int pause_open(struct rjob *j, struct err *e)
{
	struct rsource *s = j->open_src;

	j->open_src = NULL;
	return s && s->desc->ops->restore_pause ? s->desc->ops->restore_pause(s->ctx, e) : 0;
}

struct stage_read {
	struct rjob *j;
	const char *path;
	char *hex;
	bool done;
};

/* APPLY: the staging source reads the entry's data; it is hashed on the way. */
static int stage_read(void *ctx, tar_data_fn *fn, void *fn_ctx, struct err *e)
{
	struct stage_read *r = ctx;
	uint64_t size;

	r->done = true;
	if (tar_read_data(r->j->in, r->path, fn, fn_ctx, r->hex, &size, e) < 0)
		return -1;
	r->j->stats.files++;
	r->j->stats.bytes += size;
	return 0;
}

/* APPLY: a file or directory entry goes to its source's staging copy. */
static int stage_entry(struct rjob *j, struct rsource *s, const char *rel, const char *path,
		       struct archive_entry *ent, struct err *e)
{
	char hex[SHA256_HEX_LEN + 1] = "";
	struct stage_read rd = { .j = j, .path = path, .hex = hex };
	struct restore_member m = {
		.rel = rel, .path = path, .ent = ent, .read = stage_read, .read_ctx = &rd
	};
	bool reg = archive_entry_filetype(ent) == AE_IFREG;

	if (j->open_src != s && pause_open(j, e) < 0)
		return -1;
	j->open_src = s;
	if (s->desc->ops->restore_member(s->ctx, &m, e) < 0)
		return -1;
	if (reg && !rd.done && copy_entry_data(j, path, hex, false, e) < 0)
		return -1;
	if (reg)
		sums_add(&j->computed, hex, path);
	return 0;
}

struct part_ctx {
	struct rjob *j;
	struct rsource *s;
};

/* A header that continues a database member: checked like every other entry. */
static int part_begin(void *ctx, const char *path, struct archive_entry *ent, struct err *e)
{
	struct part_ctx *c = ctx;

	if (!tar_path_safe(path))
		return err_set(e, LB_EXIT_INTEGRITY, "the archive holds an unsafe path '%s'", path);
	return c->s->desc->ops->check_member(path, path + strlen(c->s->prefix) + 1, ent, c->s->name,
					     e);
}

static void part_end(void *ctx, const char *path, const char hex[SHA256_HEX_LEN + 1], uint64_t size)
{
	struct part_ctx *c = ctx;

	sums_add(&c->j->computed, hex, path);
	c->j->stats.files++;
	c->j->stats.bytes += size;
}

static const struct part_check db_part_check = { .part_begin = part_begin, .part_end = part_end };

/*
 * APPLY: a database member goes to its module's staging object as the pass
 * reads and hashes it, parts joined; the swap waits for the verdict of the
 * whole pass (every SHA-256, gpg's), and a failed pass drops what was staged.
 */
static int feed_member(struct rjob *j, struct rsource *s, const char *rel, const char *path,
		       struct err *e)
{
	struct part_ctx c = { .j = j, .s = s };
	struct member_reader rd;

	if (pause_open(j, e) < 0)
		return -1;
	member_reader_init(&rd, j->in, s->prefix, rel);
	member_reader_verify(&rd, path, &db_part_check, &c);
	struct restore_member m = { .rel = rd.base, .path = path, .reader = &rd };
	int r = s->desc->ops->restore_member(s->ctx, &m, e);
	FAULT("restore.fed"); /* kill: staged in the pass, before the archive verified */
	/* What the module did not read (it may stop early) is read, hashed, all the same. */
	if (r == 0)
		r = member_skip(&rd, e);
	j->pending = rd.pending;
	j->archive_eof = rd.archive_eof;
	member_reader_release(&rd);
	return r;
}

static int handle_entry_at(struct rjob *j, struct archive_entry *ent, const char *path,
			   struct err *e)
{
	char hex[SHA256_HEX_LEN + 1] = "";
	mode_t type = archive_entry_filetype(ent);
	const char *rel;
	struct rsource *s;

	if (j->sums_seen)
		return err_set(e, LB_EXIT_INTEGRITY, "the archive has entries after %s ('%s')",
			       SUMS_PATH, path);
	if (!strcmp(path, SUMS_PATH)) {
		j->sums_seen = true;
		if (archive_entry_size(ent) > (la_int64_t)SUMS_MAX)
			return err_set(e, LB_EXIT_INTEGRITY, "%s is implausibly large", SUMS_PATH);
		return tar_read_all(j->in, SUMS_PATH, &j->recorded, e);
	}
	s = find_source(j, path, &rel);
	if (!s)
		return err_set(e, LB_EXIT_INTEGRITY,
			       "the archive holds '%s', which belongs to no source in its manifest",
			       path);
	/* Sources this run does not restore are verified all the same. */
	enum restore_mode mode = (size_t)(s - j->src) < j->nr_src ? j->opts->mode : RESTORE_VERIFY;
	if (mode == RESTORE_LIST)
		list_entry(j, s, rel, path, ent);
	if (s->desc->ops->check_member(path, rel, ent, s->name, e) < 0)
		return -1;
	if (s->desc->ops->after_verify) {
		if (mode == RESTORE_APPLY)
			return feed_member(j, s, rel, path, e);
		if (mode == RESTORE_EXTRACT && extract_db_member(j, s, rel, e) < 0)
			return -1;
		/* A source not extracted (--only) must not go on into the last one's file. */
		if (mode != RESTORE_EXTRACT)
			close_fd(&j->xfd);
		if (copy_entry_data(j, path, hex, false, e) < 0)
			return -1;
		sums_add(&j->computed, hex, path);
		return 0;
	}
	close_fd(&j->xfd);
	if (mode == RESTORE_APPLY)
		return stage_entry(j, s, rel, path, ent, e);
	if (mode == RESTORE_EXTRACT && extract_header(j, s, path, ent, e) < 0)
		return -1;
	if (type == AE_IFREG) {
		if (copy_entry_data(j, path, hex, mode == RESTORE_EXTRACT, e) < 0)
			return -1;
		sums_add(&j->computed, hex, path);
	}
	if (mode == RESTORE_EXTRACT) {
		int r = archive_write_finish_entry(j->disk);
		if (r == ARCHIVE_WARN)
			log_warn("'%s': %s", path, archive_error_string(j->disk));
		else if (r != ARCHIVE_OK)
			return err_set(e, LB_EXIT_SOURCE, "cannot restore '%s': %s", path,
				       tar_disk_cause(j->disk));
	} else if (mode == RESTORE_DRY_RUN) {
		preview_entry(j, s, rel, ent, hex);
	}
	return 0;
}

static int handle_entry(struct rjob *j, struct archive_entry *ent, struct err *e)
{
	const char *raw = archive_entry_pathname(ent);

	if (!raw || !tar_path_safe(raw))
		return err_set(e, LB_EXIT_INTEGRITY, "the archive holds an unsafe path '%s'",
			       raw ? raw : "(none)");
	/* Our own copy: the entry's pathname is rewritten below. */
	char *path = xstrdup(raw);
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		path[--n] = '\0';
	int r = handle_entry_at(j, ent, path, e);
	free(path);
	return r;
}

static int read_manifest(struct rjob *j, struct archive_entry *ent, struct err *e)
{
	struct strbuf text = STRBUF_INIT;
	char hex[SHA256_HEX_LEN + 1];
	struct sha256 h;
	int ret = -1;

	if (strcmp(archive_entry_pathname(ent), MANIFEST_PATH) ||
	    archive_entry_filetype(ent) != AE_IFREG || archive_entry_size(ent) > MANIFEST_MAX) {
		err_set(e, LB_EXIT_INTEGRITY,
			"'%s' is not a lifeboat archive: it does not start with %s", j->file,
			MANIFEST_PATH);
		goto out;
	}
	if (tar_read_all(j->in, MANIFEST_PATH, &text, e) < 0)
		goto out;
	if (manifest_from_json(text.buf, text.len, &j->m, e) < 0)
		goto out;
	/* A copy of another archive under this name (older, or another BACKUP_NAME's) is not it. */
	if (!j->m.name || !j->m.timestamp || strcmp(j->m.name, j->cfg->name) ||
	    strcmp(j->m.timestamp, j->entry->id.timestamp)) {
		err_set(e, LB_EXIT_INTEGRITY,
			"backup '%s' is not the backup its name says: its %s records backup '%s' "
			"of %s",
			j->file, MANIFEST_PATH, j->m.name ? j->m.name : "(none)",
			j->m.timestamp ? j->m.timestamp : "(no timestamp)");
		goto out;
	}
	sha256_init(&h);
	sha256_update(&h, text.buf, text.len);
	sha256_final_hex(&h, hex);
	sums_add(&j->computed, hex, MANIFEST_PATH);
	ret = setup_sources(j, e);
out:
	strbuf_release(&text);
	return ret;
}

/* Read every entry; errors caused by the archive itself are LB_EXIT_INTEGRITY. */
static int read_archive(struct rjob *j, struct err *e)
{
	struct archive_entry *ent;
	bool first = true;

	for (;;) {
		if (signals_pending())
			return err_set(e, LB_EXIT_INTERRUPTED, "interrupted by signal %d",
				       signals_pending());
		int r = ARCHIVE_OK;
		if (j->pending) {
			/* The header a database member's reader read past its end. */
			ent = j->pending;
			j->pending = NULL;
		} else if (j->archive_eof) {
			break;
		} else {
			r = archive_read_next_header(j->in, &ent);
		}
		if (r == ARCHIVE_EOF)
			break;
		if (r == ARCHIVE_WARN)
			log_warn("%s", archive_error_string(j->in));
		else if (r != ARCHIVE_OK)
			return err_set(e, LB_EXIT_INTEGRITY,
				       "backup '%s' is damaged or truncated: %s", j->file,
				       archive_error_string(j->in));
		if (first) {
			first = false;
			if (read_manifest(j, ent, e) < 0)
				return -1;
			continue;
		}
		if (handle_entry(j, ent, e) < 0)
			return -1;
	}
	if (first)
		return err_set(e, LB_EXIT_INTEGRITY, "backup '%s' is empty", j->file);
	return pause_open(j, e) < 0 ? -1 : close_disk(j, e);
}

static int countdown(const struct rjob *j, int seconds, struct err *e)
{
	fprintf(stderr, "lifeboat: backup '%s' verified; it will replace:\n", j->file);
	for (size_t i = 0; i < j->nr_src; i++)
		fprintf(stderr, "  %s%s\n", j->src[i].target, j->src[i].desc->replaces);
	for (int left = seconds; left > 0; left--) {
		fprintf(stderr, "\rrestoring in %2d s, press Ctrl-C to cancel ", left);
		fflush(stderr);
		struct timespec ts = { .tv_sec = 1 };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !signals_pending())
			;
		if (signals_pending()) {
			fprintf(stderr, "\n");
			return err_set(e, LB_EXIT_INTERRUPTED,
				       "restore cancelled; nothing was changed");
		}
	}
	if (seconds > 0)
		fprintf(stderr, "\n");
	return 0;
}

/*
 * DRILL's second pass: after the whole archive verified, stream each database
 * member to its module's scratch database. Members of files and directories
 * are skipped. (A restore feeds its databases in the verifying pass itself.)
 */
static int db_pass(struct rjob *j, struct err *e)
{
	struct crypt crypt = CRYPT_INIT;
	struct archive *in = NULL;
	struct archive_entry *ent = NULL;
	struct err rerr = ERR_INIT;
	int fd = -1, ret = -1;

	if (tar_reader_open(j->cfg, j->store, j->entry, &crypt, &fd, &in, &rerr) < 0)
		goto out;
	for (;;) {
		if (!ent) {
			int r = archive_read_next_header(in, &ent);
			if (r == ARCHIVE_EOF)
				break;
			if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
				err_set(&rerr, LB_EXIT_INTEGRITY, "cannot read the archive: %s",
					archive_error_string(in));
				goto out;
			}
		}
		char *path = xstrdup(archive_entry_pathname(ent));
		ent = NULL;
		const char *rel;
		struct rsource *s = find_source(j, path, &rel);
		if (!s || !s->desc->ops->after_verify || !s->begun || !*rel ||
		    (size_t)(s - j->src) >= j->nr_src) {
			free(path);
			continue;
		}
		struct member_reader rd;
		member_reader_init(&rd, in, s->prefix, rel);
		struct restore_member m = { .rel = rd.base, .path = path, .reader = &rd };
		int r = s->desc->ops->restore_member(s->ctx, &m, &rerr);
		free(path);
		/* What the module did not read (it may stop early) is skipped. */
		if (r == 0)
			r = member_skip(&rd, &rerr);
		member_reader_release(&rd);
		if (r < 0)
			goto out;
		if (rd.archive_eof)
			break;
		ent = rd.pending;
	}
	ret = 0;
out:
	if (in)
		archive_read_free(in);
	if (j->entry->id.encrypted && crypt_running(&crypt)) {
		if (ret < 0)
			crypt_kill(&crypt);
		else if (crypt_drain_and_finish(&crypt, j->entry->file, &rerr) < 0)
			ret = -1;
	}
	crypt_release(&crypt);
	close_fd(&fd);
	if (ret < 0)
		err_copy(e, &rerr);
	return ret;
}

/* The end of the sources of one pass (ok: what they staged is kept for the swap). */
static int end_sources(struct rjob *j, bool second, bool ok, struct err *e)
{
	int ret = 0;

	for (size_t i = 0; i < j->nr_src; i++) {
		struct rsource *s = &j->src[i];
		if (!s->begun || s->desc->ops->after_verify != second)
			continue;
		s->begun = false;
		if (s->desc->ops->restore_end(s->ctx, ok, e) < 0)
			ret = -1;
		s->ctx = NULL;
	}
	return ret;
}

/* Every source names what it staged (and where the old content will wait) in the journal. */
static int plan_swap(struct rjob *j, struct journal *jr, struct err *e)
{
	for (size_t i = 0; i < j->nr_src; i++) {
		struct rsource *s = &j->src[i];
		if (s->desc->ops->restore_plan && s->desc->ops->restore_plan(s->ctx, jr, e) < 0)
			return -1;
	}
	return 0;
}

/*
 * DRILL, after the verification: every database source configured now whose kind can
 * drill, restored into scratch databases (leftovers of a killed drill dropped first),
 * counted, and dropped again (restore_run's end drops them on every other path).
 */
static int drill(struct rjob *j, struct err *e)
{
	char prefix[32];
	bool any = false;

	restore_drill_prefix(j->cfg, prefix);
	for (size_t i = 0; i < j->nr_src; i++) {
		struct rsource *s = &j->src[i];
		const struct source_ops *ops = s->desc->ops;
		if (!ops->after_verify)
			continue;
		if (!ops->drill_check) {
			log_info("drill: %s source '%s' verified; it has no restore drill",
				 s->desc->display, s->name);
			continue;
		}
		if (!s->cfgsrc) {
			log_warn("drill: the backup's %s source '%s' is not configured now: "
				 "verified, not restored (no server to restore it on)",
				 s->desc->display, s->name);
			continue;
		}
		struct strvec dropped = STRVEC_INIT;
		int r = ops->drill_sweep(j->cfg, s->cfgsrc, prefix, &dropped, e);
		for (size_t k = 0; k < dropped.nr; k++)
			log_warn("drill: dropped '%s' on %s '%s', left by a drill that was killed",
				 dropped.v[k], s->desc->display, s->name);
		strvec_release(&dropped);
		if (r < 0 || begin_source(j, s, NULL, e) < 0)
			return -1;
		any = true;
	}
	if (!any)
		return 0;
	if (db_pass(j, e) < 0)
		return -1;
	for (size_t i = 0; i < j->nr_src; i++) {
		struct rsource *s = &j->src[i];
		struct strvec lines = STRVEC_INIT;
		if (!s->begun)
			continue;
		/* kill: a drill killed with its scratch databases restored (the next one drops
		 * them) */
		if (FAULT("drill.check"))
			return err_set(e, LB_EXIT_SOURCE, "drill: (fault injected)");
		int r = s->desc->ops->drill_check(s->ctx, &lines, e);
		for (size_t k = 0; k < lines.nr; k++) {
			log_info("drill: %s", lines.v[k]);
			if (j->opts->drill_report)
				strvec_push(j->opts->drill_report, lines.v[k]);
		}
		strvec_release(&lines);
		if (r < 0)
			return -1;
	}
	/* Dropped here, so a failure to drop is the drill's. */
	return end_sources(j, true, false, e);
}

/* Undo what the journal records; a failure leaves the journal for the next command. */
static void roll_back(struct rjob *j, struct journal *jr, const char *done)
{
	struct err e = ERR_INIT;

	jr->state = JOURNAL_ROLLING_BACK;
	if (journal_write(jr, &e) < 0 || recover_swap(j->cfg, jr, false, &e) < 0)
		log_error("rollback stopped: %s; the next lifeboat command (run, backup, restore, "
			  "prune) completes it before anything else",
			  e.msg);
	else if (done)
		log_error("%s", done);
}

/*
 * The swap, recorded in the journal (journal.h) before anything changes and
 * at every phase, so that a restore killed at any instant is finished or
 * undone by the next command: see recover.h. Every source was staged by the
 * pass, which verified the whole archive.
 */
static int apply(struct rjob *j, struct err *e)
{
	struct journal *jr = &j->jr;

	if (j->opts->countdown > 0 && countdown(j, j->opts->countdown, e) < 0)
		goto undo;
	/* Stop the application (the project's containers) now that the backup is verified. */
	if (j->opts->before_swap && j->opts->before_swap(j->opts->ctx, e) < 0)
		goto undo;
	/*
	 * The databases the pass staged are complete: the journal owns them, kept
	 * for the swap (a kind restored offline checks here that its server stopped).
	 */
	if (end_sources(j, true, true, e) < 0)
		goto undo;
	jr->state = JOURNAL_SWAPPING; /* every staged copy is complete and verified */
	if (plan_swap(j, jr, e) < 0 || recover_flush_staged(jr, e) < 0 ||
	    journal_write(jr, e) < 0) {
		jr->state = JOURNAL_STAGING;
		goto undo;
	}
	/* The journal owns the staged files and directories from here. */
	end_sources(j, false, true, e);
	/* From here a signal waits: the swap runs to its end, forward or back. */
	signals_defer(true);
	if (recover_swap(j->cfg, jr, true, e) < 0) {
		roll_back(j, jr, "restore rolled back: the data is as it was before");
		signals_defer(false);
		return -1;
	}
	for (size_t i = 0; i < j->nr_src; i++)
		log_info("restored %s '%s' %s '%s'", source_kind_str(j->src[i].kind),
			 j->src[i].name, j->src[i].desc->into, j->src[i].target);
	signals_defer(false);
	return 0;
undo:
	end_sources(j, true, false, e);
	if (jr->nr_d > 0) {
		/* Staged databases are in the journal: drop them through it. */
		roll_back(j, jr, "restore stopped: nothing was changed");
	} else {
		for (size_t i = 0; i < jr->nr_t; i++)
			if (jr->t[i].old)
				rmdir(jr->t[i].old);
	}
	return -1;
}

int restore_run(const struct config *cfg, struct store *store, const struct store_entry *entry,
		const struct restore_opts *opts, struct restore_stats *ret, struct err *e)
{
	struct rjob j = { .cfg = cfg,
			  .opts = opts,
			  .store = store,
			  .entry = entry,
			  .file = entry->file,
			  .m = MANIFEST_INIT,
			  .disk_src = -1,
			  .cwd_fd = -1,
			  .recorded = STRBUF_INIT,
			  .computed = STRBUF_INIT,
			  .xto_fd = -1,
			  .xstage_fd = -1,
			  .xfd = -1 };
	struct crypt crypt = CRYPT_INIT;
	struct err rerr = ERR_INIT;
	int fd = -1, rc = -1;

	j.cwd_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j.cwd_fd < 0)
		j.cwd_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* Signed archives first: an unsigned or forged one is refused before anything else. */
	if (tar_reader_check_signature(cfg, store, entry, &rerr) < 0)
		goto pass_failed;
	if (opts->mode == RESTORE_EXTRACT && extract_prepare(&j, &rerr) < 0)
		goto pass_failed;
	if (tar_reader_open(cfg, store, entry, &crypt, &fd, &j.in, &rerr) == 0)
		read_archive(&j, &rerr);
	else if (!j.in)
		goto pass_failed;
	pause_open(&j, &rerr);
	if (j.disk)
		close_disk(&j, &rerr);

	if (entry->id.encrypted) {
		if (rerr.code == LB_EXIT_SOURCE || rerr.code == LB_EXIT_INTERRUPTED) {
			/* Our side failed: no need to decrypt the rest. */
			crypt_kill(&crypt);
		} else {
			/* gpg's verdict explains most read errors (wrong key, damage): drain and
			 * ask. */
			struct err gerr = ERR_INIT;
			if (crypt_drain_and_finish(&crypt, entry->file, &gerr) < 0) {
				err_clear(&rerr);
				err_copy(&rerr, &gerr);
			}
		}
	}
pass_failed:
	if (err_isset(&rerr)) {
		err_copy(e, &rerr);
		goto out;
	}
	if (!j.sums_seen) {
		err_set(e, LB_EXIT_INTEGRITY, "backup '%s' is truncated: it has no %s", entry->file,
			SUMS_PATH);
		goto out;
	}
	struct strbuf detail = STRBUF_INIT;
	if (sums_compare(&j.recorded, &j.computed, &detail) < 0) {
		err_set(e, LB_EXIT_INTEGRITY, "backup '%s' is damaged: %s", entry->file,
			detail.buf);
		strbuf_release(&detail);
		goto out;
	}
	strbuf_release(&detail);

	if (opts->mode == RESTORE_DRY_RUN) {
		preview_finish(&j);
	} else if (opts->mode == RESTORE_APPLY && (j.applied = true, apply(&j, e) < 0)) {
		goto out;
	} else if (opts->mode == RESTORE_EXTRACT && extract_commit(&j, e) < 0) {
		goto out;
	} else if (opts->mode == RESTORE_LIST) {
		list_sources(&j);
	} else if (opts->mode == RESTORE_DRILL && drill(&j, e) < 0) {
		goto out;
	}
	j.stats.sources = j.nr_src;
	*ret = j.stats;
	rc = 0;
out:
	if (j.disk) {
		archive_write_free(j.disk);
		j.disk = NULL;
	}
	if (j.cwd_fd >= 0 && fchdir(j.cwd_fd) < 0)
		log_warn("cannot return to the working directory: %s", strerror(errno));
	if (j.in)
		archive_read_free(j.in);
	/* What is staged and not owned by the journal goes. */
	end_sources(&j, false, false, &rerr);
	end_sources(&j, true, false, &rerr);
	/* A pass that failed: the databases it staged (in the journal) are dropped. */
	if (j.jr_set && !j.applied && j.jr.nr_d > 0)
		roll_back(&j, &j.jr, NULL);
	if (j.jr_set)
		journal_release(&j.jr);
	extract_release(&j, rc == 0);
	crypt_release(&crypt);
	close_fd(&fd);
	close_fd(&j.cwd_fd);
	for (size_t i = 0; i < j.nr_all; i++)
		rsource_release(&j.src[i]);
	free(j.src);
	manifest_release(&j.m);
	restore_preview_release(&j.preview);
	strbuf_release(&j.recorded);
	strbuf_release(&j.computed);
	return rc;
}

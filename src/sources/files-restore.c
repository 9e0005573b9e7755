/*
 * Files and directories, restored: each source is staged in a directory on
 * its target's own file system through libarchive's disk writer as the
 * verifying pass reads it; restore_plan names the staged copy (and, for a
 * directory, where its old content will wait) in the journal, whose swap
 * recover.c runs.
 */
#include "common.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "exclude.h"
#include "fault.h"
#include "fs.h"
#include "journal.h"
#include "recover.h"
#include "restore.h"
#include "sources/source.h"
#include "stream/tar-reader.h"
#include "xalloc.h"

struct files_restore {
	enum source_kind kind;
	const char *name;
	char *target;
	char *stage;		    /* the staging directory */
	char *old;		    /* directories: where displaced entries wait until commit */
	struct archive_entry *root; /* the directory's own entry (mode, owner, mtime) */
	bool sqlite;
	const struct reporter *report;
	struct archive *disk;
	int cwd_fd;
	const struct exclude_list *exclude; /* dirs: BACKUP_EXCLUDE, left as it is on disk */
	const char *source;		    /* the configured source's name, which scopes it */
	struct owner_loss owners;	    /* not root: entries whose owner cannot be set */
	int stage_fd;			    /* the staging directory, open from its creation */
	int wb_fd;			    /* the regular file being written, for writeback */
	int64_t wb_start;		    /* its bytes before this went to writeback */
	int64_t wb_end;			    /* the end of what was written to it */
};

/*
 * Early writeback: every WRITEBACK_CHUNK of a file written (and its tail
 * when it is complete) starts going to disk at once, while decryption goes
 * on, instead of all in the syncfs before the swap. Only started, never
 * waited for here (waiting for the chunk before measured slower): the
 * kernel's dirty limits bound the memory as for any writer, and a write
 * error fails the restore either here or in restore_plan's syncfs, before
 * the swap.
 */
#define WRITEBACK_CHUNK ((int64_t)64 << 20)

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
}

/* Create the staging directory for one source, on the target's file system. */
static int files_restore_begin(const struct source_restore_req *req, void **ctx, struct err *e)
{
	struct files_restore *f = xcalloc(1, sizeof(*f));
	char *dir;

	*f = (struct files_restore){ .kind = req->kind,
				     .name = req->name,
				     .target = xstrdup(req->path),
				     .sqlite = req->sqlite,
				     .report = req->report,
				     .cwd_fd = req->cwd_fd,
				     .exclude = req->kind == SOURCE_DIR ? &req->cfg->exclude : NULL,
				     .source = req->target ? req->target->name : req->name,
				     .stage_fd = -1,
				     .wb_fd = -1 };
	*ctx = f;
	if (f->kind == SOURCE_DIR) {
		int r = mkdir_parents(f->target, 0755);
		if (!r && mkdir(f->target, 0700) < 0 && errno != EEXIST)
			r = -errno;
		struct stat st;
		if (!r && (stat(f->target, &st) < 0 || !S_ISDIR(st.st_mode)))
			r = errno ? -errno : -ENOTDIR;
		if (r)
			return err_set(e, LB_EXIT_SOURCE, "cannot create directory '%s': %s",
				       f->target, strerror(-r));
		dir = xstrdup(f->target);
	} else {
		int r = mkdir_parents(f->target, 0755);
		if (r)
			return err_set(e, LB_EXIT_SOURCE, "cannot create the directory of '%s': %s",
				       f->target, strerror(-r));
		dir = dir_of(f->target);
	}
	f->stage =
		xasprintf("%s%s" RESTORE_STAGE_PREFIX "XXXXXX", dir, strcmp(dir, "/") ? "/" : "");
	free(dir);
	if (!mkdtemp(f->stage)) {
		int saved = errno;
		free(f->stage);
		f->stage = NULL;
		return err_set(e, LB_EXIT_SOURCE,
			       "cannot create a staging directory for '%s': %s%s", f->target,
			       strerror(saved),
			       saved == EROFS ? " (mounted read-only? remove ':ro' from the volume "
						"to restore)"
					      : "");
	}
	/* Open before anything is written: its syncfs reports every write error since. */
	f->stage_fd = open(f->stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->stage_fd < 0)
		return err_set(e, LB_EXIT_SOURCE, "cannot open '%s': %s", f->stage,
			       strerror(errno));
	return 0;
}

/* Files have one regular file; neither kind special files or hard links. */
static int files_check_member(const char *path, const char *rel, struct archive_entry *ent,
			      const char *name, bool file, struct err *e)
{
	mode_t type = archive_entry_filetype(ent);

	if (file && (type != AE_IFREG || !*rel || strchr(rel, '/')))
		return err_set(e, LB_EXIT_INTEGRITY, "unexpected entry '%s' for file source '%s'",
			       path, name);
	if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
		return err_set(e, LB_EXIT_INTEGRITY, "unexpected special file '%s' in the archive",
			       path);
	if (archive_entry_hardlink(ent))
		return err_set(e, LB_EXIT_INTEGRITY, "unexpected hard link '%s' in the archive",
			       path);
	return 0;
}

static int file_check_member(const char *path, const char *rel, struct archive_entry *ent,
			     const char *name, struct err *e)
{
	return files_check_member(path, rel, ent, name, true, e);
}

static int dir_check_member(const char *path, const char *rel, struct archive_entry *ent,
			    const char *name, struct err *e)
{
	return files_check_member(path, rel, ent, name, false, e);
}

static int files_restore_pause(void *ctx, struct err *e)
{
	struct files_restore *f = ctx;

	return tar_disk_close(&f->disk, f->target, f->cwd_fd, e);
}

struct data_out {
	struct files_restore *f;
	const struct restore_member *m;
};

static int write_failed(struct files_restore *f, const struct restore_member *m, const char *cause,
			struct err *e)
{
	auto_free char *target = source_member_target(source_kind_desc(f->kind), f->target, m->rel);
	return err_set(e, LB_EXIT_SOURCE, "cannot write '%s': %s", target, cause);
}

/* Start writeback of the file's bytes not yet kicked. */
static int writeback_kick(struct files_restore *f, const struct restore_member *m, struct err *e)
{
	if (f->wb_fd < 0 || f->wb_end <= f->wb_start)
		return 0;
	if (FAULT("restore.writeback")) {
		errno = EIO;
		return write_failed(f, m, strerror(errno), e);
	}
	if (sync_file_range(f->wb_fd, f->wb_start, f->wb_end - f->wb_start, SYNC_FILE_RANGE_WRITE) <
	    0)
		return write_failed(f, m, strerror(errno), e);
	f->wb_start = f->wb_end;
	return 0;
}

/* An entry's data blocks to the disk writer (a hole stays a hole). */
static int data_out(void *ctx, const void *buf, size_t n, int64_t off, bool fill, struct err *e)
{
	struct data_out *o = ctx;
	struct files_restore *f = o->f;

	if (fill)
		return 0;
	if (archive_write_data_block(f->disk, buf, n, off) < ARCHIVE_OK)
		return write_failed(f, o->m, tar_disk_cause(f->disk), e);
	if (off + (int64_t)n > f->wb_end)
		f->wb_end = off + (int64_t)n;
	return f->wb_end - f->wb_start >= WRITEBACK_CHUNK ? writeback_kick(f, o->m, e) : 0;
}

static int files_restore_member(void *ctx, const struct restore_member *m, struct err *e)
{
	struct files_restore *f = ctx;
	struct archive_entry *ent = m->ent;

	if (f->kind == SOURCE_DIR && !*m->rel) {
		/* The directory itself: applied to the target after the swap. */
		if (f->root)
			archive_entry_free(f->root);
		f->root = archive_entry_clone(ent);
		owner_loss_note(&f->owners, ent, m->path);
		return 0;
	}
	/* Excluded now: what is on disk stays (the swap carries it over); the data is hashed. */
	if (f->kind == SOURCE_DIR &&
	    exclude_covers(f->exclude, f->source, m->rel, archive_entry_filetype(ent) == AE_IFDIR))
		return 0;
	if (!f->disk && tar_disk_open(f->stage, -1, &f->disk, e) < 0)
		return -1;
	owner_loss_note(&f->owners, ent, m->path);
	const char *base = strrchr(f->target, '/') + 1;
	archive_entry_set_pathname(ent, f->kind == SOURCE_FILE ? base : m->rel);
	archive_entry_set_uname(ent, NULL);
	archive_entry_set_gname(ent, NULL);
	int r = archive_write_header(f->disk, ent);
	if (r == ARCHIVE_WARN)
		report(f->report, LOG_WARN, "'%s': %s", m->path, archive_error_string(f->disk));
	else if (r != ARCHIVE_OK)
		return err_set(e, LB_EXIT_SOURCE, "cannot restore '%s' into '%s': %s", m->path,
			       f->stage, archive_error_string(f->disk));
	if (archive_entry_filetype(ent) == AE_IFREG) {
		struct data_out o = { .f = f, .m = m };
		/* The file the disk writer just created (its parents are checked directories). */
		f->wb_fd = open(archive_entry_pathname(ent), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		f->wb_start = f->wb_end = 0;
		if (m->read(m->read_ctx, data_out, &o, e) < 0)
			return -1;
	}
	r = archive_write_finish_entry(f->disk);
	if (r == ARCHIVE_WARN)
		report(f->report, LOG_WARN, "'%s': %s", m->path, archive_error_string(f->disk));
	else if (r != ARCHIVE_OK)
		return err_set(e, LB_EXIT_SOURCE, "cannot restore '%s': %s", m->path,
			       tar_disk_cause(f->disk));
	r = writeback_kick(f, m, e);
	close_fd(&f->wb_fd);
	return r;
}

/*
 * The excluded entries below target directory `dfd` (at `rel`, "" for the
 * target itself) into `keep`: each one the swap carries over as it is. The
 * staged copy must leave room for it: its parents there are directories or
 * absent (a file or symlink of the backup in their place fails the restore
 * before anything changed).
 */
static int find_kept(struct files_restore *f, int dfd, const char *rel, struct strvec *keep,
		     struct err *e)
{
	int lfd = dup(dfd);
	DIR *d = lfd < 0 ? NULL : fdopendir(lfd);
	struct dirent *de;
	int ret = 0;

	if (!d) {
		close_fd(&lfd);
		return err_set(e, LB_EXIT_SOURCE, "cannot read '%s/%s': %s", f->target, rel,
			       strerror(errno));
	}
	while (!ret && (de = readdir(d))) {
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!*rel &&
		    (!strncmp(de->d_name, RESTORE_STAGE_PREFIX, strlen(RESTORE_STAGE_PREFIX)) ||
		     !strncmp(de->d_name, RESTORE_OLD_PREFIX, strlen(RESTORE_OLD_PREFIX))))
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		auto_free char *sub =
			*rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
		if (exclude_match(f->exclude, f->source, sub, S_ISDIR(st.st_mode))) {
			strvec_push(keep, sub);
			continue;
		}
		if (!S_ISDIR(st.st_mode))
			continue;
		auto_close int sfd =
			openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sfd < 0) {
			ret = err_set(e, LB_EXIT_SOURCE, "cannot open '%s/%s': %s", f->target, sub,
				      strerror(errno));
			break;
		}
		ret = find_kept(f, sfd, sub, keep, e);
	}
	closedir(d);
	return ret;
}

static int plan_kept(struct files_restore *f, struct journal_target *t, struct err *e)
{
	if (!exclude_any(f->exclude, f->source))
		return 0;
	auto_close int dfd = open(f->target, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return err_set(e, LB_EXIT_SOURCE, "cannot open '%s': %s", f->target,
			       strerror(errno));
	if (find_kept(f, dfd, "", &t->keep, e) < 0)
		return -1;
	for (size_t i = 0; i < t->keep.nr; i++) {
		const char *rel = t->keep.v[i];
		for (const char *p = strchr(rel, '/'); p; p = strchr(p + 1, '/')) {
			auto_free char *staged =
				xasprintf("%s/%.*s", f->stage, (int)(p - rel), rel);
			struct stat st;
			if (lstat(staged, &st) == 0 && !S_ISDIR(st.st_mode))
				return err_set(e, LB_EXIT_SOURCE,
					       "cannot keep '%s/%s' (BACKUP_EXCLUDE): the backup "
					       "has a %s at '%s/%.*s'",
					       f->target, rel,
					       S_ISLNK(st.st_mode) ? "symlink" : "file", f->target,
					       (int)(p - rel), rel);
		}
	}
	return 0;
}

/*
 * Name the target in the journal with its staged copy, the directory its
 * old content will wait in (created now, empty) and the excluded entries
 * the swap carries over.
 */
static int files_restore_plan(void *ctx, struct journal *jr, struct err *e)
{
	struct files_restore *f = ctx;
	struct stat st;
	struct journal_target *t = journal_add_target(jr, f->kind, f->name, f->target, f->stage);

	/*
	 * Wait for the writeback begun while staging: the descriptor open since
	 * the stage was made also reports an error the kernel's own writeback
	 * found before recover_flush_staged's final syncfs opens the stage.
	 */
	if (syncfs(f->stage_fd) < 0)
		return err_set(e, LB_EXIT_SOURCE, "cannot flush '%s' to disk: %s", f->stage,
			       strerror(errno));
	if (f->kind == SOURCE_FILE) {
		auto_free char *staged = xasprintf("%s/%s", f->stage, strrchr(f->target, '/') + 1);
		if (lstat(staged, &st) < 0)
			return err_set(e, LB_EXIT_SOURCE, "cannot find the staged copy '%s': %s",
				       staged, strerror(errno));
		t->sqlite = f->sqlite;
		t->ino = (uint64_t)st.st_ino;
		t->dev = (uint64_t)st.st_dev;
		return 0;
	}
	f->old = xasprintf("%s/" RESTORE_OLD_PREFIX "XXXXXX", f->target);
	if (!mkdtemp(f->old)) {
		int saved = errno;
		free(f->old);
		f->old = NULL;
		return err_set(e, LB_EXIT_SOURCE, "cannot create a directory in '%s': %s",
			       f->target, strerror(saved));
	}
	t->old = xstrdup(f->old);
	if (plan_kept(f, t, e) < 0)
		return -1;
	if (stat(f->target, &st) == 0) {
		t->times[0] = st.st_atim;
		t->times[1] = st.st_mtim;
	}
	if (f->root) {
		t->root = (struct journal_meta){
			.set = true,
			.mode = archive_entry_perm(f->root),
			.uid = (uid_t)archive_entry_uid(f->root),
			.gid = (gid_t)archive_entry_gid(f->root),
			.atime = { archive_entry_atime(f->root),
				   archive_entry_atime_nsec(f->root) },
			.mtime = { archive_entry_mtime(f->root),
				   archive_entry_mtime_nsec(f->root) },
		};
		if (!archive_entry_atime_is_set(f->root))
			t->root.atime = t->root.mtime;
	}
	return 0;
}

/*
 * ok: the journal owns the staged copy now (its swap or rollback removes it);
 * else the staged copy goes.
 */
static int files_restore_end(void *ctx, bool ok, struct err *e)
{
	struct files_restore *f = ctx;

	(void)e;
	if (!f)
		return 0;
	if (f->disk)
		archive_write_free(f->disk);
	close_fd(&f->wb_fd);
	close_fd(&f->stage_fd);
	if (f->stage && !ok)
		remove_tree(f->stage);
	if (ok) {
		auto_free char *what = xasprintf("'%s'", f->target);
		owner_loss_report(&f->owners, f->report, what);
	} else {
		owner_loss_report(&f->owners, NULL, NULL);
	}
	free(f->target);
	free(f->stage);
	free(f->old);
	if (f->root)
		archive_entry_free(f->root);
	free(f);
	return 0;
}

const struct source_ops dirs_ops = {
	.backup = files_backup,
	.check_member = dir_check_member,
	.restore_begin = files_restore_begin,
	.restore_member = files_restore_member,
	.restore_pause = files_restore_pause,
	.restore_plan = files_restore_plan,
	.restore_end = files_restore_end,
};

const struct source_ops files_ops = {
	.backup = files_backup,
	.check_member = file_check_member,
	.restore_begin = files_restore_begin,
	.restore_member = files_restore_member,
	.restore_pause = files_restore_pause,
	.restore_plan = files_restore_plan,
	.restore_end = files_restore_end,
};

/*
 * The restore's swap as a sequence of resumable steps over its journal, and
 * the recovery that every data-touching command runs first: a restore killed
 * at any instant is finished or undone, so every target ends wholly old or
 * wholly new.
 */
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "fault.h"
#include "fs.h"
#include "journal.h"
#include "log.h"
#include "recover.h"
#include "sources/source.h"
#include "sources/sqlite.h"
#include "xalloc.h"

#define KEEP_NAME RESTORE_OLD_PREFIX "file"
#define SIDE_NAME RESTORE_OLD_PREFIX "side"

static bool is_ours(const char *name)
{
	return !strncmp(name, RESTORE_STAGE_PREFIX, strlen(RESTORE_STAGE_PREFIX)) ||
	       !strncmp(name, RESTORE_OLD_PREFIX, strlen(RESTORE_OLD_PREFIX));
}

static const char *base_of(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

/* rename without replacing: where the file system lacks RENAME_NOREPLACE, check first. */
static int move_noreplace(int fromfd, const char *from, int tofd, const char *to)
{
	struct stat st;

	if (renameat2(fromfd, from, tofd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (fstatat(tofd, to, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		errno = EEXIST;
		return -1;
	}
	return renameat(fromfd, from, tofd, to);
}

/* What a single file's EBUSY means in a container. */
static const char *busy_hint(int err)
{
	return err == EBUSY ? " (it is a mount point: mount its directory instead of the single "
			      "file)"
			    : "";
}

/* Move every entry of `from` but our own staging directories into `to`. */
static int move_entries(const char *from, const char *to, struct err *e)
{
	DIR *d = opendir(from);
	struct dirent *de;
	int ret = 0;

	if (!d)
		return err_set(e, LB_EXIT_SOURCE, "cannot read '%s': %s", from, strerror(errno));
	auto_close int tofd = open(to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tofd < 0) {
		closedir(d);
		return err_set(e, LB_EXIT_SOURCE, "cannot open '%s': %s", to, strerror(errno));
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || is_ours(de->d_name))
			continue;
		/* fail: as if the rename had failed (EIO) */
		int r = FAULT("restore.swap")
				? (errno = EIO, -1)
				: move_noreplace(dirfd(d), de->d_name, tofd, de->d_name);
		if (r < 0) {
			ret = err_set(e, LB_EXIT_SOURCE, "cannot move '%s/%s' to '%s': %s", from,
				      de->d_name, to, strerror(errno));
			break;
		}
	}
	closedir(d);
	return ret;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/*
 * Record the next phase, once the renames of this one are on disk: after a
 * power loss the file system is then never behind the journal by more than
 * the phase under way, whose steps are all restartable.
 */
static int set_phase(struct journal *j, struct journal_target *t, enum journal_phase p,
		     struct err *e)
{
	auto_free char *parent = NULL;

	if (t->kind == SOURCE_FILE) {
		const char *slash = strrchr(t->target, '/');
		parent = !slash || slash == t->target
				 ? xstrdup("/")
				 : xstrndup(t->target, (size_t)(slash - t->target));
	}
	const char *dirs[] = { parent ? parent : t->target, t->stage, t->old };
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		int r = dirs[i] && exists(dirs[i]) ? fsync_dir(dirs[i]) : 0;
		if (r < 0)
			return err_set(e, LB_EXIT_SOURCE, "cannot flush '%s' to disk: %s", dirs[i],
				       strerror(-r));
	}
	t->phase = p;
	return journal_write(j, e);
}

/* The directory part of `path` ("" for none). */
static char *parent_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup("");
}

struct dir_times {
	char *path;
	struct timespec ts[2];
	bool set;
};

static void times_save(struct dir_times *d, char *path)
{
	struct stat st;

	d->path = path;
	d->set = lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
	if (d->set) {
		d->ts[0] = st.st_atim;
		d->ts[1] = st.st_mtim;
	}
}

/* Put a directory's times back after a rename or mkdir in it touched them. */
static void times_restore(struct dir_times *d)
{
	if (d->set)
		utimensat(AT_FDCWD, d->path, d->ts, AT_SYMLINK_NOFOLLOW);
	free(d->path);
}

/*
 * Move `from` to `to` (no replace) with both parent directories' times kept:
 * carrying a kept entry must not change the restored tree's metadata.
 */
static int move_kept(const char *from, const char *to, struct err *e)
{
	struct dir_times a, b;

	times_save(&a, parent_of(from));
	times_save(&b, parent_of(to));
	/* fail: as if the rename had failed (EIO) */
	int r = FAULT("restore.keep") ? (errno = EIO, -1)
				      : move_noreplace(AT_FDCWD, from, AT_FDCWD, to);
	int saved = errno;
	times_restore(&b);
	times_restore(&a);
	if (r < 0)
		return err_set(e, LB_EXIT_SOURCE, "cannot move '%s' to '%s': %s", from, to,
			       strerror(saved));
	return 0;
}

/*
 * The parents of target/REL that the backup lacks, made as they are in `old`
 * (mode and times), so an excluded entry comes back where it was.
 */
static int make_parents(const struct journal_target *t, const char *rel, struct err *e)
{
	for (const char *p = strchr(rel, '/'); p; p = strchr(p + 1, '/')) {
		auto_free char *dir = xasprintf("%s/%.*s", t->target, (int)(p - rel), rel);
		auto_free char *was = xasprintf("%s/%.*s", t->old, (int)(p - rel), rel);
		struct stat st, ost;
		if (lstat(dir, &st) == 0) {
			if (!S_ISDIR(st.st_mode))
				return err_set(e, LB_EXIT_SOURCE,
					       "cannot keep '%s/%s': '%s' is not a directory",
					       t->target, rel, dir);
			continue;
		}
		bool have = lstat(was, &ost) == 0 && S_ISDIR(ost.st_mode);
		struct dir_times up;
		times_save(&up, parent_of(dir));
		int r = mkdir(dir, have ? (ost.st_mode & 07777) : 0755);
		int saved = errno;
		times_restore(&up);
		if (r < 0)
			return err_set(e, LB_EXIT_SOURCE, "cannot create '%s': %s", dir,
				       strerror(saved));
		if (have) {
			struct timespec ts[2] = { ost.st_atim, ost.st_mtim };
			if (geteuid() == 0 && chown(dir, ost.st_uid, ost.st_gid) < 0)
				log_warn("cannot set the owner of '%s': %s", dir, strerror(errno));
			utimensat(AT_FDCWD, dir, ts, 0);
		}
	}
	return 0;
}

/*
 * KEEPING: every entry BACKUP_EXCLUDE left out goes from `old` back to its
 * place in the target (forward), or from the target back into `old` (back).
 * Each move looks at where the entry is, so a restarted step goes on.
 */
static int keep_move(const struct journal_target *t, bool forward, struct err *e)
{
	for (size_t i = 0; i < t->keep.nr; i++) {
		const char *rel = t->keep.v[i];
		auto_free char *in_old = xasprintf("%s/%s", t->old, rel);
		auto_free char *in_target = xasprintf("%s/%s", t->target, rel);
		const char *from = forward ? in_old : in_target, *to = forward ? in_target : in_old;
		if (!exists(from))
			continue; /* moved already (or gone since the plan) */
		if (exists(to))
			return err_set(e, LB_EXIT_SOURCE, "cannot keep '%s': '%s' exists already",
				       from, to);
		if (forward && make_parents(t, rel, e) < 0)
			return -1;
		if (move_kept(from, to, e) < 0)
			return -1;
	}
	return 0;
}

/*
 * A directory's swap is two halves, each moving every entry of one place into
 * another while the journal names the half under way: CLEARING moves the
 * target's entries into `old`, FILLING the staged ones into the target.
 * Forward runs them in order; back undoes them in the reverse order, each
 * moving the other way. The phase written around each half tells a restarted
 * step which entries of the target are old and which new. A third step,
 * KEEPING, carries the entries BACKUP_EXCLUDE left out (named in the journal
 * at the plan) from `old` back into the new content.
 */
static int dir_swap(struct journal *j, struct journal_target *t, bool forward, struct err *e)
{
	const struct {
		enum journal_phase phase; /* while it runs; the next one once it is done */
		const char *from, *to;	  /* forward */
	} half[] = {
		{ PHASE_CLEARING, t->target, t->old },
		{ PHASE_FILLING, t->stage, t->target },
	};

	if (forward) {
		if (t->phase == PHASE_PENDING && set_phase(j, t, PHASE_CLEARING, e) < 0)
			return -1;
		if (t->phase == PHASE_CLEARING && mkdir(t->old, 0700) < 0 && errno != EEXIST)
			return err_set(e, LB_EXIT_SOURCE, "cannot create '%s': %s", t->old,
				       strerror(errno));
		for (size_t i = 0; i < ARRAY_SIZE(half); i++)
			if (t->phase == half[i].phase &&
			    (move_entries(half[i].from, half[i].to, e) < 0 ||
			     set_phase(j, t, (enum journal_phase)(half[i].phase + 1), e) < 0))
				return -1;
		if (t->phase == PHASE_KEEPING &&
		    (keep_move(t, true, e) < 0 || set_phase(j, t, PHASE_DONE, e) < 0))
			return -1;
		return 0;
	}
	/* The kept entries first go back into `old`, whose parents still hold them. */
	if (t->phase >= PHASE_KEEPING &&
	    (keep_move(t, false, e) < 0 || set_phase(j, t, PHASE_FILLING, e) < 0))
		return -1;
	for (size_t i = ARRAY_SIZE(half); i-- > 0;) {
		if (t->phase < half[i].phase)
			continue;
		/* A half killed before `old` existed moved nothing into it. */
		if ((half[i].to != t->old || exists(t->old)) &&
		    move_entries(half[i].to, half[i].from, e) < 0)
			return -1;
		/* Moving entries touched the directory's times: put them back too. */
		if (half[i].phase == PHASE_CLEARING && (t->times[1].tv_sec || t->times[1].tv_nsec))
			utimensat(AT_FDCWD, t->target, t->times, 0);
		if (set_phase(j, t, (enum journal_phase)(half[i].phase - 1), e) < 0)
			return -1;
	}
	return 0;
}

/* Is `path` the staged file the journal recorded (by inode)? */
static bool is_staged_file(const struct journal_target *t, const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 && (uint64_t)st.st_ino == t->ino &&
	       (uint64_t)st.st_dev == t->dev;
}

static int do_rename(const char *from, const char *to, struct err *e)
{
	/* fail: as if the rename had failed (EIO) */
	if (FAULT("restore.swap"))
		errno = EIO;
	else if (rename(from, to) == 0)
		return 0;
	return err_set(e, LB_EXIT_SOURCE, "cannot move '%s' to '%s': %s%s", from, to,
		       strerror(errno), busy_hint(errno));
}

/* Exchange two paths atomically; 1 when the file system cannot (EINVAL, ENOSYS). */
static int exchange(const char *a, const char *b, struct err *e)
{
	if (FAULT("restore.swap"))
		errno = EIO;
	else if (FAULT("restore.noexchange")) /* fail: as if the file system had no exchange */
		return 1;
	else if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0)
		return 0;
	else if (errno == EINVAL || errno == ENOSYS)
		return 1;
	return err_set(e, LB_EXIT_SOURCE, "cannot exchange '%s' and '%s': %s%s", a, b,
		       strerror(errno), busy_hint(errno));
}

/*
 * A file: exchanged with its staged copy in one step, so the target always
 * exists; where the file system cannot exchange, the old file is renamed
 * aside first (the target is then absent between two renames). The staged
 * file's inode tells a restarted step where each copy is.
 */
static int file_forward(struct journal *j, struct journal_target *t, struct err *e)
{
	auto_free char *staged = xasprintf("%s/%s", t->stage, base_of(t->target));
	auto_free char *keep = xasprintf("%s/" KEEP_NAME, t->stage);

	if (t->phase == PHASE_DONE)
		return 0;
	if (!is_staged_file(t, t->target)) {
		if (!is_staged_file(t, staged))
			return err_set(e, LB_EXIT_SOURCE,
				       "the staged copy '%s' of '%s' is missing or changed", staged,
				       t->target);
		/* The old database's WAL, shm and journal would be replayed into the new one. */
		for (size_t i = 0; t->sqlite && i < SQLITE_NR_SIDECARS; i++) {
			auto_free char *from = xasprintf("%s%s", t->target, sqlite_sidecars[i]);
			auto_free char *to =
				xasprintf("%s/" SIDE_NAME "%s", t->stage, sqlite_sidecars[i]);
			if (exists(from) && !exists(to) && do_rename(from, to, e) < 0)
				return -1;
		}
		int r = exists(t->target) ? exchange(staged, t->target, e) : 1;
		if (r < 0)
			return -1;
		if (r == 1 && ((exists(t->target) && do_rename(t->target, keep, e) < 0) ||
			       do_rename(staged, t->target, e) < 0))
			return -1;
	}
	return set_phase(j, t, PHASE_DONE, e);
}

static int file_back(struct journal *j, struct journal_target *t, struct err *e)
{
	auto_free char *staged = xasprintf("%s/%s", t->stage, base_of(t->target));
	auto_free char *keep = xasprintf("%s/" KEEP_NAME, t->stage);

	if (is_staged_file(t, t->target)) {
		int r = exists(staged) ? exchange(t->target, staged, e) : 1;
		if (r < 0)
			return -1;
		if (r == 1) {
			/* The old file is at `staged` after an exchange: keep it at `keep`. */
			if (exists(staged) && !exists(keep) && do_rename(staged, keep, e) < 0)
				return -1;
			if (do_rename(t->target, staged, e) < 0)
				return -1;
		}
	}
	if (!exists(t->target) && exists(keep) && do_rename(keep, t->target, e) < 0)
		return -1;
	for (size_t i = 0; t->sqlite && i < SQLITE_NR_SIDECARS; i++) {
		auto_free char *from =
			xasprintf("%s/" SIDE_NAME "%s", t->stage, sqlite_sidecars[i]);
		auto_free char *to = xasprintf("%s%s", t->target, sqlite_sidecars[i]);
		if (exists(from) && do_rename(from, to, e) < 0)
			return -1;
	}
	return set_phase(j, t, PHASE_PENDING, e);
}

static void remove_quietly(const char *path)
{
	/* Killed here, the next command deletes what is left. */
	FAULT("restore.finish");
	int r = remove_tree(path);
	if (r < 0)
		log_warn("cannot remove '%s': %s", path, strerror(-r));
}

/*
 * After every target took its staged copy: cleanup, then the directory's own metadata
 * (removing the staged and old copies from inside the target would touch its times).
 */
static void finish_target(const struct journal_target *t)
{
	if (t->old)
		remove_quietly(t->old);
	remove_quietly(t->stage);
	if (t->kind == SOURCE_DIR && t->root.set) {
		struct timespec ts[2] = { t->root.atime, t->root.mtime };
		if (geteuid() == 0 && chown(t->target, t->root.uid, t->root.gid) < 0)
			log_warn("cannot set the owner of '%s': %s", t->target, strerror(errno));
		if (chmod(t->target, t->root.mode & 07777) < 0)
			log_warn("cannot set the mode of '%s': %s", t->target, strerror(errno));
		if (utimensat(AT_FDCWD, t->target, ts, 0) < 0)
			log_warn("cannot set the time of '%s': %s", t->target, strerror(errno));
	}
}

static int db_step(const struct config *cfg, const struct journal_db *d, enum db_swap_step step,
		   struct err *e)
{
	const struct source_spec *spec = config_find_source(cfg, d->kind, d->source);

	if (!spec)
		return err_set(e, LB_EXIT_CONFIG,
			       "%s source '%s' is not configured now (%s): its databases cannot "
			       "be swapped",
			       source_kind_str(d->kind), d->source, source_var(d->kind));
	return source_ops_for(d->kind)->swap(cfg, spec, d, step, e);
}

int recover_flush_staged(const struct journal *j, struct err *e)
{
	for (size_t i = 0; i < j->nr_t; i++) {
		auto_close int fd = open(j->t[i].stage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || syncfs(fd) < 0)
			return err_set(e, LB_EXIT_SOURCE, "cannot flush '%s' to disk: %s",
				       j->t[i].stage, strerror(errno));
	}
	return 0;
}

int recover_swap(const struct config *cfg, struct journal *j, bool forward, struct err *e)
{
	if (forward) {
		for (size_t i = 0; i < j->nr_d; i++)
			if (db_step(cfg, &j->d[i], DB_SWAP_FORWARD, e) < 0)
				return -1;
		for (size_t i = 0; i < j->nr_t; i++) {
			struct journal_target *t = &j->t[i];
			if ((t->kind == SOURCE_DIR ? dir_swap(j, t, true, e)
						   : file_forward(j, t, e)) < 0)
				return -1;
		}
		/* Every target holds the backup: from here on the old copies go. */
		for (size_t i = 0; i < j->nr_d; i++) {
			struct err de = ERR_INIT;
			if (db_step(cfg, &j->d[i], DB_SWAP_FINISH, &de) < 0)
				log_warn("%s", de.msg);
		}
		for (size_t i = 0; i < j->nr_t; i++)
			finish_target(&j->t[i]);
	} else {
		for (size_t i = j->nr_t; i-- > 0;) {
			struct journal_target *t = &j->t[i];
			if ((t->kind == SOURCE_DIR ? dir_swap(j, t, false, e)
						   : file_back(j, t, e)) < 0)
				return -1;
		}
		for (size_t i = j->nr_d; i-- > 0;)
			if (db_step(cfg, &j->d[i], DB_SWAP_BACK, e) < 0)
				return -1;
		for (size_t i = 0; i < j->nr_t; i++) {
			if (j->t[i].old)
				remove_quietly(j->t[i].old);
			remove_quietly(j->t[i].stage);
		}
	}
	return journal_remove(j, e);
}

/* Remove our staging entries in `dir` (only RESTORE_STAGE_PREFIX ones when !all). */
static void remove_leftovers_in(const char *dir, bool all)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		bool stage =
			!strncmp(de->d_name, RESTORE_STAGE_PREFIX, strlen(RESTORE_STAGE_PREFIX));
		if (!stage && !(all && is_ours(de->d_name)))
			continue;
		auto_free char *path = xasprintf("%s/%s", strcmp(dir, "/") ? dir : "", de->d_name);
		int r = remove_tree(path);
		if (r < 0)
			log_warn("cannot remove '%s', left by a killed restore: %s", path,
				 strerror(-r));
		else
			log_info("removed '%s', left by a killed restore", path);
	}
	closedir(d);
}

/* Staging copies a restore killed before its journal existed left beside the targets. */
static void remove_leftovers(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->nr_sources; i++) {
		const struct source_spec *s = &cfg->sources[i];
		if (s->kind == SOURCE_DIR) {
			remove_leftovers_in(s->path, true);
		} else if (s->kind == SOURCE_FILE) {
			const char *slash = strrchr(s->path, '/');
			auto_free char *dir =
				slash == s->path || !slash
					? xstrdup("/")
					: xstrndup(s->path, (size_t)(slash - s->path));
			remove_leftovers_in(dir, false);
		}
	}
}

int recover_pending(const struct config *cfg, struct err *e)
{
	struct journal j;
	struct err re = ERR_INIT;
	char since[32] = "?";
	int r = journal_load(cfg, &j, &re);

	if (r < 0)
		return err_copy(e, &re);
	if (r > 0) {
		bool forward = j.state == JOURNAL_SWAPPING;
		struct tm tm;
		gmtime_r(&j.since, &tm);
		strftime(since, sizeof(since), "%Y-%m-%d %H:%M:%S UTC", &tm);
		log_warn("the restore of '%s' (pid %ld, started %s) was interrupted while %s; %s",
			 j.archive, j.pid, since, journal_state_str(j.state),
			 forward ? "every staged copy was complete: finishing its swap"
				 : "undoing it");
		if (recover_swap(cfg, &j, forward, &re) < 0) {
			err_set(e, LB_EXIT_SOURCE,
				"the restore of '%s' (started %s) was interrupted and cannot be "
				"%s: %s (its journal '%s' is kept for the next attempt)",
				j.archive, since, forward ? "finished" : "undone", re.msg, j.path);
			journal_release(&j);
			return -1;
		}
		log_info(forward ? "recovered the interrupted restore of '%s': rolled forward, "
				   "every target now holds that backup"
				 : "recovered the interrupted restore of '%s': rolled back, every "
				   "target holds what it held before",
			 j.archive);
		journal_release(&j);
	} else {
		/* A journal write killed before its rename leaves only the temp file. */
		auto_free char *tmp =
			xasprintf("%s/%s.restore.json.tmp", cfg->state_dir, cfg->name);
		unlink(tmp);
	}
	remove_leftovers(cfg);
	return 0;
}

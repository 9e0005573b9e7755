/*
 * Restore, verify and dry-run share one reader: gpg -> libarchive -> per entry.
 * A restore extracts each source into a staging directory on the target's own
 * file system, checks gpg's verdict and every SHA-256, and only then swaps the
 * staged content in, keeping the old content until every source has swapped.
 */
#include "common.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "crypt.h"
#include "dbsource.h"
#include "hash.h"
#include "log.h"
#include "manifest.h"
#include "restore.h"
#include "signals.h"

#define MANIFEST_MAX (1024 * 1024)
#define SUMS_MAX     (512u * 1024 * 1024)
#define STAGE_PREFIX ".lifeboat-restore."
#define OLD_PREFIX   ".lifeboat-old."

struct rsource {
	enum source_kind kind;
	char *name;
	char *target;
	char *prefix;		    /* dirs/NAME or files/NAME */
	char *stage;		    /* APPLY: staging directory */
	char *old;		    /* APPLY: where displaced entries wait until commit */
	struct archive_entry *root; /* the directory's own entry (mode, owner, mtime) */
	struct strvec moved_old;    /* names moved from target into old */
	struct strvec moved_new;    /* names moved from stage into target */
	struct strvec moved_side;   /* SQLite: suffixes of -wal/-shm/-journal files moved aside */
	bool sqlite;
	bool swapped;
	const struct source_spec *cfgsrc; /* databases: the configured target, or NULL */
	void *db_ctx;			  /* databases: the module's restore state */
	bool db_begun;
	struct timespec target_times[2]; /* the directory's times before the swap */
	struct strvec seen;		 /* DRY_RUN: relative paths present in the archive */
};

struct rjob {
	const struct config *cfg;
	const struct restore_opts *opts;
	struct store *store;
	const struct store_entry *entry;
	const char *file;
	struct manifest m;
	struct rsource *src;
	size_t nr_src;
	struct archive *in;
	struct archive *disk; /* APPLY: writer for the current source */
	ssize_t disk_src;
	int cwd_fd;
	struct strbuf recorded; /* SHA256SUMS from the archive */
	struct strbuf computed;
	bool sums_seen;
	struct restore_stats stats;
	unsigned changes; /* DRY_RUN */
};

static void rsource_release(struct rsource *s)
{
	free(s->name);
	free(s->target);
	free(s->prefix);
	free(s->stage);
	free(s->old);
	if (s->root)
		archive_entry_free(s->root);
	strvec_release(&s->moved_old);
	strvec_release(&s->moved_new);
	strvec_release(&s->moved_side);
	strvec_release(&s->seen);
}

int restore_find(struct store_set *set, const char *what, struct store_entry *ret,
		 struct store **ret_store, struct err *e)
{
	struct err list_err = ERR_INIT;

	if (!naming_timestamp_valid(what, NULL) || strlen(what) < TIMESTAMP_LEN)
		return err_set(
			e, LB_EXIT_USAGE,
			"'%s' is not a backup timestamp: expected YYYY-MM-DD-HHMMSS as shown by "
			"'lifeboat list'",
			what);
	/* Store by store, in order: a local copy is found even when S3 is unreachable. */
	for (size_t k = 0; k < set->nr; k++) {
		struct store_list l = { 0 };
		if (set->v[k]->ops->list(set->v[k], &l, &list_err) < 0) {
			store_list_release(&l);
			continue;
		}
		for (size_t i = 0; i < l.nr; i++) {
			if ((strlen(what) != TIMESTAMP_LEN || strcmp(l.v[i].id.timestamp, what)) &&
			    strcmp(l.v[i].file, what))
				continue;
			*ret_store = set->v[k];
			ret->file = xstrdup(l.v[i].file);
			ret->id = l.v[i].id;
			ret->size = l.v[i].size;
			ret->where = 1u << k;
			store_list_release(&l);
			return 0;
		}
		store_list_release(&l);
	}
	if (err_isset(&list_err))
		return err_set(e, list_err.code, "%s", list_err.msg);
	return err_set(e, LB_EXIT_NOT_FOUND, "no backup '%s' of '%s' (see 'lifeboat list')", what,
		       set->nr ? set->v[0]->cfg->name : "?");
}

/* mkdir -p for a target's parents; 0 or -errno. */
static int mkdir_parents(const char *path, mode_t mode)
{
	char *p = xstrdup(path);
	int r = 0;

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			r = -errno;
		*s = '/';
		if (r)
			break;
	}
	free(p);
	return r;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
}

/* Create the staging directory for one source, on the target's file system. */
static int make_stage(struct rsource *s, struct err *e)
{
	char *dir;

	if (s->kind == SOURCE_DIR) {
		int r = mkdir_parents(s->target, 0755);
		if (!r && mkdir(s->target, 0700) < 0 && errno != EEXIST)
			r = -errno;
		struct stat st;
		if (!r && (stat(s->target, &st) < 0 || !S_ISDIR(st.st_mode)))
			r = errno ? -errno : -ENOTDIR;
		if (r)
			return err_set(e, LB_EXIT_SOURCE, "cannot create directory '%s': %s",
				       s->target, strerror(-r));
		dir = xstrdup(s->target);
	} else {
		int r = mkdir_parents(s->target, 0755);
		if (r)
			return err_set(e, LB_EXIT_SOURCE, "cannot create the directory of '%s': %s",
				       s->target, strerror(-r));
		dir = dir_of(s->target);
	}
	s->stage = xasprintf("%s%s" STAGE_PREFIX "XXXXXX", dir, strcmp(dir, "/") ? "/" : "");
	free(dir);
	if (!mkdtemp(s->stage)) {
		int saved = errno;
		free(s->stage);
		s->stage = NULL;
		return err_set(e, LB_EXIT_SOURCE,
			       "cannot create a staging directory for '%s': %s%s", s->target,
			       strerror(saved),
			       saved == EROFS ? " (mounted read-only? remove ':ro' from the volume "
						"to restore)"
					      : "");
	}
	return 0;
}

static int setup_sources(struct rjob *j, struct err *e)
{
	j->src = xcalloc(j->m.nr_sources ? j->m.nr_sources : 1, sizeof(*j->src));
	for (size_t i = 0; i < j->m.nr_sources; i++) {
		const struct manifest_source *ms = &j->m.sources[i];
		const struct source_spec *cs = config_find_source(j->cfg, ms->kind, ms->name);
		struct rsource *s = &j->src[j->nr_src++];
		s->kind = ms->kind;
		s->name = xstrdup(ms->name);
		s->target = xstrdup(cs ? cs->path : ms->path);
		s->prefix = source_archive_prefix(ms->kind, ms->name);
		s->moved_old = (struct strvec)STRVEC_INIT;
		s->moved_new = (struct strvec)STRVEC_INIT;
		s->moved_side = (struct strvec)STRVEC_INIT;
		s->sqlite = ms->sqlite;
		s->seen = (struct strvec)STRVEC_INIT;
		if (source_is_db(s->kind)) {
			s->cfgsrc = cs;
			if (!cs && j->opts->mode == RESTORE_APPLY)
				return err_set(
					e, LB_EXIT_CONFIG,
					"the backup holds %s source '%s' (%s), but %s has no URI "
					"named '%s' now: add it (names come from the URI's "
					"database, "
					"or its host when it names none)",
					source_kind_str(s->kind), s->name, ms->path,
					source_var(s->kind), s->name);
			continue;
		}
		if (j->opts->mode == RESTORE_VERIFY)
			continue;
		if (cs && strcmp(cs->path, ms->path))
			log_info("%s '%s' was backed up from '%s'; restoring to '%s' as configured "
				 "now",
				 source_kind_str(s->kind), s->name, ms->path, cs->path);
		else if (!cs)
			log_info("%s '%s' is not configured now; restoring to '%s' as recorded in "
				 "the "
				 "backup",
				 source_kind_str(s->kind), s->name, s->target);
		if (j->opts->mode == RESTORE_APPLY && make_stage(s, e) < 0)
			return -1;
	}
	return 0;
}

/* Split an archive path into its source and the path relative to that source. */
static struct rsource *find_source(struct rjob *j, const char *path, const char **ret_rel)
{
	for (size_t i = 0; i < j->nr_src; i++) {
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

/* Reject absolute paths and empty, "." or ".." components. */
static bool archive_path_safe(const char *p)
{
	if (!*p || *p == '/')
		return false;
	for (;;) {
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!*end)
			return true;
		p = end + 1;
		if (!*p)
			return true; /* a trailing slash on a directory */
	}
}

/* The path an entry of the open disk writer's source lands on, for messages (caller frees). */
static char *disk_target(const struct rjob *j, const char *apath)
{
	const struct rsource *s = &j->src[j->disk_src];
	size_t n = strlen(s->prefix);

	if (s->kind == SOURCE_DIR && !strncmp(apath, s->prefix, n) && apath[n] == '/')
		return xasprintf("%s/%s", s->target, apath + n + 1);
	return xstrdup(s->target);
}

/*
 * Why the disk writer failed: its text ("Write failed") and the system's reason, kept in
 * archive_errno() ("No space left on device"). Returns a static buffer.
 */
static const char *disk_cause(struct archive *a)
{
	static char buf[512];
	const char *what = archive_error_string(a);
	int en = archive_errno(a);

	const char *reason = en > 0 ? strerror(en) : NULL;

	if (!reason)
		return what ? what : "unknown error";
	if (what && strstr(what, reason))
		return what;
	if (!what || !strcmp(what, "Write failed"))
		return reason;
	snprintf(buf, sizeof(buf), "%s: %s", what, reason);
	return buf;
}

static int close_disk(struct rjob *j, struct err *e)
{
	int ret = 0;

	if (!j->disk)
		return 0;
	/* Directory modes and times are fixed up at close, relative to our cwd. */
	if (archive_write_close(j->disk) != ARCHIVE_OK)
		ret = err_set(e, LB_EXIT_SOURCE, "cannot finish restoring '%s': %s",
			      j->src[j->disk_src].target, disk_cause(j->disk));
	archive_write_free(j->disk);
	j->disk = NULL;
	j->disk_src = -1;
	if (fchdir(j->cwd_fd) < 0 && !ret)
		ret = err_set(e, LB_EXIT_INTERNAL, "cannot return to the working directory: %s",
			      strerror(errno));
	return ret;
}

static int open_disk(struct rjob *j, struct rsource *s, struct err *e)
{
	int flags = ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
		    ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;

	if (j->disk && j->disk_src == s - j->src)
		return 0;
	if (close_disk(j, e) < 0)
		return -1;
	if (geteuid() == 0)
		flags |= ARCHIVE_EXTRACT_OWNER;
	if (chdir(s->stage) < 0)
		return err_set(e, LB_EXIT_SOURCE, "cannot enter '%s': %s", s->stage,
			       strerror(errno));
	j->disk = archive_write_disk_new();
	archive_write_disk_set_options(j->disk, flags);
	j->disk_src = s - j->src;
	return 0;
}

/* Read the current entry's data: hash it, and write it to `disk` when given. */
static int copy_entry_data(struct rjob *j, const char *apath, char hex[SHA256_HEX_LEN + 1],
			   bool to_disk, struct err *e)
{
	static const unsigned char zeros[4096];
	struct sha256 h;
	la_int64_t pos = 0;

	sha256_init(&h);
	for (;;) {
		const void *buf;
		size_t n;
		la_int64_t off;
		int r = archive_read_data_block(j->in, &buf, &n, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK) {
			sha256_release(&h);
			return err_set(e, LB_EXIT_INTEGRITY,
				       "cannot read '%s' from the archive: %s", apath,
				       archive_error_string(j->in));
		}
		while (pos < off) {
			size_t z = off - pos > (la_int64_t)sizeof(zeros) ? sizeof(zeros)
									 : (size_t)(off - pos);
			sha256_update(&h, zeros, z);
			pos += (la_int64_t)z;
		}
		sha256_update(&h, buf, n);
		pos += (la_int64_t)n;
		if (to_disk && archive_write_data_block(j->disk, buf, n, off) < ARCHIVE_OK) {
			sha256_release(&h);
			auto_free char *target = disk_target(j, apath);
			return err_set(e, LB_EXIT_SOURCE, "cannot write '%s': %s", target,
				       disk_cause(j->disk));
		}
		if (signals_pending()) {
			sha256_release(&h);
			return err_set(e, LB_EXIT_INTERRUPTED, "interrupted by signal %d",
				       signals_pending());
		}
	}
	sha256_final_hex(&h, hex);
	j->stats.files++;
	j->stats.bytes += (uint64_t)pos;
	return 0;
}

/* Hash an existing file on disk; 0 or -errno. */
static int hash_file(const char *path, char hex[SHA256_HEX_LEN + 1])
{
	auto_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	unsigned char buf[65536];
	struct sha256 h;

	if (fd < 0)
		return -errno;
	sha256_init(&h);
	for (;;) {
		ssize_t n = read_retry(fd, buf, sizeof(buf));
		if (n < 0) {
			sha256_release(&h);
			return (int)n;
		}
		if (n == 0)
			break;
		sha256_update(&h, buf, (size_t)n);
	}
	sha256_final_hex(&h, hex);
	return 0;
}

static void plan_line(struct rjob *j, const char *what, const char *path)
{
	printf("%-8s %s\n", what, path);
	j->changes++;
}

/* DRY_RUN: say what restoring this entry would do to the target. */
static void preview_entry(struct rjob *j, struct rsource *s, const char *rel,
			  struct archive_entry *ent, const char *hex)
{
	char *path = s->kind == SOURCE_FILE ? xstrdup(s->target)
		     : *rel		    ? xasprintf("%s/%s", s->target, rel)
					    : xstrdup(s->target);
	mode_t type = archive_entry_filetype(ent);
	struct stat st;

	if (s->kind == SOURCE_DIR && *rel)
		strvec_push(&s->seen, rel);
	if (lstat(path, &st) < 0) {
		plan_line(j, "create", path);
		goto out;
	}
	if ((st.st_mode & S_IFMT) != type) {
		plan_line(j, "replace", path);
		goto out;
	}
	bool same = true;
	if (type == AE_IFREG) {
		char cur[SHA256_HEX_LEN + 1];
		same = (uint64_t)st.st_size == (uint64_t)archive_entry_size(ent) &&
		       hash_file(path, cur) == 0 && !strcmp(cur, hex);
	} else if (type == AE_IFLNK) {
		char buf[4096];
		ssize_t n = readlink(path, buf, sizeof(buf) - 1);
		const char *want = archive_entry_symlink(ent);
		same = n >= 0 && want && (buf[n] = '\0', !strcmp(buf, want));
	}
	if (!same) {
		plan_line(j, "update", path);
		goto out;
	}
	if (type != AE_IFLNK && ((st.st_mode & 07777) != (archive_entry_perm(ent) & 07777) ||
				 (type == AE_IFREG && st.st_mtime != archive_entry_mtime(ent))))
		plan_line(j, "metadata", path);
out:
	free(path);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* DRY_RUN: everything under the target that the archive does not have would be removed. */
static void preview_removals(struct rjob *j, struct rsource *s, const char *rel)
{
	char *dir = *rel ? xasprintf("%s/%s", s->target, rel) : xstrdup(s->target);
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d) {
		free(dir);
		return;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *sub = *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
		char *key = sub;
		if (!bsearch(&key, s->seen.v, s->seen.nr, sizeof(char *), cmp_str)) {
			char *full = xasprintf("%s/%s", dir, de->d_name);
			plan_line(j, "remove", full);
			free(full);
		} else if (de->d_type == DT_DIR) {
			preview_removals(j, s, sub);
		}
		free(sub);
	}
	closedir(d);
	free(dir);
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
		for (;;) {
			char buf[65536];
			la_ssize_t n = archive_read_data(j->in, buf, sizeof(buf));
			if (n < 0)
				return err_set(e, LB_EXIT_INTEGRITY, "cannot read %s: %s",
					       SUMS_PATH, archive_error_string(j->in));
			if (n == 0)
				break;
			strbuf_add(&j->recorded, buf, (size_t)n);
		}
		return 0;
	}
	s = find_source(j, path, &rel);
	if (!s)
		return err_set(e, LB_EXIT_INTEGRITY,
			       "the archive holds '%s', which belongs to no source in its manifest",
			       path);
	if (source_is_db(s->kind)) {
		/* Only checked here; a second pass feeds databases after the verification. */
		if (type != AE_IFREG || !*rel)
			return err_set(e, LB_EXIT_INTEGRITY,
				       "unexpected entry '%s' for database source '%s'", path,
				       s->name);
		if (copy_entry_data(j, path, hex, false, e) < 0)
			return -1;
		sums_add(&j->computed, hex, path);
		return 0;
	}
	if (s->kind == SOURCE_FILE && (type != AE_IFREG || !*rel || strchr(rel, '/')))
		return err_set(e, LB_EXIT_INTEGRITY, "unexpected entry '%s' for file source '%s'",
			       path, s->name);
	if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK)
		return err_set(e, LB_EXIT_INTEGRITY, "unexpected special file '%s' in the archive",
			       path);
	if (archive_entry_hardlink(ent))
		return err_set(e, LB_EXIT_INTEGRITY, "unexpected hard link '%s' in the archive",
			       path);

	if (j->opts->mode == RESTORE_APPLY) {
		if (s->kind == SOURCE_DIR && !*rel) {
			/* The directory itself: applied to the target after the swap. */
			if (s->root)
				archive_entry_free(s->root);
			s->root = archive_entry_clone(ent);
			return archive_read_data_skip(j->in) == ARCHIVE_OK
				       ? 0
				       : err_set(e, LB_EXIT_INTEGRITY, "cannot read '%s': %s", path,
						 archive_error_string(j->in));
		}
		if (open_disk(j, s, e) < 0)
			return -1;
		const char *base = strrchr(s->target, '/') + 1;
		archive_entry_set_pathname(ent, s->kind == SOURCE_FILE ? base : rel);
		archive_entry_set_uname(ent, NULL);
		archive_entry_set_gname(ent, NULL);
		int r = archive_write_header(j->disk, ent);
		if (r == ARCHIVE_WARN)
			log_warn("'%s': %s", path, archive_error_string(j->disk));
		else if (r != ARCHIVE_OK)
			return err_set(e, LB_EXIT_SOURCE, "cannot restore '%s' into '%s': %s", path,
				       s->stage, archive_error_string(j->disk));
	}
	if (type == AE_IFREG) {
		if (copy_entry_data(j, path, hex, j->opts->mode == RESTORE_APPLY, e) < 0)
			return -1;
		sums_add(&j->computed, hex, path);
	}
	if (j->opts->mode == RESTORE_APPLY) {
		int r = archive_write_finish_entry(j->disk);
		if (r == ARCHIVE_WARN)
			log_warn("'%s': %s", path, archive_error_string(j->disk));
		else if (r != ARCHIVE_OK)
			return err_set(e, LB_EXIT_SOURCE, "cannot restore '%s': %s", path,
				       disk_cause(j->disk));
	} else if (j->opts->mode == RESTORE_DRY_RUN) {
		preview_entry(j, s, rel, ent, hex);
	}
	return 0;
}

static int handle_entry(struct rjob *j, struct archive_entry *ent, struct err *e)
{
	const char *raw = archive_entry_pathname(ent);

	if (!raw || !archive_path_safe(raw))
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
	for (;;) {
		char buf[16384];
		la_ssize_t n = archive_read_data(j->in, buf, sizeof(buf));
		if (n < 0) {
			err_set(e, LB_EXIT_INTEGRITY, "cannot read %s: %s", MANIFEST_PATH,
				archive_error_string(j->in));
			goto out;
		}
		if (n == 0)
			break;
		strbuf_add(&text, buf, (size_t)n);
	}
	if (manifest_from_json(text.buf, text.len, &j->m, e) < 0)
		goto out;
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
		int r = archive_read_next_header(j->in, &ent);
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
	return close_disk(j, e);
}

/* Move every entry of `from` (but `skip1`/`skip2`) into `to`, recording names. */
static int move_all(const char *from, const char *to, const char *skip1, const char *skip2,
		    struct strvec *moved, struct err *e)
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
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (skip1 && !strcmp(de->d_name, skip1)) || (skip2 && !strcmp(de->d_name, skip2)))
			continue;
		if (renameat(dirfd(d), de->d_name, tofd, de->d_name) < 0) {
			ret = err_set(e, LB_EXIT_SOURCE, "cannot move '%s/%s' to '%s': %s", from,
				      de->d_name, to, strerror(errno));
			break;
		}
		strvec_push(moved, de->d_name);
	}
	closedir(d);
	return ret;
}

/* Move the recorded names back from `from` to `to` (rollback). */
static void move_back(const char *from, const char *to, struct strvec *names)
{
	auto_close int ffd = open(from, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	auto_close int tfd = open(to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	for (size_t i = 0; ffd >= 0 && tfd >= 0 && i < names->nr; i++)
		if (renameat(ffd, names->v[i], tfd, names->v[i]) < 0)
			log_error("rollback: cannot move '%s/%s' back to '%s': %s", from,
				  names->v[i], to, strerror(errno));
	strvec_release(names);
}

static const char *base_of(const char *p)
{
	return strrchr(p, '/') + 1;
}

static const char *const sqlite_sidecars[] = { "-wal", "-shm", "-journal" };

/*
 * The old database's WAL, shared-memory and journal files would be replayed
 * into the restored database: move them aside with the old file.
 */
static int move_sidecars(struct rsource *s, struct err *e)
{
	for (size_t i = 0; i < ARRAY_SIZE(sqlite_sidecars); i++) {
		char *from = xasprintf("%s%s", s->target, sqlite_sidecars[i]);
		char *to = xasprintf("%s/" OLD_PREFIX "side%s", s->stage, sqlite_sidecars[i]);
		int r = rename(from, to);
		int saved = errno;
		free(to);
		if (r == 0) {
			strvec_push(&s->moved_side, sqlite_sidecars[i]);
		} else if (saved != ENOENT) {
			err_set(e, LB_EXIT_SOURCE, "cannot move '%s' aside: %s", from,
				strerror(saved));
			free(from);
			return -1;
		}
		free(from);
	}
	return 0;
}

static void put_back_sidecars(struct rsource *s)
{
	for (size_t i = 0; i < s->moved_side.nr; i++) {
		char *from = xasprintf("%s/" OLD_PREFIX "side%s", s->stage, s->moved_side.v[i]);
		char *to = xasprintf("%s%s", s->target, s->moved_side.v[i]);
		if (rename(from, to) < 0)
			log_error("rollback: cannot put '%s' back: %s", to, strerror(errno));
		free(from);
		free(to);
	}
	strvec_release(&s->moved_side);
}

static void swap_back(struct rsource *s)
{
	if (!s->swapped)
		return;
	if (s->kind == SOURCE_FILE) {
		char *staged = xasprintf("%s/%s", s->stage, base_of(s->target));
		if (rename(s->target, staged) < 0)
			log_error("rollback: cannot move '%s' aside: %s", s->target,
				  strerror(errno));
		if (s->moved_old.nr && rename(s->moved_old.v[0], s->target) < 0)
			log_error("rollback: cannot put '%s' back: %s", s->target, strerror(errno));
		put_back_sidecars(s);
		free(staged);
	} else {
		move_back(s->target, s->stage, &s->moved_new);
		move_back(s->old, s->target, &s->moved_old);
		if (rmdir(s->old) < 0)
			log_error("rollback: cannot remove '%s': %s", s->old, strerror(errno));
		/* Moving entries touched the directory's times: put them back too. */
		if (s->target_times[1].tv_sec || s->target_times[1].tv_nsec)
			utimensat(AT_FDCWD, s->target, s->target_times, 0);
	}
	s->swapped = false;
}

static int swap_in(struct rsource *s, struct err *e)
{
	if (s->kind == SOURCE_FILE) {
		char *staged = xasprintf("%s/%s", s->stage, base_of(s->target));
		char *keep = xasprintf("%s/" OLD_PREFIX "file", s->stage);
		int ret = s->sqlite ? move_sidecars(s, e) : 0;
		if (ret == 0 && rename(s->target, keep) == 0)
			strvec_push(&s->moved_old, keep);
		else if (ret == 0 && errno != ENOENT)
			ret = err_set(e, LB_EXIT_SOURCE, "cannot replace '%s': %s%s", s->target,
				      strerror(errno),
				      errno == EBUSY ? " (it is a mount point: mount its directory "
						       "instead of the single file)"
						     : "");
		if (!ret && rename(staged, s->target) < 0) {
			ret = err_set(e, LB_EXIT_SOURCE, "cannot move '%s' to '%s': %s", staged,
				      s->target, strerror(errno));
			if (s->moved_old.nr && rename(keep, s->target) == 0)
				strvec_release(&s->moved_old);
		}
		if (ret < 0)
			put_back_sidecars(s);
		s->swapped = !ret;
		free(staged);
		free(keep);
		return ret;
	}
	s->old = xasprintf("%s/" OLD_PREFIX "XXXXXX", s->target);
	if (!mkdtemp(s->old)) {
		int saved = errno;
		free(s->old);
		s->old = NULL;
		return err_set(e, LB_EXIT_SOURCE, "cannot create a directory in '%s': %s",
			       s->target, strerror(saved));
	}
	struct stat st;
	if (stat(s->target, &st) == 0) {
		s->target_times[0] = st.st_atim;
		s->target_times[1] = st.st_mtim;
	}
	if (move_all(s->target, s->old, base_of(s->stage), base_of(s->old), &s->moved_old, e) < 0 ||
	    move_all(s->stage, s->target, NULL, NULL, &s->moved_new, e) < 0) {
		s->swapped = true;
		swap_back(s);
		return -1;
	}
	s->swapped = true;
	return 0;
}

/* After every source swapped: drop the old content and set the directory's own metadata. */
static void finish_source(struct rsource *s)
{
	if (s->old)
		remove_tree(s->old);
	remove_tree(s->stage);
	if (s->kind == SOURCE_DIR && s->root) {
		struct timespec ts[2] = {
			{ .tv_sec = archive_entry_atime(s->root),
			  .tv_nsec = archive_entry_atime_nsec(s->root) },
			{ .tv_sec = archive_entry_mtime(s->root),
			  .tv_nsec = archive_entry_mtime_nsec(s->root) },
		};
		if (!archive_entry_atime_is_set(s->root))
			ts[0] = ts[1];
		if (geteuid() == 0 && chown(s->target, (uid_t)archive_entry_uid(s->root),
					    (gid_t)archive_entry_gid(s->root)) < 0)
			log_warn("cannot set the owner of '%s': %s", s->target, strerror(errno));
		if (chmod(s->target, archive_entry_perm(s->root) & 07777) < 0)
			log_warn("cannot set the mode of '%s': %s", s->target, strerror(errno));
		if (utimensat(AT_FDCWD, s->target, ts, 0) < 0)
			log_warn("cannot set the time of '%s': %s", s->target, strerror(errno));
	}
}

static int countdown(const struct rjob *j, int seconds, struct err *e)
{
	fprintf(stderr, "lifeboat: backup '%s' verified; it will replace:\n", j->file);
	for (size_t i = 0; i < j->nr_src; i++)
		fprintf(stderr, "  %s%s\n", j->src[i].target,
			j->src[i].kind == SOURCE_DIR   ? "/ (whole directory)"
			: source_is_db(j->src[i].kind) ? " (the objects in the backup)"
						       : "");
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

/* Open the archive for reading: the store's stream, through gpg when encrypted. */
static int open_input(struct rjob *j, struct crypt *crypt, int *fd, struct archive **in,
		      struct err *e)
{
	int in_fd;

	if (j->store->ops->get_open(j->store, j->entry->file, fd, e) < 0)
		return -1;
	in_fd = *fd;
	if (j->entry->id.encrypted) {
		if (crypt_decrypt_start(crypt, &j->cfg->key, *fd, e) < 0)
			return -1;
		close_fd(fd);
		in_fd = crypt->gpg.out_fd;
	}
	*in = archive_read_new();
	archive_read_support_filter_all(*in);
	archive_read_support_format_tar(*in);
	if (archive_read_open_fd(*in, in_fd, 256 * 1024) != ARCHIVE_OK)
		return err_set(e, LB_EXIT_INTEGRITY, "backup '%s' is damaged or truncated: %s",
			       j->entry->file, archive_error_string(*in));
	return 0;
}

/* "REL.000042": a part of a member cut by the backup's member sink. */
static bool part_index(const char *rel, unsigned *idx)
{
	size_t n = strlen(rel);

	if (n <= DB_PART_SUFFIX_LEN || rel[n - DB_PART_SUFFIX_LEN] != '.')
		return false;
	const char *d = rel + n - DB_PART_SUFFIX_LEN + 1;
	if (strspn(d, "0123456789") != DB_PART_SUFFIX_LEN - 1)
		return false;
	*idx = (unsigned)strtoul(d, NULL, 10);
	return true;
}

struct member_reader {
	struct archive *in;
	const char *prefix;
	char *base; /* the logical member, without a part suffix */
	bool parted;
	unsigned next_part;
	bool eof;
	struct archive_entry *pending; /* a header read past the member's last part */
	bool archive_eof;
};

ssize_t member_read(struct member_reader *r, void *buf, size_t len, struct err *e)
{
	if (r->eof)
		return 0;
	for (;;) {
		if (signals_pending())
			return err_set(e, LB_EXIT_INTERRUPTED, "interrupted by signal %d",
				       signals_pending());
		la_ssize_t n = archive_read_data(r->in, buf, len);
		if (n < 0)
			return err_set(e, LB_EXIT_INTEGRITY, "cannot read '%s/%s': %s", r->prefix,
				       r->base, archive_error_string(r->in));
		if (n > 0)
			return n;
		r->eof = true;
		if (!r->parted)
			return 0;
		struct archive_entry *ent;
		int rc = archive_read_next_header(r->in, &ent);
		if (rc == ARCHIVE_EOF) {
			r->archive_eof = true;
			return 0;
		}
		if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
			return err_set(e, LB_EXIT_INTEGRITY, "cannot read the archive: %s",
				       archive_error_string(r->in));
		char *want = xasprintf("%s/%s.%06u", r->prefix, r->base, r->next_part);
		bool more = !strcmp(archive_entry_pathname(ent), want);
		free(want);
		if (!more) {
			r->pending = ent;
			return 0;
		}
		r->next_part++;
		r->eof = false;
	}
}

/*
 * The second pass: after the whole archive verified, stream each database
 * member to its module. Members of files and directories are skipped.
 */
static int db_pass(struct rjob *j, struct err *e)
{
	struct crypt crypt = CRYPT_INIT;
	struct archive *in = NULL;
	struct archive_entry *ent = NULL;
	struct err rerr = ERR_INIT;
	int fd = -1, ret = -1;

	if (open_input(j, &crypt, &fd, &in, &rerr) < 0)
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
		if (!s || !source_is_db(s->kind) || !*rel) {
			free(path);
			continue;
		}
		struct member_reader rd = { .in = in, .prefix = s->prefix };
		unsigned idx;
		if (part_index(rel, &idx) && idx == 0) {
			rd.base = xstrndup(rel, strlen(rel) - DB_PART_SUFFIX_LEN);
			rd.parted = true;
			rd.next_part = 1;
		} else {
			rd.base = xstrdup(rel);
		}
		free(path);
		int r = db_ops_for(s->kind)->restore_member(s->db_ctx, rd.base, &rd, &rerr);
		if (r == 0) {
			/* What the module did not read (it may stop early) is skipped. */
			char buf[65536];
			ssize_t n;
			while ((n = member_read(&rd, buf, sizeof(buf), &rerr)) > 0)
				;
			r = n < 0 ? -1 : 0;
		}
		free(rd.base);
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
	if (j->entry->id.encrypted && crypt.gpg.pid > 0) {
		if (ret < 0) {
			child_kill(&crypt.gpg);
		} else {
			char buf[65536];
			while (read_retry(crypt.gpg.out_fd, buf, sizeof(buf)) > 0)
				;
			if (crypt_finish(&crypt, j->entry->file, &rerr) < 0)
				ret = -1;
		}
	}
	crypt_release(&crypt);
	close_fd(&fd);
	if (ret < 0)
		err_set(e, rerr.code, "%s", rerr.msg);
	return ret;
}

static int db_begin_all(struct rjob *j, struct err *e)
{
	for (size_t i = 0; i < j->nr_src; i++) {
		struct rsource *s = &j->src[i];
		if (!source_is_db(s->kind))
			continue;
		struct db_restore_req req = { .cfg = j->cfg, .target = s->cfgsrc, .name = s->name };
		s->db_begun = true; /* restore_end frees what a failed begin left */
		if (db_ops_for(s->kind)->restore_begin(&req, &s->db_ctx, e) < 0)
			return -1;
	}
	return 0;
}

static int db_end_all(struct rjob *j, bool ok, struct err *e)
{
	int ret = 0;

	for (size_t i = 0; i < j->nr_src; i++) {
		struct rsource *s = &j->src[i];
		if (!s->db_begun)
			continue;
		s->db_begun = false;
		if (db_ops_for(s->kind)->restore_end(s->db_ctx, ok, e) < 0)
			ret = -1;
		s->db_ctx = NULL;
		if (ok && !ret)
			log_info("restored %s '%s' into %s", source_kind_str(s->kind), s->name,
				 s->target);
	}
	return ret;
}

static bool has_db(const struct rjob *j)
{
	for (size_t i = 0; i < j->nr_src; i++)
		if (source_is_db(j->src[i].kind))
			return true;
	return false;
}

static int apply(struct rjob *j, struct err *e)
{
	int ret = 0;
	size_t i;

	/* Connect to every database first: a wrong target fails before anything changes. */
	if (db_begin_all(j, e) < 0) {
		db_end_all(j, false, e);
		return -1;
	}
	if (j->opts->countdown > 0 && countdown(j, j->opts->countdown, e) < 0) {
		db_end_all(j, false, e);
		return -1;
	}
	/* Stop the application (the project's containers) now that the backup is verified. */
	if (j->opts->before_swap && j->opts->before_swap(j->opts->ctx, e) < 0) {
		db_end_all(j, false, e);
		return -1;
	}
	/* Databases first, each staged and swapped in by its module. */
	if (has_db(j)) {
		int r = db_pass(j, e);
		if (db_end_all(j, r == 0, e) < 0 || r < 0) {
			log_error("restore stopped: files and directories were not changed");
			return -1;
		}
	}
	/* From here a signal waits: half a swap would be worse than a late exit. */
	signals_defer(true);
	for (i = 0; i < j->nr_src; i++) {
		if (source_is_db(j->src[i].kind))
			continue;
		if (swap_in(&j->src[i], e) < 0) {
			ret = -1;
			break;
		}
	}
	if (ret < 0) {
		while (i-- > 0)
			swap_back(&j->src[i]);
		log_error("restore rolled back: the data is as it was before");
	} else {
		for (i = 0; i < j->nr_src; i++) {
			if (source_is_db(j->src[i].kind))
				continue;
			finish_source(&j->src[i]);
			log_info("restored %s '%s' to '%s'", source_kind_str(j->src[i].kind),
				 j->src[i].name, j->src[i].target);
		}
	}
	signals_defer(false);
	return ret;
}

static void cleanup_stages(struct rjob *j)
{
	for (size_t i = 0; i < j->nr_src; i++) {
		struct rsource *s = &j->src[i];
		if (s->stage && !s->swapped)
			remove_tree(s->stage);
	}
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
			  .computed = STRBUF_INIT };
	struct crypt crypt = CRYPT_INIT;
	struct err rerr = ERR_INIT;
	int fd = -1, rc = -1;

	j.cwd_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j.cwd_fd < 0)
		j.cwd_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (open_input(&j, &crypt, &fd, &j.in, &rerr) == 0)
		read_archive(&j, &rerr);
	else if (!j.in)
		goto pass_failed;
	if (j.disk)
		close_disk(&j, &rerr);

	if (entry->id.encrypted) {
		if (rerr.code == LB_EXIT_SOURCE || rerr.code == LB_EXIT_INTERRUPTED) {
			/* Our side failed: no need to decrypt the rest. */
			child_kill(&crypt.gpg);
		} else {
			/* gpg's verdict explains most read errors (wrong key, damage): drain and
			 * ask. */
			char buf[65536];
			while (read_retry(crypt.gpg.out_fd, buf, sizeof(buf)) > 0)
				;
			struct err gerr = ERR_INIT;
			if (crypt_finish(&crypt, entry->file, &gerr) < 0) {
				err_clear(&rerr);
				err_set(&rerr, gerr.code, "%s", gerr.msg);
			}
		}
	}
pass_failed:
	if (err_isset(&rerr)) {
		err_set(e, rerr.code, "%s", rerr.msg);
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
		for (size_t i = 0; i < j.nr_src; i++) {
			struct rsource *s = &j.src[i];
			if (source_is_db(s->kind)) {
				char *what =
					s->cfgsrc
						? xasprintf("%s (%s '%s': the objects in the "
							    "backup are dropped and recreated)",
							    s->target, source_kind_str(s->kind),
							    s->name)
						: xasprintf(
							  "%s '%s': not configured now, a restore "
							  "would fail",
							  source_kind_str(s->kind), s->name);
				plan_line(&j, "restore", what);
				free(what);
				continue;
			}
			if (s->kind != SOURCE_DIR)
				continue;
			qsort(s->seen.v, s->seen.nr, sizeof(char *), cmp_str);
			preview_removals(&j, s, "");
		}
		if (!j.changes)
			printf("no changes: the data already equals backup '%s'\n", entry->file);
	} else if (opts->mode == RESTORE_APPLY && apply(&j, e) < 0) {
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
	cleanup_stages(&j);
	crypt_release(&crypt);
	close_fd(&fd);
	close_fd(&j.cwd_fd);
	for (size_t i = 0; i < j.nr_src; i++)
		rsource_release(&j.src[i]);
	free(j.src);
	manifest_release(&j.m);
	strbuf_release(&j.recorded);
	strbuf_release(&j.computed);
	return rc;
}

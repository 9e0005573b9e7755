/*
 * Files and directories: the walker that archives a directory tree, and a
 * single file (an SQLite database through a consistent snapshot). Their
 * restore: files-restore.c.
 */
#include "config-vars.h"
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "exclude.h"
#include "fault.h"
#include "fs.h"
#include "sources/source.h"
#include "sources/sqlite.h"
#include "strbuf.h"
#include "stream/member-sink.h"
#include "stream/tar-writer.h"
#include "xalloc.h"

static bool is_restore_leftover(const char *name)
{
	return !strncmp(name, ".lifeboat-restore.", 18) || !strncmp(name, ".lifeboat-old.", 14);
}

/*
 * Test builds: the file just opened changes size before it is read, as when an
 * application writes it: "walk.shrink" truncates it to half, "walk.grow" appends.
 */
static void fault_resize(const struct reporter *rep, int dfd, const char *name, off_t size,
			 const char *src)
{
	bool shrink = FAULT("walk.shrink"), grow = FAULT("walk.grow");

	if (!shrink && !grow)
		return;
	int wfd = openat(dfd, name, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (wfd < 0 || (shrink && ftruncate(wfd, size / 2) < 0) ||
	    (grow && write_all(wfd, "grown after it was opened\n", 26) < 0))
		report(rep, LOG_WARN, "fault point: cannot resize '%s'", src);
	if (wfd >= 0)
		close(wfd);
}

/* A directory entry as readdir gave it: its name and d_type (DT_UNKNOWN when not told). */
struct dent {
	char *name;
	unsigned char type;
};

/*
 * Test builds: the entry readdir listed becomes a symlink (to "target") before it is
 * opened, as when an application replaces a file by a link.
 */
static void fault_to_symlink(const struct reporter *rep, int dfd, const char *name, const char *src)
{
	if (!FAULT("walk.to_symlink"))
		return;
	char *tmp = xasprintf("%s.lb-fault", name);
	if (symlinkat("target", dfd, tmp) < 0 || renameat(dfd, tmp, dfd, name) < 0) {
		report(rep, LOG_WARN, "fault point: cannot replace '%s'", src);
		unlinkat(dfd, tmp, 0);
	}
	free(tmp);
}

static int cmp_dents(const void *a, const void *b)
{
	return strcmp(((const struct dent *)a)->name, ((const struct dent *)b)->name);
}

/* What the walk of one directory source leaves out: BACKUP_EXCLUDE's rules for it. */
struct walk_excl {
	const struct exclude_list *list;
	const char *source; /* its name */
	size_t plen;	    /* strlen("dirs/NAME/"): where an archive path's relative part starts */
};

/*
 * Archive the content of directory `dfd` (at `src`, archived as `apath`), depth
 * first and sorted by name, so that a directory's entries follow it directly:
 * GNU tar relies on that order to restore directory times. Excluded entries are
 * never opened (a pattern that may match a file is tried before even the stat).
 */
static int walk_dir(struct member_sink *sink, const struct reporter *rep, int dfd, const char *src,
		    const char *apath, bool top, const struct walk_excl *x, struct err *e)
{
	struct dent *ents = NULL;
	size_t nr = 0, alloc = 0;
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
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			ALLOC_GROW(ents, nr + 1, alloc);
			ents[nr++] = (struct dent){ xstrdup(de->d_name), de->d_type };
		}
		errno = 0;
	}
	int rerr = errno;
	closedir(d);
	if (rerr) {
		err_set(e, LB_EXIT_SOURCE, "cannot read directory '%s': %s", src, strerror(rerr));
		goto out;
	}
	if (nr > 1) /* an empty directory has no array: qsort's base must not be NULL */
		qsort(ents, nr, sizeof(*ents), cmp_dents);

	for (size_t i = 0; i < nr; i++) {
		const char *name = ents[i].name;
		struct stat st;
		strbuf_reset(&csrc);
		strbuf_addf(&csrc, "%s/%s", src, name);
		strbuf_reset(&capath);
		strbuf_addf(&capath, "%s/%s", apath, name);
		if (top && is_restore_leftover(name)) {
			report(rep, LOG_WARN,
			       "skipping '%s', left behind by an interrupted restore", csrc.buf);
			continue;
		}
		const char *rel = capath.buf + x->plen;
		if (exclude_match(x->list, x->source, rel, false))
			continue;
		/*
		 * A regular file or a directory, as readdir says, is opened without an fstatat
		 * first: the fstat of the open descriptor, needed anyway, tells its size and
		 * type. If the entry turns out to be something else by then (replaced since the
		 * readdir), it goes the general way, from the fstatat.
		 */
		bool known = ents[i].type == DT_REG || ents[i].type == DT_DIR;
	again:
		if (known) {
			st.st_mode = ents[i].type == DT_DIR ? S_IFDIR : S_IFREG;
		} else if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT) {
				report(rep, LOG_WARN, "'%s' vanished while being backed up",
				       csrc.buf);
				continue;
			}
			err_set(e, LB_EXIT_SOURCE, "cannot read '%s': %s", csrc.buf,
				strerror(errno));
			goto out;
		}
		if (S_ISDIR(st.st_mode) && exclude_match(x->list, x->source, rel, true))
			continue;
		if (FAULT("walk.before_open")) {
			/* Test builds: the entry is deleted right here, as by a busy application. */
			if (unlinkat(dfd, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0)
				report(rep, LOG_WARN, "fault point: cannot delete '%s': %s",
				       csrc.buf, strerror(errno));
		}
		if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX + 1];
			ssize_t n = readlinkat(dfd, name, target, sizeof(target) - 1);
			if (n < 0 && errno == ENOENT) {
				report(rep, LOG_WARN, "'%s' vanished while being backed up",
				       csrc.buf);
				continue;
			}
			if (n < 0) {
				err_set(e, LB_EXIT_SOURCE, "cannot read link '%s': %s", csrc.buf,
					strerror(errno));
				goto out;
			}
			target[n] = '\0';
			if (tarw_add_entry(sink->tar, csrc.buf, capath.buf, &st, target, -1, e) < 0)
				goto out;
		} else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
			mode_t want = st.st_mode & S_IFMT;
			if (known)
				fault_to_symlink(rep, dfd, name, csrc.buf);
			/*
			 * O_NONBLOCK: an entry replaced by a FIFO since the readdir or fstatat
			 * opens at once (and the type check below sends it the general way)
			 * instead of waiting for a writer. Reads of a regular file ignore it.
			 */
			int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
				    (S_ISDIR(st.st_mode) ? O_DIRECTORY : O_NOCTTY | O_NONBLOCK);
			auto_close int fd = openat(dfd, name, flags | O_NOATIME);
			if (fd < 0 && errno == EPERM)
				fd = openat(dfd, name, flags);
			if (known && fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
				known = false; /* a symlink or another type now */
				goto again;
			}
			if (fd < 0 && errno == ENOENT) {
				/* Deleted since the readdir or fstatat: as if deleted before it. */
				report(rep, LOG_WARN, "'%s' vanished while being backed up",
				       csrc.buf);
				continue;
			}
			if (fd < 0 || fstat(fd, &st) < 0) {
				err_set(e, LB_EXIT_SOURCE, "cannot open '%s': %s", csrc.buf,
					strerror(errno));
				goto out;
			}
			if (known && (st.st_mode & S_IFMT) != want) {
				close_fd(&fd);
				known = false;
				goto again;
			}
			if (S_ISREG(st.st_mode))
				fault_resize(rep, dfd, name, st.st_size, csrc.buf);
			if (tarw_add_entry(sink->tar, csrc.buf, capath.buf, &st, NULL, fd, e) < 0)
				goto out;
			if (S_ISDIR(st.st_mode) &&
			    walk_dir(sink, rep, fd, csrc.buf, capath.buf, false, x, e) < 0)
				goto out;
		} else {
			report(rep, LOG_WARN,
			       "skipping '%s': sockets, fifos and device files are not backed up",
			       csrc.buf);
		}
	}
	ret = 0;
out:
	for (size_t i = 0; i < nr; i++)
		free(ents[i].name);
	free(ents);
	strbuf_release(&csrc);
	strbuf_release(&capath);
	return ret;
}

/* Archive a directory tree (as dirs/NAME) or a single file (as files/NAME/BASENAME). */
int files_backup(const struct source_backup *src, struct member_sink *sink, struct err *e)
{
	const struct source_spec *s = src->spec;
	const char *prefix = sink->prefix;
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
	if (src->sqlite) {
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
		if (tarw_add_entry(sink->tar, s->path, apath, &st, NULL, copy, e) < 0)
			goto out;
	} else if (tarw_add_entry(sink->tar, s->path, apath, &st, NULL, fd, e) < 0) {
		goto out;
	}
	struct walk_excl x = { .list = &src->cfg->exclude,
			       .source = s->name,
			       .plen = strlen(prefix) + 1 };
	if (s->kind == SOURCE_DIR &&
	    walk_dir(sink, src->report, fd, s->path, prefix, true, &x, e) < 0)
		goto out;
	ret = 0;
out:
	free(apath);
	return ret;
}

/* ---- its variables: rows of the configuration table (config-vars.h) ---- */

/* After BACKUP_DIRS: a scoped pattern must name one of its directories. */
static int var_exclude(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return 0;
	if (exclude_parse(&cfg->exclude, origin, value, e) < 0)
		return -1;
	for (size_t i = 0; i < cfg->exclude.nr; i++) {
		const struct exclude_rule *r = &cfg->exclude.v[i];
		if (r->source && !config_find_source(cfg, SOURCE_DIR, r->source))
			return err_set(e, LB_EXIT_CONFIG,
				       "%s: pattern '%s' names '%s', which is not a BACKUP_DIRS "
				       "source (write '\\:' for a ':' in a pattern)",
				       origin, r->text, r->source);
	}
	return 0;
}

static void describe_exclude(const struct config *cfg, struct strbuf *out)
{
	if (!cfg->exclude.nr) {
		strbuf_addstr(out, "BACKUP_EXCLUDE       (none)\n");
		return;
	}
	for (size_t i = 0; i < cfg->exclude.nr; i++) {
		const struct exclude_rule *r = &cfg->exclude.v[i];
		strbuf_addf(out, "%-21s%s  (%s%s%s)\n", i ? "" : "BACKUP_EXCLUDE", r->text,
			    r->source ? "directory '" : "every directory",
			    r->source ? r->source : "", r->source ? "'" : "");
	}
}

static const struct config_var dirs_rows[] = {
	{ "BACKUP_DIRS", 0, config_var_sources, 0, 0, 0, NULL,
	  "Directories: `/path:name,/path2:name2` (commas or newlines). Names follow "
	  "`BACKUP_NAME`'s rule: 1–128 letters, digits, `.`, `_`, `-`.",
	  NULL },
	{ "BACKUP_EXCLUDE", 0, var_exclude, 0, 0, 0, NULL,
	  "Glob patterns left out of every `BACKUP_DIRS` directory, commas or newlines: `cache/`, "
	  "`*.tmp`, `**/node_modules/`, `uploads:thumbs/` (only in the source named `uploads`). A "
	  "restore leaves excluded paths on disk as they are. Exact rules: [Excluding "
	  "paths](#excluding-paths).",
	  describe_exclude },
};
const struct config_var_group dirs_vars = CONFIG_VAR_GROUP(dirs_rows);

static const struct config_var files_rows[] = {
	{ "BACKUP_FILES", 0, config_var_sources, 0, 0, 0, NULL,
	  "Single files, same form. Names are unique across both lists, and no source may lie "
	  "inside a `BACKUP_DIRS` directory (a restore replaces a directory's whole content).",
	  NULL },
};
const struct config_var_group files_vars = CONFIG_VAR_GROUP(files_rows);

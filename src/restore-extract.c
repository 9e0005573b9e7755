/*
 * restore --to (EXTRACT) and lifeboat ls (LIST) are modes of the same read
 * pass as a restore: the same checks, every checksum verified before anything
 * is shown or becomes visible. --to writes into a staging directory inside
 * the target directory and moves it into place after the verification.
 */
#include "common.h"

#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "fs.h"
#include "log.h"
#include "report.h"
#include "restore-job.h"
#include "xalloc.h"

#define XTR_PREFIX ".lifeboat-extract."

void restore_listing_release(struct restore_listing *l)
{
	for (size_t i = 0; i < l->nr_sources; i++) {
		free(l->sources[i].name);
		free(l->sources[i].path);
	}
	free(l->sources);
	for (size_t i = 0; i < l->nr; i++) {
		free(l->v[i].path);
		free(l->v[i].link);
	}
	free(l->v);
	*l = (struct restore_listing){ 0 };
}

/* LIST: record the entry; shown only once the whole archive verified. */
void list_entry(struct rjob *j, struct rsource *s, const char *rel, const char *path,
		struct archive_entry *ent)
{
	struct restore_listing *l = j->opts->listing;
	uint64_t size = archive_entry_size_is_set(ent) && archive_entry_size(ent) > 0
				? (uint64_t)archive_entry_size(ent)
				: 0;
	char *name = NULL;

	if (s->desc->ops->after_verify && *rel && parts_continue(&j->parts, s, rel, &name) &&
	    l->nr) {
		l->v[l->nr - 1].size += size;
		free(name);
		return;
	}
	if (l->nr == l->alloc) {
		l->alloc = l->alloc ? 2 * l->alloc : 256;
		l->v = xrealloc(l->v, l->alloc * sizeof(*l->v));
	}
	struct restore_item *it = &l->v[l->nr++];
	*it = (struct restore_item){
		.path = name ? xasprintf("%s/%s", s->prefix, name) : xstrdup(path),
		.source = (size_t)(s - j->src),
		.mode = archive_entry_mode(ent),
		.size = archive_entry_filetype(ent) == AE_IFREG ? size : 0,
		.uid = archive_entry_uid(ent),
		.gid = archive_entry_gid(ent),
		.mtime = { .tv_sec = archive_entry_mtime(ent),
			   .tv_nsec = archive_entry_mtime_nsec(ent) },
		.link = archive_entry_symlink(ent) ? xstrdup(archive_entry_symlink(ent)) : NULL,
	};
	free(name);
}

/* LIST: hand the manifest's sources over with the entries (ls shows both). */
void list_sources(struct rjob *j)
{
	struct restore_listing *l = j->opts->listing;

	l->sources = xcalloc(j->m.nr_sources ? j->m.nr_sources : 1, sizeof(*l->sources));
	for (size_t i = 0; i < j->nr_all; i++) {
		const struct manifest_source *ms = &j->m.sources[i];
		l->sources[i] = (struct manifest_source){ .kind = ms->kind,
							  .name = xstrdup(ms->name),
							  .path = xstrdup(ms->path),
							  .sqlite = ms->sqlite };
	}
	l->nr_sources = j->nr_all;
}

/* mkdir -p of the parents of `rel` below `dfd`; 0 or -errno. */
static int mkdirat_parents(int dfd, const char *rel)
{
	char *p = xstrdup(rel);
	int r = 0;

	for (char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdirat(dfd, p, 0755) < 0 && errno != EEXIST)
			r = -errno;
		*s = '/';
		if (r)
			break;
	}
	free(p);
	return r;
}

/*
 * EXTRACT, before the archive is opened: the directory must be empty or new.
 * Everything goes into a staging directory inside it, moved into place only
 * after the whole archive verified.
 */
int extract_prepare(struct rjob *j, struct err *e)
{
	const char *to = j->opts->to;
	int r = mkdir_parents(to, 0755);

	if (!r && mkdir(to, 0700) == 0)
		j->xto_made = true;
	else if (!r && errno != EEXIST)
		r = -errno;
	if (r)
		return err_set(e, LB_EXIT_SOURCE, "cannot create directory '%s': %s", to,
			       strerror(-r));
	j->xto_fd = open(to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->xto_fd < 0)
		return err_set(e, errno == ENOTDIR ? LB_EXIT_USAGE : LB_EXIT_SOURCE,
			       "--to '%s': %s", to, strerror(errno));
	DIR *d = fdopendir(dup(j->xto_fd));
	struct dirent *de;
	bool empty = true;
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			empty = false;
	if (d)
		closedir(d);
	if (!empty)
		return err_set(
			e, LB_EXIT_USAGE,
			"--to '%s': the directory is not empty (extract into an empty or new "
			"directory)",
			to);
	j->xto = realpath(to, NULL);
	if (!j->xto)
		return err_set(e, LB_EXIT_SOURCE, "cannot resolve '%s': %s", to, strerror(errno));
	j->xstage = xasprintf("%s/" XTR_PREFIX "XXXXXX", j->xto);
	if (!mkdtemp(j->xstage)) {
		int saved = errno;
		free(j->xstage);
		j->xstage = NULL;
		return err_set(e, LB_EXIT_SOURCE, "cannot create a staging directory in '%s': %s",
			       j->xto, strerror(saved));
	}
	j->xstage_fd = open(j->xstage, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->xstage_fd < 0)
		return err_set(e, LB_EXIT_SOURCE, "cannot open '%s': %s", j->xstage,
			       strerror(errno));
	return 0;
}

/*
 * EXTRACT: KIND/NAME exists for every selected source, even one with no entries.
 * A directory's own entry creates it (with its mode and times, which libarchive
 * does not fix up on a directory that already exists).
 */
int extract_make_source_dir(struct rjob *j, struct rsource *s, struct err *e)
{
	char *kind = xstrndup(s->prefix, strcspn(s->prefix, "/"));
	int r = 0;

	if ((mkdirat(j->xstage_fd, kind, 0755) < 0 && errno != EEXIST) ||
	    (!s->desc->tree && mkdirat(j->xstage_fd, s->prefix, 0755) < 0 && errno != EEXIST))
		r = err_set(e, LB_EXIT_SOURCE, "cannot create '%s/%s': %s", j->xstage, s->prefix,
			    strerror(errno));
	free(kind);
	return r;
}

/* EXTRACT: a file or directory entry goes to STAGE/KIND/NAME/REL, as in the archive. */
int extract_header(struct rjob *j, struct rsource *s, const char *path, struct archive_entry *ent,
		   struct err *e)
{
	if (!j->disk && tar_disk_open(j->xstage, j->xstage_fd, &j->disk, e) < 0)
		return -1;
	j->disk_src = s - j->src;
	owner_loss_note(&j->xowners, ent, path);
	archive_entry_set_pathname(ent, path);
	archive_entry_set_uname(ent, NULL);
	archive_entry_set_gname(ent, NULL);
	int r = archive_write_header(j->disk, ent);
	if (r == ARCHIVE_WARN)
		log_warn("'%s': %s", path, archive_error_string(j->disk));
	else if (r != ARCHIVE_OK)
		return err_set(e, LB_EXIT_SOURCE, "cannot extract '%s' into '%s': %s", path,
			       j->xstage, archive_error_string(j->disk));
	return 0;
}

/* EXTRACT: a database member (or its first part) opens its file; later parts append. */
int extract_db_member(struct rjob *j, struct rsource *s, const char *rel, struct err *e)
{
	char *name;
	bool cont = parts_continue(&j->parts, s, rel, &name);

	if (cont && j->xfd >= 0) {
		free(name);
		return 0;
	}
	close_fd(&j->xfd);
	char *file = xasprintf("%s/%s", s->prefix, name);
	free(name);
	int r = mkdirat_parents(j->xstage_fd, file);
	if (!r) {
		j->xfd = openat(j->xstage_fd, file,
				O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (j->xfd < 0)
			r = -errno;
	}
	if (r)
		err_set(e, LB_EXIT_SOURCE, "cannot create '%s/%s': %s", j->xto, file, strerror(-r));
	free(j->xname);
	j->xname = file;
	return r ? -1 : 0;
}

int extract_write(struct rjob *j, const char *apath, const void *buf, size_t n, struct err *e)
{
	int r = write_all(j->xfd, buf, n);

	if (r < 0)
		return err_set(e, LB_EXIT_SOURCE, "cannot write '%s/%s' (from '%s'): %s", j->xto,
			       j->xname, apath, strerror(-r));
	return 0;
}

/* EXTRACT, after verification: move KIND/ from the staging directory into place. */
int extract_commit(struct rjob *j, struct err *e)
{
	DIR *d = fdopendir(dup(j->xstage_fd));
	struct dirent *de;
	int ret = 0;

	if (!d)
		return err_set(e, LB_EXIT_SOURCE, "cannot read '%s': %s", j->xstage,
			       strerror(errno));
	while (!ret && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		/* Never over something that appeared in the directory meanwhile. */
		if (renameat2(j->xstage_fd, de->d_name, j->xto_fd, de->d_name, RENAME_NOREPLACE) <
			    0 &&
		    (errno != EINVAL ||
		     faccessat(j->xto_fd, de->d_name, F_OK, AT_SYMLINK_NOFOLLOW) == 0 ||
		     renameat(j->xstage_fd, de->d_name, j->xto_fd, de->d_name) < 0))
			ret = err_set(e, LB_EXIT_SOURCE, "cannot move '%s/%s' into '%s': %s",
				      j->xstage, de->d_name, j->xto,
				      errno == EINVAL ? strerror(EEXIST) : strerror(errno));
	}
	closedir(d);
	if (ret)
		return ret;
	if (fsync(j->xto_fd) < 0)
		log_warn("cannot sync '%s': %s", j->xto, strerror(errno));
	if (rmdir(j->xstage) < 0)
		log_warn("cannot remove '%s': %s", j->xstage, strerror(errno));
	free(j->xstage);
	j->xstage = NULL;
	for (size_t i = 0; i < j->nr_src; i++)
		log_info("extracted %s '%s' to '%s'", source_kind_str(j->src[i].kind),
			 j->src[i].name, j->src[i].target);
	auto_free char *what = xasprintf("'%s'", j->xto);
	owner_loss_report(&j->xowners, &report_log, what);
	return 0;
}

/* EXTRACT, on every path: a failure leaves the directory as it was (or absent). */
void extract_release(struct rjob *j, bool ok)
{
	close_fd(&j->xfd);
	if (j->xstage)
		remove_tree(j->xstage);
	if (!ok && j->xto_made && rmdir(j->xto ? j->xto : j->opts->to) < 0)
		log_warn("cannot remove '%s': %s", j->opts->to, strerror(errno));
	close_fd(&j->xstage_fd);
	close_fd(&j->xto_fd);
	free(j->xstage);
	free(j->xto);
	free(j->xname);
	owner_loss_report(&j->xowners, NULL, NULL);
	part_tracker_release(&j->parts);
}

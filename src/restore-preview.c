/*
 * restore --dry-run: what restoring each entry would do to the target
 * (create, replace, update, metadata, remove), after the same checks as a
 * restore, handed to the caller (opts->preview) once the whole archive
 * verified: the command prints it.
 */
#include "common.h"

#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "exclude.h"
#include "fs.h"
#include "restore-job.h"
#include "strvec.h"
#include "xalloc.h"

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

void restore_preview_release(struct restore_preview *p)
{
	for (size_t i = 0; i < p->nr; i++)
		free(p->v[i].path);
	free(p->v);
	*p = (struct restore_preview){ 0 };
}

/* One change; `path` becomes the preview's. */
static void add_change(struct rjob *j, const char *what, char *path)
{
	struct restore_preview *p = &j->preview;

	ALLOC_GROW(p->v, p->nr + 1, p->alloc);
	p->v[p->nr++] = (struct restore_change){ .what = what, .path = path };
}

static void plan_line(struct rjob *j, const char *what, const char *path)
{
	add_change(j, what, xstrdup(path));
}

static bool excluded(const struct rjob *j, const struct rsource *s, const char *rel, bool is_dir)
{
	return s->kind == SOURCE_DIR &&
	       exclude_covers(&j->cfg->exclude, s->cfgsrc ? s->cfgsrc->name : s->name, rel, is_dir);
}

/* DRY_RUN: say what restoring this entry would do to the target. */
void preview_entry(struct rjob *j, struct rsource *s, const char *rel, struct archive_entry *ent,
		   const char *hex)
{
	char *path = source_member_target(s->desc, s->target, rel);
	mode_t type = archive_entry_filetype(ent);
	struct stat st;

	/* BACKUP_EXCLUDE: left as it is on disk (and not removed below). */
	if (s->desc->tree && excluded(j, s, rel, type == AE_IFDIR)) {
		free(path);
		return;
	}
	if (s->desc->tree && *rel)
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
		if (excluded(j, s, sub, de->d_type == DT_DIR))
			; /* BACKUP_EXCLUDE: kept */
		else if (!bsearch(&key, s->seen.v, s->seen.nr, sizeof(char *), cmp_str))
			add_change(j, "remove", xasprintf("%s/%s", dir, de->d_name));
		else if (de->d_type == DT_DIR)
			preview_removals(j, s, sub);
		free(sub);
	}
	closedir(d);
	free(dir);
}

/* DRY_RUN, after the whole archive verified: what the archive does not hold, and databases. */
void preview_finish(struct rjob *j)
{
	for (size_t i = 0; i < j->nr_src; i++) {
		struct rsource *s = &j->src[i];
		if (s->desc->ops->after_verify) {
			add_change(j, "restore",
				   xasprintf("%s (%s '%s': the objects in the backup are "
					     "dropped and recreated)",
					     s->target, source_kind_str(s->kind), s->name));
			continue;
		}
		if (!s->desc->tree)
			continue;
		qsort(s->seen.v, s->seen.nr, sizeof(char *), cmp_str);
		preview_removals(j, s, "");
	}
	if (j->opts->preview) {
		*j->opts->preview = j->preview;
		j->preview = (struct restore_preview){ 0 };
	}
}

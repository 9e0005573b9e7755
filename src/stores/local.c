/* The local store: hidden .partial file, fsync, no-replace rename, directory fsync. */
#include "config-vars.h"
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "fault.h"
#include "fs.h"
#include "strbuf.h"
#include "stores/store.h"
#include "xalloc.h"

struct local {
	char *dir; /* BACKUP_LOCAL_PATH/BACKUP_NAME */
};

struct local_put {
	int fd;
	char *tmp_path;
	char *final_path;
	off_t wb_start, wb_end; /* written bytes whose writeback is not yet started */
	bool wb_off;		/* the file system refused sync_file_range: fsync does it all */
};

/*
 * Early writeback: every WRITEBACK_CHUNK written, the disk is asked to start writing it
 * (sync_file_range, which does not wait for it), so the archive goes to the disk while
 * the backup runs and the fsync before the rename finds little left to write. Without
 * it the kernel holds back up to its dirty limit (gigabytes on a large machine) and the
 * fsync writes it all at once, after the sources are read.
 */
#define WRITEBACK_CHUNK ((off_t)16 << 20)

static struct local *L(struct store *s)
{
	return s->priv;
}

/*
 * Remove .partial files no run is writing. A writer holds an flock on its
 * .partial for as long as it writes (the kernel drops it when the writer dies),
 * so a lock we can take means the file is stale, whatever its name's pid: in a
 * restarted container that pid often belongs to a live process. The unlink
 * happens under the lock; a writer checks after locking that its file is still
 * linked (local_put_begin).
 */
static void remove_stale_partials(struct store *s, struct local *l)
{
	DIR *d = opendir(l->dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		const char *n = de->d_name;
		if (!store_temp_ours(s->cfg, n))
			continue;
		int fd = openat(dirfd(d), n, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		struct stat st;
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0 &&
		    S_ISREG(st.st_mode) && st.st_nlink > 0 && unlinkat(dirfd(d), n, 0) == 0)
			store_report(s, LOG_INFO, "removed '%s/%s' left by an interrupted run",
				     l->dir, n);
		close(fd);
	}
	closedir(d);
}

/*
 * Create and lock `.NAME-TIMESTAMP.partial`: the claim on that timestamp. Another
 * run writing the same timestamp into this store (one with another state
 * directory, so not serialised by the run lock) holds it already: -EEXIST.
 */
static int create_partial(const char *path, int *ret_fd)
{
	for (int tries = 0; tries < 3; tries++) {
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		struct stat st;
		while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
			;
		/* File systems without flock: the file is still ours alone by O_EXCL. */
		if (fstat(fd, &st) == 0 && st.st_nlink == 0) {
			/* A stale-partial sweep took it between our create and our lock. */
			close(fd);
			continue;
		}
		*ret_fd = fd;
		return 0;
	}
	return -EAGAIN;
}

static int local_put_begin(struct store *s, const char *file, struct store_put *p, struct err *e)
{
	struct local *l = L(s);
	struct local_put *lp;
	size_t stem = strlen(s->cfg->name) + 1 + TIMESTAMP_LEN; /* NAME-TIMESTAMP */

	if (mkdir(l->dir, 0700) < 0 && errno != EEXIST)
		return err_set(e, LB_EXIT_STORE, "cannot create '%s': %s", l->dir, strerror(errno));
	remove_stale_partials(s, l);

	lp = xcalloc(1, sizeof(*lp));
	lp->tmp_path = xasprintf("%s/.%.*s.partial", l->dir, (int)stem, file);
	lp->final_path = xasprintf("%s/%s", l->dir, file);
	int r = create_partial(lp->tmp_path, &lp->fd);
	if (r == -EEXIST) {
		/* Kept: it is the other run's. */
		free(lp->tmp_path);
		free(lp->final_path);
		free(lp);
		return STORE_TAKEN;
	}
	if (r < 0) {
		free(lp->tmp_path);
		free(lp->final_path);
		free(lp);
		return err_set(e, LB_EXIT_STORE, "cannot create a file in '%s': %s", l->dir,
			       strerror(-r));
	}
	/* The umask may only have narrowed 0600, but be explicit. */
	fchmod(lp->fd, 0600);
	p->store = s;
	p->file = xstrdup(file);
	p->priv = lp;
	p->bytes = 0;
	return 0;
}

static int local_put_write(struct store_put *p, const void *buf, size_t len, struct err *e)
{
	struct local_put *lp = p->priv;
	int r = write_all(lp->fd, buf, len);

	if (r < 0)
		return err_set(e, LB_EXIT_STORE, "cannot write '%s': %s", lp->final_path,
			       strerror(-r));
	p->bytes += len;
	lp->wb_end += (off_t)len;
	if (lp->wb_off || lp->wb_end - lp->wb_start < WRITEBACK_CHUNK)
		return 0;
	/* fail: the disk reports a write error when its writeback starts */
	if (FAULT("local.writeback")) {
		errno = EIO;
		r = -1;
	} else {
		r = sync_file_range(lp->fd, lp->wb_start, lp->wb_end - lp->wb_start,
				    SYNC_FILE_RANGE_WRITE);
	}
	if (r < 0 && (errno == EINVAL || errno == ESPIPE || errno == ENOSYS)) {
		lp->wb_off = true;
	} else if (r < 0) {
		return err_set(e, LB_EXIT_STORE, "cannot write '%s': %s", lp->final_path,
			       strerror(errno));
	}
	lp->wb_start = lp->wb_end;
	return 0;
}

static int local_put_commit(struct store_put *p, struct err *e)
{
	struct local_put *lp = p->priv;
	struct local *l = L(p->store);

	if (fsync(lp->fd) < 0)
		return err_set(e, LB_EXIT_STORE, "cannot write '%s': %s", lp->final_path,
			       strerror(errno));
	/* Renamed while still open, so locked: no other run's sweep can take it meanwhile. */
	if (renameat2(AT_FDCWD, lp->tmp_path, AT_FDCWD, lp->final_path, RENAME_NOREPLACE) < 0) {
		if (errno != EINVAL && errno != ENOSYS)
			return err_set(e, LB_EXIT_STORE, "cannot rename '%s' to '%s': %s",
				       lp->tmp_path, lp->final_path, strerror(errno));
		/* File systems without RENAME_NOREPLACE: link() never replaces either. */
		if (link(lp->tmp_path, lp->final_path) < 0)
			return err_set(e, LB_EXIT_STORE, "cannot create '%s': %s", lp->final_path,
				       strerror(errno));
		unlink(lp->tmp_path);
	}
	free(lp->tmp_path);
	lp->tmp_path = NULL;
	if (close(lp->fd) < 0) {
		int saved = errno;
		lp->fd = -1;
		unlink(lp->final_path);
		return err_set(e, LB_EXIT_STORE, "cannot write '%s': %s", lp->final_path,
			       strerror(saved));
	}
	lp->fd = -1;
	int r = fsync_dir(l->dir);
	if (r < 0)
		store_report(p->store, LOG_WARN, "cannot fsync directory '%s': %s", l->dir,
			     strerror(-r));
	free(lp->final_path);
	free(lp);
	free(p->file);
	p->priv = NULL;
	p->file = NULL;
	return 0;
}

static void local_put_abort(struct store_put *p)
{
	struct local_put *lp = p->priv;

	if (!lp)
		return;
	/* Unlinked before the lock goes, so it is never another run's by then. */
	if (lp->tmp_path)
		unlink(lp->tmp_path);
	close_fd(&lp->fd);
	free(lp->tmp_path);
	free(lp->final_path);
	free(lp);
	free(p->file);
	p->priv = NULL;
	p->file = NULL;
}

static int local_list(struct store *s, struct store_list *out, struct err *e)
{
	struct local *l = L(s);
	DIR *d = opendir(l->dir);
	struct dirent *de;
	struct stat st;

	if (!d) {
		if (errno == ENOENT)
			return 0;
		return err_set(e, LB_EXIT_STORE, "cannot list '%s': %s", l->dir, strerror(errno));
	}
	while ((de = readdir(d))) {
		struct backup_id id;
		if (!naming_parse(s->cfg->name, de->d_name, &id))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
			continue;
		store_list_add(out, de->d_name, &id, (uint64_t)st.st_size);
	}
	closedir(d);
	return 0;
}

static int local_get_open(struct store *s, const char *file, int *ret_fd, struct err *e)
{
	char *path = xasprintf("%s/%s", L(s)->dir, file);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		err_set(e, errno == ENOENT ? LB_EXIT_NOT_FOUND : LB_EXIT_STORE,
			"cannot open '%s': %s", path, strerror(errno));
		free(path);
		return -1;
	}
	free(path);
	*ret_fd = fd;
	return 0;
}

static bool local_exists(struct store *s, const char *file)
{
	char *path = xasprintf("%s/%s", L(s)->dir, file);
	bool r = access(path, F_OK) == 0;
	free(path);
	return r;
}

static int local_remove(struct store *s, const char *file, struct err *e)
{
	/* Only ever delete what is ours by name: never a stray file in the directory. */
	if (!store_file_ours(s->cfg, file))
		return err_set(e, LB_EXIT_INTERNAL, "refusing to delete '%s': not a backup of '%s'",
			       file, s->cfg->name);
	char *path = xasprintf("%s/%s", L(s)->dir, file);
	int r = unlink(path);
	int saved = errno;
	free(path);
	if (r < 0 && saved != ENOENT)
		return err_set(e, LB_EXIT_STORE, "cannot delete '%s/%s': %s", L(s)->dir, file,
			       strerror(saved));
	if (r == 0 && fsync_dir(L(s)->dir) < 0)
		store_report(s, LOG_WARN, "cannot fsync directory '%s'", L(s)->dir);
	return 0;
}

static int local_put_small(struct store *s, const char *file, const void *buf, size_t len,
			   struct err *e)
{
	if (!store_file_ours(s->cfg, file))
		return err_set(e, LB_EXIT_INTERNAL, "refusing to write '%s': not a file of '%s'",
			       file, s->cfg->name);
	char *path = xasprintf("%s/%s", L(s)->dir, file);
	int r = write_file_atomic(path, buf, len, 0600);
	if (r < 0)
		err_set(e, LB_EXIT_STORE, "cannot write '%s': %s", path, strerror(-r));
	free(path);
	return r < 0 ? -1 : 0;
}

static void local_free(struct store *s)
{
	free(L(s)->dir);
	free(s->priv);
	free(s);
}

static const struct store_ops local_ops = {
	.kind = "local",
	.put_begin = local_put_begin,
	.put_write = local_put_write,
	.put_commit = local_put_commit,
	.put_abort = local_put_abort,
	.list = local_list,
	.get_open = local_get_open,
	.exists = local_exists,
	.remove = local_remove,
	.put_small = local_put_small,
	.free = local_free,
};

int store_local_new(const struct config *cfg, struct store **ret, struct err *e)
{
	struct store *s;
	struct local *l;

	if (!cfg->local.path)
		return err_set(e, LB_EXIT_CONFIG, "BACKUP_LOCAL_PATH is not set");
	s = xcalloc(1, sizeof(*s));
	l = xcalloc(1, sizeof(*l));
	l->dir = config_local_dir(cfg);
	s->ops = &local_ops;
	s->cfg = cfg;
	s->priv = l;
	*ret = s;
	return 0;
}

/* ---- its variables: rows of the configuration table (config-vars.h) ---- */

static void describe_local_path(const struct config *cfg, struct strbuf *out)
{
	strbuf_addf(out, "BACKUP_LOCAL_PATH    %s\n",
		    cfg->local.path ? cfg->local.path : "(unset)");
	if (cfg->local.path)
		strbuf_addf(out, "  archives in        %s/%s/\n", cfg->local.path, cfg->name);
}

static const struct config_var local_rows[] = {
	{ "BACKUP_LOCAL_PATH", 0, config_var_path, OFF(local.path), 0, 0, NULL,
	  "Absolute path of a mounted directory. Archives go to `BACKUP_LOCAL_PATH/BACKUP_NAME/`. "
	  "It must not lie inside a `BACKUP_DIRS` directory.",
	  describe_local_path },
};
const struct config_var_group local_vars = CONFIG_VAR_GROUP(local_rows);

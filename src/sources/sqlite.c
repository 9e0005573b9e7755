/* Consistent SQLite copies: sqlite3_backup from the live database into a private temporary file. */
#include "common.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <time.h>

#include "fs.h"
#include "log.h"
#include "sources/sqlite.h"
#include "xalloc.h"

const char *const sqlite_sidecars[SQLITE_NR_SIDECARS] = { "-wal", "-shm", "-journal" };

#define BUSY_WAIT_MS 100
#define BUSY_TRIES   600 /* a minute of retries while writers hold locks */

bool sqlite_is_database(const char *path)
{
	static const char magic[16] = "SQLite format 3";
	char head[16];
	auto_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	return fd >= 0 && read_retry(fd, head, sizeof(head)) == (ssize_t)sizeof(head) &&
	       !memcmp(head, magic, sizeof(head));
}

static void nap(void)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = BUSY_WAIT_MS * 1000000L };
	nanosleep(&ts, NULL);
}

int sqlite_snapshot(const char *path, int *ret_fd, struct err *e)
{
	const char *tmp = getenv("TMPDIR");
	sqlite3 *src = NULL, *dst = NULL;
	sqlite3_backup *b = NULL;
	char *copy = NULL;
	int fd = -1, ret = -1, rc;

	copy = xasprintf("%s/lifeboat-sqlite.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	fd = mkostemp(copy, O_CLOEXEC);
	if (fd < 0) {
		err_set(e, LB_EXIT_SOURCE, "cannot create a temporary copy of '%s' in '%s': %s",
			path, tmp && *tmp ? tmp : "/tmp", strerror(errno));
		goto out;
	}
	/* Read-only: the backup never writes to the application's database. */
	rc = sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK) {
		err_set(e, LB_EXIT_SOURCE, "cannot open SQLite database '%s': %s", path,
			src ? sqlite3_errmsg(src) : sqlite3_errstr(rc));
		goto out;
	}
	sqlite3_busy_timeout(src, 5000);
	rc = sqlite3_open_v2(copy, &dst, SQLITE_OPEN_READWRITE, NULL);
	if (rc != SQLITE_OK) {
		err_set(e, LB_EXIT_SOURCE, "cannot open the temporary copy of '%s': %s", path,
			dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
		goto out;
	}
	b = sqlite3_backup_init(dst, "main", src, "main");
	if (!b) {
		err_set(e, LB_EXIT_SOURCE, "cannot copy SQLite database '%s': %s", path,
			sqlite3_errmsg(dst));
		goto out;
	}
	/* All pages in one step: a writer between steps would restart the copy. */
	for (int tries = 0;; tries++) {
		rc = sqlite3_backup_step(b, -1);
		if (rc == SQLITE_DONE)
			break;
		if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && tries < BUSY_TRIES) {
			nap();
			continue;
		}
		err_set(e, LB_EXIT_SOURCE, "cannot copy SQLite database '%s': %s", path,
			sqlite3_errstr(rc));
		goto out;
	}
	rc = sqlite3_backup_finish(b);
	b = NULL;
	if (rc != SQLITE_OK) {
		err_set(e, LB_EXIT_SOURCE, "cannot copy SQLite database '%s': %s", path,
			sqlite3_errstr(rc));
		goto out;
	}
	/* The copy keeps the source's header, journal mode (WAL or not) included. */
	if (sqlite3_close(dst) != SQLITE_OK) {
		err_set(e, LB_EXIT_SOURCE, "cannot finish the copy of '%s'", path);
		dst = NULL;
		goto out;
	}
	dst = NULL;
	if (lseek(fd, 0, SEEK_SET) < 0) {
		err_set(e, LB_EXIT_SOURCE, "cannot read the copy of '%s': %s", path,
			strerror(errno));
		goto out;
	}
	*ret_fd = fd;
	fd = -1;
	ret = 0;
out:
	if (b)
		sqlite3_backup_finish(b);
	if (dst)
		sqlite3_close(dst);
	if (src)
		sqlite3_close(src);
	if (copy) {
		unlink(copy);
		free(copy);
	}
	close_fd(&fd);
	return ret;
}

/* SQLite databases in BACKUP_FILES: detected by header, copied with the online backup API. */
#ifndef LB_SQLITE_H
#define LB_SQLITE_H

#include "common.h"

#include "err.h"

/* Does the file start with the SQLite 3 header ("SQLite format 3\0")? */
bool sqlite_is_database(const char *path);

/*
 * Make a consistent copy of the database at `path` with SQLite's online
 * backup API (safe while an application writes, WAL mode included) into an
 * unlinked temporary file under TMPDIR, and return an fd positioned at its
 * start. The copy's disk space is freed when the fd is closed.
 */
int sqlite_snapshot(const char *path, int *ret_fd, struct err *e);

/*
 * The files beside a database that SQLite would replay into it ("-wal",
 * "-shm", "-journal"): a restore's swap moves the old ones aside with the old
 * database (recover.c) and puts them back with it on a rollback.
 */
#define SQLITE_NR_SIDECARS 3
extern const char *const sqlite_sidecars[SQLITE_NR_SIDECARS];

#endif

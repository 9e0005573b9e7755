/* fd and file-system helpers: whole reads and writes, atomic replace, fsync, rm -rf. */
#ifndef LB_FS_H
#define LB_FS_H

#include "common.h"

#include "strbuf.h"

/* Read a whole small file (at most `max` bytes) into `sb`; 0 or -errno. */
int read_file_capped(const char *path, size_t max, struct strbuf *sb);
/* write() all of buf, retrying on EINTR; 0 or -errno. */
int write_all(int fd, const void *buf, size_t len);
/* read() up to len bytes, retrying on EINTR; bytes read or -errno. */
ssize_t read_retry(int fd, void *buf, size_t len);
/* Close an fd if it is >= 0 and set it to -1, keeping errno. */
void close_fd(int *fd);
/* fsync a directory by path; 0 or -errno. */
int fsync_dir(const char *dir);
/*
 * Replace `path` with `len` bytes atomically: PATH.PID.tmp (mode `mode`), write, fsync,
 * rename over `path`, fsync the directory. 0, or -errno with the temp file removed and
 * `path` as it was (only a failed directory fsync comes after the replacement). A
 * crash leaves the old file or the new one, never a mix.
 */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Remove a tree like `rm -rf`, never following symlinks; 0 or -errno. */
int remove_tree(const char *path);
static inline void closep(int *fd)
{
	close_fd(fd);
}
#define auto_close LB_CLEANUP(closep)

#endif

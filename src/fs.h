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
/*
 * Batched reading of a pipe that its writer fills in small pieces (a tool's stdio
 * buffer: mariadb-dump writes 4 KiB at a time): a reader that wakes for each piece
 * spends more CPU on poll/read and cross-CPU wakeups than on the data. After a read
 * `got` bytes short of the `asked`, while the pipe holds less than PIPE_BATCH bytes
 * (FIONREAD), this waits PIPE_BATCH_WAIT_MS once, or less when `wake` (>= 0) becomes
 * readable, so the next read takes what came meanwhile in one go. Bounded: one wait
 * per short read, never blocking on the writer; data is only read later, never
 * dropped; a writer that stalls is met by the caller's own blocking poll again.
 * Only worth it (pipe_batch_ok) when the pipe holds PIPE_BATCH_MIN_PIPE bytes: the
 * writer then does not fill it during the wait below ~PIPE_BATCH_MIN_PIPE/wait
 * (256 MB/s), and above that it fills the pipe and each read is long (no wait).
 * Returns 1 when `wake` is readable, else 0.
 */
#define PIPE_BATCH	    (64u * 1024)
#define PIPE_BATCH_WAIT_MS  2
#define PIPE_BATCH_MIN_PIPE (512 * 1024)
bool pipe_batch_ok(int fd);
int pipe_batch_wait(int fd, int wake, size_t got, size_t asked);
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

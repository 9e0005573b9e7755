/*
 * Progress of long work (backup, restore, verify) on stderr: the hot loops add to two
 * counters (one relaxed atomic add per chunk), a thread reads them. On a terminal a live
 * line, redrawn every second; otherwise a log line every 30 s.
 */
#ifndef LB_PROGRESS_H
#define LB_PROGRESS_H

#include "common.h"

/* Count `n` more content bytes, or one more file. Cheap; safe from any thread. */
void progress_add(uint64_t n);
void progress_file(void);

/*
 * Start reporting `what` ("backup", "restore", "verify"), expecting about `expected`
 * content bytes (0: unknown; the last backup's size gives an estimate of the time left).
 * Resets the counters. One at a time per process; a second start is ignored.
 */
void progress_start(const char *what, uint64_t expected);

/* Stop the thread and clear the terminal line. A no-op when not started. */
void progress_stop(void);

/*
 * One report: "backup: 1.2 GiB of ~3.8 GiB, 3402 files, 85.3 MiB/s, 0:14 elapsed,
 * ~0:31 left" (what it knows). Pure, for tests.
 */
void progress_format(char *buf, size_t len, const char *what, uint64_t bytes, uint64_t files,
		     double elapsed, uint64_t expected);

#endif

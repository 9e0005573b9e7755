/*
 * Parallel gzip: one standard gzip file, a gzip member per block (RFC 1952 allows any
 * number; gzip -d, tar xz, Python's gzip and libarchive read them as one stream), each
 * block compressed by libdeflate on a worker thread.
 */
#ifndef LB_PGZIP_H
#define LB_PGZIP_H

#include "common.h"

#include "err.h"

/*
 * Uncompressed bytes per block (member). Members share no dictionary, so each starts with an
 * empty window; at 1 MiB that first 32 KiB is 1/32 of the data: on many small text files
 * (bench/small-files.py, 20,000 x 2 KiB) 1 MiB members are 0.6-1.6% smaller than 256 KiB
 * ones at the same CPU, and the 18 bytes of header and trailer per member are 0.002%.
 */
#define PGZIP_BLOCK (1024 * 1024)

/*
 * Receives compressed bytes in stream order, on pgzip's writer thread. Return
 * 0, or -1 with `e` set: pgzip then drops the rest of the output and reports
 * that error from the next pgzip_write or pgzip_finish.
 */
typedef int (*pgzip_out_fn)(void *ctx, const void *buf, size_t len, struct err *e);

struct pgzip;

/*
 * Start `threads` compressing workers (level 1-9, libdeflate's scale: 6 is about zlib's 6
 * at twice the speed) and a writer thread that calls `out`. Memory is fixed:
 * (2 * threads + 2) blocks in flight of 2 MiB each (input and output), and each
 * worker's compressor, about 4.5 MiB per thread and 4 MiB more in all.
 */
int pgzip_new(int level, unsigned threads, pgzip_out_fn out, void *ctx, struct pgzip **ret,
	      struct err *e);

/*
 * Copy `len` bytes in. Blocks (back-pressure) while every block buffer is
 * queued. Returns -1 with the output callback's error once it failed.
 */
int pgzip_write(struct pgzip *z, const void *buf, size_t len, struct err *e);

/* Compress the rest, write the trailer and wait until `out` has had every byte. */
int pgzip_finish(struct pgzip *z, struct err *e);

/* Stop the threads (output not yet written is dropped) and free everything. */
void pgzip_free(struct pgzip *z);

/* Blocks stored rather than deflated so far, because they looked incompressible. */
uint64_t pgzip_stored_blocks(struct pgzip *z);
/* Blocks that looked random and were given the deflate trial (the rest were stored on the run). */
uint64_t pgzip_trial_blocks(struct pgzip *z);

/* Total uncompressed bytes accepted so far. */
uint64_t pgzip_bytes_in(const struct pgzip *z);

#endif

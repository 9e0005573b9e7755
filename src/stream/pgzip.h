/* Parallel gzip: one standard gzip member compressed in blocks on worker threads. */
#ifndef LB_PGZIP_H
#define LB_PGZIP_H

#include "common.h"

#include "err.h"

/* Uncompressed bytes per block; each block is primed with the previous 32 KiB. */
#define PGZIP_BLOCK (128 * 1024)

/*
 * Receives compressed bytes in stream order, on pgzip's writer thread. Return
 * 0, or -1 with `e` set: pgzip then drops the rest of the output and reports
 * that error from the next pgzip_write or pgzip_finish.
 */
typedef int (*pgzip_out_fn)(void *ctx, const void *buf, size_t len, struct err *e);

struct pgzip;

/*
 * Start `threads` compressing workers (level 1-9) and a writer thread that
 * calls `out`. Memory is fixed: about (2 * threads + 2) blocks in flight,
 * about 600 KiB per thread in all.
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

/* Total uncompressed bytes accepted so far. */
uint64_t pgzip_bytes_in(const struct pgzip *z);

#endif

/* zstd compression with libzstd's worker threads and a small, fixed job size. */
#ifndef LB_ZST_H
#define LB_ZST_H

#include "common.h"

#include "err.h"
#include "stream/pgzip.h"

struct zst;

/*
 * Compress at `level` (1-19) on `threads` libzstd workers. `out` is called on
 * zst's writer thread with compressed bytes in order; its error comes back
 * from a later zst_write or zst_finish. Memory is fixed (about 20 MB at level
 * 3 with two workers).
 */
int zst_new(int level, unsigned threads, pgzip_out_fn out, void *ctx, struct zst **ret,
	    struct err *e);
int zst_write(struct zst *z, const void *buf, size_t len, struct err *e);

/* End the frame and wait until `out` has had every byte. */
int zst_finish(struct zst *z, struct err *e);

/* Stop the writer (output not yet written is dropped) and free everything. */
void zst_free(struct zst *z);

#endif

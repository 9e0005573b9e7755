/* zstd compression with libzstd's worker threads and a small, fixed job size. */
#ifndef LB_ZST_H
#define LB_ZST_H

#include "common.h"

#include "err.h"
#include "pgzip.h"

struct zst;

/*
 * Compress at `level` (1-19) on `threads` libzstd workers. `out` is called
 * from the thread calling zst_write/zst_finish, with compressed bytes in
 * order; its error is returned from there.
 */
int zst_new(int level, unsigned threads, pgzip_out_fn out, void *ctx, struct zst **ret,
	    struct err *e);
int zst_write(struct zst *z, const void *buf, size_t len, struct err *e);

/* End the frame and hand out every remaining byte. */
int zst_finish(struct zst *z, struct err *e);
void zst_free(struct zst *z);

#endif

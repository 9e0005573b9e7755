/* The compression stage of the backup stream: one interface over gzip, zstd and none. */
#ifndef LB_STREAM_COMPRESSOR_H
#define LB_STREAM_COMPRESSOR_H

#include "common.h"

#include "err.h"
#include "naming.h"

/*
 * Receives compressed bytes in stream order. gzip and zstd call it on their own
 * writer thread, none on the caller's. Return 0, or -1 with `e` set: the
 * compressor then drops the rest and reports that error from its next write or
 * finish.
 */
typedef int (*stream_out_fn)(void *ctx, const void *buf, size_t len, struct err *e);

struct compressor_ops {
	enum compression kind;
	int (*open)(int level, unsigned threads, stream_out_fn out, void *ctx, void **ret_state,
		    struct err *e);
	/* Take `len` bytes (blocking while the stage is full). */
	int (*write)(void *state, const void *buf, size_t len, struct err *e);
	/* Flush the rest: when it returns 0, `out` has had every byte. */
	int (*finish)(void *state, struct err *e);
	/* Stop its threads (pending output is dropped) and free it; NULL is fine. */
	void (*free)(void *state);
};

struct compressor {
	const struct compressor_ops *ops;
	void *state;
};

/* Start compressing with `c` at `level` on `threads` workers, delivering to `out`. */
int compressor_open(enum compression c, int level, unsigned threads, stream_out_fn out, void *ctx,
		    struct compressor *ret, struct err *e);
int compressor_write(struct compressor *z, const void *buf, size_t len, struct err *e);
int compressor_finish(struct compressor *z, struct err *e);
/* Safe on a compressor never opened (zeroed) or already closed. */
void compressor_close(struct compressor *z);

#endif

/* zstd streaming through libzstd: multithreaded, with jobs small enough to bound memory. */
#include "common.h"

#include <zstd.h>

#include "util.h"
#include "zst.h"

/*
 * libzstd's default job is 4 windows (8 MiB at level 3) and it buffers a few
 * per worker: about 120 MB with two workers. 1 MiB jobs keep the whole
 * compressor near 20 MB at level 3 and cost well under 1% of ratio.
 */
#define JOB_SIZE (1 << 20)

struct zst {
	ZSTD_CCtx *cctx;
	pgzip_out_fn out;
	void *ctx;
	unsigned char *obuf;
	size_t ocap;
	bool failed;
};

void zst_free(struct zst *z)
{
	if (!z)
		return;
	ZSTD_freeCCtx(z->cctx);
	free(z->obuf);
	free(z);
}

static int zfail(struct zst *z, size_t r, struct err *e)
{
	z->failed = true;
	return err_set(e, LB_EXIT_INTERNAL, "zstd compression failed: %s", ZSTD_getErrorName(r));
}

int zst_new(int level, unsigned threads, pgzip_out_fn out, void *ctx, struct zst **ret,
	    struct err *e)
{
	struct zst *z = xcalloc(1, sizeof(*z));
	size_t r;

	z->out = out;
	z->ctx = ctx;
	z->cctx = ZSTD_createCCtx();
	if (!z->cctx) {
		zst_free(z);
		return err_set(e, LB_EXIT_INTERNAL, "cannot start zstd compression");
	}
	if (ZSTD_isError(r = ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(r = ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_checksumFlag, 1))) {
		zst_free(z);
		return err_set(e, LB_EXIT_INTERNAL, "cannot set up zstd: %s", ZSTD_getErrorName(r));
	}
	/*
	 * Workers compress while this thread reads and builds tar (even with one).
	 * A libzstd built without threads refuses them: it compresses here then.
	 */
	r = ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_nbWorkers, (int)(threads ? threads : 1));
	if (!ZSTD_isError(r))
		ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_jobSize, JOB_SIZE);
	z->ocap = ZSTD_CStreamOutSize();
	z->obuf = xmalloc(z->ocap);
	*ret = z;
	return 0;
}

/* Feed `len` bytes (or end the frame) and hand out what libzstd produced. */
static int pump(struct zst *z, const void *buf, size_t len, ZSTD_EndDirective mode, struct err *e)
{
	ZSTD_inBuffer in = { buf, len, 0 };
	size_t left;

	if (z->failed)
		return err_set(e, LB_EXIT_INTERNAL, "zstd compression failed");
	do {
		ZSTD_outBuffer o = { z->obuf, z->ocap, 0 };
		left = ZSTD_compressStream2(z->cctx, &o, &in, mode);
		if (ZSTD_isError(left))
			return zfail(z, left, e);
		if (o.pos && z->out(z->ctx, z->obuf, o.pos, e) < 0) {
			z->failed = true;
			return -1;
		}
	} while (mode == ZSTD_e_end ? left != 0 : in.pos < in.size);
	return 0;
}

int zst_write(struct zst *z, const void *buf, size_t len, struct err *e)
{
	return pump(z, buf, len, ZSTD_e_continue, e);
}

int zst_finish(struct zst *z, struct err *e)
{
	return pump(z, NULL, 0, ZSTD_e_end, e);
}

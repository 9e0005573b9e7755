/* zstd streaming through libzstd: multithreaded, with jobs small enough to bound memory. */
#include "common.h"

#include <pthread.h>
#include <zstd.h>

#include "stream/zst.h"
#include "xalloc.h"

/*
 * libzstd's default job is 4 windows (8 MiB at level 3) and it buffers a few
 * per worker: about 120 MB with two workers. Jobs of one window (2 MiB at
 * level 3), each primed with the whole window before it (overlapLog 9, where
 * the default is an eighth of it), keep the process near 40 MiB with two
 * workers and compress as well as `zstd -T0`'s 8 MiB jobs; 1 MiB jobs with
 * the default overlap were 2.4% larger (bench/README.md, zstd-jobs.py).
 */
#define JOB_SIZE    (2 << 20)
#define OVERLAP_LOG 9

/*
 * Compressed output waits in a ring of buffers for the writer thread, so a
 * slow consumer (gpg) does not stop this thread from feeding libzstd's
 * workers: 8 x 256 KiB, about two jobs' worth.
 */
#define OBUF_SIZE (256 * 1024)
#define NR_OBUF	  8

struct obuf {
	unsigned char *p;
	size_t len;
	bool full; /* handed to the writer */
};

struct zst {
	ZSTD_CCtx *cctx;
	pgzip_out_fn out;
	void *ctx;
	bool failed; /* compression failed (producer side) */

	pthread_mutex_t lock;
	pthread_cond_t filled, freed;
	struct obuf bufs[NR_OBUF];
	size_t head, tail; /* next to fill (producer), next to write (writer) */
	bool done;	   /* no more buffers will come */
	bool wfailed;	   /* the output callback failed: werr says why */
	struct err werr;
	pthread_t writer;
	bool writer_running;
};

static void *writer_main(void *arg)
{
	struct zst *z = arg;

	pthread_mutex_lock(&z->lock);
	for (;;) {
		struct obuf *b = &z->bufs[z->tail];
		while (!b->full && !z->done)
			pthread_cond_wait(&z->filled, &z->lock);
		if (!b->full)
			break;
		bool skip = z->wfailed;
		pthread_mutex_unlock(&z->lock);
		struct err e = ERR_INIT;
		int r = skip ? 0 : z->out(z->ctx, b->p, b->len, &e);
		pthread_mutex_lock(&z->lock);
		if (r < 0 && !z->wfailed) {
			z->wfailed = true;
			err_set(&z->werr, e.code ? e.code : LB_EXIT_INTERNAL, "%s", e.msg);
		}
		b->full = false;
		b->len = 0;
		z->tail = (z->tail + 1) % NR_OBUF;
		pthread_cond_broadcast(&z->freed);
	}
	pthread_mutex_unlock(&z->lock);
	return NULL;
}

static void stop_writer(struct zst *z)
{
	if (!z->writer_running)
		return;
	pthread_mutex_lock(&z->lock);
	z->done = true;
	pthread_cond_broadcast(&z->filled);
	pthread_mutex_unlock(&z->lock);
	pthread_join(z->writer, NULL);
	z->writer_running = false;
}

void zst_free(struct zst *z)
{
	if (!z)
		return;
	stop_writer(z);
	ZSTD_freeCCtx(z->cctx);
	for (size_t i = 0; i < NR_OBUF; i++)
		free(z->bufs[i].p);
	pthread_mutex_destroy(&z->lock);
	pthread_cond_destroy(&z->filled);
	pthread_cond_destroy(&z->freed);
	free(z);
}

int zst_new(int level, unsigned threads, pgzip_out_fn out, void *ctx, struct zst **ret,
	    struct err *e)
{
	struct zst *z = xcalloc(1, sizeof(*z));
	size_t r;

	z->out = out;
	z->ctx = ctx;
	z->werr = (struct err)ERR_INIT;
	pthread_mutex_init(&z->lock, NULL);
	pthread_cond_init(&z->filled, NULL);
	pthread_cond_init(&z->freed, NULL);
	for (size_t i = 0; i < NR_OBUF; i++)
		z->bufs[i].p = xmalloc(OBUF_SIZE);
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
	if (!ZSTD_isError(r)) {
		ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_jobSize, JOB_SIZE);
		ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_overlapLog, OVERLAP_LOG);
	}
	if (pthread_create(&z->writer, NULL, writer_main, z) != 0) {
		zst_free(z);
		return err_set(e, LB_EXIT_INTERNAL, "cannot start a compression thread");
	}
	z->writer_running = true;
	*ret = z;
	return 0;
}

/* Hand the current buffer to the writer and wait for the next one to be free. */
static int submit(struct zst *z, struct err *e)
{
	int ret = 0;

	pthread_mutex_lock(&z->lock);
	z->bufs[z->head].full = true;
	pthread_cond_signal(&z->filled);
	z->head = (z->head + 1) % NR_OBUF;
	while (z->bufs[z->head].full)
		pthread_cond_wait(&z->freed, &z->lock);
	if (z->wfailed)
		ret = err_copy(e, &z->werr);
	pthread_mutex_unlock(&z->lock);
	return ret;
}

/* Feed `len` bytes (or end the frame); full output buffers go to the writer. */
static int pump(struct zst *z, const void *buf, size_t len, ZSTD_EndDirective mode, struct err *e)
{
	ZSTD_inBuffer in = { buf, len, 0 };
	size_t left;

	if (z->failed)
		return err_set(e, LB_EXIT_INTERNAL, "zstd compression failed");
	do {
		struct obuf *b = &z->bufs[z->head];
		ZSTD_outBuffer o = { b->p, OBUF_SIZE, b->len };
		left = ZSTD_compressStream2(z->cctx, &o, &in, mode);
		b->len = o.pos;
		if (ZSTD_isError(left)) {
			z->failed = true;
			return err_set(e, LB_EXIT_INTERNAL, "zstd compression failed: %s",
				       ZSTD_getErrorName(left));
		}
		if (b->len == OBUF_SIZE && submit(z, e) < 0) {
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
	if (pump(z, NULL, 0, ZSTD_e_end, e) < 0)
		return -1;
	if (z->bufs[z->head].len && submit(z, e) < 0)
		return -1;
	stop_writer(z);
	if (z->wfailed)
		return err_copy(e, &z->werr);
	return 0;
}

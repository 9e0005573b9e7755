/*
 * Parallel gzip: each block is compressed by libdeflate on a worker thread into a gzip
 * member of its own, and the members are written in order.
 */
#include "common.h"

#include <assert.h>
#include <libdeflate.h>
#include <math.h>
#include <pthread.h>
#include <zlib.h>

#include "stream/pgzip.h"
#include "xalloc.h"

/* The deflate window: all that a match can reach back. */
#define WINDOW (32 * 1024)

/*
 * A block is stored, not searched, when its bytes look random (order-0 entropy above
 * STORE_BITS bits per byte) and a fast trial on a sample of it, primed with the 32 KiB of
 * the block before the sample (all that deflate's window could match), saves less than
 * 3%. Deflate spends most of its time failing to find matches in such data (JPEG, video,
 * archives, random bytes) and then stores it anyway.
 *
 * The entropy is estimated on ENTROPY_SLICES slices of ENTROPY_SLICE bytes spread evenly
 * over the block (16 KiB of its 256 KiB): a block that is partly text has text in some
 * slices. The trial (zlib's dictionary and level-1 pass on 48 KiB cost more than storing
 * the whole block) runs only while the blocks before were not stored; after a stored
 * block, a random-looking one is stored without it, and every TRIAL_EVERY-th such block
 * is tried again. Data that looks random yet repeats within the window after a run of
 * random blocks is found by that retrial: at most TRIAL_EVERY - 1 blocks are stored that
 * deflate would have shrunk (bench/README.md measured what that costs).
 */
#define STORE_BITS     7.9
#define TRIAL_SAMPLE   (16 * 1024)
#define ENTROPY_SLICES 32
#define ENTROPY_SLICE  512
#define TRIAL_EVERY    16

/*
 * A block moves FREE -> (filled by the producer) FILLED -> (a worker) BUSY ->
 * DONE -> (the writer, in sequence order) FREE.
 */
enum block_state { BLOCK_FREE, BLOCK_FILLED, BLOCK_BUSY, BLOCK_DONE };

struct block {
	enum block_state state;
	uint64_t seq;
	bool last;
	unsigned char *in; /* up to PGZIP_BLOCK bytes */
	size_t in_len;
	unsigned char *out; /* the block's gzip member (none for an empty last block) */
	size_t out_len;
	bool stored; /* compressed at level 0: it looked incompressible */
	bool failed; /* libdeflate had no room for the member (it cannot, by the bound) */
};

/* A worker's own compressors: at the stream's level, and at level 0 for stored blocks. */
struct worker {
	struct pgzip *z;
	pthread_t thread;
	struct libdeflate_compressor *deflate, *store;
};

struct pgzip {
	int level;
	unsigned nr_workers;
	pgzip_out_fn out;
	void *ctx;

	pthread_mutex_t lock;
	pthread_cond_t work;  /* a block was filled, or stop */
	pthread_cond_t done;  /* a block was compressed, or stop */
	pthread_cond_t freed; /* a block was written and is free again */
	bool stop;
	bool failed; /* the output callback failed: err holds why */
	bool finished;
	struct err err;

	struct block *blocks;
	size_t nr_blocks;
	size_t out_cap;
	uint64_t next_seq; /* sequence number of the block being filled */
	struct block *cur; /* the block being filled (producer only) */
	uint64_t bytes_in;
	uint64_t stored_blocks; /* under lock */
	uint64_t trials;	/* under lock: blocks given the deflate trial */
	/* Under lock: blocks stored since the last trial (with it); 0 after a deflated one. */
	unsigned skipped;

	struct worker *workers;
	size_t nr_started;
	pthread_t writer;
	bool writer_started;
};

/* The oldest filled block, so that the writer is never kept waiting on a young one. */
static struct block *oldest_filled(struct pgzip *z)
{
	struct block *best = NULL;

	for (size_t i = 0; i < z->nr_blocks; i++) {
		struct block *b = &z->blocks[i];
		if (b->state == BLOCK_FILLED && (!best || b->seq < best->seq))
			best = b;
	}
	return best;
}

/*
 * Order-0 entropy in bits per byte of ENTROPY_SLICES slices spread over the `n` bytes at
 * `p` (all of them when `n` is smaller).
 */
static double sampled_entropy(const unsigned char *p, size_t n)
{
	size_t h[256] = { 0 };
	size_t total = 0;
	double bits = 0;

	if (n <= ENTROPY_SLICES * ENTROPY_SLICE) {
		for (size_t i = 0; i < n; i++)
			h[p[i]]++;
		total = n;
	} else {
		size_t step = n / ENTROPY_SLICES;
		for (size_t s = 0; s < ENTROPY_SLICES; s++) {
			const unsigned char *q = p + s * step;
			for (size_t i = 0; i < ENTROPY_SLICE; i++)
				h[q[i]]++;
		}
		total = ENTROPY_SLICES * ENTROPY_SLICE;
	}
	for (size_t c = 0; c < 256; c++)
		if (h[c])
			bits -= (double)h[c] * log2((double)h[c] / (double)total);
	return bits / (double)total;
}

/*
 * Would deflate gain nothing on block `b`? `t` is a raw level-1 stream and `scratch` has
 * room for its output of TRIAL_SAMPLE bytes.
 */
static bool trial_incompressible(z_stream *t, unsigned char *scratch, size_t scratch_len,
				 const struct block *b)
{
	/* The block's last TRIAL_SAMPLE bytes, after up to WINDOW bytes of it before them. */
	const unsigned char *sample = b->in + b->in_len - TRIAL_SAMPLE;
	size_t before = b->in_len - TRIAL_SAMPLE;
	if (before > WINDOW)
		before = WINDOW;
	if (deflateReset(t) != Z_OK ||
	    (before && deflateSetDictionary(t, sample - before, (uInt)before) != Z_OK))
		return false;
	t->next_in = (unsigned char *)sample;
	t->avail_in = TRIAL_SAMPLE;
	t->next_out = scratch;
	t->avail_out = (uInt)scratch_len;
	if (deflate(t, Z_SYNC_FLUSH) != Z_OK || t->avail_in)
		return false;
	return scratch_len - t->avail_out > TRIAL_SAMPLE - TRIAL_SAMPLE / 32;
}

/* Store block `b` rather than deflate it? Decides with the entropy, then the trial if due. */
static bool decide_stored(struct pgzip *z, z_stream *t, unsigned char *scratch, size_t scratch_len,
			  const struct block *b)
{
	bool random =
		t && b->in_len >= TRIAL_SAMPLE && sampled_entropy(b->in, b->in_len) > STORE_BITS;
	pthread_mutex_lock(&z->lock);
	bool trial = random && (!z->skipped || z->skipped >= TRIAL_EVERY);
	z->trials += trial;
	if (!random)
		z->skipped = 0;
	pthread_mutex_unlock(&z->lock);
	if (!random)
		return false;
	bool stored = !trial || trial_incompressible(t, scratch, scratch_len, b);
	pthread_mutex_lock(&z->lock);
	z->skipped = !stored ? 0 : trial ? 1 : z->skipped + 1;
	pthread_mutex_unlock(&z->lock);
	return stored;
}

/*
 * Block `b` as one gzip member: header, deflate (level 0: stored blocks), CRC-32 and
 * length. An empty last block after others adds nothing.
 */
static void compress_block(struct worker *w, struct block *b)
{
	b->out_len = 0;
	b->failed = false;
	if (!b->in_len && b->seq)
		return;
	b->out_len = libdeflate_gzip_compress(b->stored ? w->store : w->deflate, b->in, b->in_len,
					      b->out, w->z->out_cap);
	b->failed = b->out_len == 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pgzip *z = w->z;
	z_stream t = { 0 };
	bool trial = deflateInit2(&t, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK;
	size_t scratch_len = trial ? deflateBound(&t, TRIAL_SAMPLE) + 64 : 0;
	unsigned char *scratch = trial ? xmalloc(scratch_len) : NULL;

	pthread_mutex_lock(&z->lock);
	for (;;) {
		struct block *b = NULL;
		while (!z->stop && !(b = oldest_filled(z)))
			pthread_cond_wait(&z->work, &z->lock);
		if (z->stop)
			break;
		b->state = BLOCK_BUSY;
		pthread_mutex_unlock(&z->lock);
		b->stored = decide_stored(z, trial ? &t : NULL, scratch, scratch_len, b);
		compress_block(w, b);
		pthread_mutex_lock(&z->lock);
		z->stored_blocks += b->stored;
		b->state = BLOCK_DONE;
		pthread_cond_broadcast(&z->done);
	}
	pthread_mutex_unlock(&z->lock);
	if (trial)
		deflateEnd(&t);
	free(scratch);
	return NULL;
}

/* Called without the lock; records the first failure and drops later output. */
static void emit(struct pgzip *z, const void *buf, size_t len)
{
	struct err e = ERR_INIT;

	pthread_mutex_lock(&z->lock);
	bool failed = z->failed;
	pthread_mutex_unlock(&z->lock);
	if (failed || !len)
		return;
	if (z->out(z->ctx, buf, len, &e) < 0) {
		pthread_mutex_lock(&z->lock);
		z->failed = true;
		err_set(&z->err, e.code ? e.code : LB_EXIT_INTERNAL, "%s", e.msg);
		pthread_mutex_unlock(&z->lock);
	}
}

/* Thread: each block's member in sequence order. */
static void *writer_main(void *arg)
{
	struct pgzip *z = arg;
	uint64_t seq = 0;

	pthread_mutex_lock(&z->lock);
	for (;;) {
		struct block *b = &z->blocks[seq % z->nr_blocks];
		while (!z->stop && !(b->state == BLOCK_DONE && b->seq == seq))
			pthread_cond_wait(&z->done, &z->lock);
		if (z->stop)
			break;
		if (b->failed && !z->failed) {
			err_set(&z->err, LB_EXIT_INTERNAL, "gzip compression failed");
			z->failed = true;
		}
		pthread_mutex_unlock(&z->lock);
		emit(z, b->out, b->out_len);
		bool last = b->last;
		pthread_mutex_lock(&z->lock);
		b->state = BLOCK_FREE;
		seq++;
		pthread_cond_broadcast(&z->freed);
		if (last)
			break;
	}
	pthread_mutex_unlock(&z->lock);
	return NULL;
}

/* Producer: wait for the next block in the ring to be free. */
static void take_block(struct pgzip *z)
{
	struct block *b = &z->blocks[z->next_seq % z->nr_blocks];

	pthread_mutex_lock(&z->lock);
	while (b->state != BLOCK_FREE)
		pthread_cond_wait(&z->freed, &z->lock);
	pthread_mutex_unlock(&z->lock);
	b->seq = z->next_seq;
	b->last = false;
	b->in_len = 0;
	z->cur = b;
}

/* Producer: hand the current block to the workers. */
static void submit(struct pgzip *z, bool last)
{
	struct block *b = z->cur;

	pthread_mutex_lock(&z->lock);
	b->last = last;
	b->state = BLOCK_FILLED;
	pthread_cond_signal(&z->work);
	pthread_mutex_unlock(&z->lock);
	z->next_seq++;
	z->cur = NULL;
	if (!last)
		take_block(z);
}

static int check_failed(struct pgzip *z, struct err *e)
{
	int ret = 0;

	pthread_mutex_lock(&z->lock);
	if (z->failed)
		ret = err_copy(e, &z->err);
	pthread_mutex_unlock(&z->lock);
	return ret;
}

static void stop_threads(struct pgzip *z)
{
	pthread_mutex_lock(&z->lock);
	z->stop = true;
	pthread_cond_broadcast(&z->work);
	pthread_cond_broadcast(&z->done);
	pthread_cond_broadcast(&z->freed);
	pthread_mutex_unlock(&z->lock);
	for (size_t i = 0; i < z->nr_started; i++)
		pthread_join(z->workers[i].thread, NULL);
	z->nr_started = 0;
	if (z->writer_started)
		pthread_join(z->writer, NULL);
	z->writer_started = false;
}

void pgzip_free(struct pgzip *z)
{
	if (!z)
		return;
	stop_threads(z);
	for (size_t i = 0; i < z->nr_blocks; i++) {
		free(z->blocks[i].in);
		free(z->blocks[i].out);
	}
	free(z->blocks);
	for (size_t i = 0; i < z->nr_workers; i++) {
		libdeflate_free_compressor(z->workers[i].deflate);
		libdeflate_free_compressor(z->workers[i].store);
	}
	free(z->workers);
	pthread_mutex_destroy(&z->lock);
	pthread_cond_destroy(&z->work);
	pthread_cond_destroy(&z->done);
	pthread_cond_destroy(&z->freed);
	free(z);
}

int pgzip_new(int level, unsigned threads, pgzip_out_fn out, void *ctx, struct pgzip **ret,
	      struct err *e)
{
	struct pgzip *z = xcalloc(1, sizeof(*z));

	if (level < 1 || level > 9)
		level = 6;
	if (!threads)
		threads = 1;
	z->level = level;
	z->out = out;
	z->ctx = ctx;
	z->err = (struct err)ERR_INIT;
	pthread_mutex_init(&z->lock, NULL);
	pthread_cond_init(&z->work, NULL);
	pthread_cond_init(&z->done, NULL);
	pthread_cond_init(&z->freed, NULL);
	/* The worst case of one member at any level. */
	z->out_cap = libdeflate_gzip_compress_bound(NULL, PGZIP_BLOCK);

	/* Two blocks per worker keep them busy while the writer and producer work. */
	z->nr_blocks = 2 * (size_t)threads + 2;
	z->blocks = xcalloc(z->nr_blocks, sizeof(*z->blocks));
	for (size_t i = 0; i < z->nr_blocks; i++) {
		z->blocks[i].in = xmalloc(PGZIP_BLOCK);
		z->blocks[i].out = xmalloc(z->out_cap);
	}
	z->workers = xcalloc(threads, sizeof(*z->workers));
	z->nr_workers = threads;
	for (unsigned i = 0; i < threads; i++) {
		struct worker *w = &z->workers[i];
		w->z = z;
		w->deflate = libdeflate_alloc_compressor(level);
		w->store = libdeflate_alloc_compressor(0);
		if (!w->deflate || !w->store) {
			pgzip_free(z);
			return err_set(e, LB_EXIT_INTERNAL, "cannot start gzip compression");
		}
	}
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&z->workers[i].thread, NULL, worker_main, &z->workers[i]) != 0) {
			pgzip_free(z);
			return err_set(e, LB_EXIT_INTERNAL, "cannot start a compression thread");
		}
		z->nr_started++;
	}
	if (pthread_create(&z->writer, NULL, writer_main, z) != 0) {
		pgzip_free(z);
		return err_set(e, LB_EXIT_INTERNAL, "cannot start a compression thread");
	}
	z->writer_started = true;
	take_block(z);
	*ret = z;
	return 0;
}

int pgzip_write(struct pgzip *z, const void *buf, size_t len, struct err *e)
{
	const unsigned char *p = buf;

	assert(!z->finished);
	while (len) {
		struct block *b = z->cur;
		size_t n = PGZIP_BLOCK - b->in_len;
		if (n > len)
			n = len;
		memcpy(b->in + b->in_len, p, n);
		b->in_len += n;
		z->bytes_in += n;
		p += n;
		len -= n;
		if (b->in_len == PGZIP_BLOCK) {
			submit(z, false);
			if (check_failed(z, e) < 0)
				return -1;
		}
	}
	return 0;
}

int pgzip_finish(struct pgzip *z, struct err *e)
{
	assert(!z->finished);
	z->finished = true;
	submit(z, true);
	/* The writer ends after the last block; then the workers may stop. */
	pthread_join(z->writer, NULL);
	z->writer_started = false;
	stop_threads(z);
	return check_failed(z, e);
}

uint64_t pgzip_bytes_in(const struct pgzip *z)
{
	return z->bytes_in;
}

uint64_t pgzip_trial_blocks(struct pgzip *z)
{
	pthread_mutex_lock(&z->lock);
	uint64_t n = z->trials;
	pthread_mutex_unlock(&z->lock);
	return n;
}

uint64_t pgzip_stored_blocks(struct pgzip *z)
{
	pthread_mutex_lock(&z->lock);
	uint64_t n = z->stored_blocks;
	pthread_mutex_unlock(&z->lock);
	return n;
}

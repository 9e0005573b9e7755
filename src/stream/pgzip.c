/* Parallel gzip: blocks deflated on worker threads, written in order as one gzip member. */
#include "common.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <zlib.h>

#include "stream/pgzip.h"
#include "xalloc.h"

#define DICT (32 * 1024)

/*
 * A block is stored, not searched, when its bytes look random (order-0 entropy above
 * STORE_BITS bits per byte) and a fast trial on a sample of it, primed with the 32 KiB
 * before the sample (all that deflate's window could match), saves less than 3%.
 * Deflate at level 6 spends most of its time failing to find matches in such data (JPEG,
 * video, archives, random bytes) and then stores it anyway.
 */
#define STORE_BITS   7.9
#define TRIAL_SAMPLE (16 * 1024)

/*
 * A block moves FREE -> (filled by the producer) FILLED -> (a worker) BUSY ->
 * DONE -> (the writer, in sequence order) FREE. Only the producer fills a
 * FREE block, so the previous block's input stays readable while it copies
 * the dictionary out of it.
 */
enum block_state { BLOCK_FREE, BLOCK_FILLED, BLOCK_BUSY, BLOCK_DONE };

struct block {
	enum block_state state;
	uint64_t seq;
	bool last;
	unsigned char *in; /* DICT bytes of dictionary room, then up to PGZIP_BLOCK of data */
	size_t dict_len;   /* dictionary bytes, stored right before the data */
	size_t in_len;	   /* data bytes */
	unsigned char *out;
	size_t out_len;
	uLong crc;
	bool stored; /* deflated at level 0: it looked incompressible */
	int zerr;    /* zlib failure in the worker, Z_OK otherwise */
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

	pthread_t *workers;
	size_t nr_started;
	pthread_t writer;
	bool writer_started;
};

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

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

/* Order-0 entropy of `n` > 0 bytes, in bits per byte. */
static double entropy(const unsigned char *p, size_t n)
{
	size_t h[256] = { 0 };
	double bits = 0;

	for (size_t i = 0; i < n; i++)
		h[p[i]]++;
	for (size_t c = 0; c < 256; c++)
		if (h[c])
			bits -= (double)h[c] * log2((double)h[c] / (double)n);
	return bits / (double)n;
}

/*
 * Would deflate gain nothing on block `b`? `t` is a raw level-1 stream and `scratch` has
 * room for its output of TRIAL_SAMPLE bytes.
 */
static bool incompressible(z_stream *t, unsigned char *scratch, size_t scratch_len,
			   const struct block *b)
{
	if (b->in_len < TRIAL_SAMPLE || entropy(b->in + DICT, b->in_len) <= STORE_BITS)
		return false;
	/* The block's last TRIAL_SAMPLE bytes, after up to DICT bytes before them. */
	const unsigned char *sample = b->in + DICT + b->in_len - TRIAL_SAMPLE;
	size_t before = b->dict_len + b->in_len - TRIAL_SAMPLE;
	if (before > DICT)
		before = DICT;
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

/*
 * Is more than half of block `b` hex digits (SHA256SUMS, lists of hashes)? Deflate's
 * default strategy takes the chance 3-byte matches in such text, which cost more than
 * the 4-5 bit literals they replace; Z_FILTERED keeps only longer matches (SHA256SUMS
 * of 100,000 files: 11% smaller).
 */
static bool mostly_hex(const struct block *b)
{
	const unsigned char *p = b->in + DICT;
	size_t hex = 0;

	for (size_t i = 0; i < b->in_len; i++)
		hex += (p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f');
	return hex > b->in_len / 2;
}

/*
 * Raw deflate of one block at `level` (0: stored): primed with its dictionary, ended on a
 * byte boundary.
 */
static int deflate_block(z_stream *s, int level, struct block *b)
{
	int r = deflateReset(s);

	/* Right after a reset deflateParams has nothing to flush. */
	if (r == Z_OK)
		r = deflateParams(s, level,
				  level && mostly_hex(b) ? Z_FILTERED : Z_DEFAULT_STRATEGY);
	if (r == Z_OK && b->dict_len)
		r = deflateSetDictionary(s, b->in + DICT - b->dict_len, (uInt)b->dict_len);
	if (r != Z_OK)
		return r;
	s->next_in = b->in + DICT;
	s->avail_in = (uInt)b->in_len;
	s->next_out = b->out;
	s->avail_out = (uInt)b->out_len;
	r = deflate(s, b->last ? Z_FINISH : Z_SYNC_FLUSH);
	/* The output buffer is sized by deflateBound: everything fits in one call. */
	if (s->avail_in || s->avail_out == 0 || (b->last ? r != Z_STREAM_END : r != Z_OK))
		return r == Z_OK ? Z_BUF_ERROR : r;
	b->out_len = b->out_len - s->avail_out;
	b->crc = crc32(crc32(0L, Z_NULL, 0), b->in + DICT, (uInt)b->in_len);
	return Z_OK;
}

static void *worker_main(void *arg)
{
	struct pgzip *z = arg;
	z_stream s = { 0 }, t = { 0 };
	int init = deflateInit2(&s, z->level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
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
		b->out_len = z->out_cap;
		b->stored = trial && incompressible(&t, scratch, scratch_len, b);
		b->zerr = init == Z_OK ? deflate_block(&s, b->stored ? 0 : z->level, b) : init;
		pthread_mutex_lock(&z->lock);
		z->stored_blocks += b->stored;
		b->state = BLOCK_DONE;
		pthread_cond_broadcast(&z->done);
	}
	pthread_mutex_unlock(&z->lock);
	if (init == Z_OK)
		deflateEnd(&s);
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

/* Thread: header, then each block in sequence order, then the CRC-32 and length trailer. */
static void *writer_main(void *arg)
{
	static const unsigned char header[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };
	struct pgzip *z = arg;
	uLong crc = crc32(0L, Z_NULL, 0);
	uint64_t total = 0, seq = 0;

	emit(z, header, sizeof(header));
	pthread_mutex_lock(&z->lock);
	for (;;) {
		struct block *b = &z->blocks[seq % z->nr_blocks];
		while (!z->stop && !(b->state == BLOCK_DONE && b->seq == seq))
			pthread_cond_wait(&z->done, &z->lock);
		if (z->stop)
			break;
		pthread_mutex_unlock(&z->lock);
		if (b->zerr != Z_OK) {
			pthread_mutex_lock(&z->lock);
			if (!z->failed)
				err_set(&z->err, LB_EXIT_INTERNAL, "gzip compression failed: %s",
					zError(b->zerr));
			z->failed = true;
			pthread_mutex_unlock(&z->lock);
		}
		emit(z, b->out, b->out_len);
		crc = crc32_combine(crc, b->crc, (z_off_t)b->in_len);
		total += b->in_len;
		bool last = b->last;
		if (last) {
			unsigned char trailer[8];
			put_le32(trailer, (uint32_t)crc);
			put_le32(trailer + 4, (uint32_t)total); /* ISIZE is the length mod 2^32 */
			emit(z, trailer, sizeof(trailer));
		}
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

/* Producer: wait for the next block in the ring to be free and prime its dictionary. */
static void take_block(struct pgzip *z, const struct block *prev)
{
	struct block *b = &z->blocks[z->next_seq % z->nr_blocks];

	pthread_mutex_lock(&z->lock);
	while (b->state != BLOCK_FREE)
		pthread_cond_wait(&z->freed, &z->lock);
	pthread_mutex_unlock(&z->lock);
	b->seq = z->next_seq;
	b->last = false;
	b->in_len = 0;
	b->dict_len = 0;
	if (prev) {
		/* The tail of the previous block's dictionary and data, which are contiguous. */
		size_t avail = prev->dict_len + prev->in_len;
		b->dict_len = avail < DICT ? avail : DICT;
		memcpy(b->in + DICT - b->dict_len, prev->in + DICT + prev->in_len - b->dict_len,
		       b->dict_len);
	}
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
		take_block(z, b);
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
		pthread_join(z->workers[i], NULL);
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
	z_stream s = { 0 };

	if (level < 1 || level > 9)
		level = Z_DEFAULT_COMPRESSION;
	if (!threads)
		threads = 1;
	z->level = level;
	z->nr_workers = threads;
	z->out = out;
	z->ctx = ctx;
	z->err = (struct err)ERR_INIT;
	pthread_mutex_init(&z->lock, NULL);
	pthread_cond_init(&z->work, NULL);
	pthread_cond_init(&z->done, NULL);
	pthread_cond_init(&z->freed, NULL);

	/* Worst case of one block, plus the sync-flush marker and some slack. */
	if (deflateInit2(&s, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		pgzip_free(z);
		return err_set(e, LB_EXIT_INTERNAL, "cannot start gzip compression");
	}
	z->out_cap = deflateBound(&s, PGZIP_BLOCK) + 64;
	deflateEnd(&s);

	/* Two blocks per worker keep them busy while the writer and producer work. */
	z->nr_blocks = 2 * (size_t)threads + 2;
	z->blocks = xcalloc(z->nr_blocks, sizeof(*z->blocks));
	for (size_t i = 0; i < z->nr_blocks; i++) {
		z->blocks[i].in = xmalloc(DICT + PGZIP_BLOCK);
		z->blocks[i].out = xmalloc(z->out_cap);
	}
	z->workers = xcalloc(threads, sizeof(*z->workers));
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&z->workers[i], NULL, worker_main, z) != 0) {
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
	take_block(z, NULL);
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
		memcpy(b->in + DICT + b->in_len, p, n);
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

uint64_t pgzip_stored_blocks(struct pgzip *z)
{
	pthread_mutex_lock(&z->lock);
	uint64_t n = z->stored_blocks;
	pthread_mutex_unlock(&z->lock);
	return n;
}

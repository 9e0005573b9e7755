/* The compressor table: pgzip (parallel gzip), zst (libzstd workers) and none. */
#include "common.h"

#include "stream/compressor.h"
#include "stream/pgzip.h"
#include "stream/zst.h"
#include "xalloc.h"

static int gzip_open(int level, unsigned threads, stream_out_fn out, void *ctx, void **ret,
		     struct err *e)
{
	return pgzip_new(level, threads, out, ctx, (struct pgzip **)ret, e);
}

static int gzip_write(void *z, const void *buf, size_t len, struct err *e)
{
	return pgzip_write(z, buf, len, e);
}

static int gzip_finish(void *z, struct err *e)
{
	return pgzip_finish(z, e);
}

static void gzip_free(void *z)
{
	pgzip_free(z);
}

static int zstd_open(int level, unsigned threads, stream_out_fn out, void *ctx, void **ret,
		     struct err *e)
{
	return zst_new(level, threads, out, ctx, (struct zst **)ret, e);
}

static int zstd_write(void *z, const void *buf, size_t len, struct err *e)
{
	return zst_write(z, buf, len, e);
}

static int zstd_finish(void *z, struct err *e)
{
	return zst_finish(z, e);
}

static void zstd_free(void *z)
{
	zst_free(z);
}

/*
 * No compression: bytes go to the output on the caller's thread, gathered into
 * chunks first (the tar writer is unbuffered: a small file is three small writes).
 */
#define PASSTHROUGH_CHUNK (128 * 1024)

struct passthrough {
	stream_out_fn out;
	void *ctx;
	struct err err; /* the output's first failure, repeated to later calls */
	size_t len;
	unsigned char buf[PASSTHROUGH_CHUNK];
};

static int none_open(int level, unsigned threads, stream_out_fn out, void *ctx, void **ret,
		     struct err *e)
{
	(void)level;
	(void)threads;
	(void)e;
	struct passthrough *p = xmalloc(sizeof(*p));
	p->out = out;
	p->ctx = ctx;
	p->err = (struct err)ERR_INIT;
	p->len = 0;
	*ret = p;
	return 0;
}

static int none_flush(struct passthrough *p, struct err *e)
{
	if (!err_isset(&p->err) && p->len && p->out(p->ctx, p->buf, p->len, &p->err) == 0)
		p->len = 0;
	return err_isset(&p->err) ? err_copy(e, &p->err) : 0;
}

static int none_write(void *state, const void *buf, size_t len, struct err *e)
{
	struct passthrough *p = state;
	const unsigned char *in = buf;

	while (len) {
		if (p->len == sizeof(p->buf) && none_flush(p, e) < 0)
			return -1;
		if (!p->len && len >= sizeof(p->buf)) {
			/* A large write goes out as it is. */
			if (p->out(p->ctx, in, len, &p->err) < 0)
				return err_copy(e, &p->err);
			return 0;
		}
		size_t n = sizeof(p->buf) - p->len < len ? sizeof(p->buf) - p->len : len;
		memcpy(p->buf + p->len, in, n);
		p->len += n;
		in += n;
		len -= n;
	}
	return err_isset(&p->err) ? err_copy(e, &p->err) : 0;
}

static int none_finish(void *state, struct err *e)
{
	return none_flush(state, e);
}

static void none_free(void *state)
{
	free(state);
}

static const struct compressor_ops compressors[] = {
	{ COMPRESSION_GZIP, gzip_open, gzip_write, gzip_finish, gzip_free },
	{ COMPRESSION_ZSTD, zstd_open, zstd_write, zstd_finish, zstd_free },
	{ COMPRESSION_NONE, none_open, none_write, none_finish, none_free },
};

int compressor_open(enum compression c, int level, unsigned threads, stream_out_fn out, void *ctx,
		    struct compressor *ret, struct err *e)
{
	for (size_t i = 0; i < ARRAY_SIZE(compressors); i++) {
		if (compressors[i].kind != c)
			continue;
		void *state = NULL;
		if (compressors[i].open(level, threads, out, ctx, &state, e) < 0)
			return -1;
		ret->ops = &compressors[i];
		ret->state = state;
		return 0;
	}
	return err_set(e, LB_EXIT_INTERNAL, "unknown compression %d", (int)c);
}

int compressor_write(struct compressor *z, const void *buf, size_t len, struct err *e)
{
	return z->ops->write(z->state, buf, len, e);
}

int compressor_finish(struct compressor *z, struct err *e)
{
	return z->ops->finish(z->state, e);
}

void compressor_close(struct compressor *z)
{
	if (z->ops)
		z->ops->free(z->state);
	z->ops = NULL;
	z->state = NULL;
}

/* The decompressing reader: gzip or zstd decoded on a thread of its own into a bounded ring. */
#include "common.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <zlib.h>
#include <zstd.h>

#include "fs.h"
#include "stream/decoder.h"
#include "xalloc.h"

#define IN_SIZE (256u * 1024)

enum codec { CODEC_NONE, CODEC_GZIP, CODEC_ZSTD };

struct decoder {
	int fd;
	int wake[2]; /* written by close: the thread stops waiting for the fd */

	pthread_mutex_t lock;
	pthread_cond_t filled, freed;
	unsigned char *buf[DECODER_NR_BUF];
	size_t len[DECODER_NR_BUF];
	size_t head, tail, nfull; /* next to fill, next to read, how many are full */
	bool held;		  /* libarchive reads buf[tail] */
	bool done;		  /* the thread made its last buffer */
	bool stop;		  /* close: the thread ends */
	char why[256];		  /* the stream's error, when done with one */
	pthread_t thread;
	bool running;

	/* The thread's own. */
	enum codec codec;
	unsigned char *in;
	size_t in_pos, in_len;
	bool in_eof;
	bool out_full; /* the codec stopped at the end of an output buffer */
	z_stream z;
	bool z_init;
	ZSTD_DCtx *zd;
};

/* Up to `cap` bytes of the stream: how many, 0 at its end, -1 on stop or error (why set). */
static ssize_t read_some(struct decoder *d, unsigned char *buf, size_t cap)
{
	for (;;) {
		struct pollfd p[2] = { { .fd = d->fd, .events = POLLIN },
				       { .fd = d->wake[0], .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(d->why, sizeof(d->why), "cannot wait for the stream: %s",
				 strerror(errno));
			return -1;
		}
		if (p[1].revents)
			return -1;
		ssize_t n = read(d->fd, buf, cap);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			snprintf(d->why, sizeof(d->why), "read error: %s", strerror(errno));
		return n;
	}
}

/* Can the stream be read without waiting? */
static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) != 0;
}

/* More input into d->in: false at the end of the stream, on stop or on error. */
static bool fill_in(struct decoder *d)
{
	if (d->in_eof)
		return false;
	ssize_t n = read_some(d, d->in, IN_SIZE);
	d->in_pos = 0;
	d->in_len = n > 0 ? (size_t)n : 0;
	if (n == 0)
		d->in_eof = true;
	return n > 0;
}

/* What the stream starts with, from its first bytes (read into d->in). */
static enum codec sniff(struct decoder *d)
{
	while (d->in_len < 4) {
		ssize_t n = read_some(d, d->in + d->in_len, IN_SIZE - d->in_len);
		if (n == 0)
			d->in_eof = true;
		if (n <= 0)
			break;
		d->in_len += (size_t)n;
	}
	const unsigned char *p = d->in;
	if (d->in_len >= 2 && p[0] == 0x1f && p[1] == 0x8b)
		return CODEC_GZIP;
	if (d->in_len >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
		return CODEC_ZSTD;
	return CODEC_NONE;
}

/*
 * Fill `out` (DECODER_BUF_SIZE) with decoded bytes: how many; *end at the end
 * of the data (d->why set when it ended on an error).
 */
static size_t decode(struct decoder *d, unsigned char *out, bool *end)
{
	size_t pos = 0;

	while (pos < DECODER_BUF_SIZE) {
		/* A decoder that filled the last buffer may hold more without new input. */
		if (d->in_pos == d->in_len && !d->out_full && pos && !readable(d->fd))
			return pos; /* what is decoded goes now rather than wait for more */
		if (d->in_pos == d->in_len && !d->out_full && !fill_in(d)) {
			if (!d->why[0] && d->in_eof && d->codec != CODEC_NONE && d->z_init)
				snprintf(d->why, sizeof(d->why), "%s data is truncated",
					 d->codec == CODEC_GZIP ? "gzip" : "zstd");
			*end = true;
			return pos;
		}
		d->out_full = false;
		const unsigned char *src = d->in + d->in_pos;
		size_t avail = d->in_len - d->in_pos;
		if (d->codec == CODEC_NONE) {
			size_t n = avail < DECODER_BUF_SIZE - pos ? avail : DECODER_BUF_SIZE - pos;
			memcpy(out + pos, src, n);
			pos += n;
			d->in_pos += n;
		} else if (d->codec == CODEC_ZSTD) {
			ZSTD_inBuffer i = { src, avail, 0 };
			ZSTD_outBuffer o = { out, DECODER_BUF_SIZE, pos };
			size_t r = ZSTD_decompressStream(d->zd, &o, &i);
			if (ZSTD_isError(r)) {
				snprintf(d->why, sizeof(d->why), "zstd data is damaged: %s",
					 ZSTD_getErrorName(r));
				*end = true;
				return pos;
			}
			/* z_init: inside a frame (0 when one just ended). */
			d->z_init = r != 0;
			pos = o.pos;
			d->in_pos += i.pos;
			d->out_full = pos == DECODER_BUF_SIZE;
		} else {
			if (!d->z_init) {
				if (!avail)
					continue;
				if (avail < 2 && !d->in_eof) {
					/* The next member's magic spans two reads. */
					d->in[0] = src[0];
					ssize_t n = read_some(d, d->in + 1, IN_SIZE - 1);
					if (n == 0)
						d->in_eof = true;
					d->in_pos = 0;
					d->in_len = 1 + (n > 0 ? (size_t)n : 0);
					if (n > 0)
						continue;
				}
				/* A gzip member after the last: anything else ends the data. */
				if (avail < 2 || src[0] != 0x1f || src[1] != 0x8b) {
					*end = true;
					return pos;
				}
				inflateReset(&d->z);
				d->z_init = true;
			}
			d->z.next_in = (unsigned char *)src;
			d->z.avail_in = (uInt)avail;
			d->z.next_out = out + pos;
			d->z.avail_out = (uInt)(DECODER_BUF_SIZE - pos);
			int r = inflate(&d->z, Z_NO_FLUSH);
			if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR) {
				snprintf(d->why, sizeof(d->why), "gzip data is damaged: %s",
					 d->z.msg ? d->z.msg : "damaged data");
				*end = true;
				return pos;
			}
			if (r == Z_STREAM_END)
				d->z_init = false;
			pos = DECODER_BUF_SIZE - d->z.avail_out;
			d->in_pos = d->in_len - d->z.avail_in;
			d->out_full = pos == DECODER_BUF_SIZE;
		}
	}
	return pos;
}

static void *decoder_main(void *arg)
{
	struct decoder *d = arg;
	bool end = false;

	d->codec = sniff(d);
	if (d->codec == CODEC_GZIP) {
		if (inflateInit2(&d->z, 15 + 16) != Z_OK) {
			snprintf(d->why, sizeof(d->why), "cannot start gzip decompression");
			end = true;
		}
		d->z_init = true;
	} else if (d->codec == CODEC_ZSTD) {
		d->zd = ZSTD_createDCtx();
		if (!d->zd) {
			snprintf(d->why, sizeof(d->why), "cannot start zstd decompression");
			end = true;
		}
		d->z_init = true;
	}
	if (d->why[0])
		end = true;
	while (!end) {
		pthread_mutex_lock(&d->lock);
		while (d->nfull == DECODER_NR_BUF && !d->stop)
			pthread_cond_wait(&d->freed, &d->lock);
		bool stop = d->stop;
		size_t slot = d->head;
		pthread_mutex_unlock(&d->lock);
		if (stop)
			break;
		/* buf[slot] is not full: neither libarchive nor the ring holds it. */
		size_t n = decode(d, d->buf[slot], &end);
		if (!n)
			break;
		pthread_mutex_lock(&d->lock);
		d->len[slot] = n;
		d->head = (d->head + 1) % DECODER_NR_BUF;
		d->nfull++;
		pthread_cond_signal(&d->filled);
		pthread_mutex_unlock(&d->lock);
	}
	if (d->codec == CODEC_GZIP)
		inflateEnd(&d->z);
	ZSTD_freeDCtx(d->zd);
	d->zd = NULL;
	pthread_mutex_lock(&d->lock);
	d->done = true;
	pthread_cond_signal(&d->filled);
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

static void decoder_free(struct decoder *d)
{
	if (d->running) {
		pthread_mutex_lock(&d->lock);
		d->stop = true;
		pthread_cond_signal(&d->freed);
		pthread_mutex_unlock(&d->lock);
		if (write(d->wake[1], "", 1) < 0) {
			/* The pipe is empty and ours: a write cannot fail. */
		}
		pthread_join(d->thread, NULL);
	}
	close_fd(&d->wake[0]);
	close_fd(&d->wake[1]);
	for (size_t i = 0; i < DECODER_NR_BUF; i++)
		free(d->buf[i]);
	free(d->in);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->filled);
	pthread_cond_destroy(&d->freed);
	free(d);
}

static int decoder_opened(struct archive *a, void *data)
{
	struct decoder *d = data;
	sigset_t all, old;

	/* Signals stay the main thread's: it checks them between entries. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(&d->thread, NULL, decoder_main, d);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		archive_set_error(a, r, "cannot start the decompression thread");
		return ARCHIVE_FATAL;
	}
	d->running = true;
	return ARCHIVE_OK;
}

static la_ssize_t decoder_read(struct archive *a, void *data, const void **buf)
{
	struct decoder *d = data;
	la_ssize_t n = 0;

	pthread_mutex_lock(&d->lock);
	if (d->held) {
		/* libarchive is done with the buffer it had. */
		d->held = false;
		d->tail = (d->tail + 1) % DECODER_NR_BUF;
		d->nfull--;
		pthread_cond_signal(&d->freed);
	}
	while (!d->nfull && !d->done)
		pthread_cond_wait(&d->filled, &d->lock);
	if (d->nfull) {
		d->held = true;
		*buf = d->buf[d->tail];
		n = (la_ssize_t)d->len[d->tail];
	} else if (d->why[0]) {
		archive_set_error(a, EIO, "%s", d->why);
		n = ARCHIVE_FATAL;
	}
	pthread_mutex_unlock(&d->lock);
	return n;
}

static int decoder_closed(struct archive *a, void *data)
{
	(void)a;
	decoder_free(data);
	return ARCHIVE_OK;
}

int decoder_open(struct archive *a, int fd, struct err *e)
{
	struct decoder *d = xcalloc(1, sizeof(*d));

	d->fd = fd;
	d->wake[0] = d->wake[1] = -1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->filled, NULL);
	pthread_cond_init(&d->freed, NULL);
	if (pipe2(d->wake, O_CLOEXEC) < 0) {
		decoder_free(d);
		return err_set(e, LB_EXIT_INTERNAL, "cannot start the decompression thread: %s",
			       strerror(errno));
	}
	for (size_t i = 0; i < DECODER_NR_BUF; i++)
		d->buf[i] = xmalloc(DECODER_BUF_SIZE);
	d->in = xmalloc(IN_SIZE);
	/* The closer frees d, also when the open fails. */
	return archive_read_open(a, d, decoder_opened, decoder_read, decoder_closed);
}

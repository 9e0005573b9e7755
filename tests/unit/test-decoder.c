/* Unit tests for decoder.c: tar through gzip, zstd or nothing, read back by libarchive. */
#include "unit.h"

#include <archive.h>
#include <archive_entry.h>
#include <pthread.h>
#include <zlib.h>
#include <zstd.h>

#include "fs.h"
#include "stream/decoder.h"

#define BIG (3u * 1024 * 1024 + 777)

struct bytes {
	unsigned char *p;
	size_t len;
};

static void add(struct bytes *b, const void *p, size_t n)
{
	b->p = xrealloc(b->p, b->len + n);
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* Text and random bytes, as a backup holds them. */
static unsigned char *content(size_t n)
{
	unsigned char *p = xmalloc(n);
	uint32_t x = 4242;

	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (i / 100000) % 2 ? (unsigned char)(x >> 16)
					: (unsigned char)("restore "[i % 8]);
	}
	return p;
}

/* A tar of two small files and one of BIG bytes. */
static struct bytes make_tar(void)
{
	struct archive *a = archive_write_new();
	size_t cap = BIG + 64 * 1024, used = 0;
	unsigned char *buf = xmalloc(cap);
	unsigned char *big = content(BIG);

	assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
	assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
	const char *names[] = { "a.txt", "big.bin", "z.txt" };
	for (int i = 0; i < 3; i++) {
		struct archive_entry *ent = archive_entry_new();
		size_t n = i == 1 ? BIG : strlen(names[i]);
		archive_entry_set_pathname(ent, names[i]);
		archive_entry_set_filetype(ent, AE_IFREG);
		archive_entry_set_perm(ent, 0644);
		archive_entry_set_size(ent, (la_int64_t)n);
		assert_int_equal(archive_write_header(a, ent), ARCHIVE_OK);
		const void *d = i == 1 ? (const void *)big : names[i];
		assert_int_equal(archive_write_data(a, d, n), (la_ssize_t)n);
		archive_entry_free(ent);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
	free(big);
	return (struct bytes){ buf, used };
}

/* gzip members of `chunk` bytes each, one after the other (as pgzip writes them). */
static struct bytes gzip_members(const struct bytes *t, size_t chunk)
{
	struct bytes out = { 0 };

	for (size_t off = 0; off < t->len; off += chunk) {
		size_t n = t->len - off < chunk ? t->len - off : chunk;
		z_stream z = { 0 };
		unsigned char *o = xmalloc(compressBound((uLong)n) + 64);
		assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
		z.next_in = t->p + off;
		z.avail_in = (uInt)n;
		z.next_out = o;
		z.avail_out = (uInt)(compressBound((uLong)n) + 64);
		assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
		add(&out, o, z.total_out);
		deflateEnd(&z);
		free(o);
	}
	return out;
}

static struct bytes zstd_frame(const struct bytes *t)
{
	size_t cap = ZSTD_compressBound(t->len);
	struct bytes out = { xmalloc(cap), 0 };

	out.len = ZSTD_compress(out.p, cap, t->p, t->len, 3);
	assert_false(ZSTD_isError(out.len));
	return out;
}

struct feed {
	int fd;
	struct bytes b;
	size_t step;
};

/* The stream into a pipe in small writes, as gpg's output comes. */
static void *feed_main(void *arg)
{
	struct feed *f = arg;

	for (size_t off = 0; off < f->b.len; off += f->step) {
		size_t n = f->b.len - off < f->step ? f->b.len - off : f->step;
		if (write_all(f->fd, f->b.p + off, n) < 0)
			break;
	}
	close(f->fd);
	return NULL;
}

/*
 * Read `stream` through the decoder (fed through a pipe `step` bytes at a
 * time): the entries' bytes, concatenated, or NULL with the error in why.
 */
static struct bytes read_back(const struct bytes *stream, size_t step, char *why, size_t whylen)
{
	int p[2];
	struct err e = ERR_INIT;
	struct bytes got = { 0 };
	struct archive_entry *ent;
	pthread_t t;

	assert_int_equal(pipe(p), 0);
	struct feed f = { .fd = p[1], .b = *stream, .step = step };
	assert_int_equal(pthread_create(&t, NULL, feed_main, &f), 0);
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	int r = decoder_open(a, p[0], &e);
	why[0] = '\0';
	while (r == ARCHIVE_OK && (r = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
		const void *buf;
		size_t n;
		la_int64_t off;
		while ((r = archive_read_data_block(a, &buf, &n, &off)) == ARCHIVE_OK)
			add(&got, buf, n);
		if (r != ARCHIVE_EOF)
			break;
		r = ARCHIVE_OK;
	}
	if (r != ARCHIVE_EOF)
		snprintf(why, whylen, "%s", archive_error_string(a));
	archive_read_free(a);
	/* The feeder may be blocked on a pipe nobody reads any more. */
	close(p[0]);
	pthread_join(t, NULL);
	return got;
}

static void expect_tar(const struct bytes *got, const struct bytes *tar_)
{
	unsigned char *big = content(BIG);

	(void)tar_;
	assert_int_equal(got->len, strlen("a.txt") + BIG + strlen("z.txt"));
	assert_memory_equal(got->p, "a.txt", 5);
	assert_memory_equal(got->p + 5, big, BIG);
	assert_memory_equal(got->p + 5 + BIG, "z.txt", 5);
	free(big);
}

static void test_every_compression(void **state)
{
	(void)state;
	struct bytes t = make_tar();
	struct bytes gz = gzip_members(&t, 100003), gz1 = gzip_members(&t, t.len);
	struct bytes zs = zstd_frame(&t);
	const struct bytes *streams[] = { &t, &gz, &gz1, &zs };
	const size_t steps[] = { 1 << 20, 4099, 97 };
	char why[256];

	for (size_t i = 0; i < 4; i++) {
		for (size_t s = 0; s < 3; s++) {
			/* Small writes only for the small-member gzip: its magics span reads. */
			if (steps[s] == 97 && streams[i] != &gz)
				continue;
			struct bytes got = read_back(streams[i], steps[s], why, sizeof(why));
			assert_string_equal(why, "");
			expect_tar(&got, &t);
			free(got.p);
		}
	}
	free(t.p);
	free(gz.p);
	free(gz1.p);
	free(zs.p);
}

static void test_truncated(void **state)
{
	(void)state;
	struct bytes t = make_tar();
	struct bytes gz = gzip_members(&t, t.len), zs = zstd_frame(&t);
	char why[256];

	gz.len = gz.len * 2 / 3;
	zs.len = zs.len * 2 / 3;
	struct bytes got = read_back(&gz, 65536, why, sizeof(why));
	assert_string_equal(why, "gzip data is truncated");
	free(got.p);
	got = read_back(&zs, 65536, why, sizeof(why));
	assert_string_equal(why, "zstd data is truncated");
	free(got.p);
	free(t.p);
	free(gz.p);
	free(zs.p);
}

static void test_damaged(void **state)
{
	(void)state;
	struct bytes gz = { 0 }, zs = { 0 };
	unsigned char junk[300];
	char why[256];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 37 + 11);
	add(&gz, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10);
	add(&gz, junk, sizeof(junk));
	add(&zs, "\x28\xb5\x2f\xfd", 4);
	add(&zs, junk, sizeof(junk));
	struct bytes got = read_back(&gz, 65536, why, sizeof(why));
	assert_contains(why, "gzip data is damaged");
	free(got.p);
	got = read_back(&zs, 65536, why, sizeof(why));
	assert_contains(why, "zstd data is damaged");
	free(got.p);
	free(gz.p);
	free(zs.p);
}

/* Closed after the first entry while the stream goes on: the thread stops, nothing leaks. */
static void test_close_early(void **state)
{
	(void)state;
	struct bytes t = make_tar();
	struct bytes zs = zstd_frame(&t);
	struct archive_entry *ent;
	struct err e = ERR_INIT;
	int p[2];

	assert_int_equal(pipe(p), 0);
	/* Half the stream, and the writer end kept open: the thread waits for more. */
	assert_int_equal(write_all(p[1], zs.p, 60000), 0);
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	assert_int_equal(decoder_open(a, p[0], &e), ARCHIVE_OK);
	assert_int_equal(archive_read_next_header(a, &ent), ARCHIVE_OK);
	assert_string_equal(archive_entry_pathname(ent), "a.txt");
	archive_read_free(a);
	close(p[0]);
	close(p[1]);
	free(t.p);
	free(zs.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_compression),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_damaged),
		cmocka_unit_test(test_close_early),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

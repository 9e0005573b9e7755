/* Unit tests for zst.c: one zstd frame that libzstd decompresses to the input. */
#include "unit.h"

#include <zstd.h>

#include "stream/zst.h"
#include "xalloc.h"

struct sink {
	unsigned char *buf;
	size_t len, cap;
	bool fail;
};

static int sink_out(void *ctx, const void *buf, size_t len, struct err *e)
{
	struct sink *s = ctx;

	if (s->fail)
		return err_set(e, LB_EXIT_STORE, "sink is full");
	if (s->len + len > s->cap) {
		s->cap = (s->len + len) * 2;
		s->buf = realloc(s->buf, s->cap);
		assert_non_null(s->buf);
	}
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	return 0;
}

static unsigned char *make_input(size_t n)
{
	unsigned char *p = xmalloc(n ? n : 1);
	uint32_t x = 12345;

	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (i / 70000) % 2 ? (unsigned char)(x >> 16)
				       : (unsigned char)("lifeboat "[i % 9]);
	}
	return p;
}

static void roundtrip(size_t n, unsigned threads, int level)
{
	unsigned char *in = make_input(n), *got = xmalloc(n + 1);
	struct sink s = { 0 };
	struct err e = ERR_INIT;
	struct zst *z = NULL;

	assert_int_equal(zst_new(level, threads, sink_out, &s, &z, &e), 0);
	for (size_t off = 0; off < n; off += 10240)
		assert_int_equal(zst_write(z, in + off, n - off < 10240 ? n - off : 10240, &e), 0);
	assert_int_equal(zst_finish(z, &e), 0);
	zst_free(z);
	/* One frame, and nothing after it. */
	assert_int_equal(ZSTD_findFrameCompressedSize(s.buf, s.len), s.len);
	size_t r = ZSTD_decompress(got, n + 1, s.buf, s.len);
	assert_false(ZSTD_isError(r));
	assert_int_equal(r, n);
	assert_memory_equal(got, in, n);
	free(s.buf);
	free(got);
	free(in);
}

static void test_roundtrip(void **state LB_UNUSED)
{
	const size_t sizes[] = { 0, 1, 4096, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 5 << 20 };

	for (unsigned t = 1; t <= 3; t++)
		for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
			roundtrip(sizes[i], t, 3);
	roundtrip(3 << 20, 2, 1);
	roundtrip(3 << 20, 2, 19);
}

static void test_output_failure(void **state LB_UNUSED)
{
	unsigned char *in = make_input(4 << 20);
	struct sink s = { .fail = true };
	struct err e = ERR_INIT;
	struct zst *z = NULL;
	int r = 0;

	assert_int_equal(zst_new(3, 2, sink_out, &s, &z, &e), 0);
	/* 4 MiB is not a multiple of 10240: the last write is the rest, not past the end. */
	for (size_t off = 0; off < (4 << 20) && r == 0; off += 10240)
		r = zst_write(z, in + off, (4 << 20) - off < 10240 ? (4 << 20) - off : 10240, &e);
	if (r == 0)
		r = zst_finish(z, &e);
	assert_int_equal(r, -1);
	assert_string_equal(e.msg, "sink is full");
	zst_free(z);
	free(in);
}

/*
 * A repeat 1 MiB back is found across jobs: each job sees the whole window before it
 * (with 1 MiB jobs that saw only its last eighth, every copy of the block was stored anew).
 */
static void test_jobs_see_the_window_before_them(void **state LB_UNUSED)
{
	const size_t block = 1 << 20, copies = 8;
	unsigned char *in = xmalloc(block * copies);
	struct sink s = { 0 };
	struct err e = ERR_INIT;
	struct zst *z = NULL;
	uint64_t x = 88172645463325252ull;

	for (size_t i = 0; i < block; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		in[i] = (unsigned char)(x >> 56);
	}
	for (size_t c = 1; c < copies; c++)
		memcpy(in + c * block, in, block);
	assert_int_equal(zst_new(3, 2, sink_out, &s, &z, &e), 0);
	assert_int_equal(zst_write(z, in, block * copies, &e), 0);
	assert_int_equal(zst_finish(z, &e), 0);
	zst_free(z);
	unsigned char *got = xmalloc(block * copies);
	assert_int_equal(ZSTD_decompress(got, block * copies, s.buf, s.len), block * copies);
	assert_memory_equal(got, in, block * copies);
	print_message("%zu x 1 MiB of one random block: %zu bytes\n", copies, s.len);
	assert_true(s.len < 2 * block);
	free(got);
	free(s.buf);
	free(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_output_failure),
		cmocka_unit_test(test_jobs_see_the_window_before_them),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

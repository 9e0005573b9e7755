/*
 * Unit tests for pgzip.c: the output is one gzip file of one member per block, which zlib
 * (member by member, each CRC-32 and length checked) and `gzip -d` inflate to the input.
 */
#include "unit.h"

#include <fcntl.h>
#include <inttypes.h>
#include <sys/wait.h>
#include <zlib.h>

#include "stream/pgzip.h"
#include "xalloc.h"

struct sink {
	unsigned char *buf;
	size_t len, cap;
	size_t calls;
	size_t fail_after; /* fail on this call (1-based); 0: never */
};

static int sink_out(void *ctx, const void *buf, size_t len, struct err *e)
{
	struct sink *s = ctx;

	if (s->fail_after && ++s->calls >= s->fail_after)
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

/* Mixed content: runs of text (compressible, back-references across blocks) and noise. */
static unsigned char *make_input(size_t n, unsigned seed)
{
	static const char words[] = "the quick brown fox jumps over the lazy dog lifeboat ";
	unsigned char *p = xmalloc(n ? n : 1);
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		if ((i / 50000) % 3 == 2)
			p[i] = (unsigned char)(x >> 16);
		else
			p[i] = (unsigned char)words[(i + (x >> 28)) % (sizeof(words) - 1)];
	}
	return p;
}

/* Members a stream of `n` bytes has: one per block, and one (empty) for no input. */
static size_t members_for(size_t n)
{
	return n ? (n + PGZIP_BLOCK - 1) / PGZIP_BLOCK : 1;
}

/*
 * Inflate a gzip file with zlib's own reader, member after member (each CRC-32 and length
 * checked), requiring a standard header on each and nothing after the last; compare.
 * Returns the number of members.
 */
static size_t expect_inflates_to(const struct sink *s, const unsigned char *want, size_t n)
{
	z_stream z = { 0 };
	unsigned char *got = xmalloc(n + 1);
	size_t members = 0;

	assert_int_equal(inflateInit2(&z, 16 + 15), Z_OK);
	z.next_in = s->buf;
	z.avail_in = (uInt)s->len;
	z.next_out = got;
	z.avail_out = (uInt)(n + 1);
	do {
		/* magic, deflate, no flags */
		assert_true(z.avail_in >= 18);
		assert_int_equal(z.next_in[0], 0x1f);
		assert_int_equal(z.next_in[1], 0x8b);
		assert_int_equal(z.next_in[2], 8);
		assert_int_equal(z.next_in[3], 0);
		int r = inflate(&z, Z_FINISH);
		if (r != Z_STREAM_END)
			fail_msg("inflate returned %d (%s) in member %zu of %zu input bytes", r,
				 z.msg ? z.msg : "", members, n);
		members++;
		assert_int_equal(inflateReset(&z), Z_OK);
	} while (z.avail_in);
	assert_int_equal((size_t)(z.next_out - got), n);
	assert_memory_equal(got, want, n);
	inflateEnd(&z);
	free(got);
	return members;
}

/* `gzip -dc` of the output, through a file, must give the input back. */
static void expect_gzip_d_gives(const struct sink *s, const unsigned char *want, size_t n)
{
	char dir[] = "/tmp/test-pgzip-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *gz = xasprintf("%s/a.gz", dir), *plain = xasprintf("%s/a", dir);
	FILE *f = fopen(gz, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(s->buf, 1, s->len, f), s->len);
	assert_int_equal(fclose(f), 0);

	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(plain, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || dup2(fd, 1) < 0)
			_exit(126);
		execlp("gzip", "gzip", "-dc", gz, (char *)NULL);
		_exit(127);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("gzip -dc exited with status %d", status);

	f = fopen(plain, "rb");
	assert_non_null(f);
	unsigned char *got = xmalloc(n + 1);
	assert_int_equal(fread(got, 1, n + 1, f), n);
	fclose(f);
	assert_memory_equal(got, want, n);
	free(got);
	unlink(gz);
	unlink(plain);
	rmdir(dir);
	free(gz);
	free(plain);
}

static void roundtrip(size_t n, unsigned threads, int level, size_t chunk)
{
	unsigned char *in = make_input(n, (unsigned)n + threads);
	struct sink s = { 0 };
	struct err e = ERR_INIT;
	struct pgzip *z = NULL;

	assert_int_equal(pgzip_new(level, threads, sink_out, &s, &z, &e), 0);
	for (size_t off = 0; off < n; off += chunk)
		assert_int_equal(pgzip_write(z, in + off, n - off < chunk ? n - off : chunk, &e),
				 0);
	assert_int_equal(pgzip_finish(z, &e), 0);
	assert_int_equal(pgzip_bytes_in(z), n);
	pgzip_free(z);
	assert_int_equal(expect_inflates_to(&s, in, n), members_for(n));
	free(s.buf);
	free(in);
}

static void test_sizes_around_blocks(void **state LB_UNUSED)
{
	const size_t B = PGZIP_BLOCK;
	const size_t sizes[] = { 0,	    1,	       2,     100,	 32767,	       32768,
				 32769,	    B - 1,     B,     B + 1,	 2 * B - 1,    2 * B,
				 2 * B + 1, 5 * B + 7, 9 * B, B + 32768, 3 * B + 32767 };

	for (unsigned t = 1; t <= 4; t++)
		for (size_t i = 0; i < ARRAY_SIZE(sizes); i++)
			roundtrip(sizes[i], t, 6, 10240);
}

static void test_chunk_shapes(void **state LB_UNUSED)
{
	/* One byte at a time across a block edge, and one call with everything. */
	roundtrip(PGZIP_BLOCK + 300, 2, 6, 1);
	roundtrip(7 * PGZIP_BLOCK + 5, 3, 6, 7 * PGZIP_BLOCK + 5);
	roundtrip(3 * PGZIP_BLOCK, 2, 6, 65537);
}

static void test_levels(void **state LB_UNUSED)
{
	for (int level = 1; level <= 9; level++)
		roundtrip(3 * PGZIP_BLOCK + 11, 2, level, 10240);
}

static void test_many_blocks(void **state LB_UNUSED)
{
	/* More blocks than the ring holds, so buffers are reused many times. */
	roundtrip(40 * PGZIP_BLOCK + 123, 4, 1, 10240);
	roundtrip(40 * PGZIP_BLOCK + 123, 1, 1, 10240);
}

/*
 * Members share no dictionary: a 20 kB random pattern repeated costs its 20 kB once in
 * each member and almost nothing for the repeats within it.
 */
static void test_repeats_within_member(void **state LB_UNUSED)
{
	size_t n = 16 * PGZIP_BLOCK;
	unsigned char *in = xmalloc(n);
	struct sink s = { 0 };
	struct err e = ERR_INIT;
	struct pgzip *z = NULL;

	unsigned char *pat = make_input(150000, 9) + 100000;
	for (size_t i = 0; i < n; i++)
		in[i] = pat[i % 20000];
	free(pat - 100000);
	assert_int_equal(pgzip_new(6, 2, sink_out, &s, &z, &e), 0);
	assert_int_equal(pgzip_write(z, in, n, &e), 0);
	assert_int_equal(pgzip_finish(z, &e), 0);
	assert_int_equal(pgzip_stored_blocks(z), 0);
	pgzip_free(z);
	assert_int_equal(expect_inflates_to(&s, in, n), 16);
	/* The first period of each member, and about 1.2% of the rest for the matches. */
	assert_true(s.len < 16 * (20000 + PGZIP_BLOCK / 64));
	free(s.buf);
	free(in);
}

/* `gzip -d` reads the members as one file: empty, one byte, block edges, text and noise. */
static void test_gzip_d_reads_it(void **state LB_UNUSED)
{
	const size_t sizes[] = { 0, 1, PGZIP_BLOCK, PGZIP_BLOCK + 1, 5 * PGZIP_BLOCK + 7 };

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		size_t n = sizes[i];
		unsigned char *in = make_input(n, 77);
		struct sink s = { 0 };
		struct err e = ERR_INIT;
		struct pgzip *z = NULL;

		assert_int_equal(pgzip_new(6, 2, sink_out, &s, &z, &e), 0);
		assert_int_equal(pgzip_write(z, in, n, &e), 0);
		assert_int_equal(pgzip_finish(z, &e), 0);
		pgzip_free(z);
		expect_gzip_d_gives(&s, in, n);
		free(s.buf);
		free(in);
	}
}

/*
 * Seeded random cases: size, write chunk, thread count and level drawn at random, each
 * inflated by zlib and compared.
 */
static void test_random_shapes(void **state LB_UNUSED)
{
	uint32_t x = 20261202;

	for (int i = 0; i < 40; i++) {
		x = x * 1103515245u + 12345u;
		size_t n = (x >> 8) % (6 * PGZIP_BLOCK);
		x = x * 1103515245u + 12345u;
		size_t chunk = 1 + (x >> 8) % (2 * PGZIP_BLOCK);
		x = x * 1103515245u + 12345u;
		unsigned threads = 1 + (x >> 16) % 4;
		int level = 1 + (int)((x >> 24) % 9);
		roundtrip(n, threads, level, chunk);
	}
}

/* Compress `n` bytes at level 6 on two threads; the blocks stored, not deflated. */
static uint64_t stored_blocks_of(const unsigned char *in, size_t n)
{
	struct sink s = { 0 };
	struct err e = ERR_INIT;
	struct pgzip *z = NULL;

	assert_int_equal(pgzip_new(6, 2, sink_out, &s, &z, &e), 0);
	assert_int_equal(pgzip_write(z, in, n, &e), 0);
	assert_int_equal(pgzip_finish(z, &e), 0);
	uint64_t stored = pgzip_stored_blocks(z);
	pgzip_free(z);
	assert_int_equal(expect_inflates_to(&s, in, n), members_for(n));
	/* Stored or not, nothing grows by more than the block framing. */
	assert_true(s.len <= n + n / 1000 + 64);
	free(s.buf);
	return stored;
}

/*
 * Random bytes are stored without a search; text, and random bytes that repeat within
 * deflate's 32 KiB window, are deflated.
 */
static void test_incompressible_blocks_stored(void **state LB_UNUSED)
{
	size_t n = 8 * PGZIP_BLOCK;
	unsigned char *in = xmalloc(n);
	uint32_t x = 12345;

	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		in[i] = (unsigned char)(x >> 23);
	}
	assert_int_equal(stored_blocks_of(in, n), 8);
	/* The same noise repeating every 20,000 bytes: the window finds it. */
	for (size_t i = 20000; i < n; i++)
		in[i] = in[i % 20000];
	assert_int_equal(stored_blocks_of(in, n), 0);
	/* Text. */
	for (size_t i = 0; i < n; i++)
		in[i] = (unsigned char)"the quick brown fox jumps over the lazy dog "[i % 44];
	assert_int_equal(stored_blocks_of(in, n), 0);
	/* Half a block of text in random bytes: too little entropy to store. */
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		in[i] = i % PGZIP_BLOCK < PGZIP_BLOCK / 2 ? (unsigned char)(x >> 23) : 'a';
	}
	assert_int_equal(stored_blocks_of(in, n), 0);
	free(in);
}

/*
 * A run of random blocks is stored with the deflate trial on one block in 16 only; noise
 * that repeats within the window after such a run is found by the next trial, and from
 * then on deflated: at most 15 of its blocks are stored.
 */
static void test_random_run_skips_the_trial(void **state LB_UNUSED)
{
	size_t n = 96 * PGZIP_BLOCK, half = 64 * PGZIP_BLOCK;
	unsigned char *in = xmalloc(n);
	struct sink s = { 0 };
	struct err e = ERR_INIT;
	struct pgzip *z = NULL;
	uint32_t x = 777;

	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		in[i] = (unsigned char)(x >> 23);
	}
	for (size_t i = half + 20000; i < n; i++)
		in[i] = in[half + (i - half) % 20000];
	/* One worker: the blocks are decided in order. */
	assert_int_equal(pgzip_new(6, 1, sink_out, &s, &z, &e), 0);
	assert_int_equal(pgzip_write(z, in, n, &e), 0);
	assert_int_equal(pgzip_finish(z, &e), 0);
	uint64_t stored = pgzip_stored_blocks(z), trials = pgzip_trial_blocks(z);
	pgzip_free(z);
	assert_int_equal(expect_inflates_to(&s, in, n), members_for(n));
	print_message("%" PRIu64 " of 96 blocks stored, %" PRIu64 " tried\n", stored, trials);
	assert_true(stored >= 64 && stored <= 64 + 15);
	/* 64 random blocks: one trial in 16; each repeating block after the miss: one each. */
	assert_true(trials <= 64 / 16 + 1 + 32);
	assert_true(trials >= 64 / 16);
	/* The repeating half shrank: far less than its 32 blocks were stored. */
	assert_true(s.len < half + 16 * PGZIP_BLOCK + 4096);
	free(s.buf);
	free(in);
}

static void test_output_failure(void **state LB_UNUSED)
{
	size_t n = 20 * PGZIP_BLOCK;
	unsigned char *in = make_input(n, 3);
	struct sink s = { .fail_after = 3 };
	struct err e = ERR_INIT;
	struct pgzip *z = NULL;
	int r = 0;

	assert_int_equal(pgzip_new(1, 2, sink_out, &s, &z, &e), 0);
	for (size_t off = 0; off < n && r == 0; off += 10240)
		r = pgzip_write(z, in + off, n - off < 10240 ? n - off : 10240, &e);
	if (r == 0)
		r = pgzip_finish(z, &e);
	assert_int_equal(r, -1);
	assert_int_equal(e.code, LB_EXIT_STORE);
	assert_string_equal(e.msg, "sink is full");
	pgzip_free(z);
	free(s.buf);
	free(in);
}

static void test_abandon(void **state LB_UNUSED)
{
	/* Freed in the middle of a stream: threads stop, nothing leaks. */
	unsigned char *in = make_input(5 * PGZIP_BLOCK, 4);
	struct sink s = { 0 };
	struct err e = ERR_INIT;
	struct pgzip *z = NULL;

	assert_int_equal(pgzip_new(6, 3, sink_out, &s, &z, &e), 0);
	assert_int_equal(pgzip_write(z, in, 5 * PGZIP_BLOCK, &e), 0);
	pgzip_free(z);
	free(s.buf);
	free(in);
}

/*
 * SHA256SUMS of many files (issue 18): deflate's default strategy spends about 43 bytes on
 * a 98-byte line whose hash is 32 random bytes; with Z_FILTERED for blocks that are mostly
 * hex digits it is about 38.
 */
static void test_hex_lines_compress_near_their_entropy(void **state LB_UNUSED)
{
	const size_t lines = 20000;
	char *in = xmalloc(lines * 100);
	size_t len = 0;
	struct sink s = { 0 };
	struct err e = ERR_INIT;
	struct pgzip *z = NULL;
	uint64_t x = 88172645463325252ull;

	for (size_t i = 0; i < lines; i++) {
		for (int j = 0; j < 64; j++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64: hash-like digits */
			in[len++] = "0123456789abcdef"[x >> 60];
		}
		len += (size_t)snprintf(in + len, 40, "  dirs/data/d%04zu/file-%06zu.txt\n",
					i / 100, i);
	}
	assert_int_equal(pgzip_new(6, 2, sink_out, &s, &z, &e), 0);
	assert_int_equal(pgzip_write(z, in, len, &e), 0);
	assert_int_equal(pgzip_finish(z, &e), 0);
	pgzip_free(z);
	expect_inflates_to(&s, (unsigned char *)in, len);
	print_message("%zu lines: %zu bytes, %.1f a line\n", lines, s.len,
		      (double)s.len / (double)lines);
	assert_true(s.len < lines * 40);
	free(s.buf);
	free(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes_around_blocks),
		cmocka_unit_test(test_chunk_shapes),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_many_blocks),
		cmocka_unit_test(test_repeats_within_member),
		cmocka_unit_test(test_gzip_d_reads_it),
		cmocka_unit_test(test_random_shapes),
		cmocka_unit_test(test_incompressible_blocks_stored),
		cmocka_unit_test(test_random_run_skips_the_trial),
		cmocka_unit_test(test_output_failure),
		cmocka_unit_test(test_abandon),
		cmocka_unit_test(test_hex_lines_compress_near_their_entropy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for util.c: strbuf, strvec, parse_bool, format_size, remove_tree, read_file_capped. */
#include "unit.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "err.h"
#include "fs.h"
#include "parse.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

/* A string of `n` copies of `c` (caller frees). */
static char *repeat(char c, size_t n)
{
	char *s = xmalloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, data, len), 0);
	assert_int_equal(close(fd), 0);
}

static bool exists_nofollow(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* ---- strbuf ---- */

static void test_strbuf_init_empty(void **state LB_UNUSED)
{
	struct strbuf sb = STRBUF_INIT;

	assert_non_null(sb.buf);
	assert_string_equal(sb.buf, "");
	assert_int_equal(sb.len, 0);
	strbuf_release(&sb);
	assert_non_null(sb.buf);
	assert_string_equal(sb.buf, "");

	strbuf_init(&sb, 1000);
	assert_true(sb.alloc >= 1001);
	assert_int_equal(sb.len, 0);
	assert_string_equal(sb.buf, "");
	strbuf_release(&sb);
	assert_int_equal(sb.alloc, 0);
	assert_int_equal(sb.len, 0);
}

static void test_strbuf_add(void **state LB_UNUSED)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_add(&sb, "abc", 3);
	assert_int_equal(sb.len, 3);
	assert_string_equal(sb.buf, "abc");
	strbuf_addstr(&sb, "def");
	strbuf_addch(&sb, 'g');
	assert_int_equal(sb.len, 7);
	assert_string_equal(sb.buf, "abcdefg");

	/* Embedded NUL bytes are data, and the buffer stays NUL-terminated. */
	strbuf_add(&sb, "x\0y", 3);
	assert_int_equal(sb.len, 10);
	assert_memory_equal(sb.buf, "abcdefgx\0y", 11);

	/* An empty append keeps everything. */
	strbuf_add(&sb, "", 0);
	assert_int_equal(sb.len, 10);

	strbuf_reset(&sb);
	assert_int_equal(sb.len, 0);
	assert_string_equal(sb.buf, "");

	/* Growing one byte at a time across many reallocations. */
	for (size_t i = 0; i < 10000; i++)
		strbuf_addch(&sb, (char)('a' + i % 26));
	assert_int_equal(sb.len, 10000);
	assert_int_equal(strlen(sb.buf), 10000);
	assert_true(sb.alloc > sb.len);
	for (size_t i = 0; i < 10000; i++)
		assert_int_equal(sb.buf[i], 'a' + i % 26);
	strbuf_release(&sb);
}

static void test_strbuf_addf(void **state LB_UNUSED)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_addf(&sb, "%s=%d", "n", 42);
	assert_string_equal(sb.buf, "n=42");

	/* Longer than the 256-byte stack buffer used for the first attempt. */
	char *long1 = repeat('x', 300);
	strbuf_reset(&sb);
	strbuf_addf(&sb, "[%s]%d", long1, 7);
	assert_int_equal(sb.len, 303);
	assert_int_equal(sb.buf[0], '[');
	assert_memory_equal(sb.buf + 1, long1, 300);
	assert_string_equal(sb.buf + 301, "]7");

	/* Appends after existing content. */
	strbuf_reset(&sb);
	strbuf_addstr(&sb, "head:");
	char *long2 = repeat('y', 5000);
	strbuf_addf(&sb, "%s|%s", long2, "tail");
	assert_int_equal(sb.len, 5 + 5000 + 5);
	assert_memory_equal(sb.buf, "head:", 5);
	assert_memory_equal(sb.buf + 5, long2, 5000);
	assert_string_equal(sb.buf + 5005, "|tail");

	/* Around the boundary of the stack buffer: 255, 256 and 257 bytes. */
	for (size_t n = 254; n <= 258; n++) {
		char *s = repeat('z', n);
		strbuf_reset(&sb);
		strbuf_addf(&sb, "%s", s);
		assert_int_equal(sb.len, n);
		assert_string_equal(sb.buf, s);
		free(s);
	}

	/* xasprintf goes through the same path. */
	char *p = xasprintf("%s-%s", long1, long1);
	assert_int_equal(strlen(p), 601);
	assert_int_equal(p[300], '-');
	free(p);

	free(long1);
	free(long2);
	strbuf_release(&sb);
}

static void test_strbuf_cap_max(void **state LB_UNUSED)
{
	struct strbuf sb = STRBUF_INIT;

	sb.cap_max = 10;
	strbuf_addstr(&sb, "hello");
	assert_false(sb.overflowed);
	strbuf_addstr(&sb, "world");
	assert_int_equal(sb.len, 10);
	assert_false(sb.overflowed); /* exactly at the cap is not an overflow */
	assert_string_equal(sb.buf, "helloworld");

	strbuf_addch(&sb, '!');
	assert_true(sb.overflowed);
	assert_int_equal(sb.len, 10);
	assert_string_equal(sb.buf, "helloworld");

	/* A partial append is truncated to the cap. */
	strbuf_reset(&sb);
	assert_false(sb.overflowed);
	assert_int_equal(sb.cap_max, 10);
	strbuf_addstr(&sb, "abcdefg");
	strbuf_addstr(&sb, "hijklmnop");
	assert_true(sb.overflowed);
	assert_int_equal(sb.len, 10);
	assert_string_equal(sb.buf, "abcdefghij");

	/* Long formatted output is truncated too. */
	char *big = repeat('q', 1000);
	strbuf_reset(&sb);
	strbuf_addf(&sb, "%s", big);
	assert_true(sb.overflowed);
	assert_int_equal(sb.len, 10);
	assert_string_equal(sb.buf, "qqqqqqqqqq");
	free(big);

	/* The cap survives release; the buffer never grows much past it. */
	strbuf_release(&sb);
	assert_int_equal(sb.cap_max, 10);
	for (int i = 0; i < 100; i++)
		strbuf_addstr(&sb, "0123456789");
	assert_int_equal(sb.len, 10);
	assert_true(sb.overflowed);
	assert_true(sb.alloc < 100);
	strbuf_release(&sb);
}

static void test_strbuf_keep_tail(void **state LB_UNUSED)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_keep_tail(&sb, 4);
	assert_int_equal(sb.len, 0);
	assert_string_equal(sb.buf, "");

	strbuf_addstr(&sb, "0123456789");
	strbuf_keep_tail(&sb, 20);
	assert_string_equal(sb.buf, "0123456789");
	strbuf_keep_tail(&sb, 10);
	assert_string_equal(sb.buf, "0123456789");
	strbuf_keep_tail(&sb, 4);
	assert_int_equal(sb.len, 4);
	assert_string_equal(sb.buf, "6789");
	strbuf_addstr(&sb, "ab");
	assert_string_equal(sb.buf, "6789ab");
	strbuf_keep_tail(&sb, 0);
	assert_int_equal(sb.len, 0);
	assert_string_equal(sb.buf, "");

	/* A long log whose tail is kept. */
	for (int i = 0; i < 1000; i++)
		strbuf_addf(&sb, "line %d\n", i);
	strbuf_keep_tail(&sb, 9);
	assert_string_equal(sb.buf, "line 999\n");
	strbuf_release(&sb);
}

static void test_strbuf_rtrim(void **state LB_UNUSED)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_rtrim(&sb);
	assert_int_equal(sb.len, 0);
	assert_string_equal(sb.buf, "");

	strbuf_addstr(&sb, "  a b \t\r\n \n");
	strbuf_rtrim(&sb);
	assert_int_equal(sb.len, 5);
	assert_string_equal(sb.buf, "  a b");
	strbuf_rtrim(&sb);
	assert_string_equal(sb.buf, "  a b");

	strbuf_reset(&sb);
	strbuf_addstr(&sb, " \t\r\n");
	strbuf_rtrim(&sb);
	assert_int_equal(sb.len, 0);
	assert_string_equal(sb.buf, "");
	strbuf_release(&sb);
}

static void test_strbuf_detach(void **state LB_UNUSED)
{
	struct strbuf sb = STRBUF_INIT;
	size_t len = 99;

	strbuf_addstr(&sb, "detach me");
	char *p = strbuf_detach(&sb, &len);
	assert_string_equal(p, "detach me");
	assert_int_equal(len, 9);
	/* The strbuf is re-initialised and usable again. */
	assert_int_equal(sb.len, 0);
	assert_int_equal(sb.alloc, 0);
	assert_string_equal(sb.buf, "");
	assert_ptr_not_equal(sb.buf, p);
	strbuf_addstr(&sb, "again");
	assert_string_equal(sb.buf, "again");
	assert_string_equal(p, "detach me");
	free(p);
	strbuf_release(&sb);

	/* Detaching an untouched strbuf still returns an owned, empty string. */
	struct strbuf empty = STRBUF_INIT;
	len = 99;
	p = strbuf_detach(&empty, &len);
	assert_non_null(p);
	assert_string_equal(p, "");
	assert_int_equal(len, 0);
	assert_ptr_not_equal(p, strbuf_empty_);
	free(p);

	/* ret_len is optional. */
	strbuf_addstr(&sb, "x");
	p = strbuf_detach(&sb, NULL);
	assert_string_equal(p, "x");
	free(p);
}

static void test_strbuf_release_secret(void **state LB_UNUSED)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_release_secret(&sb);
	assert_string_equal(sb.buf, "");
	strbuf_addstr(&sb, "secret");
	strbuf_release_secret(&sb);
	assert_int_equal(sb.len, 0);
	assert_int_equal(sb.alloc, 0);
	assert_string_equal(sb.buf, "");
}

/* ---- strvec ---- */

static void test_strvec(void **state LB_UNUSED)
{
	struct strvec sv = STRVEC_INIT;
	char tmp[16];

	assert_int_equal(sv.nr, 0);
	assert_null(sv.v[0]);

	snprintf(tmp, sizeof(tmp), "%s", "first");
	strvec_push(&sv, tmp);
	/* The vector owns a copy. */
	tmp[0] = 'F';
	strvec_push(&sv, "second");
	strvec_pushf(&sv, "k=%d", 3);
	assert_int_equal(sv.nr, 3);
	assert_string_equal(sv.v[0], "first");
	assert_string_equal(sv.v[1], "second");
	assert_string_equal(sv.v[2], "k=3");
	assert_null(sv.v[3]);

	/* Growing keeps the NULL terminator. */
	for (int i = 0; i < 100; i++) {
		strvec_pushf(&sv, "item-%d", i);
		assert_null(sv.v[sv.nr]);
	}
	assert_int_equal(sv.nr, 103);
	assert_string_equal(sv.v[102], "item-99");

	/* Long formatted entries. */
	char *big = repeat('w', 700);
	strvec_pushf(&sv, "%s!", big);
	assert_int_equal(strlen(sv.v[103]), 701);
	free(big);

	strvec_release(&sv);
	assert_int_equal(sv.nr, 0);
	assert_null(sv.v[0]);

	/* Usable after release, and releasing an empty vector is fine. */
	strvec_push(&sv, "again");
	assert_string_equal(sv.v[0], "again");
	strvec_release(&sv);
	strvec_release(&sv);
}

/* ---- parse_bool ---- */

static void test_parse_bool(void **state LB_UNUSED)
{
	static const char *const yes[] = { "1", "true", "yes", "on", "TRUE", "True", "YES", "On" };
	static const char *const no[] = { "0", "false", "no", "off", "FALSE", "No", "OFF", "" };
	static const char *const bad[] = { "maybe", "2", "tru", "truee", " true",  "true ",
					   "y",	    "n", "-1",	"10",	 "enable", "nope" };
	bool b;

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		b = false;
		assert_int_equal(parse_bool(yes[i], &b), 0);
		assert_true(b);
	}
	for (size_t i = 0; i < ARRAY_SIZE(no); i++) {
		b = true;
		assert_int_equal(parse_bool(no[i], &b), 0);
		assert_false(b);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (parse_bool(bad[i], &b) != -EINVAL)
			fail_msg("parse_bool('%s') accepted an invalid word", bad[i]);
	}
}

/* ---- format_size ---- */

static void test_format_size(void **state LB_UNUSED)
{
	static const struct {
		uint64_t bytes;
		const char *want;
	} cases[] = {
		{ 0, "0 B" },
		{ 1, "1 B" },
		{ 1023, "1023 B" },
		{ 1024, "1.0 KiB" },
		{ 1536, "1.5 KiB" },
		{ 10 * 1024 + 512, "10.5 KiB" },
		{ 1024 * 1024, "1.0 MiB" },
		{ 3 * 1024 * 1024 / 2, "1.5 MiB" },
		{ 1024ULL * 1024 * 1024, "1.0 GiB" },
		{ 3ULL * 1024 * 1024 * 1024 / 2, "1.5 GiB" },
		{ 1024ULL * 1024 * 1024 * 1024, "1.0 TiB" },
		{ 2048ULL * 1024 * 1024 * 1024 * 1024, "2048.0 TiB" },
		{ UINT64_MAX, "16777216.0 TiB" },
	};
	char buf[32];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *r = format_size(cases[i].bytes, buf, sizeof(buf));
		assert_ptr_equal(r, buf);
		assert_string_equal(buf, cases[i].want);
	}

	/* A short buffer is truncated, still NUL-terminated. */
	char small[4];
	format_size(1536, small, sizeof(small));
	assert_string_equal(small, "1.5");
}

/* ---- remove_tree ---- */

static void test_remove_tree(void **state LB_UNUSED)
{
	char outside[] = "/tmp/lifeboat-test-outside-XXXXXX";
	char tree[] = "/tmp/lifeboat-test-tree-XXXXXX";
	char path[512], keep[512], target_dir_file[512];

	assert_non_null(mkdtemp(outside));
	assert_non_null(mkdtemp(tree));

	/* Outside the tree: a file and a directory with a file, which must survive. */
	snprintf(keep, sizeof(keep), "%s/keep", outside);
	write_file(keep, "precious", 8);
	snprintf(path, sizeof(path), "%s/subdir", outside);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(target_dir_file, sizeof(target_dir_file), "%s/subdir/also-keep", outside);
	write_file(target_dir_file, "also", 4);

	/* The tree: nested dirs, files, symlinks out of the tree and a dangling one. */
	snprintf(path, sizeof(path), "%s/a", tree);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/a/b", tree);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/a/b/c", tree);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/empty", tree);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/a/b/c/file", tree);
	write_file(path, "data", 4);
	snprintf(path, sizeof(path), "%s/top-file", tree);
	write_file(path, "data", 4);
	snprintf(path, sizeof(path), "%s/a/link-to-outside-dir", tree);
	assert_int_equal(symlink(outside, path), 0);
	snprintf(path, sizeof(path), "%s/a/b/link-to-outside-file", tree);
	assert_int_equal(symlink(keep, path), 0);
	snprintf(path, sizeof(path), "%s/dangling", tree);
	assert_int_equal(symlink("/nonexistent/lifeboat-test", path), 0);
	snprintf(path, sizeof(path), "%s/relative-up", tree);
	assert_int_equal(symlink("..", path), 0);
	snprintf(path, sizeof(path), "%s/fifo", tree);
	assert_int_equal(mkfifo(path, 0600), 0);
	snprintf(path, sizeof(path), "%s/a/b/sub", tree);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/a/b/sub/f", tree);
	write_file(path, "x", 1);

	assert_int_equal(remove_tree(tree), 0);
	assert_false(exists_nofollow(tree));

	/* Everything the symlinks pointed to is untouched. */
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(read_file_capped(keep, 100, &sb), 0);
	assert_string_equal(sb.buf, "precious");
	strbuf_reset(&sb);
	assert_int_equal(read_file_capped(target_dir_file, 100, &sb), 0);
	assert_string_equal(sb.buf, "also");
	strbuf_release(&sb);

	/* Removing something that does not exist is not an error. */
	assert_int_equal(remove_tree(tree), 0);

	/* A symlink given as the top: only the link goes. */
	char linkdir[] = "/tmp/lifeboat-test-link-XXXXXX";
	assert_non_null(mkdtemp(linkdir));
	snprintf(path, sizeof(path), "%s/link", linkdir);
	assert_int_equal(symlink(outside, path), 0);
	assert_int_equal(remove_tree(path), 0);
	assert_false(exists_nofollow(path));
	assert_true(exists_nofollow(keep));
	assert_true(exists_nofollow(target_dir_file));
	assert_int_equal(remove_tree(linkdir), 0);

	/* A plain file given as the top. */
	snprintf(path, sizeof(path), "%s/single", outside);
	write_file(path, "s", 1);
	assert_int_equal(remove_tree(path), 0);
	assert_false(exists_nofollow(path));

	assert_int_equal(remove_tree(outside), 0);
	assert_false(exists_nofollow(outside));
}

/* ---- read_file_capped ---- */

static void test_read_file_capped(void **state LB_UNUSED)
{
	char dir[] = "/tmp/lifeboat-test-read-XXXXXX";
	char small[512], big[512], empty[512], missing[512];
	struct strbuf sb = STRBUF_INIT;

	assert_non_null(mkdtemp(dir));
	snprintf(small, sizeof(small), "%s/small", dir);
	snprintf(big, sizeof(big), "%s/big", dir);
	snprintf(empty, sizeof(empty), "%s/empty", dir);
	snprintf(missing, sizeof(missing), "%s/missing", dir);

	char *data = repeat('d', 100);
	write_file(small, data, 100);
	/* Larger than the 4 KiB read chunk, with varied content. */
	char *bigdata = xmalloc(10000);
	for (size_t i = 0; i < 10000; i++)
		bigdata[i] = (char)(i * 7 % 251);
	write_file(big, bigdata, 10000);
	write_file(empty, "", 0);

	assert_int_equal(read_file_capped(small, 1000, &sb), 0);
	assert_int_equal(sb.len, 100);
	assert_string_equal(sb.buf, data);

	/* Exactly at the cap is fine; one byte over is -EFBIG. */
	strbuf_reset(&sb);
	assert_int_equal(read_file_capped(small, 100, &sb), 0);
	assert_int_equal(sb.len, 100);
	strbuf_reset(&sb);
	assert_int_equal(read_file_capped(small, 99, &sb), -EFBIG);
	strbuf_reset(&sb);
	assert_int_equal(read_file_capped(small, 0, &sb), -EFBIG);

	strbuf_reset(&sb);
	assert_int_equal(read_file_capped(big, 10000, &sb), 0);
	assert_int_equal(sb.len, 10000);
	assert_memory_equal(sb.buf, bigdata, 10000);
	strbuf_reset(&sb);
	assert_int_equal(read_file_capped(big, 9999, &sb), -EFBIG);
	assert_true(sb.len <= 9999);
	strbuf_reset(&sb);
	assert_int_equal(read_file_capped(big, 4096, &sb), -EFBIG);

	strbuf_reset(&sb);
	assert_int_equal(read_file_capped(empty, 10, &sb), 0);
	assert_int_equal(sb.len, 0);
	assert_string_equal(sb.buf, "");

	strbuf_reset(&sb);
	assert_int_equal(read_file_capped(missing, 10, &sb), -ENOENT);
	assert_int_equal(read_file_capped(dir, 10, &sb), -EISDIR);
	strbuf_release(&sb);

	free(data);
	free(bigdata);
	assert_int_equal(remove_tree(dir), 0);
}

/* ---- fd helpers ---- */

static void test_fd_helpers(void **state LB_UNUSED)
{
	int fds[2];
	char buf[16];

	assert_int_equal(pipe(fds), 0);
	assert_int_equal(write_all(fds[1], "hello", 5), 0);
	close_fd(&fds[1]);
	assert_int_equal(fds[1], -1);
	close_fd(&fds[1]); /* closing twice is harmless */
	assert_int_equal(read_retry(fds[0], buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(read_retry(fds[0], buf, sizeof(buf)), 0);
	close_fd(&fds[0]);
	assert_int_equal(read_retry(-1, buf, sizeof(buf)), -EBADF);
	assert_int_equal(write_all(-1, "x", 1), -EBADF);
	assert_int_equal(fsync_dir("/tmp"), 0);
	assert_true(fsync_dir("/nonexistent/lifeboat-test") < 0);
}

/* err: the first message wins; copy and wrap keep the cause's code. */
static void test_err_copy_wrap(void **state LB_UNUSED)
{
	struct err cause = ERR_INIT, e = ERR_INIT;

	assert_false(err_isset(&cause));
	assert_int_equal(err_set(&cause, LB_EXIT_STORE, "disk %s", "full"), -1);
	assert_int_equal(err_set(&cause, LB_EXIT_SOURCE, "later"), -1);
	assert_int_equal(cause.code, LB_EXIT_STORE);
	assert_string_equal(cause.msg, "disk full");

	assert_int_equal(err_wrap(&e, &cause, "the %s succeeded, but ", "backup"), -1);
	assert_int_equal(e.code, LB_EXIT_STORE);
	assert_string_equal(e.msg, "the backup succeeded, but disk full");
	assert_int_equal(err_copy(&e, &cause), -1); /* e is set: unchanged */
	assert_string_equal(e.msg, "the backup succeeded, but disk full");

	err_clear(&e);
	assert_int_equal(err_copy(&e, &cause), -1);
	assert_int_equal(e.code, LB_EXIT_STORE);
	assert_string_equal(e.msg, "disk full");
	assert_int_equal(err_copy(NULL, &cause), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strbuf_init_empty),
		cmocka_unit_test(test_strbuf_add),
		cmocka_unit_test(test_strbuf_addf),
		cmocka_unit_test(test_strbuf_cap_max),
		cmocka_unit_test(test_strbuf_keep_tail),
		cmocka_unit_test(test_strbuf_rtrim),
		cmocka_unit_test(test_strbuf_detach),
		cmocka_unit_test(test_strbuf_release_secret),
		cmocka_unit_test(test_strvec),
		cmocka_unit_test(test_parse_bool),
		cmocka_unit_test(test_format_size),
		cmocka_unit_test(test_remove_tree),
		cmocka_unit_test(test_read_file_capped),
		cmocka_unit_test(test_fd_helpers),
		cmocka_unit_test(test_err_copy_wrap),
	};

	return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}

/* Unit tests for fs.c: remove_tree, read_file_capped and the fd helpers. */
#include "unit.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "fs.h"
#include "strbuf.h"
#include "xalloc.h"

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

/*
 * pipe_batch_wait's decisions, none of them timed: no wait after a read that was not
 * short, or when the pipe already holds a batch; a readable wake fd ends the wait (1);
 * the pipe's bytes are left for the next read. pipe_batch_ok only for a large pipe.
 */
static void test_pipe_batch(void **state LB_UNUSED)
{
	static char buf[PIPE_BATCH];
	int p[2], w[2], s[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(pipe2(w, O_CLOEXEC), 0);
	assert_true(fcntl(p[0], F_SETPIPE_SZ, 64 * 1024) > 0);
	assert_false(pipe_batch_ok(p[0]));
	assert_true(fcntl(p[0], F_SETPIPE_SZ, 1024 * 1024) >= PIPE_BATCH_MIN_PIPE);
	assert_true(pipe_batch_ok(p[0]));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	assert_false(pipe_batch_ok(s[0])); /* not a pipe */

	/* A read that filled its buffer, or took a batch: no wait, even when woken. */
	assert_int_equal(write(w[1], "x", 1), 1);
	assert_int_equal(pipe_batch_wait(p[0], w[0], 100, 100), 0);
	assert_int_equal(pipe_batch_wait(p[0], w[0], PIPE_BATCH, 2 * PIPE_BATCH), 0);
	/* The pipe already holds a batch: no wait either. */
	assert_int_equal(write(p[1], buf, sizeof(buf)), (ssize_t)sizeof(buf));
	assert_int_equal(pipe_batch_wait(p[0], w[0], 10, 100), 0);
	assert_int_equal(read(p[0], buf, sizeof(buf)), (ssize_t)sizeof(buf));
	/* A short read, little in the pipe: the wait, ended by the wake fd. */
	assert_int_equal(write(p[1], "abc", 3), 3);
	assert_int_equal(pipe_batch_wait(p[0], w[0], 10, 100), 1);
	/* Without a wake fd it returns once its bounded wait is over; nothing was read. */
	assert_int_equal(pipe_batch_wait(p[0], -1, 10, 100), 0);
	assert_int_equal(read(p[0], buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "abc", 3);
	close(p[0]);
	close(p[1]);
	close(w[0]);
	close(w[1]);
	close(s[0]);
	close(s[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_remove_tree),
		cmocka_unit_test(test_read_file_capped),
		cmocka_unit_test(test_fd_helpers),
		cmocka_unit_test(test_pipe_batch),
	};

	return cmocka_run_group_tests_name("fs", tests, NULL, NULL);
}

/* Unit tests for child.c's struct async and process.c run here: who closes what, exits judged. */
#include "unit.h"

#include <fcntl.h>
#include <signal.h>

#include "child.h"
#include "fs.h"
#include "process.h"
#include "strbuf.h"

struct collect {
	struct strbuf got;
	bool stop_early;
};

static int collect(int fd, void *data)
{
	struct collect *c = data;
	char buf[1000];

	if (c->stop_early)
		return -1;
	for (;;) {
		ssize_t n = read_retry(fd, buf, sizeof(buf));
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		strbuf_add(&c->got, buf, (size_t)n);
	}
}

/* The async reads to EOF and hands back its proc's result. */
static void test_async_reads_until_eof(void **state)
{
	struct collect c = { .got = STRBUF_INIT };
	struct async a = ASYNC_INIT;
	struct err e = ERR_INIT;
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	a = (struct async){ .proc = collect, .data = &c, .fd = p[0] };
	assert_int_equal(async_start(&a, &e), 0);
	assert_true(async_running(&a));
	for (int i = 0; i < 300; i++)
		assert_int_equal(write_all(p[1], "0123456789", 10), 0);
	close(p[1]);
	assert_int_equal(async_finish(&a), 0);
	assert_false(async_running(&a));
	assert_int_equal(c.got.len, 3000);
	assert_int_equal(async_finish(&a), 0); /* idempotent */
	strbuf_release(&c.got);
}

/* The thread closes its fd as soon as proc returns: the writer sees EPIPE, not a hang. */
static void test_async_closes_its_fd(void **state)
{
	struct collect c = { .got = STRBUF_INIT, .stop_early = true };
	struct async a = ASYNC_INIT;
	struct err e = ERR_INIT;
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	a = (struct async){ .proc = collect, .data = &c, .fd = p[0] };
	assert_int_equal(async_start(&a, &e), 0);
	assert_int_equal(async_finish(&a), -1);
	assert_int_equal(write_all(p[1], "x", 1), -EPIPE);
	close(p[1]);
	strbuf_release(&c.got);
}

static void test_async_never_started(void **state)
{
	struct async a = ASYNC_INIT;

	(void)state;
	assert_false(async_running(&a));
	assert_int_equal(async_finish(&a), -1);
}

/* stdin and stdout piped, spec->env added, BACKUP_* kept out; a zero exit is success. */
static void test_process_here_roundtrip(void **state)
{
	char *argv[] = { "sh", "-c", "printf '%s:%s:' \"$LB_T\" \"${BACKUP_X-unset}\"; cat", NULL };
	char *env[] = { "LB_T=secret", NULL };
	const struct process_spec spec = { .argv = argv,
					   .env = env,
					   .want_stdin = true,
					   .want_stdout = true,
					   .fail_code = LB_EXIT_SOURCE };
	struct process p = PROCESS_INIT;
	struct err e = ERR_INIT;
	char buf[256];
	ssize_t n, len = 0;

	(void)state;
	assert_int_equal(setenv("BACKUP_X", "leak", 1), 0);
	assert_int_equal(process_start(&p, &spec, &e), 0);
	assert_int_equal(process_write(&p, "hello", 5), 0);
	process_close_input(&p);
	while ((n = process_read(&p, buf + len, sizeof(buf) - 1 - (size_t)len)) > 0)
		len += n;
	buf[len] = '\0';
	assert_string_equal(buf, "secret:unset:hello");
	assert_int_equal(process_finish(&p, "the tool", &e), 0);
	assert_false(err_isset(&e));
	process_release(&p);
	unsetenv("BACKUP_X");
}

/* A failed tool: the spec's exit code, its status and the last line of its stderr. */
static void test_process_here_failure(void **state)
{
	char *argv[] = { "sh", "-c", "echo first >&2; echo 'tool: last words' >&2; exit 3", NULL };
	const struct process_spec spec = { .argv = argv, .fail_code = LB_EXIT_SOURCE };
	struct process p = PROCESS_INIT;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(process_start(&p, &spec, &e), 0);
	assert_int_equal(process_finish(&p, "the tool", &e), -1);
	assert_int_equal(e.code, LB_EXIT_SOURCE);
	assert_string_equal(e.msg, "the tool failed (exited with status 3): tool: last words");
	process_release(&p);
}

static void test_process_here_missing(void **state)
{
	char *argv[] = { "lifeboat-no-such-tool", NULL };
	const struct process_spec spec = { .argv = argv, .fail_code = LB_EXIT_SOURCE };
	struct process p = PROCESS_INIT;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(process_start(&p, &spec, &e), -1);
	assert_int_equal(e.code, LB_EXIT_SOURCE);
	assert_contains(e.msg, "'lifeboat-no-such-tool': not installed");
	process_kill(&p);
	process_release(&p);
}

/* Killed on our side's failure while it still waits for input: no hang, nothing judged. */
static void test_process_here_kill(void **state)
{
	char *argv[] = { "cat", NULL };
	const struct process_spec spec = {
		.argv = argv, .want_stdin = true, .want_stdout = true, .fail_code = LB_EXIT_SOURCE
	};
	struct process p = PROCESS_INIT;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(process_start(&p, &spec, &e), 0);
	process_kill(&p);
	assert_int_equal(p.c.pid, -1);
	process_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_async_reads_until_eof),
		cmocka_unit_test(test_async_closes_its_fd),
		cmocka_unit_test(test_async_never_started),
		cmocka_unit_test(test_process_here_roundtrip),
		cmocka_unit_test(test_process_here_failure),
		cmocka_unit_test(test_process_here_missing),
		cmocka_unit_test(test_process_here_kill),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

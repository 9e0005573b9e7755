/* Unit tests for log.c: control characters escaped, one line per event, the tail, debug lines. */
#include "unit.h"

#include "fs.h"
#include "log.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

static void expect_escape(const char *in, size_t len, const char *want)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_addstr(&sb, "> ");
	log_escape(&sb, in, len);
	if (strcmp(sb.buf + 2, want))
		fail_msg("escaped '%s', want '%s'", sb.buf + 2, want);
	assert_int_equal(strncmp(sb.buf, "> ", 2), 0);
	assert_int_equal(sb.len, 2 + strlen(want));
	strbuf_release(&sb);
}

#define ESC(lit, want) expect_escape(lit, sizeof(lit) - 1, want)

static void test_escape(void **state LB_UNUSED)
{
	ESC("", "");
	ESC("plain text, quotes ' \" and 100% ~", "plain text, quotes ' \" and 100% ~");
	/* A file name cannot forge a second log line. */
	ESC("evil\n2024-01-01 00:00:00 lifeboat[1] info: backup done",
	    "evil\\n2024-01-01 00:00:00 lifeboat[1] info: backup done");
	ESC("a\r\nb", "a\\x0d\\nb");
	ESC("tab\there", "tab\\x09here");
	/* Nor colour or move the terminal. */
	ESC("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m");
	ESC("del\x7f", "del\\x7f");
	ESC("\x01\x1f", "\\x01\\x1f");
	/* A NUL inside the message is shown, not a cut. */
	ESC("a\0b", "a\\x00b");
	/* UTF-8 and other high bytes pass as they are; so does a backslash. */
	ESC("caf\xc3\xa9 \xf0\x9f\x9a\xa2", "caf\xc3\xa9 \xf0\x9f\x9a\xa2");
	ESC("\x80\xff", "\x80\xff");
	ESC("C:\\dir", "C:\\dir");
	ESC(" ~", " ~");
}

static void test_escape_every_byte(void **state LB_UNUSED)
{
	for (int c = 0; c < 256; c++) {
		char in = (char)c;
		struct strbuf sb = STRBUF_INIT;
		log_escape(&sb, &in, 1);
		if (c == '\n')
			assert_string_equal(sb.buf, "\\n");
		else if (c < 0x20 || c == 0x7f)
			assert_int_equal(sb.len, 4);
		else
			assert_int_equal(sb.len, 1);
		assert_null(memchr(sb.buf, '\n', sb.len));
		assert_null(memchr(sb.buf, '\r', sb.len));
		strbuf_release(&sb);
	}
}

/* What log_msg wrote to the log file since the last call. */
static void read_new(const char *path, size_t *seen, struct strbuf *out)
{
	struct strbuf all = STRBUF_INIT;

	assert_int_equal(read_file_capped(path, 1 << 20, &all), 0);
	assert_true(all.len >= *seen);
	strbuf_reset(out);
	strbuf_add(out, all.buf + *seen, all.len - *seen);
	*seen = all.len;
	strbuf_release(&all);
}

static void test_log_file_lines_and_tail(void **state LB_UNUSED)
{
	char dir[] = "/tmp/lifeboat-test-log-XXXXXX";
	struct strbuf got = STRBUF_INIT;
	struct strvec tail = STRVEC_INIT;
	size_t seen = 0;

	assert_non_null(mkdtemp(dir));
	auto_free char *path = xasprintf("%s/lifeboat.log", dir);
	auto_free char *pid = xasprintf(" lifeboat[%d] ", (int)getpid());
	log_open_file(path);
	log_tail_reset();

	log_info("stored '%s'", "a\nb\x1b");
	read_new(path, &seen, &got);
	/* "YYYY-MM-DD HH:MM:SS lifeboat[PID] info: ..." on one line. */
	assert_int_equal(strspn(got.buf, "0123456789-: "), 20);
	assert_contains(got.buf, pid);
	assert_contains(got.buf, "info: stored 'a\\nb\\x1b'\n");
	assert_int_equal(got.buf[got.len - 1], '\n');
	assert_ptr_equal(strchr(got.buf, '\n'), got.buf + got.len - 1);

	log_warn("w");
	log_error("e");
	read_new(path, &seen, &got);
	assert_contains(got.buf, "warning: w\n");
	assert_contains(got.buf, "error: e\n");

	/* Debug lines only when asked for, and never in the tail webhooks send. */
	log_set_debug(false);
	assert_false(log_debug_enabled());
	log_debug("hidden %d", 1);
	read_new(path, &seen, &got);
	assert_int_equal(got.len, 0);
	log_set_debug(true);
	assert_true(log_debug_enabled());
	log_debug("shown %d", 2);
	read_new(path, &seen, &got);
	assert_contains(got.buf, "debug: shown 2\n");
	log_set_debug(false);

	log_tail(&tail);
	assert_int_equal(tail.nr, 3);
	assert_contains(tail.v[0], "info: stored 'a\\nb\\x1b'");
	assert_null(strchr(tail.v[0], '\n'));
	assert_contains(tail.v[2], "error: e");
	strvec_release(&tail);

	/* The tail keeps the last LOG_TAIL_LINES lines, oldest first. */
	for (int i = 0; i < LOG_TAIL_LINES + 5; i++)
		log_info("line %d", i);
	log_tail(&tail);
	assert_int_equal(tail.nr, LOG_TAIL_LINES);
	assert_contains(tail.v[0], "info: line 5");
	assert_contains(tail.v[LOG_TAIL_LINES - 1], "info: line 24");
	strvec_release(&tail);
	log_tail_reset();
	log_tail(&tail);
	assert_int_equal(tail.nr, 0);
	strvec_release(&tail);

	strbuf_release(&got);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_escape_every_byte),
		cmocka_unit_test(test_log_file_lines_and_tail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

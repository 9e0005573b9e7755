/* Unit tests for cmdline.c: the splitting of commands and the `SERVICE: command` lines. */
#include "unit.h"

#include "cmdline.h"
#include "strvec.h"

/* Split `in`; the words joined by '|' (an error: "ERR"). */
static char *split(const char *in)
{
	struct strvec v = STRVEC_INIT;
	const char *why = NULL;
	char *out;

	if (cmdline_split(in, strlen(in), &v, &why) < 0) {
		assert_non_null(why);
		strvec_release(&v);
		return xstrdup("ERR");
	}
	size_t len = 1;
	for (size_t i = 0; i < v.nr; i++)
		len += strlen(v.v[i]) + 2;
	out = xcalloc(1, len);
	for (size_t i = 0; i < v.nr; i++) {
		if (i)
			strncat(out, "|", len - strlen(out) - 1);
		strncat(out, v.v[i], len - strlen(out) - 1);
	}
	assert_null(v.v[v.nr]); /* NULL-terminated: an argv */
	strvec_release(&v);
	return out;
}

static void test_split(void **state LB_UNUSED)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "echo hello", "echo|hello" },
		{ "  echo \t hello  ", "echo|hello" },
		{ "", "" },
		{ "   ", "" },
		/* no redirection, pipes, variables, globbing or comments */
		{ "echo a > /tmp/f", "echo|a|>|/tmp/f" },
		{ "echo a>b|c;d&e", "echo|a>b|c;d&e" },
		{ "echo $HOME ~ * ?", "echo|$HOME|~|*|?" },
		{ "echo # not a comment", "echo|#|not|a|comment" },
		/* single quotes: literal */
		{ "sh -c 'echo \"$x\" > /f'", "sh|-c|echo \"$x\" > /f" },
		{ "echo 'a\\b'", "echo|a\\b" },
		{ "echo ''", "echo|" },
		{ "echo '' ''", "echo||" },
		{ "echo 'a''b'", "echo|ab" },
		/* double quotes: \\ \" \$ escapes, any other backslash kept */
		{ "echo \"a b\"", "echo|a b" },
		{ "echo \"a\\\"b\"", "echo|a\"b" },
		{ "echo \"a\\\\b\"", "echo|a\\b" },
		{ "echo \"\\$x\"", "echo|$x" },
		{ "echo \"$x\"", "echo|$x" },
		{ "echo \"a\\nb\"", "echo|a\\nb" },
		{ "echo \"it's\"", "echo|it's" },
		{ "echo \"\"", "echo|" },
		/* backslash outside quotes */
		{ "echo a\\ b", "echo|a b" },
		{ "echo \\'x", "echo|'x" },
		{ "echo \\\\", "echo|\\" },
		{ "echo \\>", "echo|>" },
		/* parts joined into one word */
		{ "a\"b c\"'d e'f", "ab cd ef" },
		/* errors */
		{ "echo 'open", "ERR" },
		{ "echo \"open", "ERR" },
		{ "echo \"a\\\"", "ERR" },
		{ "echo a\\", "ERR" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *got = split(cases[i].in);
		if (strcmp(got, cases[i].out))
			fail_msg("split(%s) = '%s', expected '%s'", cases[i].in, got, cases[i].out);
		free(got);
	}
}

static void test_split_len(void **state LB_UNUSED)
{
	struct strvec v = STRVEC_INIT;
	const char *why = NULL;

	/* only `len` bytes: a quote after them is not seen */
	assert_int_equal(cmdline_split("echo a 'b", 6, &v, &why), 0);
	assert_int_equal(v.nr, 2);
	assert_string_equal(v.v[1], "a");
	strvec_release(&v);
	assert_int_equal(cmdline_split("x 'y", 4, &v, &why), -EINVAL);
	assert_contains(why, "single quote");
	strvec_release(&v);
	assert_int_equal(cmdline_split("x \"y", 4, &v, &why), -EINVAL);
	assert_contains(why, "double quote");
	strvec_release(&v);
	assert_int_equal(cmdline_split("x\\", 2, &v, &why), -EINVAL);
	assert_contains(why, "backslash");
	strvec_release(&v);
}

static void test_parse_list(void **state LB_UNUSED)
{
	struct hook_list l = HOOK_LIST_INIT;
	const char *why = NULL;
	unsigned line = 0;

	assert_int_equal(cmdline_parse_list("app: touch /data/marker\n"
					    "\n"
					    "# a comment\n"
					    "  : echo 'a > b' >c\r\n"
					    "my_db-1.x:pg_dumpall -l x\n"
					    ":true",
					    true, &l, &line, &why),
			 0);
	assert_int_equal(l.nr, 4);
	assert_string_equal(l.v[0].where, "app");
	assert_string_equal(l.v[0].text, "touch /data/marker");
	assert_int_equal(l.v[0].argv.nr, 2);
	assert_int_equal(l.v[0].line, 1);
	assert_null(l.v[1].where);
	assert_int_equal(l.v[1].line, 4);
	assert_int_equal(l.v[1].argv.nr, 3);
	assert_string_equal(l.v[1].argv.v[1], "a > b");
	assert_string_equal(l.v[1].argv.v[2], ">c");
	assert_string_equal(l.v[1].text, "echo 'a > b' >c");
	assert_string_equal(l.v[2].where, "my_db-1.x");
	assert_string_equal(l.v[2].argv.v[0], "pg_dumpall");
	assert_null(l.v[3].where);
	assert_string_equal(l.v[3].argv.v[0], "true");
	hook_list_release(&l);

	/* without places (a label): the whole line is the command */
	assert_int_equal(cmdline_parse_list("app: x\nsh -c 'date >/f'", false, &l, &line, &why), 0);
	assert_int_equal(l.nr, 2);
	assert_null(l.v[0].where);
	assert_string_equal(l.v[0].argv.v[0], "app:");
	assert_string_equal(l.v[1].argv.v[2], "date >/f");
	hook_list_release(&l);

	static const struct {
		const char *in;
		unsigned line;
		const char *why;
	} bad[] = {
		{ "echo hi", 1, "SERVICE: command" },
		{ ": ok\n\napp echo hi", 3, "SERVICE: command" },
		{ "-app: x", 1, "SERVICE: command" },
		{ "a b: x", 1, "SERVICE: command" },
		{ "app:", 1, "no command" },
		{ ":   ", 1, "no command" },
		{ ": ''x", 0, NULL }, /* fine: the word "x" */
		{ ": echo 'x", 1, "single quote" },
		{ "app: echo \"x", 1, "double quote" },
		{ ": x\\", 1, "backslash" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		line = 99;
		why = NULL;
		int r = cmdline_parse_list(bad[i].in, true, &l, &line, &why);
		if (!bad[i].why) {
			assert_int_equal(r, 0);
		} else {
			if (r != -EINVAL)
				fail_msg("'%s' was accepted", bad[i].in);
			assert_int_equal(line, bad[i].line);
			assert_contains(why, bad[i].why);
		}
		hook_list_release(&l);
	}
	char longname[200];
	memset(longname, 'a', 129);
	memcpy(longname + 129, ": x", 4);
	assert_int_equal(cmdline_parse_list(longname, true, &l, &line, &why), -EINVAL);
	assert_contains(why, "128");
	hook_list_release(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_split_len),
		cmocka_unit_test(test_parse_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for store.c's report sink: what a silent store adapter hands its opener. */
#include "unit.h"

#include "stores/store.h"

struct seen {
	int calls;
	enum log_level level;
	char msg[256];
};

static void catch_report(void *ud, enum log_level level, const char *msg)
{
	struct seen *s = ud;

	s->calls++;
	s->level = level;
	snprintf(s->msg, sizeof(s->msg), "%s", msg);
}

static void test_report_reaches_sink(void **state)
{
	struct seen seen = { 0 };
	struct store st = { .report = catch_report, .report_ud = &seen };

	(void)state;
	store_report(&st, LOG_WARN, "cannot %s (upload id '%s' is left)", "abort", "u-1");
	assert_int_equal(seen.calls, 1);
	assert_int_equal(seen.level, LOG_WARN);
	assert_string_equal(seen.msg, "cannot abort (upload id 'u-1' is left)");
	store_report(&st, LOG_ERROR, "%s", "download failed");
	assert_int_equal(seen.calls, 2);
	assert_int_equal(seen.level, LOG_ERROR);
	assert_string_equal(seen.msg, "download failed");
}

static void test_report_without_sink(void **state)
{
	struct store st = { 0 };

	(void)state;
	store_report(&st, LOG_WARN, "dropped: %d", 1); /* no sink: nothing, no crash */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_reaches_sink),
		cmocka_unit_test(test_report_without_sink),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

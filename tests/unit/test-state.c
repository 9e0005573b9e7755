/* Unit tests for state.c: the health verdict from the last runs and the schedule, and labels. */
#include "unit.h"

#include "state.h"
#include "strbuf.h"

/* 2024-01-02 03:04:05 UTC */
#define T0 ((time_t)1704164645)

static bool verdict(const struct state *st, bool running, time_t now, char *why, size_t len)
{
	memset(why, 'X', len - 1);
	why[len - 1] = '\0';
	return state_health_verdict(st, running, now, why, len);
}

static void test_never_ran_is_healthy(void **state LB_UNUSED)
{
	struct state st = { 0 };
	char why[256];

	set_tz("UTC");
	assert_true(verdict(&st, false, T0, why, sizeof(why)));
	assert_string_equal(why, "");
	/* The schedule is known and not yet due, or just due. */
	st.next_run = T0 + 60;
	assert_true(verdict(&st, false, T0, why, sizeof(why)));
	st.next_run = T0;
	assert_true(verdict(&st, false, T0, why, sizeof(why)));
	assert_string_equal(why, "");
}

static void test_last_scheduled_failure(void **state LB_UNUSED)
{
	struct state st = { 0 };
	char why[256];

	set_tz("UTC");
	snprintf(st.last_scheduled.status, sizeof(st.last_scheduled.status), "failure");
	snprintf(st.last_scheduled.error, sizeof(st.last_scheduled.error),
		 "cannot write '/backups/app': No space left on device");
	st.last_scheduled.finished = T0;
	st.next_run = T0 + 3600;
	assert_false(verdict(&st, false, T0 + 10, why, sizeof(why)));
	assert_string_equal(why, "the last scheduled backup failed at 2024-01-02 03:04:05 UTC: "
				 "cannot write '/backups/app': No space left on device");
	/* A run going on now does not hide the failure: only a success does. */
	assert_false(verdict(&st, true, T0 + 10, why, sizeof(why)));

	/* The time is the local one. */
	set_tz("Europe/Berlin");
	assert_false(verdict(&st, false, T0 + 10, why, sizeof(why)));
	assert_contains(why, "failed at 2024-01-02 04:04:05 CET: ");
	set_tz("UTC");

	/* A failed manual run (st.last) says nothing about the schedule. */
	memset(&st, 0, sizeof(st));
	snprintf(st.last.status, sizeof(st.last.status), "failure");
	snprintf(st.last_scheduled.status, sizeof(st.last_scheduled.status), "success");
	assert_true(verdict(&st, false, T0, why, sizeof(why)));
	assert_string_equal(why, "");
}

static void test_overdue(void **state LB_UNUSED)
{
	struct state st = { 0 };
	char why[256];

	set_tz("UTC");
	snprintf(st.last_scheduled.status, sizeof(st.last_scheduled.status), "success");
	st.next_run = T0;
	/* Five minutes of grace, then unhealthy. */
	assert_true(verdict(&st, false, T0 + 300, why, sizeof(why)));
	assert_false(verdict(&st, false, T0 + 301, why, sizeof(why)));
	assert_string_equal(why, "overdue: the backup scheduled for 2024-01-02 03:04:05 UTC has "
				 "not run (is 'lifeboat run' running?)");
	/* A long backup still going on is not overdue. */
	assert_true(verdict(&st, true, T0 + 86400, why, sizeof(why)));
	assert_string_equal(why, "");
	/* No schedule recorded (manual mode, or before the daemon's first start). */
	st.next_run = 0;
	assert_true(verdict(&st, false, T0 + 86400, why, sizeof(why)));
}

static void test_reason_is_cut_to_the_buffer(void **state LB_UNUSED)
{
	struct state st = { 0 };
	char why[24];

	set_tz("UTC");
	snprintf(st.last_scheduled.status, sizeof(st.last_scheduled.status), "failure");
	assert_false(verdict(&st, false, T0, why, sizeof(why)));
	assert_string_equal(why, "the last scheduled back");
}

static void test_healthy_with_config(void **state LB_UNUSED)
{
	struct config cfg = CONFIG_INIT;
	struct state st = { 0 };
	char why[256] = "stale";

	set_tz("UTC");
	st.next_run = T0;
	snprintf(st.last_scheduled.status, sizeof(st.last_scheduled.status), "failure");
	/* Manual mode: always healthy, whatever the state says. */
	assert_true(state_healthy(&cfg, &st, T0 + 86400, why, sizeof(why)));
	assert_string_equal(why, "");

	cfg.daemon.schedule = "0 3 * * *";
	assert_false(state_healthy(&cfg, &st, T0, why, sizeof(why)));
	assert_contains(why, "the last scheduled backup failed");

	/* Overdue while the recorded run is this (live) process: healthy; no pid: overdue. */
	memset(&st, 0, sizeof(st));
	st.next_run = T0;
	st.running_pid = getpid();
	assert_true(state_healthy(&cfg, &st, T0 + 3600, why, sizeof(why)));
	st.running_pid = 0;
	assert_false(state_healthy(&cfg, &st, T0 + 3600, why, sizeof(why)));
	assert_contains(why, "overdue");
}

static void test_labels(void **state LB_UNUSED)
{
	struct labelled_stat v[3];
	size_t nr = 0;

	struct labelled_stat *a = state_label(v, &nr, 3, "local");
	assert_non_null(a);
	assert_int_equal(nr, 1);
	a->failures = 7;
	assert_ptr_equal(state_label(v, &nr, 3, "local"), a);
	assert_int_equal(a->failures, 7);
	struct labelled_stat *b = state_label(v, &nr, 3, "s3");
	assert_non_null(b);
	assert_int_equal(b->failures, 0);
	assert_int_equal(b->last_success, 0);
	assert_non_null(state_label(v, &nr, 3, "third"));
	/* Full: new labels are refused, known ones still found. */
	assert_null(state_label(v, &nr, 3, "fourth"));
	assert_int_equal(nr, 3);
	assert_ptr_equal(state_label(v, &nr, 3, "s3"), b);

	/* A label longer than the field is kept cut, and found again by its cut form. */
	struct strbuf longl = STRBUF_INIT;
	for (int i = 0; i < 200; i++)
		strbuf_addch(&longl, (char)('a' + i % 26));
	nr = 0;
	struct labelled_stat *l = state_label(v, &nr, 3, longl.buf);
	assert_non_null(l);
	assert_int_equal(strlen(l->label), sizeof(l->label) - 1);
	assert_int_equal(strncmp(l->label, longl.buf, sizeof(l->label) - 1), 0);
	strbuf_release(&longl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_never_ran_is_healthy),
		cmocka_unit_test(test_last_scheduled_failure),
		cmocka_unit_test(test_overdue),
		cmocka_unit_test(test_reason_is_cut_to_the_buffer),
		cmocka_unit_test(test_healthy_with_config),
		cmocka_unit_test(test_labels),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

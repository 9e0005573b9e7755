/* Unit tests for cron.c: parsing, errors, next fire times over fixed dates, DST, leap days. */
#include "unit.h"

#include "cron.h"

/* "YYYY-MM-DD HH:MM:SS +HHMM" to an instant. */
static time_t at(const char *s)
{
	struct tm tm = { 0 };
	int y, mo, d, h, mi, se, off;
	char sign;

	if (sscanf(s, "%d-%d-%d %d:%d:%d %c%d", &y, &mo, &d, &h, &mi, &se, &sign, &off) != 8)
		fail_msg("bad test time '%s'", s);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = se;
	long secs = (off / 100) * 3600 + (off % 100) * 60;
	return timegm(&tm) - (sign == '-' ? -secs : secs);
}

static void fmt(time_t t, char *buf, size_t len)
{
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S %z", &tm);
}

static void expect_next(const char *tz, const char *expr, const char *after, const char *want)
{
	struct cron c;
	struct err e = ERR_INIT;
	time_t t;
	char got[64];

	set_tz(tz);
	if (cron_parse(expr, &c, &e) < 0)
		fail_msg("'%s' did not parse: %s", expr, e.msg);
	if (cron_next(&c, at(after), &t) < 0)
		fail_msg("'%s' after %s: no next time", expr, after);
	fmt(t, got, sizeof(got));
	if (strcmp(got, want))
		fail_msg("TZ=%s '%s' after %s: got %s, want %s", tz, expr, after, got, want);
}

static void expect_error(const char *expr, const char *needle)
{
	struct cron c;
	struct err e = ERR_INIT;

	if (cron_parse(expr, &c, &e) == 0)
		fail_msg("'%s' parsed but should not", expr);
	assert_int_equal(e.code, LB_EXIT_CONFIG);
	if (!strstr(e.msg, needle))
		fail_msg("'%s': error '%s' does not mention '%s'", expr, e.msg, needle);
	if (strchr(e.msg, '\n'))
		fail_msg("'%s': error is more than one line", expr);
}

/* Count the fire times in [from, to). */
static int count_fires(const char *tz, const char *expr, const char *from, const char *to)
{
	struct cron c;
	struct err e = ERR_INIT;
	time_t t = at(from) - 1, end = at(to), prev = t;
	int n = 0;

	set_tz(tz);
	assert_int_equal(cron_parse(expr, &c, &e), 0);
	for (;;) {
		assert_int_equal(cron_next(&c, t, &t), 0);
		assert_true(t > prev);
		prev = t;
		if (t >= end)
			return n;
		n++;
	}
}

static void test_basic(void **state LB_UNUSED)
{
	expect_next("UTC", "*/15 * * * *", "2024-01-01 00:00:00 +0000",
		    "2024-01-01 00:15:00 +0000");
	expect_next("UTC", "*/15 * * * *", "2024-01-01 00:14:59 +0000",
		    "2024-01-01 00:15:00 +0000");
	expect_next("UTC", "0 2 * * *", "2024-01-01 02:00:00 +0000", "2024-01-02 02:00:00 +0000");
	expect_next("UTC", "0 2 * * *", "2024-01-01 01:59:59 +0000", "2024-01-01 02:00:00 +0000");
	expect_next("UTC", "5,10 3 * * *", "2024-01-01 03:05:00 +0000",
		    "2024-01-01 03:10:00 +0000");
	expect_next("UTC", "59 23 31 12 *", "2024-06-01 00:00:00 +0000",
		    "2024-12-31 23:59:00 +0000");
	expect_next("UTC", "0 0 1 1 *", "2024-12-31 23:59:59 +0000", "2025-01-01 00:00:00 +0000");
	expect_next("UTC", "  1   2  *  * *  ", "2024-01-01 00:00:00 +0000",
		    "2024-01-01 02:01:00 +0000");
}

static void test_ranges_steps_names(void **state LB_UNUSED)
{
	/* 2024-01-05 is a Friday. */
	expect_next("UTC", "0 9-17/2 * * mon-fri", "2024-01-05 17:00:00 +0000",
		    "2024-01-08 09:00:00 +0000");
	expect_next("UTC", "0 9-17/2 * * MON-FRI", "2024-01-08 09:00:00 +0000",
		    "2024-01-08 11:00:00 +0000");
	expect_next("UTC", "0 0 1 jan,Jul *", "2024-01-01 00:00:00 +0000",
		    "2024-07-01 00:00:00 +0000");
	expect_next("UTC", "0 0 * * sun", "2024-01-01 00:00:00 +0000", "2024-01-07 00:00:00 +0000");
	expect_next("UTC", "0 0 * * 7", "2024-01-01 00:00:00 +0000", "2024-01-07 00:00:00 +0000");
	expect_next("UTC", "0 0 * * 0", "2024-01-01 00:00:00 +0000", "2024-01-07 00:00:00 +0000");
	expect_next("UTC", "0 0 * * 5-7", "2024-01-01 00:00:00 +0000", "2024-01-05 00:00:00 +0000");
	expect_next("UTC", "10/20 * * * *", "2024-01-01 00:31:00 +0000",
		    "2024-01-01 00:50:00 +0000");
	expect_next("UTC", "10/20 * * * *", "2024-01-01 00:50:00 +0000",
		    "2024-01-01 01:10:00 +0000");
	expect_next("UTC", "0 0 * feb-mar/1 *", "2024-01-10 00:00:00 +0000",
		    "2024-02-01 00:00:00 +0000");
	expect_next("UTC", "1-3,7 0 * * *", "2024-01-01 00:03:00 +0000",
		    "2024-01-01 00:07:00 +0000");
}

static void test_seconds_field(void **state LB_UNUSED)
{
	expect_next("UTC", "*/3 * * * * *", "2024-01-01 00:00:00 +0000",
		    "2024-01-01 00:00:03 +0000");
	expect_next("UTC", "*/3 * * * * *", "2024-01-01 00:00:58 +0000",
		    "2024-01-01 00:01:00 +0000");
	expect_next("UTC", "30 0 12 * * *", "2024-01-01 12:00:30 +0000",
		    "2024-01-02 12:00:30 +0000");
	/* Without a seconds field, the minute fires at second 0. */
	expect_next("UTC", "* * * * *", "2024-01-01 00:00:00 +0000", "2024-01-01 00:01:00 +0000");
}

static void test_macros(void **state LB_UNUSED)
{
	expect_next("UTC", "@hourly", "2024-01-01 00:00:00 +0000", "2024-01-01 01:00:00 +0000");
	expect_next("UTC", "@daily", "2024-01-01 00:00:00 +0000", "2024-01-02 00:00:00 +0000");
	expect_next("UTC", "@midnight", "2024-01-01 10:00:00 +0000", "2024-01-02 00:00:00 +0000");
	expect_next("UTC", "@weekly", "2024-01-01 00:00:00 +0000", "2024-01-07 00:00:00 +0000");
	expect_next("UTC", "@monthly", "2024-01-01 00:00:00 +0000", "2024-02-01 00:00:00 +0000");
	expect_next("UTC", "@yearly", "2024-01-01 00:00:00 +0000", "2025-01-01 00:00:00 +0000");
	expect_next("UTC", "@ANNUALLY", "2024-01-01 00:00:00 +0000", "2025-01-01 00:00:00 +0000");
}

/* Vixie: both day fields restricted means either matches; a '*'-led one means both. */
static void test_dom_dow_semantics(void **state LB_UNUSED)
{
	/* 2024-09-13 is a Friday the 13th; 2024-09-06 a Friday. */
	expect_next("UTC", "0 0 13 * fri", "2024-09-01 00:00:00 +0000",
		    "2024-09-06 00:00:00 +0000");
	expect_next("UTC", "0 0 13 * fri", "2024-09-06 00:00:00 +0000",
		    "2024-09-13 00:00:00 +0000");
	expect_next("UTC", "0 0 13 * fri", "2024-09-13 00:00:00 +0000",
		    "2024-09-20 00:00:00 +0000");
	expect_next("UTC", "0 0 13 * *", "2024-09-01 00:00:00 +0000", "2024-09-13 00:00:00 +0000");
	expect_next("UTC", "0 0 * * fri", "2024-09-13 00:00:00 +0000", "2024-09-20 00:00:00 +0000");
	/* '*' step in day-of-month: both must match (odd days that are Fridays). */
	expect_next("UTC", "0 0 */2 * fri", "2024-09-01 00:00:00 +0000",
		    "2024-09-13 00:00:00 +0000");
	/* Day-of-month alone: every 13th. */
	expect_next("UTC", "0 0 13 * * ", "2024-09-13 00:00:00 +0000", "2024-10-13 00:00:00 +0000");
}

static void test_leap_and_short_months(void **state LB_UNUSED)
{
	expect_next("UTC", "0 0 29 2 *", "2023-03-01 00:00:00 +0000", "2024-02-29 00:00:00 +0000");
	expect_next("UTC", "0 0 29 2 *", "2024-02-29 00:00:00 +0000", "2028-02-29 00:00:00 +0000");
	/* 2100 is not a leap year. */
	expect_next("UTC", "0 0 29 2 *", "2096-03-01 00:00:00 +0000", "2104-02-29 00:00:00 +0000");
	expect_next("UTC", "0 0 31 * *", "2024-04-01 00:00:00 +0000", "2024-05-31 00:00:00 +0000");
	expect_next("UTC", "0 0 31 * *", "2024-01-31 00:00:00 +0000", "2024-03-31 00:00:00 +0000");
	expect_next("UTC", "0 0 30 * *", "2024-01-30 00:00:00 +0000", "2024-03-30 00:00:00 +0000");
	expect_next("UTC", "0 0 31 2,4,6,9,11,12 *", "2024-01-01 00:00:00 +0000",
		    "2024-12-31 00:00:00 +0000");
	expect_next("UTC", "0 12 28-31 2 *", "2024-02-28 12:00:00 +0000",
		    "2024-02-29 12:00:00 +0000");
	expect_next("UTC", "0 12 28-31 2 *", "2023-02-28 12:00:00 +0000",
		    "2024-02-28 12:00:00 +0000");
}

static void test_dst_new_york(void **state LB_UNUSED)
{
	const char *ny = "America/New_York";

	/* 2024-03-10 02:00 EST -> 03:00 EDT: 02:30 does not exist, runs once at 03:00. */
	expect_next(ny, "30 2 * * *", "2024-03-10 00:00:00 -0500", "2024-03-10 03:00:00 -0400");
	expect_next(ny, "30 2 * * *", "2024-03-10 01:59:59 -0500", "2024-03-10 03:00:00 -0400");
	expect_next(ny, "30 2 * * *", "2024-03-10 03:00:00 -0400", "2024-03-11 02:30:00 -0400");
	expect_next(ny, "*/15 2 * * *", "2024-03-10 01:00:00 -0500", "2024-03-10 03:00:00 -0400");
	expect_next(ny, "*/15 2 * * *", "2024-03-10 03:00:00 -0400", "2024-03-11 02:00:00 -0400");
	expect_next(ny, "0 * * * *", "2024-03-10 01:00:00 -0500", "2024-03-10 03:00:00 -0400");
	expect_next(ny, "0 * * * *", "2024-03-10 03:00:00 -0400", "2024-03-10 04:00:00 -0400");
	expect_next(ny, "0 3 * * *", "2024-03-10 00:00:00 -0500", "2024-03-10 03:00:00 -0400");
	expect_next(ny, "59 1 * * *", "2024-03-10 00:00:00 -0500", "2024-03-10 01:59:00 -0500");

	/* 2024-11-03 02:00 EDT -> 01:00 EST: 01:30 happens twice, runs once (the first). */
	expect_next(ny, "30 1 * * *", "2024-11-03 00:00:00 -0400", "2024-11-03 01:30:00 -0400");
	expect_next(ny, "30 1 * * *", "2024-11-03 01:30:00 -0400", "2024-11-04 01:30:00 -0500");
	expect_next(ny, "30 1 * * *", "2024-11-03 01:10:00 -0500", "2024-11-04 01:30:00 -0500");
	expect_next(ny, "0 * * * *", "2024-11-03 00:30:00 -0400", "2024-11-03 01:00:00 -0400");
	expect_next(ny, "0 * * * *", "2024-11-03 01:00:00 -0400", "2024-11-03 02:00:00 -0500");
	expect_next(ny, "*/15 * * * *", "2024-11-03 01:10:00 -0500", "2024-11-03 02:00:00 -0500");
	expect_next(ny, "0 2 * * *", "2024-11-03 00:00:00 -0400", "2024-11-03 02:00:00 -0500");

	/* A whole year: each wall-clock hour once, the missing 02:00 merged into 03:00. */
	assert_int_equal(count_fires(ny, "0 * * * *", "2024-01-01 00:00:00 -0500",
				     "2025-01-01 00:00:00 -0500"),
			 366 * 24 - 1);
	assert_int_equal(count_fires(ny, "30 2 * * *", "2024-01-01 00:00:00 -0500",
				     "2025-01-01 00:00:00 -0500"),
			 366);
	assert_int_equal(count_fires(ny, "30 1 * * *", "2024-01-01 00:00:00 -0500",
				     "2025-01-01 00:00:00 -0500"),
			 366);
}

static void test_dst_berlin(void **state LB_UNUSED)
{
	const char *be = "Europe/Berlin";

	/* 2024-03-31 02:00 CET -> 03:00 CEST. */
	expect_next(be, "30 2 * * *", "2024-03-30 02:30:00 +0100", "2024-03-31 03:00:00 +0200");
	expect_next(be, "30 2 * * *", "2024-03-31 03:00:00 +0200", "2024-04-01 02:30:00 +0200");
	expect_next(be, "0 0 2 * * *", "2024-03-31 01:00:00 +0100", "2024-03-31 03:00:00 +0200");
	/* 2024-10-27 03:00 CEST -> 02:00 CET. */
	expect_next(be, "30 2 * * *", "2024-10-27 00:00:00 +0200", "2024-10-27 02:30:00 +0200");
	expect_next(be, "30 2 * * *", "2024-10-27 02:30:00 +0200", "2024-10-28 02:30:00 +0100");
	expect_next(be, "*/20 2 * * *", "2024-10-27 02:40:00 +0200", "2024-10-28 02:00:00 +0100");
	assert_int_equal(count_fires(be, "*/30 * * * *", "2024-01-01 00:00:00 +0100",
				     "2025-01-01 00:00:00 +0100"),
			 366 * 48 - 2);
}

/* Brute force in UTC: every second of two days against the field rules. */
static void test_against_brute_force(void **state LB_UNUSED)
{
	static const char *const exprs[] = {
		"*/7 * * * *",	  "0 */5 * * *",       "13 4,17 * * 2-4", "0 0 1,15 * mon",
		"*/20 3 * * * *", "45 23 * * sat,sun", "0 12 */3 * *",	  "5-10/2 8-9 * * *",
	};
	time_t from = at("2024-02-25 00:00:00 +0000");

	set_tz("UTC");
	for (size_t i = 0; i < ARRAY_SIZE(exprs); i++) {
		struct cron c;
		struct err e = ERR_INIT;
		time_t next;

		assert_int_equal(cron_parse(exprs[i], &c, &e), 0);
		assert_int_equal(cron_next(&c, from - 1, &next), 0);
		for (time_t t = from; t < from + 2 * 86400; t++) {
			struct tm tm;
			gmtime_r(&t, &tm);
			bool dom = c.dom >> tm.tm_mday & 1, dow = c.dow >> tm.tm_wday & 1;
			bool day = c.dom_star || c.dow_star ? dom && dow : dom || dow;
			bool match = (c.sec >> tm.tm_sec & 1) && (c.min >> tm.tm_min & 1) &&
				     (c.hour >> tm.tm_hour & 1) && (c.mon >> (tm.tm_mon + 1) & 1) &&
				     day;
			if (match != (t == next))
				fail_msg("'%s' at %lld: match=%d next=%lld", exprs[i], (long long)t,
					 match, (long long)next);
			if (match)
				assert_int_equal(cron_next(&c, t, &next), 0);
		}
	}
}

static void test_errors(void **state LB_UNUSED)
{
	expect_error("", "0 fields");
	expect_error("* * * *", "4 fields");
	expect_error("* * * * * * *", "too many fields");
	expect_error("61 * * * *", "minute field '61'");
	expect_error("0 61 * * * *", "minute field '61'");
	expect_error("60 * * * * *", "second field '60'");
	expect_error("* 24 * * *", "hour field '24'");
	expect_error("* * 0 * *", "day-of-month field '0'");
	expect_error("* * 32 * *", "day-of-month field '32'");
	expect_error("* * * 13 *", "month field '13'");
	expect_error("* * * 0 *", "month field '0'");
	expect_error("* * * * 8", "day-of-week field '8'");
	expect_error("* * * * foo", "day-of-week field 'foo'");
	expect_error("* * * * mond", "day-of-week field 'mond'");
	expect_error("* * * jam *", "month field 'jam'");
	expect_error("* * * * jan", "day-of-week field 'jan'");
	expect_error("5-1 * * * *", "range 5-1 goes backwards");
	expect_error("*/0 * * * *", "step");
	expect_error("*/61 * * * *", "step");
	expect_error("*/ * * * *", "step");
	expect_error("1,,2 * * * *", "minute field '1,,2'");
	expect_error("1, * * * *", "minute field '1,'");
	expect_error("-1 * * * *", "minute field '-1'");
	expect_error("1-2-3 * * * *", "minute field '1-2-3'");
	expect_error("a * * * *", "minute field 'a'");
	expect_error("99999999999 * * * *", "minute field");
	expect_error("0 0 31 2 *", "never occurs");
	expect_error("0 0 30 2 *", "never occurs");
	expect_error("0 0 31 4,6,9,11 *", "never occurs");
	expect_error("@reboot", "unknown '@reboot'");
	expect_error("@daily 5", "takes no further fields");
	expect_error("@", "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_ranges_steps_names),
		cmocka_unit_test(test_seconds_field),
		cmocka_unit_test(test_macros),
		cmocka_unit_test(test_dom_dow_semantics),
		cmocka_unit_test(test_leap_and_short_months),
		cmocka_unit_test(test_dst_new_york),
		cmocka_unit_test(test_dst_berlin),
		cmocka_unit_test(test_against_brute_force),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for retention.c over simulated histories: days, keep-last, GFS, mixed, safety. */
#include "unit.h"

#include "retention.h"
#include "xalloc.h"

static time_t utc(int y, int mo, int d, int h)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h };
	return timegm(&tm);
}

struct history {
	time_t *t;
	size_t n;
	bool *del;
};

/* Backups every `step` seconds from `from` to `to` inclusive. */
static void history_make(struct history *h, time_t from, time_t to, time_t step)
{
	h->n = (size_t)((to - from) / step) + 1;
	h->t = xcalloc(h->n, sizeof(*h->t));
	h->del = xcalloc(h->n, sizeof(*h->del));
	for (size_t i = 0; i < h->n; i++)
		h->t[i] = from + (time_t)i * step;
}

static void history_free(struct history *h)
{
	free(h->t);
	free(h->del);
}

static size_t kept(const struct history *h)
{
	size_t k = 0;
	for (size_t i = 0; i < h->n; i++)
		k += !h->del[i];
	return k;
}

static bool is_kept(const struct history *h, time_t t)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->t[i] == t)
			return !h->del[i];
	fail_msg("time %lld not in history", (long long)t);
	return false;
}

static void setup_utc(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
}

static void test_no_rules_keeps_everything(void **state LB_UNUSED)
{
	struct history h;
	struct retention_rules r = { 0 };

	setup_utc();
	history_make(&h, utc(2022, 1, 1, 2), utc(2024, 12, 31, 2), 86400);
	assert_false(retention_enabled(&r));
	assert_int_equal(retention_decide(&r, h.t, h.n, utc(2025, 1, 1, 0), h.del), 0);
	assert_int_equal(kept(&h), h.n);
	assert_int_equal(retention_decide(&r, h.t, 0, 0, h.del), 0);
	history_free(&h);
}

static void test_days(void **state LB_UNUSED)
{
	struct history h;
	struct retention_rules r = { .days = 7 };
	time_t now = utc(2024, 12, 31, 2);

	setup_utc();
	/* Three years of daily backups at 02:00; now is the newest one. */
	history_make(&h, utc(2022, 1, 1, 2), now, 86400);
	size_t del = retention_decide(&r, h.t, h.n, now, h.del);
	assert_int_equal(kept(&h), 8); /* ages 0..7 days: none is older than 7 days */
	assert_int_equal(del, h.n - 8);
	assert_true(is_kept(&h, now - 7 * 86400));
	assert_false(is_kept(&h, now - 8 * 86400));
	/* A run a few seconds later deletes exactly one more: the one now 7 days and 5 s old. */
	assert_int_equal(retention_decide(&r, h.t, h.n, now + 5, h.del), h.n - 7);
	history_free(&h);
}

static void test_keep_last(void **state LB_UNUSED)
{
	struct history h;
	struct retention_rules r = { .keep_last = 5 };

	setup_utc();
	history_make(&h, utc(2024, 1, 1, 0), utc(2024, 3, 1, 0), 3600);
	retention_decide(&r, h.t, h.n, utc(2024, 3, 1, 0), h.del);
	assert_int_equal(kept(&h), 5);
	for (size_t i = 0; i < h.n; i++)
		assert_int_equal(h.del[i], i + 5 < h.n);
	history_free(&h);
}

/* 7 daily, 4 weekly, 12 monthly over three years of daily backups. */
static void test_gfs(void **state LB_UNUSED)
{
	struct history h;
	struct retention_rules r = { .keep_daily = 7, .keep_weekly = 4, .keep_monthly = 12 };
	time_t now = utc(2024, 12, 31, 2);

	setup_utc();
	history_make(&h, utc(2022, 1, 1, 2), now, 86400);
	retention_decide(&r, h.t, h.n, now, h.del);
	/*
	 * Daily: Dec 25..31. Weekly (ISO weeks; Dec 31 is in 2025-W01): Dec 31,
	 * 29, 22, 15 - two new. Monthly: the last day of each month from Jan to
	 * Dec 2024, Dec 31 already kept - eleven new.
	 */
	assert_int_equal(kept(&h), 7 + 2 + 11);
	for (int d = 25; d <= 31; d++)
		assert_true(is_kept(&h, utc(2024, 12, d, 2)));
	assert_true(is_kept(&h, utc(2024, 12, 22, 2)));
	assert_true(is_kept(&h, utc(2024, 12, 15, 2)));
	assert_false(is_kept(&h, utc(2024, 12, 14, 2)));
	assert_true(is_kept(&h, utc(2024, 2, 29, 2)));
	assert_true(is_kept(&h, utc(2024, 1, 31, 2)));
	assert_false(is_kept(&h, utc(2024, 1, 30, 2)));
	assert_false(is_kept(&h, utc(2023, 12, 31, 2)));
	history_free(&h);
}

/* Hourly backups: the newest of each day counts, and keep-last adds the last hours. */
static void test_hourly_mixed(void **state LB_UNUSED)
{
	struct history h;
	struct retention_rules r = { .keep_last = 5, .keep_daily = 10 };
	time_t now = utc(2024, 3, 1, 23);

	setup_utc();
	history_make(&h, utc(2024, 1, 1, 0), now, 3600);
	retention_decide(&r, h.t, h.n, now, h.del);
	assert_int_equal(kept(&h), 5 + 9);
	assert_true(is_kept(&h, utc(2024, 2, 29, 23)));
	assert_false(is_kept(&h, utc(2024, 2, 29, 22)));
	assert_true(is_kept(&h, utc(2024, 2, 21, 23)));
	assert_false(is_kept(&h, utc(2024, 2, 20, 23)));

	/* Days and GFS together: a backup is kept if any rule keeps it. */
	struct retention_rules r2 = { .days = 2, .keep_monthly = 3 };
	retention_decide(&r2, h.t, h.n, now, h.del);
	/* 48 h plus the boundary one cover March and February; monthly adds Jan 31 23:00. */
	assert_int_equal(kept(&h), 49 + 1);
	assert_true(is_kept(&h, utc(2024, 1, 31, 23)));
	assert_false(is_kept(&h, utc(2024, 1, 31, 22)));
	history_free(&h);
}

/* Daily buckets follow TZ: 23:30 UTC is the next day in Berlin. */
static void test_days_follow_tz(void **state LB_UNUSED)
{
	time_t t[] = { utc(2024, 6, 1, 21), utc(2024, 6, 1, 23), utc(2024, 6, 2, 10) };
	bool del[3];
	struct retention_rules r = { .keep_daily = 2 };

	setenv("TZ", "Europe/Berlin", 1);
	tzset();
	retention_decide(&r, t, 3, t[2], del);
	/* Berlin: June 1 23:00 and June 2 01:00 and June 2 12:00: day buckets June 2, June 1. */
	assert_false(del[0]);
	assert_true(del[1]);
	assert_false(del[2]);
	setup_utc();
	retention_decide(&r, t, 3, t[2], del);
	assert_true(del[0]);
	assert_false(del[1]);
	assert_false(del[2]);
}

static void test_safety(void **state LB_UNUSED)
{
	/* All backups far older than the limit: the newest stays. */
	time_t t[] = { utc(2020, 1, 3, 0), utc(2020, 1, 1, 0), utc(2020, 1, 2, 0) };
	bool del[3];
	struct retention_rules r = { .days = 1 };

	setup_utc();
	assert_int_equal(retention_decide(&r, t, 3, utc(2024, 1, 1, 0), del), 2);
	assert_false(del[0]);
	assert_true(del[1]);
	assert_true(del[2]);
	/* One backup only: never deleted. */
	assert_int_equal(retention_decide(&r, t + 1, 1, utc(2024, 1, 1, 0), del), 0);
	assert_false(del[0]);
	/* Equal timestamps (two suffixes): both counted, in a stable order. */
	time_t same[] = { 100, 100, 50 };
	struct retention_rules one = { .keep_last = 1 };
	assert_int_equal(retention_decide(&one, same, 3, 100, del), 2);
	assert_false(del[0]);
	assert_true(del[1]);
	assert_true(del[2]);
	/* Backups from the future (clock skew) are young, not deleted. */
	time_t fut[] = { utc(2030, 1, 1, 0), utc(2024, 1, 1, 0) };
	assert_int_equal(retention_decide(&r, fut, 2, utc(2024, 1, 1, 0), del), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_rules_keeps_everything),
		cmocka_unit_test(test_days),
		cmocka_unit_test(test_keep_last),
		cmocka_unit_test(test_gfs),
		cmocka_unit_test(test_hourly_mixed),
		cmocka_unit_test(test_days_follow_tz),
		cmocka_unit_test(test_safety),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

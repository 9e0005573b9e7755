/* Unit tests for naming.c: timestamps in TZ, archive file names and parsing them back. */
#include "unit.h"

#include "naming.h"

static void expect_timestamp(const char *tz, time_t t, const char *want)
{
	char out[TIMESTAMP_LEN + 1];

	set_tz(tz);
	memset(out, 'X', sizeof(out));
	naming_timestamp(t, out);
	if (strcmp(out, want))
		fail_msg("TZ=%s t=%lld: got '%s', want '%s'", tz, (long long)t, out, want);
	assert_int_equal(strlen(out), TIMESTAMP_LEN);
}

/* ---- naming_timestamp ---- */

static void test_timestamp_utc(void **state LB_UNUSED)
{
	expect_timestamp("UTC", 0, "1970-01-01-000000");
	expect_timestamp("UTC", 59, "1970-01-01-000059");
	expect_timestamp("UTC", 86399, "1970-01-01-235959");
	/*
	 * 1700000000 = 19675 * 86400 + 80000; 80000 s = 22:13:20. Day 19675 after
	 * 1970-01-01: 2023-01-01 is day 19358 (53 years, 13 leap days: 53*365+13),
	 * plus 317 days = Nov 14 (Jan..Oct = 304 days, +13).
	 */
	expect_timestamp("UTC", 1700000000, "2023-11-14-221320");
	/* 951782400 = 11016 days: 2000-01-01 is day 10957 (30*365+7), +59 = Feb 29. */
	expect_timestamp("UTC", 951782400, "2000-02-29-000000");
	/* 4102444800 is 2100-01-01 00:00:00 UTC (47482 days); one second before. */
	expect_timestamp("UTC", 4102444799, "2099-12-31-235959");
	/* ":UTC" and a POSIX string with a zero offset mean the same. */
	expect_timestamp(":UTC", 1700000000, "2023-11-14-221320");
	expect_timestamp("UTC0", 1700000000, "2023-11-14-221320");
}

static void test_timestamp_zones(void **state LB_UNUSED)
{
	/* Asia/Tokyo is UTC+9 without DST. */
	expect_timestamp("Asia/Tokyo", 0, "1970-01-01-090000");
	expect_timestamp("Asia/Tokyo", 1700000000, "2023-11-15-071320");
	expect_timestamp("Asia/Tokyo", 4102444799, "2100-01-01-085959");
	/* Europe/Berlin: CET (+1) in November, CEST (+2) in July. */
	expect_timestamp("Europe/Berlin", 1700000000, "2023-11-14-231320");
	/* 1690000000 = 19560 days (2023-07-22) + 16000 s (04:26:40 UTC). */
	expect_timestamp("Europe/Berlin", 1690000000, "2023-07-22-062640");
	/* 2024-03-31 01:00:00 UTC is the switch to CEST: 02:00 CET becomes 03:00 CEST. */
	expect_timestamp("Europe/Berlin", 1711846800 - 1, "2024-03-31-015959");
	expect_timestamp("Europe/Berlin", 1711846800, "2024-03-31-030000");
	/* A POSIX TZ string west of UTC, and the day before in local time. */
	expect_timestamp("EST5EDT", 0, "1969-12-31-190000");
	expect_timestamp("America/New_York", 1700000000, "2023-11-14-171320");
	set_tz("UTC");
}

/* ---- naming_timestamp_valid ---- */

static void test_timestamp_valid_good(void **state LB_UNUSED)
{
	static const char *const good[] = {
		"1970-01-01-000000", "2025-01-31-235959", "2025-12-31-235959",
		"2024-02-29-120000", /* leap year */
		"2000-02-29-000000", /* divisible by 400: leap */
		"2025-02-28-235959", "2025-04-30-000000", "2099-12-31-235959",
	};

	set_tz("UTC");
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		if (!naming_timestamp_valid(good[i], NULL))
			fail_msg("'%s' should be a valid timestamp", good[i]);
}

static void test_timestamp_valid_bad(void **state LB_UNUSED)
{
	static const char *const bad[] = {
		"2025-13-01-000000",			  /* month 13 */
		"2025-00-10-000000",			  /* month 0 */
		"2025-02-30-000000",			  /* Feb 30 */
		"2025-02-31-000000", "2023-02-29-000000", /* not a leap year */
		"2100-02-29-000000",			  /* divisible by 100, not by 400 */
		"2025-04-31-000000",			  /* April has 30 days */
		"2025-01-00-000000",			  /* day 0 */
		"2025-01-32-000000", "2025-01-01-240000", /* hour 24 */
		"2025-01-01-236000",			  /* minute 60 */
		"2025-01-01-000061", "1969-12-31-235959", /* before the epoch */
		"abcd-ef-gh-ijklmn",			  /* letters */
		"2025-0a-01-000000", "2025-01-01-0000x0",
		"2025-01-01-00000", /* short */
		"2025-01-01",	     "",
		"2025-01-01T000000", /* wrong separators */
		"2025/01/01-000000", "20250101-00000000",
		"2025-1-01-0000000", " 2025-01-01-00000",
		"-025-01-01-000000", "+2025-01-01-00000",
	};

	set_tz("UTC");
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (naming_timestamp_valid(bad[i], NULL))
			fail_msg("'%s' should not be a valid timestamp", bad[i]);
}

static void test_timestamp_valid_time(void **state LB_UNUSED)
{
	time_t t = -1;

	set_tz("UTC");
	assert_true(naming_timestamp_valid("1970-01-01-000000", &t));
	assert_int_equal(t, 0);
	assert_true(naming_timestamp_valid("2023-11-14-221320", &t));
	assert_int_equal(t, 1700000000);
	assert_true(naming_timestamp_valid("2000-02-29-000000", &t));
	assert_int_equal(t, 951782400);

	/* The timestamp is read in the current TZ. */
	set_tz("Asia/Tokyo");
	assert_true(naming_timestamp_valid("2023-11-15-071320", &t));
	assert_int_equal(t, 1700000000);
	set_tz("Europe/Berlin");
	assert_true(naming_timestamp_valid("2023-07-22-062640", &t));
	assert_int_equal(t, 1690000000);
	assert_true(naming_timestamp_valid("2023-11-14-231320", &t));
	assert_int_equal(t, 1700000000);

	/* naming_timestamp and naming_timestamp_valid round trip. */
	static const char *const zones[] = { "UTC", "Asia/Tokyo", "Europe/Berlin",
					     "America/New_York" };
	static const time_t times[] = { 86400,	    951782400,	1690000000,
					1700000000, 1711846800, 2000000000 };
	for (size_t z = 0; z < ARRAY_SIZE(zones); z++) {
		set_tz(zones[z]);
		for (size_t i = 0; i < ARRAY_SIZE(times); i++) {
			char ts[TIMESTAMP_LEN + 1];
			naming_timestamp(times[i], ts);
			t = -1;
			assert_true(naming_timestamp_valid(ts, &t));
			if (t != times[i])
				fail_msg("TZ=%s: '%s' read back as %lld, want %lld", zones[z], ts,
					 (long long)t, (long long)times[i]);
		}
	}

	/* An invalid timestamp leaves *ret_time alone. */
	t = 1234;
	assert_false(naming_timestamp_valid("2025-02-30-000000", &t));
	assert_int_equal(t, 1234);
	set_tz("UTC");
}

/* ---- naming_file / naming_parse ---- */

static const struct {
	enum compression c;
	bool encrypted;
	const char *suffix;
} suffix_cases[] = {
	{ COMPRESSION_GZIP, true, ".tar.gz.gpg" },  { COMPRESSION_GZIP, false, ".tar.gz" },
	{ COMPRESSION_ZSTD, true, ".tar.zst.gpg" }, { COMPRESSION_ZSTD, false, ".tar.zst" },
	{ COMPRESSION_NONE, true, ".tar.gpg" },	    { COMPRESSION_NONE, false, ".tar" },
};

static void test_suffix(void **state LB_UNUSED)
{
	for (size_t i = 0; i < ARRAY_SIZE(suffix_cases); i++)
		assert_string_equal(naming_suffix(suffix_cases[i].c, suffix_cases[i].encrypted),
				    suffix_cases[i].suffix);
}

/* age archives: their own suffixes, parsed back with their encryption. */
static void test_age_suffixes(void **state LB_UNUSED)
{
	static const struct {
		enum compression c;
		const char *suffix;
	} cases[] = { { COMPRESSION_GZIP, ".tar.gz.age" },
		      { COMPRESSION_ZSTD, ".tar.zst.age" },
		      { COMPRESSION_NONE, ".tar.age" } };

	set_tz("UTC");
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct backup_id id = { .compression = cases[i].c, .encryption = ENCRYPTION_AGE };
		assert_string_equal(naming_suffix_enc(cases[i].c, ENCRYPTION_AGE), cases[i].suffix);
		snprintf(id.timestamp, sizeof(id.timestamp), "%s", "2025-03-04-050607");
		char *file = naming_file("app", &id);
		struct backup_id got;
		assert_true(naming_parse("app", file, &got));
		assert_int_equal(got.encryption, ENCRYPTION_AGE);
		assert_true(got.encrypted);
		assert_int_equal(got.compression, cases[i].c);
		free(file);
	}
	/* A signature beside an archive is not an archive. */
	struct backup_id got;
	assert_false(naming_parse("app", "app-2025-03-04-050607.tar.gz.age.sig", &got));
	assert_false(naming_parse("app", "app-2025-03-04-050607.tar.gz.gpg.sig", &got));
}

static void test_file_parse_roundtrip(void **state LB_UNUSED)
{
	static const char *const names[] = { "test", "myapp-production", "a", "x.y_z-1",
					     "2025-01-01-000000" };

	set_tz("UTC");
	for (size_t n = 0; n < ARRAY_SIZE(names); n++) {
		for (size_t i = 0; i < ARRAY_SIZE(suffix_cases); i++) {
			struct backup_id id = { .compression = suffix_cases[i].c,
						.encrypted = suffix_cases[i].encrypted };
			char want[256];

			snprintf(id.timestamp, sizeof(id.timestamp), "%s", "2025-03-04-050607");
			char *file = naming_file(names[n], &id);
			snprintf(want, sizeof(want), "%s-2025-03-04-050607%s", names[n],
				 suffix_cases[i].suffix);
			assert_string_equal(file, want);

			struct backup_id got;
			memset(&got, 0xaa, sizeof(got));
			if (!naming_parse(names[n], file, &got))
				fail_msg("naming_parse('%s', '%s') failed", names[n], file);
			assert_string_equal(got.timestamp, "2025-03-04-050607");
			assert_int_equal(got.compression, suffix_cases[i].c);
			assert_int_equal(got.encrypted, suffix_cases[i].encrypted);
			time_t t;
			assert_true(naming_timestamp_valid("2025-03-04-050607", &t));
			assert_int_equal(got.time, t);
			free(file);
		}
	}

	/* The parsed time follows TZ. */
	struct backup_id got;
	set_tz("Asia/Tokyo");
	assert_true(naming_parse("test", "test-2023-11-15-071320.tar.gz.gpg", &got));
	assert_int_equal(got.time, 1700000000);
	set_tz("UTC");
	assert_true(naming_parse("test", "test-2023-11-14-221320.tar.gz.gpg", &got));
	assert_int_equal(got.time, 1700000000);
}

static void test_parse_rejects(void **state LB_UNUSED)
{
	static const struct {
		const char *name, *file;
	} bad[] = {
		{ "test", "test2-2025-03-04-050607.tar.gz.gpg" },
		{ "test", "tes-2025-03-04-050607.tar.gz.gpg" },
		{ "test", "TEST-2025-03-04-050607.tar.gz.gpg" },
		{ "test", "test-2025-03-04-050607.tar.gz.gpg.partial" },
		{ "test", "test-2025-03-04-050607.tar.gz.partial" },
		{ "test", "test-2025-03-04-050607.tar.gz~" },
		{ "test", "test-2025-03-04-050607.tar.bz2" },
		{ "test", "test-2025-03-04-050607.zip" },
		{ "test", "test-2025-03-04-050607.gpg" },
		{ "test", "test-2025-03-04-050607.tar.gz.gpg.sig" },
		{ "test", "test-2025-03-04-050607" },
		{ "test", "test-2025-03-04-050607." },
		{ "test", "test-2025-03-04-050607x.tar.gz" },
		{ "test", "test-2025-03-04-0506.tar.gz" },
		{ "test", "test-2025-02-30-050607.tar.gz" },
		{ "test", "test-2025-13-04-050607.tar.gz" },
		{ "test", "test-2025-03-04-250607.tar.gz" },
		{ "test", "test_2025-03-04-050607.tar.gz" },
		{ "test", "test--2025-03-04-050607.tar.gz" },
		{ "test", ".test-2025-03-04-050607.tar.gz.gpg.partial" },
		{ "test", ".test-2025-03-04-050607.tar.gz.gpg" },
		{ "test", "test-prod-2025-03-04-050607.tar.gz.gpg" },
		{ "test", "test-.tar.gz" },
		{ "test", "test-" },
		{ "test", "test" },
		{ "test", "" },
		{ "test-prod", "test-2025-03-04-050607.tar.gz.gpg" },
		{ "test-prod", "test-prod2-2025-03-04-050607.tar.gz.gpg" },
	};

	set_tz("UTC");
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct backup_id id;
		if (naming_parse(bad[i].name, bad[i].file, &id))
			fail_msg("naming_parse('%s', '%s') accepted a foreign name", bad[i].name,
				 bad[i].file);
	}

	/* ...while the names that are ours do parse. */
	struct backup_id id;
	assert_true(naming_parse("test-prod", "test-prod-2025-03-04-050607.tar.gz.gpg", &id));
	assert_string_equal(id.timestamp, "2025-03-04-050607");
	assert_true(naming_parse("test", "test-2024-02-29-000000.tar", &id));
	assert_int_equal(id.compression, COMPRESSION_NONE);
	assert_false(id.encrypted);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timestamp_utc),
		cmocka_unit_test(test_timestamp_zones),
		cmocka_unit_test(test_timestamp_valid_good),
		cmocka_unit_test(test_timestamp_valid_bad),
		cmocka_unit_test(test_timestamp_valid_time),
		cmocka_unit_test(test_suffix),
		cmocka_unit_test(test_age_suffixes),
		cmocka_unit_test(test_file_parse_roundtrip),
		cmocka_unit_test(test_parse_rejects),
	};

	return cmocka_run_group_tests_name("naming", tests, NULL, NULL);
}

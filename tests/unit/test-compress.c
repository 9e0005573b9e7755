/* Unit tests for compress.c: compression names and levels, and the cgroup CPU quota parsers. */
#include "unit.h"

#include <sched.h>

#include "compress.h"

static void test_names(void **state LB_UNUSED)
{
	enum compression c = COMPRESSION_NONE;

	assert_string_equal(compression_name(COMPRESSION_GZIP), "gzip");
	assert_string_equal(compression_name(COMPRESSION_ZSTD), "zstd");
	assert_string_equal(compression_name(COMPRESSION_NONE), "none");
	assert_string_equal(compression_name((enum compression)99), "none");
	assert_true(compression_parse("gzip", &c));
	assert_int_equal(c, COMPRESSION_GZIP);
	assert_true(compression_parse("ZStd", &c));
	assert_int_equal(c, COMPRESSION_ZSTD);
	assert_true(compression_parse("NONE", &c));
	assert_int_equal(c, COMPRESSION_NONE);
	c = COMPRESSION_GZIP;
	static const char *const bad[] = { "", "gz", "zst", "xz", "gzip ", " none", "bzip2" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_false(compression_parse(bad[i], &c));
	assert_int_equal(c, COMPRESSION_GZIP);
}

static void test_levels(void **state LB_UNUSED)
{
	int lo, hi;

	assert_int_equal(compression_default_level(COMPRESSION_GZIP), 6);
	assert_int_equal(compression_default_level(COMPRESSION_ZSTD), 3);
	assert_int_equal(compression_default_level(COMPRESSION_NONE), 0);
	compression_level_range(COMPRESSION_GZIP, &lo, &hi);
	assert_int_equal(lo, 1);
	assert_int_equal(hi, 9);
	compression_level_range(COMPRESSION_ZSTD, &lo, &hi);
	assert_int_equal(lo, 1);
	assert_int_equal(hi, 19);
	compression_level_range(COMPRESSION_NONE, &lo, &hi);
	assert_int_equal(lo, 0);
	assert_int_equal(hi, 0);
	/* Every default lies in its range. */
	for (int c = COMPRESSION_GZIP; c <= COMPRESSION_NONE; c++) {
		compression_level_range((enum compression)c, &lo, &hi);
		int d = compression_default_level((enum compression)c);
		assert_true(d >= lo && d <= hi);
	}
}

/* cgroup v2 cpu.max: "QUOTA PERIOD" in microseconds, QUOTA "max" when unlimited. */
static void test_cpu_max(void **state LB_UNUSED)
{
	assert_int_equal(compress_parse_cpu_max("max 100000\n"), 0);
	assert_int_equal(compress_parse_cpu_max("max\n"), 0);
	assert_int_equal(compress_parse_cpu_max("100000 100000\n"), 1);
	assert_int_equal(compress_parse_cpu_max("200000 100000\n"), 2);
	assert_int_equal(compress_parse_cpu_max("150000 100000"), 2); /* --cpus=1.5 */
	assert_int_equal(compress_parse_cpu_max("50000 100000"), 1);  /* --cpus=0.5 */
	assert_int_equal(compress_parse_cpu_max("1000 100000"), 1);
	assert_int_equal(compress_parse_cpu_max("400000 50000\n"), 8);
	assert_int_equal(compress_parse_cpu_max("  300000   100000\n"), 3);
	/* Capped: a quota of a million CPUs is still a sane thread count. */
	assert_int_equal(compress_parse_cpu_max("100000000000 1000"), 4096);
	/* Unreadable: no limit rather than a wrong one. */
	assert_int_equal(compress_parse_cpu_max(""), 0);
	assert_int_equal(compress_parse_cpu_max("junk"), 0);
	assert_int_equal(compress_parse_cpu_max("-1 100000"), 0);
	assert_int_equal(compress_parse_cpu_max("0 100000"), 0);
	assert_int_equal(compress_parse_cpu_max("100000 0"), 0);
	assert_int_equal(compress_parse_cpu_max("100000 -5"), 0);
	assert_int_equal(compress_parse_cpu_max("1e5 100000"), 0);
	assert_int_equal(compress_parse_cpu_max("150000x 100000"), 0);
	assert_int_equal(compress_parse_cpu_max("99999999999999999999999 100000"), 0);
	assert_int_equal(compress_parse_cpu_max("150000"), 0);
}

static void test_cgroup_v1_and_precedence(void **state LB_UNUSED)
{
	/* v1: cpu.cfs_quota_us (-1: unlimited) over cpu.cfs_period_us. */
	assert_int_equal(compress_cgroup_cpus(NULL, "-1\n", "100000\n"), 0);
	assert_int_equal(compress_cgroup_cpus(NULL, "150000\n", "100000\n"), 2);
	assert_int_equal(compress_cgroup_cpus(NULL, "400000\n", "100000\n"), 4);
	assert_int_equal(compress_cgroup_cpus(NULL, "50000\n", "100000\n"), 1);
	assert_int_equal(compress_cgroup_cpus(NULL, "100000\n", "0\n"), 0);
	assert_int_equal(compress_cgroup_cpus(NULL, "junk\n", "100000\n"), 0);
	/* One of the two v1 files missing: no limit. */
	assert_int_equal(compress_cgroup_cpus(NULL, "150000\n", NULL), 0);
	assert_int_equal(compress_cgroup_cpus(NULL, NULL, "100000\n"), 0);
	assert_int_equal(compress_cgroup_cpus(NULL, NULL, NULL), 0);
	/* v2 wins when present, even when it says unlimited. */
	assert_int_equal(compress_cgroup_cpus("300000 100000\n", "100000\n", "100000\n"), 3);
	assert_int_equal(compress_cgroup_cpus("max 100000\n", "100000\n", "100000\n"), 0);
	assert_int_equal(compress_cgroup_cpus("200000 100000\n", NULL, NULL), 2);
}

static void test_available_cpus(void **state LB_UNUSED)
{
	cpu_set_t set;
	unsigned n = compress_available_cpus();

	assert_true(n >= 1);
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		assert_true(n <= (unsigned)CPU_COUNT(&set));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_cpu_max),
		cmocka_unit_test(test_cgroup_v1_and_precedence),
		cmocka_unit_test(test_available_cpus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

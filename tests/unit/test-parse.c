/* Unit tests for parse.c: the pure value parsers (every configuration variable), format_size. */
#include "unit.h"

#include "parse.h"

/* The one number parser and the port parser that every numeric variable goes through. */
static void test_number_parsers(void **state LB_UNUSED)
{
	static const struct {
		const char *s;
		int r;
		uint64_t v;
	} whole[] = {
		{ "0", 0, 0 },
		{ "6", 0, 6 },
		{ "007", 0, 7 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -ERANGE, 0 },
		{ "", -EINVAL, 0 },
		{ " 6", -EINVAL, 0 },
		{ "6 ", -EINVAL, 0 },
		{ "\t6", -EINVAL, 0 },
		{ "+6", -EINVAL, 0 },
		{ "-6", -EINVAL, 0 },
		{ "6x", -EINVAL, 0 },
		{ "0x10", -EINVAL, 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(whole); i++) {
		uint64_t v = 12345;
		int r = parse_decimal(whole[i].s, &v, NULL);
		if (r != whole[i].r)
			fail_msg("parse_decimal('%s') = %d, expected %d", whole[i].s, r,
				 whole[i].r);
		assert_int_equal(v, r ? 12345 : whole[i].v);
	}
	/* With a unit after the digits. */
	const char *end;
	uint64_t v;
	assert_int_equal(parse_decimal("16M", &v, &end), 0);
	assert_int_equal(v, 16);
	assert_string_equal(end, "M");
	assert_int_equal(parse_decimal("M", &v, &end), -EINVAL);
	assert_int_equal(parse_decimal(" 16M", &v, &end), -EINVAL);

	static const struct {
		const char *s;
		int port;
	} ports[] = {
		{ "1", 1 },	      { "80", 80 },	     { "65535", 65535 },
		{ "0", -EINVAL },     { "00000", -EINVAL },  { "65536", -EINVAL },
		{ "99999", -EINVAL }, { "123456", -EINVAL }, { "", -EINVAL },
		{ " 80", -EINVAL },   { "8a", -EINVAL },     { "+80", -EINVAL },
	};
	for (size_t i = 0; i < ARRAY_SIZE(ports); i++)
		if (parse_port(ports[i].s, strlen(ports[i].s)) != ports[i].port)
			fail_msg("parse_port('%s') != %d", ports[i].s, ports[i].port);
}

/* S3's bucket naming rules. */
static void test_bucket_names(void **state LB_UNUSED)
{
	static const char *const good[] = {
		"abc",
		"my-bucket",
		"my.bucket.2",
		"0bucket9",
		"a-b.c-d",
		"b123456789012345678901234567890123456789012345678901234567890bb", /* 63 */
		"1.2.3",
		"192.168.5.4.example",
	};
	static const char *const bad[] = {
		"ab",
		"b1234567890123456789012345678901234567890123456789012345678901bb", /* 64 */
		"My-Bucket",
		"my_bucket",
		"-bucket",
		"bucket-",
		".bucket",
		"bucket.",
		"my..bucket",
		"192.168.5.4",
		"xn--bucket",
		"sthree-bucket",
		"bucket-s3alias",
		"bucket--ol-s3",
		"s3://bucket",
		"bucket/path",
		"my bucket",
		"",
	};
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		if (!parse_bucket_valid(good[i]))
			fail_msg("bucket '%s' refused", good[i]);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (parse_bucket_valid(bad[i]))
			fail_msg("bucket '%s' accepted", bad[i]);
}

/* The host and port of http(s) URLs (S3 endpoint, webhooks). */
static void test_url_check(void **state LB_UNUSED)
{
	static const struct {
		const char *url;
		int r;
	} cases[] = {
		{ "http://h", 0 },
		{ "https://h:1/x", 0 },
		{ "HTTPS://hooks.example.com:65535/a?b=c", 0 },
		{ "https://user:pw@h/x", 0 },
		{ "http://[::1]:9000", 0 },
		{ "http://[::1]", 0 },
		{ "http://h/x@y", 0 },
		{ "http:///x", -ENOENT },
		{ "http://", -ENOENT },
		{ "http://:80/x", -ENOENT },
		{ "https://user@/x", -ENOENT },
		{ "http://[]:80", -ENOENT },
		{ "http://[::1]x", -ENOENT },
		{ "ftp://h", -ENOENT },
		{ "http://h:0/x", -ERANGE },
		{ "http://h:65536", -ERANGE },
		{ "http://h:/x", -ERANGE },
		{ "http://h:http/x", -ERANGE },
		{ "http://h: 80/x", -ERANGE },
		{ "http://[::1]:0", -ERANGE },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (parse_url_check(cases[i].url) != cases[i].r)
			fail_msg("parse_url_check('%s') != %d", cases[i].url, cases[i].r);
}

/* Sizes: bytes, or k/m/g (powers of 1024, with or without "iB"), case-insensitive. */
static void test_size(void **state LB_UNUSED)
{
	static const struct {
		const char *s;
		int r;
		uint64_t v;
	} cases[] = {
		{ "0", 0, 0 },
		{ "5242880", 0, 5242880 },
		{ "16M", 0, 16ull << 20 },
		{ "16m", 0, 16ull << 20 },
		{ "16MiB", 0, 16ull << 20 },
		{ "1k", 0, 1024 },
		{ "2KiB", 0, 2048 },
		{ "5G", 0, 5ull << 30 },
		{ "5gib", 0, 5ull << 30 },
		{ "16MB", -EINVAL, 0 },
		{ "16T", -EINVAL, 0 },
		{ "M", -EINVAL, 0 },
		{ "", -EINVAL, 0 },
		{ " 16M", -EINVAL, 0 },
		{ "16 M", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
		{ "17179869184G", -EINVAL, 0 }, /* 2^64 bytes */
		{ "18446744073709551616", -EINVAL, 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t v = 7;
		int r = parse_size(cases[i].s, &v);
		if (r != cases[i].r || (!r && v != cases[i].v))
			fail_msg("parse_size('%s') = %d, %llu", cases[i].s, r,
				 (unsigned long long)v);
		if (r)
			assert_int_equal(v, 7);
	}
}

/* Durations: seconds, or with s, m or h; from `min` to 7 days. */
static void test_duration(void **state LB_UNUSED)
{
	static const struct {
		const char *s;
		unsigned min;
		int r;
		unsigned v;
	} cases[] = {
		{ "0", 0, 0, 0 },
		{ "90", 0, 0, 90 },
		{ "90s", 0, 0, 90 },
		{ "30m", 0, 0, 1800 },
		{ "2h", 0, 0, 7200 },
		{ "604800", 0, 0, 604800 },
		{ "10080m", 0, 0, 604800 },
		{ "168h", 0, 0, 604800 },
		{ "604801", 0, -EINVAL, 0 },
		{ "169h", 0, -EINVAL, 0 },
		{ "0", 1, -EINVAL, 0 },
		{ "0m", 1, -EINVAL, 0 },
		{ "1", 1, 0, 1 },
		{ "1d", 0, -EINVAL, 0 },
		{ "1M", 0, -EINVAL, 0 },
		{ "m", 0, -EINVAL, 0 },
		{ "", 0, -EINVAL, 0 },
		{ " 1", 0, -EINVAL, 0 },
		{ "1ms", 0, -EINVAL, 0 },
		{ "99999999999999999999", 0, -EINVAL, 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		unsigned v = 7;
		int r = parse_duration(cases[i].s, cases[i].min, &v);
		if (r != cases[i].r || v != (r ? 7 : cases[i].v))
			fail_msg("parse_duration('%s', %u) = %d, %u", cases[i].s, cases[i].min, r,
				 v);
	}
}

/* Listen addresses: HOST:PORT with an IPv4 host, :PORT, or PORT. */
static void test_listen_addr(void **state LB_UNUSED)
{
	static const char *const good[] = { "127.0.0.1:9090", "0.0.0.0:1", ":9090", "9090",
					    "10.1.2.3:65535" };
	static const char *const bad[] = { "localhost:9090",
					   "[::1]:9090",
					   "::1:9090",
					   "1.2.3.4",
					   "1.2.3.4:",
					   ":",
					   "",
					   ":0",
					   "1.2.3.4:65536",
					   "1.2.3.4:90a",
					   "111.222.333.444:80",
					   "1234567890123456789:80" };
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		if (parse_listen_addr(good[i]) != 0)
			fail_msg("listen address '%s' refused", good[i]);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (parse_listen_addr(bad[i]) != -EINVAL)
			fail_msg("listen address '%s' accepted", bad[i]);
}

/* S3 endpoints: a scheme and an authority, at most one trailing '/'. */
static void test_endpoint(void **state LB_UNUSED)
{
	static const char *const good[] = { "https://s3.example.com", "http://minio:9000",
					    "http://127.0.0.1:9000/", "https://[::1]:9000",
					    "https://my_host.example" };
	static const char *const bad[] = { "s3.example.com", "ftp://h",	   "https://",
					   "https://:9000",  "https:///x", "https://h/path",
					   "https://h//",    "HTTPS://h",  "https://h?x=1",
					   "https://user@h" };
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		if (!parse_endpoint_valid(good[i]))
			fail_msg("endpoint '%s' refused", good[i]);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		if (parse_endpoint_valid(bad[i]))
			fail_msg("endpoint '%s' accepted", bad[i]);
}

static void test_name_valid(void **state LB_UNUSED)
{
	assert_true(parse_name_valid("data"));
	assert_true(parse_name_valid("..."));
	assert_false(parse_name_valid(""));
	assert_false(parse_name_valid("."));
	assert_false(parse_name_valid(".."));
	assert_false(parse_name_valid("a/b"));
}

/* Paths: ".." components, containment, and normalization in place. */
static void test_paths(void **state LB_UNUSED)
{
	assert_true(path_has_dotdot(".."));
	assert_true(path_has_dotdot("/a/../b"));
	assert_true(path_has_dotdot("/a/.."));
	assert_true(path_has_dotdot("../a"));
	assert_false(path_has_dotdot("/a/..b/c"));
	assert_false(path_has_dotdot("/a/b../c"));
	assert_false(path_has_dotdot("/a/.../c"));

	assert_true(path_within("/data", "/data"));
	assert_true(path_within("/data/x", "/data"));
	assert_true(path_within("/anything", "/"));
	assert_false(path_within("/database", "/data"));
	assert_false(path_within("/dat", "/data"));

	static const struct {
		const char *in, *out;
	} norm[] = {
		{ "/", "/" },	      { "//", "/" },	    { "/a/", "/a" },
		{ "/a//b", "/a/b" },  { "/a/./b", "/a/b" }, { "/./a/.", "/a" },
		{ "/a/.b", "/a/.b" }, { "/a/b/", "/a/b" },  { "///a///", "/a" },
		{ "/a/..", "/a/.." },
	};
	for (size_t i = 0; i < ARRAY_SIZE(norm); i++) {
		char buf[64];
		snprintf(buf, sizeof(buf), "%s", norm[i].in);
		path_normalize(buf);
		if (strcmp(buf, norm[i].out))
			fail_msg("path_normalize('%s') = '%s', expected '%s'", norm[i].in, buf,
				 norm[i].out);
	}
}

/* The boolean words in any case; near misses rejected. */
static void test_parse_bool(void **state LB_UNUSED)
{
	static const char *const yes[] = { "1", "true", "yes", "on", "TRUE", "True", "YES", "On" };
	static const char *const no[] = { "0", "false", "no", "off", "FALSE", "No", "OFF", "" };
	static const char *const bad[] = { "maybe", "2", "tru", "truee", " true",  "true ",
					   "y",	    "n", "-1",	"10",	 "enable", "nope" };
	bool b;

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		b = false;
		assert_int_equal(parse_bool(yes[i], &b), 0);
		assert_true(b);
	}
	for (size_t i = 0; i < ARRAY_SIZE(no); i++) {
		b = true;
		assert_int_equal(parse_bool(no[i], &b), 0);
		assert_false(b);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (parse_bool(bad[i], &b) != -EINVAL)
			fail_msg("parse_bool('%s') accepted an invalid word", bad[i]);
	}
}

/* format_size: whole bytes, then one decimal from KiB to TiB; a short buffer truncates. */
static void test_format_size(void **state LB_UNUSED)
{
	static const struct {
		uint64_t bytes;
		const char *want;
	} cases[] = {
		{ 0, "0 B" },
		{ 1, "1 B" },
		{ 1023, "1023 B" },
		{ 1024, "1.0 KiB" },
		{ 1536, "1.5 KiB" },
		{ 10 * 1024 + 512, "10.5 KiB" },
		{ 1024 * 1024, "1.0 MiB" },
		{ 3 * 1024 * 1024 / 2, "1.5 MiB" },
		{ 1024ULL * 1024 * 1024, "1.0 GiB" },
		{ 3ULL * 1024 * 1024 * 1024 / 2, "1.5 GiB" },
		{ 1024ULL * 1024 * 1024 * 1024, "1.0 TiB" },
		{ 2048ULL * 1024 * 1024 * 1024 * 1024, "2048.0 TiB" },
		{ UINT64_MAX, "16777216.0 TiB" },
	};
	char buf[32];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *r = format_size(cases[i].bytes, buf, sizeof(buf));
		assert_ptr_equal(r, buf);
		assert_string_equal(buf, cases[i].want);
	}

	/* A short buffer is truncated, still NUL-terminated. */
	char small[4];
	format_size(1536, small, sizeof(small));
	assert_string_equal(small, "1.5");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_number_parsers), cmocka_unit_test(test_bucket_names),
		cmocka_unit_test(test_url_check),      cmocka_unit_test(test_size),
		cmocka_unit_test(test_duration),       cmocka_unit_test(test_listen_addr),
		cmocka_unit_test(test_endpoint),       cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_paths),	       cmocka_unit_test(test_parse_bool),
		cmocka_unit_test(test_format_size),
	};

	return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}

/*
 * Unit tests for sigv4.c. The vectors are data from AWS's published Signature
 * Version 4 test suite (https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html,
 * region us-east-1, service "service", 20150830T123600Z, key AKIDEXAMPLE) and
 * the S3 examples of "Authenticating Requests: Using the Authorization Header"
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html).
 */
#include "unit.h"

#include "sigv4.h"
#include "strbuf.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SUITE_DATE   "20150830T123600Z"

static const struct sigv4_key suite_key = {
	.access_key = "AKIDEXAMPLE",
	.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	.region = "us-east-1",
	.service = "service",
};

static const struct sigv4_key s3_key = {
	.access_key = "AKIAIOSFODNN7EXAMPLE",
	.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	.region = "us-east-1",
	.service = "s3",
};

static void expect_auth(const struct sigv4_request *r, const struct sigv4_key *k, const char *date,
			const char *signed_headers, const char *sig)
{
	struct strbuf out = STRBUF_INIT, want = STRBUF_INIT;

	sigv4_authorization(r, k, date, &out);
	strbuf_addf(&want,
		    "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request, SignedHeaders=%s, "
		    "Signature=%s",
		    k->access_key, date, k->region, k->service, signed_headers, sig);
	if (strcmp(out.buf, want.buf))
		fail_msg("got  %s\nwant %s", out.buf, want.buf);
	strbuf_release(&out);
	strbuf_release(&want);
}

static const struct sigv4_kv suite_headers[] = {
	{ "Host", "example.amazonaws.com" },
	{ "X-Amz-Date", SUITE_DATE },
};

static void test_get_vanilla(void **state LB_UNUSED)
{
	struct sigv4_request r = { .method = "GET",
				   .path = "/",
				   .headers = suite_headers,
				   .nr_headers = 2,
				   .payload_hash = EMPTY_SHA256 };
	expect_auth(&r, &suite_key, SUITE_DATE, "host;x-amz-date",
		    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

static void test_post_vanilla(void **state LB_UNUSED)
{
	struct sigv4_request r = { .method = "POST",
				   .path = "/",
				   .headers = suite_headers,
				   .nr_headers = 2,
				   .payload_hash = EMPTY_SHA256 };
	expect_auth(&r, &suite_key, SUITE_DATE, "host;x-amz-date",
		    "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

static void test_get_vanilla_query_order_key_case(void **state LB_UNUSED)
{
	const struct sigv4_kv q[] = { { "Param2", "value2" }, { "Param1", "value1" } };
	struct sigv4_request r = { .method = "GET",
				   .path = "/",
				   .query = q,
				   .nr_query = 2,
				   .headers = suite_headers,
				   .nr_headers = 2,
				   .payload_hash = EMPTY_SHA256 };
	struct strbuf creq = STRBUF_INIT, sh = STRBUF_INIT;

	sigv4_canonical_request(&r, &creq, &sh);
	assert_string_equal(creq.buf, "GET\n/\nParam1=value1&Param2=value2\n"
				      "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
				      "host;x-amz-date\n" EMPTY_SHA256);
	strbuf_release(&creq);
	strbuf_release(&sh);
	expect_auth(&r, &suite_key, SUITE_DATE, "host;x-amz-date",
		    "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

static void test_get_vanilla_utf8_query(void **state LB_UNUSED)
{
	const struct sigv4_kv q[] = { { "\xe1\x88\xb4", "bar" } };
	struct sigv4_request r = { .method = "GET",
				   .path = "/",
				   .query = q,
				   .nr_query = 1,
				   .headers = suite_headers,
				   .nr_headers = 2,
				   .payload_hash = EMPTY_SHA256 };
	expect_auth(&r, &suite_key, SUITE_DATE, "host;x-amz-date",
		    "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");
}

#define UNRESERVED "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

static void test_get_vanilla_query_unreserved(void **state LB_UNUSED)
{
	const struct sigv4_kv q[] = { { UNRESERVED, UNRESERVED } };
	struct sigv4_request r = { .method = "GET",
				   .path = "/",
				   .query = q,
				   .nr_query = 1,
				   .headers = suite_headers,
				   .nr_headers = 2,
				   .payload_hash = EMPTY_SHA256 };
	expect_auth(&r, &suite_key, SUITE_DATE, "host;x-amz-date",
		    "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197");
}

static void test_get_unreserved(void **state LB_UNUSED)
{
	struct sigv4_request r = { .method = "GET",
				   .path = "/" UNRESERVED,
				   .headers = suite_headers,
				   .nr_headers = 2,
				   .payload_hash = EMPTY_SHA256 };
	expect_auth(&r, &suite_key, SUITE_DATE, "host;x-amz-date",
		    "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
}

static void test_get_header_value_trim(void **state LB_UNUSED)
{
	const struct sigv4_kv h[] = {
		{ "Host", "example.amazonaws.com" },
		{ "My-Header1", " value1" },
		{ "My-Header2", "\"a   b   c\"" },
		{ "X-Amz-Date", SUITE_DATE },
	};
	struct sigv4_request r = { .method = "GET",
				   .path = "/",
				   .headers = h,
				   .nr_headers = 4,
				   .payload_hash = EMPTY_SHA256 };
	expect_auth(&r, &suite_key, SUITE_DATE, "host;my-header1;my-header2;x-amz-date",
		    "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}

static void test_post_header_value_case(void **state LB_UNUSED)
{
	/* Header order given is not sorted: the signer sorts. */
	const struct sigv4_kv h[] = {
		{ "X-Amz-Date", SUITE_DATE },
		{ "My-Header1", "VALUE1" },
		{ "Host", "example.amazonaws.com" },
	};
	struct sigv4_request r = { .method = "POST",
				   .path = "/",
				   .headers = h,
				   .nr_headers = 3,
				   .payload_hash = EMPTY_SHA256 };
	expect_auth(&r, &suite_key, SUITE_DATE, "host;my-header1;x-amz-date",
		    "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d");
}

/* S3 documentation example: GET Object with a Range header. */
static void test_s3_get_object(void **state LB_UNUSED)
{
	const struct sigv4_kv h[] = {
		{ "Host", "examplebucket.s3.amazonaws.com" },
		{ "Range", "bytes=0-9" },
		{ "x-amz-content-sha256", EMPTY_SHA256 },
		{ "x-amz-date", "20130524T000000Z" },
	};
	struct sigv4_request r = { .method = "GET",
				   .path = "/test.txt",
				   .headers = h,
				   .nr_headers = 4,
				   .payload_hash = EMPTY_SHA256 };
	expect_auth(&r, &s3_key, "20130524T000000Z", "host;range;x-amz-content-sha256;x-amz-date",
		    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

/* S3 documentation example: PUT Object, a '$' in the key, a storage class header. */
static void test_s3_put_object(void **state LB_UNUSED)
{
	const char *body = "Welcome to Amazon S3.";
	char hash[65];
	sigv4_sha256_hex(body, strlen(body), hash);
	assert_string_equal(hash,
			    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	const struct sigv4_kv h[] = {
		{ "Host", "examplebucket.s3.amazonaws.com" },
		{ "Date", "Fri, 24 May 2013 00:00:00 GMT" },
		{ "x-amz-date", "20130524T000000Z" },
		{ "x-amz-storage-class", "REDUCED_REDUNDANCY" },
		{ "x-amz-content-sha256", hash },
	};
	struct sigv4_request r = { .method = "PUT",
				   .path = "/test$file.text",
				   .headers = h,
				   .nr_headers = 5,
				   .payload_hash = hash };
	expect_auth(&r, &s3_key, "20130524T000000Z",
		    "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
		    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

/* S3 documentation example: GET Bucket (list objects) with query parameters. */
static void test_s3_list_objects(void **state LB_UNUSED)
{
	const struct sigv4_kv q[] = { { "prefix", "J" }, { "max-keys", "2" } };
	const struct sigv4_kv h[] = {
		{ "Host", "examplebucket.s3.amazonaws.com" },
		{ "x-amz-content-sha256", EMPTY_SHA256 },
		{ "x-amz-date", "20130524T000000Z" },
	};
	struct sigv4_request r = { .method = "GET",
				   .path = "/",
				   .query = q,
				   .nr_query = 2,
				   .headers = h,
				   .nr_headers = 3,
				   .payload_hash = EMPTY_SHA256 };
	expect_auth(&r, &s3_key, "20130524T000000Z", "host;x-amz-content-sha256;x-amz-date",
		    "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

/* S3 documentation example: a query parameter without a value (?lifecycle). */
static void test_s3_get_lifecycle(void **state LB_UNUSED)
{
	const struct sigv4_kv q[] = { { "lifecycle", "" } };
	const struct sigv4_kv h[] = {
		{ "Host", "examplebucket.s3.amazonaws.com" },
		{ "x-amz-content-sha256", EMPTY_SHA256 },
		{ "x-amz-date", "20130524T000000Z" },
	};
	struct sigv4_request r = { .method = "GET",
				   .path = "/",
				   .query = q,
				   .nr_query = 1,
				   .headers = h,
				   .nr_headers = 3,
				   .payload_hash = EMPTY_SHA256 };
	expect_auth(&r, &s3_key, "20130524T000000Z", "host;x-amz-content-sha256;x-amz-date",
		    "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

/* ---- encoding of odd keys ---- */

static void expect_encode(const char *in, bool keep_slash, const char *want)
{
	struct strbuf sb = STRBUF_INIT;
	sigv4_uri_encode(&sb, in, keep_slash);
	if (strcmp(sb.buf, want))
		fail_msg("encode('%s', %d): got '%s', want '%s'", in, keep_slash, sb.buf, want);
	strbuf_release(&sb);
}

static void test_uri_encode(void **state LB_UNUSED)
{
	expect_encode("a b", false, "a%20b");
	expect_encode("a+b", false, "a%2Bb");
	expect_encode("a/b", false, "a%2Fb");
	expect_encode("a/b", true, "a/b");
	expect_encode("/name/name-2024 x+y.tar.gz.gpg", true, "/name/name-2024%20x%2By.tar.gz.gpg");
	expect_encode("caf\xc3\xa9", false, "caf%C3%A9");
	expect_encode("~-._", false, "~-._");
	expect_encode("a=b&c", false, "a%3Db%26c");
	expect_encode("*", false, "%2A");
	expect_encode("%", false, "%25");
	expect_encode("", false, "");
}

static void test_canonical_query(void **state LB_UNUSED)
{
	/* Sorted by the encoded name; '/' and '+' and spaces encoded in values. */
	const struct sigv4_kv q[] = {
		{ "prefix", "my name/" },
		{ "list-type", "2" },
		{ "continuation-token", "1/a+b==" },
		{ "uploads", "" },
		{ "\xc3\xa9t\xc3\xa9", "x y" },
		{ "Z", "1" },
	};
	struct strbuf sb = STRBUF_INIT;
	sigv4_canonical_query(&sb, q, ARRAY_SIZE(q));
	assert_string_equal(sb.buf, "%C3%A9t%C3%A9=x%20y&Z=1&continuation-token=1%2Fa%2Bb%3D%3D&"
				    "list-type=2&prefix=my%20name%2F&uploads=");
	strbuf_release(&sb);
	strbuf_reset(&sb);
	sigv4_canonical_query(&sb, NULL, 0);
	assert_string_equal(sb.buf, "");
	strbuf_release(&sb);
}

static void test_date(void **state LB_UNUSED)
{
	char out[SIGV4_DATE_LEN + 1];
	sigv4_date(1440938160, out);
	assert_string_equal(out, SUITE_DATE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_vanilla),
		cmocka_unit_test(test_post_vanilla),
		cmocka_unit_test(test_get_vanilla_query_order_key_case),
		cmocka_unit_test(test_get_vanilla_utf8_query),
		cmocka_unit_test(test_get_vanilla_query_unreserved),
		cmocka_unit_test(test_get_unreserved),
		cmocka_unit_test(test_get_header_value_trim),
		cmocka_unit_test(test_post_header_value_case),
		cmocka_unit_test(test_s3_get_object),
		cmocka_unit_test(test_s3_put_object),
		cmocka_unit_test(test_s3_list_objects),
		cmocka_unit_test(test_s3_get_lifecycle),
		cmocka_unit_test(test_uri_encode),
		cmocka_unit_test(test_canonical_query),
		cmocka_unit_test(test_date),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

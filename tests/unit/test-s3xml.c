/* Unit tests for s3xml.c (ListObjectsV2 pages, uploads, error bodies) and s3_part_size. */
#include "unit.h"

#include "stores/s3.h"
#include "stores/s3xml.h"
#include "strbuf.h"

static void test_list_page(void **state LB_UNUSED)
{
	const char *xml =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Name>b</Name><Prefix>app/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>"
		"<IsTruncated>false</IsTruncated>"
		"<Contents><Key>app/app-2024-01-02-030405.tar.gz.gpg</Key>"
		"<LastModified>2024-01-02T03:04:06.000Z</LastModified>"
		"<ETag>&quot;abc&quot;</ETag><Size>12345678901</Size>"
		"<StorageClass>STANDARD</StorageClass></Contents>"
		"<Contents><Key>app/a &amp; b &lt;c&gt; "
		"&#233;&#x1F600;</Key><Size>0</Size></Contents>"
		"</ListBucketResult>";
	struct s3xml_page p;

	assert_int_equal(s3xml_parse_list(xml, strlen(xml), &p), 0);
	assert_int_equal(p.nr, 2);
	assert_string_equal(p.v[0].key, "app/app-2024-01-02-030405.tar.gz.gpg");
	assert_true(p.v[0].size == 12345678901ull);
	assert_string_equal(p.v[1].key, "app/a & b <c> \xc3\xa9\xf0\x9f\x98\x80");
	assert_int_equal(p.v[1].size, 0);
	assert_false(p.truncated);
	assert_null(p.next_token);
	s3xml_page_release(&p);
}

/* A truncated page of 1,000 keys with a continuation token, then the last page. */
static void test_list_pagination(void **state LB_UNUSED)
{
	struct strbuf xml = STRBUF_INIT;
	struct s3xml_page p;
	size_t total = 0;

	for (int page = 0; page < 2; page++) {
		strbuf_reset(&xml);
		strbuf_addstr(&xml, "<ListBucketResult><Name>b</Name>");
		strbuf_addf(&xml, "<IsTruncated>%s</IsTruncated>", page ? "false" : "true");
		if (!page)
			strbuf_addstr(
				&xml,
				"<NextContinuationToken>1/a+b=&amp;=</NextContinuationToken>");
		int n = page ? 500 : 1000;
		for (int i = 0; i < n; i++)
			strbuf_addf(&xml,
				    "<Contents><Key>app/k%05d</Key><Size>%d</Size></Contents>",
				    page * 1000 + i, i);
		strbuf_addstr(&xml, "</ListBucketResult>");
		assert_int_equal(s3xml_parse_list(xml.buf, xml.len, &p), 0);
		assert_int_equal(p.nr, (size_t)n);
		assert_int_equal(p.truncated, page == 0);
		if (!page)
			assert_string_equal(p.next_token, "1/a+b=&=");
		else
			assert_null(p.next_token);
		char want[32];
		snprintf(want, sizeof(want), "app/k%05d", page * 1000 + n - 1);
		assert_string_equal(p.v[n - 1].key, want);
		assert_int_equal(p.v[n - 1].size, n - 1);
		total += p.nr;
		s3xml_page_release(&p);
	}
	assert_int_equal(total, 1500);
	strbuf_release(&xml);
}

static void test_list_rejects(void **state LB_UNUSED)
{
	struct s3xml_page p;
	const char *err = "<Error><Code>AccessDenied</Code></Error>";
	const char *nokey =
		"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>";
	const char *empty = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";

	assert_int_equal(s3xml_parse_list(err, strlen(err), &p), -1);
	assert_int_equal(s3xml_parse_list(nokey, strlen(nokey), &p), -1);
	assert_int_equal(s3xml_parse_list("", 0, &p), -1);
	assert_int_equal(s3xml_parse_list(empty, strlen(empty), &p), 0);
	assert_int_equal(p.nr, 0);
	s3xml_page_release(&p);
	/* Cut in the middle (a capped body): the unfinished entry is not reported. */
	const char *cut = "<ListBucketResult><Contents><Key>a</Key></Contents><Contents><Key>b";
	assert_int_equal(s3xml_parse_list(cut, strlen(cut), &p), 0);
	assert_int_equal(p.nr, 1);
	s3xml_page_release(&p);
}

static void test_uploads(void **state LB_UNUSED)
{
	const char *xml = "<ListMultipartUploadsResult><Bucket>b</Bucket>"
			  "<IsTruncated>true</IsTruncated><NextKeyMarker>app/x</NextKeyMarker>"
			  "<NextUploadIdMarker>id2</NextUploadIdMarker>"
			  "<Upload><Key>app/x</Key><UploadId>id1</UploadId></Upload>"
			  "<Upload><Key>app/y</Key><UploadId>id2</UploadId></Upload>"
			  "</ListMultipartUploadsResult>";
	struct s3xml_page p;

	assert_int_equal(s3xml_parse_uploads(xml, strlen(xml), &p), 0);
	assert_int_equal(p.nr, 2);
	assert_string_equal(p.v[1].key, "app/y");
	assert_string_equal(p.upload_ids[1], "id2");
	assert_true(p.truncated);
	assert_string_equal(p.next_key_marker, "app/x");
	assert_string_equal(p.next_upload_id_marker, "id2");
	s3xml_page_release(&p);
}

static void test_error_body(void **state LB_UNUSED)
{
	struct strbuf code = STRBUF_INIT, msg = STRBUF_INIT;
	const char *xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>"
			  "<Code>SignatureDoesNotMatch</Code><Message>The request signature we "
			  "calculated does not match &apos;x&apos;</Message>"
			  "<RequestId>1</RequestId></Error>";

	assert_true(s3xml_parse_error(xml, strlen(xml), &code, &msg));
	assert_string_equal(code.buf, "SignatureDoesNotMatch");
	assert_string_equal(msg.buf, "The request signature we calculated does not match 'x'");
	const char *nomsg = "<Error><Code>NoSuchBucket</Code></Error>";
	assert_true(s3xml_parse_error(nomsg, strlen(nomsg), &code, &msg));
	assert_string_equal(code.buf, "NoSuchBucket");
	assert_string_equal(msg.buf, "");
	assert_false(s3xml_parse_error("<html>bad gateway</html>", 24, &code, &msg));
	assert_false(s3xml_parse_error("", 0, &code, &msg));
	strbuf_release(&code);
	strbuf_release(&msg);
}

static void test_first_and_escape(void **state LB_UNUSED)
{
	struct strbuf sb = STRBUF_INIT;
	const char *xml = "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
			  "<UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>";

	assert_true(s3xml_first(xml, strlen(xml), "UploadId", &sb));
	assert_string_equal(sb.buf, "VXBsb2FkIElE");
	assert_false(s3xml_first(xml, strlen(xml), "Upload", &sb));
	/* Unterminated or bogus references stay as they are. */
	const char *odd = "<K>a&b &#xZZ; &#0; &#1114112;</K>";
	assert_true(s3xml_first(odd, strlen(odd), "K", &sb));
	assert_string_equal(sb.buf, "a&b &#xZZ; &#0; &#1114112;");
	strbuf_reset(&sb);
	s3xml_escape(&sb, "\"e<t>&\"");
	assert_string_equal(sb.buf, "\"e&lt;t&gt;&amp;\"");
	strbuf_release(&sb);
}

static void test_part_size(void **state LB_UNUSED)
{
	const uint64_t MiB = 1024 * 1024;
	uint64_t total = 0;

	assert_true(s3_part_size(5 * MiB, 1) == 5 * MiB);
	assert_true(s3_part_size(5 * MiB, 1000) == 5 * MiB);
	assert_true(s3_part_size(5 * MiB, 1001) == 10 * MiB);
	assert_true(s3_part_size(16 * MiB, 10000) == 5ull << 30);
	for (unsigned n = 1; n <= 10000; n++) {
		uint64_t sz = s3_part_size(5 * MiB, n);
		assert_true(sz >= 5 * MiB && sz <= (5ull << 30));
		if (n > 1)
			assert_true(sz >= s3_part_size(5 * MiB, n - 1));
		total += sz;
	}
	/* 10,000 parts of a 5 MiB floor hold more than 4.8 TiB; of 16 MiB, S3's 5 TiB. */
	assert_true(total > (48ull << 40) / 10);
	total = 0;
	for (unsigned n = 1; n <= 10000; n++)
		total += s3_part_size(16 * MiB, n);
	assert_true(total > (5ull << 40));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_page),    cmocka_unit_test(test_list_pagination),
		cmocka_unit_test(test_list_rejects), cmocka_unit_test(test_uploads),
		cmocka_unit_test(test_error_body),   cmocka_unit_test(test_first_and_escape),
		cmocka_unit_test(test_part_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for davxml.c: PROPFIND multistatus answers as Apache and Nextcloud send them. */
#include "unit.h"

#include "stores/davxml.h"
#include "strbuf.h"

static void test_apache(void **state LB_UNUSED)
{
	const char *xml =
		"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
		"<D:multistatus xmlns:D=\"DAV:\">\n"
		"<D:response xmlns:lp1=\"DAV:\" xmlns:lp2=\"http://apache.org/dav/props/\">\n"
		"<D:href>/dav/b/nm/</D:href><D:propstat><D:prop>"
		"<lp1:resourcetype><D:collection/></lp1:resourcetype>"
		"</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>\n"
		"<D:response xmlns:lp1=\"DAV:\">"
		"<D:href>/dav/b/nm/nm-2026-12-01-235022.tar.gz</D:href><D:propstat><D:prop>"
		"<lp1:resourcetype/><lp1:getcontentlength>616</lp1:getcontentlength>"
		"</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>\n"
		"</D:multistatus>\n";
	struct davxml_list l = { 0 };

	assert_int_equal(davxml_parse_multistatus(xml, strlen(xml), &l), 0);
	assert_int_equal(l.nr, 2);
	assert_string_equal(l.v[0].href, "/dav/b/nm/");
	assert_true(l.v[0].collection);
	assert_false(l.v[0].has_size);
	assert_string_equal(l.v[1].href, "/dav/b/nm/nm-2026-12-01-235022.tar.gz");
	assert_false(l.v[1].collection);
	assert_true(l.v[1].has_size);
	assert_int_equal(l.v[1].size, 616);
	davxml_list_release(&l);
}

/* Nextcloud (sabre/dav): lower-case prefix, a 404 propstat for what a collection lacks. */
static void test_nextcloud(void **state LB_UNUSED)
{
	const char *xml =
		"<?xml version=\"1.0\"?><d:multistatus xmlns:d=\"DAV:\" "
		"xmlns:s=\"http://sabredav.org/ns\"><d:response>"
		"<d:href>/remote.php/dav/files/me/b/nm/</d:href>"
		"<d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype></d:prop>"
		"<d:status>HTTP/1.1 200 OK</d:status></d:propstat>"
		"<d:propstat><d:prop><d:getcontentlength>99</d:getcontentlength></d:prop>"
		"<d:status>HTTP/1.1 404 Not Found</d:status></d:propstat></d:response>"
		"<d:response><d:href>/remote.php/dav/files/me/b/nm/a%20b&amp;c</d:href>"
		"<d:propstat><d:prop><d:resourcetype/>"
		"<d:getcontentlength>12345678901</d:getcontentlength></d:prop>"
		"<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>";
	struct davxml_list l = { 0 };
	struct strbuf name = STRBUF_INIT;

	assert_int_equal(davxml_parse_multistatus(xml, strlen(xml), &l), 0);
	assert_int_equal(l.nr, 2);
	assert_true(l.v[0].collection);
	assert_false(l.v[0].has_size); /* the 404 propstat's value does not count */
	assert_true(l.v[1].size == 12345678901ull);
	assert_string_equal(l.v[1].href, "/remote.php/dav/files/me/b/nm/a%20b&c");
	assert_true(davxml_href_name(l.v[1].href, &name));
	assert_string_equal(name.buf, "a b&c");
	assert_true(davxml_href_name(l.v[0].href, &name));
	assert_string_equal(name.buf, "nm");
	davxml_list_release(&l);
	strbuf_release(&name);
}

/* Default namespace, comments, a '>' inside a quoted attribute, CDATA. */
static void test_syntax(void **state LB_UNUSED)
{
	const char *xml = "<multistatus xmlns=\"DAV:\"><!-- <response> -->"
			  "<response><href a=\"x>y\">/n/f</href><propstat><prop>"
			  "<getcontentlength><![CDATA[ 7 ]]></getcontentlength></prop>"
			  "<status>HTTP/1.1 200 OK</status></propstat></response></multistatus>";
	struct davxml_list l = { 0 };

	assert_int_equal(davxml_parse_multistatus(xml, strlen(xml), &l), 0);
	assert_int_equal(l.nr, 1);
	assert_string_equal(l.v[0].href, "/n/f");
	assert_true(l.v[0].has_size);
	assert_int_equal(l.v[0].size, 7);
	davxml_list_release(&l);
}

static void test_rejects(void **state LB_UNUSED)
{
	const char *bad[] = {
		"", "<html><body>login</body></html>",
		"<d:multistatus xmlns:d=\"DAV:\"><d:response><d:href>/a</d:href", /* cut in a tag */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct davxml_list l = { 0 };
		assert_int_equal(davxml_parse_multistatus(bad[i], strlen(bad[i]), &l), -1);
		davxml_list_release(&l);
	}
	/* a size that does not fit, or is not a number, is no size */
	const char *big = "<multistatus><response><href>/f</href><propstat><prop>"
			  "<getcontentlength>18446744073709551616</getcontentlength></prop>"
			  "<status>HTTP/1.1 200 OK</status></propstat></response>"
			  "<response><href>/g</href><propstat><prop>"
			  "<getcontentlength>12x</getcontentlength></prop>"
			  "<status>HTTP/1.1 200 OK</status></propstat></response></multistatus>";
	struct davxml_list l = { 0 };
	assert_int_equal(davxml_parse_multistatus(big, strlen(big), &l), 0);
	assert_int_equal(l.nr, 2);
	assert_false(l.v[0].has_size);
	assert_false(l.v[1].has_size);
	davxml_list_release(&l);
}

static void test_href_name(void **state LB_UNUSED)
{
	struct strbuf n = STRBUF_INIT;

	assert_true(davxml_href_name("https://h/dav/x/nm-1.tar.gz", &n));
	assert_string_equal(n.buf, "nm-1.tar.gz");
	assert_true(davxml_href_name("plain", &n));
	assert_string_equal(n.buf, "plain");
	assert_false(davxml_href_name("/", &n));
	assert_false(davxml_href_name("", &n));
	assert_false(davxml_href_name("/a/b%2Fc", &n)); /* a '/' inside a name */
	assert_false(davxml_href_name("/a/b%00", &n));
	assert_false(davxml_href_name("/a/b%4", &n));
	assert_false(davxml_href_name("/a/b%zz", &n));
	assert_true(davxml_href_name("/a/%41%62", &n));
	assert_string_equal(n.buf, "Ab");
	strbuf_release(&n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apache),	  cmocka_unit_test(test_nextcloud),
		cmocka_unit_test(test_syntax),	  cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_href_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

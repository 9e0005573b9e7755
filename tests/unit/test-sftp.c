/* Unit tests for the SFTP store's pure helpers: host keys, listing lines, quoted paths. */
#include "unit.h"

#include "stores/sftp.h"
#include "strbuf.h"

/* ssh-keygen -l -E sha256 of this ed25519 key prints this fingerprint. */
#define KEY "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C7okWi33ly2mVEdl"
#define FP  "SHA256:l00aZuiBgQUejyT05wwL1rI86hq+Z0oPXH6cx1NaH5E"

static void test_host_key_forms(void **state)
{
	char *fp = NULL;

	(void)state;
	assert_int_equal(sftp_host_key_parse(FP, &fp), 0);
	assert_string_equal(fp, FP);
	free(fp);
	/* Padding is accepted and dropped, as ssh-keygen prints none. */
	assert_int_equal(sftp_host_key_parse(FP "=", &fp), 0);
	assert_string_equal(fp, FP);
	free(fp);
	/* The key itself, bare, with its type, or as a .pub line: hashed. */
	const char *forms[] = { KEY, "ssh-ed25519 " KEY, "ssh-ed25519 " KEY " root@host",
				"[h]:23 ssh-ed25519 " KEY };
	for (size_t i = 0; i < ARRAY_SIZE(forms); i++) {
		assert_int_equal(sftp_host_key_parse(forms[i], &fp), 0);
		assert_string_equal(fp, FP);
		free(fp);
	}
	const char *bad[] = { "",	    "SHA256:",	   "SHA256:abc",
			      "MD5:12:34",  "ssh-ed25519", "not base64 at all!",
			      "SHA256:" KEY };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(sftp_host_key_parse(bad[i], &fp), -1);
}

static void test_key_type(void **state)
{
	char type[64];

	(void)state;
	sftp_key_type("\0\0\0\x0bssh-ed25519\0\0\0\x20", 19, type, sizeof(type));
	assert_string_equal(type, "ssh-ed25519");
	sftp_key_type("\0\0\0\x40", 4, type, sizeof(type));
	assert_string_equal(type, "unknown");
	sftp_key_type("", 0, type, sizeof(type));
	assert_string_equal(type, "unknown");
}

static void test_listing_lines(void **state)
{
	struct strbuf name = STRBUF_INIT;
	uint64_t size = 0;
	const char *l1 = "-rw-------    1 lbsftp   lbsftp   5245868 Dec  1 23:45 "
			 "bk-2026-12-01-234501.tar.gz\n";
	const char *l2 = "-rw-r--r-- 1 u g 1099511627776 Jan  1  2026 x";
	const char *l3 = "-rw-r--r-- 1 u g 1x Jan  1  2026 y";

	(void)state;
	assert_int_equal(sftp_listing_line(l1, strlen(l1), &name, &size), 1);
	assert_string_equal(name.buf, "bk-2026-12-01-234501.tar.gz");
	assert_true(size == 5245868);
	assert_int_equal(sftp_listing_line(l2, strlen(l2), &name, &size), 1);
	assert_true(size == 1099511627776ull);
	assert_int_equal(sftp_listing_line(l3, strlen(l3), &name, &size), -1);
	assert_string_equal(name.buf, "y");
	/* Directories, links and short lines name no regular file. */
	const char *none[] = { "drwx------ 2 u g 4096 Dec  1 23:45 .",
			       "lrwxrwxrwx 1 u g 4 Dec 1 23:45 a -> b", "-rw", "" };
	for (size_t i = 0; i < ARRAY_SIZE(none); i++)
		assert_int_equal(sftp_listing_line(none[i], strlen(none[i]), &name, &size), 0);
	strbuf_release(&name);
}

static void test_quote_path(void **state)
{
	struct strbuf q = STRBUF_INIT;

	(void)state;
	sftp_quote_path(&q, "/a b/\"c\"\\d");
	assert_string_equal(q.buf, "\"/a b/\\\"c\\\"\\\\d\"");
	strbuf_release(&q);
}

static void test_fingerprint(void **state)
{
	char fp[SFTP_FP_MAX];

	(void)state;
	/* sha256("") = e3b0c442..., base64 without padding */
	sftp_fingerprint("", 0, fp);
	assert_string_equal(fp, "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_host_key_forms), cmocka_unit_test(test_key_type),
		cmocka_unit_test(test_listing_lines),  cmocka_unit_test(test_quote_path),
		cmocka_unit_test(test_fingerprint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

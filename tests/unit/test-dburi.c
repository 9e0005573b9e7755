/* Unit tests for dburi.c: database URI parsing, building, naming and redaction. */
#include "unit.h"

#include "dburi.h"

static void test_dburi(void **state LB_UNUSED)
{
	struct dburi u;
	struct err e = ERR_INIT;

	/* The spec's example: my@pass:word percent-encoded. */
	assert_int_equal(dburi_parse("postgresql://user:my%40pass%3Aword@db:5432/my%20db?"
				     "sslmode=require&password=ignored",
				     "V", &u, &e),
			 0);
	assert_string_equal(u.user, "user");
	assert_string_equal(u.password, "ignored"); /* a query password= wins, as in libpq */
	assert_string_equal(u.host, "db");
	assert_string_equal(u.port, "5432");
	assert_string_equal(u.database, "my db");
	assert_string_equal(u.query, "sslmode=require");
	char *b = dburi_build(&u, false, NULL);
	assert_string_equal(b, "postgresql://user@db:5432/my%20db?sslmode=require");
	free(b);
	b = dburi_build(&u, true, "other");
	assert_string_equal(b, "postgresql://user:ignored@db:5432/other?sslmode=require");
	free(b);
	b = dburi_build(&u, false, "");
	assert_string_equal(b, "postgresql://user@db:5432/?sslmode=require");
	free(b);
	dburi_release(&u);

	assert_int_equal(dburi_parse("postgresql://u:p%2Fw@[::1]:5433", "V", &u, &e), 0);
	assert_string_equal(u.password, "p/w");
	assert_string_equal(u.host, "::1");
	assert_string_equal(u.port, "5433");
	assert_null(u.database);
	char *n = dburi_default_name(&u);
	assert_string_equal(n, "__1");
	free(n);
	dburi_release(&u);

	/* An unencoded '@' or '/' in the password still parses, and is redacted. */
	assert_int_equal(dburi_parse("mongodb://root:a@b/c@mongo/?authSource=admin", "V", &u, &e),
			 0);
	assert_string_equal(u.password, "a@b/c");
	assert_string_equal(u.host, "mongo");
	dburi_release(&u);
	char *r = dburi_redact("mongodb://root:a@b/c@mongo/?authSource=admin");
	assert_string_equal(r, "mongodb://root:***@mongo/?authSource=admin");
	free(r);
	r = dburi_redact("postgresql://db/app?user=x&password=secret&sslmode=disable");
	assert_string_equal(r, "postgresql://db/app?user=x&password=***&sslmode=disable");
	free(r);
	r = dburi_redact("no uri here");
	assert_string_equal(r, "(not a URI)");
	free(r);
	assert_false(err_isset(&e));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dburi),
	};

	return cmocka_run_group_tests_name("dburi", tests, NULL, NULL);
}

/* Unit tests for err.c: the first message wins; copy and wrap keep the cause's code. */
#include "unit.h"

#include "err.h"

static void test_err_copy_wrap(void **state LB_UNUSED)
{
	struct err cause = ERR_INIT, e = ERR_INIT;

	assert_false(err_isset(&cause));
	assert_int_equal(err_set(&cause, LB_EXIT_STORE, "disk %s", "full"), -1);
	assert_int_equal(err_set(&cause, LB_EXIT_SOURCE, "later"), -1);
	assert_int_equal(cause.code, LB_EXIT_STORE);
	assert_string_equal(cause.msg, "disk full");

	assert_int_equal(err_wrap(&e, &cause, "the %s succeeded, but ", "backup"), -1);
	assert_int_equal(e.code, LB_EXIT_STORE);
	assert_string_equal(e.msg, "the backup succeeded, but disk full");
	assert_int_equal(err_copy(&e, &cause), -1); /* e is set: unchanged */
	assert_string_equal(e.msg, "the backup succeeded, but disk full");

	err_clear(&e);
	assert_int_equal(err_copy(&e, &cause), -1);
	assert_int_equal(e.code, LB_EXIT_STORE);
	assert_string_equal(e.msg, "disk full");
	assert_int_equal(err_copy(NULL, &cause), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_copy_wrap),
	};

	return cmocka_run_group_tests_name("err", tests, NULL, NULL);
}

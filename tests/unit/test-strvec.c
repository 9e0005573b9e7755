/* Unit tests for strvec.c: owned copies, growth with the NULL terminator, release. */
#include "unit.h"

#include "strvec.h"

static void test_strvec(void **state LB_UNUSED)
{
	struct strvec sv = STRVEC_INIT;
	char tmp[16];

	assert_int_equal(sv.nr, 0);
	assert_null(sv.v[0]);

	snprintf(tmp, sizeof(tmp), "%s", "first");
	strvec_push(&sv, tmp);
	/* The vector owns a copy. */
	tmp[0] = 'F';
	strvec_push(&sv, "second");
	strvec_pushf(&sv, "k=%d", 3);
	assert_int_equal(sv.nr, 3);
	assert_string_equal(sv.v[0], "first");
	assert_string_equal(sv.v[1], "second");
	assert_string_equal(sv.v[2], "k=3");
	assert_null(sv.v[3]);

	/* Growing keeps the NULL terminator. */
	for (int i = 0; i < 100; i++) {
		strvec_pushf(&sv, "item-%d", i);
		assert_null(sv.v[sv.nr]);
	}
	assert_int_equal(sv.nr, 103);
	assert_string_equal(sv.v[102], "item-99");

	/* Long formatted entries. */
	char *big = repeat('w', 700);
	strvec_pushf(&sv, "%s!", big);
	assert_int_equal(strlen(sv.v[103]), 701);
	free(big);

	strvec_release(&sv);
	assert_int_equal(sv.nr, 0);
	assert_null(sv.v[0]);

	/* Usable after release, and releasing an empty vector is fine. */
	strvec_push(&sv, "again");
	assert_string_equal(sv.v[0], "again");
	strvec_release(&sv);
	strvec_release(&sv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strvec),
	};

	return cmocka_run_group_tests_name("strvec", tests, NULL, NULL);
}

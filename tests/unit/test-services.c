/* Unit tests for services.c's pure part: start order from Compose depends_on labels. */
#include "unit.h"

#include "services.h"

static void check(const char *const *names, const char *const *deps, size_t nr, const size_t *want)
{
	size_t got[16];

	services_dependency_order(names, deps, nr, got);
	for (size_t i = 0; i < nr; i++)
		assert_int_equal(got[i], want[i]);
}

static void test_no_labels_keeps_order(void **state LB_UNUSED)
{
	const char *names[] = { "app", "worker", "db" };
	const char *deps[] = { NULL, NULL, NULL };
	const size_t want[] = { 0, 1, 2 };

	check(names, deps, 3, want);
	services_dependency_order(names, deps, 0, NULL);
}

static void test_dependencies_first(void **state LB_UNUSED)
{
	/* web -> app -> (db, cache); Compose v2's label form and the plain list form. */
	const char *names[] = { "web", "app", "db", "cache" };
	const char *deps[] = { "app:service_started:false",
			       "db:service_healthy:true,cache:service_started:false", NULL, NULL };
	const size_t want[] = { 2, 3, 1, 0 };

	check(names, deps, 4, want);

	const char *deps2[] = { "app", "db,cache", NULL, NULL };
	check(names, deps2, 4, want);
}

static void test_prefix_names_and_unknown_dependencies(void **state LB_UNUSED)
{
	/* "db" is not "db2"; a dependency outside the set is ignored. */
	const char *names[] = { "app", "db2", "db" };
	const char *deps[] = { "db2,elsewhere", NULL, "dbx" };
	const size_t want[] = { 1, 0, 2 };

	check(names, deps, 3, want);
}

static void test_cycle_and_replicas(void **state LB_UNUSED)
{
	/*
	 * Two containers of one service do not wait for each other; a cycle comes
	 * after what can be ordered, in input order.
	 */
	const char *names[] = { "a", "b", "app", "app" };
	const char *deps[] = { "b", "a", "app", "app" };
	const size_t want[] = { 2, 3, 0, 1 };

	check(names, deps, 4, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_labels_keeps_order),
		cmocka_unit_test(test_dependencies_first),
		cmocka_unit_test(test_prefix_names_and_unknown_dependencies),
		cmocka_unit_test(test_cycle_and_replicas),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

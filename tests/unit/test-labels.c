/* Unit tests for labels.c's pure part: which containers a sidecar's lifeboat.* labels select. */
#include "unit.h"

#include <jansson.h>

#include "labels.h"

/* A container list entry with these labels (key, value, ..., NULL). */
static json_t *container(const char *first, ...)
{
	json_t *labels = json_object();
	va_list ap;

	va_start(ap, first);
	for (const char *k = first; k; k = va_arg(ap, const char *))
		json_object_set_new(labels, k, json_string(va_arg(ap, const char *)));
	va_end(ap);
	return json_pack("{s:s, s:[s], s:s, s:o}", "Id", "abc", "Names", "/c", "State", "running",
			 "Labels", labels);
}

#define PROJECT "com.docker.compose.project"

static void test_scope(void **state LB_UNUSED)
{
	json_t *mine = container(PROJECT, "shop", NULL);
	json_t *other = container(PROJECT, "blog", NULL);
	json_t *none = container(NULL);
	json_t *named = container(PROJECT, "blog", LABEL_NAME, "shop-db", NULL);
	json_t *theirs = container(PROJECT, "shop", LABEL_NAME, "another", NULL);

	assert_true(labels_in_scope(mine, "shop", "shop-db"));
	assert_false(labels_in_scope(other, "shop", "shop-db"));
	assert_false(labels_in_scope(none, "shop", "shop-db"));
	assert_false(labels_in_scope(mine, NULL, "shop-db")); /* the sidecar outside Compose */
	assert_true(labels_in_scope(named, "shop", "shop-db"));
	assert_true(labels_in_scope(named, NULL, "shop-db"));
	assert_false(labels_in_scope(theirs, "shop", "shop-db")); /* its lifeboat.name wins */
	json_decref(mine);
	json_decref(other);
	json_decref(none);
	json_decref(named);
	json_decref(theirs);
}

static void test_stop(void **state LB_UNUSED)
{
	static const struct {
		const char *project, *name, *stop;
		bool want;
	} cases[] = {
		{ "shop", NULL, "true", true }, /* our project */
		{ "shop", NULL, "TRUE", true },
		{ "blog", NULL, "true", false },   /* another project */
		{ "blog", NULL, "shop-db", true }, /* names us: anywhere */
		{ NULL, NULL, "shop-db", true },
		{ "shop", NULL, "false", false },
		{ "shop", NULL, "other-db", false },  /* names another sidecar */
		{ "shop", "another", "true", false }, /* another sidecar's */
		{ "blog", "shop-db", "true", true },  /* ours by lifeboat.name */
		{ "shop", NULL, NULL, false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_t *c = container(PROJECT, cases[i].project ? cases[i].project : "",
				      cases[i].name ? LABEL_NAME : NULL, cases[i].name, NULL);
		if (cases[i].stop)
			json_object_set_new(json_object_get(c, "Labels"), LABEL_STOP,
					    json_string(cases[i].stop));
		if (!cases[i].project)
			json_object_del(json_object_get(c, "Labels"), PROJECT);
		if (labels_stop_selected(c, "shop", "shop-db") != cases[i].want)
			fail_msg("case %zu: expected %d", i, cases[i].want);
		json_decref(c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scope),
		cmocka_unit_test(test_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

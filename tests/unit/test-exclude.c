/* Unit tests for exclude.c: BACKUP_EXCLUDE's syntax and matching rules (README.md). */
#include "unit.h"

#include "exclude.h"

struct probe {
	const char *source, *rel;
	bool is_dir, match;
};

static void check(const char *value, const struct probe *p, size_t n)
{
	struct exclude_list l = { 0 };
	struct err e = ERR_INIT;

	if (exclude_parse(&l, "BACKUP_EXCLUDE", value, &e) < 0)
		fail_msg("'%s' did not parse: %s", value, e.msg);
	for (size_t i = 0; i < n; i++)
		if (exclude_match(&l, p[i].source, p[i].rel, p[i].is_dir) != p[i].match)
			fail_msg("'%s' %s '%s' (%s, source %s)", value,
				 p[i].match ? "must match" : "must not match", p[i].rel,
				 p[i].is_dir ? "directory" : "file", p[i].source);
	exclude_release(&l);
}
#define CHECK(value, ...)                                       \
	do {                                                    \
		const struct probe p_[] = { __VA_ARGS__ };      \
		check((value), p_, sizeof(p_) / sizeof(p_[0])); \
	} while (0)

/* A pattern without '/' is a name at any depth; a trailing '/' means directories only. */
static void test_names_any_depth(void **state LB_UNUSED)
{
	CHECK("cache/", { "d", "cache", true, true }, { "d", "a/b/cache", true, true },
	      { "d", "cache", false, false }, { "d", "a/cache", false, false },
	      { "d", "cachex", true, false }, { "d", "xcache", true, false },
	      { "d", "cache/x", false, false });
	CHECK("*.tmp", { "d", "x.tmp", false, true }, { "d", "a/b/x.tmp", false, true },
	      { "d", "a/b/x.tmp", true, true }, { "d", ".tmp", false, true },
	      { "d", ".x.tmp", false, true }, { "d", "x.tmpl", false, false },
	      { "d", "x.tmp/y", false, false });
	CHECK("core", { "d", "core", false, true }, { "d", "a/core", true, true },
	      { "d", "a/core2", false, false });
	CHECK("file?.[ch]", { "d", "x/file1.c", false, true }, { "d", "file2.h", false, true },
	      { "d", "file12.c", false, false }, { "d", "file1.o", false, false });
	CHECK("[!a]*", { "d", "b", false, true }, { "d", "abc", false, false });
}

/* With a '/', the pattern is anchored at the directory's root; '*' does not cross '/'. */
static void test_anchored(void **state LB_UNUSED)
{
	CHECK("a/cache", { "d", "a/cache", true, true }, { "d", "a/cache", false, true },
	      { "d", "x/a/cache", true, false }, { "d", "a/b/cache", true, false });
	CHECK("/cache", { "d", "cache", true, true }, { "d", "a/cache", true, false });
	CHECK("a/*.log", { "d", "a/x.log", false, true }, { "d", "a/b/x.log", false, false },
	      { "d", "x.log", false, false });
	CHECK("*/thumbs/", { "d", "u/thumbs", true, true }, { "d", "thumbs", true, false },
	      { "d", "u/v/thumbs", true, false }, { "d", "u/thumbs", false, false });
}

/* '**' as a whole component: zero or more components. */
static void test_double_star(void **state LB_UNUSED)
{
	CHECK("**/node_modules/", { "d", "node_modules", true, true },
	      { "d", "a/b/node_modules", true, true }, { "d", "a/node_modules", false, false },
	      { "d", "a/node_modules/x", true, false });
	CHECK("logs/**", { "d", "logs", true, true }, { "d", "logs/a", false, true },
	      { "d", "logs/a/b/c", false, true }, { "d", "x/logs/a", false, false });
	CHECK("a/**/z", { "d", "a/z", false, true }, { "d", "a/b/z", false, true },
	      { "d", "a/b/c/z", false, true }, { "d", "a/b/c/y", false, false },
	      { "d", "b/a/z", false, false });
}

/* NAME:pattern applies to that source only; escapes and separators. */
static void test_scope_and_lists(void **state LB_UNUSED)
{
	CHECK("uploads:thumbs/", { "uploads", "thumbs", true, true },
	      { "uploads", "x/thumbs", true, true }, { "data", "thumbs", true, false });
	CHECK(" *.tmp ,\n cache/ \n\n, uploads:*.jpg ", { "d", "x.tmp", false, true },
	      { "d", "cache", true, true }, { "d", "x.jpg", false, false },
	      { "uploads", "x.jpg", false, true });
	CHECK("a\\,b", { "d", "a,b", false, true }, { "d", "a", false, false },
	      { "d", "b", false, false });
	CHECK("\\*", { "d", "*", false, true }, { "d", "x", false, false });
	CHECK("\\!x", { "d", "!x", false, true });
	CHECK("*:x", { "d", "a:x", false, true });
	CHECK("", { "d", "a", false, false });
}

/* An excluded directory covers everything below it. */
static void test_covers(void **state LB_UNUSED)
{
	struct exclude_list l = { 0 };
	struct err e = ERR_INIT;

	assert_int_equal(exclude_parse(&l, "BACKUP_EXCLUDE", "cache/,media:big/", &e), 0);
	assert_true(exclude_covers(&l, "d", "a/cache/x/y", false));
	assert_true(exclude_covers(&l, "d", "a/cache", true));
	assert_false(exclude_covers(&l, "d", "a/cache", false));
	assert_false(exclude_covers(&l, "d", "a/b", true));
	assert_true(exclude_covers(&l, "media", "big/x", false));
	assert_false(exclude_covers(&l, "d", "big/x", false));
	assert_true(exclude_any(&l, "d"));
	exclude_release(&l);
	assert_int_equal(exclude_parse(&l, "BACKUP_EXCLUDE", "media:big/", &e), 0);
	assert_false(exclude_any(&l, "d"));
	assert_true(exclude_any(&l, "media"));
	exclude_release(&l);
}

/* Bad patterns: one line naming the variable and the pattern. */
static void test_bad(void **state LB_UNUSED)
{
	static const struct {
		const char *value, *why;
	} bad[] = {
		{ "!cache", "negation" },    { "a//b", "empty path component" },
		{ "a/../b", "'..'" },	     { "./a", "'.'" },
		{ "a**", "whole path" },     { "x/**y/z", "whole path" },
		{ "[abc", "'['" },	     { "abc\\", "'\\'" },
		{ "/", "only '/'" },	     { "uploads:", "empty" },
		{ "ok, a//", "empty path" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct exclude_list l = { 0 };
		struct err e = ERR_INIT;
		if (exclude_parse(&l, "BACKUP_EXCLUDE", bad[i].value, &e) != -1)
			fail_msg("'%s' must be refused", bad[i].value);
		assert_int_equal(e.code, LB_EXIT_CONFIG);
		assert_contains(e.msg, "BACKUP_EXCLUDE: pattern '");
		assert_contains(e.msg, bad[i].why);
		exclude_release(&l);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_any_depth), cmocka_unit_test(test_anchored),
		cmocka_unit_test(test_double_star),	cmocka_unit_test(test_scope_and_lists),
		cmocka_unit_test(test_covers),		cmocka_unit_test(test_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for manifest.c: manifest.json round trip and errors, SHA256SUMS lines. */
#include "unit.h"

#include <jansson.h>

#include "manifest.h"
#include "strbuf.h"
#include "xalloc.h"

/* sha256("x"), as printed by `printf x | sha256sum`. */
#define HEX_X "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
/* sha256("y"). */
#define HEX_Y "a1fce4363854ff888cff4b8e7875d600c2682390412a8cf79b37d0b11148b0fa"

static void fill(struct manifest *m)
{
	m->lifeboat_version = xstrdup("0.1.0");
	m->name = xstrdup("myapp-production");
	m->timestamp = xstrdup("2025-03-04-050607");
	m->created = xstrdup("2025-03-04T05:06:07+01:00");
	m->host = xstrdup("host.example");
	m->compression = xstrdup("gzip");
	m->encryption = xstrdup("gpg");
	manifest_add_source(m, SOURCE_DIR, "data", "/data");
	manifest_add_source(m, SOURCE_FILE, "conf", "/etc/app/app.conf");
	manifest_add_source(m, SOURCE_DIR, "we.ird_1-x", "/srv/we:ird \"quoted\" \\ ü/x");
}

static const char *jget_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_string(v))
		fail_msg("key '%s' is not a string", key);
	return json_string_value(v);
}

static void test_roundtrip(void **state LB_UNUSED)
{
	struct manifest m = MANIFEST_INIT, back = MANIFEST_INIT;
	struct strbuf json = STRBUF_INIT;
	struct err e = ERR_INIT;

	fill(&m);
	manifest_to_json(&m, &json);
	assert_true(json.len > 0);
	assert_int_equal(json.buf[json.len - 1], '\n');

	/* Parsed back by the module itself. */
	assert_int_equal(manifest_from_json(json.buf, json.len, &back, &e), 0);
	assert_int_equal(e.code, LB_OK);
	assert_int_equal(back.format_version, MANIFEST_FORMAT_VERSION);
	assert_string_equal(back.lifeboat_version, m.lifeboat_version);
	assert_string_equal(back.name, m.name);
	assert_string_equal(back.timestamp, m.timestamp);
	assert_string_equal(back.created, m.created);
	assert_string_equal(back.host, m.host);
	assert_string_equal(back.compression, m.compression);
	assert_string_equal(back.encryption, m.encryption);
	assert_int_equal(back.nr_sources, m.nr_sources);
	for (size_t i = 0; i < m.nr_sources; i++) {
		assert_int_equal(back.sources[i].kind, m.sources[i].kind);
		assert_string_equal(back.sources[i].name, m.sources[i].name);
		assert_string_equal(back.sources[i].path, m.sources[i].path);
	}

	/* And by jansson directly: the on-disk format other tools may read. */
	json_error_t jerr;
	json_t *root = json_loadb(json.buf, json.len, 0, &jerr);
	if (!root)
		fail_msg("jansson cannot parse the manifest: %s", jerr.text);
	assert_true(json_is_object(root));
	assert_string_equal(jget_str(root, "format"), "lifeboat-archive");
	json_t *fv = json_object_get(root, "format_version");
	assert_true(json_is_integer(fv));
	assert_int_equal(json_integer_value(fv), 1);
	assert_string_equal(jget_str(root, "lifeboat_version"), "0.1.0");
	assert_string_equal(jget_str(root, "name"), "myapp-production");
	assert_string_equal(jget_str(root, "timestamp"), "2025-03-04-050607");
	assert_string_equal(jget_str(root, "created"), "2025-03-04T05:06:07+01:00");
	assert_string_equal(jget_str(root, "host"), "host.example");
	assert_string_equal(jget_str(root, "compression"), "gzip");
	assert_string_equal(jget_str(root, "encryption"), "gpg");
	json_t *srcs = json_object_get(root, "sources");
	assert_true(json_is_array(srcs));
	assert_int_equal(json_array_size(srcs), 3);
	json_t *s0 = json_array_get(srcs, 0), *s1 = json_array_get(srcs, 1),
	       *s2 = json_array_get(srcs, 2);
	assert_string_equal(jget_str(s0, "kind"), "dir");
	assert_string_equal(jget_str(s0, "name"), "data");
	assert_string_equal(jget_str(s0, "path"), "/data");
	assert_string_equal(jget_str(s0, "archive_path"), "dirs/data");
	assert_string_equal(jget_str(s1, "kind"), "file");
	assert_string_equal(jget_str(s1, "name"), "conf");
	assert_string_equal(jget_str(s1, "path"), "/etc/app/app.conf");
	assert_string_equal(jget_str(s1, "archive_path"), "files/conf");
	assert_string_equal(jget_str(s2, "path"), "/srv/we:ird \"quoted\" \\ ü/x");
	assert_string_equal(jget_str(s2, "archive_path"), "dirs/we.ird_1-x");
	json_decref(root);

	manifest_release(&back);
	manifest_release(&m);
	/* Released manifests are re-initialised. */
	assert_int_equal(m.nr_sources, 0);
	assert_null(m.sources);
	assert_null(m.name);
	assert_int_equal(m.format_version, MANIFEST_FORMAT_VERSION);
	strbuf_release(&json);
}

static void test_sqlite_format(void **state LB_UNUSED)
{
	struct manifest m = MANIFEST_INIT, back = MANIFEST_INIT;
	struct strbuf json = STRBUF_INIT;
	struct err e = ERR_INIT;

	fill(&m);
	manifest_add_source(&m, SOURCE_FILE, "db", "/app/data/app.db");
	m.sources[m.nr_sources - 1].sqlite = true;
	manifest_to_json(&m, &json);
	assert_int_equal(manifest_from_json(json.buf, json.len, &back, &e), 0);
	assert_int_equal(back.nr_sources, 4);
	assert_true(back.sources[3].sqlite);
	assert_false(back.sources[1].sqlite);
	assert_non_null(strstr(json.buf, "\"format\": \"sqlite\""));
	manifest_release(&back);
	manifest_release(&m);
	strbuf_release(&json);

	/* A format this version does not know must not be restored as plain bytes. */
	static const char *const bad[] = {
		"{\"format_version\": 1, \"sources\": [{\"kind\": \"file\", \"name\": \"a\", "
		"\"path\": \"/a\", \"format\": \"pgdump\"}]}",
		"{\"format_version\": 1, \"sources\": [{\"kind\": \"dir\", \"name\": \"a\", "
		"\"path\": \"/a\", \"format\": \"sqlite\"}]}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct manifest x = MANIFEST_INIT;
		struct err xe = ERR_INIT;
		assert_int_equal(manifest_from_json(bad[i], strlen(bad[i]), &x, &xe), -1);
		assert_int_equal(xe.code, LB_EXIT_INTEGRITY);
		manifest_release(&x);
	}
}

static void test_roundtrip_empty(void **state LB_UNUSED)
{
	struct manifest m = MANIFEST_INIT, back = MANIFEST_INIT;
	struct strbuf json = STRBUF_INIT;
	struct err e = ERR_INIT;

	/* Unset strings are written as "" and no sources as []. */
	manifest_to_json(&m, &json);
	assert_int_equal(manifest_from_json(json.buf, json.len, &back, &e), 0);
	assert_int_equal(back.nr_sources, 0);
	assert_non_null(back.name);
	assert_string_equal(back.name, "");

	json_t *root = json_loadb(json.buf, json.len, 0, NULL);
	assert_non_null(root);
	assert_true(json_is_array(json_object_get(root, "sources")));
	assert_int_equal(json_array_size(json_object_get(root, "sources")), 0);
	json_decref(root);

	manifest_release(&back);
	strbuf_release(&json);

	/* A minimal hand-written manifest is accepted; absent optional strings stay NULL. */
	static const char minimal[] = "{\"format_version\": 1, \"name\": \"t\", \"timestamp\": "
				      "\"2026-01-01-000000\", \"sources\": []}";
	assert_int_equal(manifest_from_json(minimal, strlen(minimal), &back, &e), 0);
	assert_int_equal(back.format_version, 1);
	assert_string_equal(back.name, "t");
	assert_null(back.created);
	assert_int_equal(back.nr_sources, 0);
	manifest_release(&back);
}

/*
 * Paths are bytes on Linux: a source directory whose name is not UTF-8 (a
 * Latin-1 "café") must survive the manifest, or its archive cannot be restored.
 */
static void expect_bad(const char *json, const char *needle)
{
	struct manifest m = MANIFEST_INIT;
	struct err e = ERR_INIT;

	int r = manifest_from_json(json, strlen(json), &m, &e);
	if (r != -1)
		fail_msg("manifest accepted: %s", json);
	if (e.code != LB_EXIT_INTEGRITY)
		fail_msg("code %d (want %d) for: %s", e.code, LB_EXIT_INTEGRITY, json);
	assert_true(e.msg[0] != '\0');
	if (strpbrk(e.msg, "\n\r"))
		fail_msg("a message of more than one line for: %s", json);
	if (needle)
		assert_contains(e.msg, needle);
	manifest_release(&m);
}

#define SRC(kind, name, path) \
	"{\"kind\": \"" kind "\", \"name\": \"" name "\", \"path\": \"" path "\"}"
#define WITH_SOURCES(list)                                                                \
	"{\"format_version\": 1, \"name\": \"t\", \"timestamp\": \"2026-01-01-000000\", " \
	"\"sources\": [" list "]}"

static void test_from_json_errors(void **state LB_UNUSED)
{
	/* Not JSON at all. */
	expect_bad("", "JSON");
	expect_bad("not json", "JSON");
	expect_bad("\n\n\n{\"form\\\n\\", "JSON"); /* jansson quotes the bad bytes */
	expect_bad("{\"format_version\": 1, \"sources\": [", "JSON");
	expect_bad("{\"format_version\": 1, \"sources\": []} trailing", "JSON");
	/* Not an object. */
	expect_bad("[1, 2, 3]", "object");
	expect_bad("\"manifest\"", NULL);
	expect_bad("42", NULL);
	expect_bad("null", NULL);
	/* format_version missing, of the wrong type, too small or too new. */
	expect_bad("{}", "format_version");
	expect_bad("{\"sources\": []}", "format_version");
	expect_bad("{\"format_version\": \"1\", \"sources\": []}", "format_version");
	expect_bad("{\"format_version\": 1.0, \"sources\": []}", "format_version");
	expect_bad("{\"format_version\": 0, \"sources\": []}", "format_version");
	expect_bad("{\"format_version\": -1, \"sources\": []}", "format_version");
	expect_bad("{\"format_version\": 2, \"sources\": []}", "newer");
	expect_bad("{\"format_version\": 99999999999, \"sources\": []}", "newer");
	/* The archive's own record of what it is: name and timestamp are required. */
	expect_bad("{\"format_version\": 1, \"timestamp\": \"2026-01-01-000000\", \"sources\": []}",
		   "'name'");
	expect_bad("{\"format_version\": 1, \"name\": \"t\", \"sources\": []}", "'timestamp'");
	expect_bad("{\"format_version\": 1, \"name\": 7, \"timestamp\": \"x\", \"sources\": []}",
		   "'name'");
	/* No source list. */
	expect_bad("{\"format_version\": 1}", "sources");
	expect_bad("{\"format_version\": 1, \"sources\": {}}", "sources");
	expect_bad("{\"format_version\": 1, \"sources\": \"/data\"}", "sources");
	/* Bad source kind. */
	expect_bad(WITH_SOURCES(SRC("socket", "a", "/a")), NULL);
	expect_bad(WITH_SOURCES(SRC("", "a", "/a")), NULL);
	expect_bad(WITH_SOURCES(SRC("DIR", "a", "/a")), NULL);
	expect_bad(WITH_SOURCES("{\"kind\": 1, \"name\": \"a\", \"path\": \"/a\"}"), NULL);
	/* Relative or empty path. */
	expect_bad(WITH_SOURCES(SRC("dir", "a", "a/b")), NULL);
	expect_bad(WITH_SOURCES(SRC("file", "a", "./a")), NULL);
	expect_bad(WITH_SOURCES(SRC("dir", "a", "")), NULL);
	/* ".." would let a manifest point a restore outside its recorded path. */
	expect_bad(WITH_SOURCES(SRC("dir", "a", "/data/../etc")), NULL);
	expect_bad(WITH_SOURCES(SRC("dir", "a", "/data/..")), NULL);
	/* Invalid name. */
	expect_bad(WITH_SOURCES(SRC("dir", "a/b", "/a")), NULL);
	expect_bad(WITH_SOURCES(SRC("dir", "..", "/a")), NULL);
	expect_bad(WITH_SOURCES(SRC("dir", ".", "/a")), NULL);
	expect_bad(WITH_SOURCES(SRC("dir", "", "/a")), NULL);
	expect_bad(WITH_SOURCES(SRC("dir", "a b", "/a")), NULL);
	expect_bad(WITH_SOURCES(SRC("dir", "../../etc", "/a")), NULL);
	/* A NUL byte hidden in a name. */
	expect_bad(WITH_SOURCES(SRC("dir", "ok\\u0000/../x", "/a")), NULL);
	/* Missing members, or a source that is not an object. */
	expect_bad(WITH_SOURCES("{\"name\": \"a\", \"path\": \"/a\"}"), NULL);
	expect_bad(WITH_SOURCES("{\"kind\": \"dir\", \"path\": \"/a\"}"), NULL);
	expect_bad(WITH_SOURCES("{\"kind\": \"dir\", \"name\": \"a\"}"), NULL);
	expect_bad(WITH_SOURCES("{\"kind\": \"dir\", \"name\": \"a\", \"path\": 1}"), NULL);
	expect_bad(WITH_SOURCES("1"), NULL);
	expect_bad(WITH_SOURCES("\"dirs/a\""), NULL);
	/* Duplicate name, within and across kinds. */
	expect_bad(WITH_SOURCES(SRC("dir", "a", "/a") "," SRC("dir", "a", "/b")), "'a'");
	expect_bad(WITH_SOURCES(SRC("dir", "a", "/a") "," SRC("file", "a", "/b")), "'a'");
	expect_bad(WITH_SOURCES(SRC("dir", "x", "/x") "," SRC("dir", "a", "/a") "," SRC(
			   "file", "y", "/y") "," SRC("file", "a", "/b")),
		   "twice");

	/* The same shapes with valid values are accepted. */
	struct manifest m = MANIFEST_INIT;
	struct err e = ERR_INIT;
	static const char ok[] = WITH_SOURCES(SRC("dir", "a", "/a") "," SRC("file", "b", "/b"));
	assert_int_equal(manifest_from_json(ok, strlen(ok), &m, &e), 0);
	assert_int_equal(m.nr_sources, 2);
	assert_int_equal(m.sources[0].kind, SOURCE_DIR);
	assert_int_equal(m.sources[1].kind, SOURCE_FILE);
	manifest_release(&m);
}

static void test_archive_prefix(void **state LB_UNUSED)
{
	char *p = source_archive_prefix(SOURCE_DIR, "data");
	assert_string_equal(p, "dirs/data");
	free(p);
	p = source_archive_prefix(SOURCE_FILE, "conf");
	assert_string_equal(p, "files/conf");
	free(p);
	assert_string_equal(source_kind_str(SOURCE_DIR), "dir");
	assert_string_equal(source_kind_str(SOURCE_FILE), "file");
}

/* ---- SHA256SUMS ---- */

static void test_sha256_hex(void **state LB_UNUSED)
{
	struct sha256 h;
	char hex[SHA256_HEX_LEN + 1];

	sha256_init(&h);
	sha256_update(&h, "x", 1);
	sha256_final_hex(&h, hex);
	assert_string_equal(hex, HEX_X);

	/* The empty input, fed in no pieces. */
	sha256_init(&h);
	sha256_update(&h, "", 0);
	sha256_final_hex(&h, hex);
	assert_string_equal(hex,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/*
 * Reference lines from GNU coreutils 9.1: files containing "x" named as below,
 * then `sha256sum * | od -c`. A name with '\\', '\n' or '\r' gets a leading
 * backslash on the line and those characters escaped; other names are verbatim.
 */
static void test_sums_add_escaping(void **state LB_UNUSED)
{
	static const struct {
		const char *path, *line;
	} cases[] = {
		{ "plain", HEX_X "  plain\n" },
		{ "dirs/data/with space", HEX_X "  dirs/data/with space\n" },
		{ "files/t\tab ü", HEX_X "  files/t\tab ü\n" },
		{ "a\\b", "\\" HEX_X "  a\\\\b\n" },
		{ "c\nd", "\\" HEX_X "  c\\nd\n" },
		{ "e\rf", "\\" HEX_X "  e\\rf\n" },
		{ "a\\b\nc", "\\" HEX_X "  a\\\\b\\nc\n" },
		{ "\\", "\\" HEX_X "  \\\\\n" },
		{ "n\\nx", "\\" HEX_X "  n\\\\nx\n" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct strbuf sb = STRBUF_INIT;
		sums_add(&sb, HEX_X, cases[i].path);
		assert_string_equal(sb.buf, cases[i].line);
		strbuf_release(&sb);
	}

	/* Lines accumulate in order. */
	struct strbuf sb = STRBUF_INIT;
	sums_add(&sb, HEX_X, "one");
	sums_add(&sb, HEX_Y, "t\nwo");
	assert_string_equal(sb.buf, HEX_X "  one\n\\" HEX_Y "  t\\nwo\n");
	strbuf_release(&sb);
}

static void build_sums(struct strbuf *sb, const char *const *paths, const char *const *hexes,
		       size_t n)
{
	for (size_t i = 0; i < n; i++)
		sums_add(sb, hexes[i], paths[i]);
}

static void test_sums_compare(void **state LB_UNUSED)
{
	static const char *const paths[] = { "dirs/data/a", "dirs/data/sub/b", "files/conf" };
	static const char *const same[] = { HEX_X, HEX_X, HEX_Y };
	static const char *const changed[] = { HEX_X, HEX_Y, HEX_Y };
	struct strbuf rec = STRBUF_INIT, comp = STRBUF_INIT, detail = STRBUF_INIT;

	/* Equal, including both empty. */
	assert_int_equal(sums_compare(&rec, &comp, &detail), 0);
	assert_int_equal(detail.len, 0);
	build_sums(&rec, paths, same, 3);
	build_sums(&comp, paths, same, 3);
	assert_int_equal(sums_compare(&rec, &comp, &detail), 0);
	assert_int_equal(detail.len, 0);

	/* A changed hash names the path. */
	strbuf_reset(&comp);
	build_sums(&comp, paths, changed, 3);
	assert_int_equal(sums_compare(&rec, &comp, &detail), -1);
	assert_contains(detail.buf, "'dirs/data/sub/b'");
	assert_contains(detail.buf, "mismatch");

	/* A file listed in SHA256SUMS but missing from the archive. */
	strbuf_reset(&comp);
	strbuf_reset(&detail);
	build_sums(&comp, paths, same, 2);
	assert_int_equal(sums_compare(&rec, &comp, &detail), -1);
	assert_contains(detail.buf, "'files/conf'");
	assert_contains(detail.buf, "missing");

	/* An extra file in the archive that SHA256SUMS does not list. */
	strbuf_reset(&comp);
	strbuf_reset(&detail);
	build_sums(&comp, paths, same, 3);
	sums_add(&comp, HEX_X, "dirs/data/extra");
	assert_int_equal(sums_compare(&rec, &comp, &detail), -1);
	assert_contains(detail.buf, "'dirs/data/extra'");
	assert_contains(detail.buf, "not in its SHA256SUMS");

	/* Recorded empty, archive has files (and the reverse). */
	struct strbuf empty = STRBUF_INIT;
	strbuf_reset(&detail);
	assert_int_equal(sums_compare(&empty, &rec, &detail), -1);
	assert_contains(detail.buf, "'dirs/data/a'");
	strbuf_reset(&detail);
	assert_int_equal(sums_compare(&rec, &empty, &detail), -1);
	assert_contains(detail.buf, "'dirs/data/a'");

	/* A different file at the same position names both. */
	static const char *const renamed[] = { "dirs/data/a", "dirs/data/sub/c", "files/conf" };
	strbuf_reset(&comp);
	strbuf_reset(&detail);
	build_sums(&comp, renamed, same, 3);
	assert_int_equal(sums_compare(&rec, &comp, &detail), -1);
	assert_contains(detail.buf, "'dirs/data/sub/b'");
	assert_contains(detail.buf, "'dirs/data/sub/c'");

	/* An escaped line: the path in the message is the escaped one, without the hash. */
	strbuf_reset(&rec);
	strbuf_reset(&comp);
	strbuf_reset(&detail);
	sums_add(&rec, HEX_X, "dirs/data/new\nline");
	sums_add(&comp, HEX_Y, "dirs/data/new\nline");
	assert_int_equal(sums_compare(&rec, &comp, &detail), -1);
	assert_contains(detail.buf, "'dirs/data/new\\nline'");
	assert_null(strstr(detail.buf, HEX_X));
	assert_null(strstr(detail.buf, HEX_Y));

	/* Same escaped content on both sides is equal. */
	strbuf_reset(&comp);
	strbuf_reset(&detail);
	sums_add(&comp, HEX_X, "dirs/data/new\nline");
	assert_int_equal(sums_compare(&rec, &comp, &detail), 0);

	strbuf_release(&rec);
	strbuf_release(&comp);
	strbuf_release(&detail);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),	  cmocka_unit_test(test_sqlite_format),
		cmocka_unit_test(test_roundtrip_empty),	  cmocka_unit_test(test_from_json_errors),
		cmocka_unit_test(test_archive_prefix),	  cmocka_unit_test(test_sha256_hex),
		cmocka_unit_test(test_sums_add_escaping), cmocka_unit_test(test_sums_compare),
	};

	return cmocka_run_group_tests_name("manifest", tests, NULL, NULL);
}

/* Unit tests for config.c: BACKUP_* parsing and validation from hand-built environments. */
#include "unit.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "compress.h"
#include "config.h"
#include "fs.h"
#include "strbuf.h"
#include "xalloc.h"

/* A NULL-terminated environment from string literals. */
#define ENV(...) ((char *[]){ __VA_ARGS__, NULL })

#define KEY	  "K3y-Sup3r-S3cr3t-Value-4242"
#define FILE_KEY  "F1le-K3y-S3cr3t-Value-7777"
#define PG_PASSWD "hunter2-pg-passw0rd"
#define LONG_NAME "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._-"

static int load(struct config *cfg, struct err *e, char **envp)
{
	*cfg = (struct config)CONFIG_INIT;
	*e = (struct err)ERR_INIT;
	return config_load(cfg, envp, e);
}

/* Load and expect success; the caller releases cfg. */
static void expect_ok(struct config *cfg, char **envp)
{
	struct err e;

	if (load(cfg, &e, envp) != 0)
		fail_msg("config_load failed: %s", e.msg);
	assert_int_equal(e.code, LB_OK);
}

/* Load and expect LB_EXIT_CONFIG with a message containing `needle`; returns the message. */
static void expect_err(char **envp, const char *needle, struct err *ret)
{
	struct config cfg;
	struct err e;

	int r = load(&cfg, &e, envp);
	config_release(&cfg);
	if (r != -1)
		fail_msg("config_load succeeded; expected an error naming '%s'", needle);
	assert_int_equal(e.code, LB_EXIT_CONFIG);
	assert_contains(e.msg, needle);
	if (ret)
		*ret = e;
}

static bool has_warning(const struct config *cfg, const char *needle)
{
	for (size_t i = 0; i < cfg->warnings.nr; i++)
		if (strstr(cfg->warnings.v[i], needle))
			return true;
	return false;
}

static void assert_no_warning_contains(const struct config *cfg, const char *needle)
{
	for (size_t i = 0; i < cfg->warnings.nr; i++)
		assert_not_contains(cfg->warnings.v[i], needle);
}

/* A temporary file with the given content under /tmp; caller unlinks and frees. */
static char *temp_file(const void *data, size_t len)
{
	char tmpl[] = "/tmp/lifeboat-test-XXXXXX";
	int fd = mkstemp(tmpl);

	assert_true(fd >= 0);
	assert_int_equal(write_all(fd, data, len), 0);
	assert_int_equal(close(fd), 0);
	return xstrdup(tmpl);
}

static void remove_temp_file(char *path)
{
	assert_int_equal(unlink(path), 0);
	free(path);
}

static void check_source(const struct config *cfg, size_t i, enum source_kind kind,
			 const char *path, const char *name)
{
	assert_true(i < cfg->nr_sources);
	assert_int_equal(cfg->sources[i].kind, kind);
	assert_string_equal(cfg->sources[i].path, path);
	assert_string_equal(cfg->sources[i].name, name);
}

/* ---- basics ---- */

static void test_minimal(void **state LB_UNUSED)
{
	struct config cfg;

	expect_ok(&cfg, ENV("BACKUP_NAME=test", "HOME=/root", "PATH=/usr/bin:/bin", "BACKUPNAME=x",
			    "MY_BACKUP_DIRS=nonsense"));
	assert_string_equal(cfg.name, "test");
	assert_null(cfg.local.path);
	assert_true(cfg.crypt.encrypt);
	assert_int_equal(cfg.crypt.key.len, 0);
	assert_null(cfg.crypt.key_origin);
	assert_int_equal(cfg.nr_sources, 0);
	assert_false(cfg.debug);
	assert_null(cfg.tz);
	assert_int_equal(cfg.warnings.nr, 0);

	struct strbuf d = STRBUF_INIT;
	config_describe(&cfg, &d);
	assert_contains(d.buf, "BACKUP_NAME          test\n");
	assert_contains(d.buf, "BACKUP_LOCAL_PATH    (unset)");
	assert_contains(d.buf, "encryption key       (unset)");
	strbuf_release(&d);
	config_release(&cfg);
	assert_null(cfg.name);
	assert_int_equal(cfg.nr_sources, 0);

	/* A full, valid configuration. */
	expect_ok(&cfg, ENV("BACKUP_NAME=myapp-production", "BACKUP_LOCAL_PATH=/srv/backups/",
			    "BACKUP_ENCRYPTION_KEY=" KEY, "BACKUP_ENCRYPTION=gpg",
			    "BACKUP_DIRS=/data:data", "BACKUP_FILES=/etc/app.conf:conf",
			    "BACKUP_DEBUG=true", "TZ=Europe/Berlin"));
	assert_string_equal(cfg.name, "myapp-production");
	assert_string_equal(cfg.local.path, "/srv/backups");
	char *dir = config_local_dir(&cfg);
	assert_string_equal(dir, "/srv/backups/myapp-production");
	free(dir);
	assert_true(cfg.crypt.encrypt);
	assert_string_equal(cfg.crypt.key.buf, KEY);
	assert_string_equal(cfg.crypt.key_origin, "BACKUP_ENCRYPTION_KEY");
	assert_int_equal(cfg.nr_sources, 2);
	check_source(&cfg, 0, SOURCE_DIR, "/data", "data");
	check_source(&cfg, 1, SOURCE_FILE, "/etc/app.conf", "conf");
	assert_true(cfg.debug);
	assert_string_equal(cfg.tz, "Europe/Berlin");
	assert_int_equal(cfg.warnings.nr, 0);
	config_release(&cfg);
}

static void test_name(void **state LB_UNUSED)
{
	static const char *const bad[] = {
		"BACKUP_NAME=a/b", "BACKUP_NAME=..",  "BACKUP_NAME=.",	   "BACKUP_NAME=a b",
		"BACKUP_NAME=ä",   "BACKUP_NAME=a:b", "BACKUP_NAME=/test", "BACKUP_NAME=a\nb",
	};
	struct config cfg;
	char name129[160], name128[160];

	/* Missing or empty. */
	expect_err(ENV("HOME=/root"), "BACKUP_NAME", NULL);
	expect_err(ENV("BACKUP_NAME="), "BACKUP_NAME", NULL);
	expect_err(ENV("BACKUP_DIRS=/data:data"), "BACKUP_NAME", NULL);

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_err(ENV((char *)bad[i]), "BACKUP_NAME", NULL);

	/* 128 characters are fine, 129 are not. */
	snprintf(name128, sizeof(name128), "BACKUP_NAME=%s%.*s", LONG_NAME, 128 - 65, LONG_NAME);
	assert_int_equal(strlen(name128), 12 + 128);
	expect_ok(&cfg, ENV(name128));
	assert_int_equal(strlen(cfg.name), 128);
	config_release(&cfg);
	snprintf(name129, sizeof(name129), "BACKUP_NAME=%s%.*s", LONG_NAME, 129 - 65, LONG_NAME);
	assert_int_equal(strlen(name129), 12 + 129);
	expect_err(ENV(name129), "BACKUP_NAME", NULL);

	/* Unusual but valid names. */
	static const char *const good[] = { "BACKUP_NAME=a", "BACKUP_NAME=-", "BACKUP_NAME=...",
					    "BACKUP_NAME=A.b_c-9" };
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		expect_ok(&cfg, ENV((char *)good[i]));
		assert_string_equal(cfg.name, good[i] + strlen("BACKUP_NAME="));
		config_release(&cfg);
	}
}

static void test_name_valid(void **state LB_UNUSED)
{
	assert_true(config_name_valid("data"));
	assert_true(config_name_valid("A-z_0.9"));
	assert_true(config_name_valid("..."));
	assert_true(config_name_valid(".hidden"));
	assert_false(config_name_valid(""));
	assert_false(config_name_valid("."));
	assert_false(config_name_valid(".."));
	assert_false(config_name_valid("a/b"));
	assert_false(config_name_valid("a b"));
	assert_false(config_name_valid("a:b"));
	assert_false(config_name_valid("a\\b"));
	assert_false(config_name_valid("caf\xc3\xa9"));
}

/* ---- BACKUP_DIRS / BACKUP_FILES ---- */

static void test_sources_lists(void **state LB_UNUSED)
{
	struct config cfg;

	/* Commas, newlines, surrounding blanks, empty entries and a trailing comma. */
	expect_ok(&cfg, ENV("BACKUP_NAME=test",
			    "BACKUP_DIRS= /data:data ,\n\t/srv/www/:www\r\n,,\n  /opt/app///:app,",
			    "BACKUP_FILES=/etc/app.conf:conf\n/etc/hosts:hosts\n"));
	assert_int_equal(cfg.nr_sources, 5);
	check_source(&cfg, 0, SOURCE_DIR, "/data", "data");
	check_source(&cfg, 1, SOURCE_DIR, "/srv/www", "www");
	check_source(&cfg, 2, SOURCE_DIR, "/opt/app", "app");
	check_source(&cfg, 3, SOURCE_FILE, "/etc/app.conf", "conf");
	check_source(&cfg, 4, SOURCE_FILE, "/etc/hosts", "hosts");

	assert_ptr_equal(config_find_source(&cfg, SOURCE_DIR, "www"), &cfg.sources[1]);
	assert_ptr_equal(config_find_source(&cfg, SOURCE_FILE, "hosts"), &cfg.sources[4]);
	assert_null(config_find_source(&cfg, SOURCE_FILE, "www"));
	assert_null(config_find_source(&cfg, SOURCE_DIR, "nope"));

	struct strbuf d = STRBUF_INIT;
	config_describe(&cfg, &d);
	assert_contains(d.buf, "/srv/www -> dirs/www");
	assert_contains(d.buf, "/etc/hosts -> files/hosts");
	strbuf_release(&d);
	config_release(&cfg);

	/* A path containing ':' splits at the last ':'. */
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_DIRS=/mnt/c:d/x:win,/a:b:c/:n2"));
	assert_int_equal(cfg.nr_sources, 2);
	check_source(&cfg, 0, SOURCE_DIR, "/mnt/c:d/x", "win");
	check_source(&cfg, 1, SOURCE_DIR, "/a:b:c", "n2");
	config_release(&cfg);

	/* The root directory keeps its slash; ".." inside a component is not "..". */
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_DIRS=///:root"));
	check_source(&cfg, 0, SOURCE_DIR, "/", "root");
	config_release(&cfg);
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_DIRS=/data/..x/a..b/...:d,/srv/x..:x"));
	check_source(&cfg, 0, SOURCE_DIR, "/data/..x/a..b/...", "d");
	check_source(&cfg, 1, SOURCE_DIR, "/srv/x..", "x");
	config_release(&cfg);

	/* Blank-only and empty lists mean no sources. */
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_DIRS= , \n ,", "BACKUP_FILES="));
	assert_int_equal(cfg.nr_sources, 0);
	config_release(&cfg);
}

static void test_sources_errors(void **state LB_UNUSED)
{
	static const char *const bad_dirs[] = {
		/* entries without ":name" */
		"BACKUP_DIRS=/data",
		"BACKUP_DIRS=/data:data,/srv",
		"BACKUP_DIRS=/data:",
		"BACKUP_DIRS=:data",
		"BACKUP_DIRS=:",
		/* relative paths */
		"BACKUP_DIRS=data:data",
		"BACKUP_DIRS=./data:data",
		"BACKUP_DIRS=~/data:data",
		"BACKUP_DIRS=/ok:ok,rel/dir:rel",
		/* ".." in the path */
		"BACKUP_DIRS=/data/../etc:data",
		"BACKUP_DIRS=/..:up",
		"BACKUP_DIRS=/data/..:up",
		"BACKUP_DIRS=/data/../:up",
		"BACKUP_DIRS=/../data:up",
		/* invalid names */
		"BACKUP_DIRS=/data:a b",
		"BACKUP_DIRS=/data:..",
		"BACKUP_DIRS=/data:.",
		"BACKUP_DIRS=/data:caf\xc3\xa9",
		"BACKUP_DIRS=/data:na$me",
		"BACKUP_DIRS=/data:na/me",
		"BACKUP_DIRS=/data:data:na*me",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad_dirs); i++)
		expect_err(ENV("BACKUP_NAME=test", (char *)bad_dirs[i]), "BACKUP_DIRS", NULL);

	/* The same in BACKUP_FILES names BACKUP_FILES. */
	for (size_t i = 0; i < ARRAY_SIZE(bad_dirs); i++) {
		char buf[256];
		snprintf(buf, sizeof(buf), "BACKUP_FILES=%s", bad_dirs[i] + strlen("BACKUP_DIRS="));
		expect_err(ENV("BACKUP_NAME=test", "BACKUP_DIRS=/ok:ok", buf), "BACKUP_FILES",
			   NULL);
	}

	/* The message shows the offending entry. */
	struct err e;
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_DIRS=/data/../etc:x"), "/data/../etc", &e);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_DIRS=/data:bad name"), "bad name", &e);
}

static void test_sources_duplicates(void **state LB_UNUSED)
{
	struct err e;

	/* Within BACKUP_DIRS. */
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_DIRS=/a:x,/b:x"), "BACKUP_DIRS", &e);
	assert_contains(e.msg, "'x'");
	/* The same path and name twice. */
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_DIRS=/a:x\n/a:x"), "BACKUP_DIRS", NULL);
	/* Within BACKUP_FILES. */
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_FILES=/a/f:f,/b/g:g,/c/f:f"), "BACKUP_FILES",
		   &e);
	assert_contains(e.msg, "'f'");
	/* Across both lists: the second one is named. */
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_DIRS=/data:shared",
		       "BACKUP_FILES=/etc/conf:shared"),
		   "BACKUP_FILES", &e);
	assert_contains(e.msg, "'shared'");
	/* Names differing only in case are distinct. */
	struct config cfg;
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_DIRS=/a:x,/b:X"));
	assert_int_equal(cfg.nr_sources, 2);
	config_release(&cfg);
}

/* A restore replaces a directory's whole content, so no source may lie inside a BACKUP_DIRS one. */
static void test_sources_nested(void **state LB_UNUSED)
{
	static const struct {
		const char *dirs, *files, *var;
	} nested[] = {
		{ "BACKUP_DIRS=/data:a,/data/sub:b", "BACKUP_FILES=", "BACKUP_DIRS" },
		{ "BACKUP_DIRS=/data/sub:b,/data:a", "BACKUP_FILES=", "BACKUP_DIRS" },
		{ "BACKUP_DIRS=/data:a,/data/:b", "BACKUP_FILES=", "BACKUP_DIRS" },
		{ "BACKUP_DIRS=/:root,/srv:srv", "BACKUP_FILES=", "BACKUP_DIRS" },
		{ "BACKUP_DIRS=/data:d", "BACKUP_FILES=/data/app.conf:conf", "BACKUP_FILES" },
		{ "BACKUP_DIRS=/data:d", "BACKUP_FILES=/data/x/y/z.conf:conf", "BACKUP_FILES" },
		{ "BACKUP_DIRS=/:root", "BACKUP_FILES=/etc/hosts:hosts", "BACKUP_FILES" },
	};
	static const struct {
		const char *dirs, *files;
	} apart[] = {
		{ "BACKUP_DIRS=/data:a,/database:b", "BACKUP_FILES=/data.conf:c" },
		{ "BACKUP_DIRS=/data/sub:a,/data/sub2:b", "BACKUP_FILES=/data/file:c" },
		{ "BACKUP_DIRS=/srv/a:a", "BACKUP_FILES=/srv/a-file:f" },
		/* A file is not a directory: a path below it cannot nest. */
		{ "BACKUP_DIRS=/etc/x:x", "BACKUP_FILES=/etc:f" },
	};
	struct err e;
	struct config cfg;

	for (size_t i = 0; i < ARRAY_SIZE(nested); i++) {
		expect_err(ENV("BACKUP_NAME=test", (char *)nested[i].dirs, (char *)nested[i].files),
			   nested[i].var, &e);
		assert_contains(e.msg, "inside BACKUP_DIRS");
	}
	for (size_t i = 0; i < ARRAY_SIZE(apart); i++) {
		if (load(&cfg, &e,
			 ENV("BACKUP_NAME=test", (char *)apart[i].dirs, (char *)apart[i].files)) !=
		    0)
			fail_msg("%s with %s rejected: %s", apart[i].dirs, apart[i].files, e.msg);
		config_release(&cfg);
	}
}

/* ---- encryption and the key ---- */

static void test_key_direct(void **state LB_UNUSED)
{
	struct config cfg;
	struct strbuf d = STRBUF_INIT;

	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION_KEY=" KEY));
	assert_true(cfg.crypt.encrypt);
	assert_string_equal(cfg.crypt.key.buf, KEY);
	assert_string_equal(cfg.crypt.key_origin, "BACKUP_ENCRYPTION_KEY");
	config_describe(&cfg, &d);
	assert_not_contains(d.buf, KEY);
	assert_contains(d.buf, "redacted");
	assert_contains(d.buf, "BACKUP_ENCRYPTION_KEY");
	strbuf_release(&d);
	config_release(&cfg);

	/* A key with blanks is taken as is when set directly. */
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION_KEY= with space "));
	assert_string_equal(cfg.crypt.key.buf, " with space ");
	config_release(&cfg);

	/* gpg reads one line: a line break is refused here, as backup would refuse it. */
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION_KEY= with space\n"),
		   "BACKUP_ENCRYPTION_KEY contains a line break", NULL);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION_KEY=two\nlines"),
		   "BACKUP_ENCRYPTION_KEY contains a line break", NULL);
	/* Ignored (with a warning) when nothing is encrypted. */
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION=none",
			    "BACKUP_ENCRYPTION_KEY=two\nlines"));
	config_release(&cfg);

	/* An empty variable is unset. */
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION_KEY="));
	assert_int_equal(cfg.crypt.key.len, 0);
	assert_null(cfg.crypt.key_origin);
	config_release(&cfg);
}

static void test_key_file(void **state LB_UNUSED)
{
	static const struct {
		const char *content, *key;
	} cases[] = {
		{ FILE_KEY "\n", FILE_KEY },
		{ FILE_KEY "\r\n", FILE_KEY },
		{ FILE_KEY, FILE_KEY },
		{ " blank around \n", " blank around " },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *path = temp_file(cases[i].content, strlen(cases[i].content));
		char *var = xasprintf("BACKUP_ENCRYPTION_KEY_FILE=%s", path);
		struct config cfg;
		struct strbuf d = STRBUF_INIT;

		expect_ok(&cfg, ENV("BACKUP_NAME=test", var));
		assert_string_equal(cfg.crypt.key.buf, cases[i].key);
		assert_int_equal(cfg.crypt.key.len, strlen(cases[i].key));
		assert_string_equal(cfg.crypt.key_origin, "BACKUP_ENCRYPTION_KEY_FILE");
		assert_int_equal(cfg.warnings.nr, 0);
		config_describe(&cfg, &d);
		assert_not_contains(d.buf, cases[i].key);
		assert_contains(d.buf, "BACKUP_ENCRYPTION_KEY_FILE (redacted)");
		strbuf_release(&d);
		assert_int_equal(config_require(&cfg, NEED_KEY, NULL), 0);
		config_release(&cfg);
		free(var);
		remove_temp_file(path);
	}

	/* gpg takes up to 4096 bytes on one line: longer, or two lines, is refused here. */
	char *big = xmalloc(64 * 1024);
	memset(big, 'k', 64 * 1024);
	static const struct {
		size_t len;
		const char *content, *err;
	} limits[] = {
		{ 4096, NULL, NULL },
		{ 4097, NULL, "BACKUP_ENCRYPTION_KEY_FILE is longer than 4096 bytes" },
		{ 64 * 1024, NULL, "BACKUP_ENCRYPTION_KEY_FILE is longer than 4096 bytes" },
		{ 0, "two\nlines\n", "BACKUP_ENCRYPTION_KEY_FILE contains a line break" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(limits); i++) {
		const char *content = limits[i].content ? limits[i].content : big;
		size_t len = limits[i].content ? strlen(content) : limits[i].len;
		char *path = temp_file(content, len);
		char *var = xasprintf("BACKUP_ENCRYPTION_KEY_FILE=%s", path);
		struct config cfg;
		struct err e;
		if (!limits[i].err) {
			expect_ok(&cfg, ENV("BACKUP_NAME=test", var));
			assert_int_equal(cfg.crypt.key.len, len);
			config_release(&cfg);
		} else {
			expect_err(ENV("BACKUP_NAME=test", var), limits[i].err, &e);
			assert_not_contains(e.msg, "kkkk");
		}
		free(var);
		remove_temp_file(path);
	}
	free(big);
}

static void test_key_file_errors(void **state LB_UNUSED)
{
	struct err e;

	/* Empty file, or only the newline that gets dropped. */
	static const char *const empties[] = { "", "\n", "\r\n" };
	for (size_t i = 0; i < ARRAY_SIZE(empties); i++) {
		char *path = temp_file(empties[i], strlen(empties[i]));
		char *var = xasprintf("BACKUP_ENCRYPTION_KEY_FILE=%s", path);
		expect_err(ENV("BACKUP_NAME=test", var), "BACKUP_ENCRYPTION_KEY_FILE", &e);
		free(var);
		remove_temp_file(path);
	}

	/* Missing file. */
	expect_err(ENV("BACKUP_NAME=test",
		       "BACKUP_ENCRYPTION_KEY_FILE=/nonexistent/lifeboat-test/key"),
		   "BACKUP_ENCRYPTION_KEY_FILE", &e);
	assert_contains(e.msg, "/nonexistent/lifeboat-test/key");

	/* A directory. */
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION_KEY_FILE=/tmp"),
		   "BACKUP_ENCRYPTION_KEY_FILE", NULL);

	/* Larger than 64 KiB. */
	size_t n = 64 * 1024 + 1;
	char *big = xmalloc(n);
	memset(big, 'k', n);
	char *path = temp_file(big, n);
	char *var = xasprintf("BACKUP_ENCRYPTION_KEY_FILE=%s", path);
	expect_err(ENV("BACKUP_NAME=test", var), "BACKUP_ENCRYPTION_KEY_FILE", &e);
	assert_not_contains(e.msg, "kkkk");
	free(var);
	remove_temp_file(path);
	free(big);

	/* Both the key and the key file: an error naming both, showing neither secret. */
	path = temp_file(FILE_KEY "\n", strlen(FILE_KEY) + 1);
	var = xasprintf("BACKUP_ENCRYPTION_KEY_FILE=%s", path);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION_KEY=" KEY, var),
		   "BACKUP_ENCRYPTION_KEY_FILE", &e);
	assert_contains(e.msg, "BACKUP_ENCRYPTION_KEY ");
	assert_not_contains(e.msg, KEY);
	assert_not_contains(e.msg, FILE_KEY);
	/* Order in the environment does not matter. */
	expect_err(ENV(var, "BACKUP_ENCRYPTION_KEY=" KEY, "BACKUP_NAME=test"),
		   "BACKUP_ENCRYPTION_KEY_FILE", &e);
	assert_not_contains(e.msg, KEY);
	assert_not_contains(e.msg, FILE_KEY);
	free(var);
	remove_temp_file(path);
}

/* Whatever else fails, neither the key nor the key file's content shows up in a message. */
static void test_key_never_printed(void **state LB_UNUSED)
{
	static const char *const breakers[] = {
		"BACKUP_DEBUG=maybe",	   "BACKUP_ENCRYPTION=bogus",
		"BACKUP_DIRS=relative:x",  "BACKUP_DIRS=/a:x,/b:x",
		"TZ=Mars/Olympus",	   "BACKUP_LOCAL_PATH=relative",
		"BACKUP_S3_BUCKET=bucket", "BACKUP_FILES=/data:bad name",
	};
	char *path = temp_file(FILE_KEY "\n", strlen(FILE_KEY) + 1);
	char *var = xasprintf("BACKUP_ENCRYPTION_KEY_FILE=%s", path);
	struct err e;

	for (size_t i = 0; i < ARRAY_SIZE(breakers); i++) {
		expect_err(
			ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION_KEY=" KEY, (char *)breakers[i]),
			"", &e);
		assert_not_contains(e.msg, KEY);
		expect_err(ENV("BACKUP_NAME=test", var, (char *)breakers[i]), "", &e);
		assert_not_contains(e.msg, FILE_KEY);
	}

	/* Neither in warnings nor in the description. */
	struct config cfg;
	struct strbuf d = STRBUF_INIT;
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION_KEY=" KEY,
			    "BACKUP_LOCAL_PATH=/srv/backups", "BACKUP_DIRS=/data:data",
			    "BACKUP_SCHEDULE=@daily", "BACKUP_FOO=1", "BACKUP_DEBUG=1", "TZ=UTC"));
	assert_no_warning_contains(&cfg, KEY);
	config_describe(&cfg, &d);
	assert_not_contains(d.buf, KEY);
	strbuf_release(&d);
	config_release(&cfg);

	expect_ok(&cfg, ENV("BACKUP_NAME=test", var, "BACKUP_ENCRYPTION=none"));
	assert_no_warning_contains(&cfg, FILE_KEY);
	config_describe(&cfg, &d);
	assert_not_contains(d.buf, FILE_KEY);
	strbuf_release(&d);
	config_release(&cfg);

	free(var);
	remove_temp_file(path);
}

static void test_encryption_mode(void **state LB_UNUSED)
{
	struct config cfg;
	struct strbuf d = STRBUF_INIT;

	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION=none"));
	assert_false(cfg.crypt.encrypt);
	assert_int_equal(cfg.warnings.nr, 0);
	config_describe(&cfg, &d);
	assert_contains(d.buf, "BACKUP_ENCRYPTION    none");
	strbuf_release(&d);
	config_release(&cfg);

	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION=gpg"));
	assert_true(cfg.crypt.encrypt);
	config_release(&cfg);

	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION=GPG"));
	assert_true(cfg.crypt.encrypt);
	config_release(&cfg);

	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION=None"));
	assert_false(cfg.crypt.encrypt);
	config_release(&cfg);

	/* Empty means unset: the default is gpg. */
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION="));
	assert_true(cfg.crypt.encrypt);
	config_release(&cfg);

	struct err e;
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION=bogus"), "BACKUP_ENCRYPTION", &e);
	assert_contains(e.msg, "bogus");
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION=aes"), "BACKUP_ENCRYPTION", NULL);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION=gpg "), "BACKUP_ENCRYPTION", NULL);

	/* A key with BACKUP_ENCRYPTION=none is ignored with a warning. */
	expect_ok(&cfg,
		  ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION=none", "BACKUP_ENCRYPTION_KEY=" KEY));
	assert_false(cfg.crypt.encrypt);
	assert_true(has_warning(&cfg, "BACKUP_ENCRYPTION_KEY"));
	assert_no_warning_contains(&cfg, KEY);
	config_release(&cfg);
}

static void test_compression(void **state LB_UNUSED)
{
	struct config cfg;
	struct strbuf d = STRBUF_INIT;
	struct err e;

	/* Default: gzip level 6 on every CPU we may use. */
	expect_ok(&cfg, ENV("BACKUP_NAME=test"));
	assert_int_equal(cfg.compress.algo, COMPRESSION_GZIP);
	assert_int_equal(cfg.compress.level, 6);
	assert_int_equal(cfg.compress.threads, compress_available_cpus());
	assert_true(cfg.compress.threads >= 1);
	config_describe(&cfg, &d);
	assert_contains(d.buf, "BACKUP_COMPRESSION   gzip, level 6");
	strbuf_release(&d);
	config_release(&cfg);

	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_COMPRESSION=ZSTD"));
	assert_int_equal(cfg.compress.algo, COMPRESSION_ZSTD);
	assert_int_equal(cfg.compress.level, 3);
	config_release(&cfg);

	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_COMPRESSION=zstd",
			    "BACKUP_COMPRESSION_LEVEL=19", "BACKUP_COMPRESSION_THREADS=3"));
	assert_int_equal(cfg.compress.level, 19);
	assert_int_equal(cfg.compress.threads, 3);
	assert_int_equal(cfg.warnings.nr, 0);
	config_release(&cfg);

	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_COMPRESSION=gzip",
			    "BACKUP_COMPRESSION_LEVEL=1", "BACKUP_COMPRESSION_THREADS=1"));
	assert_int_equal(cfg.compress.level, 1);
	assert_int_equal(cfg.compress.threads, 1);
	config_release(&cfg);

	/* A level with none is ignored with a warning. */
	expect_ok(&cfg,
		  ENV("BACKUP_NAME=test", "BACKUP_COMPRESSION=none", "BACKUP_COMPRESSION_LEVEL=5"));
	assert_int_equal(cfg.compress.algo, COMPRESSION_NONE);
	assert_true(has_warning(&cfg, "BACKUP_COMPRESSION_LEVEL"));
	config_describe(&cfg, &d);
	assert_contains(d.buf, "BACKUP_COMPRESSION   none");
	strbuf_release(&d);
	config_release(&cfg);

	expect_err(ENV("BACKUP_NAME=test", "BACKUP_COMPRESSION=bzip2"), "BACKUP_COMPRESSION", &e);
	assert_contains(e.msg, "'bzip2'");
	assert_null(strchr(e.msg, '\n'));
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_COMPRESSION=gz"), "BACKUP_COMPRESSION", NULL);
	/* Levels are checked against the algorithm's range. */
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_COMPRESSION_LEVEL=10"),
		   "BACKUP_COMPRESSION_LEVEL '10' is invalid: expected 1 to 9 for gzip", NULL);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_COMPRESSION_LEVEL=0"),
		   "BACKUP_COMPRESSION_LEVEL", NULL);
	expect_err(
		ENV("BACKUP_NAME=test", "BACKUP_COMPRESSION=zstd", "BACKUP_COMPRESSION_LEVEL=20"),
		"expected 1 to 19 for zstd", NULL);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_COMPRESSION_LEVEL=6x"),
		   "BACKUP_COMPRESSION_LEVEL", NULL);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_COMPRESSION_THREADS=0"),
		   "BACKUP_COMPRESSION_THREADS '0' is invalid", NULL);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_COMPRESSION_THREADS=-2"),
		   "BACKUP_COMPRESSION_THREADS", NULL);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_COMPRESSION_THREADS=two"),
		   "BACKUP_COMPRESSION_THREADS", NULL);
}

static void test_require_key(void **state LB_UNUSED)
{
	struct config cfg;
	struct err e = ERR_INIT;

	expect_ok(&cfg, ENV("BACKUP_NAME=test"));
	assert_int_equal(config_require(&cfg, 0, &e), 0);
	assert_int_equal(config_require(&cfg, NEED_KEY, &e), -1);
	assert_int_equal(e.code, LB_EXIT_CONFIG);
	assert_contains(e.msg, "BACKUP_ENCRYPTION_KEY");
	config_release(&cfg);

	/* Explicit gpg without a key, too. */
	e = (struct err)ERR_INIT;
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION=gpg"));
	assert_int_equal(config_require(&cfg, NEED_KEY, &e), -1);
	assert_int_equal(e.code, LB_EXIT_CONFIG);
	assert_contains(e.msg, "BACKUP_ENCRYPTION_KEY");
	config_release(&cfg);

	e = (struct err)ERR_INIT;
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION=none"));
	assert_int_equal(config_require(&cfg, NEED_KEY, &e), 0);
	assert_int_equal(e.code, LB_OK);
	config_release(&cfg);

	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTION_KEY=" KEY));
	assert_int_equal(config_require(&cfg, NEED_KEY, &e), 0);
	assert_int_equal(e.code, LB_OK);
	config_release(&cfg);
}

/* ---- BACKUP_DEBUG, TZ ---- */

static void test_debug(void **state LB_UNUSED)
{
	static const struct {
		const char *var;
		bool want;
	} cases[] = {
		{ "BACKUP_DEBUG=true", true },	 { "BACKUP_DEBUG=1", true },
		{ "BACKUP_DEBUG=yes", true },	 { "BACKUP_DEBUG=TRUE", true },
		{ "BACKUP_DEBUG=false", false }, { "BACKUP_DEBUG=0", false },
		{ "BACKUP_DEBUG=no", false },	 { "BACKUP_DEBUG=", false },
	};
	struct config cfg;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		expect_ok(&cfg, ENV("BACKUP_NAME=test", (char *)cases[i].var));
		if (cfg.debug != cases[i].want)
			fail_msg("%s gave debug=%d", cases[i].var, cfg.debug);
		config_release(&cfg);
	}

	struct err e;
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_DEBUG=maybe"), "BACKUP_DEBUG", &e);
	assert_contains(e.msg, "maybe");
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_DEBUG=2"), "BACKUP_DEBUG", NULL);
}

/* BACKUP_UPLOAD: stream by default; after-local only with a local store. */
static void test_upload(void **state LB_UNUSED)
{
	struct config cfg;
	struct err e;

	expect_ok(&cfg, ENV("BACKUP_NAME=test"));
	assert_int_equal(cfg.upload, UPLOAD_STREAM);
	config_release(&cfg);
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_UPLOAD=stream"));
	assert_int_equal(cfg.upload, UPLOAD_STREAM);
	config_release(&cfg);
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_LOCAL_PATH=/backups",
			    "BACKUP_UPLOAD=after-local"));
	assert_int_equal(cfg.upload, UPLOAD_AFTER_LOCAL);
	config_release(&cfg);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_UPLOAD=after-local"),
		   "BACKUP_UPLOAD=after-local needs a local store", &e);
	assert_contains(e.msg, "BACKUP_LOCAL_PATH");
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_LOCAL_PATH=/backups", "BACKUP_UPLOAD=later"),
		   "BACKUP_UPLOAD 'later' is invalid", NULL);
}

static void test_sources_non_utf8(void **state LB_UNUSED)
{
	struct err e;

	/* Such a path cannot be recorded in manifest.json (JSON is UTF-8). */
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_DIRS=/srv/caf\xe9:cafe"), "BACKUP_DIRS", &e);
	assert_contains(e.msg, "UTF-8");
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_FILES=/srv/\xc0\xaf:x"), "BACKUP_FILES", &e);
	struct config cfg;
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_DIRS=/srv/caf\xc3\xa9:cafe"));
	assert_string_equal(cfg.sources[0].path, "/srv/caf\xc3\xa9");
	config_release(&cfg);
}

static void test_tz(void **state LB_UNUSED)
{
	static const char *const good[] = {
		"UTC",
		"Europe/Berlin",
		"EST5EDT",
		":Europe/Berlin",
		"UTC0",
		"CET-1CEST",
		"Asia/Tokyo",
		"/usr/share/zoneinfo/Asia/Tokyo",
		"America/New_York",
	};
	static const char *const bad[] = {
		"Mars/Olympus",
		":Mars/Olympus",
		"Mars",
		"Europe",
		"Europe/",
		"../../etc/passwd",
		"Europe/../../../etc/passwd",
		"/nonexistent/zone",
		"/etc/passwd", /* a regular file, but not a compiled zone */
	};
	struct config cfg;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		char *var = xasprintf("TZ=%s", good[i]);
		struct err e;
		if (load(&cfg, &e, ENV("BACKUP_NAME=test", var)) != 0)
			fail_msg("TZ=%s rejected: %s", good[i], e.msg);
		assert_string_equal(cfg.tz, good[i]);
		config_release(&cfg);
		free(var);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *var = xasprintf("TZ=%s", bad[i]);
		struct err e;
		expect_err(ENV("BACKUP_NAME=test", var), "TZ", &e);
		assert_contains(e.msg, bad[i]);
		free(var);
	}

	/* Empty TZ is unset. */
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "TZ="));
	assert_null(cfg.tz);
	config_release(&cfg);
}

/* ---- unknown, ignored and unsupported variables ---- */

static void test_unknown_variable(void **state LB_UNUSED)
{
	struct config cfg;

	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_FOO=bar"));
	assert_int_equal(cfg.warnings.nr, 1);
	assert_contains(cfg.warnings.v[0], "BACKUP_FOO");
	config_release(&cfg);

	/* A typo in a secret's name: warned about by name, the value is not shown. */
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_ENCRYPTON_KEY=" KEY, "BACKUP_DIR=/data:d",
			    "BACKUP_NAME_FILE=/run/secrets/name"));
	assert_int_equal(cfg.warnings.nr, 3);
	assert_true(has_warning(&cfg, "BACKUP_ENCRYPTON_KEY"));
	assert_true(has_warning(&cfg, "BACKUP_DIR "));
	assert_true(has_warning(&cfg, "BACKUP_NAME_FILE"));
	assert_no_warning_contains(&cfg, KEY);
	config_release(&cfg);

	/* Known variables, including *_FILE of secrets, give no warning. */
	char *path = temp_file(FILE_KEY, strlen(FILE_KEY));
	char *var = xasprintf("BACKUP_ENCRYPTION_KEY_FILE=%s", path);
	expect_ok(&cfg,
		  ENV("BACKUP_NAME=test", var, "BACKUP_LOCAL_PATH=/srv/b", "BACKUP_ENCRYPTION=gpg",
		      "BACKUP_DIRS=/data:d", "BACKUP_FILES=/f:f", "BACKUP_DEBUG=0"));
	assert_int_equal(cfg.warnings.nr, 0);
	config_release(&cfg);
	free(var);
	remove_temp_file(path);
}

static void test_ignored_variables(void **state LB_UNUSED)
{
	struct config cfg;

	/* Ignored secrets are named but not shown. */
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_S3_SECRET_KEY=" KEY));
	assert_int_equal(cfg.warnings.nr, 1);
	assert_true(has_warning(&cfg, "BACKUP_S3_SECRET_KEY"));
	assert_no_warning_contains(&cfg, KEY);
	config_release(&cfg);

	/* Set but empty: nothing to warn about. */
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_S3_REGION="));
	assert_int_equal(cfg.warnings.nr, 0);
	config_release(&cfg);
}

/* BACKUP_STOP_SERVICES, BACKUP_STOP_WAIT, BACKUP_START_WAIT, DOCKER_HOST. */
static void test_stop_services(void **state LB_UNUSED)
{
	struct config cfg;
	struct err e;

	expect_ok(&cfg, ENV("BACKUP_NAME=test"));
	assert_int_equal(cfg.stop.services.nr, 0);
	assert_int_equal(cfg.stop.stop_wait, 2);
	assert_int_equal(cfg.stop.start_wait, 3);
	assert_null(cfg.docker.host);
	assert_int_equal(cfg.warnings.nr, 0);
	config_release(&cfg);

	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_STOP_SERVICES= app , my_db.1,app,web-2",
			    "BACKUP_STOP_WAIT=0", "BACKUP_START_WAIT=86400",
			    "DOCKER_HOST=tcp://proxy:2375"));
	assert_int_equal(cfg.stop.services.nr, 3);
	assert_string_equal(cfg.stop.services.v[0], "app");
	assert_string_equal(cfg.stop.services.v[1], "my_db.1");
	assert_string_equal(cfg.stop.services.v[2], "web-2");
	assert_null(cfg.stop.services.v[3]);
	assert_int_equal(cfg.stop.stop_wait, 0);
	assert_int_equal(cfg.stop.start_wait, 86400);
	assert_string_equal(cfg.docker.host, "tcp://proxy:2375");
	assert_int_equal(cfg.warnings.nr, 0);
	config_release(&cfg);

	/* Tabs around a name are trimmed like spaces, at either end of the list. */
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_STOP_SERVICES=\tdb\t, web \t"));
	assert_int_equal(cfg.stop.services.nr, 2);
	assert_string_equal(cfg.stop.services.v[0], "db");
	assert_string_equal(cfg.stop.services.v[1], "web");
	config_release(&cfg);

	static const struct {
		const char *var, *needle;
	} bad[] = {
		{ "BACKUP_STOP_SERVICES=app,,db", "BACKUP_STOP_SERVICES entry ''" },
		{ "BACKUP_STOP_SERVICES=app,", "BACKUP_STOP_SERVICES ends with ','" },
		{ "BACKUP_STOP_SERVICES=app;rm", "BACKUP_STOP_SERVICES entry 'app;rm'" },
		{ "BACKUP_STOP_SERVICES=-app", "BACKUP_STOP_SERVICES entry '-app'" },
		{ "BACKUP_STOP_SERVICES=a b", "BACKUP_STOP_SERVICES entry 'a b'" },
		{ "BACKUP_STOP_SERVICES=/app", "BACKUP_STOP_SERVICES entry '/app'" },
		{ "BACKUP_STOP_WAIT=-1", "BACKUP_STOP_WAIT '-1' is invalid" },
		{ "BACKUP_STOP_WAIT=2s", "BACKUP_STOP_WAIT '2s' is invalid" },
		{ "BACKUP_STOP_WAIT=86401", "BACKUP_STOP_WAIT '86401' is invalid" },
		{ "BACKUP_START_WAIT=x", "BACKUP_START_WAIT 'x' is invalid" },
		{ "BACKUP_START_WAIT=99999999999999999999", "BACKUP_START_WAIT" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		expect_err(ENV("BACKUP_NAME=test", (char *)bad[i].var), bad[i].needle, &e);
		assert_null(strchr(e.msg, '\n'));
	}
	/* A name of 129 characters is refused; 128 is fine. */
	char *long_ok = xasprintf("BACKUP_STOP_SERVICES=%0128d", 0);
	char *long_bad = xasprintf("BACKUP_STOP_SERVICES=%0129d", 0);
	expect_ok(&cfg, ENV("BACKUP_NAME=test", long_ok));
	config_release(&cfg);
	expect_err(ENV("BACKUP_NAME=test", long_bad), "BACKUP_STOP_SERVICES entry", &e);
	free(long_ok);
	free(long_bad);
}

/* The daemon's variables: schedule, retention, webhooks, lock, metrics, log, state. */
static void test_daemon_variables(void **state LB_UNUSED)
{
	struct config cfg;
	struct err e;
	struct strbuf d = STRBUF_INIT;

	expect_ok(&cfg, ENV("BACKUP_NAME=test"));
	assert_null(cfg.daemon.schedule);
	assert_false(retention_enabled(&cfg.retention));
	assert_int_equal(cfg.daemon.lock_timeout, 3600);
	assert_null(cfg.daemon.metrics_addr);
	assert_string_equal(cfg.log_file, "/var/log/backup.log");
	if (geteuid() == 0)
		assert_string_equal(cfg.state_dir, "/var/lib/lifeboat");
	config_release(&cfg);
	/* Not root: under HOME, unless set. */
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "HOME=/home/u"));
	assert_string_equal(cfg.state_dir,
			    geteuid() == 0 ? "/var/lib/lifeboat" : "/home/u/.local/state/lifeboat");
	config_release(&cfg);

	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_SCHEDULE=*/3 * * * * *",
			    "BACKUP_RETENTION_DAYS=30", "BACKUP_KEEP_LAST=3", "BACKUP_KEEP_DAILY=7",
			    "BACKUP_KEEP_WEEKLY=4", "BACKUP_KEEP_MONTHLY=12",
			    "BACKUP_START_WEBHOOK=https://hc-ping.com/" KEY "/start",
			    "BACKUP_SUCCESS_WEBHOOK=http://127.0.0.1:1/" KEY,
			    "BACKUP_FAILURE_WEBHOOK=https://hc-ping.com/" KEY "/fail",
			    "BACKUP_LOCK_TIMEOUT=30m", "BACKUP_METRICS_ADDR=127.0.0.1:9090",
			    "BACKUP_LOG_FILE=/tmp//lb.log", "BACKUP_STATE_DIR=/tmp/st/"));
	assert_int_equal(cfg.warnings.nr, 0);
	assert_string_equal(cfg.daemon.schedule, "*/3 * * * * *");
	assert_true(cfg.daemon.cron.has_seconds);
	assert_int_equal(cfg.retention.days, 30);
	assert_int_equal(cfg.retention.keep_last, 3);
	assert_int_equal(cfg.retention.keep_daily, 7);
	assert_int_equal(cfg.retention.keep_weekly, 4);
	assert_int_equal(cfg.retention.keep_monthly, 12);
	assert_string_equal(cfg.webhook.success, "http://127.0.0.1:1/" KEY);
	assert_int_equal(cfg.daemon.lock_timeout, 1800);
	assert_string_equal(cfg.daemon.metrics_addr, "127.0.0.1:9090");
	assert_string_equal(cfg.log_file, "/tmp/lb.log");
	assert_string_equal(cfg.state_dir, "/tmp/st");
	config_describe(&cfg, &d);
	assert_not_contains(d.buf, KEY);
	assert_contains(d.buf, "*/3 * * * * *");
	strbuf_release(&d);
	config_release(&cfg);

	/* Webhook URLs are secrets: *_FILE works, and errors never show them. */
	char *path = temp_file("https://hc-ping.com/" FILE_KEY "\n", strlen(FILE_KEY) + 21);
	char *var = xasprintf("BACKUP_SUCCESS_WEBHOOK_FILE=%s", path);
	expect_ok(&cfg, ENV("BACKUP_NAME=test", var));
	assert_string_equal(cfg.webhook.success, "https://hc-ping.com/" FILE_KEY);
	config_release(&cfg);
	free(var);
	remove_temp_file(path);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_FAILURE_WEBHOOK=ftp://x/" KEY),
		   "BACKUP_FAILURE_WEBHOOK is not an http", &e);
	assert_not_contains(e.msg, KEY);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_START_WEBHOOK=https://x/" KEY " y"),
		   "BACKUP_START_WEBHOOK contains spaces", &e);
	assert_not_contains(e.msg, KEY);

	expect_err(ENV("BACKUP_NAME=test", "BACKUP_SCHEDULE=0 25 * * *"),
		   "BACKUP_SCHEDULE '0 25 * * *': hour field '25'", NULL);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_SCHEDULE=daily"), "BACKUP_SCHEDULE", NULL);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_RETENTION_DAYS=-1"), "BACKUP_RETENTION_DAYS",
		   NULL);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_KEEP_DAILY=7x"), "BACKUP_KEEP_DAILY", NULL);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_LOCK_TIMEOUT=5d"), "BACKUP_LOCK_TIMEOUT", NULL);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_LOCK_TIMEOUT=-5"), "BACKUP_LOCK_TIMEOUT", NULL);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_METRICS_ADDR=localhost:80"),
		   "BACKUP_METRICS_ADDR", NULL);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_METRICS_ADDR=:99999"), "BACKUP_METRICS_ADDR",
		   NULL);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_LOG_FILE=backup.log"), "BACKUP_LOG_FILE", NULL);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_STATE_DIR=/a/../b"), "BACKUP_STATE_DIR", NULL);

	expect_ok(&cfg,
		  ENV("BACKUP_NAME=test", "BACKUP_LOCK_TIMEOUT=90", "BACKUP_METRICS_ADDR=:9100"));
	assert_int_equal(cfg.daemon.lock_timeout, 90);
	config_release(&cfg);
}

static void test_unsupported_variables(void **state LB_UNUSED)
{
	/* Every variable of the seed is implemented now. Empty values are unset: no error. */
	struct config cfg;
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_POSTGRES=", "BACKUP_S3_BUCKET="));
	assert_int_equal(cfg.nr_sources, 0);
	config_release(&cfg);
}

/* ---- BACKUP_POSTGRES / BACKUP_MONGODB ---- */

static void test_db_sources(void **state LB_UNUSED)
{
	struct config cfg;

	/* One per line (the spec's .env form) and comma-separated; names from the database. */
	expect_ok(&cfg,
		  ENV("BACKUP_NAME=test",
		      "BACKUP_POSTGRES=postgresql://u:" PG_PASSWD "@db:5432/app\n"
		      "postgresql://u:pw@db2/app?sslmode=require, postgres://u@db/",
		      "BACKUP_MONGODB=mongodb://root:pw@m1:27017,m2:27017/shop?authSource=admin"
		      "&replicaSet=rs0,mongodb://root:pw@mongo/?authSource=admin"));
	assert_int_equal(cfg.nr_sources, 5);
	assert_int_equal(cfg.sources[0].kind, SOURCE_POSTGRES);
	assert_string_equal(cfg.sources[0].name, "app");
	assert_string_equal(cfg.sources[0].path, "postgresql://u:***@db:5432/app");
	assert_string_equal(cfg.sources[0].uri, "postgresql://u:" PG_PASSWD "@db:5432/app");
	assert_string_equal(cfg.sources[1].name, "db2-app"); /* the clash adds the host */
	assert_string_equal(cfg.sources[1].path, "postgresql://u:***@db2/app?sslmode=require");
	assert_string_equal(cfg.sources[2].name, "db"); /* no database: the host */
	assert_int_equal(cfg.sources[3].kind, SOURCE_MONGODB);
	assert_string_equal(cfg.sources[3].name, "shop");
	assert_string_equal(cfg.sources[3].path,
			    "mongodb://root:***@m1:27017,m2:27017/shop?authSource=admin&"
			    "replicaSet=rs0");
	assert_string_equal(cfg.sources[4].name, "mongo");
	struct strbuf d = STRBUF_INIT;
	config_describe(&cfg, &d);
	assert_not_contains(d.buf, PG_PASSWD);
	assert_contains(d.buf, "postgres/app");
	strbuf_release(&d);
	config_release(&cfg);

	/* The *_FILE form, as a secret. */
	static const char uri[] = "postgresql://backup:" PG_PASSWD "@db.internal/app\n";
	char *path = temp_file(uri, strlen(uri));
	char *var = xasprintf("BACKUP_POSTGRES_FILE=%s", path);
	expect_ok(&cfg, ENV("BACKUP_NAME=test", var));
	assert_int_equal(cfg.nr_sources, 1);
	assert_string_equal(cfg.sources[0].name, "app");
	config_release(&cfg);
	free(var);
	remove_temp_file(path);

	/* Bad URIs: one line naming the variable, never the password. */
	static const struct {
		const char *var, *needle;
	} bad[] = {
		{ "BACKUP_POSTGRES=db:5432/app", "not a URI" },
		{ "BACKUP_POSTGRES=mysql://u:" PG_PASSWD "@db/app", "not a postgresql:// URI" },
		{ "BACKUP_POSTGRES=postgresql://u:" PG_PASSWD "@db:54x2/app", "invalid port" },
		{ "BACKUP_POSTGRES=postgresql://u:" PG_PASSWD "%zz@db/app", "percent-encoding" },
		{ "BACKUP_POSTGRES=postgresql://u:" PG_PASSWD "%00@db/app", "percent-encoding" },
		{ "BACKUP_POSTGRES=postgresql://u:" PG_PASSWD " x@db/app", "space" },
		{ "BACKUP_MONGODB=postgresql://u:" PG_PASSWD "@db/app", "not a mongodb:// URI" },
		{ "BACKUP_MONGODB=mongodb://u:" PG_PASSWD "@/app", "no host" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct err e;
		const char *want = strncmp(bad[i].var, "BACKUP_POSTGRES", 15) ? "BACKUP_MONGODB"
									      : "BACKUP_POSTGRES";
		expect_err(ENV("BACKUP_NAME=test", (char *)bad[i].var), want, &e);
		assert_contains(e.msg, bad[i].needle);
		assert_not_contains(e.msg, PG_PASSWD);
	}
}

/* ---- BACKUP_S3_* ---- */

static void test_s3(void **state LB_UNUSED)
{
	struct config cfg;
	struct strbuf out = STRBUF_INIT;
	struct err e;

	/* Defaults: AWS (no endpoint), us-east-1, 16 MiB parts, path style decided later. */
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_S3_BUCKET=my-bucket",
			    "BACKUP_S3_ACCESS_KEY=AKIDEXAMPLE", "BACKUP_S3_SECRET_KEY=" KEY));
	assert_string_equal(cfg.s3.bucket, "my-bucket");
	assert_null(cfg.s3.endpoint);
	assert_string_equal(cfg.s3.region, "us-east-1");
	assert_true(cfg.s3.part_size == 16u << 20);
	assert_int_equal(cfg.s3.path_style, -1);
	assert_string_equal(cfg.s3.secret_key.buf, KEY);
	config_describe(&cfg, &out);
	assert_not_contains(out.buf, KEY);
	assert_not_contains(out.buf, "AKIDEXAMPLE");
	assert_contains(out.buf, "s3://my-bucket/test/");
	strbuf_release(&out);
	config_release(&cfg);

	/* Everything set; the secret from a file. */
	char *path = temp_file(KEY "\n", strlen(KEY) + 1);
	char *var = xasprintf("BACKUP_S3_SECRET_KEY_FILE=%s", path);
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_S3_BUCKET=b.1-x", "BACKUP_S3_ACCESS_KEY=A",
			    var, "BACKUP_S3_ENDPOINT=http://127.0.0.1:9000/",
			    "BACKUP_S3_REGION=eu-central-1", "BACKUP_S3_PATH_STYLE=false",
			    "BACKUP_S3_PART_SIZE=5M", "BACKUP_S3_STORAGE_CLASS=STANDARD_IA"));
	assert_string_equal(cfg.s3.secret_key.buf, KEY);
	assert_string_equal(cfg.s3.endpoint, "http://127.0.0.1:9000");
	assert_string_equal(cfg.s3.region, "eu-central-1");
	assert_int_equal(cfg.s3.path_style, 0);
	assert_true(cfg.s3.part_size == 5u << 20);
	assert_string_equal(cfg.s3.storage_class, "STANDARD_IA");
	config_release(&cfg);
	free(var);
	remove_temp_file(path);

	/* Errors name the variable and never show a secret. */
	static const char *const bad[][2] = {
		{ "BACKUP_S3_PART_SIZE=4M", "BACKUP_S3_PART_SIZE" },
		{ "BACKUP_S3_PART_SIZE=lots", "BACKUP_S3_PART_SIZE" },
		{ "BACKUP_S3_PART_SIZE=6G", "BACKUP_S3_PART_SIZE" },
		{ "BACKUP_S3_ENDPOINT=ftp://x", "BACKUP_S3_ENDPOINT" },
		{ "BACKUP_S3_ENDPOINT=https://user:pw@host", "BACKUP_S3_ENDPOINT" },
		{ "BACKUP_S3_ENDPOINT=https://host/path", "BACKUP_S3_ENDPOINT" },
		{ "BACKUP_S3_PATH_STYLE=maybe", "BACKUP_S3_PATH_STYLE" },
		{ "BACKUP_S3_REGION=us east", "BACKUP_S3_REGION" },
		{ "BACKUP_S3_STORAGE_CLASS=glacier now", "BACKUP_S3_STORAGE_CLASS" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		expect_err(ENV("BACKUP_NAME=test", "BACKUP_S3_BUCKET=bucket",
			       "BACKUP_S3_ACCESS_KEY=A", "BACKUP_S3_SECRET_KEY=" KEY,
			       (char *)bad[i][0]),
			   bad[i][1], &e);
		assert_not_contains(e.msg, KEY);
		assert_not_contains(e.msg, "pw@");
	}
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_S3_BUCKET=s3://bucket/x",
		       "BACKUP_S3_ACCESS_KEY=A", "BACKUP_S3_SECRET_KEY=" KEY),
		   "BACKUP_S3_BUCKET", &e);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_S3_BUCKET=bucket", "BACKUP_S3_ACCESS_KEY=A"),
		   "BACKUP_S3_SECRET_KEY", &e);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_S3_BUCKET=bucket", "BACKUP_S3_SECRET_KEY=" KEY),
		   "BACKUP_S3_ACCESS_KEY", &e);
	assert_not_contains(e.msg, KEY);

	/* S3 settings without a bucket are warned about, not used. */
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_S3_REGION=eu-west-1"));
	assert_true(has_warning(&cfg, "BACKUP_S3_REGION"));
	assert_null(cfg.s3.bucket);
	config_release(&cfg);
}

/* ---- BACKUP_LOCAL_PATH ---- */

static void test_local_path(void **state LB_UNUSED)
{
	struct config cfg;
	struct strbuf d = STRBUF_INIT;

	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_LOCAL_PATH=/srv/backups//"));
	assert_string_equal(cfg.local.path, "/srv/backups");
	config_describe(&cfg, &d);
	assert_contains(d.buf, "/srv/backups/test/");
	strbuf_release(&d);
	config_release(&cfg);

	expect_err(ENV("BACKUP_NAME=test", "BACKUP_LOCAL_PATH=backups"), "BACKUP_LOCAL_PATH", NULL);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_LOCAL_PATH=/srv/../backups"),
		   "BACKUP_LOCAL_PATH", NULL);
	expect_err(ENV("BACKUP_NAME=test", "BACKUP_LOCAL_PATH=/srv/.."), "BACKUP_LOCAL_PATH", NULL);
}

static void test_local_path_inside_dirs(void **state LB_UNUSED)
{
	static const struct {
		const char *dirs, *local;
	} inside[] = {
		{ "BACKUP_DIRS=/data:data", "BACKUP_LOCAL_PATH=/data/backups" },
		{ "BACKUP_DIRS=/data:data", "BACKUP_LOCAL_PATH=/data" },
		{ "BACKUP_DIRS=/data:data", "BACKUP_LOCAL_PATH=/data/" },
		{ "BACKUP_DIRS=/data/:data", "BACKUP_LOCAL_PATH=/data/backups/" },
		{ "BACKUP_DIRS=/srv:srv,/data:data", "BACKUP_LOCAL_PATH=/data/x/y/z" },
		{ "BACKUP_DIRS=/:root", "BACKUP_LOCAL_PATH=/backups" },
		{ "BACKUP_DIRS=/data:data", "BACKUP_LOCAL_PATH=/data/./backups" },
		{ "BACKUP_DIRS=/data:data", "BACKUP_LOCAL_PATH=/data//backups" },
	};
	static const struct {
		const char *dirs, *local;
	} outside[] = {
		{ "BACKUP_DIRS=/data:data", "BACKUP_LOCAL_PATH=/database" },
		{ "BACKUP_DIRS=/data:data", "BACKUP_LOCAL_PATH=/database/backups" },
		{ "BACKUP_DIRS=/data:data", "BACKUP_LOCAL_PATH=/data-backups" },
		{ "BACKUP_DIRS=/database:db", "BACKUP_LOCAL_PATH=/data" },
		{ "BACKUP_DIRS=/srv/data:data", "BACKUP_LOCAL_PATH=/srv" },
		{ "BACKUP_DIRS=/data:data", "BACKUP_LOCAL_PATH=/srv/data" },
		/* Only directories matter: a file source next to the store is fine. */
		{ "BACKUP_FILES=/data/app.conf:conf", "BACKUP_LOCAL_PATH=/data" },
		{ "BACKUP_FILES=/data:f", "BACKUP_LOCAL_PATH=/data/backups" },
	};
	struct err e;
	struct config cfg;

	for (size_t i = 0; i < ARRAY_SIZE(inside); i++) {
		expect_err(ENV("BACKUP_NAME=test", (char *)inside[i].dirs, (char *)inside[i].local),
			   "BACKUP_LOCAL_PATH", &e);
		assert_contains(e.msg, "BACKUP_DIRS");
	}
	for (size_t i = 0; i < ARRAY_SIZE(outside); i++) {
		if (load(&cfg, &e,
			 ENV("BACKUP_NAME=test", (char *)outside[i].dirs,
			     (char *)outside[i].local)) != 0)
			fail_msg("%s with %s rejected: %s", outside[i].local, outside[i].dirs,
				 e.msg);
		config_release(&cfg);
	}
}

/*
 * The same rules (store outside BACKUP_DIRS, sources not nested) when one side
 * is spelled with "." components or doubled slashes: these paths still name a
 * place inside the directory, which a restore of that directory would replace.
 */
static void test_local_path_inside_dirs_noncanonical(void **state LB_UNUSED)
{
	static const struct {
		const char *dirs, *local;
	} inside[] = {
		{ "BACKUP_DIRS=/data/.:data", "BACKUP_LOCAL_PATH=/data/backups" },
		{ "BACKUP_DIRS=//data:data", "BACKUP_LOCAL_PATH=/data/backups" },
		{ "BACKUP_DIRS=/./data:data", "BACKUP_LOCAL_PATH=/data/backups" },
		{ "BACKUP_DIRS=/data:data", "BACKUP_LOCAL_PATH=//data/backups" },
		{ "BACKUP_DIRS=/data:data", "BACKUP_LOCAL_PATH=/./data/backups" },
	};
	/* The same spellings hide a source nested in another. */
	static const char *const nested[] = {
		"BACKUP_DIRS=/data/.:a,/data/sub:b",
		"BACKUP_DIRS=//data:a,/data/sub:b",
		"BACKUP_DIRS=/data:a,//data/sub:b",
		"BACKUP_DIRS=/data:a,/./data/sub:b",
	};
	struct strbuf missed = STRBUF_INIT;

	for (size_t i = 0; i < ARRAY_SIZE(inside); i++) {
		struct config cfg;
		struct err e;
		int r = load(
			&cfg, &e,
			ENV("BACKUP_NAME=test", (char *)inside[i].dirs, (char *)inside[i].local));
		config_release(&cfg);
		if (r == 0 || e.code != LB_EXIT_CONFIG || !strstr(e.msg, "BACKUP_LOCAL_PATH"))
			strbuf_addf(&missed, "\n  %s with %s", inside[i].local, inside[i].dirs);
	}
	for (size_t i = 0; i < ARRAY_SIZE(nested); i++) {
		struct config cfg;
		struct err e;
		int r = load(&cfg, &e, ENV("BACKUP_NAME=test", (char *)nested[i]));
		config_release(&cfg);
		if (r == 0 || e.code != LB_EXIT_CONFIG)
			strbuf_addf(&missed, "\n  %s", nested[i]);
	}
	/* Report after releasing, so that a failure does not also show up as a leak. */
	char report[2048];
	snprintf(report, sizeof(report), "%s", missed.buf);
	strbuf_release(&missed);
	if (report[0])
		fail_msg("path inside a BACKUP_DIRS directory accepted:%s", report);
}

/* ---- config_require ---- */

struct tree {
	char dir[64];
	char file[96];
	char sub[96];
};

static void make_tree(struct tree *t)
{
	snprintf(t->dir, sizeof(t->dir), "%s", "/tmp/lifeboat-test-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->file, sizeof(t->file), "%s/file", t->dir);
	snprintf(t->sub, sizeof(t->sub), "%s/sub", t->dir);
	int fd = open(t->file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(close(fd), 0);
	assert_int_equal(mkdir(t->sub, 0700), 0);
}

static void remove_tree_fixture(struct tree *t)
{
	assert_int_equal(unlink(t->file), 0);
	assert_int_equal(rmdir(t->sub), 0);
	assert_int_equal(rmdir(t->dir), 0);
}

/* Load (which must succeed), then config_require(need); returns its result and message. */
static int load_require(char **envp, unsigned need, struct err *e)
{
	struct config cfg;

	expect_ok(&cfg, envp);
	*e = (struct err)ERR_INIT;
	int r = config_require(&cfg, need, e);
	config_release(&cfg);
	return r;
}

static void test_require_sources(void **state LB_UNUSED)
{
	struct tree t;
	struct err e;

	make_tree(&t);
	char *dirs = xasprintf("BACKUP_DIRS=%s/:sub", t.sub);
	char *files = xasprintf("BACKUP_FILES=%s:file", t.file);
	char *dirs_missing = xasprintf("BACKUP_DIRS=%s:sub,%s/missing:gone", t.sub, t.dir);
	char *files_missing = xasprintf("BACKUP_FILES=%s/missing:gone", t.dir);
	char *files_dir = xasprintf("BACKUP_FILES=%s:sub", t.sub);
	char *dirs_file = xasprintf("BACKUP_DIRS=%s:file", t.file);

	assert_int_equal(load_require(ENV("BACKUP_NAME=test", dirs, files), NEED_SOURCES, &e), 0);
	assert_int_equal(e.code, LB_OK);

	/* A missing directory names BACKUP_DIRS and the path. */
	assert_int_equal(
		load_require(ENV("BACKUP_NAME=test", dirs_missing, files), NEED_SOURCES, &e), -1);
	assert_int_equal(e.code, LB_EXIT_CONFIG);
	assert_contains(e.msg, "BACKUP_DIRS");
	assert_contains(e.msg, "/missing");

	/* A missing file names BACKUP_FILES. */
	assert_int_equal(
		load_require(ENV("BACKUP_NAME=test", dirs, files_missing), NEED_SOURCES, &e), -1);
	assert_int_equal(e.code, LB_EXIT_CONFIG);
	assert_contains(e.msg, "BACKUP_FILES");
	assert_contains(e.msg, "/missing");

	/* A directory in BACKUP_FILES. */
	assert_int_equal(load_require(ENV("BACKUP_NAME=test", files_dir), NEED_SOURCES, &e), -1);
	assert_int_equal(e.code, LB_EXIT_CONFIG);
	assert_contains(e.msg, "BACKUP_FILES");
	assert_contains(e.msg, t.sub);

	/* A file in BACKUP_DIRS. */
	assert_int_equal(load_require(ENV("BACKUP_NAME=test", dirs_file), NEED_SOURCES, &e), -1);
	assert_int_equal(e.code, LB_EXIT_CONFIG);
	assert_contains(e.msg, "BACKUP_DIRS");

	/* Nothing to back up at all. */
	assert_int_equal(load_require(ENV("BACKUP_NAME=test"), NEED_SOURCES, &e), -1);
	assert_int_equal(e.code, LB_EXIT_CONFIG);
	assert_contains(e.msg, "BACKUP_DIRS");

	/* Sources are not checked unless asked for. */
	assert_int_equal(
		load_require(ENV("BACKUP_NAME=test", dirs_missing, "BACKUP_ENCRYPTION=none"),
			     NEED_KEY, &e),
		0);

	free(dirs);
	free(files);
	free(dirs_missing);
	free(files_missing);
	free(files_dir);
	free(dirs_file);
	remove_tree_fixture(&t);
}

static void test_require_store(void **state LB_UNUSED)
{
	struct tree t;
	struct err e;

	make_tree(&t);
	char *ok = xasprintf("BACKUP_LOCAL_PATH=%s", t.dir);
	char *missing = xasprintf("BACKUP_LOCAL_PATH=%s/missing", t.dir);
	char *file = xasprintf("BACKUP_LOCAL_PATH=%s", t.file);

	assert_int_equal(load_require(ENV("BACKUP_NAME=test", ok), NEED_STORE, &e), 0);

	assert_int_equal(load_require(ENV("BACKUP_NAME=test"), NEED_STORE, &e), -1);
	assert_int_equal(e.code, LB_EXIT_CONFIG);
	assert_contains(e.msg, "BACKUP_LOCAL_PATH");

	assert_int_equal(load_require(ENV("BACKUP_NAME=test", missing), NEED_STORE, &e), -1);
	assert_int_equal(e.code, LB_EXIT_CONFIG);
	assert_contains(e.msg, "BACKUP_LOCAL_PATH");

	assert_int_equal(load_require(ENV("BACKUP_NAME=test", file), NEED_STORE, &e), -1);
	assert_int_equal(e.code, LB_EXIT_CONFIG);
	assert_contains(e.msg, "BACKUP_LOCAL_PATH");

	/* Everything a backup needs at once. */
	char *dirs = xasprintf("BACKUP_DIRS=%s:sub", t.sub);
	assert_int_equal(
		load_require(ENV("BACKUP_NAME=test", ok, dirs, "BACKUP_ENCRYPTION_KEY=" KEY),
			     NEED_STORE | NEED_SOURCES | NEED_KEY, &e),
		0);
	free(dirs);

	free(ok);
	free(missing);
	free(file);
	remove_tree_fixture(&t);
}

/* Issue 12: refused at configuration time, naming the variable, in one short line. */
static void test_refused_values(void **state LB_UNUSED)
{
	char *long_name = xmalloc(128 * 1024 + 64);
	memcpy(long_name, "BACKUP_DIRS=/data:", 18);
	memset(long_name + 18, 'n', 128 * 1024);
	long_name[18 + 128 * 1024] = '\0';
	char *n129 = xasprintf("BACKUP_FILES=/etc/x:%0129d", 0);
	char *pg64 = xasprintf("BACKUP_POSTGRES=postgresql://u:" PG_PASSWD "@db/%064d", 0);
	char *mg64 = xasprintf("BACKUP_MONGODB=mongodb://u:" PG_PASSWD "@db/%064d", 0);
#define S3ENV "BACKUP_S3_BUCKET=bucket", "BACKUP_S3_ACCESS_KEY=A", "BACKUP_S3_SECRET_KEY=" KEY
	struct {
		char **env;
		const char *needle;
	} cases[] = {
		{ ENV("BACKUP_NAME=test", long_name), "BACKUP_DIRS: name 'nnnn" },
		{ ENV("BACKUP_NAME=test", n129), "is too long: at most 128 characters" },
		{ ENV("BACKUP_NAME=test", pg64), "longer than 63 bytes, the most PostgreSQL" },
		{ ENV("BACKUP_NAME=test", mg64), "longer than 63 bytes, the most MongoDB" },
		{ ENV("BACKUP_NAME=test", "BACKUP_POSTGRES=postgresql:///app"), "has no host" },
		{ ENV("BACKUP_NAME=test", "BACKUP_POSTGRES=postgresql://u:" PG_PASSWD "@/app"),
		  "has no host" },
		{ ENV("BACKUP_NAME=test", S3ENV, "BACKUP_S3_ENDPOINT=http://h:0"),
		  "BACKUP_S3_ENDPOINT 'http://h:0' has an invalid port" },
		{ ENV("BACKUP_NAME=test", S3ENV, "BACKUP_S3_ENDPOINT=http://h:65536/"),
		  "BACKUP_S3_ENDPOINT 'http://h:65536/' has an invalid port" },
		{ ENV("BACKUP_NAME=test", "BACKUP_S3_BUCKET=My_Bucket", "BACKUP_S3_ACCESS_KEY=A",
		      "BACKUP_S3_SECRET_KEY=" KEY),
		  "BACKUP_S3_BUCKET 'My_Bucket' is invalid" },
		{ ENV("BACKUP_NAME=test", S3ENV, "BACKUP_S3_TIMEOUT=0"), "BACKUP_S3_TIMEOUT '0'" },
		{ ENV("BACKUP_NAME=test", S3ENV, "BACKUP_S3_PART_SIZE= 16M"),
		  "BACKUP_S3_PART_SIZE ' 16M'" },
		{ ENV("BACKUP_NAME=test", "BACKUP_SUCCESS_WEBHOOK=http:///x"),
		  "BACKUP_SUCCESS_WEBHOOK has no host" },
		{ ENV("BACKUP_NAME=test", "BACKUP_START_WEBHOOK=http://h:0/x"),
		  "BACKUP_START_WEBHOOK has an invalid port" },
		{ ENV("BACKUP_NAME=test", "BACKUP_COMPRESSION_LEVEL= 6"),
		  "BACKUP_COMPRESSION_LEVEL ' 6' is invalid" },
		{ ENV("BACKUP_NAME=test", "BACKUP_COMPRESSION_THREADS=2 "),
		  "BACKUP_COMPRESSION_THREADS '2 ' is invalid" },
		{ ENV("BACKUP_NAME=test", "BACKUP_KEEP_LAST=+1"), "BACKUP_KEEP_LAST '+1'" },
		{ ENV("BACKUP_NAME=test", "BACKUP_LOCK_TIMEOUT= 5m"), "BACKUP_LOCK_TIMEOUT ' 5m'" },
		{ ENV("BACKUP_NAME=test", "BACKUP_METRICS_ADDR= 1.2.3.4:80"),
		  "BACKUP_METRICS_ADDR ' 1.2.3.4:80'" },
		{ ENV("BACKUP_NAME=test", "BACKUP_METRICS_ADDR=1.2.3.4:+80"),
		  "BACKUP_METRICS_ADDR '1.2.3.4:+80'" },
		{ ENV("BACKUP_NAME=test", "BACKUP_STOP_SERVICES=app", "DOCKER_HOST=bogus://x"),
		  "DOCKER_HOST 'bogus://x' is not supported" },
		{ ENV("BACKUP_NAME=test", "BACKUP_STOP_SERVICES=app", "DOCKER_HOST=tcp://h:0"),
		  "DOCKER_HOST 'tcp://h:0' is invalid" },
		{ ENV("BACKUP_NAME=test", "BACKUP_POSTGRES=postgresql://u@db/app",
		      "DOCKER_HOST=bogus://x"),
		  "DOCKER_HOST 'bogus://x'" },
	};
#undef S3ENV
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct err e;
		expect_err(cases[i].env, cases[i].needle, &e);
		assert_null(strchr(e.msg, '\n'));
		assert_true(strlen(e.msg) < 400);
		assert_not_contains(e.msg, PG_PASSWD);
	}
	/* DOCKER_HOST is not read when nothing uses Docker. */
	struct config cfg;
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "DOCKER_HOST=ssh://elsewhere"));
	config_release(&cfg);
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_POSTGRES=postgresql://u@db/app",
			    "BACKUP_POSTGRES_DUMP=local", "DOCKER_HOST=ssh://elsewhere"));
	config_release(&cfg);
	/* libpq's own ways to name the server in the query. */
	expect_ok(&cfg,
		  ENV("BACKUP_NAME=test", "BACKUP_POSTGRES=postgresql://u@/app?host=/run/pg"));
	config_release(&cfg);
	expect_ok(&cfg,
		  ENV("BACKUP_NAME=test", "BACKUP_POSTGRES=postgresql:///app?hostaddr=10.0.0.5"));
	config_release(&cfg);
	/* The limits themselves pass; BACKUP_S3_TIMEOUT defaults to two minutes. */
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_S3_BUCKET=bucket", "BACKUP_S3_ACCESS_KEY=A",
			    "BACKUP_S3_SECRET_KEY=" KEY, "BACKUP_S3_ENDPOINT=http://h:65535"));
	assert_int_equal(cfg.s3.timeout, 120);
	config_release(&cfg);
	expect_ok(&cfg, ENV("BACKUP_NAME=test", "BACKUP_S3_BUCKET=bucket", "BACKUP_S3_ACCESS_KEY=A",
			    "BACKUP_S3_SECRET_KEY=" KEY, "BACKUP_S3_TIMEOUT=5m"));
	assert_int_equal(cfg.s3.timeout, 300);
	config_release(&cfg);
	free(long_name);
	free(n129);
	free(pg64);
	free(mg64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_name),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_sources_lists),
		cmocka_unit_test(test_sources_errors),
		cmocka_unit_test(test_sources_duplicates),
		cmocka_unit_test(test_sources_nested),
		cmocka_unit_test(test_key_direct),
		cmocka_unit_test(test_key_file),
		cmocka_unit_test(test_key_file_errors),
		cmocka_unit_test(test_key_never_printed),
		cmocka_unit_test(test_encryption_mode),
		cmocka_unit_test(test_compression),
		cmocka_unit_test(test_require_key),
		cmocka_unit_test(test_debug),
		cmocka_unit_test(test_upload),
		cmocka_unit_test(test_sources_non_utf8),
		cmocka_unit_test(test_tz),
		cmocka_unit_test(test_unknown_variable),
		cmocka_unit_test(test_ignored_variables),
		cmocka_unit_test(test_unsupported_variables),
		cmocka_unit_test(test_db_sources),
		cmocka_unit_test(test_stop_services),
		cmocka_unit_test(test_s3),
		cmocka_unit_test(test_local_path),
		cmocka_unit_test(test_local_path_inside_dirs),
		cmocka_unit_test(test_local_path_inside_dirs_noncanonical),
		cmocka_unit_test(test_require_sources),
		cmocka_unit_test(test_require_store),
		cmocka_unit_test(test_daemon_variables),
		cmocka_unit_test(test_refused_values),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}

/* Unit tests for journal.c: what a restore writes is what recovery reads back. */
#include "common.h"

#include <setjmp.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "journal.h"
#include "xalloc.h"

static char *make_dir(void)
{
	char *dir = xstrdup("/tmp/lb-test-journal.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return dir;
}

static void test_round_trip(void **state LB_UNUSED)
{
	auto_free char *dir = make_dir();
	struct config cfg = { .state_dir = dir, .name = (char *)"app" };
	struct journal j, back;
	struct err e = ERR_INIT;

	journal_init(&j, &cfg, "app-2026-01-02-030405.tar.gz.gpg");
	j.state = JOURNAL_SWAPPING;
	struct journal_target *t = journal_add_target(&j, SOURCE_DIR, "data", "/srv/d\xff\x01ta",
						      "/srv/d\xff\x01ta/.lifeboat-restore.AbC");
	t->old = xstrdup("/srv/d\xff\x01ta/.lifeboat-old.XyZ");
	t->phase = PHASE_FILLING;
	t->times[1] = (struct timespec){ .tv_sec = 1700000000, .tv_nsec = 123456789 };
	t->root = (struct journal_meta){ .set = true,
					 .mode = 0750,
					 .uid = 12,
					 .gid = 34,
					 .mtime = { .tv_sec = 5, .tv_nsec = 6 } };
	t = journal_add_target(&j, SOURCE_FILE, "db", "/srv/app.db", "/srv/.lifeboat-restore.Q");
	t->sqlite = true;
	t->ino = 1234567890123ULL;
	t->dev = 2049;
	journal_add_db(&j, &(struct journal_db){ .kind = SOURCE_POSTGRES,
						 .source = (char *)"shop",
						 .target = (char *)"shop",
						 .staged = (char *)"lifeboat_restore_0a0b0c0d",
						 .old = (char *)"lifeboat_old_0a0b0c0d",
						 .owner = (char *)"app",
						 .existed = true });
	assert_int_equal(journal_write(&j, &e), 0);

	assert_int_equal(journal_load(&cfg, &back, &e), 1);
	assert_int_equal(back.state, JOURNAL_SWAPPING);
	assert_string_equal(back.archive, j.archive);
	assert_int_equal(back.pid, (long)getpid());
	assert_int_equal(back.nr_t, 2);
	assert_string_equal(back.t[0].target, "/srv/d\xff\x01ta");
	assert_string_equal(back.t[0].old, "/srv/d\xff\x01ta/.lifeboat-old.XyZ");
	assert_int_equal(back.t[0].phase, PHASE_FILLING);
	assert_int_equal(back.t[0].times[1].tv_nsec, 123456789);
	assert_true(back.t[0].root.set);
	assert_int_equal(back.t[0].root.mode, 0750);
	assert_int_equal(back.t[0].root.gid, 34);
	assert_int_equal(back.t[0].root.mtime.tv_nsec, 6);
	assert_int_equal(back.t[1].kind, SOURCE_FILE);
	assert_true(back.t[1].sqlite);
	assert_null(back.t[1].old);
	assert_true(back.t[1].ino == 1234567890123ULL);
	assert_int_equal(back.nr_d, 1);
	assert_string_equal(back.d[0].staged, "lifeboat_restore_0a0b0c0d");
	assert_string_equal(back.d[0].owner, "app");
	assert_null(back.d[0].db);
	assert_true(back.d[0].existed);

	assert_int_equal(journal_remove(&back, &e), 0);
	journal_release(&back);
	assert_int_equal(journal_load(&cfg, &back, &e), 0);
	journal_release(&j);
	rmdir(dir);
}

static void test_damaged_journal_is_an_error(void **state LB_UNUSED)
{
	auto_free char *dir = make_dir();
	struct config cfg = { .state_dir = dir, .name = (char *)"app" };
	auto_free char *path = journal_path(&cfg);
	struct journal j;
	struct err e = ERR_INIT;
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs("{\"version\": 1, \"state\": \"swapping\", \"targets\": [", f);
	fclose(f);
	assert_int_equal(journal_load(&cfg, &j, &e), -1);
	assert_int_equal(e.code, LB_EXIT_SOURCE);
	assert_non_null(strstr(e.msg, "is damaged"));
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_damaged_journal_is_an_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

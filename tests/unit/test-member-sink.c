/*
 * Unit tests for the member sink's pump (sink_from_process): a real child's stdout into
 * tar members, read back with libarchive: part names and bytes at the part boundaries,
 * a stream check's trailer dropped across two parts, tools writing in small pieces (the
 * batching of short reads) giving the exact bytes, and every failure path returning with
 * the tool reaped (a failing archive while the tool still writes or stalls, a dying tool).
 */
#include "unit.h"

#include <archive.h>
#include <archive_entry.h>
#include <signal.h>
#include <sys/wait.h>

#include "fs.h"
#include "process.h"
#include "strbuf.h"
#include "stream/member-sink.h"

/* The archive's bytes in memory; `fail_after` output calls succeed, then they fail. */
struct out {
	struct strbuf tar;
	int calls, fail_after; /* 0: never fail */
};

static int out_mem(void *ctx, const void *buf, size_t len, struct err *e)
{
	struct out *o = ctx;
	if (o->fail_after && ++o->calls > o->fail_after)
		return err_set(e, LB_EXIT_STORE, "the store failed");
	strbuf_add(&o->tar, buf, len);
	return 0;
}

/* A file of `n` pattern bytes (its position, mixed), for `cat` to send. */
static char *pattern_file(size_t n, struct strbuf *want)
{
	char *path = xstrdup("/tmp/lb-test-sink.XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	strbuf_reset(want);
	for (size_t i = 0; i < n; i++)
		strbuf_addch(want, (char)((i * 2654435761u) >> 13));
	assert_int_equal(write_all(fd, want->buf, want->len), 0);
	close(fd);
	return path;
}

struct member {
	char name[128];
	size_t size;
};

/* The archive's members (names, sizes) and their bytes concatenated into `data`. */
static int read_members(const struct strbuf *tar, struct member *m, int max, struct strbuf *data)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ent;
	int n = 0;
	char buf[65536];

	archive_read_support_format_all(a);
	assert_int_equal(archive_read_open_memory(a, tar->buf, tar->len), ARCHIVE_OK);
	while (archive_read_next_header(a, &ent) == ARCHIVE_OK) {
		assert_true(n < max);
		snprintf(m[n].name, sizeof(m[n].name), "%s", archive_entry_pathname(ent));
		m[n].size = (size_t)archive_entry_size(ent);
		la_ssize_t r;
		while ((r = archive_read_data(a, buf, sizeof(buf))) > 0)
			strbuf_add(data, buf, (size_t)r);
		n++;
	}
	archive_read_free(a);
	return n;
}

static int start_cat(struct process *p, const char *path)
{
	char *argv[] = { "cat", (char *)path, NULL };
	struct process_spec spec = { .argv = argv,
				     .want_stdout = true,
				     .fail_code = LB_EXIT_SOURCE };
	struct err e = ERR_INIT;
	return process_start(p, &spec, &e);
}

/* A tool's stdout through the pump with `check`; the members read back. */
static int pump_tool(char **argv, const struct sink_check *check, struct member *m, int max,
		     struct strbuf *got)
{
	struct out o = { .tar = STRBUF_INIT };
	struct tar_writer w = TAR_WRITER_INIT;
	struct member_sink s;
	struct process p = PROCESS_INIT;
	struct err e = ERR_INIT;
	struct process_spec spec = { .argv = argv,
				     .want_stdout = true,
				     .fail_code = LB_EXIT_SOURCE };

	assert_int_equal(tarw_open(&w, out_mem, &o, &e), 0);
	sink_init(&s, &w, SOURCE_POSTGRES, "db");
	assert_int_equal(process_start(&p, &spec, &e), 0);
	int r = sink_from_process_checked(&s, &p, "x.dump", argv[0], "the tool of x", check, &e);
	if (r < 0)
		fail_msg("%s", e.msg);
	assert_null(s.rel);
	assert_int_equal(tarw_close(&w, &e), 0);
	int k = read_members(&o.tar, m, max, got);
	process_release(&p);
	sink_release(&s);
	tarw_release(&w, false);
	strbuf_release(&o.tar);
	return k;
}

/* `n` bytes through the pump with `check` (cat: 128 KiB writes); the members read back. */
static int pump_bytes(size_t n, const struct sink_check *check, struct member *m, int max,
		      struct strbuf *want, struct strbuf *got)
{
	char *path = pattern_file(n, want);
	char *argv[] = { "cat", path, NULL };
	int k = pump_tool(argv, check, m, max, got);
	unlink(path);
	free(path);
	return k;
}

static void test_parts_at_the_boundaries(void **state)
{
	struct strbuf want = STRBUF_INIT, got = STRBUF_INIT;
	struct member m[8];

	(void)state;
	/* Empty: one empty member. */
	assert_int_equal(pump_bytes(0, NULL, m, 8, &want, &got), 1);
	assert_string_equal(m[0].name, "postgres/db/x.dump");
	assert_int_equal(m[0].size, 0);
	/* Exactly one part: still one member of that name. */
	strbuf_reset(&got);
	assert_int_equal(pump_bytes(DB_PART_SIZE, NULL, m, 8, &want, &got), 1);
	assert_string_equal(m[0].name, "postgres/db/x.dump");
	assert_int_equal(m[0].size, DB_PART_SIZE);
	assert_true(got.len == want.len && !memcmp(got.buf, want.buf, want.len));
	/* One byte more: two parts. */
	strbuf_reset(&got);
	assert_int_equal(pump_bytes(DB_PART_SIZE + 1, NULL, m, 8, &want, &got), 2);
	assert_string_equal(m[0].name, "postgres/db/x.dump.000000");
	assert_int_equal(m[0].size, DB_PART_SIZE);
	assert_string_equal(m[1].name, "postgres/db/x.dump.000001");
	assert_int_equal(m[1].size, 1);
	assert_true(got.len == want.len && !memcmp(got.buf, want.buf, want.len));
	/* Three parts: the slots are reused in order. */
	strbuf_reset(&got);
	assert_int_equal(pump_bytes(2 * DB_PART_SIZE + 12345, NULL, m, 8, &want, &got), 3);
	assert_string_equal(m[2].name, "postgres/db/x.dump.000002");
	assert_int_equal(m[2].size, 12345);
	assert_true(got.len == want.len && !memcmp(got.buf, want.buf, want.len));
	strbuf_release(&want);
	strbuf_release(&got);
}

/* A trailer check: drop the last 40 bytes (as redis-cli's EOF mark), counting calls. */
struct trailer {
	int heads, ends;
	uint64_t total;
	unsigned char tail[64];
	size_t n;
};

static int trailer_head(void *ctx, const unsigned char *buf, size_t len, struct err *e)
{
	struct trailer *t = ctx;
	(void)buf;
	(void)len;
	(void)e;
	t->heads++;
	return 0;
}

static int trailer_end(void *ctx, const unsigned char *tail, size_t n, uint64_t total,
		       size_t *ret_drop, struct err *e)
{
	struct trailer *t = ctx;
	(void)e;
	t->ends++;
	t->total = total;
	t->n = n;
	memcpy(t->tail, tail, n);
	*ret_drop = n < 40 ? n : 40;
	return 0;
}

static void test_trailer_dropped_across_parts(void **state)
{
	struct strbuf want = STRBUF_INIT, got = STRBUF_INIT;
	struct member m[8];
	size_t sizes[] = { DB_PART_SIZE + 20, DB_PART_SIZE + 40, DB_PART_SIZE + 49, 49, 30 };

	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct trailer t = { 0 };
		const struct sink_check check = {
			.hold = 49, .ctx = &t, .head = trailer_head, .end = trailer_end
		};
		strbuf_reset(&got);
		int k = pump_bytes(sizes[i], &check, m, 8, &want, &got);
		size_t keep = sizes[i] - (sizes[i] < 40 ? sizes[i] : 40);
		assert_int_equal(t.heads, 1);
		assert_int_equal(t.ends, 1);
		assert_int_equal(t.total, sizes[i]);
		size_t n = sizes[i] < 49 ? sizes[i] : 49;
		assert_int_equal(t.n, n);
		assert_memory_equal(t.tail, want.buf + want.len - n, n);
		assert_int_equal(got.len, keep);
		assert_memory_equal(got.buf, want.buf, keep);
		/* What is left fits one part: one member, named without a part number. */
		if (keep <= DB_PART_SIZE) {
			assert_int_equal(k, 1);
			assert_string_equal(m[0].name, "postgres/db/x.dump");
		} else {
			assert_int_equal(k, 2);
			assert_int_equal(m[1].size, keep - DB_PART_SIZE);
		}
	}
	strbuf_release(&want);
	strbuf_release(&got);
}

/* A tool that never stops writing (cat /dev/zero) and an archive that fails: stopped, reaped. */
static void test_failed_archive_stops_the_tool(void **state)
{
	struct out o = { .tar = STRBUF_INIT, .fail_after = 3 };
	struct tar_writer w = TAR_WRITER_INIT;
	struct member_sink s;
	struct process p = PROCESS_INIT;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(tarw_open(&w, out_mem, &o, &e), 0);
	sink_init(&s, &w, SOURCE_POSTGRES, "db");
	assert_int_equal(start_cat(&p, "/dev/zero"), 0);
	pid_t pid = p.c.pid;
	assert_int_equal(sink_from_process(&s, &p, "x.dump", "cat", "cat of x", &e), -1);
	assert_contains(e.msg, "the store failed");
	assert_null(s.rel);
	/* Reaped: the pid is gone, not a zombie waiting for us. */
	assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	process_release(&p);
	sink_release(&s);
	tarw_release(&w, true);
	strbuf_release(&o.tar);
}

/* The tool dies mid-stream: the part read so far is no success, the verdict names it. */
static void test_dying_tool_fails(void **state)
{
	struct out o = { .tar = STRBUF_INIT };
	struct tar_writer w = TAR_WRITER_INIT;
	struct member_sink s;
	struct process p = PROCESS_INIT;
	struct err e = ERR_INIT;
	char *argv[] = { "head", "-c", "100000000", "/dev/zero", NULL };
	struct process_spec spec = { .argv = argv,
				     .want_stdout = true,
				     .fail_code = LB_EXIT_SOURCE };

	(void)state;
	/* head would write 100 MB; the fault point SIGKILLs it once the first part is handed over. */
	setenv("LIFEBOAT_FAULT", "sink.tool@1:fail", 1);
	assert_int_equal(tarw_open(&w, out_mem, &o, &e), 0);
	sink_init(&s, &w, SOURCE_POSTGRES, "db");
	assert_int_equal(process_start(&p, &spec, &e), 0);
	assert_int_equal(sink_from_process(&s, &p, "x.dump", "head", "head of x", &e), -1);
	unsetenv("LIFEBOAT_FAULT");
	assert_int_equal(e.code, LB_EXIT_SOURCE);
	assert_contains(e.msg, "head of x failed");
	assert_contains(e.msg, "signal 9");
	process_release(&p);
	sink_release(&s);
	tarw_release(&w, true);
	strbuf_release(&o.tar);
}

/*
 * Tools that write their stdout in small pieces, as mariadb-dump (4 KiB stdio writes)
 * and a shell loop (a write per line) do: the pump's batching (it waits a little after a
 * short read) gives the exact bytes, in the same parts, and the run ends with the tool.
 */
static void test_small_writes_exact(void **state)
{
	struct strbuf want = STRBUF_INIT, got = STRBUF_INIT;
	struct member m[8];

	(void)state;
	char *path = pattern_file(DB_PART_SIZE + 4096 * 3 + 77, &want);
	char *ifarg = xasprintf("if=%s", path);
	char *dd[] = { "dd", ifarg, "bs=4096", "status=none", NULL };
	assert_int_equal(pump_tool(dd, NULL, m, 8, &got), 2);
	assert_int_equal(m[0].size, DB_PART_SIZE);
	assert_int_equal(m[1].size, 4096 * 3 + 77);
	assert_true(got.len == want.len && !memcmp(got.buf, want.buf, want.len));
	unlink(path);
	free(path);
	free(ifarg);

	/* 3000 lines, one write each. */
	strbuf_reset(&want);
	strbuf_reset(&got);
	for (int i = 0; i < 3000; i++)
		strbuf_addf(&want, "line %d\n", i);
	char *sh[] = { "sh", "-c",
		       "i=0; while [ $i -lt 3000 ]; do echo \"line $i\"; i=$((i+1)); done", NULL };
	assert_int_equal(pump_tool(sh, NULL, m, 8, &got), 1);
	assert_string_equal(m[0].name, "postgres/db/x.dump");
	assert_true(got.len == want.len && !memcmp(got.buf, want.buf, want.len));
	strbuf_release(&want);
	strbuf_release(&got);
}

/*
 * A tool that writes a part and a little more, then stalls (sleeps, its stdout open):
 * the archive fails on the part handed over, and the pump, waiting for more of the
 * tool's bytes, is stopped, the tool killed and reaped, and the failure returned.
 */
static void test_stalled_tool_stopped_on_failure(void **state)
{
	struct out o = { .tar = STRBUF_INIT, .fail_after = 1 };
	struct tar_writer w = TAR_WRITER_INIT;
	struct member_sink s;
	struct process p = PROCESS_INIT;
	struct err e = ERR_INIT;
	char *cmd = xasprintf("head -c %u /dev/zero; exec sleep 3600", DB_PART_SIZE + 5000);
	char *argv[] = { "sh", "-c", cmd, NULL };
	struct process_spec spec = { .argv = argv,
				     .want_stdout = true,
				     .fail_code = LB_EXIT_SOURCE };

	(void)state;
	assert_int_equal(tarw_open(&w, out_mem, &o, &e), 0);
	sink_init(&s, &w, SOURCE_POSTGRES, "db");
	assert_int_equal(process_start(&p, &spec, &e), 0);
	pid_t pid = p.c.pid;
	assert_int_equal(sink_from_process(&s, &p, "x.dump", "sh", "sh of x", &e), -1);
	assert_contains(e.msg, "the store failed");
	assert_null(s.rel);
	assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	process_release(&p);
	sink_release(&s);
	tarw_release(&w, true);
	strbuf_release(&o.tar);
	free(cmd);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		/* First: the fault point counts its passes from the start of the process. */
		cmocka_unit_test(test_dying_tool_fails),
		cmocka_unit_test(test_parts_at_the_boundaries),
		cmocka_unit_test(test_trailer_dropped_across_parts),
		cmocka_unit_test(test_failed_archive_stops_the_tool),
		cmocka_unit_test(test_small_writes_exact),
		cmocka_unit_test(test_stalled_tool_stopped_on_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for strbuf.c: appends, formatting, the cap, tail, trim, detach, secrets. */
#include "unit.h"

#include "strbuf.h"
#include "xalloc.h"

static void test_strbuf_init_empty(void **state LB_UNUSED)
{
	struct strbuf sb = STRBUF_INIT;

	assert_non_null(sb.buf);
	assert_string_equal(sb.buf, "");
	assert_int_equal(sb.len, 0);
	strbuf_release(&sb);
	assert_non_null(sb.buf);
	assert_string_equal(sb.buf, "");

	strbuf_init(&sb, 1000);
	assert_true(sb.alloc >= 1001);
	assert_int_equal(sb.len, 0);
	assert_string_equal(sb.buf, "");
	strbuf_release(&sb);
	assert_int_equal(sb.alloc, 0);
	assert_int_equal(sb.len, 0);
}

static void test_strbuf_add(void **state LB_UNUSED)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_add(&sb, "abc", 3);
	assert_int_equal(sb.len, 3);
	assert_string_equal(sb.buf, "abc");
	strbuf_addstr(&sb, "def");
	strbuf_addch(&sb, 'g');
	assert_int_equal(sb.len, 7);
	assert_string_equal(sb.buf, "abcdefg");

	/* Embedded NUL bytes are data, and the buffer stays NUL-terminated. */
	strbuf_add(&sb, "x\0y", 3);
	assert_int_equal(sb.len, 10);
	assert_memory_equal(sb.buf, "abcdefgx\0y", 11);

	/* An empty append keeps everything. */
	strbuf_add(&sb, "", 0);
	assert_int_equal(sb.len, 10);

	strbuf_reset(&sb);
	assert_int_equal(sb.len, 0);
	assert_string_equal(sb.buf, "");

	/* Growing one byte at a time across many reallocations. */
	for (size_t i = 0; i < 10000; i++)
		strbuf_addch(&sb, (char)('a' + i % 26));
	assert_int_equal(sb.len, 10000);
	assert_int_equal(strlen(sb.buf), 10000);
	assert_true(sb.alloc > sb.len);
	for (size_t i = 0; i < 10000; i++)
		assert_int_equal(sb.buf[i], 'a' + i % 26);
	strbuf_release(&sb);
}

static void test_strbuf_addf(void **state LB_UNUSED)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_addf(&sb, "%s=%d", "n", 42);
	assert_string_equal(sb.buf, "n=42");

	/* Longer than the 256-byte stack buffer used for the first attempt. */
	char *long1 = repeat('x', 300);
	strbuf_reset(&sb);
	strbuf_addf(&sb, "[%s]%d", long1, 7);
	assert_int_equal(sb.len, 303);
	assert_int_equal(sb.buf[0], '[');
	assert_memory_equal(sb.buf + 1, long1, 300);
	assert_string_equal(sb.buf + 301, "]7");

	/* Appends after existing content. */
	strbuf_reset(&sb);
	strbuf_addstr(&sb, "head:");
	char *long2 = repeat('y', 5000);
	strbuf_addf(&sb, "%s|%s", long2, "tail");
	assert_int_equal(sb.len, 5 + 5000 + 5);
	assert_memory_equal(sb.buf, "head:", 5);
	assert_memory_equal(sb.buf + 5, long2, 5000);
	assert_string_equal(sb.buf + 5005, "|tail");

	/* Around the boundary of the stack buffer: 255, 256 and 257 bytes. */
	for (size_t n = 254; n <= 258; n++) {
		char *s = repeat('z', n);
		strbuf_reset(&sb);
		strbuf_addf(&sb, "%s", s);
		assert_int_equal(sb.len, n);
		assert_string_equal(sb.buf, s);
		free(s);
	}

	/* xasprintf goes through the same path. */
	char *p = xasprintf("%s-%s", long1, long1);
	assert_int_equal(strlen(p), 601);
	assert_int_equal(p[300], '-');
	free(p);

	free(long1);
	free(long2);
	strbuf_release(&sb);
}

static void test_strbuf_cap_max(void **state LB_UNUSED)
{
	struct strbuf sb = STRBUF_INIT;

	sb.cap_max = 10;
	strbuf_addstr(&sb, "hello");
	assert_false(sb.overflowed);
	strbuf_addstr(&sb, "world");
	assert_int_equal(sb.len, 10);
	assert_false(sb.overflowed); /* exactly at the cap is not an overflow */
	assert_string_equal(sb.buf, "helloworld");

	strbuf_addch(&sb, '!');
	assert_true(sb.overflowed);
	assert_int_equal(sb.len, 10);
	assert_string_equal(sb.buf, "helloworld");

	/* A partial append is truncated to the cap. */
	strbuf_reset(&sb);
	assert_false(sb.overflowed);
	assert_int_equal(sb.cap_max, 10);
	strbuf_addstr(&sb, "abcdefg");
	strbuf_addstr(&sb, "hijklmnop");
	assert_true(sb.overflowed);
	assert_int_equal(sb.len, 10);
	assert_string_equal(sb.buf, "abcdefghij");

	/* Long formatted output is truncated too. */
	char *big = repeat('q', 1000);
	strbuf_reset(&sb);
	strbuf_addf(&sb, "%s", big);
	assert_true(sb.overflowed);
	assert_int_equal(sb.len, 10);
	assert_string_equal(sb.buf, "qqqqqqqqqq");
	free(big);

	/* The cap survives release; the buffer never grows much past it. */
	strbuf_release(&sb);
	assert_int_equal(sb.cap_max, 10);
	for (int i = 0; i < 100; i++)
		strbuf_addstr(&sb, "0123456789");
	assert_int_equal(sb.len, 10);
	assert_true(sb.overflowed);
	assert_true(sb.alloc < 100);
	strbuf_release(&sb);
}

static void test_strbuf_keep_tail(void **state LB_UNUSED)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_keep_tail(&sb, 4);
	assert_int_equal(sb.len, 0);
	assert_string_equal(sb.buf, "");

	strbuf_addstr(&sb, "0123456789");
	strbuf_keep_tail(&sb, 20);
	assert_string_equal(sb.buf, "0123456789");
	strbuf_keep_tail(&sb, 10);
	assert_string_equal(sb.buf, "0123456789");
	strbuf_keep_tail(&sb, 4);
	assert_int_equal(sb.len, 4);
	assert_string_equal(sb.buf, "6789");
	strbuf_addstr(&sb, "ab");
	assert_string_equal(sb.buf, "6789ab");
	strbuf_keep_tail(&sb, 0);
	assert_int_equal(sb.len, 0);
	assert_string_equal(sb.buf, "");

	/* A long log whose tail is kept. */
	for (int i = 0; i < 1000; i++)
		strbuf_addf(&sb, "line %d\n", i);
	strbuf_keep_tail(&sb, 9);
	assert_string_equal(sb.buf, "line 999\n");
	strbuf_release(&sb);
}

static void test_strbuf_rtrim(void **state LB_UNUSED)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_rtrim(&sb);
	assert_int_equal(sb.len, 0);
	assert_string_equal(sb.buf, "");

	strbuf_addstr(&sb, "  a b \t\r\n \n");
	strbuf_rtrim(&sb);
	assert_int_equal(sb.len, 5);
	assert_string_equal(sb.buf, "  a b");
	strbuf_rtrim(&sb);
	assert_string_equal(sb.buf, "  a b");

	strbuf_reset(&sb);
	strbuf_addstr(&sb, " \t\r\n");
	strbuf_rtrim(&sb);
	assert_int_equal(sb.len, 0);
	assert_string_equal(sb.buf, "");
	strbuf_release(&sb);
}

static void test_strbuf_detach(void **state LB_UNUSED)
{
	struct strbuf sb = STRBUF_INIT;
	size_t len = 99;

	strbuf_addstr(&sb, "detach me");
	char *p = strbuf_detach(&sb, &len);
	assert_string_equal(p, "detach me");
	assert_int_equal(len, 9);
	/* The strbuf is re-initialised and usable again. */
	assert_int_equal(sb.len, 0);
	assert_int_equal(sb.alloc, 0);
	assert_string_equal(sb.buf, "");
	assert_ptr_not_equal(sb.buf, p);
	strbuf_addstr(&sb, "again");
	assert_string_equal(sb.buf, "again");
	assert_string_equal(p, "detach me");
	free(p);
	strbuf_release(&sb);

	/* Detaching an untouched strbuf still returns an owned, empty string. */
	struct strbuf empty = STRBUF_INIT;
	len = 99;
	p = strbuf_detach(&empty, &len);
	assert_non_null(p);
	assert_string_equal(p, "");
	assert_int_equal(len, 0);
	assert_ptr_not_equal(p, strbuf_empty_);
	free(p);

	/* ret_len is optional. */
	strbuf_addstr(&sb, "x");
	p = strbuf_detach(&sb, NULL);
	assert_string_equal(p, "x");
	free(p);
}

static void test_strbuf_release_secret(void **state LB_UNUSED)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_release_secret(&sb);
	assert_string_equal(sb.buf, "");
	strbuf_addstr(&sb, "secret");
	strbuf_release_secret(&sb);
	assert_int_equal(sb.len, 0);
	assert_int_equal(sb.alloc, 0);
	assert_string_equal(sb.buf, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strbuf_init_empty),
		cmocka_unit_test(test_strbuf_add),
		cmocka_unit_test(test_strbuf_addf),
		cmocka_unit_test(test_strbuf_cap_max),
		cmocka_unit_test(test_strbuf_keep_tail),
		cmocka_unit_test(test_strbuf_rtrim),
		cmocka_unit_test(test_strbuf_detach),
		cmocka_unit_test(test_strbuf_release_secret),
	};

	return cmocka_run_group_tests_name("strbuf", tests, NULL, NULL);
}

/* Unit tests for http.c's pure parts: the retry decision, the body cap, error text. */
#include "unit.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "http.h"
#include "strbuf.h"

/* S3's parameters: 5 attempts, 0.5 s doubling to 4 s; only transient failures. */
static const struct http_retry s3 = { .attempts = 5, .backoff_ms = 500, .backoff_max_ms = 4000 };
/* The webhooks': 3 attempts, 1 then 2 s; every transport failure. */
static const struct http_retry hook = {
	.attempts = 3, .backoff_ms = 1000, .backoff_max_ms = 4000, .any_curl_error = true
};

static void test_retry_statuses(void **state)
{
	(void)state;
	/* 429 and every 5xx retry; other answers are final. */
	assert_true(http_retryable(&s3, CURLE_OK, 429));
	assert_true(http_retryable(&s3, CURLE_OK, 500));
	assert_true(http_retryable(&s3, CURLE_OK, 503));
	assert_true(http_retryable(&s3, CURLE_OK, 599));
	assert_false(http_retryable(&s3, CURLE_OK, 200));
	assert_false(http_retryable(&s3, CURLE_OK, 301));
	assert_false(http_retryable(&s3, CURLE_OK, 400));
	assert_false(http_retryable(&s3, CURLE_OK, 403));
	assert_false(http_retryable(&s3, CURLE_OK, 404));
	assert_false(http_retryable(&s3, CURLE_OK, 499));
	assert_true(http_retryable(&hook, CURLE_OK, 502));
	assert_false(http_retryable(&hook, CURLE_OK, 404));
}

static void test_retry_curl_codes(void **state)
{
	static const CURLcode transient[] = { CURLE_COULDNT_CONNECT,  CURLE_OPERATION_TIMEDOUT,
					      CURLE_SEND_ERROR,	      CURLE_RECV_ERROR,
					      CURLE_GOT_NOTHING,      CURLE_PARTIAL_FILE,
					      CURLE_SSL_CONNECT_ERROR };
	static const CURLcode final[] = { CURLE_COULDNT_RESOLVE_HOST, CURLE_URL_MALFORMAT,
					  CURLE_WRITE_ERROR, CURLE_PEER_FAILED_VERIFICATION,
					  CURLE_UNSUPPORTED_PROTOCOL };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(transient); i++) {
		assert_true(http_retryable(&s3, transient[i], 0));
		assert_true(http_retryable(&hook, transient[i], 0));
	}
	/* Only callers that ask for it retry the others (a webhook's DNS may come late). */
	for (size_t i = 0; i < ARRAY_SIZE(final); i++) {
		assert_false(http_retryable(&s3, final[i], 0));
		assert_true(http_retryable(&hook, final[i], 0));
	}
}

static void test_attempts(void **state)
{
	const struct http_retry budget_only = { .attempts = 0,
						.backoff_ms = 500,
						.backoff_max_ms = 4000 };

	(void)state;
	assert_true(http_attempts_left(&hook, 1));
	assert_true(http_attempts_left(&hook, 2));
	assert_false(http_attempts_left(&hook, 3));
	assert_true(http_attempts_left(&s3, 4));
	assert_false(http_attempts_left(&s3, 5));
	/* No count: the caller's time budget ends the tries. */
	assert_true(http_attempts_left(&budget_only, 1000));
}

static void test_backoff(void **state)
{
	const long s3_pauses[] = { 500, 1000, 2000, 4000, 4000, 4000 };
	const struct http_retry odd = { .attempts = 9, .backoff_ms = 3000, .backoff_max_ms = 4000 };
	long b = s3.backoff_ms;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(s3_pauses); i++) {
		assert_int_equal(b, s3_pauses[i]);
		b = http_backoff_next(&s3, b);
	}
	/* The webhook pauses 1 s, then 2 s, as its 1000 * attempt did. */
	assert_int_equal(http_backoff_next(&hook, hook.backoff_ms), 2000);
	/* Doubling stops at the maximum, never past it. */
	assert_int_equal(http_backoff_next(&odd, 3000), 4000);
}

static void test_collect_cap(void **state)
{
	struct strbuf sb = STRBUF_INIT;

	(void)state;
	/* Under the cap: everything kept. */
	assert_int_equal(http_collect(&sb, 8, false, "abcd", 4), 4);
	assert_int_equal(http_collect(&sb, 8, false, "efgh", 4), 4);
	assert_string_equal(sb.buf, "abcdefgh");
	assert_false(sb.overflowed);
	/* Past it, dropping: curl is told all was taken, the excess is gone. */
	assert_int_equal(http_collect(&sb, 8, false, "ij", 2), 2);
	assert_string_equal(sb.buf, "abcdefgh");
	assert_true(sb.overflowed);
	strbuf_release(&sb);

	/* Past it, stopping: the write fails (curl ends the transfer), the head is kept. */
	assert_int_equal(http_collect(&sb, 5, true, "abc", 3), 3);
	assert_int_equal(http_collect(&sb, 5, true, "def", 3), 0);
	assert_string_equal(sb.buf, "abcde");
	assert_true(sb.overflowed);
	strbuf_release(&sb);

	/* No cap. */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(http_collect(&sb, 0, true, "0123456789", 10), 10);
	assert_int_equal(sb.len, 10000);
	assert_false(sb.overflowed);
	strbuf_release(&sb);
}

static void test_error_text(void **state)
{
	char errbuf[CURL_ERROR_SIZE] = "";

	(void)state;
	/* An empty buffer, or none: curl's text for the code. */
	assert_string_equal(http_error_text(CURLE_COULDNT_CONNECT, errbuf),
			    curl_easy_strerror(CURLE_COULDNT_CONNECT));
	assert_string_equal(http_error_text(CURLE_OPERATION_TIMEDOUT, NULL),
			    curl_easy_strerror(CURLE_OPERATION_TIMEDOUT));
	/* Else the buffer, which says more. */
	snprintf(errbuf, sizeof(errbuf), "Failed to connect to 127.0.0.1 port 9: refused");
	assert_string_equal(http_error_text(CURLE_COULDNT_CONNECT, errbuf),
			    "Failed to connect to 127.0.0.1 port 9: refused");
}

struct peer_probe {
	unsigned short port; /* the listener's, network order */
	int seen, inheritable;
};

/* Called while curl waits for an answer: look at every socket connected to the listener. */
static int probe_sockets(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct peer_probe *p = ud;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	(void)dt, (void)dn, (void)ut, (void)un;
	assert_non_null(d);
	while ((de = readdir(d))) {
		int fd = (int)strtol(de->d_name, NULL, 10);
		struct sockaddr_in sa;
		socklen_t len = sizeof(sa);
		struct stat st;
		if (de->d_name[0] == '.' || fd == dirfd(d) || fstat(fd, &st) < 0 ||
		    !S_ISSOCK(st.st_mode))
			continue;
		if (getpeername(fd, (struct sockaddr *)&sa, &len) < 0 || sa.sin_family != AF_INET ||
		    sa.sin_port != p->port)
			continue;
		p->seen++;
		if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
			p->inheritable++;
	}
	closedir(d);
	return p->seen ? 1 : 0; /* seen: abort the transfer */
}

/* The sockets of a request close on exec: a child (pg_dump, gpg) never holds one. */
static void test_sockets_cloexec(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char url[64];
	long status = -1;

	(void)state;
	assert_true(l >= 0);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 4), 0); /* never accepted: the kernel completes connect */
	assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/", ntohs(sa.sin_port));

	struct peer_probe p = { .port = sa.sin_port };
	struct http_req req = { .method = "GET",
				.url = url,
				.protocols = "http",
				.connect_timeout_s = 60,
				.timeout_s = 60,
				.progress = probe_sockets,
				.progress_ud = &p };
	CURL *h = http_handle();
	assert_non_null(h);
	assert_int_equal(http_perform(h, &req, &status), CURLE_ABORTED_BY_CALLBACK);
	assert_int_equal(status, 0);
	assert_int_equal(p.seen, 1);
	assert_int_equal(p.inheritable, 0);
	curl_easy_cleanup(h);
	close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retry_statuses),	cmocka_unit_test(test_retry_curl_codes),
		cmocka_unit_test(test_attempts),	cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_collect_cap),	cmocka_unit_test(test_error_text),
		cmocka_unit_test(test_sockets_cloexec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

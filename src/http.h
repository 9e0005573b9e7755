/*
 * The one libcurl setup: S3, SFTP, the Docker Engine API and webhooks make their requests
 * through http_perform(), which sets every option they share (no signals, CLOEXEC
 * sockets, timeouts, protocols, error buffer, capped bodies), and decide retries with
 * one policy whose parameters each caller chooses.
 */
#ifndef LB_HTTP_H
#define LB_HTTP_H

#include "common.h"

#include <curl/curl.h>

#include "err.h"
#include "strbuf.h"

/*
 * curl_global_init, once per process (later calls return its first result). Call it
 * before starting threads; http_handle() calls it too, for programs that do not.
 */
int http_init(struct err *e);

/* A new easy handle (NULL when libcurl cannot make one); curl_easy_cleanup() frees it. */
CURL *http_handle(void);

/*
 * One request. Unset fields mean "none". The response body goes to `write` when set,
 * else into `resp`, at most `cap` bytes (0: no cap): past it the excess is dropped and
 * resp->overflowed set, or, with `cap_stops`, the transfer fails (CURLE_WRITE_ERROR).
 */
struct http_req {
	const char *method; /* GET, HEAD, PUT (body read from `body`), POST, DELETE, ... */
	const char *url;
	const struct curl_slist *headers;
	const void *body; /* PUT and POST; POST without one sends an empty body */
	size_t body_len;
	/* PUT: a body of unknown length, streamed from this callback instead of `body` */
	curl_read_callback read;
	void *read_ud;
	const char *unix_socket; /* connect here instead of the URL's host */
	const char *protocols;	 /* CURLOPT_PROTOCOLS_STR, e.g. "http,https" */
	const char *ca_file;
	long connect_timeout_s;
	long timeout_s; /* the whole transfer */
	long stall_s;	/* give up when no byte moves for this long */
	/* the response */
	curl_write_callback write;
	void *write_ud;
	curl_write_callback header;
	void *header_ud;
	curl_xferinfo_callback progress;
	void *progress_ud;
	struct strbuf *resp;
	size_t cap;
	bool cap_stops;
	/* options only the caller's protocol has (SSH keys, SFTP commands), set last */
	void (*setup)(CURL *h, void *ud);
	void *setup_ud;
	/* filled by http_perform: curl's own description of a failure, or "" */
	char errbuf[CURL_ERROR_SIZE];
};

/*
 * Reset `h` and run `req` on it. Returns the curl code; with CURLE_OK, *ret_status is
 * the HTTP status (whatever it is), else 0.
 */
CURLcode http_perform(CURL *h, struct http_req *req, long *ret_status);

/* How a failure reads in messages: curl's error buffer when it says something (and
 * `errbuf` is not NULL), else curl's text for the code. */
const char *http_error_text(CURLcode cc, const char *errbuf);

/*
 * Append `len` bytes to `sb`, keeping at most `cap` bytes (0: no cap). Returns what a
 * curl write callback returns: `len`, or 0 (stop the transfer) when the cap is passed
 * and `stop` is set. Pure, for tests.
 */
size_t http_collect(struct strbuf *sb, size_t cap, bool stop, const char *buf, size_t len);

/* The retry policy, with each caller's parameters. */
struct http_retry {
	int attempts;	     /* tries in all; 0: no count (the caller's budget ends them) */
	long backoff_ms;     /* the first pause */
	long backoff_max_ms; /* pauses double up to this */
	bool any_curl_error; /* retry every transport failure, not only transient ones */
};

/*
 * Is an attempt that ended with `cc` (and, with CURLE_OK, HTTP `status`) worth
 * repeating? Transient transport failures (connection refused or reset, timeouts,
 * nothing or part of an answer, TLS handshake), 429 and 5xx are. Pure.
 */
bool http_retryable(const struct http_retry *p, CURLcode cc, long status);

/* May attempt `attempt` (1-based) be followed by another? Pure. */
bool http_attempts_left(const struct http_retry *p, int attempt);

/* The pause after the one of `backoff_ms`: doubled, at most backoff_max_ms. Pure. */
long http_backoff_next(const struct http_retry *p, long backoff_ms);

/* Sleep `ms`, cut short when a termination signal is pending. */
void http_sleep_ms(long ms);

#endif

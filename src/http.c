/* The one libcurl setup: options every request shares, capped bodies, the retry policy. */
#include "common.h"

#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

#include "http.h"
#include "signals.h"
#include "strbuf.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static CURLcode init_rc;

static void global_init(void)
{
	init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int http_init(struct err *e)
{
	pthread_once(&init_once, global_init);
	if (init_rc != CURLE_OK)
		return err_set(e, LB_EXIT_INTERNAL, "cannot initialise libcurl");
	return 0;
}

CURL *http_handle(void)
{
	pthread_once(&init_once, global_init);
	return init_rc == CURLE_OK ? curl_easy_init() : NULL;
}

/* Sockets close on exec: children (pg_dump, gpg, ...) hold no connection of ours. */
static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
	(void)ud;
	(void)purpose;
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

struct body_src {
	const unsigned char *p;
	size_t left;
};

static size_t read_body(char *buf, size_t size, size_t n, void *ud)
{
	struct body_src *b = ud;
	size_t len = size * n < b->left ? size * n : b->left;

	memcpy(buf, b->p, len);
	b->p += len;
	b->left -= len;
	return len;
}

size_t http_collect(struct strbuf *sb, size_t cap, bool stop, const char *buf, size_t len)
{
	sb->cap_max = cap;
	strbuf_add(sb, buf, len);
	return stop && sb->overflowed ? 0 : len;
}

static size_t write_resp(char *buf, size_t size, size_t n, void *ud)
{
	struct http_req *req = ud;

	return http_collect(req->resp, req->cap, req->cap_stops, buf, size * n);
}

static size_t discard(char *buf, size_t size, size_t n, void *ud)
{
	(void)buf;
	(void)ud;
	return size * n;
}

CURLcode http_perform(CURL *h, struct http_req *req, long *ret_status)
{
	struct body_src src = { req->body, req->body_len };
	const char *m = req->method;
	long status = 0;

	curl_easy_reset(h);
	req->errbuf[0] = '\0';
	if (req->resp) {
		strbuf_reset(req->resp);
		req->resp->cap_max = req->cap;
	}
	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, req->errbuf);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "lifeboat/" LB_VERSION);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	if (req->protocols)
		curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, req->protocols);
	if (req->unix_socket)
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, req->unix_socket);
	if (req->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, req->ca_file);
	if (req->connect_timeout_s)
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, req->connect_timeout_s);
	if (req->timeout_s)
		curl_easy_setopt(h, CURLOPT_TIMEOUT, req->timeout_s);
	if (req->stall_s) {
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, req->stall_s);
	}
	if (req->progress) {
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, req->progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, req->progress_ud);
	}
	if (req->write) {
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, req->write);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, req->write_ud);
	} else if (req->resp) {
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_resp);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, req);
	} else {
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	}
	if (req->header) {
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, req->header);
		curl_easy_setopt(h, CURLOPT_HEADERDATA, req->header_ud);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, req->headers);
	if (!strcmp(m, "HEAD")) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(m, "PUT")) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, req->read ? req->read : read_body);
		curl_easy_setopt(h, CURLOPT_READDATA, req->read ? req->read_ud : (void *)&src);
		if (!req->read)
			curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
	} else if (!strcmp(m, "POST")) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? (const char *)req->body : "");
	} else if (strcmp(m, "GET")) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	}
	if (req->setup)
		req->setup(h, req->setup_ud);
	CURLcode cc = curl_easy_perform(h);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	*ret_status = status;
	return cc;
}

const char *http_error_text(CURLcode cc, const char *errbuf)
{
	return errbuf && errbuf[0] ? errbuf : curl_easy_strerror(cc);
}

static bool transient(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

bool http_retryable(const struct http_retry *p, CURLcode cc, long status)
{
	if (cc != CURLE_OK)
		return p->any_curl_error || transient(cc);
	return status == 429 || status >= 500;
}

bool http_attempts_left(const struct http_retry *p, int attempt)
{
	return !p->attempts || attempt < p->attempts;
}

long http_backoff_next(const struct http_retry *p, long backoff_ms)
{
	if (backoff_ms >= p->backoff_max_ms)
		return backoff_ms;
	return backoff_ms * 2 < p->backoff_max_ms ? backoff_ms * 2 : p->backoff_max_ms;
}

void http_sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !signals_pending())
		;
}

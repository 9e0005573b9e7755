/* The S3 store: SigV4-signed libcurl requests with retries, list, a streaming get, delete. */
#include "common.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <time.h>

#include "s3.h"
#include "stores/s3-internal.h"
#include "stores/s3xml.h"
#include "stores/store.h"
#include "http.h"
#include "log.h"
#include "signals.h"
#include "sigv4.h"
#include "fs.h"
#include "strbuf.h"
#include "xalloc.h"

#define BODY_MAX       (4u << 20) /* cap on a response body we keep (list pages, errors) */
#define BACKOFF_MS     500
#define BACKOFF_MAX_MS 4000
#define CONNECT_MAX_S  10    /* the longest an attempt waits for a connection */
#define LIST_PAGES_MAX 10000 /* 10 million keys */

static struct s3 *S(struct store *s)
{
	return s->priv;
}

uint64_t s3_part_size(uint64_t floor, unsigned part)
{
	unsigned doublings = part ? (part - 1) / 1000 : 0;
	uint64_t max = 5ull << 30;
	uint64_t v = floor;

	/* Doubling every 1,000 parts: 10,000 parts of a 5 MiB floor hold 4.9 TiB. */
	for (unsigned i = 0; i < doublings && v < max; i++)
		v *= 2;
	return v > max ? max : v;
}

static size_t write_cb(char *buf, size_t size, size_t n, void *ud)
{
	struct s3_req *r = ud;
	size_t len = size * n;
	long status = 0;

	curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
	if (r->out_fd >= 0 && status >= 200 && status < 300) {
		int rc = write_all(r->out_fd, buf, len);
		if (rc < 0) {
			r->out_errno = -rc;
			return 0; /* the reader went away: stop the transfer */
		}
		r->streamed += len;
		return len;
	}
	return http_collect(&r->resp, BODY_MAX, false, buf, len); /* the excess is dropped */
}

static size_t header_cb(char *buf, size_t size, size_t n, void *ud)
{
	struct s3_req *r = ud;
	size_t len = size * n;

	if (len > 5 && !strncasecmp(buf, "etag:", 5)) {
		const char *v = buf + 5;
		size_t vl = len - 5;
		while (vl && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		snprintf(r->etag, sizeof(r->etag), "%.*s", (int)vl, v);
	}
	return len;
}

static void md5_base64(const void *data, size_t len, char out[32])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL);
	EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

/* The Host header and the (raw) path of a request. */
static void req_target(struct s3 *s, const char *key, struct strbuf *host, struct strbuf *path)
{
	const char *bucket = s->cfg->s3.bucket;

	if (s->path_style) {
		strbuf_addstr(host, s->host);
		strbuf_addf(path, "/%s", bucket);
		if (key)
			strbuf_addf(path, "/%s", key);
	} else {
		strbuf_addf(host, "%s.%s", bucket, s->host);
		strbuf_addf(path, "/%s", key ? key : "");
	}
}

static long now_ms(void);

/* Note when the transfer moves, for the stall accounting of s3_call(). */
static int xferinfo_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct s3_req *r = ud;

	(void)dltotal;
	(void)ultotal;
	if (ulnow != r->moved_up || dlnow != r->moved_down) {
		long now = now_ms();
		r->moved_up = ulnow;
		r->moved_down = dlnow;
		if (now - r->began_ms >= 1000)
			r->moved_ms = now;
	}
	return 0;
}

/*
 * One attempt; 0 when curl completed (whatever the status), else the curl code. It
 * gives up when no byte moves either way for `stall_s` seconds, never for its length.
 */
static CURLcode perform(struct s3 *s, CURL *h, struct s3_req *r, long stall_s, struct http_req *hr)
{
	struct strbuf host = STRBUF_INIT, path = STRBUF_INIT, url = STRBUF_INIT;
	struct strbuf auth = STRBUF_INIT, line = STRBUF_INIT;
	struct curl_slist *hdrs = NULL;
	struct sigv4_kv sh[6];
	size_t nsh = 0;
	char date[SIGV4_DATE_LEN + 1], hash[65], md5[32];

	req_target(s, r->key, &host, &path);
	sigv4_date(time(NULL), date);
	sigv4_sha256_hex(r->body ? r->body : "", r->body_len, hash);
	sh[nsh++] = (struct sigv4_kv){ "host", host.buf };
	sh[nsh++] = (struct sigv4_kv){ "x-amz-content-sha256", hash };
	sh[nsh++] = (struct sigv4_kv){ "x-amz-date", date };
	if (r->md5) {
		md5_base64(r->body, r->body_len, md5);
		sh[nsh++] = (struct sigv4_kv){ "content-md5", md5 };
	}
	if (r->storage_class && s->cfg->s3.storage_class)
		sh[nsh++] = (struct sigv4_kv){ "x-amz-storage-class", s->cfg->s3.storage_class };
	struct sigv4_request sr = { .method = r->method,
				    .path = path.buf,
				    .query = r->query,
				    .nr_query = r->nr_query,
				    .headers = sh,
				    .nr_headers = nsh,
				    .payload_hash = hash };
	sigv4_authorization(&sr, &s->key, date, &auth);

	strbuf_addf(&url, "%s://%s", s->scheme, host.buf);
	sigv4_uri_encode(&url, path.buf, true);
	if (r->nr_query) {
		strbuf_addch(&url, '?');
		sigv4_canonical_query(&url, r->query, r->nr_query);
	}
	for (size_t i = 0; i < nsh; i++) {
		strbuf_reset(&line);
		strbuf_addf(&line, "%s: %s", sh[i].name, sh[i].value);
		hdrs = curl_slist_append(hdrs, line.buf);
	}
	strbuf_reset(&line);
	strbuf_addf(&line, "Authorization: %s", auth.buf);
	hdrs = curl_slist_append(hdrs, line.buf);
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (r->content_type) {
		strbuf_reset(&line);
		strbuf_addf(&line, "Content-Type: %s", r->content_type);
		hdrs = curl_slist_append(hdrs, line.buf);
	}

	r->h = h;
	r->etag[0] = '\0';
	r->began_ms = now_ms();
	r->moved_ms = 0;
	r->moved_up = r->moved_down = 0;
	hr->method = r->method;
	hr->url = url.buf;
	hr->headers = hdrs;
	hr->body = r->body;
	hr->body_len = r->body_len;
	hr->protocols = "http,https";
	hr->ca_file = s->cfg->s3.ca_file;
	hr->connect_timeout_s = stall_s < CONNECT_MAX_S ? stall_s : CONNECT_MAX_S;
	hr->stall_s = stall_s;
	hr->progress = xferinfo_cb;
	hr->progress_ud = r;
	hr->write = write_cb;
	hr->write_ud = r;
	hr->header = header_cb;
	hr->header_ud = r;
	hr->resp = &r->resp;
	hr->cap = BODY_MAX;
	CURLcode cc = http_perform(h, hr, &r->status);
	curl_slist_free_all(hdrs);
	strbuf_release(&host);
	strbuf_release(&path);
	strbuf_release(&url);
	strbuf_release_secret(&auth);
	strbuf_release_secret(&line);
	return cc;
}

/* Copy remote text into a message: one line, printable, bounded. */
void s3_add_remote_text(struct strbuf *out, const char *s, size_t max)
{
	for (size_t i = 0; s[i] && i < max; i++)
		strbuf_addch(out, (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i]);
}

/* The S3 error codes a user can act on, and what to say for each. */
static const struct {
	const char *code, *why;
} known_codes[] = {
	{ "InvalidAccessKeyId",
	  "S3 does not know the access key (InvalidAccessKeyId): check BACKUP_S3_ACCESS_KEY" },
	{ "SignatureDoesNotMatch", "S3 rejected the request signature (SignatureDoesNotMatch): "
				   "check BACKUP_S3_SECRET_KEY" },
	{ "RequestTimeTooSkewed", "this machine's clock differs too much from the server's "
				  "(RequestTimeTooSkewed): fix the system time (NTP)" },
	{ "AccessDenied", "access denied (AccessDenied): the credentials lack permission for "
			  "this bucket or key" },
};

/* Turn a failed request into one clear line; `note` (or NULL) ends it. */
static int req_fail(struct s3 *s, const struct s3_req *r, const char *what, CURLcode cc,
		    const char *cerr, const char *note, struct err *e)
{
	struct strbuf code = STRBUF_INIT, msg = STRBUF_INIT, why = STRBUF_INIT;
	int ret;

	if (cc != CURLE_OK) {
		strbuf_addf(&why, "cannot reach the S3 endpoint '%s://%s': ", s->scheme, s->host);
		s3_add_remote_text(&why, http_error_text(cc, cerr), 300);
		goto done;
	}
	if (!s3xml_parse_error(r->resp.buf, r->resp.len, &code, &msg)) {
		/* HEAD answers and some proxies carry no XML body. */
		if (r->status == 404)
			strbuf_addstr(&code, r->key ? "NoSuchKey" : "NoSuchBucket");
		else if (r->status == 403)
			strbuf_addstr(&code, "AccessDenied");
	}
	const char *known = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(known_codes); i++)
		if (!strcmp(code.buf, known_codes[i].code))
			known = known_codes[i].why;
	if (!strcmp(code.buf, "NoSuchBucket"))
		strbuf_addf(&why, "bucket '%s' does not exist (NoSuchBucket)", s->cfg->s3.bucket);
	else if (known)
		strbuf_addstr(&why, known);
	else if (code.len) {
		strbuf_addf(&why, "S3 answered %ld ", r->status);
		s3_add_remote_text(&why, code.buf, 64);
	} else {
		strbuf_addf(&why, "S3 answered HTTP %ld", r->status);
	}
	if (msg.len && strcmp(code.buf, "NoSuchBucket")) {
		strbuf_addstr(&why, ": ");
		s3_add_remote_text(&why, msg.buf, 300);
	}
done:
	if (note)
		strbuf_addstr(&why, note);
	ret = err_set(e, LB_EXIT_STORE, "cannot %s: %s", what, why.buf);
	strbuf_release(&code);
	strbuf_release(&msg);
	strbuf_release(&why);
	return ret;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Did the attempt just made hear from the server: an answer, or any byte of one? */
static bool attempt_answered(const struct s3_req *r)
{
	return r->status > 0 || r->moved_down > 0;
}

/* What BACKUP_S3_TIMEOUT allows: this long without progress, the endpoint is dead. */
long s3_budget_ms(const struct s3 *s)
{
	return (long)s->cfg->s3.timeout * 1000;
}

/*
 * Record an attempt. An answer ends a stall. A failure without one starts a stall when
 * the attempt began, unless one is running; bytes that kept moving until later (a long
 * transfer cut off) move its start to then. Returns how long the endpoint has stalled.
 */
static long stall_note(struct s3 *s, const struct s3_req *r, bool answered, const char *why)
{
	long now = now_ms(), stalled;

	pthread_mutex_lock(&s->stall_lock);
	if (answered) {
		s->stalled_since = 0;
	} else {
		if (!s->stalled_since)
			s->stalled_since = r->began_ms;
		if (r->moved_ms > s->stalled_since)
			s->stalled_since = r->moved_ms;
		snprintf(s->stall_why, sizeof(s->stall_why), "%s", why);
	}
	stalled = s->stalled_since ? now - s->stalled_since : 0;
	pthread_mutex_unlock(&s->stall_lock);
	return stalled;
}

/*
 * Run a request, retrying network errors and 5xx/429 answers with backoff, at most
 * `attempts` tries. Every attempt gives up after half the budget without a byte
 * moving, and no attempt starts once the endpoint has gone `budget_ms` without
 * progress, counted over all requests of the run; a long transfer that keeps moving is
 * never cut short. `attempts` 0 is the abort of an upload: as many tries as fit in its
 * own `budget_ms`, whatever the endpoint did before, and a pending signal does not stop
 * them. `also_ok` (e.g. 404 for a delete) counts as success besides 2xx.
 */
int s3_call(struct s3 *s, CURL *h, struct s3_req *r, const char *what, int attempts, long budget_ms,
	    long also_ok, struct err *e)
{
	const struct http_retry p = { .attempts = attempts,
				      .backoff_ms = BACKOFF_MS,
				      .backoff_max_ms = BACKOFF_MAX_MS };
	struct http_req hr = { 0 };
	long start = now_ms(), backoff = p.backoff_ms;
	long stall_s = budget_ms / 2000 > 0 ? budget_ms / 2000 : 1;

	for (int i = 1;; i++) {
		if (attempts) {
			pthread_mutex_lock(&s->stall_lock);
			long since = s->stalled_since;
			char why[sizeof(s->stall_why)];
			memcpy(why, s->stall_why, sizeof(why));
			pthread_mutex_unlock(&s->stall_lock);
			if (since && now_ms() - since >= budget_ms)
				return err_set(
					e, LB_EXIT_STORE,
					"cannot %s: the S3 endpoint '%s://%s' made no progress "
					"for %ld s (BACKUP_S3_TIMEOUT is %u s): %s",
					what, s->scheme, s->host, (now_ms() - since) / 1000,
					s->cfg->s3.timeout, why);
		}
		CURLcode cc = perform(s, h, r, stall_s, &hr);
		if (cc == CURLE_OK &&
		    ((r->status >= 200 && r->status < 300) || r->status == also_ok)) {
			stall_note(s, r, true, NULL);
			return 0;
		}
		bool transient = http_retryable(&p, cc, r->status);
		if (r->out_fd >= 0 && r->streamed)
			transient = false; /* the reader has bytes already */
		long stalled = stall_note(s, r, attempt_answered(r),
					  cc != CURLE_OK ? http_error_text(cc, hr.errbuf)
							 : "server error");
		bool in_budget = attempts ? stalled + backoff < budget_ms
					  : now_ms() - start + backoff < budget_ms;
		bool more = http_attempts_left(&p, i) && in_budget;
		if (!transient || !more || (attempts && signals_pending())) {
			char note[96];
			snprintf(note, sizeof(note),
				 " (no progress for %ld s: BACKUP_S3_TIMEOUT is %u s)",
				 stalled / 1000, s->cfg->s3.timeout);
			return req_fail(s, r, what, cc, hr.errbuf,
					transient && attempts && !in_budget ? note : NULL, e);
		}
		log_debug("s3: %s failed (%s), retrying in %ld ms", what,
			  cc != CURLE_OK ? curl_easy_strerror(cc) : "server error", backoff);
		http_sleep_ms(backoff);
		backoff = http_backoff_next(&p, backoff);
	}
}

char *s3_object_key(struct s3 *s, const char *file)
{
	return xasprintf("%s%s", s->prefix, file);
}

/* ---- list, get, exists, remove ---- */

static int s3_list(struct store *st, struct store_list *out, struct err *e)
{
	struct s3 *s = S(st);
	char *token = NULL;
	char *what = xasprintf("list 's3://%s/%s'", s->cfg->s3.bucket, s->prefix);
	CURL *h = http_handle();
	int ret = -1;

	if (!h) {
		free(what);
		return err_set(e, LB_EXIT_INTERNAL, "curl_easy_init failed");
	}
	for (int page = 0;; page++) {
		struct sigv4_kv q[3] = { { "list-type", "2" }, { "prefix", s->prefix } };
		size_t nq = 2;
		struct s3xml_page pg = { 0 };
		struct s3_req r = S3_REQ_INIT("GET");

		if (token)
			q[nq++] = (struct sigv4_kv){ "continuation-token", token };
		r.query = q;
		r.nr_query = nq;
		if (page >= LIST_PAGES_MAX) {
			err_set(e, LB_EXIT_STORE, "cannot %s: more than %d pages", what,
				LIST_PAGES_MAX);
			goto out;
		}
		if (s3_call(s, h, &r, what, S3_ATTEMPTS, s3_budget_ms(s), 0, e) < 0) {
			strbuf_release(&r.resp);
			goto out;
		}
		if (r.resp.overflowed || s3xml_parse_list(r.resp.buf, r.resp.len, &pg) < 0) {
			err_set(e, LB_EXIT_STORE, "cannot %s: the answer is not a listing%s", what,
				r.resp.overflowed ? " (too large)" : "");
			strbuf_release(&r.resp);
			goto out;
		}
		strbuf_release(&r.resp);
		for (size_t i = 0; i < pg.nr; i++) {
			const char *k = pg.v[i].key;
			struct backup_id id;
			if (strncmp(k, s->prefix, strlen(s->prefix)))
				continue;
			k += strlen(s->prefix);
			if (!strchr(k, '/') && naming_parse(s->cfg->name, k, &id))
				store_list_add(out, k, &id, pg.v[i].size);
		}
		free(token);
		token = pg.truncated && pg.next_token ? xstrdup(pg.next_token) : NULL;
		bool truncated = pg.truncated;
		s3xml_page_release(&pg);
		if (!truncated)
			break;
		if (!token) {
			err_set(e, LB_EXIT_STORE,
				"cannot %s: truncated listing without a continuation token", what);
			goto out;
		}
	}
	ret = 0;
out:
	free(token);
	free(what);
	curl_easy_cleanup(h);
	return ret;
}

struct getter {
	struct store *st;
	struct s3 *s;
	char *key;
	char *what;
	int fd;
};

/* Thread: stream one object into the pipe; the reader sees EOF at the end or on failure. */
static void *getter_main(void *arg)
{
	struct getter *g = arg;
	struct err e = ERR_INIT;
	struct s3_req r = S3_REQ_INIT("GET");
	CURL *h = http_handle();

	r.key = g->key;
	r.out_fd = g->fd;
	if (!h)
		err_set(&e, LB_EXIT_INTERNAL, "curl_easy_init failed");
	else if (s3_call(g->s, h, &r, g->what, S3_ATTEMPTS, s3_budget_ms(g->s), 0, &e) < 0 &&
		 !r.out_errno)
		store_report(g->st, LOG_ERROR, "%s", e.msg);
	if (h)
		curl_easy_cleanup(h);
	close_fd(&g->fd);
	strbuf_release(&r.resp);
	free(g->key);
	free(g->what);
	free(g);
	return NULL;
}

static int s3_get_open(struct store *st, const char *file, int *ret_fd, struct err *e)
{
	struct s3 *s = S(st);
	struct getter *g = xcalloc(1, sizeof(*g));
	struct s3_req r = S3_REQ_INIT("HEAD");
	int fds[2];
	pthread_t t;

	g->st = st;
	g->s = s;
	g->key = s3_object_key(s, file);
	g->what = xasprintf("download 's3://%s/%s'", s->cfg->s3.bucket, g->key);
	g->fd = -1;
	/* Check it is there and readable first: a clear error before any byte flows. */
	CURL *h = http_handle();
	r.key = g->key;
	int rc = h ? s3_call(s, h, &r, g->what, S3_ATTEMPTS, s3_budget_ms(s), 0, e)
		   : err_set(e, LB_EXIT_INTERNAL, "curl_easy_init failed");
	if (h)
		curl_easy_cleanup(h);
	strbuf_release(&r.resp);
	if (rc < 0) {
		if (r.status == 404)
			e->code = LB_EXIT_NOT_FOUND;
		goto fail;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		err_set(e, LB_EXIT_INTERNAL, "cannot create a pipe: %s", strerror(errno));
		goto fail;
	}
	g->fd = fds[1];
	if (pthread_create(&t, NULL, getter_main, g) != 0) {
		close(fds[0]);
		close(fds[1]);
		err_set(e, LB_EXIT_INTERNAL, "cannot start a thread");
		goto fail;
	}
	pthread_mutex_lock(&s->lock);
	s->getters = xrealloc(s->getters, (s->nr_getters + 1) * sizeof(*s->getters));
	s->getters[s->nr_getters++] = t;
	pthread_mutex_unlock(&s->lock);
	*ret_fd = fds[0];
	return 0;
fail:
	free(g->key);
	free(g->what);
	free(g);
	return -1;
}

static bool s3_exists(struct store *st, const char *file)
{
	struct s3 *s = S(st);
	struct s3_req r = S3_REQ_INIT("HEAD");
	struct err e = ERR_INIT;
	char *key = s3_object_key(s, file);
	CURL *h = http_handle();
	bool found = false;

	r.key = key;
	if (h && s3_call(s, h, &r, "check an object", S3_ATTEMPTS, s3_budget_ms(s), 0, &e) == 0)
		found = true;
	if (h)
		curl_easy_cleanup(h);
	strbuf_release(&r.resp);
	free(key);
	return found;
}

static int s3_remove(struct store *st, const char *file, struct err *e)
{
	struct s3 *s = S(st);
	struct s3_req r = S3_REQ_INIT("DELETE");
	int ret;

	if (!store_file_ours(s->cfg, file))
		return err_set(e, LB_EXIT_INTERNAL, "refusing to delete '%s': not a backup of '%s'",
			       file, s->cfg->name);
	char *key = s3_object_key(s, file);
	char *what = xasprintf("delete 's3://%s/%s'", s->cfg->s3.bucket, key);
	CURL *h = http_handle();
	r.key = key;
	ret = h ? s3_call(s, h, &r, what, S3_ATTEMPTS, s3_budget_ms(s), 404, e)
		: err_set(e, LB_EXIT_INTERNAL, "curl_easy_init failed");
	if (h)
		curl_easy_cleanup(h);
	strbuf_release(&r.resp);
	free(key);
	free(what);
	return ret;
}

/* One PUT (with Content-MD5): S3 makes an object visible whole or not at all. */
static int s3_put_small(struct store *st, const char *file, const void *buf, size_t len,
			struct err *e)
{
	struct s3 *s = S(st);
	struct s3_req r = S3_REQ_INIT("PUT");
	int ret;

	if (!store_file_ours(s->cfg, file))
		return err_set(e, LB_EXIT_INTERNAL, "refusing to write '%s': not a file of '%s'",
			       file, s->cfg->name);
	char *key = s3_object_key(s, file);
	char *what = xasprintf("upload 's3://%s/%s'", s->cfg->s3.bucket, key);
	CURL *h = http_handle();
	r.key = key;
	r.body = buf;
	r.body_len = len;
	r.md5 = true;
	r.storage_class = true;
	r.content_type = "application/octet-stream";
	ret = h ? s3_call(s, h, &r, what, S3_ATTEMPTS, s3_budget_ms(s), 0, e)
		: err_set(e, LB_EXIT_INTERNAL, "curl_easy_init failed");
	if (h)
		curl_easy_cleanup(h);
	strbuf_release(&r.resp);
	free(key);
	free(what);
	return ret;
}

static void s3_free(struct store *st)
{
	struct s3 *s = S(st);

	/* Readers have closed their ends by now: getters finish (EPIPE) and exit. */
	for (size_t i = 0; i < s->nr_getters; i++)
		pthread_join(s->getters[i], NULL);
	free(s->getters);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->stall_lock);
	free(s->scheme);
	free(s->host);
	free(s->prefix);
	free(s);
	free(st);
}

static const struct store_ops s3_ops = {
	.kind = "s3",
	.put_begin = s3_put_begin,
	.put_write = s3_put_write,
	.put_commit = s3_put_commit,
	.put_abort = s3_put_abort,
	.list = s3_list,
	.get_open = s3_get_open,
	.exists = s3_exists,
	.remove = s3_remove,
	.put_small = s3_put_small,
	.remove_temp = s3_remove_temp,
	.free = s3_free,
};

int store_s3_new(const struct config *cfg, struct store **ret, struct err *e)
{
	struct store *st;
	struct s3 *s;

	if (!cfg->s3.bucket)
		return err_set(e, LB_EXIT_CONFIG, "BACKUP_S3_BUCKET is not set");
	if (http_init(e) < 0)
		return -1;
	st = xcalloc(1, sizeof(*st));
	s = xcalloc(1, sizeof(*s));
	s->cfg = cfg;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->stall_lock, NULL);
	if (cfg->s3.endpoint) {
		const char *ep = cfg->s3.endpoint;
		const char *sep = strstr(ep, "://");
		s->scheme = xstrndup(ep, (size_t)(sep - ep));
		s->host = xstrdup(sep + 3);
		/* curl leaves a default port out of Host: so must the signature. */
		size_t n = strlen(s->host);
		const char *dflt = !strcmp(s->scheme, "https") ? ":443" : ":80";
		if (n > strlen(dflt) && !strcmp(s->host + n - strlen(dflt), dflt))
			s->host[n - strlen(dflt)] = '\0';
		s->path_style = cfg->s3.path_style != 0;
	} else {
		s->scheme = xstrdup("https");
		s->host = xasprintf("s3.%s.amazonaws.com", cfg->s3.region);
		s->path_style = cfg->s3.path_style == 1;
	}
	s->prefix = xasprintf("%s/", cfg->name);
	s->key = (struct sigv4_key){ .access_key = cfg->s3.access_key.buf,
				     .secret_key = cfg->s3.secret_key.buf,
				     .region = cfg->s3.region,
				     .service = "s3" };
	st->ops = &s3_ops;
	st->cfg = cfg;
	st->priv = s;
	*ret = st;
	return 0;
}

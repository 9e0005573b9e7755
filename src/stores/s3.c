/* The S3 store: SigV4-signed libcurl requests, a streaming multipart upload, a streaming get. */
#include "config-vars.h"
#include "common.h"

#include <ctype.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <time.h>

#include "s3.h"
#include "fs.h"
#include "stores/s3xml.h"
#include "stores/store.h"
#include "http.h"
#include "log.h"
#include "signals.h"
#include "sigv4.h"
#include "strbuf.h"
#include "xalloc.h"

#define BODY_MAX       (4u << 20) /* cap on a response body we keep (list pages, errors) */
#define SLOTS	       3	  /* part buffers: one filling, up to two uploading */
#define PART_ATTEMPTS  5	  /* backoff 0.5 + 1 + 2 + 4 s between them */
#define BACKOFF_MS     500
#define BACKOFF_MAX_MS 4000
#define CONNECT_MAX_S  10    /* the longest an attempt waits for a connection */
#define LIST_PAGES_MAX 10000 /* 10 million keys */

struct s3 {
	const struct config *cfg;
	char *scheme; /* "https" or "http" */
	char *host;   /* endpoint host[:port] */
	bool path_style;
	char *prefix; /* "BACKUP_NAME/" */
	struct sigv4_key key;
	pthread_mutex_t lock; /* getters */
	pthread_t *getters;
	size_t nr_getters;
	/*
	 * Since when no request to the endpoint has made progress (0: the last one did),
	 * and why the last attempt failed: shared by every request of the run, so a dead
	 * endpoint costs BACKUP_S3_TIMEOUT once, not once per request.
	 */
	pthread_mutex_t stall_lock;
	long stalled_since;
	char stall_why[256];
};

/* One request and what came back. */
struct s3_req {
	const char *method;
	const char *key; /* object key, or NULL for the bucket */
	const struct sigv4_kv *query;
	size_t nr_query;
	const void *body;
	size_t body_len;
	const char *content_type;
	bool md5;	    /* send Content-MD5 of the body */
	bool storage_class; /* send x-amz-storage-class */
	int out_fd;	    /* GET: stream a 2xx body here (else -1: keep it in resp) */
	/* results */
	long status;
	struct strbuf resp;
	char etag[128];
	uint64_t streamed;
	int out_errno;
	CURL *h;
	/* The attempt in progress: when it began, and when bytes last moved a second or more
	 * after that (0: never; a hung server still takes a socket buffer's worth at once). */
	long began_ms, moved_ms;
	curl_off_t moved_up, moved_down;
};
#define S3_REQ_INIT(m)                                           \
	{                                                        \
		.method = (m), .out_fd = -1, .resp = STRBUF_INIT \
	}

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

/* Note when the transfer moves, for the stall accounting of call(). */
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
static void add_remote_text(struct strbuf *out, const char *s, size_t max)
{
	for (size_t i = 0; s[i] && i < max; i++)
		strbuf_addch(out, (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i]);
}

/* Turn a failed request into one clear line; `note` (or NULL) ends it. */
static int req_fail(struct s3 *s, const struct s3_req *r, const char *what, CURLcode cc,
		    const char *cerr, const char *note, struct err *e)
{
	struct strbuf code = STRBUF_INIT, msg = STRBUF_INIT, why = STRBUF_INIT;
	int ret;

	if (cc != CURLE_OK) {
		strbuf_addf(&why, "cannot reach the S3 endpoint '%s://%s': ", s->scheme, s->host);
		add_remote_text(&why, http_error_text(cc, cerr), 300);
		goto done;
	}
	if (!s3xml_parse_error(r->resp.buf, r->resp.len, &code, &msg)) {
		/* HEAD answers and some proxies carry no XML body. */
		if (r->status == 404)
			strbuf_addstr(&code, r->key ? "NoSuchKey" : "NoSuchBucket");
		else if (r->status == 403)
			strbuf_addstr(&code, "AccessDenied");
	}
	if (!strcmp(code.buf, "NoSuchBucket"))
		strbuf_addf(&why, "bucket '%s' does not exist (NoSuchBucket)", s->cfg->s3.bucket);
	else if (!strcmp(code.buf, "InvalidAccessKeyId"))
		strbuf_addstr(&why, "S3 does not know the access key (InvalidAccessKeyId): check "
				    "BACKUP_S3_ACCESS_KEY");
	else if (!strcmp(code.buf, "SignatureDoesNotMatch"))
		strbuf_addstr(&why, "S3 rejected the request signature (SignatureDoesNotMatch): "
				    "check BACKUP_S3_SECRET_KEY");
	else if (!strcmp(code.buf, "RequestTimeTooSkewed"))
		strbuf_addstr(&why, "this machine's clock differs too much from the server's "
				    "(RequestTimeTooSkewed): fix the system time (NTP)");
	else if (!strcmp(code.buf, "AccessDenied"))
		strbuf_addstr(&why, "access denied (AccessDenied): the credentials lack "
				    "permission for this bucket or key");
	else if (code.len) {
		strbuf_addf(&why, "S3 answered %ld ", r->status);
		add_remote_text(&why, code.buf, 64);
	} else {
		strbuf_addf(&why, "S3 answered HTTP %ld", r->status);
	}
	if (msg.len && strcmp(code.buf, "NoSuchBucket")) {
		strbuf_addstr(&why, ": ");
		add_remote_text(&why, msg.buf, 300);
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
static long request_budget_ms(const struct s3 *s)
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
static int call(struct s3 *s, CURL *h, struct s3_req *r, const char *what, int attempts,
		long budget_ms, long also_ok, struct err *e)
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

static char *object_key(struct s3 *s, const char *file)
{
	return xasprintf("%s%s", s->prefix, file);
}

/* ---- multipart upload ---- */

struct s3_put;

struct slot {
	struct s3_put *up;
	unsigned char *buf;
	size_t len, cap;
	unsigned part; /* being uploaded (busy) */
	bool busy;
	pthread_t thread;
	CURL *h;
	struct err err;
	char etag[128];
};

struct s3_put {
	struct s3 *s;
	char *key;
	char *what; /* "upload 's3://bucket/key'" */
	char *upload_id;
	CURL *h; /* control requests */
	struct slot slots[SLOTS];
	unsigned cur;	    /* slot being filled */
	unsigned next_part; /* number of the part being filled */
	char **etags;	    /* [part - 1] */
	size_t nr_etags;
};

static void *part_main(void *arg)
{
	struct slot *sl = arg;
	struct s3_put *up = sl->up;
	char num[16];

	snprintf(num, sizeof(num), "%u", sl->part);
	const struct sigv4_kv q[] = { { "partNumber", num }, { "uploadId", up->upload_id } };
	struct s3_req r = S3_REQ_INIT("PUT");
	r.key = up->key;
	r.query = q;
	r.nr_query = 2;
	r.body = sl->buf;
	r.body_len = sl->len;
	r.md5 = true;
	if (call(up->s, sl->h, &r, up->what, PART_ATTEMPTS, request_budget_ms(up->s), 0,
		 &sl->err) == 0) {
		if (!r.etag[0])
			err_set(&sl->err, LB_EXIT_STORE, "cannot %s: part %u got no ETag", up->what,
				sl->part);
		else
			memcpy(sl->etag, r.etag, sizeof(sl->etag));
	}
	strbuf_release(&r.resp);
	return NULL;
}

/* Wait for a slot's upload; record its ETag. */
static int slot_join(struct s3_put *up, struct slot *sl, struct err *e)
{
	if (!sl->busy)
		return 0;
	pthread_join(sl->thread, NULL);
	sl->busy = false;
	sl->len = 0;
	if (err_isset(&sl->err)) {
		err_copy(e, &sl->err);
		err_clear(&sl->err);
		return -1;
	}
	if (sl->part > up->nr_etags) {
		up->etags = xrealloc(up->etags, sl->part * sizeof(*up->etags));
		for (size_t i = up->nr_etags; i < sl->part; i++)
			up->etags[i] = NULL;
		up->nr_etags = sl->part;
	}
	up->etags[sl->part - 1] = xstrdup(sl->etag);
	return 0;
}

/* Send the slot being filled as the next part, then make the next slot free. */
static int flush_slot(struct s3_put *up, struct err *e)
{
	struct slot *sl = &up->slots[up->cur];

	if (up->next_part > 10000)
		return err_set(e, LB_EXIT_STORE, "cannot %s: more than 10,000 parts", up->what);
	sl->part = up->next_part++;
	if (!sl->h)
		sl->h = http_handle();
	if (!sl->h)
		return err_set(e, LB_EXIT_INTERNAL, "cannot %s: curl_easy_init failed", up->what);
	if (pthread_create(&sl->thread, NULL, part_main, sl) != 0)
		return err_set(e, LB_EXIT_INTERNAL, "cannot %s: cannot start a thread", up->what);
	sl->busy = true;
	up->cur = (up->cur + 1) % SLOTS;
	return slot_join(up, &up->slots[up->cur], e);
}

static void put_free(struct s3_put *up)
{
	for (unsigned i = 0; i < SLOTS; i++) {
		free(up->slots[i].buf);
		if (up->slots[i].h)
			curl_easy_cleanup(up->slots[i].h);
	}
	for (size_t i = 0; i < up->nr_etags; i++)
		free(up->etags[i]);
	free(up->etags);
	if (up->h)
		curl_easy_cleanup(up->h);
	free(up->key);
	free(up->what);
	free(up->upload_id);
	free(up);
}

static int s3_put_begin(struct store *st, const char *file, struct store_put *p, struct err *e)
{
	struct s3 *s = S(st);
	struct s3_put *up = xcalloc(1, sizeof(*up));
	struct strbuf id = STRBUF_INIT;
	const struct sigv4_kv q[] = { { "uploads", "" } };
	struct s3_req r = S3_REQ_INIT("POST");

	up->s = s;
	up->key = object_key(s, file);
	up->what = xasprintf("upload 's3://%s/%s'", s->cfg->s3.bucket, up->key);
	up->next_part = 1;
	for (unsigned i = 0; i < SLOTS; i++)
		up->slots[i].up = up;
	up->h = http_handle();
	if (!up->h) {
		put_free(up);
		return err_set(e, LB_EXIT_INTERNAL, "curl_easy_init failed");
	}
	r.key = up->key;
	r.query = q;
	r.nr_query = 1;
	r.storage_class = true;
	if (call(s, up->h, &r, up->what, PART_ATTEMPTS, request_budget_ms(s), 0, e) < 0)
		goto fail;
	if (!s3xml_first(r.resp.buf, r.resp.len, "UploadId", &id) || !id.len) {
		err_set(e, LB_EXIT_STORE, "cannot %s: the server sent no UploadId", up->what);
		goto fail;
	}
	up->upload_id = strbuf_detach(&id, NULL);
	strbuf_release(&r.resp);
	p->store = st;
	p->file = xstrdup(file);
	p->priv = up;
	p->bytes = 0;
	return 0;
fail:
	strbuf_release(&r.resp);
	strbuf_release(&id);
	put_free(up);
	return -1;
}

static int s3_put_write(struct store_put *p, const void *buf, size_t len, struct err *e)
{
	struct s3_put *up = p->priv;
	const unsigned char *src = buf;

	while (len) {
		struct slot *sl = &up->slots[up->cur];
		size_t want = (size_t)s3_part_size(up->s->cfg->s3.part_size, up->next_part);
		if (sl->cap < want) {
			free(sl->buf);
			sl->buf = xmalloc(want);
			sl->cap = want;
		}
		size_t n = want - sl->len < len ? want - sl->len : len;
		memcpy(sl->buf + sl->len, src, n);
		sl->len += n;
		src += n;
		len -= n;
		p->bytes += n;
		if (sl->len == want && flush_slot(up, e) < 0)
			return -1;
	}
	return 0;
}

static int s3_put_commit(struct store_put *p, struct err *e)
{
	struct s3_put *up = p->priv;
	struct strbuf xml = STRBUF_INIT, code = STRBUF_INIT, msg = STRBUF_INIT;
	int ret = -1;

	if ((up->slots[up->cur].len || up->next_part == 1) && flush_slot(up, e) < 0)
		goto out;
	for (unsigned i = 0; i < SLOTS; i++)
		if (slot_join(up, &up->slots[i], e) < 0)
			goto out;
	strbuf_addstr(&xml, "<CompleteMultipartUpload>");
	for (size_t i = 0; i < up->nr_etags; i++) {
		strbuf_addf(&xml, "<Part><PartNumber>%zu</PartNumber><ETag>", i + 1);
		s3xml_escape(&xml, up->etags[i] ? up->etags[i] : "");
		strbuf_addstr(&xml, "</ETag></Part>");
	}
	strbuf_addstr(&xml, "</CompleteMultipartUpload>");

	const struct sigv4_kv q[] = { { "uploadId", up->upload_id } };
	struct s3_req r = S3_REQ_INIT("POST");
	r.key = up->key;
	r.query = q;
	r.nr_query = 1;
	r.body = xml.buf;
	r.body_len = xml.len;
	r.content_type = "application/xml";
	if (call(up->s, up->h, &r, up->what, PART_ATTEMPTS, request_budget_ms(up->s), 0, e) < 0) {
		strbuf_release(&r.resp);
		goto out;
	}
	/* CompleteMultipartUpload may fail after a 200: the error is in the body. */
	if (s3xml_parse_error(r.resp.buf, r.resp.len, &code, &msg)) {
		struct strbuf why = STRBUF_INIT;
		add_remote_text(&why, code.buf, 64);
		strbuf_addstr(&why, ": ");
		add_remote_text(&why, msg.buf, 300);
		err_set(e, LB_EXIT_STORE, "cannot %s: %s", up->what, why.buf);
		strbuf_release(&why);
		strbuf_release(&r.resp);
		goto out;
	}
	strbuf_release(&r.resp);
	put_free(up);
	free(p->file);
	p->file = NULL;
	p->priv = NULL;
	ret = 0;
out:
	strbuf_release(&xml);
	strbuf_release(&code);
	strbuf_release(&msg);
	return ret;
}

/* Wait for parts in flight, then abort the upload so nothing is left behind. */
static void s3_put_abort(struct store_put *p)
{
	struct s3_put *up = p->priv;
	struct err e = ERR_INIT;

	if (!up)
		return;
	for (unsigned i = 0; i < SLOTS; i++) {
		struct err ignore = ERR_INIT;
		slot_join(up, &up->slots[i], &ignore);
	}
	if (up->upload_id) {
		const struct sigv4_kv q[] = { { "uploadId", up->upload_id } };
		struct s3_req r = S3_REQ_INIT("DELETE");
		char *what = xasprintf("abort the upload of 's3://%s/%s'", up->s->cfg->s3.bucket,
				       up->key);
		r.key = up->key;
		r.query = q;
		r.nr_query = 1;
		/* 404 NoSuchUpload: already gone. A quarter of the budget: the run is failing. */
		if (call(up->s, up->h, &r, what, 0, request_budget_ms(up->s) / 4, 404, &e) < 0)
			store_report(p->store, LOG_WARN,
				     "%s (upload id '%s' is left for the bucket's lifecycle rules)",
				     e.msg, up->upload_id);
		else
			log_debug("s3: aborted upload of '%s'", up->key);
		free(what);
		strbuf_release(&r.resp);
	}
	put_free(up);
	free(p->file);
	p->file = NULL;
	p->priv = NULL;
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
		if (call(s, h, &r, what, PART_ATTEMPTS, request_budget_ms(s), 0, e) < 0) {
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
	else if (call(g->s, h, &r, g->what, PART_ATTEMPTS, request_budget_ms(g->s), 0, &e) < 0 &&
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
	g->key = object_key(s, file);
	g->what = xasprintf("download 's3://%s/%s'", s->cfg->s3.bucket, g->key);
	g->fd = -1;
	/* Check it is there and readable first: a clear error before any byte flows. */
	CURL *h = http_handle();
	r.key = g->key;
	int rc = h ? call(s, h, &r, g->what, PART_ATTEMPTS, request_budget_ms(s), 0, e)
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
	char *key = object_key(s, file);
	CURL *h = http_handle();
	bool found = false;

	r.key = key;
	if (h && call(s, h, &r, "check an object", PART_ATTEMPTS, request_budget_ms(s), 0, &e) == 0)
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
	struct backup_id id;
	int ret;

	if (!naming_parse(s->cfg->name, file, &id))
		return err_set(e, LB_EXIT_INTERNAL, "refusing to delete '%s': not a backup of '%s'",
			       file, s->cfg->name);
	char *key = object_key(s, file);
	char *what = xasprintf("delete 's3://%s/%s'", s->cfg->s3.bucket, key);
	CURL *h = http_handle();
	r.key = key;
	ret = h ? call(s, h, &r, what, PART_ATTEMPTS, request_budget_ms(s), 404, e)
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

/* ---- its variables: rows of the configuration table (config-vars.h) ---- */

static int var_s3_bucket(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return 0;
	if (!parse_bucket_valid(value))
		return err_set(
			e, LB_EXIT_CONFIG,
			"BACKUP_S3_BUCKET '%s' is invalid: S3 bucket names have 3 to 63 "
			"lowercase letters, digits, '.' and '-', start and end with a letter "
			"or digit, and are not IP addresses (no 's3://' and no path)",
			SHOW(value));
	cfg->s3.bucket = xstrdup(value);
	return 0;
}

static int var_s3_access_key(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_S3_BUCKET is set but BACKUP_S3_ACCESS_KEY is not (or "
			       "BACKUP_S3_ACCESS_KEY_FILE)");
	strbuf_add(&cfg->s3.access_key, value, len);
	cfg->s3.access_origin = origin;
	return 0;
}

static int var_s3_secret_key(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_S3_BUCKET is set but BACKUP_S3_SECRET_KEY is not (or "
			       "BACKUP_S3_SECRET_KEY_FILE)");
	strbuf_add(&cfg->s3.secret_key, value, len);
	cfg->s3.secret_origin = origin;
	return 0;
}

static int var_s3_endpoint(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return 0;
	if (!parse_endpoint_valid(value))
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_S3_ENDPOINT is invalid: expected "
			       "https://host[:port] or http://host[:port]");
	int r = parse_url_check(value);
	if (r < 0)
		return err_set(e, LB_EXIT_CONFIG, "BACKUP_S3_ENDPOINT '%s' %s", SHOW(value),
			       r == -ERANGE ? "has an invalid port: expected 1 to 65535"
					    : "has no host");
	cfg->s3.endpoint = xstrdup(value);
	size_t n = strlen(cfg->s3.endpoint);
	if (cfg->s3.endpoint[n - 1] == '/')
		cfg->s3.endpoint[n - 1] = '\0';
	return 0;
}

static int var_s3_region(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	for (const char *p = value; p && *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return err_set(e, LB_EXIT_CONFIG,
				       "BACKUP_S3_REGION '%s' is invalid (expected a name such as "
				       "'us-east-1')",
				       SHOW(value));
	cfg->s3.region = xstrdup(value ? value : v->def);
	return 0;
}

static int var_s3_path_style(CONFIG_PARSE_ARGS)
{
	bool b;
	CONFIG_UNUSED_ARGS;

	if (!value)
		return 0;
	if (parse_bool(value, &b) < 0)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_S3_PATH_STYLE '%s' is invalid: expected true or false",
			       SHOW(value));
	cfg->s3.path_style = b;
	return 0;
}

static int var_s3_ca_file(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return 0;
	if (access(value, R_OK) < 0)
		return err_set(e, LB_EXIT_CONFIG, "BACKUP_S3_CA_FILE '%s': %s", SHOW(value),
			       strerror(errno));
	cfg->s3.ca_file = xstrdup(value);
	return 0;
}

static int var_s3_storage_class(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	for (const char *p = value; p && *p; p++)
		if (!isupper((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
			return err_set(e, LB_EXIT_CONFIG,
				       "BACKUP_S3_STORAGE_CLASS '%s' is invalid (expected a class "
				       "such as STANDARD_IA)",
				       SHOW(value));
	if (value)
		cfg->s3.storage_class = xstrdup(value);
	return 0;
}

static int var_s3_part_size(CONFIG_PARSE_ARGS)
{
	uint64_t n;
	CONFIG_UNUSED_ARGS;

	if (parse_size(value ? value : v->def, &n) < 0 || n < (5ull << 20) || n > (5ull << 30))
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_S3_PART_SIZE '%s' is invalid: expected a size from 5M to 5G "
			       "(for example 16M)",
			       SHOW(value ? value : v->def));
	cfg->s3.part_size = n;
	return 0;
}

/* The S3 store, all its variables at once. */
static void describe_s3(const struct config *cfg, struct strbuf *out)
{
	if (!cfg->s3.bucket)
		return;
	strbuf_addf(out, "BACKUP_S3_BUCKET     %s\n", cfg->s3.bucket);
	strbuf_addf(out, "  archives in        s3://%s/%s/\n", cfg->s3.bucket, cfg->name);
	strbuf_addf(out, "BACKUP_S3_ENDPOINT   %s\n",
		    cfg->s3.endpoint ? cfg->s3.endpoint : "(unset: AWS S3)");
	strbuf_addf(out, "BACKUP_S3_REGION     %s\n", cfg->s3.region);
	strbuf_addf(out, "S3 access key        read from %s (redacted)\n", cfg->s3.access_origin);
	strbuf_addf(out, "S3 secret key        read from %s (redacted)\n", cfg->s3.secret_origin);
	strbuf_addf(out, "BACKUP_S3_PATH_STYLE %s\n",
		    cfg->s3.path_style < 0
			    ? (cfg->s3.endpoint ? "true (custom endpoint)" : "false (AWS)")
		    : cfg->s3.path_style ? "true"
					 : "false");
	if (cfg->s3.ca_file)
		strbuf_addf(out, "BACKUP_S3_CA_FILE    %s\n", cfg->s3.ca_file);
	if (cfg->s3.storage_class)
		strbuf_addf(out, "BACKUP_S3_STORAGE_CLASS %s\n", cfg->s3.storage_class);
	strbuf_addf(out, "BACKUP_S3_PART_SIZE  %llu MiB (minimum; grows for large backups)\n",
		    (unsigned long long)(cfg->s3.part_size >> 20));
	strbuf_addf(out,
		    "BACKUP_S3_TIMEOUT    %us without progress per request (a transfer that "
		    "moves is never cut)\n",
		    cfg->s3.timeout);
}

static const struct config_var s3_rows[] = {
	{ "BACKUP_S3_BUCKET", 0, var_s3_bucket, 0, 0, 0, NULL,
	  "S3 bucket to store archives in, at "
	  "`s3://BUCKET/BACKUP_NAME/BACKUP_NAME-YYYY-MM-DD-HHMMSS.tar.gz.gpg`. Works alone or "
	  "together with `BACKUP_LOCAL_PATH` (both get the same stream). The bucket must exist, "
	  "and its name must follow S3's rules: 3–63 lowercase letters, digits, `.` and `-`, a "
	  "letter or digit at each end, no `..`, not an IP address.",
	  describe_s3 },
	{ "BACKUP_S3_ACCESS_KEY", SECRET | VAR_GROUP, var_s3_access_key, 0, 0, 0, NULL,
	  "Access key ID; required with `BACKUP_S3_BUCKET`.", NULL },
	{ "BACKUP_S3_SECRET_KEY", SECRET | VAR_GROUP, var_s3_secret_key, 0, 0, 0, NULL,
	  "Secret access key; required with `BACKUP_S3_BUCKET`.", NULL },
	{ "BACKUP_S3_ENDPOINT", VAR_GROUP, var_s3_endpoint, 0, 0, 0, "AWS S3",
	  "`https://host[:port]` (or `http://`; port 1–65535) of an S3-compatible service (MinIO, "
	  "Backblaze B2, Wasabi, ...). Default: AWS S3 (`https://s3.REGION.amazonaws.com`).",
	  NULL },
	{ "BACKUP_S3_REGION", VAR_GROUP, var_s3_region, 0, 0, 0, "us-east-1",
	  "Region used for signing; default `us-east-1`.", NULL },
	{ "BACKUP_S3_PATH_STYLE", VAR_GROUP, var_s3_path_style, 0, 0, 0,
	  "true with an endpoint, else false",
	  "`true`: `https://ENDPOINT/BUCKET/KEY`; `false`: `https://BUCKET.ENDPOINT/KEY`. Default: "
	  "path-style for a custom endpoint, virtual-hosted for AWS.",
	  NULL },
	{ "BACKUP_S3_CA_FILE", VAR_GROUP, var_s3_ca_file, 0, 0, 0, NULL,
	  "PEM bundle of CAs to trust for the endpoint (a private CA). HTTPS is always verified.",
	  NULL },
	{ "BACKUP_S3_STORAGE_CLASS", VAR_GROUP, var_s3_storage_class, 0, 0, 0, "the bucket's",
	  "Storage class of new objects, e.g. `STANDARD_IA`; default: the bucket's.", NULL },
	{ "BACKUP_S3_PART_SIZE", VAR_GROUP, var_s3_part_size, 0, 0, 0, "16M",
	  "Multipart part size floor, `5M` to `5G` (default `16M`). Memory use is about 3 parts. "
	  "Parts double every 1,000 parts so a backup never needs more than S3's 10,000.",
	  NULL },
	{ "BACKUP_S3_TIMEOUT", VAR_GROUP, config_var_duration, OFF(s3.timeout), 1, 0, "120",
	  "How long S3 may make no progress before the run gives up on it: seconds, or `5m` (1 s "
	  "to 7 days); default `120` (2 minutes). It bounds silence, not transfers: an upload of "
	  "any size and duration runs as long as bytes keep moving. See [S3](#s3).",
	  NULL },
};
const struct config_var_group s3_vars = CONFIG_VAR_GROUP_IF(s3_rows, "BACKUP_S3_BUCKET");

/*
 * The WebDAV store: archives in BACKUP_WEBDAV_URL/BACKUP_NAME/. An archive streams to a
 * hidden temporary name in one chunked PUT, fed through a pipe to an upload thread, and a
 * MOVE without overwrite gives it its name; PROPFIND lists, GET streams it back, DELETE
 * prunes. Every request goes through http.c.
 */
#include "common.h"

#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/random.h>

#include "child.h"
#include "config-vars.h"
#include "fault.h"
#include "fs.h"
#include "http.h"
#include "parse.h"
#include "signals.h"
#include "stores/davxml.h"
#include "stores/store.h"
#include "strbuf.h"
#include "xalloc.h"

#define BODY_MAX       (4u << 20) /* cap on an answer we keep (listings, errors) */
#define ATTEMPTS       4	  /* requests other than the upload: backoff 0.5 + 1 + 2 s */
#define BACKOFF_MS     500
#define BACKOFF_MAX_MS 4000
#define CONNECT_MAX_S  10
#define PIPE_BYTES     (1 << 20) /* the bounded buffer between the stream and the upload */
#define UPLOAD_BUFFER  (512L << 10)

struct getter;

struct webdav {
	const struct config *cfg;
	char *dir_url; /* BACKUP_WEBDAV_URL/NAME/ */
	pthread_mutex_t lock;
	struct getter **getters; /* downloads in flight, joined by free */
	size_t nr_getters;
};

static struct webdav *W(struct store *s)
{
	return s->priv;
}

/* One request and what came back. */
struct dav_req {
	const char *method;
	const char *url;
	const char *body; /* PROPFIND's query */
	const char *destination;
	bool depth0, depth1;
	curl_read_callback read; /* the upload's body */
	void *read_ud;
	int out_fd; /* GET: a 2xx body goes here (else -1: into resp) */
	/* results */
	CURL *h;
	long status;
	struct strbuf resp;
	uint64_t streamed;
	int out_errno;
};
#define DAV_REQ_INIT(m, u)                                                   \
	{                                                                    \
		.method = (m), .url = (u), .out_fd = -1, .resp = STRBUF_INIT \
	}

static size_t write_cb(char *buf, size_t size, size_t n, void *ud)
{
	struct dav_req *r = ud;
	size_t len = size * n;
	long status = 0;

	curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
	if (r->out_fd >= 0 && status >= 200 && status < 300) {
		int rc = write_all(r->out_fd, buf, len);
		if (rc < 0) {
			r->out_errno = -rc;
			return 0; /* the reader went away: stop */
		}
		r->streamed += len;
		return len;
	}
	return http_collect(&r->resp, BODY_MAX, false, buf, len);
}

static CURLcode perform(struct webdav *w, CURL *h, struct dav_req *r, struct http_req *hr)
{
	const struct config_webdav *c = &w->cfg->webdav;
	struct curl_slist *hdrs = NULL;
	struct strbuf line = STRBUF_INIT;

	if (r->destination) {
		strbuf_addf(&line, "Destination: %s", r->destination);
		hdrs = curl_slist_append(hdrs, line.buf);
		hdrs = curl_slist_append(hdrs, "Overwrite: F");
	}
	if (r->depth0 || r->depth1)
		hdrs = curl_slist_append(hdrs, r->depth1 ? "Depth: 1" : "Depth: 0");
	if (r->body)
		hdrs = curl_slist_append(hdrs, "Content-Type: application/xml; charset=utf-8");
	*hr = (struct http_req){ .method = r->method,
				 .url = r->url,
				 .headers = hdrs,
				 .body = r->body,
				 .body_len = r->body ? strlen(r->body) : 0,
				 .read = r->read,
				 .read_ud = r->read_ud,
				 .upload_buffer = r->read ? UPLOAD_BUFFER : 0,
				 .username = c->user,
				 .password = c->user ? c->password.buf : NULL,
				 .protocols = "http,https",
				 .ca_file = c->ca_file,
				 .connect_timeout_s =
					 c->timeout < CONNECT_MAX_S ? c->timeout : CONNECT_MAX_S,
				 .stall_s = c->timeout,
				 .write = write_cb,
				 .write_ud = r,
				 .resp = &r->resp,
				 .cap = BODY_MAX };
	r->h = h;
	r->status = 0;
	strbuf_reset(&r->resp);
	CURLcode cc = http_perform(h, hr, &r->status);
	curl_slist_free_all(hdrs);
	strbuf_release(&line);
	return cc;
}

/* Copy remote text into a message: one line, printable, bounded. */
static void add_remote_text(struct strbuf *out, const char *s, size_t max)
{
	for (size_t i = 0; s[i] && i < max; i++)
		strbuf_addch(out, (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i]);
}

/* What an HTTP status means here, in words a user can act on; NULL: nothing special. */
static const char *status_why(long status)
{
	switch (status) {
	case 401:
		return "the server refused the credentials (HTTP 401): check BACKUP_WEBDAV_USER "
		       "and BACKUP_WEBDAV_PASSWORD";
	case 403:
		return "access denied (HTTP 403): the account may not write there";
	case 404:
	case 409:
		return "the directory does not exist on the server: create it, or check "
		       "BACKUP_WEBDAV_URL";
	case 411:
		return "the server needs an upload's length in advance (HTTP 411 Length "
		       "Required), and a streamed archive has none";
	case 412:
		return "an archive of that name exists already (HTTP 412)";
	case 413:
		return "the server refused the upload's size (HTTP 413): raise its upload limit";
	case 507:
		return "the server is out of space (HTTP 507 Insufficient Storage)";
	default:
		return NULL;
	}
}

/* Turn a failed request into one line: "cannot WHAT: why". */
static int dav_fail(struct webdav *w, const struct dav_req *r, const char *what, CURLcode cc,
		    const char *cerr, struct err *e)
{
	struct strbuf why = STRBUF_INIT;
	const char *known = status_why(r->status);
	int ret;

	if (cc != CURLE_OK) {
		strbuf_addf(&why, "cannot reach the WebDAV server at '%s': ", w->cfg->webdav.url);
		add_remote_text(&why, http_error_text(cc, cerr), 300);
	} else if (known) {
		strbuf_addstr(&why, known);
	} else {
		strbuf_addf(&why, "the server answered HTTP %ld", r->status);
	}
	ret = err_set(e, LB_EXIT_STORE, "cannot %s: %s", what, why.buf);
	strbuf_release(&why);
	return ret;
}

/*
 * Run a request: 2xx, `ok1` or `ok2` (0: none) is success; transient failures are tried
 * again up to `attempts` times, unless bytes of a streamed answer went out already.
 */
static int dav_call(struct webdav *w, CURL *h, struct dav_req *r, const char *what, int attempts,
		    long ok1, long ok2, struct err *e)
{
	const struct http_retry p = { .attempts = attempts,
				      .backoff_ms = BACKOFF_MS,
				      .backoff_max_ms = BACKOFF_MAX_MS };
	struct http_req hr;
	long backoff = p.backoff_ms;

	for (int i = 1;; i++) {
		CURLcode cc = perform(w, h, r, &hr);
		if (cc == CURLE_OK && ((r->status >= 200 && r->status < 300) ||
				       (ok1 && r->status == ok1) || (ok2 && r->status == ok2)))
			return 0;
		bool again = http_retryable(&p, cc, r->status) && http_attempts_left(&p, i) &&
			     !signals_pending() && !r->streamed && !r->read;
		if (!again)
			return dav_fail(w, r, what, cc, hr.errbuf, e);
		http_sleep_ms(backoff);
		backoff = http_backoff_next(&p, backoff);
	}
}

/* A path segment, percent-encoded but for the unreserved characters. */
static void add_segment(struct strbuf *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || strchr("-._~", c))
			strbuf_addch(out, (char)c);
		else
			strbuf_addf(out, "%%%02X", c);
	}
}

static char *file_url(struct webdav *w, const char *file)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_addstr(&sb, w->dir_url);
	add_segment(&sb, file);
	return strbuf_detach(&sb, NULL);
}

static int simple_call(struct webdav *w, const char *method, const char *url, const char *what,
		       long ok1, long ok2, long *ret_status, struct err *e)
{
	struct dav_req r = DAV_REQ_INIT(method, url);
	CURL *h = http_handle();
	int rc = h ? dav_call(w, h, &r, what, ATTEMPTS, ok1, ok2, e)
		   : err_set(e, LB_EXIT_INTERNAL, "curl_easy_init failed");

	if (ret_status)
		*ret_status = r.status;
	if (h)
		curl_easy_cleanup(h);
	strbuf_release(&r.resp);
	return rc;
}

/* ---- the upload ---- */

struct webdav_put {
	struct webdav *w;
	char *tmp_name; /* ".FILE.PID-RANDOM.partial", recorded (store_temp_made) */
	char *tmp_url, *final_url;
	char *what;  /* "upload 'URL' to the webdav store" */
	int fd;	     /* the stream's end of the pipe */
	int read_fd; /* the upload thread's end, while it runs */
	struct async up;
	atomic_bool aborting;
	struct err err; /* the upload thread's */
};

/* curl asks for body bytes: the pipe's, until EOF; an abort ends the request unfinished. */
static size_t read_cb(char *buf, size_t size, size_t n, void *ud)
{
	struct webdav_put *wp = ud;
	ssize_t got = read_retry(wp->read_fd, buf, size * n);

	if (got < 0 || (got == 0 && atomic_load(&wp->aborting)))
		return CURL_READFUNC_ABORT;
	return (size_t)got;
}

/* The upload thread: one PUT whose body is the pipe. */
static int upload_main(int fd, void *data)
{
	struct webdav_put *wp = data;
	struct dav_req r = DAV_REQ_INIT("PUT", wp->tmp_url);
	CURL *h = http_handle();
	int rc;

	wp->read_fd = fd;
	r.read = read_cb;
	r.read_ud = wp;
	rc = h ? dav_call(wp->w, h, &r, wp->what, 1, 0, 0, &wp->err)
	       : err_set(&wp->err, LB_EXIT_INTERNAL, "curl_easy_init failed");
	if (h)
		curl_easy_cleanup(h);
	strbuf_release(&r.resp);
	return rc;
}

static void put_free(struct webdav_put *wp)
{
	close_fd(&wp->fd);
	async_finish(&wp->up);
	free(wp->tmp_name);
	free(wp->tmp_url);
	free(wp->final_url);
	free(wp->what);
	free(wp);
}

static int webdav_put_begin(struct store *s, const char *file, struct store_put *p, struct err *e)
{
	struct webdav *w = W(s);
	struct webdav_put *wp = xcalloc(1, sizeof(*wp));
	int fds[2];
	char *what = xasprintf("create '%s' in the webdav store", w->dir_url);
	unsigned char rnd[6];

	/* The name's directory: 405 says it is there already. */
	int rc = simple_call(w, "MKCOL", w->dir_url, what, 405, 0, NULL, e);
	free(what);
	if (rc < 0) {
		free(wp);
		return -1;
	}
	wp->w = w;
	wp->fd = -1;
	wp->up = (struct async)ASYNC_INIT;
	/* Unique, so two runs of one timestamp never write the same temporary. */
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0, sizeof(rnd)); /* then the pid below keeps it apart */
	struct strbuf tmp = STRBUF_INIT;
	strbuf_addf(&tmp, ".%s.%d-", file, (int)getpid());
	for (size_t i = 0; i < sizeof(rnd); i++)
		strbuf_addf(&tmp, "%02x", rnd[i]);
	strbuf_addstr(&tmp, ".partial");
	wp->tmp_url = file_url(w, tmp.buf);
	wp->tmp_name = strbuf_detach(&tmp, NULL);
	wp->final_url = file_url(w, file);
	wp->what = xasprintf("upload '%s' to the webdav store", wp->final_url);
	if (pipe2(fds, O_CLOEXEC) < 0) {
		err_set(e, LB_EXIT_INTERNAL, "cannot create a pipe: %s", strerror(errno));
		put_free(wp);
		return -1;
	}
	fcntl(fds[1], F_SETPIPE_SZ, PIPE_BYTES); /* a larger buffer where allowed */
	wp->fd = fds[1];
	wp->up.proc = upload_main;
	wp->up.data = wp;
	wp->up.fd = fds[0];
	store_temp_made(s, wp->tmp_name); /* before the PUT can make it */
	if (async_start(&wp->up, e) < 0) {
		store_temp_gone(s, wp->tmp_name);
		put_free(wp);
		return -1;
	}
	p->store = s;
	p->file = xstrdup(file);
	p->priv = wp;
	p->bytes = 0;
	return 0;
}

/* The upload thread's error, once it has ended. */
static int upload_error(struct webdav_put *wp, struct err *e)
{
	if (async_finish(&wp->up) < 0 && err_isset(&wp->err))
		return err_copy(e, &wp->err);
	return err_set(e, LB_EXIT_STORE, "cannot %s: the upload ended early", wp->what);
}

static int webdav_put_write(struct store_put *p, const void *buf, size_t len, struct err *e)
{
	struct webdav_put *wp = p->priv;

	/* fail: the server goes away mid-upload. */
	if (FAULT("webdav.write"))
		return err_set(e, LB_EXIT_STORE, "cannot %s: injected failure", wp->what);
	int r = write_all(wp->fd, buf, len);
	if (r == -EPIPE)
		return upload_error(wp, e); /* the upload ended: it says why */
	if (r < 0)
		return err_set(e, LB_EXIT_INTERNAL, "cannot %s: %s", wp->what, strerror(-r));
	p->bytes += len;
	return 0;
}

static const char PROPFIND_BODY[] =
	"<?xml version=\"1.0\" encoding=\"utf-8\"?>"
	"<D:propfind xmlns:D=\"DAV:\"><D:prop><D:resourcetype/><D:getcontentlength/>"
	"</D:prop></D:propfind>";

/*
 * Does the server hold all `bytes` of the temporary? Some setups answer a chunked PUT
 * with success and store nothing (Nextcloud behind Apache with PHP-FPM, or nginx without
 * request buffering, drop such bodies), so the size is asked back before the MOVE. A
 * server that reports no size is taken at its word.
 */
static int check_size(struct webdav_put *wp, uint64_t bytes, struct err *e)
{
	struct dav_req r = DAV_REQ_INIT("PROPFIND", wp->tmp_url);
	struct davxml_list l = { 0 };
	CURL *h = http_handle();
	int rc;

	r.body = PROPFIND_BODY;
	r.depth0 = true;
	rc = h ? dav_call(wp->w, h, &r, wp->what, ATTEMPTS, 0, 0, e)
	       : err_set(e, LB_EXIT_INTERNAL, "curl_easy_init failed");
	if (rc == 0 && davxml_parse_multistatus(r.resp.buf, r.resp.len, &l) == 0 && l.nr &&
	    l.v[0].has_size) {
		/* fail: the server kept nothing of the body */
		uint64_t held = FAULT("webdav.size") ? 0 : l.v[0].size;
		if (held != bytes)
			rc = err_set(e, LB_EXIT_STORE,
				     "cannot %s: the server kept %llu of its %llu bytes (a server "
				     "that drops chunked uploads: see README's WebDAV section)",
				     wp->what, (unsigned long long)held, (unsigned long long)bytes);
	}
	davxml_list_release(&l);
	strbuf_release(&r.resp);
	if (h)
		curl_easy_cleanup(h);
	return rc;
}

static int webdav_put_commit(struct store_put *p, struct err *e)
{
	struct webdav_put *wp = p->priv;
	struct webdav *w = wp->w;

	close_fd(&wp->fd); /* EOF: the PUT ends */
	if (async_finish(&wp->up) < 0)
		return upload_error(wp, e);
	if (check_size(wp, p->bytes, e) < 0)
		return -1;
	if (FAULT("webdav.move"))
		return err_set(e, LB_EXIT_STORE, "cannot %s: injected failure", wp->what);
	/* A MOVE tried again after a lost answer finds its source gone: 404 then is not ours
	 * to judge, so the MOVE is tried once. */
	struct dav_req r = DAV_REQ_INIT("MOVE", wp->tmp_url);
	CURL *h = http_handle();
	r.destination = wp->final_url;
	int rc = h ? dav_call(w, h, &r, wp->what, 1, 0, 0, e)
		   : err_set(e, LB_EXIT_INTERNAL, "curl_easy_init failed");
	if (h)
		curl_easy_cleanup(h);
	strbuf_release(&r.resp);
	if (rc < 0)
		return -1;
	store_temp_gone(p->store, wp->tmp_name);
	put_free(wp);
	free(p->file);
	p->file = NULL;
	p->priv = NULL;
	return 0;
}

static void webdav_put_abort(struct store_put *p)
{
	struct webdav_put *wp = p->priv;
	struct err e = ERR_INIT;

	if (!wp)
		return;
	atomic_store(&wp->aborting, true);
	close_fd(&wp->fd);
	async_finish(&wp->up);
	/* Whatever the server kept of the temporary goes; 404: it kept nothing. */
	char *what = xasprintf("delete the temporary '%s' from the webdav store", wp->tmp_url);
	if (simple_call(wp->w, "DELETE", wp->tmp_url, what, 404, 0, NULL, &e) < 0)
		store_report(p->store, LOG_WARN, "%s (the next run removes it)", e.msg);
	else
		store_temp_gone(p->store, wp->tmp_name);
	free(what);
	put_free(wp);
	free(p->file);
	p->file = NULL;
	p->priv = NULL;
}

/* ---- list, get, exists, remove ---- */

static int webdav_list(struct store *s, struct store_list *out, struct err *e)
{
	struct webdav *w = W(s);
	struct dav_req r = DAV_REQ_INIT("PROPFIND", w->dir_url);
	struct davxml_list l = { 0 };
	struct strbuf name = STRBUF_INIT;
	char *what = xasprintf("list '%s' in the webdav store", w->dir_url);
	CURL *h = http_handle();
	int ret = -1;

	r.body = PROPFIND_BODY;
	r.depth1 = true;
	if (!h) {
		err_set(e, LB_EXIT_INTERNAL, "curl_easy_init failed");
		goto out;
	}
	if (dav_call(w, h, &r, what, ATTEMPTS, 404, 0, e) < 0)
		goto out;
	if (r.status == 404) { /* nothing stored yet */
		ret = 0;
		goto out;
	}
	if (r.status != 207 || r.resp.overflowed ||
	    davxml_parse_multistatus(r.resp.buf, r.resp.len, &l) < 0) {
		err_set(e, LB_EXIT_STORE, "cannot %s: the answer is not a listing (HTTP %ld%s)",
			what, r.status, r.resp.overflowed ? ", too large" : "");
		goto out;
	}
	for (size_t i = 0; i < l.nr; i++) {
		struct backup_id id;
		if (l.v[i].collection || !davxml_href_name(l.v[i].href, &name))
			continue;
		if (naming_parse(s->cfg->name, name.buf, &id))
			store_list_add(out, name.buf, &id, l.v[i].size);
	}
	ret = 0;
out:
	davxml_list_release(&l);
	strbuf_release(&name);
	strbuf_release(&r.resp);
	if (h)
		curl_easy_cleanup(h);
	free(what);
	return ret;
}

struct getter {
	struct store *st;
	char *url, *what;
	struct async a;
};

/* Thread: stream one archive into the pipe; the reader sees EOF at the end or on failure. */
static int getter_main(int fd, void *data)
{
	struct getter *g = data;
	struct err e = ERR_INIT;
	struct dav_req r = DAV_REQ_INIT("GET", g->url);
	CURL *h = http_handle();

	r.out_fd = fd;
	if (!h)
		err_set(&e, LB_EXIT_INTERNAL, "curl_easy_init failed");
	else if (dav_call(W(g->st), h, &r, g->what, ATTEMPTS, 0, 0, &e) < 0 && r.out_errno != EPIPE)
		store_report(g->st, LOG_ERROR, "%s", e.msg);
	if (h)
		curl_easy_cleanup(h);
	strbuf_release(&r.resp);
	return err_isset(&e) ? -1 : 0;
}

static int webdav_get_open(struct store *s, const char *file, int *ret_fd, struct err *e)
{
	struct webdav *w = W(s);
	struct getter *g = xcalloc(1, sizeof(*g));
	long status = 0;
	int fds[2];

	g->st = s;
	g->url = file_url(w, file);
	g->what = xasprintf("download '%s' from the webdav store", g->url);
	g->a = (struct async)ASYNC_INIT;
	/* A clear error before any byte flows. */
	if (simple_call(w, "HEAD", g->url, g->what, 0, 0, &status, e) < 0) {
		if (status == 404)
			e->code = LB_EXIT_NOT_FOUND;
		goto fail;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		err_set(e, LB_EXIT_INTERNAL, "cannot create a pipe: %s", strerror(errno));
		goto fail;
	}
	g->a.proc = getter_main;
	g->a.data = g;
	g->a.fd = fds[1];
	if (async_start(&g->a, e) < 0) {
		close(fds[0]);
		goto fail;
	}
	pthread_mutex_lock(&w->lock);
	w->getters = xrealloc(w->getters, (w->nr_getters + 1) * sizeof(*w->getters));
	w->getters[w->nr_getters++] = g;
	pthread_mutex_unlock(&w->lock);
	*ret_fd = fds[0];
	return 0;
fail:
	free(g->url);
	free(g->what);
	free(g);
	return -1;
}

static bool webdav_exists(struct store *s, const char *file)
{
	struct webdav *w = W(s);
	struct err e = ERR_INIT;
	char *url = file_url(w, file);
	bool found = simple_call(w, "HEAD", url, "check an archive", 0, 0, NULL, &e) == 0;

	free(url);
	return found;
}

static int webdav_remove(struct store *s, const char *file, struct err *e)
{
	struct webdav *w = W(s);

	if (!store_file_ours(s->cfg, file))
		return err_set(e, LB_EXIT_INTERNAL, "refusing to delete '%s': not a backup of '%s'",
			       file, s->cfg->name);
	char *url = file_url(w, file);
	char *what = xasprintf("delete '%s' from the webdav store", url);
	int rc = simple_call(w, "DELETE", url, what, 404, 0, NULL, e);
	free(url);
	free(what);
	return rc;
}

static int webdav_remove_temp(struct store *s, const char *name, struct err *e)
{
	struct webdav *w = W(s);
	long status = 0;

	if (!store_temp_ours(s->cfg, name))
		return err_set(e, LB_EXIT_INTERNAL,
			       "refusing to delete '%s': not a temporary of '%s'", name,
			       s->cfg->name);
	char *url = file_url(w, name);
	char *what = xasprintf("delete '%s' from the webdav store", url);
	int rc = simple_call(w, "DELETE", url, what, 404, 0, &status, e);
	free(url);
	free(what);
	return rc < 0 ? -1 : status != 404;
}

static void webdav_free(struct store *s)
{
	struct webdav *w = W(s);

	/* Readers have closed their ends by now: getters finish (EPIPE) and return. */
	for (size_t i = 0; i < w->nr_getters; i++) {
		struct getter *g = w->getters[i];
		async_finish(&g->a);
		free(g->url);
		free(g->what);
		free(g);
	}
	free(w->getters);
	pthread_mutex_destroy(&w->lock);
	free(w->dir_url);
	free(w);
	free(s);
}

static const struct store_ops webdav_ops = {
	.kind = "webdav",
	.put_begin = webdav_put_begin,
	.put_write = webdav_put_write,
	.put_commit = webdav_put_commit,
	.put_abort = webdav_put_abort,
	.list = webdav_list,
	.get_open = webdav_get_open,
	.exists = webdav_exists,
	.remove = webdav_remove,
	.put_small = store_put_small_streamed,
	.remove_temp = webdav_remove_temp,
	.free = webdav_free,
};

int store_webdav_new(const struct config *cfg, struct store **ret, struct err *e)
{
	struct store *s;
	struct webdav *w;
	struct strbuf dir = STRBUF_INIT;

	if (!cfg->webdav.url)
		return err_set(e, LB_EXIT_CONFIG, "BACKUP_WEBDAV_URL is not set");
	if (http_init(e) < 0)
		return -1;
	s = xcalloc(1, sizeof(*s));
	w = xcalloc(1, sizeof(*w));
	w->cfg = cfg;
	pthread_mutex_init(&w->lock, NULL);
	strbuf_addf(&dir, "%s/", cfg->webdav.url);
	add_segment(&dir, cfg->name);
	strbuf_addch(&dir, '/');
	w->dir_url = strbuf_detach(&dir, NULL);
	s->ops = &webdav_ops;
	s->cfg = cfg;
	s->priv = w;
	*ret = s;
	return 0;
}

/* ---- its variables: rows of the configuration table (config-vars.h) ---- */

static int var_webdav_url(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return 0;
	int r = parse_url_check(value);
	const char *auth = strstr(value, "://");
	size_t alen = auth ? strcspn(auth + 3, "/?#") : 0;
	if (r == -ENOENT)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_WEBDAV_URL '%s' is invalid: expected "
			       "https://host[:port]/path (or http://)",
			       SHOW(value));
	if (r < 0)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_WEBDAV_URL '%s' has an invalid port: expected 1 to 65535",
			       SHOW(value));
	/* Never credentials in the URL: they would show wherever the URL does. */
	if (memchr(auth + 3, '@', alen))
		return err_set(
			e, LB_EXIT_CONFIG,
			"BACKUP_WEBDAV_URL must not hold credentials: set BACKUP_WEBDAV_USER "
			"and BACKUP_WEBDAV_PASSWORD instead");
	if (strpbrk(value, "?# \t\r\n"))
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_WEBDAV_URL '%s' is invalid: no query, fragment or spaces",
			       SHOW(value));
	cfg->webdav.url = xstrdup(value);
	size_t n = strlen(cfg->webdav.url);
	while (n && cfg->webdav.url[n - 1] == '/')
		cfg->webdav.url[--n] = '\0';
	return 0;
}

static int var_webdav_password(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (value && !cfg->webdav.user)
		return err_set(e, LB_EXIT_CONFIG, "%s is set but BACKUP_WEBDAV_USER is not",
			       origin);
	if (!value && cfg->webdav.user)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_WEBDAV_USER is set but BACKUP_WEBDAV_PASSWORD is not (or "
			       "BACKUP_WEBDAV_PASSWORD_FILE)");
	if (value && memchr(value, '\0', len))
		return err_set(e, LB_EXIT_CONFIG, "%s holds a NUL byte", origin);
	if (value)
		strbuf_add(&cfg->webdav.password, value, len);
	cfg->webdav.password_origin = origin;
	return 0;
}

static int var_webdav_ca_file(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return 0;
	if (access(value, R_OK) < 0)
		return err_set(e, LB_EXIT_CONFIG, "BACKUP_WEBDAV_CA_FILE '%s': %s", SHOW(value),
			       strerror(errno));
	cfg->webdav.ca_file = xstrdup(value);
	return 0;
}

static void describe_webdav(const struct config *cfg, struct strbuf *out)
{
	const struct config_webdav *c = &cfg->webdav;

	if (!c->url)
		return;
	strbuf_addf(out, "BACKUP_WEBDAV_URL    %s\n", c->url);
	strbuf_addf(out, "  archives in        %s/%s/\n", c->url, cfg->name);
	if (c->user)
		strbuf_addf(out, "BACKUP_WEBDAV_USER   %s (password read from %s, redacted)\n",
			    c->user, c->password_origin);
	else
		strbuf_addstr(out, "BACKUP_WEBDAV_USER   (unset: no authentication)\n");
	if (c->ca_file)
		strbuf_addf(out, "BACKUP_WEBDAV_CA_FILE %s\n", c->ca_file);
	strbuf_addf(out, "BACKUP_WEBDAV_TIMEOUT %us without progress per request\n", c->timeout);
}

static const struct config_var webdav_rows[] = {
	{ "BACKUP_WEBDAV_URL", 0, var_webdav_url, 0, 0, 0, NULL,
	  "A WebDAV directory to store archives in, at `URL/BACKUP_NAME/`: "
	  "`https://host[:port]/path` (or `http://`), e.g. Nextcloud's "
	  "`https://cloud.example.com/remote.php/dav/files/USER/backups`. The directory must "
	  "exist; `BACKUP_NAME/` is created in it. No credentials in the URL. See "
	  "[WebDAV](#webdav).",
	  describe_webdav },
	{ "BACKUP_WEBDAV_USER", VAR_GROUP, config_var_string, OFF(webdav.user), 0, 0,
	  "no authentication", "User name for HTTP basic authentication.", NULL },
	{ "BACKUP_WEBDAV_PASSWORD", SECRET | VAR_GROUP, var_webdav_password, 0, 0, 0, NULL,
	  "Password (or a Nextcloud app password); required with `BACKUP_WEBDAV_USER`.", NULL },
	{ "BACKUP_WEBDAV_CA_FILE", VAR_GROUP, var_webdav_ca_file, 0, 0, 0, NULL,
	  "PEM bundle of CAs to trust for the server (a private CA or a self-signed "
	  "certificate). HTTPS is always verified.",
	  NULL },
	{ "BACKUP_WEBDAV_TIMEOUT", VAR_GROUP, config_var_duration, OFF(webdav.timeout), 1, 0, "120",
	  "How long the WebDAV server may make no progress before a request gives up: seconds, "
	  "or `5m`; default `120`. An upload that keeps moving is never cut short.",
	  NULL },
};
const struct config_var_group webdav_vars = CONFIG_VAR_GROUP_IF(webdav_rows, "BACKUP_WEBDAV_URL");

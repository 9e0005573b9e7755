/* The S3 store's multipart upload: parts filled in slots, sent on threads, completed or aborted. */
#include "common.h"

#include <pthread.h>

#include "fault.h"
#include "stores/s3-internal.h"
#include "stores/s3.h"
#include "stores/s3xml.h"
#include "stores/store.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"

#define SLOTS 3 /* part buffers: one filling, up to two uploading */

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
	if (s3_call(up->s, sl->h, &r, up->what, S3_ATTEMPTS, s3_budget_ms(up->s), 0, &sl->err) ==
	    0) {
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

int s3_put_begin(struct store *st, const char *file, struct store_put *p, struct err *e)
{
	struct s3 *s = st->priv;
	struct s3_put *up = xcalloc(1, sizeof(*up));
	struct strbuf id = STRBUF_INIT;
	const struct sigv4_kv q[] = { { "uploads", "" } };
	struct s3_req r = S3_REQ_INIT("POST");

	up->s = s;
	up->key = s3_object_key(s, file);
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
	/* The upload's key, recorded before it exists: what the next run aborts if we die. */
	store_temp_made(st, file);
	if (s3_call(s, up->h, &r, up->what, S3_ATTEMPTS, s3_budget_ms(s), 0, e) < 0)
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
	/* No upload id: an upload made all the same (its answer lost) is the lifecycle's. */
	store_temp_gone(st, file);
	strbuf_release(&r.resp);
	strbuf_release(&id);
	put_free(up);
	return -1;
}

int s3_put_write(struct store_put *p, const void *buf, size_t len, struct err *e)
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

int s3_put_commit(struct store_put *p, struct err *e)
{
	struct s3_put *up = p->priv;
	struct strbuf xml = STRBUF_INIT, code = STRBUF_INIT, msg = STRBUF_INIT;
	int ret = -1;

	if ((up->slots[up->cur].len || up->next_part == 1) && flush_slot(up, e) < 0)
		goto out;
	for (unsigned i = 0; i < SLOTS; i++)
		if (slot_join(up, &up->slots[i], e) < 0)
			goto out;
	/* kill: every part is uploaded, the upload not completed; fail: Complete refused */
	if (FAULT("s3.complete")) {
		err_set(e, LB_EXIT_STORE, "cannot %s: injected failure", up->what);
		goto out;
	}
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
	if (s3_call(up->s, up->h, &r, up->what, S3_ATTEMPTS, s3_budget_ms(up->s), 0, e) < 0) {
		strbuf_release(&r.resp);
		goto out;
	}
	/* CompleteMultipartUpload may fail after a 200: the error is in the body. */
	if (s3xml_parse_error(r.resp.buf, r.resp.len, &code, &msg)) {
		struct strbuf why = STRBUF_INIT;
		s3_add_remote_text(&why, code.buf, 64);
		strbuf_addstr(&why, ": ");
		s3_add_remote_text(&why, msg.buf, 300);
		err_set(e, LB_EXIT_STORE, "cannot %s: %s", up->what, why.buf);
		strbuf_release(&why);
		strbuf_release(&r.resp);
		goto out;
	}
	strbuf_release(&r.resp);
	store_temp_gone(p->store, p->file);
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
void s3_put_abort(struct store_put *p)
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
		if (s3_call(up->s, up->h, &r, what, 0, s3_budget_ms(up->s) / 4, 404, &e) < 0) {
			store_report(p->store, LOG_WARN,
				     "%s (upload id '%s' is left for the next run to abort)", e.msg,
				     up->upload_id);
		} else {
			store_temp_gone(p->store, p->file);
			log_debug("s3: aborted upload of '%s'", up->key);
		}
		free(what);
		strbuf_release(&r.resp);
	}
	put_free(up);
	free(p->file);
	p->file = NULL;
	p->priv = NULL;
}

/* Abort one multipart upload; 404 (gone already) is success. */
static int abort_upload(struct s3 *s, CURL *h, const char *key, const char *upload_id,
			struct err *e)
{
	const struct sigv4_kv q[] = { { "uploadId", upload_id } };
	struct s3_req r = S3_REQ_INIT("DELETE");
	char *what = xasprintf("abort the upload '%s' of 's3://%s/%s'", upload_id,
			       s->cfg->s3.bucket, key);

	r.key = key;
	r.query = q;
	r.nr_query = 1;
	int rc = s3_call(s, h, &r, what, S3_ATTEMPTS, s3_budget_ms(s), 404, e);
	strbuf_release(&r.resp);
	free(what);
	return rc;
}

#define UPLOAD_PAGES_MAX 100 /* uploads of one key: a few at most */

int s3_remove_temp(struct store *st, const char *file, struct err *e)
{
	struct s3 *s = st->priv;
	char *key_marker = NULL, *id_marker = NULL;
	int aborted = 0, ret = -1;

	/* Only ever an unfinished upload of an archive of ours; the object itself stays. */
	if (!store_file_ours(s->cfg, file))
		return err_set(e, LB_EXIT_INTERNAL,
			       "refusing to abort uploads of '%s': not a backup of '%s'", file,
			       s->cfg->name);
	char *key = s3_object_key(s, file);
	char *what =
		xasprintf("list the unfinished uploads of 's3://%s/%s'", s->cfg->s3.bucket, key);
	CURL *h = http_handle();
	if (!h) {
		err_set(e, LB_EXIT_INTERNAL, "curl_easy_init failed");
		goto out;
	}
	for (int page = 0;; page++) {
		struct sigv4_kv q[4] = { { "prefix", key }, { "uploads", "" } };
		size_t nq = 2;
		struct s3xml_page pg = { 0 };
		struct s3_req r = S3_REQ_INIT("GET");

		if (key_marker)
			q[nq++] = (struct sigv4_kv){ "key-marker", key_marker };
		if (id_marker)
			q[nq++] = (struct sigv4_kv){ "upload-id-marker", id_marker };
		r.query = q;
		r.nr_query = nq;
		if (page >= UPLOAD_PAGES_MAX) {
			err_set(e, LB_EXIT_STORE, "cannot %s: more than %d pages", what,
				UPLOAD_PAGES_MAX);
			goto out;
		}
		if (s3_call(s, h, &r, what, S3_ATTEMPTS, s3_budget_ms(s), 0, e) < 0) {
			strbuf_release(&r.resp);
			goto out;
		}
		if (r.resp.overflowed || s3xml_parse_uploads(r.resp.buf, r.resp.len, &pg) < 0) {
			err_set(e, LB_EXIT_STORE, "cannot %s: the answer is not a listing", what);
			strbuf_release(&r.resp);
			goto out;
		}
		strbuf_release(&r.resp);
		for (size_t i = 0; i < pg.nr; i++) {
			/* The prefix also matches longer keys: only this very key's uploads. */
			if (strcmp(pg.v[i].key, key))
				continue;
			if (abort_upload(s, h, key, pg.upload_ids[i], e) < 0) {
				s3xml_page_release(&pg);
				goto out;
			}
			aborted++;
		}
		free(key_marker);
		free(id_marker);
		key_marker = pg.next_key_marker ? xstrdup(pg.next_key_marker) : NULL;
		id_marker = pg.next_upload_id_marker ? xstrdup(pg.next_upload_id_marker) : NULL;
		bool more = pg.truncated && (key_marker || id_marker);
		s3xml_page_release(&pg);
		if (!more)
			break;
	}
	ret = aborted > 0;
out:
	if (h)
		curl_easy_cleanup(h);
	free(key_marker);
	free(id_marker);
	free(key);
	free(what);
	return ret;
}

/*
 * The SFTP store's upload: the stream goes through a bounded buffer to a thread that
 * uploads it to a hidden temporary name and renames it into place (curl's POSTQUOTE) once
 * the stream ends; a failure or an abort removes the temporary.
 */
#include "common.h"

#include <pthread.h>
#include <time.h>

#include "fault.h"
#include "stores/sftp-internal.h"
#include "stores/sftp.h"
#include "stores/store.h"
#include "strbuf.h"
#include "xalloc.h"

#define RING_SIZE (4u << 20) /* bytes between the stream and the upload */
/* A temporary no upload has touched for this long is an interrupted run's. */
#define STALE_S (6 * 3600)

struct sftp_put {
	struct sftp *s;
	CURL *h; /* the put's connection: begin's requests, then the upload, then clean-up */
	char *tmp, *final; /* decoded paths */
	char *what;	   /* "upload 'sftp://user@host:port/dir/file'" */
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned char *ring;
	size_t head, len; /* the bytes not yet handed to curl: ring[head..head+len) wrapped */
	bool eof;	  /* commit: the stream is complete */
	bool abort;	  /* abort: stop the upload, do not rename */
	bool done;	  /* the upload thread has finished; err says how */
	uint64_t sent;	  /* bytes handed to curl */
	struct err err;
};

/* curl's read callback: the next bytes of the stream, 0 at its end, or abort. */
static size_t feed(char *out, size_t size, size_t n, void *ud)
{
	struct sftp_put *up = ud;
	size_t want = size * n, got = 0;

	pthread_mutex_lock(&up->mu);
	while (!up->len && !up->eof && !up->abort)
		pthread_cond_wait(&up->cv, &up->mu);
	if (up->abort) {
		pthread_mutex_unlock(&up->mu);
		return CURL_READFUNC_ABORT;
	}
	if (!up->len && up->eof) {
		pthread_mutex_unlock(&up->mu);
		/* kill: the whole archive is in the temporary, not yet renamed ("fail": a cut) */
		return FAULT("sftp.rename") ? CURL_READFUNC_ABORT : 0;
	}
	while (got < want && up->len) {
		size_t run = RING_SIZE - up->head < up->len ? RING_SIZE - up->head : up->len;
		size_t k = run < want - got ? run : want - got;
		memcpy(out + got, up->ring + up->head, k);
		got += k;
		up->head = (up->head + k) % RING_SIZE;
		up->len -= k;
	}
	up->sent += got;
	pthread_cond_broadcast(&up->cv);
	pthread_mutex_unlock(&up->mu);
	/* Test builds: a test may stop the process here, mid-upload (LIFEBOAT_FAULT=...:stop). */
	if (got && FAULT("sftp.upload"))
		return CURL_READFUNC_ABORT; /* "fail": the connection broke */
	return got;
}

/* While curl waits on the server (a full socket), an abort must still stop it. */
static int watch(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		 curl_off_t ulnow)
{
	struct sftp_put *up = ud;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	pthread_mutex_lock(&up->mu);
	bool stop = up->abort;
	pthread_mutex_unlock(&up->mu);
	return stop;
}

static void *upload_main(void *arg)
{
	struct sftp_put *up = arg;
	struct sftp_req r = SFTP_REQ_INIT("PUT");
	struct strbuf line = STRBUF_INIT;

	strbuf_addstr(&line, "rename ");
	sftp_quote_path(&line, up->tmp);
	strbuf_addch(&line, ' ');
	sftp_quote_path(&line, up->final);
	r.path = up->tmp;
	r.read = feed;
	r.read_ud = up;
	r.progress = watch;
	r.progress_ud = up;
	r.postquote = curl_slist_append(NULL, line.buf);
	struct err e = ERR_INIT;
	int rc = sftp_call(up->s, up->h, &r, up->what, 1, &e);
	if (rc < 0 && r.cc == CURLE_QUOTE_ERROR) {
		err_clear(&e);
		err_set(&e, LB_EXIT_STORE, "cannot rename '%s%s' to '%s': %s", up->s->shown,
			up->tmp, up->final, http_error_text(r.cc, r.errbuf));
	} else if (rc < 0 &&
		   (r.cc == CURLE_SSH || r.cc == CURLE_SEND_ERROR || r.cc == CURLE_RECV_ERROR ||
		    r.cc == CURLE_UPLOAD_FAILED || r.cc == CURLE_ABORTED_BY_CALLBACK)) {
		/* libssh2 does not say which: a write the server refused looks like a cut. */
		pthread_mutex_lock(&up->mu);
		uint64_t sent = up->sent;
		pthread_mutex_unlock(&up->mu);
		err_clear(&e);
		err_set(&e, LB_EXIT_STORE,
			"cannot %s: the transfer broke after %llu bytes (%s): the connection was "
			"lost, or the server refused to write more (is its disk or the account's "
			"quota full?)",
			up->what, (unsigned long long)sent, http_error_text(r.cc, r.errbuf));
	}
	curl_slist_free_all(r.postquote);
	sftp_req_release(&r);
	strbuf_release(&line);
	pthread_mutex_lock(&up->mu);
	if (rc < 0)
		err_copy(&up->err, &e);
	up->done = true;
	pthread_cond_broadcast(&up->cv);
	pthread_mutex_unlock(&up->mu);
	return NULL;
}

static void put_free(struct sftp_put *up)
{
	if (up->h)
		curl_easy_cleanup(up->h);
	pthread_mutex_destroy(&up->mu);
	pthread_cond_destroy(&up->cv);
	free(up->ring);
	free(up->tmp);
	free(up->final);
	free(up->what);
	free(up);
}

/* The temporary's name in the directory, as recorded (store_temp_made). */
static const char *tmp_name(const struct sftp_put *up)
{
	return strrchr(up->tmp, '/') + 1;
}

/* Remove the temporary (it may never have been made); a failure is reported, not returned. */
static void remove_tmp(struct store *st, struct sftp_put *up)
{
	struct err e = ERR_INIT;
	long t = up->s->cfg->sftp.timeout / 4;
	char *what = xasprintf("remove the partial upload '%s%s'", up->s->shown, up->tmp);

	/* "*": a missing file is fine. A quarter of the timeout: the run is failing anyway. */
	if (sftp_command(up->s, up->h, "*rm", up->tmp, NULL, what, t > 5 ? t : 5, &e) < 0)
		store_report(st, LOG_WARN, "%s (it stays, hidden; the next run removes it)", e.msg);
	else
		store_temp_gone(st, tmp_name(up));
	free(what);
}

/*
 * From the listing: is `file` there already (STORE_TAKEN), and which temporaries did
 * interrupted runs leave? An upload in progress writes all the time, so one untouched
 * for STALE_S is no run's: removed.
 */
static int scan(struct store *st, struct sftp_put *up, const struct strbuf *listing,
		const char *file)
{
	struct sftp *s = up->s;
	struct strbuf name = STRBUF_INIT;
	bool taken = false;

	for (size_t i = 0; i < listing->len;) {
		const char *line = listing->buf + i;
		size_t n = strcspn(line, "\n");
		uint64_t size;
		i += n + (i + n < listing->len);
		if (!sftp_listing_line(line, n, &name, &size))
			continue;
		if (!strcmp(name.buf, file)) {
			taken = true;
			continue;
		}
		if (!store_temp_ours(s->cfg, name.buf))
			continue;
		struct sftp_req r = SFTP_REQ_INIT("HEAD");
		struct err e = ERR_INIT;
		char *path = xasprintf("%s/%s", s->dir, name.buf);
		r.path = path;
		if (sftp_call(s, up->h, &r, "check a partial upload", SFTP_ATTEMPTS, &e) == 0 &&
		    r.filetime >= 0 && time(NULL) - r.filetime > STALE_S) {
			char *what = xasprintf("remove '%s%s'", s->shown, path);
			if (sftp_command(s, up->h, "rm", path, NULL, what, 0, &e) == 0)
				store_report(st, LOG_INFO,
					     "removed '%s%s' left by an interrupted run", s->shown,
					     path);
			free(what);
		}
		sftp_req_release(&r);
		free(path);
	}
	strbuf_release(&name);
	return taken ? STORE_TAKEN : 0;
}

int sftp_put_begin(struct store *st, const char *file, struct store_put *p, struct err *e)
{
	struct sftp *s = st->priv;
	struct sftp_put *up = xcalloc(1, sizeof(*up));
	struct strbuf listing = STRBUF_INIT;
	size_t stem = strlen(s->cfg->name) + 1 + TIMESTAMP_LEN; /* NAME-TIMESTAMP */
	unsigned char rnd[4];
	bool missing;
	int ret = -1;

	up->s = s;
	pthread_mutex_init(&up->mu, NULL);
	pthread_cond_init(&up->cv, NULL);
	if (getentropy(rnd, sizeof(rnd)) < 0)
		memset(rnd, 0, sizeof(rnd));
	up->tmp = xasprintf("%s/.%.*s.%02x%02x%02x%02x.partial", s->dir, (int)stem, file, rnd[0],
			    rnd[1], rnd[2], rnd[3]);
	up->final = xasprintf("%s/%s", s->dir, file);
	up->what = xasprintf("upload '%s%s'", s->shown, up->final);
	up->h = http_handle();
	if (!up->h) {
		err_set(e, LB_EXIT_INTERNAL, "curl_easy_init failed");
		goto out;
	}
	/* Connect, log in, check the directory: a failure here is clear and early. */
	if (sftp_list_names(s, up->h, up->what, &listing, &missing, e) < 0)
		goto out;
	if (missing) {
		char *what = xasprintf("create '%s%s/'", s->shown, s->dir);
		int r = sftp_command(s, up->h, "mkdir", s->dir, NULL, what, 0, e);
		free(what);
		if (r < 0)
			goto out;
	} else if (scan(st, up, &listing, file) == STORE_TAKEN) {
		ret = STORE_TAKEN;
		goto out;
	}
	up->ring = xmalloc(RING_SIZE);
	store_temp_made(st, tmp_name(up)); /* before the upload can make it */
	if (pthread_create(&up->thread, NULL, upload_main, up) != 0) {
		store_temp_gone(st, tmp_name(up));
		err_set(e, LB_EXIT_INTERNAL, "cannot %s: cannot start a thread", up->what);
		goto out;
	}
	up->started = true;
	p->store = st;
	p->file = xstrdup(file);
	p->priv = up;
	p->bytes = 0;
	up = NULL;
	ret = 0;
out:
	strbuf_release(&listing);
	if (up)
		put_free(up);
	return ret;
}

int sftp_put_write(struct store_put *p, const void *buf, size_t len, struct err *e)
{
	struct sftp_put *up = p->priv;
	const unsigned char *src = buf;
	int ret = 0;

	pthread_mutex_lock(&up->mu);
	while (len) {
		while (up->len == RING_SIZE && !up->done)
			pthread_cond_wait(&up->cv, &up->mu);
		if (up->done) {
			/* The upload ended before the stream did: it failed. */
			if (err_isset(&up->err))
				ret = err_copy(e, &up->err);
			else
				ret = err_set(e, LB_EXIT_STORE, "cannot %s: the upload ended early",
					      up->what);
			break;
		}
		size_t tail = (up->head + up->len) % RING_SIZE;
		size_t room = RING_SIZE - up->len;
		size_t run = RING_SIZE - tail < room ? RING_SIZE - tail : room;
		size_t k = run < len ? run : len;
		memcpy(up->ring + tail, src, k);
		up->len += k;
		src += k;
		len -= k;
		p->bytes += k;
		pthread_cond_broadcast(&up->cv);
	}
	pthread_mutex_unlock(&up->mu);
	return ret;
}

/* Tell the upload thread how the stream ends, and wait for it. */
static void finish(struct sftp_put *up, bool abort)
{
	pthread_mutex_lock(&up->mu);
	if (abort)
		up->abort = true;
	else
		up->eof = true;
	pthread_cond_broadcast(&up->cv);
	pthread_mutex_unlock(&up->mu);
	if (up->started)
		pthread_join(up->thread, NULL);
	up->started = false;
}

int sftp_put_commit(struct store_put *p, struct err *e)
{
	struct sftp_put *up = p->priv;

	finish(up, false);
	if (err_isset(&up->err)) {
		/* Left for put_abort: it removes the temporary. */
		return err_copy(e, &up->err);
	}
	store_temp_gone(p->store, tmp_name(up));
	put_free(up);
	free(p->file);
	p->file = NULL;
	p->priv = NULL;
	return 0;
}

void sftp_put_abort(struct store_put *p)
{
	struct sftp_put *up = p->priv;

	if (!up)
		return;
	finish(up, true);
	remove_tmp(p->store, up);
	put_free(up);
	free(p->file);
	p->file = NULL;
	p->priv = NULL;
}

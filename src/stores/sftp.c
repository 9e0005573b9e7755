/* The SFTP store: libcurl's SFTP (libssh2) with verified host keys; list, a streaming get. */
#include "common.h"

#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>

#include "fs.h"
#include "http.h"
#include "signals.h"
#include "stores/sftp-internal.h"
#include "stores/sftp.h"
#include "stores/store.h"
#include "strbuf.h"
#include "xalloc.h"

#define BODY_MAX   (8u << 20) /* a listing or an error we keep: 100,000 archives */
#define BACKOFF_MS 500
#define UPLOAD_BUF (2L << 20) /* curl's upload buffer: libssh2 pipelines its writes */

static struct sftp *S(struct store *st)
{
	return st->priv;
}

char *sftp_url(const struct sftp *s, const char *path)
{
	struct strbuf u = STRBUF_INIT;

	strbuf_addstr(&u, s->origin);
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if (isalnum(*p) || strchr("/-._~", *p))
			strbuf_addch(&u, (char)*p);
		else
			strbuf_addf(&u, "%%%02X", *p);
	}
	return strbuf_detach(&u, NULL);
}

void sftp_req_release(struct sftp_req *r)
{
	strbuf_release(&r->resp);
}

/* ---- the host key: always verified ---- */

static void note_key(struct sftp_req *r, const char *key, size_t len)
{
	char type[64], fp[SFTP_FP_MAX];

	sftp_key_type(key, len, type, sizeof(type));
	sftp_fingerprint(key, len, fp);
	snprintf(r->key_seen, sizeof(r->key_seen), "%s %s", type, fp);
}

/* BACKUP_SFTP_HOST_KEY: the key the server shows must have the pinned fingerprint. */
static int pinned_key(void *ud, int keytype, const char *key, size_t len)
{
	struct sftp_req *r = ud;
	char fp[SFTP_FP_MAX];

	(void)keytype;
	sftp_fingerprint(key, len, fp);
	if (!strcmp(fp, r->s->cfg->sftp.host_key))
		return CURLKHMATCH_OK;
	note_key(r, key, len);
	return CURLKHMATCH_MISMATCH;
}

/* BACKUP_SFTP_KNOWN_HOSTS: only a key the file holds for this host; never added to it. */
static int known_key(CURL *h, const struct curl_khkey *known, const struct curl_khkey *found,
		     enum curl_khmatch match, void *ud)
{
	struct sftp_req *r = ud;

	(void)h;
	(void)known;
	if (match == CURLKHMATCH_OK)
		return CURLKHSTAT_FINE;
	r->key_match = (int)match;
	if (found->len)
		note_key(r, found->key, found->len);
	return CURLKHSTAT_REJECT;
}

static void setup(CURL *h, void *ud)
{
	struct sftp_req *r = ud;
	const struct config_sftp *c = &r->s->cfg->sftp;
	long auth = 0;

	curl_easy_setopt(h, CURLOPT_USERNAME, c->user);
	if (c->password.len) {
		curl_easy_setopt(h, CURLOPT_PASSWORD, c->password.buf);
		auth |= CURLSSH_AUTH_PASSWORD | CURLSSH_AUTH_KEYBOARD;
	}
	if (c->identity_file) {
		curl_easy_setopt(h, CURLOPT_SSH_PRIVATE_KEYFILE, c->identity_file);
		/* Empty: libssh2 derives the public key from the private one. */
		curl_easy_setopt(h, CURLOPT_SSH_PUBLIC_KEYFILE, "");
		if (c->passphrase.len)
			curl_easy_setopt(h, CURLOPT_KEYPASSWD, c->passphrase.buf);
		auth |= CURLSSH_AUTH_PUBLICKEY;
	}
	curl_easy_setopt(h, CURLOPT_SSH_AUTH_TYPES, auth);
	if (c->known_hosts) {
		curl_easy_setopt(h, CURLOPT_SSH_KNOWNHOSTS, c->known_hosts);
		curl_easy_setopt(h, CURLOPT_SSH_KEYFUNCTION, known_key);
		curl_easy_setopt(h, CURLOPT_SSH_KEYDATA, r);
	} else {
		curl_easy_setopt(h, CURLOPT_SSH_HOSTKEYFUNCTION, pinned_key);
		curl_easy_setopt(h, CURLOPT_SSH_HOSTKEYDATA, r);
	}
	if (r->quote)
		curl_easy_setopt(h, CURLOPT_QUOTE, r->quote);
	if (r->postquote)
		curl_easy_setopt(h, CURLOPT_POSTQUOTE, r->postquote);
	if (!strcmp(r->method, "HEAD"))
		curl_easy_setopt(h, CURLOPT_FILETIME, 1L);
	if (!strcmp(r->method, "PUT")) {
		curl_easy_setopt(h, CURLOPT_UPLOAD_BUFFERSIZE, UPLOAD_BUF);
		curl_easy_setopt(h, CURLOPT_NEW_FILE_PERMS, 0600L);
	}
	curl_easy_setopt(h, CURLOPT_NEW_DIRECTORY_PERMS, 0700L);
}

/* ---- errors: one line naming the URL, never a secret ---- */

static int req_fail(struct sftp *s, const struct sftp_req *r, const char *what, long timeout_s,
		    struct err *e)
{
	const struct config_sftp *c = &s->cfg->sftp;
	const char *curl_says = http_error_text(r->cc, r->errbuf);
	struct strbuf why = STRBUF_INIT;
	int ret;

	switch (r->cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		strbuf_addf(&why, "cannot resolve the host '%s'", c->host);
		break;
	case CURLE_COULDNT_CONNECT:
		strbuf_addf(&why, "cannot connect to %s:%u: %s", c->host, c->port, curl_says);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		strbuf_addf(&why, "%s:%u made no progress for %ld s (BACKUP_SFTP_TIMEOUT)", c->host,
			    c->port, timeout_s);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		if (c->known_hosts && r->key_match == CURLKHMATCH_MISMATCH)
			strbuf_addf(&why,
				    "the server's host key %s differs from the one "
				    "BACKUP_SFTP_KNOWN_HOSTS '%s' holds for %s:%u: refused (if "
				    "the key really changed, replace it there)",
				    r->key_seen, c->known_hosts, c->host, c->port);
		else if (c->known_hosts)
			strbuf_addf(&why,
				    "the server's host key %s is not in BACKUP_SFTP_KNOWN_HOSTS "
				    "'%s' for %s:%u: refused (check it, then add it there or set "
				    "BACKUP_SFTP_HOST_KEY to that fingerprint)",
				    r->key_seen[0] ? r->key_seen : "(unknown)", c->known_hosts,
				    c->host, c->port);
		else
			strbuf_addf(&why,
				    "the server's host key %s is not BACKUP_SFTP_HOST_KEY %s: "
				    "refused (if the key really changed, pin the new one)",
				    r->key_seen[0] ? r->key_seen : "(unknown)", c->host_key);
		break;
	case CURLE_LOGIN_DENIED:
		strbuf_addf(&why, "the server refused the login of '%s' (check %s%s%s%s%s)",
			    c->user, c->password.len ? c->password_origin : "",
			    c->password.len && c->identity_file ? " and " : "",
			    c->identity_file ? "BACKUP_SFTP_IDENTITY_FILE" : "",
			    c->passphrase.len ? " and " : "",
			    c->passphrase.len ? c->passphrase_origin : "");
		break;
	case CURLE_REMOTE_FILE_NOT_FOUND:
		strbuf_addf(&why, "no such file or directory on the server (%s)", curl_says);
		break;
	case CURLE_REMOTE_ACCESS_DENIED:
		strbuf_addf(&why, "permission denied (%s)", curl_says);
		break;
	case CURLE_REMOTE_DISK_FULL:
		strbuf_addstr(&why, "the server's disk is full");
		break;
	case CURLE_SSH:
		strbuf_addf(&why, "SSH error: %s", curl_says);
		break;
	default:
		strbuf_addstr(&why, curl_says);
		break;
	}
	ret = err_set(e, LB_EXIT_STORE, "cannot %s: %s", what, why.buf);
	strbuf_release(&why);
	return ret;
}

static bool transient(CURLcode cc)
{
	const struct http_retry p = { 0 };

	/* A server at its MaxStartups drops new connections during the handshake. */
	return http_retryable(&p, cc, 0) && cc != CURLE_OPERATION_TIMEDOUT;
}

static size_t keep_body(char *buf, size_t size, size_t n, void *ud)
{
	struct sftp_req *r = ud;

	return http_collect(&r->resp, BODY_MAX, true, buf, size * n);
}

int sftp_call(struct sftp *s, CURL *h, struct sftp_req *r, const char *what, int attempts,
	      struct err *e)
{
	const struct http_retry p = { .attempts = attempts,
				      .backoff_ms = BACKOFF_MS,
				      .backoff_max_ms = 4 * BACKOFF_MS };
	long timeout_s = r->timeout_s ? r->timeout_s : (long)s->cfg->sftp.timeout;
	long backoff = p.backoff_ms;
	char *url = sftp_url(s, r->path);

	r->s = s;
	for (int i = 1;; i++) {
		struct http_req hr = { 0 };
		hr.method = r->method;
		hr.url = url;
		hr.protocols = "sftp";
		hr.connect_timeout_s = timeout_s;
		hr.stall_s = timeout_s;
		hr.read = r->read;
		hr.read_ud = r->read_ud;
		hr.write = r->write ? r->write : keep_body;
		hr.write_ud = r->write ? r->write_ud : r;
		hr.progress = r->progress;
		hr.progress_ud = r->progress_ud;
		hr.setup = setup;
		hr.setup_ud = r;
		r->key_match = -1;
		r->key_seen[0] = '\0';
		strbuf_reset(&r->resp);
		long status;
		r->cc = http_perform(h, &hr, &status);
		memcpy(r->errbuf, hr.errbuf, sizeof(r->errbuf));
		if (r->cc == CURLE_OK) {
			curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &r->size);
			curl_easy_getinfo(h, CURLINFO_FILETIME, &r->filetime);
			free(url);
			return 0;
		}
		if (!transient(r->cc) || !http_attempts_left(&p, i) || signals_pending())
			break;
		http_sleep_ms(backoff);
		backoff = http_backoff_next(&p, backoff);
	}
	free(url);
	return req_fail(s, r, what, timeout_s, e);
}

int sftp_command(struct sftp *s, CURL *h, const char *cmd, const char *a, const char *b,
		 const char *what, long timeout_s, struct err *e)
{
	struct strbuf line = STRBUF_INIT;
	struct sftp_req r = SFTP_REQ_INIT("HEAD");
	int ret;

	strbuf_addf(&line, "%s ", cmd);
	sftp_quote_path(&line, a);
	if (b) {
		strbuf_addch(&line, ' ');
		sftp_quote_path(&line, b);
	}
	r.path = "/";
	r.quote = curl_slist_append(NULL, line.buf);
	r.timeout_s = timeout_s;
	ret = sftp_call(s, h, &r, what, SFTP_ATTEMPTS, e);
	curl_slist_free_all(r.quote);
	sftp_req_release(&r);
	strbuf_release(&line);
	return ret;
}

/* ---- list, get, exists, remove ---- */

/* The size of one file, when the listing did not say it. */
static int stat_size(struct sftp *s, CURL *h, const char *path, uint64_t *size, struct err *e)
{
	struct sftp_req r = SFTP_REQ_INIT("HEAD");
	char *what = xasprintf("read the size of '%s%s'", s->shown, path);
	int ret;

	r.path = path;
	ret = sftp_call(s, h, &r, what, SFTP_ATTEMPTS, e);
	if (!ret && r.size < 0)
		ret = err_set(e, LB_EXIT_STORE, "cannot %s: the server did not say it", what);
	if (!ret)
		*size = (uint64_t)r.size;
	sftp_req_release(&r);
	free(what);
	return ret;
}

/* A directory's long listing, or 1 when it does not exist (e untouched). */
static int list_dir(struct sftp *s, CURL *h, const char *dir, const char *doing, struct strbuf *out,
		    struct err *e)
{
	struct sftp_req r = SFTP_REQ_INIT("GET");
	struct err le = ERR_INIT;
	char *path = xasprintf("%s/", dir);
	char *what = doing ? xstrdup(doing) : xasprintf("list '%s%s/'", s->shown, dir);
	int ret = 0;

	r.path = path;
	if (sftp_call(s, h, &r, what, SFTP_ATTEMPTS, &le) < 0) {
		ret = r.cc == CURLE_REMOTE_FILE_NOT_FOUND ? 1 : err_copy(e, &le);
	} else if (r.resp.overflowed) {
		ret = err_set(e, LB_EXIT_STORE, "cannot %s: the listing is larger than %u MiB",
			      what, BODY_MAX >> 20);
	} else {
		strbuf_reset(out);
		strbuf_add(out, r.resp.buf, r.resp.len);
	}
	sftp_req_release(&r);
	free(path);
	free(what);
	return ret;
}

/* The archives' directory is missing: is BACKUP_SFTP_URL's path there at all? */
static int check_base(struct sftp *s, CURL *h, const char *doing, struct err *e)
{
	struct strbuf ignore = STRBUF_INIT;
	const char *base = s->cfg->sftp.path;
	int r = list_dir(s, h, base, doing, &ignore, e);

	strbuf_release(&ignore);
	if (r == 1)
		return err_set(e, LB_EXIT_STORE,
			       "cannot use '%s%s/': the directory '%s' does not exist on the "
			       "server (BACKUP_SFTP_URL names it; create it first)",
			       s->shown, base, *base ? base : "/");
	return r;
}

int sftp_list_names(struct sftp *s, CURL *h, const char *doing, struct strbuf *listing,
		    bool *ret_missing, struct err *e)
{
	int r = list_dir(s, h, s->dir, doing, listing, e);

	*ret_missing = r == 1;
	if (r == 1)
		return check_base(s, h, doing, e);
	return r;
}

static int sftp_list(struct store *st, struct store_list *out, struct err *e)
{
	struct sftp *s = S(st);
	struct strbuf listing = STRBUF_INIT, name = STRBUF_INIT;
	bool missing;
	int ret;

	pthread_mutex_lock(&s->ctl_lock);
	ret = sftp_list_names(s, s->ctl, NULL, &listing, &missing, e);
	for (size_t i = 0; !ret && !missing && i < listing.len;) {
		const char *line = listing.buf + i;
		size_t n = strcspn(line, "\n");
		uint64_t size = 0;
		struct backup_id id;
		int k = sftp_listing_line(line, n, &name, &size);
		i += n + (i + n < listing.len);
		if (!k || !naming_parse(s->cfg->name, name.buf, &id))
			continue;
		if (k < 0) {
			char *path = xasprintf("%s/%s", s->dir, name.buf);
			ret = stat_size(s, s->ctl, path, &size, e);
			free(path);
			if (ret < 0)
				break;
		}
		store_list_add(out, name.buf, &id, size);
	}
	pthread_mutex_unlock(&s->ctl_lock);
	strbuf_release(&listing);
	strbuf_release(&name);
	return ret < 0 ? -1 : 0;
}

struct getter {
	struct store *st;
	struct sftp *s;
	char *path;
	char *what;
	int fd;
	int out_errno;
};

static size_t to_fd(char *buf, size_t size, size_t n, void *ud)
{
	struct getter *g = ud;
	int rc = write_all(g->fd, buf, size * n);

	if (rc < 0) {
		g->out_errno = -rc;
		return 0; /* the reader went away: stop the transfer */
	}
	return size * n;
}

/* Thread: stream one file into the pipe; the reader sees EOF at the end or on failure. */
static void *getter_main(void *arg)
{
	struct getter *g = arg;
	struct err e = ERR_INIT;
	struct sftp_req r = SFTP_REQ_INIT("GET");
	CURL *h = http_handle();

	r.path = g->path;
	r.write = to_fd;
	r.write_ud = g;
	/* Once bytes flowed, a retry would repeat them: one attempt. */
	if (!h)
		store_report(g->st, LOG_ERROR, "cannot %s: curl_easy_init failed", g->what);
	else if (sftp_call(g->s, h, &r, g->what, 1, &e) < 0 && !g->out_errno)
		store_report(g->st, LOG_ERROR, "%s", e.msg);
	if (h)
		curl_easy_cleanup(h);
	close_fd(&g->fd);
	sftp_req_release(&r);
	free(g->path);
	free(g->what);
	free(g);
	return NULL;
}

static int sftp_get_open(struct store *st, const char *file, int *ret_fd, struct err *e)
{
	struct sftp *s = S(st);
	struct getter *g = xcalloc(1, sizeof(*g));
	struct sftp_req r = SFTP_REQ_INIT("HEAD");
	int fds[2], rc;
	pthread_t t;

	g->st = st;
	g->s = s;
	g->path = xasprintf("%s/%s", s->dir, file);
	g->what = xasprintf("download '%s%s'", s->shown, g->path);
	g->fd = -1;
	/* Is it there and readable? A clear error before any byte flows. */
	r.path = g->path;
	pthread_mutex_lock(&s->ctl_lock);
	rc = sftp_call(s, s->ctl, &r, g->what, SFTP_ATTEMPTS, e);
	pthread_mutex_unlock(&s->ctl_lock);
	if (rc < 0 && r.cc == CURLE_REMOTE_FILE_NOT_FOUND)
		e->code = LB_EXIT_NOT_FOUND;
	sftp_req_release(&r);
	if (rc < 0)
		goto fail;
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
	free(g->path);
	free(g->what);
	free(g);
	return -1;
}

static bool sftp_exists(struct store *st, const char *file)
{
	struct sftp *s = S(st);
	struct sftp_req r = SFTP_REQ_INIT("HEAD");
	struct err e = ERR_INIT;
	char *path = xasprintf("%s/%s", s->dir, file);

	r.path = path;
	pthread_mutex_lock(&s->ctl_lock);
	bool found = sftp_call(s, s->ctl, &r, "check a file", SFTP_ATTEMPTS, &e) == 0;
	pthread_mutex_unlock(&s->ctl_lock);
	sftp_req_release(&r);
	free(path);
	return found;
}

/* Delete `file` from the archives' directory: 1 deleted, 0 it was not there, -1 e says why. */
static int remove_file(struct sftp *s, const char *file, struct err *e)
{
	struct err re = ERR_INIT;
	int ret = 1;

	char *path = xasprintf("%s/%s", s->dir, file);
	char *what = xasprintf("delete '%s%s'", s->shown, path);
	pthread_mutex_lock(&s->ctl_lock);
	if (sftp_command(s, s->ctl, "rm", path, NULL, what, 0, &re) < 0) {
		/* A missing file is not an error; anything else is. */
		struct sftp_req r = SFTP_REQ_INIT("HEAD");
		struct err ignore = ERR_INIT;
		r.path = path;
		if (sftp_call(s, s->ctl, &r, what, SFTP_ATTEMPTS, &ignore) == 0 ||
		    r.cc != CURLE_REMOTE_FILE_NOT_FOUND)
			ret = err_copy(e, &re);
		else
			ret = 0;
		sftp_req_release(&r);
	}
	pthread_mutex_unlock(&s->ctl_lock);
	free(path);
	free(what);
	return ret;
}

static int sftp_remove(struct store *st, const char *file, struct err *e)
{
	struct sftp *s = S(st);

	if (!store_file_ours(s->cfg, file))
		return err_set(e, LB_EXIT_INTERNAL, "refusing to delete '%s': not a backup of '%s'",
			       file, s->cfg->name);
	return remove_file(s, file, e) < 0 ? -1 : 0;
}

static int sftp_remove_temp(struct store *st, const char *name, struct err *e)
{
	struct sftp *s = S(st);

	if (!store_temp_ours(s->cfg, name))
		return err_set(e, LB_EXIT_INTERNAL,
			       "refusing to delete '%s': not a temporary of '%s'", name,
			       s->cfg->name);
	return remove_file(s, name, e);
}

static void sftp_free(struct store *st)
{
	struct sftp *s = S(st);

	/* Readers have closed their ends by now: getters finish (EPIPE) and exit. */
	for (size_t i = 0; i < s->nr_getters; i++)
		pthread_join(s->getters[i], NULL);
	free(s->getters);
	if (s->ctl)
		curl_easy_cleanup(s->ctl);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->ctl_lock);
	free(s->origin);
	free(s->shown);
	free(s->dir);
	free(s);
	free(st);
}

static const struct store_ops sftp_ops = {
	.kind = "sftp",
	.put_begin = sftp_put_begin,
	.put_write = sftp_put_write,
	.put_commit = sftp_put_commit,
	.put_abort = sftp_put_abort,
	.list = sftp_list,
	.get_open = sftp_get_open,
	.exists = sftp_exists,
	.remove = sftp_remove,
	.put_small = store_put_small_streamed,
	.remove_temp = sftp_remove_temp,
	.free = sftp_free,
};

int store_sftp_new(const struct config *cfg, struct store **ret, struct err *e)
{
	const struct config_sftp *c = &cfg->sftp;
	struct store *st;
	struct sftp *s;

	if (!c->url)
		return err_set(e, LB_EXIT_CONFIG, "BACKUP_SFTP_URL is not set");
	if (http_init(e) < 0)
		return -1;
	st = xcalloc(1, sizeof(*st));
	s = xcalloc(1, sizeof(*s));
	s->cfg = cfg;
	s->ctl = http_handle();
	if (!s->ctl) {
		free(s);
		free(st);
		return err_set(e, LB_EXIT_INTERNAL, "curl_easy_init failed");
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->ctl_lock, NULL);
	s->origin = xasprintf("sftp://%s:%u", c->host, c->port);
	s->shown = xasprintf("sftp://%s@%s:%u", c->user, c->host, c->port);
	s->dir = xasprintf("%s/%s", c->path, cfg->name);
	st->ops = &sftp_ops;
	st->cfg = cfg;
	st->priv = s;
	*ret = st;
	return 0;
}

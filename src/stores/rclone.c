/*
 * The rclone store: archives in BACKUP_RCLONE_REMOTE/BACKUP_NAME/ on any remote rclone
 * knows, with rclone as a child (child.c): `rcat` fed from the stream into a hidden
 * temporary, `moveto` into place, `lsjson` to list, `cat` to restore (streamed),
 * `deletefile` to prune. rclone's configuration, a secret, reaches it as a 0600 file in
 * a private directory named by RCLONE_CONFIG, never on its command line.
 */
#include "common.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "child.h"
#include "config-vars.h"
#include "fault.h"
#include "fs.h"
#include "stores/store.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

#define OUT_MAX (16u << 20) /* cap on what we keep of rclone's stdout (a listing) */
/* rclone's exit codes (its documentation, "Exit Code") */
#define RCLONE_DIR_NOT_FOUND  3
#define RCLONE_FILE_NOT_FOUND 4

struct rclone {
	const struct config *cfg;
	char *dir;	       /* REMOTE/BACKUP_NAME */
	char *tmpdir;	       /* private: holds conf, removed by free; NULL without a config */
	char *conf;	       /* tmpdir/rclone.conf */
	int lock_fd;	       /* tmpdir, flocked while it is ours */
	struct strvec secrets; /* values of the config's secret-looking keys, for redaction */
	pthread_mutex_t lock;
	struct child **readers; /* `rclone cat` children, reaped by free */
	size_t nr_readers;
};

static struct rclone *R(struct store *s)
{
	return s->priv;
}

/* ---- running rclone ---- */

static void rclone_prepare(struct rclone *r, struct child *c, const char *verb)
{
	child_env_default(&c->env);
	if (r->conf)
		strvec_pushf(&c->env, "RCLONE_CONFIG=%s", r->conf);
	/* An encrypted config without RCLONE_CONFIG_PASS fails instead of asking. */
	strvec_push(&c->env, "RCLONE_ASK_PASSWORD=false");
	strvec_push(&c->args, "rclone");
	strvec_push(&c->args, verb);
	/* No retries of whole operations (an upload from a pipe cannot be repeated), few of
	 * single requests: an unreachable remote fails in seconds, not minutes. */
	strvec_push(&c->args, "--retries=1");
	strvec_push(&c->args, "--low-level-retries=3");
}

/* Replace every `secret` in `sb` with "***". */
static void redact_one(struct strbuf *sb, const char *secret)
{
	size_t n = strlen(secret);
	char *at;

	while (n && (at = memmem(sb->buf, sb->len, secret, n))) {
		size_t off = (size_t)(at - sb->buf);
		struct strbuf t = STRBUF_INIT;
		strbuf_add(&t, sb->buf, off);
		strbuf_addstr(&t, "***");
		strbuf_add(&t, at + n, sb->len - off - n);
		strbuf_release_secret(sb);
		*sb = t;
	}
}

/* Does the line [p, p+n) start with rclone's log prefix "YYYY/MM/DD HH:MM:SS "? */
static bool log_line(const char *p, size_t n)
{
	return n > 20 && isdigit((unsigned char)p[0]) && p[4] == '/' && p[7] == '/' &&
	       p[10] == ' ' && p[13] == ':' && p[16] == ':' && p[19] == ' ';
}

/* Append ": " and the text after `key` in [p, p+n) up to a character of `stop`. */
static void add_field(struct strbuf *out, const char *p, size_t n, const char *key,
		      const char *stop)
{
	const char *k = memmem(p, n, key, strlen(key));

	if (!k)
		return;
	k += strlen(key);
	size_t m = 0, left = n - (size_t)(k - p);
	while (m < left && !strchr(stop, k[m]))
		m++;
	if (m && !(m == 6 && !memcmp(k, "(none)", 6))) {
		strbuf_addstr(out, ": ");
		strbuf_add(out, k, m);
	}
}

/*
 * What rclone said went wrong: its last log line (the "YYYY/MM/DD HH:MM:SS" prefix
 * dropped), else its last line. Some backends (azureblob's SDK) follow that line with a
 * multi-line dump of the request, whose last line is a request id: then the log line's
 * trailing Go source location ("-> github.com/....go:42") goes, and the dump's service
 * code and description are added.
 */
static void rclone_summary(struct child *c, struct strbuf *out)
{
	const struct strbuf *t = &c->err_tail;
	size_t at = t->len, len = 0;

	for (size_t i = 0; i < t->len;) {
		size_t n = strcspn(t->buf + i, "\n");
		if (log_line(t->buf + i, n)) {
			at = i;
			len = n;
		}
		i += n + 1;
	}
	if (at == t->len) {
		child_err_summary(c, out);
		return;
	}
	const char *line = t->buf + at + 20, *rest = line + len - 20;
	size_t n = len - 20, rest_len = t->len - (size_t)(rest - t->buf);
	const char *loc = memmem(line, n, " -> ", 4);
	bool dump = memmem(rest, rest_len, "RESPONSE", 8) != NULL;
	if (dump && loc && memmem(loc, n - (size_t)(loc - line), ".go:", 4))
		n = (size_t)(loc - line);
	strbuf_reset(out);
	strbuf_add(out, line, n);
	strbuf_rtrim(out);
	while (out->len && out->buf[out->len - 1] == ':')
		out->buf[--out->len] = '\0';
	if (dump) {
		add_field(out, rest, rest_len, "ServiceCode=", ") \n");
		add_field(out, rest, rest_len, "Description=", ",\n");
	}
}

/*
 * rclone's summary line (rclone_summary), fit for a message: control characters replaced,
 * the config's secret values and any URL user info ("//user:pass@") redacted, at most
 * 300 bytes.
 */
static void rclone_err_line(struct rclone *r, struct child *c, struct strbuf *out)
{
	struct strbuf line = STRBUF_INIT;
	char *at;

	rclone_summary(c, &line);
	const char *s = line.buf;
	strbuf_reset(out);
	for (const char *p = s; *p && out->len < 300; p++)
		strbuf_addch(out, (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p);
	for (size_t i = 0; i < r->secrets.nr; i++)
		redact_one(out, r->secrets.v[i]);
	for (char *p = out->buf; (p = strstr(p, "//"));) {
		at = p + 2 + strcspn(p + 2, "/@ ");
		if (*at == '@') {
			struct strbuf t = STRBUF_INIT;
			strbuf_add(&t, out->buf, (size_t)(p + 2 - out->buf));
			strbuf_addstr(&t, "***");
			strbuf_addstr(&t, at);
			size_t off = (size_t)(p - out->buf) + 5;
			strbuf_release_secret(out);
			*out = t;
			p = out->buf + off;
		} else {
			p += 2;
		}
	}
	strbuf_release(&line);
}

/* "cannot WHAT: rclone exited with status N: its last line". */
static int rclone_fail(struct rclone *r, struct child *c, int status, const char *what,
		       struct err *e)
{
	struct strbuf why = STRBUF_INIT;
	char st[64];
	int ret;

	rclone_err_line(r, c, &why);
	ret = err_set(e, LB_EXIT_STORE, "cannot %s: rclone %s%s%s", what,
		      child_status_str(status, st, sizeof(st)), why.len ? ": " : "", why.buf);
	strbuf_release(&why);
	return ret;
}

/*
 * Run `rclone VERB ARGS...` to its end, its stdout into `out` (NULL: dropped). Returns
 * its exit code (0 success), or -1 with `e` set when it could not run or was killed.
 * `ok_code` (0: none) is an exit code the caller handles; any other non-zero sets `e`.
 */
static int rclone_run(struct rclone *r, const char *what, const char *verb, const char *arg1,
		      const char *arg2, struct strbuf *out, int ok_code, struct err *e)
{
	struct child c = CHILD_INIT;
	int status, code;

	rclone_prepare(r, &c, verb);
	strvec_push(&c.args, arg1);
	if (arg2)
		strvec_push(&c.args, arg2);
	c.out = out ? CHILD_PIPE : CHILD_NULL;
	if (child_start(&c, LB_EXIT_STORE, e) < 0) {
		child_release(&c);
		return -1;
	}
	if (out) {
		char buf[65536];
		ssize_t n;
		strbuf_reset(out);
		while ((n = read_retry(c.out_fd, buf, sizeof(buf))) > 0)
			if (out->len < OUT_MAX)
				strbuf_add(out, buf, (size_t)n);
	}
	status = child_finish(&c);
	code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	if (code != 0 && (code != ok_code || !ok_code)) {
		rclone_fail(r, &c, status, what, e);
		code = -1;
	} else if (out && out->len >= OUT_MAX) {
		code = err_set(e, LB_EXIT_STORE, "cannot %s: rclone's answer is too large", what);
	}
	child_release(&c);
	return code;
}

static char *path_of(struct rclone *r, const char *file)
{
	return xasprintf("%s/%s", r->dir, file);
}

static int delete_file(struct rclone *r, const char *file, const char *what, struct err *e);

/* ---- the upload ---- */

struct rclone_put {
	struct rclone *r;
	char *tmp, *tmp_name, *final, *what;
	struct child c; /* rclone rcat TMP, its stdin our end of the stream */
	bool running;
};

static void put_free(struct rclone_put *rp)
{
	if (rp->running)
		child_kill(&rp->c);
	child_release(&rp->c);
	free(rp->tmp);
	free(rp->tmp_name);
	free(rp->final);
	free(rp->what);
	free(rp);
}

static int rclone_put_begin(struct store *s, const char *file, struct store_put *p, struct err *e)
{
	struct rclone *r = R(s);
	struct rclone_put *rp = xcalloc(1, sizeof(*rp));
	unsigned char rnd[6] = { 0 };
	struct strbuf tmp = STRBUF_INIT;

	rp->r = r;
	rp->c = (struct child)CHILD_INIT;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0, sizeof(rnd)); /* the pid keeps it apart then */
	strbuf_addf(&tmp, ".%s.%d-", file, (int)getpid());
	for (size_t i = 0; i < sizeof(rnd); i++)
		strbuf_addf(&tmp, "%02x", rnd[i]);
	strbuf_addstr(&tmp, ".partial");
	rp->tmp_name = strbuf_detach(&tmp, NULL);
	rp->tmp = path_of(r, rp->tmp_name);
	rp->final = path_of(r, file);
	rp->what = xasprintf("upload '%s' to the rclone store", rp->final);
	rclone_prepare(r, &rp->c, "rcat");
	strvec_push(&rp->c.args, rp->tmp);
	rp->c.in = CHILD_PIPE;
	store_temp_made(s, rp->tmp_name); /* before rcat can make it */
	if (child_start(&rp->c, LB_EXIT_STORE, e) < 0) {
		store_temp_gone(s, rp->tmp_name);
		put_free(rp);
		return -1;
	}
	rp->running = true;
	p->store = s;
	p->file = xstrdup(file);
	p->priv = rp;
	p->bytes = 0;
	return 0;
}

/* rclone ended while it should still be reading: why. */
static int upload_ended(struct rclone_put *rp, struct err *e)
{
	int status = child_finish(&rp->c);

	rp->running = false;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return err_set(e, LB_EXIT_STORE, "cannot %s: rclone stopped reading", rp->what);
	return rclone_fail(rp->r, &rp->c, status, rp->what, e);
}

static int rclone_put_write(struct store_put *p, const void *buf, size_t len, struct err *e)
{
	struct rclone_put *rp = p->priv;

	/* fail: the remote goes away mid-upload. */
	if (FAULT("rclone.write"))
		return err_set(e, LB_EXIT_STORE, "cannot %s: injected failure", rp->what);
	int r = write_all(rp->c.in_fd, buf, len);
	if (r == -EPIPE)
		return upload_ended(rp, e);
	if (r < 0)
		return err_set(e, LB_EXIT_INTERNAL, "cannot %s: %s", rp->what, strerror(-r));
	p->bytes += len;
	return 0;
}

static int rclone_put_commit(struct store_put *p, struct err *e)
{
	struct rclone_put *rp = p->priv;
	struct rclone *r = rp->r;

	close_fd(&rp->c.in_fd); /* EOF: rcat finishes the upload */
	int status = child_finish(&rp->c);
	rp->running = false;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return rclone_fail(r, &rp->c, status, rp->what, e);
	if (FAULT("rclone.move"))
		return err_set(e, LB_EXIT_STORE, "cannot %s: injected failure", rp->what);
	if (rclone_run(r, rp->what, "moveto", rp->tmp, rp->final, NULL, 0, e) < 0)
		return -1;
	store_temp_gone(p->store, rp->tmp_name);
	put_free(rp);
	free(p->file);
	p->file = NULL;
	p->priv = NULL;
	return 0;
}

static void rclone_put_abort(struct store_put *p)
{
	struct rclone_put *rp = p->priv;
	struct err e = ERR_INIT;

	if (!rp)
		return;
	/* Killed before its stdin closes: an EOF would make rcat finish a short upload. */
	if (rp->running)
		child_kill(&rp->c);
	rp->running = false;
	char *what = xasprintf("delete the temporary '%s' from the rclone store", rp->tmp);
	if (delete_file(rp->r, rp->tmp_name, what, &e) < 0)
		store_report(p->store, LOG_WARN, "%s (the next run removes it)", e.msg);
	else
		store_temp_gone(p->store, rp->tmp_name);
	free(what);
	put_free(rp);
	free(p->file);
	p->file = NULL;
	p->priv = NULL;
}

/* ---- list, get, exists, remove ---- */

/* Files of `lsjson` output: each {"Name": ..., "Size": ..., "IsDir": ...} to fn. */
static int each_listed(struct store *s, const struct strbuf *out, const char *what,
		       struct store_list *list, struct err *e)
{
	json_error_t je;
	json_t *root = json_loadb(out->buf, out->len, 0, &je), *it;
	size_t i;

	if (!json_is_array(root)) {
		json_decref(root);
		return err_set(e, LB_EXIT_STORE, "cannot %s: rclone's listing is not JSON", what);
	}
	json_array_foreach (root, i, it) {
		const char *name = json_string_value(json_object_get(it, "Name"));
		json_t *size = json_object_get(it, "Size");
		struct backup_id id;
		if (!name || json_is_true(json_object_get(it, "IsDir")) ||
		    !naming_parse(s->cfg->name, name, &id))
			continue;
		json_int_t n = json_is_integer(size) ? json_integer_value(size) : 0;
		store_list_add(list, name, &id, n > 0 ? (uint64_t)n : 0);
	}
	json_decref(root);
	return 0;
}

static int rclone_list(struct store *s, struct store_list *out, struct err *e)
{
	struct rclone *r = R(s);
	struct strbuf json = STRBUF_INIT;
	char *what = xasprintf("list '%s' in the rclone store", r->dir);
	int code = rclone_run(r, what, "lsjson", "--files-only", r->dir, &json,
			      RCLONE_DIR_NOT_FOUND, e);
	int ret = code < 0			 ? -1
		  : code == RCLONE_DIR_NOT_FOUND ? 0
						 : each_listed(s, &json, what, out, e);

	strbuf_release(&json);
	free(what);
	return ret;
}

/* Is `file` (a name in the store's directory) there? 1 yes, 0 no, -1 could not tell. */
static int stat_file(struct rclone *r, const char *file, const char *what, struct err *e)
{
	struct strbuf json = STRBUF_INIT;
	/* `--include` keeps the answer to that one name (ours hold no glob characters). */
	char *filter = xasprintf("--include=/%s", file);
	int code = rclone_run(r, what, "lsjson", filter, r->dir, &json, RCLONE_DIR_NOT_FOUND, e);
	int ret = code < 0 ? -1 : 0;

	if (code == 0) {
		json_error_t je;
		json_t *root = json_loadb(json.buf, json.len, 0, &je), *it;
		size_t i;
		if (!json_is_array(root))
			ret = err_set(e, LB_EXIT_STORE, "cannot %s: rclone's listing is not JSON",
				      what);
		json_array_foreach (root, i, it) {
			const char *name = json_string_value(json_object_get(it, "Name"));
			if (name && !strcmp(name, file) &&
			    !json_is_true(json_object_get(it, "IsDir")))
				ret = 1;
		}
		json_decref(root);
	}
	strbuf_release(&json);
	free(filter);
	return ret;
}

/*
 * Delete `file` from the store's directory: 1 deleted, 0 it was not there, -1 e says
 * why. rclone's deletefile says "doesn't exist" with the exit code of any failure, so a
 * failure is checked against a listing.
 */
static int delete_file(struct rclone *r, const char *file, const char *what, struct err *e)
{
	struct err first = ERR_INIT;
	char *path = path_of(r, file);
	int code = rclone_run(r, what, "deletefile", path, NULL, NULL, 0, &first);

	free(path);
	if (code == 0)
		return 1;
	int there = stat_file(r, file, what, e);
	if (there == 0)
		return 0;
	if (there > 0)
		err_copy(e, &first);
	return -1;
}

static int rclone_get_open(struct store *s, const char *file, int *ret_fd, struct err *e)
{
	struct rclone *r = R(s);
	char *path = path_of(r, file);
	char *what = xasprintf("download '%s' from the rclone store", path);
	struct child *c = NULL;
	int ret = -1;

	/* A clear error before any byte flows. */
	int found = stat_file(r, file, what, e);
	if (found == 0)
		err_set(e, LB_EXIT_NOT_FOUND, "cannot %s: no such archive", what);
	if (found <= 0)
		goto out;
	c = xcalloc(1, sizeof(*c));
	*c = (struct child)CHILD_INIT;
	rclone_prepare(r, c, "cat");
	strvec_push(&c->args, path);
	c->out = CHILD_PIPE;
	if (child_start(c, LB_EXIT_STORE, e) < 0) {
		child_release(c);
		free(c);
		goto out;
	}
	*ret_fd = c->out_fd; /* the caller's to close */
	c->out_fd = -1;
	pthread_mutex_lock(&r->lock);
	r->readers = xrealloc(r->readers, (r->nr_readers + 1) * sizeof(*r->readers));
	r->readers[r->nr_readers++] = c;
	pthread_mutex_unlock(&r->lock);
	ret = 0;
out:
	free(path);
	free(what);
	return ret;
}

static bool rclone_exists(struct store *s, const char *file)
{
	struct err e = ERR_INIT;

	return stat_file(R(s), file, "check an archive", &e) == 1;
}

static int rclone_remove(struct store *s, const char *file, struct err *e)
{
	struct rclone *r = R(s);

	if (!store_file_ours(s->cfg, file))
		return err_set(e, LB_EXIT_INTERNAL, "refusing to delete '%s': not a backup of '%s'",
			       file, s->cfg->name);
	char *path = path_of(r, file);
	char *what = xasprintf("delete '%s' from the rclone store", path);
	int rc = delete_file(r, file, what, e);
	free(path);
	free(what);
	return rc < 0 ? -1 : 0;
}

static int rclone_remove_temp(struct store *s, const char *name, struct err *e)
{
	struct rclone *r = R(s);

	if (!store_temp_ours(s->cfg, name))
		return err_set(e, LB_EXIT_INTERNAL,
			       "refusing to delete '%s': not a temporary of '%s'", name,
			       s->cfg->name);
	char *path = path_of(r, name);
	char *what = xasprintf("delete '%s' from the rclone store", path);
	int rc = delete_file(r, name, what, e);
	free(path);
	free(what);
	return rc;
}

static void rclone_free(struct store *s)
{
	struct rclone *r = R(s);

	/* Readers have closed their ends: each `rclone cat` ends (EPIPE) and is reaped. */
	for (size_t i = 0; i < r->nr_readers; i++) {
		child_finish(r->readers[i]);
		child_release(r->readers[i]);
		free(r->readers[i]);
	}
	free(r->readers);
	if (r->conf) {
		unlink(r->conf);
		rmdir(r->tmpdir);
	}
	close_fd(&r->lock_fd);
	free(r->conf);
	free(r->tmpdir);
	for (size_t i = 0; i < r->secrets.nr; i++)
		explicit_bzero(r->secrets.v[i], strlen(r->secrets.v[i]));
	strvec_release(&r->secrets);
	pthread_mutex_destroy(&r->lock);
	free(r->dir);
	free(r);
	free(s);
}

static const struct store_ops rclone_ops = {
	.kind = "rclone",
	.put_begin = rclone_put_begin,
	.put_write = rclone_put_write,
	.put_commit = rclone_put_commit,
	.put_abort = rclone_put_abort,
	.list = rclone_list,
	.get_open = rclone_get_open,
	.exists = rclone_exists,
	.remove = rclone_remove,
	.put_small = store_put_small_streamed,
	.remove_temp = rclone_remove_temp,
	.free = rclone_free,
};

/* The values of `key = value` lines whose key looks secret, for redacting messages. */
static void collect_secrets(const struct strbuf *conf, struct strvec *out)
{
	static const char *const words[] = { "pass", "key", "token", "secret", "sas", "auth" };
	const char *p = conf->buf, *end = conf->buf + conf->len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *eol = nl ? nl : end;
		const char *eq = memchr(p, '=', (size_t)(eol - p));
		if (eq) {
			struct strbuf k = STRBUF_INIT, v = STRBUF_INIT;
			strbuf_add(&k, p, (size_t)(eq - p));
			const char *vs = eq + 1, *ve = eol;
			while (vs < ve && (*vs == ' ' || *vs == '\t'))
				vs++;
			while (ve > vs && strchr(" \t\r", ve[-1]))
				ve--;
			strbuf_add(&v, vs, (size_t)(ve - vs));
			bool secret = false;
			for (size_t i = 0; i < ARRAY_SIZE(words); i++)
				secret |= strcasestr(k.buf, words[i]) != NULL;
			if (secret && v.len >= 4)
				strvec_push(out, v.buf);
			strbuf_release(&k);
			strbuf_release_secret(&v);
		}
		p = eol + 1;
	}
}

/*
 * Remove the private directories of runs that died (SIGKILL, power loss): a run holds an
 * flock on its directory from before it writes the config until it removes it, so a
 * directory with a config whose lock we can take is stale.
 */
static void sweep_stale(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, "lifeboat-rclone.", 16))
			continue;
		int fd = openat(dirfd(d), de->d_name,
				O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		if (fd < 0)
			continue;
		if (fstat(fd, &st) == 0 && st.st_uid == geteuid() &&
		    flock(fd, LOCK_EX | LOCK_NB) == 0 && unlinkat(fd, "rclone.conf", 0) == 0)
			unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
		close(fd);
	}
	closedir(d);
}

/* The config, in a 0700 directory of our own as a 0600 file rclone is pointed at. */
static int write_conf(struct rclone *r, const struct config *cfg, struct err *e)
{
	const char *base = getenv("TMPDIR");
	base = base && *base ? base : "/tmp";
	sweep_stale(base);
	char *tmpl = xasprintf("%s/lifeboat-rclone.XXXXXX", base);

	if (!mkdtemp(tmpl)) {
		int saved = errno;
		free(tmpl);
		return err_set(e, LB_EXIT_STORE,
			       "cannot create a private directory for rclone's "
			       "configuration: %s",
			       strerror(saved));
	}
	r->tmpdir = tmpl;
	r->conf = xasprintf("%s/rclone.conf", tmpl);
	r->lock_fd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (r->lock_fd >= 0)
		flock(r->lock_fd, LOCK_EX); /* before the config exists: see sweep_stale */
	int fd = open(r->conf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int rc = fd < 0 ? -errno : write_all(fd, cfg->rclone.config.buf, cfg->rclone.config.len);
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0) {
		unlink(r->conf);
		rmdir(r->tmpdir);
		free(r->conf);
		free(r->tmpdir);
		r->conf = r->tmpdir = NULL;
		return err_set(e, LB_EXIT_STORE, "cannot write rclone's configuration: %s",
			       strerror(-rc));
	}
	return 0;
}

int store_rclone_new(const struct config *cfg, struct store **ret, struct err *e)
{
	struct store *s;
	struct rclone *r;

	if (!cfg->rclone.remote)
		return err_set(e, LB_EXIT_CONFIG, "BACKUP_RCLONE_REMOTE is not set");
	s = xcalloc(1, sizeof(*s));
	r = xcalloc(1, sizeof(*r));
	r->cfg = cfg;
	r->secrets = (struct strvec)STRVEC_INIT;
	r->lock_fd = -1;
	pthread_mutex_init(&r->lock, NULL);
	const char *rem = cfg->rclone.remote;
	r->dir = xasprintf("%s%s%s", rem, rem[strlen(rem) - 1] == ':' ? "" : "/", cfg->name);
	s->ops = &rclone_ops;
	s->cfg = cfg;
	s->priv = r;
	if (cfg->rclone.config.len) {
		collect_secrets(&cfg->rclone.config, &r->secrets);
		if (write_conf(r, cfg, e) < 0) {
			rclone_free(s);
			return -1;
		}
	}
	*ret = s;
	return 0;
}

/* ---- its variables: rows of the configuration table (config-vars.h) ---- */

static int var_rclone_remote(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return 0;
	const char *colon = strchr(value, ':');
	size_t nlen = colon ? (size_t)(colon - value) : 0;
	bool ok = colon && nlen > 0 && value[0] != '-' && value[0] != ' ';
	for (size_t i = 0; ok && i < nlen; i++)
		ok = isalnum((unsigned char)value[i]) || strchr("_-. @+", value[i]);
	for (const char *p = value; ok && *p; p++)
		ok = (unsigned char)*p >= 0x20 && *p != 0x7f;
	if (!ok)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_RCLONE_REMOTE '%s' is invalid: expected NAME:PATH with the "
			       "name of a remote in the rclone configuration (letters, digits, "
			       "'_', '-', '.', ' '), e.g. 'gdrive:backups'",
			       SHOW(value));
	cfg->rclone.remote = xstrdup(value);
	size_t n = strlen(cfg->rclone.remote);
	while (n > nlen + 1 && cfg->rclone.remote[n - 1] == '/')
		cfg->rclone.remote[--n] = '\0';
	return 0;
}

static int var_rclone_config(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return 0;
	if (memchr(value, '\0', len))
		return err_set(e, LB_EXIT_CONFIG, "%s holds a NUL byte: expected an rclone.conf",
			       origin);
	strbuf_add(&cfg->rclone.config, value, len);
	cfg->rclone.config_origin = origin;
	return 0;
}

static void describe_rclone(const struct config *cfg, struct strbuf *out)
{
	const struct config_rclone *c = &cfg->rclone;

	if (!c->remote)
		return;
	strbuf_addf(out, "BACKUP_RCLONE_REMOTE %s\n", c->remote);
	strbuf_addf(out, "  archives in        %s%s%s/\n", c->remote,
		    c->remote[strlen(c->remote) - 1] == ':' ? "" : "/", cfg->name);
	if (c->config_origin)
		strbuf_addf(out, "rclone configuration read from %s (redacted)\n",
			    c->config_origin);
	else
		strbuf_addstr(out, "rclone configuration (unset: rclone's own, or RCLONE_* "
				   "variables)\n");
}

static const struct config_var rclone_rows[] = {
	{ "BACKUP_RCLONE_REMOTE", 0, var_rclone_remote, 0, 0, 0, NULL,
	  "An rclone remote and path to store archives in, at `REMOTE:PATH/BACKUP_NAME/`, "
	  "e.g. `gdrive:backups`: Google Drive, Dropbox, OneDrive, B2, Azure Blob and every other "
	  "backend of rclone (which must be installed: see [rclone remotes](#rclone-remotes)).",
	  describe_rclone },
	{ "BACKUP_RCLONE_CONFIG", SECRET | VAR_GROUP, var_rclone_config, 0, 0, 0, NULL,
	  "The text of an `rclone.conf` defining the remote (a secret: best as "
	  "`BACKUP_RCLONE_CONFIG_FILE`). rclone gets a private 0600 copy. Unset: rclone's own "
	  "configuration lookup.",
	  NULL },
};
const struct config_var_group rclone_vars =
	CONFIG_VAR_GROUP_IF(rclone_rows, "BACKUP_RCLONE_REMOTE");

/* Commands before and after a backup or restore, in the sidecar or in a container. */
#include "common.h"

#include <poll.h>
#include <signal.h>
#include <time.h>

#include "child.h"
#include "cmdline.h"
#include "config-vars.h"
#include "docker.h"
#include "hooks.h"
#include "labels.h"
#include "log.h"
#include "parse.h"
#include "signals.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

#define LINE_MAX_LOG 4096 /* a longer output line is logged in pieces */
#define KILL_GRACE   5.0  /* seconds from SIGTERM to SIGKILL after a timeout */

/* One command of a phase, as it will run. */
struct step {
	char *where;  /* container id or name to exec in; NULL: the sidecar */
	char *shown;  /* "sidecar", or the service or container name */
	char *origin; /* "BACKUP_PRE_COMMANDS line 2", "label lifeboat.pre-backup of 'app'" */
	char *text;
	struct strvec argv;
};

struct phase {
	const char *name; /* "pre-backup", ... */
	struct step *v;
	size_t nr, alloc;
};

struct hooks {
	const struct config *cfg;
	bool restore;
	struct docker *d;
	struct phase pre, post;
	bool pre_began, post_done;
	struct err post_err;
	json_t *outcomes;
};

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool hooks_use_docker(const struct config *cfg)
{
	const struct hook_list *lists[] = { &cfg->hooks.pre_backup, &cfg->hooks.post_backup,
					    &cfg->hooks.pre_restore, &cfg->hooks.post_restore };
	for (size_t k = 0; k < ARRAY_SIZE(lists); k++)
		for (size_t i = 0; i < lists[k]->nr; i++)
			if (lists[k]->v[i].where)
				return true;
	return false;
}

struct hooks *hooks_new(const struct config *cfg, bool restore)
{
	struct hooks *h = xcalloc(1, sizeof(*h));

	h->cfg = cfg;
	h->restore = restore;
	h->pre.name = restore ? "pre-restore" : "pre-backup";
	h->post.name = restore ? "post-restore" : "post-backup";
	h->outcomes = json_array();
	return h;
}

static struct step *add_step(struct phase *ph, const struct hook_cmd *c, const char *where,
			     const char *shown, char *origin)
{
	ALLOC_GROW(ph->v, ph->nr + 1, ph->alloc);
	struct step *s = &ph->v[ph->nr++];
	*s = (struct step){ .where = where ? xstrdup(where) : NULL,
			    .shown = xstrdup(shown),
			    .origin = origin,
			    .text = xstrdup(c->text),
			    .argv = STRVEC_INIT };
	for (size_t i = 0; i < c->argv.nr; i++)
		strvec_push(&s->argv, c->argv.v[i]);
	return s;
}

static void phase_release(struct phase *ph)
{
	for (size_t i = 0; i < ph->nr; i++) {
		free(ph->v[i].where);
		free(ph->v[i].shown);
		free(ph->v[i].origin);
		free(ph->v[i].text);
		strvec_release(&ph->v[i].argv);
	}
	free(ph->v);
	ph->v = NULL;
	ph->nr = ph->alloc = 0;
}

static void add_configured(struct phase *ph, const struct hook_list *l, const char *var)
{
	for (size_t i = 0; i < l->nr; i++) {
		const struct hook_cmd *c = &l->v[i];
		add_step(ph, c, c->where, c->where ? c->where : "sidecar",
			 xasprintf("%s line %u", var, c->line));
	}
}

/*
 * The label's commands of every container it selects into the phase. An engine that will
 * not list containers (a socket proxy) is a warning: the labels may not even be used.
 */
static int add_labelled(struct phase *ph, struct docker *d, const char *project, const char *name,
			const char *label, struct err *e)
{
	struct err le = ERR_INIT;
	json_t *list = NULL, *c;
	size_t i;

	if (labels_find(d, project, name, label, &list, &le) < 0) {
		log_warn("%s labels not looked up: %s", label, le.msg);
		return 0;
	}
	json_array_foreach (list, i, c) {
		struct hook_list cmds = HOOK_LIST_INIT;
		const char *id = json_string_value(json_object_get(c, "Id"));
		const char *cname = docker_container_name(c);
		const char *why = NULL;
		unsigned line = 0;
		if (!id)
			continue;
		if (cmdline_parse_list(docker_label(c, label), false, &cmds, &line, &why) < 0) {
			err_set(e, LB_EXIT_CONFIG,
				"label %s of container '%s', line %u: %s; nothing was run", label,
				cname ? cname : id, line, why);
			hook_list_release(&cmds);
			json_decref(list);
			return -1;
		}
		for (size_t k = 0; k < cmds.nr; k++)
			add_step(ph, &cmds.v[k], id, cname ? cname : id,
				 cmds.nr > 1 ? xasprintf("label %s of '%s', line %u", label,
							 cname ? cname : id, cmds.v[k].line)
					     : xasprintf("label %s of '%s'", label,
							 cname ? cname : id));
		hook_list_release(&cmds);
	}
	json_decref(list);
	return 0;
}

/* The phases' steps: the variables' commands, then the labels' (when the engine answers). */
static int resolve(struct hooks *h, struct err *e)
{
	const struct config_hooks *ch = &h->cfg->hooks;
	struct err de = ERR_INIT;
	char *project = NULL;
	int r = 0;

	if (h->restore) {
		add_configured(&h->pre, &ch->pre_restore, "BACKUP_PRE_RESTORE_COMMANDS");
		add_configured(&h->post, &ch->post_restore, "BACKUP_POST_RESTORE_COMMANDS");
	} else {
		add_configured(&h->pre, &ch->pre_backup, "BACKUP_PRE_COMMANDS");
		add_configured(&h->post, &ch->post_backup, "BACKUP_POST_COMMANDS");
	}
	bool needed = false;
	for (size_t i = 0; i < h->pre.nr; i++)
		needed |= h->pre.v[i].where != NULL;
	for (size_t i = 0; i < h->post.nr; i++)
		needed |= h->post.v[i].where != NULL;
	if (docker_open(h->cfg->docker.host, &h->d, &de) < 0) {
		if (needed)
			return err_wrap(e, &de,
					"a %s or %s command names a container, so it needs "
					"the Docker engine: ",
					h->pre.name, h->post.name);
		log_debug("container labels not looked up: %s", de.msg);
		return 0;
	}
	project = docker_self_project(h->d, NULL, &de);
	if (err_isset(&de)) {
		log_warn("container labels not looked up: %s", de.msg);
		return 0;
	}
	const char *pre = h->restore ? LABEL_PRE_RESTORE : LABEL_PRE_BACKUP;
	const char *post = h->restore ? LABEL_POST_RESTORE : LABEL_POST_BACKUP;
	if (add_labelled(&h->pre, h->d, project, h->cfg->name, pre, e) < 0 ||
	    add_labelled(&h->post, h->d, project, h->cfg->name, post, e) < 0)
		r = -1;
	free(project);
	return r;
}

/* A command's output, logged line by line with its place in front. */
struct liner {
	const char *shown;
	struct strbuf buf;
	struct strbuf last; /* the last non-empty line, for the error */
};

static void liner_emit(struct liner *l, const char *s, size_t n)
{
	while (n && (s[n - 1] == '\r'))
		n--;
	struct strbuf line = STRBUF_INIT;
	log_escape(&line, s, n);
	log_info("[%s] %s", l->shown, line.buf);
	if (n) {
		strbuf_reset(&l->last);
		strbuf_add(&l->last, line.buf, line.len);
	}
	strbuf_release(&line);
}

static void liner_feed(struct liner *l, const char *s, size_t n)
{
	size_t start = 0;

	strbuf_add(&l->buf, s, n);
	for (;;) {
		const char *b = l->buf.buf + start;
		size_t left = l->buf.len - start;
		const char *nl = memchr(b, '\n', left);
		size_t k = nl ? (size_t)(nl - b) : left;
		if (k >= LINE_MAX_LOG) {
			liner_emit(l, b, LINE_MAX_LOG);
			start += LINE_MAX_LOG;
			continue;
		}
		if (!nl)
			break;
		liner_emit(l, b, k);
		start += k + 1;
	}
	strbuf_keep_tail(&l->buf, l->buf.len - start);
}

static void liner_end(struct liner *l)
{
	if (l->buf.len)
		liner_emit(l, l->buf.buf, l->buf.len);
	strbuf_release(&l->buf);
}

enum wait_end { END_EOF, END_TIMEOUT, END_SIGNAL };

/* Log `fd`'s lines until EOF, `deadline`, or (with `obey`) a signal. */
static enum wait_end pump(int fd, struct liner *l, double deadline, bool obey)
{
	char buf[8192];

	for (;;) {
		if (obey && signals_pending())
			return END_SIGNAL;
		double left = deadline - now_mono();
		if (left <= 0)
			return END_TIMEOUT;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, left > 0.2 ? 200 : (int)(left * 1000) + 1);
		if (r <= 0)
			continue; /* a timeout or EINTR: check the clock and the signal again */
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return END_EOF;
		liner_feed(l, buf, (size_t)n);
	}
}

/* How a command ended. */
struct outcome {
	bool started;
	enum wait_end end;
	int exit_code; /* with END_EOF: the exit status, or -1 when killed by a signal */
	int signal;
	struct err why; /* not started: why */
};

static void run_here(const struct step *st, struct liner *l, double deadline, bool obey,
		     struct outcome *o)
{
	struct child c = CHILD_INIT;
	struct err e = ERR_INIT;

	for (size_t i = 0; i < st->argv.nr; i++)
		strvec_push(&c.args, st->argv.v[i]);
	c.out = CHILD_PIPE;
	c.err_to_out = true;
	c.own_group = true;
	if (child_start(&c, LB_EXIT_SOURCE, &e) < 0) {
		err_copy(&o->why, &e);
		child_release(&c);
		return;
	}
	o->started = true;
	o->end = pump(c.out_fd, l, deadline, obey);
	if (o->end != END_EOF) {
		/* The whole group: a shell's children hold the output pipe too. */
		child_signal(&c, SIGTERM);
		if (pump(c.out_fd, l, now_mono() + KILL_GRACE, false) != END_EOF) {
			child_signal(&c, SIGKILL);
			pump(c.out_fd, l, now_mono() + KILL_GRACE, false);
		}
	}
	int status = child_finish(&c);
	if (WIFEXITED(status)) {
		o->exit_code = WEXITSTATUS(status);
	} else {
		o->exit_code = -1;
		o->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	}
	child_release(&c);
}

static void run_there(struct hooks *h, const struct step *st, struct liner *l, double deadline,
		      bool obey, struct outcome *o)
{
	struct docker_exec x = DOCKER_EXEC_INIT;
	struct err e = ERR_INIT;

	x.merge_stderr = true;
	if (docker_exec_start(h->d, st->where, st->argv.v, NULL, false, &x, &e) < 0) {
		err_copy(&o->why, &e);
		docker_exec_release(&x);
		return;
	}
	o->started = true;
	o->end = pump(x.out_fd, l, deadline, obey);
	if (o->end == END_EOF && docker_exec_finish(&x, &o->exit_code, &e) < 0) {
		o->started = false;
		err_copy(&o->why, &e);
	}
	docker_exec_release(&x); /* after a timeout: stops waiting (the engine cannot stop it) */
}

static const char *status_word(const struct outcome *o)
{
	if (!o->started)
		return "not started";
	if (o->end == END_TIMEOUT)
		return "timed out";
	if (o->end == END_SIGNAL)
		return "interrupted";
	return o->exit_code == 0 ? "ok" : "failed";
}

static void record(struct hooks *h, const struct phase *ph, const struct step *st,
		   const struct outcome *o, double seconds)
{
	bool code = o->started && o->end == END_EOF && o->exit_code >= 0;
	json_array_append_new(h->outcomes,
			      json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:f}", "phase", ph->name,
					"where", st->shown, "origin", st->origin, "command",
					st->text, "status", status_word(o), "exit_code",
					code ? json_integer(o->exit_code) : json_null(), "seconds",
					seconds));
}

/* Run one step; 0 when it exited 0, else -1 with `e` saying how it failed. */
static int run_step(struct hooks *h, const struct phase *ph, const struct step *st, bool obey,
		    struct err *e)
{
	struct liner l = { .shown = st->shown, .buf = STRBUF_INIT, .last = STRBUF_INIT };
	struct outcome o = { .why = ERR_INIT };
	unsigned timeout = h->cfg->hooks.timeout;
	double t0 = now_mono();
	int ret = 0;

	if (st->where)
		log_info("%s command (%s) in '%s': %s", ph->name, st->origin, st->shown, st->text);
	else
		log_info("%s command (%s) in the sidecar: %s", ph->name, st->origin, st->text);
	if (st->where)
		run_there(h, st, &l, t0 + timeout, obey, &o);
	else
		run_here(st, &l, t0 + timeout, obey, &o);
	liner_end(&l);
	record(h, ph, st, &o, now_mono() - t0);
	const char *in = st->where ? st->shown : "the sidecar";
	const char *tail = l.last.len ? l.last.buf : NULL;
	if (!o.started)
		ret = err_set(e, LB_EXIT_SOURCE, "%s command (%s) could not run in %s%s%s: %s",
			      ph->name, st->origin, st->where ? "'" : "", in, st->where ? "'" : "",
			      o.why.msg);
	else if (o.end == END_SIGNAL)
		ret = err_set(e, LB_EXIT_INTERRUPTED,
			      "interrupted by signal %d during the %s command (%s)",
			      signals_pending(), ph->name, st->origin);
	else if (o.end == END_TIMEOUT && st->where)
		ret = err_set(e, LB_EXIT_SOURCE,
			      "%s command (%s) in '%s' did not end within %u s "
			      "(BACKUP_COMMAND_TIMEOUT); lifeboat stopped waiting, but the Docker "
			      "engine cannot stop a command it runs in a container",
			      ph->name, st->origin, in, timeout);
	else if (o.end == END_TIMEOUT)
		ret = err_set(e, LB_EXIT_SOURCE,
			      "%s command (%s) in the sidecar did not end within %u s "
			      "(BACKUP_COMMAND_TIMEOUT) and was killed",
			      ph->name, st->origin, timeout);
	else if (o.exit_code < 0)
		ret = err_set(e, LB_EXIT_SOURCE, "%s command (%s) in %s was killed by signal %d",
			      ph->name, st->origin, in, o.signal);
	else if (o.exit_code)
		ret = err_set(e, LB_EXIT_SOURCE,
			      "%s command (%s) in %s%s%s exited with status %d%s%s", ph->name,
			      st->origin, st->where ? "'" : "", in, st->where ? "'" : "",
			      o.exit_code, tail ? ": " : "", tail ? tail : "");
	if (ret == 0)
		log_info("%s command (%s) done in %.1f s", ph->name, st->origin, now_mono() - t0);
	strbuf_release(&l.last);
	return ret;
}

int hooks_pre(struct hooks *h, struct err *e)
{
	struct err se = ERR_INIT;

	if (h->pre_began)
		return 0;
	h->pre_began = true;
	if (resolve(h, e) < 0)
		return -1;
	for (size_t i = 0; i < h->pre.nr; i++) {
		if (signals_pending())
			return err_set(e, LB_EXIT_INTERRUPTED,
				       "interrupted by signal %d before the %s commands",
				       signals_pending(), h->pre.name);
		if (run_step(h, &h->pre, &h->pre.v[i], true, &se) < 0)
			return err_wrap(e, &se, "%s",
					h->restore ? "nothing was restored: "
						   : "nothing was backed up: ");
	}
	return 0;
}

int hooks_post(struct hooks *h, struct err *e)
{
	if (!h || !h->pre_began)
		return 0;
	if (!h->post_done) {
		h->post_done = true;
		for (size_t i = 0; i < h->post.nr; i++) {
			struct err se = ERR_INIT;
			if (run_step(h, &h->post, &h->post.v[i], false, &se) < 0) {
				log_error("%s", se.msg);
				err_copy(&h->post_err, &se);
			}
		}
	}
	return err_isset(&h->post_err) ? err_copy(e, &h->post_err) : 0;
}

json_t *hooks_outcomes(const struct hooks *h)
{
	return h->outcomes;
}

void hooks_free(struct hooks *h)
{
	if (!h)
		return;
	phase_release(&h->pre);
	phase_release(&h->post);
	docker_free(h->d);
	json_decref(h->outcomes);
	free(h);
}

/* ---- lifeboat check ---- */

void hooks_describe_labels(const struct config *cfg, struct strbuf *out)
{
	static const char *const keys[] = { LABEL_STOP, LABEL_PRE_BACKUP, LABEL_POST_BACKUP,
					    LABEL_PRE_RESTORE, LABEL_POST_RESTORE };
	struct docker *d = NULL;
	struct err e = ERR_INIT;
	size_t found = 0;

	if (docker_open(cfg->docker.host, &d, &e) < 0) {
		strbuf_addstr(out,
			      "container labels     (not looked up: no Docker engine answers)\n");
		return;
	}
	char *project = docker_self_project(d, NULL, &e);
	for (size_t k = 0; k < ARRAY_SIZE(keys) && !err_isset(&e); k++) {
		json_t *list = NULL, *c;
		size_t i;
		if (labels_find(d, project, cfg->name, keys[k], &list, &e) < 0)
			break;
		json_array_foreach (list, i, c) {
			const char *name = docker_container_name(c);
			found++;
			if (k == 0)
				strbuf_addf(out, "%-20s '%s' is stopped around each backup\n",
					    keys[k], name);
			else
				strbuf_addf(out, "%-20s '%s': %s\n", keys[k], name,
					    SHOW(docker_label(c, keys[k])));
		}
		json_decref(list);
	}
	if (err_isset(&e))
		strbuf_addf(out, "container labels     (not looked up: %s)\n", e.msg);
	else if (!found)
		strbuf_addf(
			out,
			"container labels     none select this sidecar (Compose project %s%s%s, "
			"lifeboat.name=%s)\n",
			project ? "'" : "", project ? project : "none", project ? "'" : "",
			cfg->name);
	free(project);
	docker_free(d);
}

/* ---- the configuration rows ---- */

/* Line `n` of `value`, for the message. */
static char *line_of(const char *value, unsigned n)
{
	const char *p = value;

	for (unsigned i = 1; i < n && p; i++) {
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return xstrndup(p ? p : "", p ? strcspn(p, "\r\n") : 0);
}

static int var_commands(CONFIG_PARSE_ARGS)
{
	const char *why = NULL;
	unsigned line = 0;
	CONFIG_UNUSED_ARGS;

	if (!value)
		return 0;
	if (cmdline_parse_list(value, true, FIELD(cfg, v, struct hook_list), &line, &why) == 0)
		return 0;
	auto_free char *text = line_of(value, line);
	return err_set(e, LB_EXIT_CONFIG, "%s line %u '%s': %s", v->name, line, SHOW(text), why);
}

static void describe_list(struct strbuf *out, const char *var, const struct hook_list *l)
{
	for (size_t i = 0; i < l->nr; i++) {
		const struct hook_cmd *c = &l->v[i];
		strbuf_addf(out, "%s line %u, in %s%s%s: %s\n", var, c->line, c->where ? "'" : "",
			    c->where ? c->where : "the sidecar", c->where ? "'" : "",
			    SHOW(c->text));
	}
}

static void describe_commands(const struct config *cfg, struct strbuf *out)
{
	const struct config_hooks *h = &cfg->hooks;

	describe_list(out, "BACKUP_PRE_COMMANDS", &h->pre_backup);
	describe_list(out, "BACKUP_POST_COMMANDS", &h->post_backup);
	describe_list(out, "BACKUP_PRE_RESTORE_COMMANDS", &h->pre_restore);
	describe_list(out, "BACKUP_POST_RESTORE_COMMANDS", &h->post_restore);
	strbuf_addf(out, "BACKUP_COMMAND_TIMEOUT %us\n", h->timeout);
}

#define CMD_FORM                                                                                  \
	"One per line: `SERVICE: command` (in that Compose service's or container's container, "  \
	"through the Docker exec API) or `: command` (in the sidecar); see [Commands before and " \
	"after](#commands-before-and-after)."

static const struct config_var rows[] = {
	{ "BACKUP_PRE_COMMANDS", 0, var_commands, OFF(hooks.pre_backup), 0, 0, NULL,
	  "Commands run before a backup, before any container is stopped and before anything is "
	  "read; the first that fails fails the run. " CMD_FORM,
	  NULL },
	{ "BACKUP_POST_COMMANDS", 0, var_commands, OFF(hooks.post_backup), 0, 0, NULL,
	  "Commands run after a backup on every path (success, failure, SIGTERM) once the pre "
	  "commands ran: right after the last source was read, with the restart of stopped "
	  "containers. " CMD_FORM,
	  NULL },
	{ "BACKUP_PRE_RESTORE_COMMANDS", 0, var_commands, OFF(hooks.pre_restore), 0, 0, NULL,
	  "Commands run by `restore` after the archive was verified, before containers are stopped "
	  "and anything is replaced; the first that fails fails the restore. " CMD_FORM,
	  NULL },
	{ "BACKUP_POST_RESTORE_COMMANDS", 0, var_commands, OFF(hooks.post_restore), 0, 0, NULL,
	  "Commands run after a restore on every path once the pre-restore commands ran, after the "
	  "containers were started again. " CMD_FORM,
	  NULL },
	{ "BACKUP_COMMAND_TIMEOUT", 0, config_var_duration, OFF(hooks.timeout), 1, 0, "5m",
	  "How long each of those commands (and each label's) may run: seconds, or `30s`, `5m`, "
	  "`1h`; default `5m`. A command in the sidecar is then killed; the run fails.",
	  describe_commands },
};
const struct config_var_group hooks_vars = CONFIG_VAR_GROUP(rows);

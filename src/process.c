/* A tool here (fork/exec) or in a container (Engine API exec): one start, read, write, finish. */
#include "common.h"

#include <fcntl.h>

#include "process.h"
#include "fs.h"
#include "strbuf.h"
#include "strvec.h"

int process_place_container(struct process_place *pl, const char *docker_host, const char *name,
			    struct err *e)
{
	if (docker_open(docker_host, &pl->d, e) < 0 ||
	    docker_find_container(pl->d, name, &pl->container, e) < 0) {
		process_place_release(pl);
		return -1;
	}
	return 0;
}

bool process_place_is_container(const struct process_place *pl)
{
	return pl && pl->container;
}

void process_place_release(struct process_place *pl)
{
	docker_free(pl->d);
	free(pl->container);
	*pl = (struct process_place)PROCESS_PLACE_INIT;
}

int process_start(struct process *p, const struct process_spec *spec, struct err *e)
{
	p->fail_code = spec->fail_code;
	if (process_place_is_container(spec->where)) {
		p->in_container = true;
		for (size_t i = 0; spec->env && spec->env[i]; i++)
			strvec_push(&p->env, spec->env[i]);
		if (docker_exec_start(spec->where->d, spec->where->container, spec->argv, p->env.v,
				      spec->want_stdin, &p->x, e) < 0)
			return -1;
		if (!spec->want_stdout)
			close_fd(&p->x.out_fd); /* the exec drains it */
		p->out_fd = p->x.out_fd;
		p->in_fd = p->x.in_fd;
		return 0;
	}
	for (size_t i = 0; spec->argv[i]; i++)
		strvec_push(&p->c.args, spec->argv[i]);
	child_env_default(&p->c.env);
	for (size_t i = 0; spec->env && spec->env[i]; i++)
		strvec_push(&p->c.env, spec->env[i]);
	p->c.out = spec->want_stdout ? CHILD_PIPE : CHILD_NULL;
	p->c.in = spec->want_stdin ? CHILD_PIPE : CHILD_NULL;
	int fd3[2] = { -1, -1 };
	if (spec->fd3_data) {
		size_t n = strlen(spec->fd3_data);
		if (n > 4096 || pipe2(fd3, O_CLOEXEC) < 0)
			return err_set(e, LB_EXIT_INTERNAL, "cannot pass a file to %s: %s",
				       spec->argv[0], n > 4096 ? "too long" : strerror(errno));
		int w = write_all(fd3[1], spec->fd3_data, n);
		close_fd(&fd3[1]);
		if (w < 0) {
			close_fd(&fd3[0]);
			return err_set(e, LB_EXIT_INTERNAL, "cannot pass a file to %s: %s",
				       spec->argv[0], strerror(-w));
		}
		p->c.fd3 = fd3[0];
	}
	int started = child_start(&p->c, spec->fail_code, e);
	close_fd(&fd3[0]); /* the child has its copy */
	p->c.fd3 = -1;
	if (started < 0)
		return -1;
	p->out_fd = p->c.out_fd;
	p->in_fd = p->c.in_fd;
	return 0;
}

ssize_t process_read(struct process *p, void *buf, size_t len)
{
	return read_retry(p->out_fd, buf, len);
}

int process_write(struct process *p, const void *buf, size_t len)
{
	return write_all(p->in_fd, buf, len);
}

void process_close_input(struct process *p)
{
	if (p->in_container)
		close_fd(&p->x.in_fd);
	else
		close_fd(&p->c.in_fd);
	p->in_fd = -1;
}

/* The last line of a stderr tail. */
static void last_line(const char *tail, struct strbuf *out)
{
	size_t n = strlen(tail);

	while (n && (tail[n - 1] == '\n' || tail[n - 1] == ' '))
		n--;
	const char *line = tail + n;
	while (line > tail && line[-1] != '\n')
		line--;
	strbuf_add(out, line, (size_t)(tail + n - line));
}

int process_finish(struct process *p, const char *what, struct err *e)
{
	struct strbuf sum = STRBUF_INIT;
	char sbuf[64];
	int ret = 0;

	p->in_fd = p->out_fd = -1; /* closed below */
	if (p->in_container) {
		int code = -1;
		close_fd(&p->x.in_fd);
		if (docker_exec_finish(&p->x, &code, e) < 0)
			return -1;
		if (code == 0)
			return 0;
		last_line(docker_exec_stderr(&p->x), &sum);
		ret = err_set(e, p->fail_code, "%s failed (exit status %d in the container)%s%s",
			      what, code, sum.len ? ": " : "", sum.buf);
	} else {
		int status = child_finish(&p->c);
		if (status == 0)
			return 0;
		const char *why = child_err_summary(&p->c, &sum);
		ret = err_set(e, p->fail_code, "%s failed (%s)%s%s", what,
			      child_status_str(status, sbuf, sizeof(sbuf)), *why ? ": " : "", why);
	}
	strbuf_release(&sum);
	return ret;
}

void process_kill(struct process *p)
{
	p->in_fd = p->out_fd = -1;
	if (p->in_container) {
		struct err ignore = ERR_INIT;
		int code;
		close_fd(&p->x.out_fd);
		close_fd(&p->x.in_fd);
		docker_exec_finish(&p->x, &code, &ignore);
	} else if (p->c.pid > 0) {
		child_kill(&p->c);
	}
}

static void scrub_env(struct strvec *env)
{
	for (size_t i = 0; i < env->nr; i++)
		explicit_bzero(env->v[i], strlen(env->v[i]));
}

void process_release(struct process *p)
{
	scrub_env(&p->env);
	strvec_release(&p->env);
	docker_exec_release(&p->x);
	scrub_env(&p->c.env);
	child_release(&p->c);
}

/* fork/exec with owned pipes, an exec-error channel, and a stderr tail collector. */
#include "common.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "child.h"
#include "fs.h"
#include "log.h"
#include "strbuf.h"
#include "strvec.h"

#define ERR_TAIL_MAX 8192

extern char **environ;

void child_env_default(struct strvec *env)
{
	for (char **p = environ; *p; p++) {
		if (!strncmp(*p, "BACKUP_", 7))
			continue;
		strvec_push(env, *p);
	}
}

static void *async_main(void *arg)
{
	struct async *a = arg;

	a->result = a->proc(a->fd, a->data);
	close(a->fd);
	return NULL;
}

int async_start(struct async *a, struct err *e)
{
	a->result = -1;
	if (pthread_create(&a->thread, NULL, async_main, a) != 0) {
		close_fd(&a->fd);
		return err_set(e, LB_EXIT_INTERNAL, "cannot start a thread");
	}
	a->running = true;
	return 0;
}

int async_finish(struct async *a)
{
	if (a->running) {
		pthread_join(a->thread, NULL);
		a->running = false;
		a->fd = -1; /* closed by the thread */
	}
	return a->result;
}

bool async_running(const struct async *a)
{
	return a->running;
}

/* The child's stderr into its tail. */
static int err_pump(int fd, void *data)
{
	struct child *c = data;
	char buf[4096];

	for (;;) {
		ssize_t n = read_retry(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		strbuf_add(&c->err_tail, buf, (size_t)n);
		strbuf_keep_tail(&c->err_tail, ERR_TAIL_MAX);
	}
	return 0;
}

static LB_NORETURN void child_exec(struct child *c, int in, int out, int err, int fd3, int report)
{
	sigset_t all;

	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (c->own_group)
		setpgid(0, 0);

	/* Move the exec-error pipe out of the way of 0..3 first. */
	if (report < 4) {
		int r = fcntl(report, F_DUPFD_CLOEXEC, 4);
		report = r;
	}
	if (fd3 >= 0 && fd3 < 4)
		fd3 = fcntl(fd3, F_DUPFD, 4);
	if ((in != 0 && dup2(in, 0) < 0) || (out != 1 && dup2(out, 1) < 0) ||
	    (err != 2 && dup2(err, 2) < 0) || (fd3 >= 0 && dup2(fd3, 3) < 0))
		goto fail;
	/* dup2 onto the same number keeps CLOEXEC; clear it for 0..3. */
	for (int fd = 0; fd <= 3; fd++) {
		int fl = fcntl(fd, F_GETFD);
		if (fl >= 0)
			fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
	}
	execvpe(c->args.v[0], c->args.v, c->env.v);
fail:;
	int code = errno;
	ssize_t r LB_UNUSED = write(report, &code, sizeof(code));
	_exit(127);
}

int child_start(struct child *c, enum lb_exit missing_code, struct err *e)
{
	int inp[2] = { -1, -1 }, outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
	int report[2] = { -1, -1 };
	int nullfd = -1, in, out, code = 0;
	sigset_t all, old;
	ssize_t n;

	if (!c->env.nr)
		child_env_default(&c->env);
	nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nullfd < 0)
		return err_set(e, LB_EXIT_INTERNAL, "cannot open /dev/null: %s", strerror(errno));
	if ((c->in == CHILD_PIPE && pipe2(inp, O_CLOEXEC) < 0) ||
	    (c->out == CHILD_PIPE && pipe2(outp, O_CLOEXEC) < 0) || pipe2(errp, O_CLOEXEC) < 0 ||
	    pipe2(report, O_CLOEXEC) < 0) {
		int saved = errno;
		for (int i = 0; i < 2; i++) {
			close_fd(&inp[i]);
			close_fd(&outp[i]);
			close_fd(&errp[i]);
			close_fd(&report[i]);
		}
		close_fd(&nullfd);
		return err_set(e, LB_EXIT_INTERNAL, "cannot create pipe: %s", strerror(saved));
	}
	in = c->in == CHILD_PIPE ? inp[0] : c->in == CHILD_NULL ? nullfd : c->in;
	out = c->out == CHILD_PIPE ? outp[1] : c->out == CHILD_NULL ? nullfd : c->out;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	c->pid = fork();
	if (c->pid == 0)
		child_exec(c, in, out, c->err_to_out ? out : errp[1], c->fd3, report[1]);
	int fork_errno = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	close_fd(&inp[0]);
	close_fd(&outp[1]);
	close_fd(&errp[1]);
	close_fd(&report[1]);
	close_fd(&nullfd);
	c->in_fd = inp[1];
	c->out_fd = outp[0];
	if (c->pid < 0) {
		close_fd(&report[0]);
		close_fd(&c->in_fd);
		close_fd(&c->out_fd);
		close_fd(&errp[0]);
		return err_set(e, LB_EXIT_INTERNAL, "cannot fork: %s", strerror(fork_errno));
	}

	n = read_retry(report[0], &code, sizeof(code));
	close_fd(&report[0]);
	if (n == (ssize_t)sizeof(code)) {
		close_fd(&errp[0]);
		child_finish(c);
		if (code == ENOENT)
			return err_set(e, missing_code,
				       "cannot run '%s': not installed or not in PATH",
				       c->args.v[0]);
		return err_set(e, missing_code, "cannot run '%s': %s", c->args.v[0],
			       strerror(code));
	}

	c->err_tail.cap_max = 0;
	struct err ignored = ERR_INIT;
	c->err_pump = (struct async){ .proc = err_pump, .data = c, .fd = errp[0] };
	async_start(&c->err_pump, &ignored);
	log_debug("started '%s' as pid %d", c->args.v[0], (int)c->pid);
	return 0;
}

int child_finish(struct child *c)
{
	int status = 0;

	close_fd(&c->in_fd);
	close_fd(&c->out_fd);
	if (c->pid > 0) {
		while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
			;
		c->pid = -1;
	}
	async_finish(&c->err_pump);
	return status;
}

void child_signal(struct child *c, int sig)
{
	if (c->pid > 0)
		kill(c->own_group ? -c->pid : c->pid, sig);
}

void child_kill(struct child *c)
{
	if (c->pid > 0)
		kill(c->pid, SIGTERM);
	child_finish(c);
}

const char *child_status_str(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "ended with wait status %d", status);
	return buf;
}

const char *child_err_summary(struct child *c, struct strbuf *out)
{
	struct strbuf *t = &c->err_tail;
	size_t end = t->len, start;

	while (end && strchr(" \t\r\n", t->buf[end - 1]))
		end--;
	start = end;
	while (start && t->buf[start - 1] != '\n')
		start--;
	strbuf_reset(out);
	strbuf_add(out, t->buf + start, end - start);
	return out->buf;
}

void child_release(struct child *c)
{
	if (c->pid > 0)
		child_kill(c);
	close_fd(&c->in_fd);
	close_fd(&c->out_fd);
	strvec_release(&c->args);
	strvec_release(&c->env);
	strbuf_release(&c->err_tail);
}

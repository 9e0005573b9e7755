/* Running subprocesses with pipes we own: no shell, explicit argv and environment. */
#ifndef LB_CHILD_H
#define LB_CHILD_H

#include "common.h"

#include <pthread.h>

#include "err.h"
#include "util.h"

/* Values for child.in / child.out besides an fd to hand over. */
#define CHILD_NULL (-1) /* /dev/null */
#define CHILD_PIPE (-2) /* a pipe; the parent's end is left in in_fd/out_fd */

struct child {
	struct strvec args;
	struct strvec env; /* if empty, child_env_default() is used */
	int in;		   /* CHILD_NULL, CHILD_PIPE or an fd to become stdin */
	int out;	   /* CHILD_NULL, CHILD_PIPE or an fd to become stdout */
	int fd3;	   /* -1 or an fd to become fd 3 in the child */

	/* Filled by child_start. */
	pid_t pid;
	int in_fd;  /* parent's write end when in == CHILD_PIPE */
	int out_fd; /* parent's read end when out == CHILD_PIPE */
	int err_fd;
	pthread_t err_thread;
	bool err_thread_running;
	struct strbuf err_tail; /* last bytes of the child's stderr */
};
#define CHILD_INIT                                                                            \
	{                                                                                     \
		.args = STRVEC_INIT, .env = STRVEC_INIT, .in = CHILD_NULL, .out = CHILD_NULL, \
		.fd3 = -1, .pid = -1, .in_fd = -1, .out_fd = -1, .err_fd = -1,                \
		.err_tail = STRBUF_INIT                                                       \
	}

/* The environment children get: ours without any BACKUP_* variable. */
void child_env_default(struct strvec *env);

/*
 * Start the child. Its stderr is collected by a thread into err_tail.
 * Fails (LB_EXIT_INTERNAL unless the program is missing: `missing_code`)
 * when the program cannot be executed.
 */
int child_start(struct child *c, enum lb_exit missing_code, struct err *e);

/* Close our pipe ends, wait for exit, join the stderr thread; returns the wait status. */
int child_finish(struct child *c);

/* Kill (SIGTERM) a running child, then child_finish(). */
void child_kill(struct child *c);

/* Describe a wait status: "exited with status 2", "was killed by signal 9". */
const char *child_status_str(int status, char *buf, size_t len);

/* Last line of the stderr tail, stripped of a "prog: " prefix noise; never NULL. */
const char *child_err_summary(struct child *c, struct strbuf *out);

void child_release(struct child *c);

#endif

/* Running subprocesses with pipes we own: no shell, explicit argv and environment. */
#ifndef LB_CHILD_H
#define LB_CHILD_H

#include "common.h"

#include <pthread.h>

#include "err.h"
#include "strbuf.h"
#include "strvec.h"

/*
 * A pipe pump on a thread of its own, after git's `struct async`: `proc` runs with
 * one end of a pipe (or a socket) and moves bytes between it and whatever `data`
 * names, returning 0 or -1 (it records its own errors where `data` says; the
 * caller reads them after async_finish()).
 *
 * Who closes what: async_start() takes `fd`. The thread closes it as soon as
 * `proc` returns, so the other end sees EOF (or EPIPE) at once; if the thread
 * cannot start, async_start() closes it. The caller never touches `fd` again.
 */
struct async {
	int (*proc)(int fd, void *data);
	void *data;
	int fd;
	/* Private. */
	pthread_t thread;
	bool running;
	int result;
};
#define ASYNC_INIT                     \
	{                              \
		.fd = -1, .result = -1 \
	}

/* Start `proc` on its thread; fails (LB_EXIT_INTERNAL) only when no thread can start. */
int async_start(struct async *a, struct err *e);

/* Wait for `proc` to return; its result (-1 if it never started). Idempotent. */
int async_finish(struct async *a);

/* Started and not yet finished. */
bool async_running(const struct async *a);

/* Values for child.in / child.out besides an fd to hand over. */
#define CHILD_NULL (-1) /* /dev/null */
#define CHILD_PIPE (-2) /* a pipe; the parent's end is left in in_fd/out_fd */

/*
 * A child process. Who closes what:
 * - an fd given in `in`, `out` or `fd3` stays the caller's: child_start() dups
 *   it into the child and never closes the caller's copy;
 * - with CHILD_PIPE, the parent's end (in_fd, out_fd) belongs to the struct:
 *   the caller may close it early with close_fd() (in_fd to send EOF, out_fd to
 *   stop reading), or take it (copy it and set the field to -1, then it is the
 *   taker's to close); child_finish() closes whatever is left;
 * - the child's stderr is read by an async of the struct's own (err_pump) into
 *   err_tail, and closed by it.
 */
struct child {
	struct strvec args;
	struct strvec env; /* if empty, child_env_default() is used */
	int in;		   /* CHILD_NULL, CHILD_PIPE or an fd to become stdin */
	int out;	   /* CHILD_NULL, CHILD_PIPE or an fd to become stdout */
	int fd3;	   /* -1 or an fd to become fd 3 in the child */
	bool err_to_out;   /* its stderr goes where its stdout goes (no err_tail) */
	bool own_group;	   /* in a process group of its own: child_signal() reaches all */

	/* Filled by child_start. */
	pid_t pid;
	int in_fd;  /* parent's write end when in == CHILD_PIPE */
	int out_fd; /* parent's read end when out == CHILD_PIPE */
	struct async err_pump;
	struct strbuf err_tail; /* last bytes of the child's stderr */
};
#define CHILD_INIT                                                                            \
	{                                                                                     \
		.args = STRVEC_INIT, .env = STRVEC_INIT, .in = CHILD_NULL, .out = CHILD_NULL, \
		.fd3 = -1, .pid = -1, .in_fd = -1, .out_fd = -1, .err_pump = ASYNC_INIT,      \
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

/* Close our pipe ends left open, wait for exit, finish the stderr pump; the wait status. */
int child_finish(struct child *c);

/* Send `sig` to a running child (and, with own_group, everything in its group). */
void child_signal(struct child *c, int sig);

/* Kill (SIGTERM) a running child, then child_finish(). */
void child_kill(struct child *c);

/* Describe a wait status: "exited with status 2", "was killed by signal 9". */
const char *child_status_str(int status, char *buf, size_t len);

/* Last line of the stderr tail, stripped of a "prog: " prefix noise; never NULL. */
const char *child_err_summary(struct child *c, struct strbuf *out);

void child_release(struct child *c);

#endif

/*
 * A client tool run here (a child, child.h) or inside a container through the
 * Docker Engine API's exec (docker.h), behind one interface: start it, write its
 * stdin and/or read its stdout, then finish (the exit judged, with the last line
 * of its stderr) or kill. Which place to choose is the caller's business (a source
 * module's rule, e.g. PostgreSQL's BACKUP_POSTGRES_DUMP); this is the mechanism.
 */
#ifndef LB_PROCESS_H
#define LB_PROCESS_H

#include "common.h"

#include "child.h"
#include "docker.h"
#include "err.h"
#include "strvec.h"

/* Where tools run: here (all zero), or in one container of the engine. */
struct process_place {
	struct docker *d; /* NULL: here */
	char *container;  /* the container's id */
};
#define PROCESS_PLACE_INIT \
	{                  \
		0          \
	}

/*
 * Find the container `name` (a Compose service or a container name, as
 * docker_find_container does) on the engine at `docker_host` (NULL: the default):
 * the place's tools then run there. On failure the place stays "here".
 */
int process_place_container(struct process_place *pl, const char *docker_host, const char *name,
			    struct err *e);
bool process_place_is_container(const struct process_place *pl);
void process_place_release(struct process_place *pl);

struct process_spec {
	char *const *argv; /* NULL-terminated */
	char *const *env;  /* "K=V" (secrets go here, never argv); NULL-terminated or NULL */
	const struct process_place *where; /* NULL: here */
	bool want_stdin;	/* else stdin is /dev/null (here) or not attached (exec) */
	bool want_stdout;	/* else stdout is /dev/null (here) or dropped (exec) */
	enum lb_exit fail_code; /* the error code when the tool cannot run or fails */
	/*
	 * Here only: bytes the tool reads from fd 3 (a pipe written and closed before it
	 * starts, so at most a pipe buffer): a secret it takes as a file, e.g.
	 * `--defaults-extra-file=/dev/fd/3`. NULL: no fd 3.
	 */
	const char *fd3_data;
};

/*
 * A running tool. Who closes what: its stdin and stdout ends are the process's;
 * process_close_input() sends EOF, process_finish()/process_kill() close what is
 * left. Here, the environment is ours without BACKUP_* plus spec->env; in a
 * container, spec->env only (on top of the container's own). Our copies of
 * spec->env are zeroed on release.
 */
struct process {
	bool in_container;
	struct child c;
	struct docker_exec x;
	struct strvec env; /* the container's copy of spec->env */
	int in_fd, out_fd; /* borrowed from c or x */
	enum lb_exit fail_code;
};
#define PROCESS_INIT                                                                     \
	{                                                                                \
		.c = CHILD_INIT, .x = DOCKER_EXEC_INIT, .env = STRVEC_INIT, .in_fd = -1, \
		.out_fd = -1                                                             \
	}

int process_start(struct process *p, const struct process_spec *spec, struct err *e);

/* Its stdout: read_retry()'s answer (0 at the end). */
ssize_t process_read(struct process *p, void *buf, size_t len);

/* Its stdin: write_all()'s answer (-EPIPE once it stopped reading). */
int process_write(struct process *p, const void *buf, size_t len);

/* No more input: the tool sees EOF. */
void process_close_input(struct process *p);

/*
 * Close what is left, wait, and judge the exit: 0, or `what` failed with the exit
 * status and the last line of its stderr (spec->fail_code).
 */
int process_finish(struct process *p, const char *what, struct err *e);

/* Our side failed: stop it (here: SIGTERM) and wait; nothing is judged. */
void process_kill(struct process *p);

void process_release(struct process *p);

#endif

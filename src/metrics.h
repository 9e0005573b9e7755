/* BACKUP_METRICS_ADDR: /metrics (Prometheus text) and /healthz over libmicrohttpd (dlopen). */
#ifndef LB_METRICS_H
#define LB_METRICS_H

#include "common.h"

#include "config.h"
#include "err.h"
#include "strbuf.h"

struct metrics;

/*
 * The listening socket for cfg->daemon.metrics_addr (close-on-exec): a bad address or a
 * port that cannot be bound is a configuration error (LB_EXIT_CONFIG) naming the variable.
 * `lifeboat run` opens it at start and hands it to lifeboat-sched.
 */
int metrics_listen(const struct config *cfg, int *ret_fd, struct err *e);

/*
 * Serve /metrics and /healthz on the listening socket `fd` (from metrics_listen; the
 * server owns it from now on) in a thread of its own; values come from the state file.
 * libmicrohttpd is loaded here (dlopen), so a process that never calls this maps none of it.
 */
int metrics_start(const struct config *cfg, int fd, struct metrics **ret, struct err *e);
void metrics_stop(struct metrics *m);

/* The Prometheus text for the current state file (also used by tests). */
void metrics_render(const struct config *cfg, struct strbuf *out);

#endif

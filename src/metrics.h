/* BACKUP_METRICS_ADDR: /metrics (Prometheus text) and /healthz over libmicrohttpd. */
#ifndef LB_METRICS_H
#define LB_METRICS_H

#include "common.h"

#include "config.h"
#include "err.h"
#include "strbuf.h"

struct metrics;

/* Listen on cfg->daemon.metrics_addr in a thread of its own; values come from the state file. */
int metrics_start(const struct config *cfg, struct metrics **ret, struct err *e);
void metrics_stop(struct metrics *m);

/* The Prometheus text for the current state file (also used by tests). */
void metrics_render(const struct config *cfg, struct strbuf *out);

#endif

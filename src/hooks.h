/*
 * Commands run before and after a backup or restore: BACKUP_*_COMMANDS (in the sidecar or
 * in a named container) and the lifeboat.pre-/post- labels of the application's
 * containers (in the labelled container). The job runner calls them around the stop and
 * the restart of containers; each command's output goes to the log line by line and its
 * outcome into the webhook body.
 */
#ifndef LB_HOOKS_H
#define LB_HOOKS_H

#include "common.h"

#include <jansson.h>

#include "config-vars.h"
#include "config.h"
#include "err.h"
#include "strbuf.h"

/* BACKUP_PRE_COMMANDS ... BACKUP_COMMAND_TIMEOUT: rows of the configuration table. */
extern const struct config_var_group hooks_vars;

/* Does a configured command name a container (so the Docker engine is needed)? */
bool hooks_use_docker(const struct config *cfg);

/* One run's commands (a backup's, or with `restore` a restore's) and their outcomes. */
struct hooks;
struct hooks *hooks_new(const struct config *cfg, bool restore);

/*
 * Look up the labels, then run the pre commands in order (the variable's, then the
 * labels', containers by name), stopping at the first that fails: non-zero exit, not
 * startable, or BACKUP_COMMAND_TIMEOUT. Fails with LB_EXIT_SOURCE (a bad label:
 * LB_EXIT_CONFIG; a signal: LB_EXIT_INTERRUPTED). From then on hooks_post() runs the post
 * commands, whatever happened.
 */
int hooks_pre(struct hooks *h, struct err *e);

/*
 * Run every post command once (later calls return the first call's verdict), if
 * hooks_pre() was called; a pending signal does not stop them. Fails (LB_EXIT_SOURCE)
 * naming the first that failed.
 */
int hooks_post(struct hooks *h, struct err *e);

/* Every command's outcome so far, a JSON array for the webhook body (borrowed). */
json_t *hooks_outcomes(const struct hooks *h);

void hooks_free(struct hooks *h);

/* `lifeboat check`: what the labels select, when the Docker engine answers. */
void hooks_describe_labels(const struct config *cfg, struct strbuf *out);

#endif

/* Containers stopped around a backup or restore, and the promise to start them again. */
#ifndef LB_SERVICES_H
#define LB_SERVICES_H

#include "common.h"

#include "config.h"
#include "err.h"

/*
 * The set of containers (or Swarm services, scaled to 0) a run stops. Before
 * the first stop, the whole set is written to STATE_DIR/NAME.stopped.json so
 * that, if we die without restarting them, services_recover() at the next
 * start does it. Callers hold the run lock (job_lock) while a set exists.
 */
struct services;

/* A set for `cfg` (nothing resolved, nothing stopped); never NULL. */
struct services *services_new(const struct config *cfg);

/*
 * Resolve BACKUP_STOP_SERVICES (when set) before anything is stopped: each
 * name as a service of our own Compose project, else a container name, else
 * a Swarm service. A name matching nothing fails (exit 3); so does a missing
 * Docker socket, with a message saying how to mount it. Then, when the engine
 * answers, the running containers a lifeboat.stop label selects (labels.h).
 */
int services_resolve_named(struct services *s, struct err *e);

/*
 * Every running container of our Compose project except ourselves. Without a
 * Docker socket or outside Compose it logs that it will restore without
 * stopping anything, and succeeds with an empty set.
 */
int services_resolve_project(struct services *s);

/*
 * Stop the resolved set (graceful stops; Swarm services scaled to 0), then
 * wait BACKUP_STOP_WAIT. On failure or a signal, what was stopped stays in the
 * set: services_restart() must still be called (it always is, on every path).
 */
int services_stop(struct services *s, struct err *e);

/*
 * Start what services_stop() stopped (only containers that were running),
 * dependencies first; remove the state file when all are up. Idempotent, and
 * it works with a signal pending. Fails naming what could not be started
 * (the state file then stays for the next start to retry).
 */
int services_restart(struct services *s, struct err *e);

/* Wait what is left of BACKUP_START_WAIT since the restart (cut short by a signal); free. */
void services_finish(struct services *s);

/*
 * Start what a killed run left stopped (the state file), and log it. Call
 * with the run lock held. Problems are logged; returns -1 if some remain down.
 */
int services_recover(const struct config *cfg);

/*
 * Order services so that each comes after those it depends on, given each
 * one's com.docker.compose.depends_on label ("db:service_started:false,..."
 * or "db,cache"). Stable otherwise; a cycle comes last, in input order. `order`
 * gets indexes into `names`. Pure, for tests.
 */
void services_dependency_order(const char *const *names, const char *const *depends_on, size_t nr,
			       size_t *order);

#endif

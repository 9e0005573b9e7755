/*
 * The lifeboat.* labels on the application's containers: which containers a sidecar's
 * labels select. A container belongs to this sidecar when it carries
 * lifeboat.name=<BACKUP_NAME>, or, carrying no lifeboat.name, when it is in the
 * sidecar's own Compose project; lifeboat.stop=<BACKUP_NAME> selects it anywhere.
 */
#ifndef LB_LABELS_H
#define LB_LABELS_H

#include "common.h"

#include <jansson.h>

#include "docker.h"
#include "err.h"

#define LABEL_NAME	   "lifeboat.name"
#define LABEL_STOP	   "lifeboat.stop"
#define LABEL_PRE_BACKUP   "lifeboat.pre-backup"
#define LABEL_POST_BACKUP  "lifeboat.post-backup"
#define LABEL_PRE_RESTORE  "lifeboat.pre-restore"
#define LABEL_POST_RESTORE "lifeboat.post-restore"

/*
 * Is the container (inspect or list entry) this sidecar's? `project` is the sidecar's
 * Compose project (NULL outside Compose), `name` its BACKUP_NAME. Pure.
 */
bool labels_in_scope(const json_t *c, const char *project, const char *name);

/* Does its lifeboat.stop label select it (true and in scope, or naming `name`)? Pure. */
bool labels_stop_selected(const json_t *c, const char *project, const char *name);

/*
 * The running containers carrying `label` that are this sidecar's (for LABEL_STOP: that
 * it selects), sorted by name, as a new JSON array (caller decrefs).
 */
int labels_find(struct docker *d, const char *project, const char *name, const char *label,
		json_t **ret_array, struct err *e);

#endif

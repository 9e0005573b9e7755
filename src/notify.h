/*
 * Notifications people read (BACKUP_NOTIFY_URLS): a title and a body for a run's
 * outcome, sent to every configured service through http.c (SMTP too), retried like
 * the webhooks; a failed delivery is logged and never changes the run's result.
 */
#ifndef LB_NOTIFY_H
#define LB_NOTIFY_H

#include "common.h"

#include <time.h>

#include "config-vars.h"
#include "config.h"
#include "err.h"
#include "notify-url.h"
#include "strbuf.h"

/* What happened, as job.c knows it. */
struct notify_event {
	const char *status; /* start, success, failure, interrupted */
	bool scheduled;
	time_t started;
	double duration;    /* seconds; < 0: unknown (a run found killed) */
	uint64_t size;	    /* archive bytes, on success */
	const char *file;   /* the archive, or NULL */
	const char *stores; /* "local, s3": where the archive is */
	const char *error;  /* what failed, or NULL */
	bool recovered;	    /* a success after a failed run */
	const char *json;   /* the webhook body, for generic+http(s) services */
	const char *job;    /* "backup" (NULL), or "restore drill" / "verification" */
};

/* The title and body of `ev` (BACKUP_NOTIFY_TEMPLATE when set); `log` holds the last lines. */
void notify_compose(const struct config *cfg, const struct notify_event *ev, const char *host,
		    const char *log, struct strbuf *title, struct strbuf *body);

/*
 * Tell every service, when BACKUP_NOTIFY_LEVEL wants this event. Logs each delivery's
 * outcome (a failure is a warning); never fails.
 */
void notify_send(const struct config *cfg, const struct notify_event *ev);

/*
 * One delivery of `title` and `body` to `s` (retried: 3 attempts). `json` is the webhook
 * body for generic services. Errors name the service by its redacted URL.
 */
int notify_deliver(const struct notify_service *s, const char *title, const char *body,
		   const char *status, const char *json, struct err *e);

/* The BACKUP_NOTIFY_* rows of the configuration table. */
extern const struct config_var_group notify_vars;

#endif

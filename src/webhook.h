/* POST a JSON body to a notification URL (libcurl), with timeouts and a few retries. */
#ifndef LB_WEBHOOK_H
#define LB_WEBHOOK_H

#include "common.h"

#include "err.h"

/*
 * POST `body` (JSON) to `url`. `var` names the variable the URL came from: it
 * is used in errors instead of the URL, which may carry a token. Retries
 * connection failures, timeouts, 429 and 5xx (3 attempts in all).
 */
int webhook_post(const char *url, const char *var, const char *body, struct err *e);

#endif

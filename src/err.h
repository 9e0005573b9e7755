/* Error context carried beside return codes: a category (the exit code) and one message. */
#ifndef LB_ERR_H
#define LB_ERR_H

#include "common.h"

/* Exit codes; documented in README.md. */
enum lb_exit {
	LB_OK = 0,
	LB_EXIT_INTERNAL = 1,
	LB_EXIT_USAGE = 2,
	LB_EXIT_CONFIG = 3,
	LB_EXIT_SOURCE = 4,
	LB_EXIT_STORE = 5,
	LB_EXIT_CRYPTO = 6,
	LB_EXIT_INTEGRITY = 7,
	LB_EXIT_NOT_FOUND = 8,
	LB_EXIT_BUSY = 9, /* another run held the lock for BACKUP_LOCK_TIMEOUT */
	LB_EXIT_INTERRUPTED = 130,
};

/*
 * The innermost layer that fails fills it; the first message wins, so outer
 * layers may call err_set() again without hiding the root cause.
 */
struct err {
	enum lb_exit code;
	char msg[1024];
};
#define ERR_INIT              \
	{                     \
		.code = LB_OK \
	}

/* Record an error (if none is recorded yet) and return -1. */
int err_set(struct err *e, enum lb_exit code, const char *fmt, ...) LB_PRINTF(3, 4);
/* Record `cause`'s error as it is into `e` (first wins); -1. For handing an error outward. */
int err_copy(struct err *e, const struct err *cause);
/* Record `cause` with a prefix ("the backup succeeded, but " + its message); -1. */
int err_wrap(struct err *e, const struct err *cause, const char *fmt, ...) LB_PRINTF(3, 4);
bool err_isset(const struct err *e);
void err_clear(struct err *e);

#endif

/* First-message-wins error context. */
#include "common.h"

#include "err.h"

int err_set(struct err *e, enum lb_exit code, const char *fmt, ...)
{
	va_list ap;

	if (!e || e->code != LB_OK)
		return -1;
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

bool err_isset(const struct err *e)
{
	return e->code != LB_OK;
}

void err_clear(struct err *e)
{
	e->code = LB_OK;
	e->msg[0] = '\0';
}

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

int err_copy(struct err *e, const struct err *cause)
{
	return err_set(e, cause->code, "%s", cause->msg);
}

int err_wrap(struct err *e, const struct err *cause, const char *fmt, ...)
{
	char prefix[sizeof(e->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	return err_set(e, cause->code, "%s%s", prefix, cause->msg);
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

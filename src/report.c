/* The warning sink of modules that never log. */
#include "common.h"

#include "report.h"
#include "strbuf.h"

void report_v(const struct reporter *r, enum log_level level, const char *fmt, va_list ap)
{
	struct strbuf msg = STRBUF_INIT;

	if (!r || !r->fn)
		return;
	strbuf_vaddf(&msg, fmt, ap);
	r->fn(r->ud, level, msg.buf);
	strbuf_release(&msg);
}

void report(const struct reporter *r, enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report_v(r, level, fmt, ap);
	va_end(ap);
}

static void to_log(void *ud, enum log_level level, const char *msg)
{
	(void)ud;
	log_msg(level, "%s", msg);
}

const struct reporter report_log = { .fn = to_log };

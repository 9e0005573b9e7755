/* The warning sink of modules that never log. */
#include "common.h"

#include "report.h"
#include "util.h"

void report(const struct reporter *r, enum log_level level, const char *fmt, ...)
{
	struct strbuf msg = STRBUF_INIT;
	va_list ap;

	if (!r || !r->fn)
		return;
	va_start(ap, fmt);
	strbuf_vaddf(&msg, fmt, ap);
	va_end(ap);
	r->fn(r->ud, level, msg.buf);
	strbuf_release(&msg);
}

static void to_log(void *ud, enum log_level level, const char *msg)
{
	(void)ud;
	log_msg(level, "%s", msg);
}

const struct reporter report_log = { .fn = to_log };

/* Cron expressions (5 fields, optional leading seconds) and their next fire time in TZ. */
#ifndef LB_CRON_H
#define LB_CRON_H

#include "common.h"

#include <time.h>

#include "err.h"

struct cron {
	uint64_t sec;  /* bit n: second n (0-59); only bit 0 without a seconds field */
	uint64_t min;  /* bit n: minute n (0-59) */
	uint32_t hour; /* bit n: hour n (0-23) */
	uint32_t dom;  /* bit n: day of month n (1-31) */
	uint16_t mon;  /* bit n: month n (1-12) */
	uint8_t dow;   /* bit n: weekday n (0 = Sunday .. 6) */
	bool dom_star; /* day-of-month field started with '*' (Vixie day matching) */
	bool dow_star; /* day-of-week field started with '*' */
	bool has_seconds;
};

/*
 * Parse `expr`: "m h dom mon dow", "s m h dom mon dow", or @hourly, @daily
 * (@midnight), @weekly, @monthly, @yearly (@annually). On failure e holds one
 * line naming the bad field, for the caller to prefix with the variable name.
 */
int cron_parse(const char *expr, struct cron *ret, struct err *e);

/*
 * The first fire time strictly after `after`, in the current TZ (call tzset()
 * first). A wall-clock time that does not exist (DST gap) fires once at the
 * first instant after the gap; a repeated wall-clock time (DST overlap) fires
 * once, at its first occurrence. Returns -1 if nothing fires within 30 years.
 */
int cron_next(const struct cron *c, time_t after, time_t *ret);

#endif

/*
 * Where a module sends what is not an error but belongs in the log (a file
 * that vanished while it was backed up, a warning of libarchive's): modules
 * never log, whoever runs them hands them a sink (report_log: the log).
 */
#ifndef LB_REPORT_H
#define LB_REPORT_H

#include "common.h"

#include "log.h"

typedef void report_fn(void *ud, enum log_level level, const char *msg);

struct reporter {
	report_fn *fn; /* NULL: dropped */
	void *ud;
};

/* Send one message to `r` (NULL: dropped). */
void report(const struct reporter *r, enum log_level level, const char *fmt, ...) LB_PRINTF(3, 4);
void report_v(const struct reporter *r, enum log_level level, const char *fmt, va_list ap)
	LB_PRINTF(3, 0);

/* The sink that logs each message at its level. */
extern const struct reporter report_log;

#endif

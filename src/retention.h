/* Which archives to delete: a pure decision over timestamps and the retention rules. */
#ifndef LB_RETENTION_H
#define LB_RETENTION_H

#include "common.h"

#include <time.h>

/* 0 switches a rule off. A backup is kept when any rule keeps it. */
struct retention_rules {
	int days;	  /* BACKUP_RETENTION_DAYS: keep those at most N days old */
	int keep_last;	  /* the N newest */
	int keep_daily;	  /* the newest of each of the N newest days that have backups */
	int keep_weekly;  /* ... ISO weeks */
	int keep_monthly; /* ... calendar months */
};

/* Is any rule set? Without one nothing is ever deleted. */
bool retention_enabled(const struct retention_rules *r);

/*
 * Decide for `n` backups (times in any order; days, weeks and months in the
 * current TZ) which to delete: ret_delete[i] is set for each, and the count
 * returned. The newest backup is always kept, and nothing is deleted when no
 * rule is set. The caller passes only archives of this backup name.
 */
size_t retention_decide(const struct retention_rules *r, const time_t *times, size_t n, time_t now,
			bool *ret_delete);

#endif

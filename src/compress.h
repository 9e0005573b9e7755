/* Compression choices: names, levels and how many threads the container may use. */
#ifndef LB_COMPRESS_H
#define LB_COMPRESS_H

#include "common.h"

#include "naming.h"

/* "gzip", "zstd" or "none": the manifest's and the config's spelling. */
const char *compression_name(enum compression c);

/* Parse a name (any case); false if it is none of the above. */
bool compression_parse(const char *s, enum compression *ret);

/* The level used when BACKUP_COMPRESSION_LEVEL is unset: gzip 6, zstd 3, none 0. */
int compression_default_level(enum compression c);

/* Valid BACKUP_COMPRESSION_LEVEL range: gzip 1-9, zstd 1-19 (none: 0-0). */
void compression_level_range(enum compression c, int *ret_min, int *ret_max);

/*
 * CPUs this process may use: the scheduler affinity mask, lowered by a cgroup
 * CPU quota (v2 cpu.max, or v1 cpu.cfs_quota_us / cpu.cfs_period_us), rounded
 * up; at least 1.
 */
unsigned compress_available_cpus(void);

/*
 * The quota in a cgroup v2 cpu.max text ("max 100000" or "150000 100000") as
 * CPUs rounded up; 0 when unlimited or unreadable.
 */
unsigned compress_parse_cpu_max(const char *text);

/*
 * The cgroup quota as CPUs rounded up (at most 4096), 0 when unlimited: from the
 * v2 cpu.max text when given (non-NULL), else from the v1 cpu.cfs_quota_us and
 * cpu.cfs_period_us texts (a quota of -1 is unlimited); NULL for a file that
 * could not be read. Pure, for tests.
 */
unsigned compress_cgroup_cpus(const char *cpu_max, const char *cfs_quota, const char *cfs_period);

#endif

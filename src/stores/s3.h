/* S3 store internals exposed for unit tests. */
#ifndef LB_S3_H
#define LB_S3_H

#include "common.h"

/*
 * Size of multipart part number `part` (1-based) for a configured floor:
 * doubles every 1,000 parts, at most 5 GiB, so 10,000 parts are never
 * exceeded before S3's 5 TiB object limit (4.9 TiB with the 5 MiB floor).
 */
uint64_t s3_part_size(uint64_t floor, unsigned part);

#endif

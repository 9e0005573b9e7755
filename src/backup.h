/* One backup run: sources -> tar (libarchive) -> gzip -> gpg -> every store, as one stream. */
#ifndef LB_BACKUP_H
#define LB_BACKUP_H

#include "common.h"

#include "config.h"
#include "err.h"
#include "naming.h"

struct backup_result {
	struct backup_id id;
	char *file;
	uint64_t archive_bytes;
	uint64_t files;
	uint64_t content_bytes;
};

int backup_run(const struct config *cfg, struct backup_result *ret, struct err *e);
void backup_result_release(struct backup_result *r);

#endif

/* The table of database source kinds. */
#include "common.h"

#include "dbsource.h"

const struct db_ops *db_ops_for(enum source_kind kind)
{
	switch (kind) {
	case SOURCE_POSTGRES:
		return &postgres_ops;
	case SOURCE_MONGODB:
		return &mongodb_ops;
	case SOURCE_DIR:
	case SOURCE_FILE:
		break;
	}
	return NULL;
}

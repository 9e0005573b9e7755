/* PostgreSQL sources: native dump and restore with libmongoc (being built). */
#include "common.h"

#include "dbsource.h"

static int postgres_backup(const struct config *cfg, const struct source_spec *s,
			   struct member_sink *sink, struct err *e)
{
	(void)cfg;
	(void)sink;
	return err_set(e, LB_EXIT_SOURCE, "PostgreSQL source '%s': not implemented yet", s->name);
}

static int postgres_restore_begin(const struct db_restore_req *req, void **ctx, struct err *e)
{
	*ctx = NULL;
	return err_set(e, LB_EXIT_SOURCE, "PostgreSQL source '%s': not implemented yet", req->name);
}

static int postgres_restore_member(void *ctx, const char *rel, struct member_reader *r,
				   struct err *e)
{
	(void)ctx;
	(void)r;
	return err_set(e, LB_EXIT_SOURCE, "PostgreSQL member '%s': not implemented yet", rel);
}

static int postgres_restore_end(void *ctx, bool ok, struct err *e)
{
	(void)ctx;
	(void)ok;
	(void)e;
	return 0;
}

const struct db_ops postgres_ops = {
	.kind = SOURCE_POSTGRES,
	.backup = postgres_backup,
	.restore_begin = postgres_restore_begin,
	.restore_member = postgres_restore_member,
	.restore_end = postgres_restore_end,
};

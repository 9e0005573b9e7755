/* MySQL/MariaDB dump: mariadb-dump of each database (and the users and grants) into the sink. */
#include "common.h"

#include "log.h"
#include "sources/mysql.h"
#include "strbuf.h"
#include "stream/member-sink.h"
#include "strvec.h"
#include "xalloc.h"

/* The dump tool's stdout into member `rel`, as it comes (no temporary copy). */
static int run_dump(const struct my_conn *mc, struct strvec *args, struct member_sink *sink,
		    const char *rel, const char *what, struct err *e)
{
	struct process p = PROCESS_INIT;
	int ret = -1;

	if (my_start(&p, mc, args, true, false, e) == 0 &&
	    (ret = sink_from_process(sink, &p, rel, args->v[0], what, e)) < 0)
		my_scrub(mc, e);
	process_release(&p);
	return ret;
}

static int dump_database(const struct my_conn *mc, const char *db, struct member_sink *sink,
			 struct err *e)
{
	struct strvec args = STRVEC_INIT;
	struct strbuf rel = STRBUF_INIT;
	char *what = xasprintf("%s of database '%s' (%s)", mc->dump_tool, db, mc->redacted);

	strvec_push(&args, mc->dump_tool);
	/* InnoDB tables from one snapshot, without locking writers (MyISAM: see README). */
	strvec_push(&args, "--single-transaction");
	strvec_push(&args, "--routines");
	strvec_push(&args, "--triggers");
	strvec_push(&args, "--events");
	strvec_push(&args, "--hex-blob");
	strvec_push(&args, "--default-character-set=utf8mb4");
	strvec_push(&args, "--quick");
	strvec_push(&args, "--no-tablespaces");
	strvec_push(&args, "--max-allowed-packet=1G");
	strvec_push(&args, "--");
	strvec_push(&args, db);
	my_encode_name(&rel, db);
	strbuf_addstr(&rel, MY_DUMP_SUFFIX);
	log_info("dumping MySQL database '%s'", db);
	int ret = run_dump(mc, &args, sink, rel.buf, what, e);
	strvec_release(&args);
	strbuf_release(&rel);
	free(what);
	return ret;
}

/* 'user'@'host' as string literals. */
static void account(MYSQL *c, struct strbuf *sb, const char *user, const char *host)
{
	const char *parts[2] = { user, host };
	for (int i = 0; i < 2; i++) {
		size_t n = strlen(parts[i]);
		char *esc = xmalloc(2 * n + 1);
		mysql_real_escape_string(c, esc, parts[i], (unsigned long)n);
		strbuf_addf(sb, "%s'%s'", i ? "@" : "", esc);
		free(esc);
	}
}

/*
 * A GRANT line without its IDENTIFIED part (MariaDB prints the password hash
 * there; restoring grants must not change the password of a user that exists).
 */
static void add_grant(struct strbuf *out, const char *g)
{
	const char *id = strstr(g, " IDENTIFIED ");
	if (!id) {
		strbuf_addf(out, "%s;\n", g);
		return;
	}
	const char *with = strstr(id, " WITH ");
	strbuf_add(out, g, (size_t)(id - g));
	strbuf_addf(out, "%s;\n", with ? with : "");
}

/* Every account but the server's own: SHOW CREATE USER and SHOW GRANTS. */
static int dump_users(const struct my_conn *mc, MYSQL *c, struct member_sink *sink, struct err *e)
{
	static const char list[] =
		"SELECT User, Host FROM mysql.user WHERE User <> '' AND User NOT IN "
		"('mariadb.sys', 'mysql.sys', 'mysql.session', 'mysql.infoschema', 'PUBLIC')";
	struct strbuf out = STRBUF_INIT, q = STRBUF_INIT;
	struct err scratch = ERR_INIT;
	int ret = -1;

	/* MariaDB's roles are rows of mysql.user too; they have no CREATE USER. */
	MYSQL_RES *users = my_select(mc, c, "list users",
				     "SELECT User, Host FROM mysql.user "
				     "WHERE is_role = 'N' AND User <> '' AND "
				     "User NOT IN ('mariadb.sys', 'PUBLIC') "
				     "ORDER BY User, Host",
				     &scratch);
	if (!users && !(users = my_select(mc, c, "list users", list, e)))
		return -1;
	strbuf_addf(&out, "-- Users and grants (lifeboat): load with `mariadb < %s`\n",
		    MY_USERS_MEMBER);
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(users))) {
		strbuf_reset(&q);
		strbuf_addstr(&q, "SHOW CREATE USER ");
		account(c, &q, row[0], row[1]);
		MYSQL_RES *r = my_select(mc, c, "read a user", q.buf, e);
		if (!r)
			goto out;
		MYSQL_ROW cr = mysql_fetch_row(r);
		if (cr && cr[0] && !strncmp(cr[0], "CREATE USER ", 12))
			strbuf_addf(&out, "CREATE USER IF NOT EXISTS %s;\n", cr[0] + 12);
		mysql_free_result(r);
		strbuf_reset(&q);
		strbuf_addstr(&q, "SHOW GRANTS FOR ");
		account(c, &q, row[0], row[1]);
		if (!(r = my_select(mc, c, "read a user's grants", q.buf, e)))
			goto out;
		while ((cr = mysql_fetch_row(r)))
			if (cr[0])
				add_grant(&out, cr[0]);
		mysql_free_result(r);
	}
	if (sink_begin(sink, MY_USERS_MEMBER, e) == 0 && sink_write(sink, out.buf, out.len, e) == 0)
		ret = sink_end(sink, e);
out:
	mysql_free_result(users);
	explicit_bzero(out.buf, out.len);
	strbuf_release(&out);
	strbuf_release(&q);
	return ret;
}

static int list_databases(const struct my_conn *mc, MYSQL *c, struct strvec *dbs, struct err *e)
{
	MYSQL_RES *r = my_select(mc, c, "list databases", "SHOW DATABASES", e);
	MYSQL_ROW row;

	if (!r)
		return -1;
	while ((row = mysql_fetch_row(r)))
		if (row[0] && !my_system_db(row[0]))
			strvec_push(dbs, row[0]);
	mysql_free_result(r);
	return 0;
}

int mysql_backup(const struct source_backup *src, struct member_sink *sink, struct err *e)
{
	const struct source_spec *s = src->spec;
	struct my_conn mc;
	struct strvec dbs = STRVEC_INIT;
	MYSQL *c = NULL;
	int ret = -1;

	if (my_conn_init(&mc, s->uri, s->path, e) < 0)
		goto out;
	/* A database that does not exist fails here, in one line naming it. */
	if (my_connect(&mc, mc.u.database, &c, e) < 0)
		goto out;
	if (mc.u.database) {
		strvec_push(&dbs, mc.u.database);
	} else {
		if (list_databases(&mc, c, &dbs, e) < 0 || dump_users(&mc, c, sink, e) < 0)
			goto out;
	}
	/* The version of this connection decides where the tools run (auto). */
	if (my_pick_tools(&mc, c, src->cfg, e) < 0)
		goto out;
	mysql_close(c);
	c = NULL;
	for (size_t i = 0; i < dbs.nr; i++)
		if (dump_database(&mc, dbs.v[i], sink, e) < 0)
			goto out;
	ret = 0;
out:
	mysql_close(c);
	my_conn_release(&mc);
	strvec_release(&dbs);
	return ret;
}

/* Inside the MySQL/MariaDB source: what its dump (mysql-dump.c) and restore (mysql-restore.c)
 * share. */
#ifndef LB_SOURCES_MYSQL_H
#define LB_SOURCES_MYSQL_H

#include "common.h"

#include <mysql.h>

#include "dburi.h"
#include "process.h"
#include "sources/source.h"
#include "strbuf.h"
#include "strvec.h"

/* A database's member is DB.sql; no database name holds a '.', so this is never one. */
#define MY_USERS_MEMBER "users.grants.sql"
#define MY_DUMP_SUFFIX	".sql"

/* The databases a server-wide source leaves out. */
bool my_system_db(const char *db);

/* The URI's query: TLS options, as the client tools take them. */
enum my_ssl { MY_SSL_DEFAULT, MY_SSL_DISABLED, MY_SSL_REQUIRED, MY_SSL_VERIFY_CA, MY_SSL_VERIFY };
struct my_opts {
	enum my_ssl ssl;
	char *ca, *capath, *cert, *key; /* decoded; NULL when absent */
};

/* A connection's settings: the parsed URI, its options, its name in messages. */
struct my_conn {
	struct dburi u;
	struct my_opts o;
	const char *redacted;
	unsigned port;
	/* Where the client tools run: here, or in the container serving the URI's host. */
	struct process_place where;
	bool mysql_tools; /* the tools are MySQL's (ssl-mode), not MariaDB's (ssl) */
	const char *dump_tool, *client_tool;
};

/* Parse the source's URI and its options (LB_EXIT_CONFIG naming BACKUP_MYSQL). */
int my_conn_init(struct my_conn *mc, const char *uri, const char *redacted, struct err *e);
void my_conn_release(struct my_conn *mc);

/* Connect (over TCP, utf8mb4) to `db` (NULL: none). */
int my_connect(const struct my_conn *mc, const char *db, MYSQL **ret, struct err *e);

/* Run a statement (`what` names it in the error); a result set is discarded. */
int my_exec(const struct my_conn *mc, MYSQL *c, const char *what, const char *sql, struct err *e);
/* Run a query and keep its result (free with mysql_free_result). */
MYSQL_RES *my_select(const struct my_conn *mc, MYSQL *c, const char *what, const char *sql,
		     struct err *e);

/* `s` as a quoted identifier: `a``b`. */
void my_quote(struct strbuf *sb, const char *s);

/*
 * Choose where the tools run (BACKUP_MYSQL_DUMP) and which ones (mariadb-dump or
 * mysqldump). `conn`: a connection already open to the server (asked for its version
 * under auto), or NULL: one is opened for that.
 */
int my_pick_tools(struct my_conn *mc, MYSQL *conn, const struct config *cfg, struct err *e);

/*
 * Start a client tool: args[0] is the program, the connection settings and the
 * password go into an option file it reads from fd 3 (here) or its environment
 * in the container (exec), never argv; stdout and/or stdin piped.
 */
int my_start(struct process *p, const struct my_conn *mc, struct strvec *args, bool out, bool in,
	     struct err *e);

/* Replace the password in e->msg by "***" (a tool's stderr is not ours to trust). */
void my_scrub(const struct my_conn *mc, struct err *e);

void my_encode_name(struct strbuf *sb, const char *s);
char *my_decode_name(const char *s, size_t n);

/* mysql-dump.c */
int mysql_backup(const struct source_backup *src, struct member_sink *sink, struct err *e);

/* mysql-restore.c */
int mysql_restore_begin(const struct source_restore_req *req, void **ctx, struct err *e);
int mysql_restore_member(void *ctx, const struct restore_member *m, struct err *e);
int mysql_restore_end(void *ctx, bool ok, struct err *e);
int mysql_drill_check(void *ctx, struct strvec *report, struct err *e);
int mysql_drill_sweep(const struct config *cfg, const struct source_spec *target,
		      const char *prefix, struct strvec *dropped, struct err *e);
int mysql_swap(const struct config *cfg, const struct source_spec *target,
	       const struct journal_db *d, enum db_swap_step step, struct err *e);

#endif

/*
 * MySQL/MariaDB restore: each database's dump loaded into a staging database
 * by the client tool, then swapped in by one atomic RENAME TABLE.
 *
 * RENAME TABLE moves tables between databases, but not views or tables with
 * triggers, and routines and events do not move at all. So the swap of
 * database D (staged in S, the old tables waiting in O) is, each step looking
 * at what exists so that a killed swap resumes, forward or back:
 *   1. O is created; D's triggers, views, routines and events are saved as
 *      their SHOW CREATE text into O.lifeboat_saved (one transaction, ended by
 *      a 'done' row), S's into S.lifeboat_saved;
 *   2. those objects are dropped from D and S (the tables stay);
 *   3. one RENAME TABLE: every table of D into O, every table of S into D,
 *      and S.lifeboat_saved to O.lifeboat_new, whose presence says "renamed";
 *   4. the objects of O.lifeboat_new are created in D; S is dropped.
 * Finishing drops O. Back: the tables of D return to S and O's to D in one
 * RENAME TABLE, and O.lifeboat_saved's objects are created in D again.
 * A database that did not exist is created (and dropped again on the way back).
 */
#include "common.h"

#include "fault.h"
#include "fs.h"
#include "journal.h"
#include "log.h"
#include "sources/mysql.h"
#include "strbuf.h"
#include "stream/tar-reader.h"
#include "strvec.h"
#include "xalloc.h"

#define MY_STAGE_PREFIX "lifeboat_restore_"
#define MY_OLD_PREFIX	"lifeboat_old_"
#define SAVED_TABLE	"lifeboat_saved"
#define NEW_TABLE	"lifeboat_new"
#define USERS_MAX	(64u << 20)

struct my_restore {
	struct my_conn mc;
	char *name;
	MYSQL *c;
	char **staged; /* the staging databases created, to drop on failure */
	size_t nr_staged, alloc_staged;
	char **targets;
	size_t nr_targets, alloc_targets;
	int (*record)(void *record_ctx, const struct journal_db *d, struct err *e);
	void *record_ctx;
	char *drill; /* a drill: the scratch databases' prefix */
};

/* ---- small queries ---- */

static void lit(MYSQL *c, struct strbuf *sb, const char *s)
{
	size_t n = strlen(s);
	char *esc = xmalloc(2 * n + 1);
	mysql_real_escape_string(c, esc, s, (unsigned long)n);
	strbuf_addf(sb, "'%s'", esc);
	free(esc);
}

/* Rows of `sql` with one literal `p1` appended after `head` and `tail` after it. */
static MYSQL_RES *select1(const struct my_conn *mc, MYSQL *c, const char *head, const char *p1,
			  const char *tail, struct err *e)
{
	struct strbuf q = STRBUF_INIT;
	strbuf_addstr(&q, head);
	lit(c, &q, p1);
	strbuf_addstr(&q, tail);
	MYSQL_RES *r = my_select(mc, c, "read the catalog", q.buf, e);
	strbuf_release(&q);
	return r;
}

/* Does database `db` exist? 1, 0 or -1. */
static int db_exists(const struct my_conn *mc, MYSQL *c, const char *db, struct err *e)
{
	MYSQL_RES *r = select1(
		mc, c, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ", db, "", e);
	if (!r)
		return -1;
	int n = mysql_num_rows(r) > 0;
	mysql_free_result(r);
	return n;
}

/* Does table db.t exist? 1, 0 or -1. */
static int table_exists(const struct my_conn *mc, MYSQL *c, const char *db, const char *t,
			struct err *e)
{
	struct strbuf q = STRBUF_INIT;
	strbuf_addstr(&q, "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ");
	lit(c, &q, db);
	strbuf_addstr(&q, " AND TABLE_NAME = ");
	lit(c, &q, t);
	MYSQL_RES *r = my_select(mc, c, "read the catalog", q.buf, e);
	strbuf_release(&q);
	if (!r)
		return -1;
	int n = mysql_num_rows(r) > 0;
	mysql_free_result(r);
	return n;
}

/* Run "A `id1` B `id2` C" (id2 may be NULL). */
static int exec_ids(const struct my_conn *mc, MYSQL *c, const char *what, const char *a,
		    const char *id1, const char *b, const char *id2, struct err *e)
{
	struct strbuf q = STRBUF_INIT;
	strbuf_addstr(&q, a);
	my_quote(&q, id1);
	strbuf_addstr(&q, b);
	if (id2)
		my_quote(&q, id2);
	int r = my_exec(mc, c, what, q.buf, e);
	strbuf_release(&q);
	return r;
}

/* The tables of `db` (everything but views), except our own. */
static int list_tables(const struct my_conn *mc, MYSQL *c, const char *db, struct strvec *out,
		       struct err *e)
{
	MYSQL_RES *r = select1(mc, c,
			       "SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
			       "TABLE_TYPE <> 'VIEW' AND TABLE_SCHEMA = ",
			       db, " ORDER BY TABLE_NAME", e);
	MYSQL_ROW row;
	if (!r)
		return -1;
	while ((row = mysql_fetch_row(r)))
		if (strcmp(row[0], SAVED_TABLE) && strcmp(row[0], NEW_TABLE))
			strvec_push(out, row[0]);
	mysql_free_result(r);
	return 0;
}

/* ---- the objects RENAME TABLE does not move ---- */

/* Kinds in the order they are created: routines before the views and triggers using them. */
static const struct obj_kind {
	const char *word; /* DROP word and the saved row's kind */
	const char *list; /* names in the schema (the literal follows) */
	int sql_col;	  /* SHOW CREATE's column of the statement; its sql_mode is column 1 */
	int tz_col;	  /* events: their time_zone, else -1 */
} obj_kinds[] = {
	{ "FUNCTION",
	  "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_TYPE = 'FUNCTION' "
	  "AND ROUTINE_SCHEMA = ",
	  2, -1 },
	{ "PROCEDURE",
	  "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_TYPE = 'PROCEDURE' "
	  "AND ROUTINE_SCHEMA = ",
	  2, -1 },
	{ "VIEW", "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ", 1, -1 },
	{ "TRIGGER",
	  "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ", 2, -1 },
	{ "EVENT", "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ", 3, 2 },
};

static int use_db(const struct my_conn *mc, MYSQL *c, const char *db, struct err *e)
{
	if (mysql_select_db(c, db)) {
		err_set(e, LB_EXIT_SOURCE, "MySQL %s: cannot use database '%s': %s", mc->redacted,
			db, mysql_error(c));
		return -1;
	}
	return 0;
}

/* Drop every saved kind of object of `db` (tables stay). */
static int drop_objects(const struct my_conn *mc, MYSQL *c, const char *db, struct err *e)
{
	for (size_t k = 0; k < ARRAY_SIZE(obj_kinds); k++) {
		struct strvec names = STRVEC_INIT;
		MYSQL_RES *r = select1(mc, c, obj_kinds[k].list, db, "", e);
		MYSQL_ROW row;
		if (!r)
			return -1;
		while ((row = mysql_fetch_row(r)))
			strvec_push(&names, row[0]);
		mysql_free_result(r);
		for (size_t i = 0; i < names.nr; i++) {
			struct strbuf q = STRBUF_INIT;
			strbuf_addf(&q, "DROP %s IF EXISTS ", obj_kinds[k].word);
			my_quote(&q, db);
			strbuf_addch(&q, '.');
			my_quote(&q, names.v[i]);
			int rr = my_exec(mc, c, "drop an object to swap the tables", q.buf, e);
			strbuf_release(&q);
			if (rr < 0) {
				strvec_release(&names);
				return -1;
			}
		}
		strvec_release(&names);
	}
	return 0;
}

/* Is dest.`table` a complete save (its 'done' row present)? 1, 0 or -1. */
static int saved_complete(const struct my_conn *mc, MYSQL *c, const char *dest, const char *table,
			  struct err *e)
{
	int t = table_exists(mc, c, dest, table, e);
	if (t <= 0)
		return t;
	struct strbuf q = STRBUF_INIT;
	strbuf_addstr(&q, "SELECT 1 FROM ");
	my_quote(&q, dest);
	strbuf_addf(&q, ".`%s` WHERE kind = 'done'", table);
	MYSQL_RES *r = my_select(mc, c, "read the saved objects", q.buf, e);
	strbuf_release(&q);
	if (!r)
		return -1;
	int n = mysql_num_rows(r) > 0;
	mysql_free_result(r);
	return n;
}

/* Save the objects of `db` as SHOW CREATE text into dest.lifeboat_saved, unless done. */
static int save_objects(const struct my_conn *mc, MYSQL *c, const char *db, const char *dest,
			struct err *e)
{
	int done = saved_complete(mc, c, dest, SAVED_TABLE, e);
	if (done)
		return done < 0 ? -1 : 0;
	struct strbuf tq = STRBUF_INIT, q = STRBUF_INIT;
	my_quote(&tq, dest);
	strbuf_addstr(&tq, "." SAVED_TABLE);
	strbuf_addf(&q, "DROP TABLE IF EXISTS %s", tq.buf);
	int ret = my_exec(mc, c, "save the objects to swap", q.buf, e);
	strbuf_reset(&q);
	strbuf_addf(&q,
		    "CREATE TABLE %s (seq INT AUTO_INCREMENT PRIMARY KEY, kind VARCHAR(16) NOT "
		    "NULL, name VARCHAR(255) NOT NULL, sql_mode TEXT, time_zone VARCHAR(64), "
		    "body LONGTEXT) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
		    tq.buf);
	if (ret == 0)
		ret = my_exec(mc, c, "save the objects to swap", q.buf, e);
	if (ret == 0)
		ret = my_exec(mc, c, "save the objects to swap", "START TRANSACTION", e);
	for (size_t k = 0; ret == 0 && k < ARRAY_SIZE(obj_kinds); k++) {
		const struct obj_kind *ok = &obj_kinds[k];
		struct strvec names = STRVEC_INIT;
		MYSQL_RES *r = select1(mc, c, ok->list, db, "", e);
		MYSQL_ROW row;
		if (!r) {
			ret = -1;
			break;
		}
		while ((row = mysql_fetch_row(r)))
			strvec_push(&names, row[0]);
		mysql_free_result(r);
		/* SHOW CREATE VIEW leaves out the qualifier of the current database. */
		if (use_db(mc, c, db, e) < 0)
			ret = -1;
		for (size_t i = 0; ret == 0 && i < names.nr; i++) {
			strbuf_reset(&q);
			strbuf_addf(&q, "SHOW CREATE %s ", ok->word);
			my_quote(&q, db);
			strbuf_addch(&q, '.');
			my_quote(&q, names.v[i]);
			MYSQL_RES *sr = my_select(mc, c, "read an object's definition", q.buf, e);
			MYSQL_ROW srow = sr ? mysql_fetch_row(sr) : NULL;
			if (!srow || !srow[ok->sql_col]) {
				if (sr)
					err_set(e, LB_EXIT_SOURCE,
						"MySQL %s: cannot read the definition of %s '%s' "
						"in "
						"database '%s' (a privilege missing?)",
						mc->redacted, ok->word, names.v[i], db);
				mysql_free_result(sr);
				ret = -1;
				break;
			}
			strbuf_reset(&q);
			strbuf_addf(
				&q,
				"INSERT INTO %s (kind, name, sql_mode, time_zone, body) VALUES (",
				tq.buf);
			lit(c, &q, ok->word);
			strbuf_addch(&q, ',');
			lit(c, &q, names.v[i]);
			strbuf_addch(&q, ',');
			lit(c, &q, ok->word[0] == 'V' ? "" : (srow[1] ? srow[1] : ""));
			strbuf_addch(&q, ',');
			lit(c, &q, ok->tz_col >= 0 && srow[ok->tz_col] ? srow[ok->tz_col] : "");
			strbuf_addch(&q, ',');
			lit(c, &q, srow[ok->sql_col]);
			strbuf_addch(&q, ')');
			mysql_free_result(sr);
			ret = my_exec(mc, c, "save the objects to swap", q.buf, e);
		}
		strvec_release(&names);
	}
	if (ret == 0) {
		strbuf_reset(&q);
		strbuf_addf(&q, "INSERT INTO %s (kind, name) VALUES ('done', '')", tq.buf);
		ret = my_exec(mc, c, "save the objects to swap", q.buf, e);
	}
	if (ret == 0)
		ret = my_exec(mc, c, "save the objects to swap", "COMMIT", e);
	else
		mysql_rollback(c);
	strbuf_release(&q);
	strbuf_release(&tq);
	return ret;
}

struct saved_obj {
	char *kind, *name, *sql_mode, *tz, *body;
};

/* Create in `db` the objects saved in src.`table`: each dropped first, views retried in order. */
static int create_objects(const struct my_conn *mc, MYSQL *c, const char *src, const char *table,
			  const char *db, struct err *e)
{
	struct strbuf q = STRBUF_INIT;
	struct saved_obj *objs = NULL;
	size_t nr = 0, alloc = 0;
	int ret = -1;

	strbuf_addstr(&q, "SELECT kind, name, sql_mode, time_zone, body FROM ");
	my_quote(&q, src);
	strbuf_addf(&q, ".`%s` WHERE kind <> 'done' ORDER BY seq", table);
	MYSQL_RES *r = my_select(mc, c, "read the saved objects", q.buf, e);
	MYSQL_ROW row;
	if (!r)
		goto out;
	while ((row = mysql_fetch_row(r))) {
		ALLOC_GROW(objs, nr + 1, alloc);
		objs[nr++] = (struct saved_obj){ xstrdup(row[0]), xstrdup(row[1]),
						 xstrdup(row[2] ? row[2] : ""),
						 xstrdup(row[3] ? row[3] : ""),
						 xstrdup(row[4] ? row[4] : "") };
	}
	mysql_free_result(r);
	if (drop_objects(mc, c, db, e) < 0 || use_db(mc, c, db, e) < 0)
		goto out;
	/* A view may use another view created after it: retry the failed ones while any succeeds. */
	bool *done = xcalloc(nr ? nr : 1, sizeof(*done));
	size_t left = nr;
	struct err last = ERR_INIT;
	for (bool progress = true; left && progress;) {
		progress = false;
		for (size_t i = 0; i < nr; i++) {
			if (done[i])
				continue;
			struct err one = ERR_INIT;
			/* fail: as if the server had refused to create the object */
			if (FAULT("mysql.objects")) {
				err_set(&last, LB_EXIT_SOURCE,
					"MySQL %s: cannot create %s '%s': (fault injected)",
					mc->redacted, objs[i].kind, objs[i].name);
				progress = false;
				break;
			}
			strbuf_reset(&q);
			strbuf_addstr(&q, "SET SESSION sql_mode = ");
			lit(c, &q, objs[i].sql_mode);
			if (*objs[i].tz) {
				strbuf_addstr(&q, ", time_zone = ");
				lit(c, &q, objs[i].tz);
			}
			struct strbuf what = STRBUF_INIT;
			strbuf_addf(&what, "create %s '%s' in database '%s'", objs[i].kind,
				    objs[i].name, db);
			if (my_exec(mc, c, what.buf, q.buf, &one) == 0 &&
			    my_exec(mc, c, what.buf, objs[i].body, &one) == 0) {
				done[i] = true;
				left--;
				progress = true;
			} else {
				err_copy(&last, &one);
			}
			strbuf_release(&what);
		}
	}
	free(done);
	my_exec(mc, c, "reset the session", "SET SESSION sql_mode = DEFAULT, time_zone = DEFAULT",
		&last);
	if (left) {
		err_copy(e, &last);
		goto out;
	}
	ret = 0;
out:
	for (size_t i = 0; i < nr; i++) {
		free(objs[i].kind);
		free(objs[i].name);
		free(objs[i].sql_mode);
		free(objs[i].tz);
		free(objs[i].body);
	}
	free(objs);
	strbuf_release(&q);
	return ret;
}

/* One RENAME TABLE: every table of a1 into b1, every table of a2 into b2, plus extra. */
static int rename_all(const struct my_conn *mc, MYSQL *c, const char *what, const char *a1,
		      const char *b1, const char *a2, const char *b2, const char *extra_db,
		      const char *extra_from, const char *extra_to_db, const char *extra_to,
		      struct err *e)
{
	struct strvec t1 = STRVEC_INIT, t2 = STRVEC_INIT;
	struct strbuf q = STRBUF_INIT;
	int ret = -1;

	if (list_tables(mc, c, a1, &t1, e) < 0 || list_tables(mc, c, a2, &t2, e) < 0)
		goto out;
	strbuf_addstr(&q, "RENAME TABLE ");
	for (int pass = 0; pass < 2; pass++) {
		const struct strvec *t = pass ? &t2 : &t1;
		const char *from = pass ? a2 : a1, *to = pass ? b2 : b1;
		for (size_t i = 0; i < t->nr; i++) {
			my_quote(&q, from);
			strbuf_addch(&q, '.');
			my_quote(&q, t->v[i]);
			strbuf_addstr(&q, " TO ");
			my_quote(&q, to);
			strbuf_addch(&q, '.');
			my_quote(&q, t->v[i]);
			strbuf_addstr(&q, ", ");
		}
	}
	my_quote(&q, extra_db);
	strbuf_addf(&q, ".`%s` TO ", extra_from);
	my_quote(&q, extra_to_db);
	strbuf_addf(&q, ".`%s`", extra_to);
	/* fail: as if the server had refused the rename */
	if (FAULT("mysql.swap")) {
		err_set(e, LB_EXIT_SOURCE, "MySQL %s: cannot %s: (fault injected)", mc->redacted,
			what);
		goto out;
	}
	ret = my_exec(mc, c, what, q.buf, e);
out:
	strbuf_release(&q);
	strvec_release(&t1);
	strvec_release(&t2);
	return ret;
}

/* CREATE DATABASE `db` with the character set and collation of `like` (if it exists). */
static int create_db_like(const struct my_conn *mc, MYSQL *c, const char *db, const char *like,
			  struct err *e)
{
	struct strbuf q = STRBUF_INIT;
	MYSQL_RES *r = like ? select1(mc, c,
				      "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME "
				      "FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ",
				      like, "", e)
			    : NULL;
	if (like && !r)
		return -1;
	MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
	strbuf_addstr(&q, "CREATE DATABASE IF NOT EXISTS ");
	my_quote(&q, db);
	if (row && row[0] && row[1])
		strbuf_addf(&q, " CHARACTER SET %s COLLATE %s", row[0], row[1]);
	mysql_free_result(r);
	int ret = my_exec(mc, c, "create a database", q.buf, e);
	strbuf_release(&q);
	return ret;
}

/* Drop `db` if it exists (a user without the privilege may still restore into a database). */
static int drop_db(const struct my_conn *mc, MYSQL *c, const char *what, const char *db,
		   struct err *e)
{
	int has = db_exists(mc, c, db, e);
	if (has <= 0)
		return has;
	return exec_ids(mc, c, what, "DROP DATABASE IF EXISTS ", db, "", NULL, e);
}

/* ---- staging ---- */

int mysql_restore_begin(const struct source_restore_req *req, void **ctx, struct err *e)
{
	struct my_restore *m = xcalloc(1, sizeof(*m));

	*ctx = m;
	m->name = xstrdup(req->name);
	m->record = req->record;
	m->record_ctx = req->record_ctx;
	m->drill = req->drill ? xstrdup(req->drill) : NULL;
	if (my_conn_init(&m->mc, req->target->uri, req->target->path, e) < 0 ||
	    my_connect(&m->mc, NULL, &m->c, e) < 0)
		return -1;
	return my_pick_tools(&m->mc, m->c, req->cfg, e);
}

/* Feed the member to the client tool. */
static int feed(struct my_restore *m, struct strvec *args, struct member_reader *rd,
		const char *what, struct err *e)
{
	unsigned char *buf = xmalloc(256 * 1024);
	bool broken = false;
	struct process p = PROCESS_INIT;
	int ret = -1;

	if (my_start(&p, &m->mc, args, false, true, e) < 0)
		goto fail;
	for (;;) {
		ssize_t n = member_read(rd, buf, 256 * 1024, e);
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		/* A client that stopped early explains itself in its exit status. */
		if (!broken && process_write(&p, buf, (size_t)n) < 0)
			broken = true;
	}
	process_close_input(&p);
	ret = process_finish(&p, what, e);
	my_scrub(&m->mc, e);
	goto out;
fail:
	process_kill(&p);
out:
	process_release(&p);
	free(buf);
	return ret;
}

/* Users and grants: each statement on its own (users that exist are kept). */
static int restore_users(struct my_restore *m, struct member_reader *rd, struct err *e)
{
	struct strbuf all = STRBUF_INIT;
	char buf[65536];
	unsigned failed = 0, ok = 0;
	ssize_t n;

	while ((n = member_read(rd, buf, sizeof(buf), e)) > 0) {
		if (all.len + (size_t)n > USERS_MAX) {
			strbuf_release(&all);
			return err_set(e, LB_EXIT_INTEGRITY, "MySQL '%s': %s is too long", m->name,
				       MY_USERS_MEMBER);
		}
		strbuf_add(&all, buf, (size_t)n);
	}
	if (n < 0) {
		strbuf_release(&all);
		return -1;
	}
	struct err first = ERR_INIT;
	for (char *line = all.buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		size_t len = strlen(line);
		if (!len || !strncmp(line, "--", 2))
			continue;
		if (line[len - 1] == ';')
			line[len - 1] = '\0';
		struct err one = ERR_INIT;
		if (my_exec(&m->mc, m->c, "restore a user or grant", line, &one) < 0) {
			failed++;
			if (!err_isset(&first))
				err_copy(&first, &one);
		} else {
			ok++;
		}
	}
	explicit_bzero(all.buf, all.len);
	strbuf_release(&all);
	if (failed)
		log_warn("MySQL '%s': %u of %u user and grant statements failed, the first: %s",
			 m->name, failed, failed + ok, first.msg);
	else
		log_info("MySQL '%s': users and grants restored (users that existed were kept)",
			 m->name);
	return 0;
}

static int restore_database(struct my_restore *m, const char *db, struct member_reader *rd,
			    struct err *e)
{
	for (size_t i = 0; i < m->nr_targets; i++)
		if (!strcmp(m->targets[i], db))
			return err_set(e, LB_EXIT_INTEGRITY, "MySQL '%s' holds database '%s' twice",
				       m->name, db);
	ALLOC_GROW(m->targets, m->nr_targets + 1, m->alloc_targets);
	m->targets[m->nr_targets++] = xstrdup(db);
	int existed = db_exists(&m->mc, m->c, db, e);
	if (existed < 0)
		return -1;
	unsigned char rnd[4];
	if (getentropy(rnd, sizeof(rnd)) < 0)
		memset(rnd, 0, sizeof(rnd));
	char *stage = xasprintf("%s%02x%02x%02x%02x", m->drill ? m->drill : MY_STAGE_PREFIX, rnd[0],
				rnd[1], rnd[2], rnd[3]);
	char *old = xasprintf(MY_OLD_PREFIX "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
	/* Named in the journal before it exists, so a killed restore's copy is found. */
	struct journal_db jd = { .kind = SOURCE_MYSQL,
				 .source = m->name,
				 .target = (char *)db,
				 .staged = stage,
				 .old = old,
				 .existed = existed };
	/* A drill's scratch database is found by its prefix (mysql_drill_sweep). */
	int ret = m->record && !m->drill ? m->record(m->record_ctx, &jd, e) : 0;
	free(old);
	if (ret < 0) {
		free(stage);
		return -1;
	}
	ALLOC_GROW(m->staged, m->nr_staged + 1, m->alloc_staged);
	m->staged[m->nr_staged++] = stage;
	if (create_db_like(&m->mc, m->c, stage, existed ? db : NULL, e) < 0)
		return -1;

	struct strvec args = STRVEC_INIT;
	strvec_push(&args, m->mc.client_tool);
	strvec_push(&args, "--batch");
	strvec_push(&args, "--binary-mode");
	strvec_push(&args, "--default-character-set=utf8mb4");
	strvec_push(&args, "--max-allowed-packet=1G");
	strvec_pushf(&args, "--database=%s", stage);
	char *what =
		xasprintf("%s loading database '%s' (%s)", m->mc.client_tool, db, m->mc.redacted);
	if (m->drill)
		log_info("drill: restoring MySQL database '%s' into scratch database '%s'", db,
			 stage);
	else
		log_info("restoring MySQL database '%s'", db);
	ret = feed(m, &args, rd, what, e);
	strvec_release(&args);
	free(what);
	return ret;
}

int mysql_restore_member(void *ctx, const struct restore_member *m, struct err *e)
{
	struct my_restore *r = ctx;
	const char *rel = m->rel;
	size_t n = strlen(rel), sn = strlen(MY_DUMP_SUFFIX);

	if (!strcmp(rel, MY_USERS_MEMBER)) {
		/* Users are the live server's: a drill only reads them (the verification did). */
		if (r->drill)
			return 0;
		if (r->mc.u.database) {
			log_warn("MySQL '%s': users and grants in the backup are not restored, "
				 "because %s names one database",
				 r->name, r->mc.redacted);
			return 0;
		}
		return restore_users(r, m->reader, e);
	}
	if (n <= sn || strcmp(rel + n - sn, MY_DUMP_SUFFIX) || memchr(rel, '.', n - sn) ||
	    strchr(rel, '/'))
		return err_set(e, LB_EXIT_INTEGRITY, "unexpected member '%s' in MySQL source '%s'",
			       rel, r->name);
	if (r->mc.u.database) {
		if (r->nr_targets)
			return err_set(e, LB_EXIT_SOURCE,
				       "MySQL '%s' holds several databases, but %s names one: "
				       "restore with a URI that names no database",
				       r->name, r->mc.redacted);
		return restore_database(r, r->mc.u.database, m->reader, e);
	}
	char *db = my_decode_name(rel, n - sn);
	if (!db || !*db || my_system_db(db)) {
		free(db);
		return err_set(e, LB_EXIT_INTEGRITY, "unexpected member '%s' in MySQL source '%s'",
			       rel, r->name);
	}
	int ret = restore_database(r, db, m->reader, e);
	free(db);
	return ret;
}

int mysql_restore_end(void *ctx, bool ok, struct err *e)
{
	struct my_restore *m = ctx;

	if (!m)
		return 0;
	(void)e;
	for (size_t i = 0; i < m->nr_staged; i++) {
		/* ok: the journal's swap takes the staged database from here. */
		struct err de = ERR_INIT;
		if (!ok && m->c &&
		    drop_db(&m->mc, m->c, "drop a staging database", m->staged[i], &de) < 0)
			log_warn("%s", de.msg);
		free(m->staged[i]);
	}
	for (size_t i = 0; i < m->nr_targets; i++)
		free(m->targets[i]);
	free(m->staged);
	free(m->targets);
	mysql_close(m->c);
	my_conn_release(&m->mc);
	free(m->name);
	free(m->drill);
	free(m);
	return 0;
}

int mysql_drill_check(void *ctx, struct strvec *report, struct err *e)
{
	struct my_restore *m = ctx;

	for (size_t i = 0; i < m->nr_staged && i < m->nr_targets; i++) {
		struct strvec tables = STRVEC_INIT;
		struct strbuf line = STRBUF_INIT, counts = STRBUF_INIT;
		unsigned long long total = 0;
		int ret = list_tables(&m->mc, m->c, m->staged[i], &tables, e);
		for (size_t k = 0; ret == 0 && k < tables.nr; k++) {
			struct strbuf q = STRBUF_INIT;
			strbuf_addstr(&q, "SELECT COUNT(*) FROM ");
			my_quote(&q, m->staged[i]);
			strbuf_addch(&q, '.');
			my_quote(&q, tables.v[k]);
			MYSQL_RES *r =
				my_select(&m->mc, m->c, "count the rows of a table", q.buf, e);
			strbuf_release(&q);
			MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
			if (!row || !row[0]) {
				mysql_free_result(r);
				if (!err_isset(e))
					err_set(e, LB_EXIT_SOURCE, "MySQL %s: no row count of '%s'",
						m->mc.redacted, tables.v[k]);
				ret = -1;
				break;
			}
			unsigned long long n = strtoull(row[0], NULL, 10);
			mysql_free_result(r);
			total += n;
			strbuf_addf(&counts, "%s%s %llu", k ? ", " : "", tables.v[k], n);
		}
		if (ret == 0) {
			strbuf_addf(&line, "MySQL '%s' database '%s': %zu tables, %llu rows",
				    m->name, m->targets[i], tables.nr, total);
			if (tables.nr)
				strbuf_addf(&line, " (%s)", counts.buf);
			strvec_push(report, line.buf);
		}
		strvec_release(&tables);
		strbuf_release(&line);
		strbuf_release(&counts);
		if (ret < 0)
			return -1;
	}
	return 0;
}

int mysql_drill_sweep(const struct config *cfg, const struct source_spec *target,
		      const char *prefix, struct strvec *dropped, struct err *e)
{
	struct my_conn mc;
	struct strvec names = STRVEC_INIT;
	MYSQL *c = NULL;
	int ret = -1;

	(void)cfg;
	memset(&mc, 0, sizeof(mc));
	if (my_conn_init(&mc, target->uri, target->path, e) < 0 || my_connect(&mc, NULL, &c, e) < 0)
		goto out;
	/* The prefix is ours: only names it starts exactly (LIKE would take '_' as any). */
	struct strbuf q = STRBUF_INIT;
	strbuf_addstr(&q, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE "
			  "LEFT(SCHEMA_NAME, CHAR_LENGTH(");
	lit(c, &q, prefix);
	strbuf_addstr(&q, ")) = ");
	lit(c, &q, prefix);
	strbuf_addstr(&q, " ORDER BY 1");
	MYSQL_RES *r = my_select(&mc, c, "list the databases", q.buf, e);
	strbuf_release(&q);
	if (!r)
		goto out;
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(r)))
		if (row[0])
			strvec_push(&names, row[0]);
	mysql_free_result(r);
	for (size_t i = 0; i < names.nr; i++) {
		if (drop_db(&mc, c, "drop a leftover drill database", names.v[i], e) < 0)
			goto out;
		strvec_push(dropped, names.v[i]);
	}
	ret = 0;
out:
	strvec_release(&names);
	mysql_close(c);
	my_conn_release(&mc);
	return ret;
}

/* ---- the swap ---- */

static int swap_forward(const struct my_conn *mc, MYSQL *c, const struct journal_db *d,
			struct err *e)
{
	int has_stage = db_exists(mc, c, d->staged, e);
	int has_old = has_stage < 0 ? -1 : db_exists(mc, c, d->old, e);
	int renamed = has_old <= 0 ? has_old : table_exists(mc, c, d->old, NEW_TABLE, e);
	if (renamed < 0)
		return -1;
	if (!has_stage && !renamed) {
		int t = db_exists(mc, c, d->target, e);
		if (t < 0)
			return -1;
		if (!t)
			return err_set(e, LB_EXIT_SOURCE,
				       "MySQL %s: neither '%s' nor its restored copy '%s' exists",
				       mc->redacted, d->target, d->staged);
		return 0; /* swapped, and the staging database dropped */
	}
	if (!renamed) {
		if (create_db_like(mc, c, d->old, NULL, e) < 0 ||
		    create_db_like(mc, c, d->target, d->staged, e) < 0 ||
		    save_objects(mc, c, d->target, d->old, e) < 0 ||
		    save_objects(mc, c, d->staged, d->staged, e) < 0 ||
		    drop_objects(mc, c, d->target, e) < 0 || drop_objects(mc, c, d->staged, e) < 0)
			return -1;
		if (rename_all(mc, c, "swap the restored tables in", d->target, d->old, d->staged,
			       d->target, d->staged, SAVED_TABLE, d->old, NEW_TABLE, e) < 0)
			return -1;
	}
	if (create_objects(mc, c, d->old, NEW_TABLE, d->target, e) < 0)
		return -1;
	if (has_stage || renamed)
		return drop_db(mc, c, "drop the staging database", d->staged, e);
	return 0;
}

static int swap_back(const struct my_conn *mc, MYSQL *c, const struct journal_db *d, struct err *e)
{
	int has_old = db_exists(mc, c, d->old, e);
	int renamed = has_old <= 0 ? has_old : table_exists(mc, c, d->old, NEW_TABLE, e);
	if (renamed < 0)
		return -1;
	if (renamed) {
		/* The restored tables out (into the staging database), the old ones back. */
		if (create_db_like(mc, c, d->staged, NULL, e) < 0 ||
		    drop_objects(mc, c, d->target, e) < 0 ||
		    rename_all(mc, c, "put the old tables back", d->target, d->staged, d->old,
			       d->target, d->old, NEW_TABLE, d->staged, NEW_TABLE, e) < 0)
			return -1;
	}
	if (!d->existed) {
		if (drop_db(mc, c, "drop the database the restore created", d->target, e) < 0)
			return -1;
	} else if (has_old) {
		int saved = saved_complete(mc, c, d->old, SAVED_TABLE, e);
		if (saved < 0 ||
		    (saved && create_objects(mc, c, d->old, SAVED_TABLE, d->target, e) < 0))
			return -1;
	}
	if (drop_db(mc, c, "drop a staging database", d->staged, e) < 0)
		return -1;
	return has_old ? drop_db(mc, c, "drop the old tables' database", d->old, e) : 0;
}

int mysql_swap(const struct config *cfg, const struct source_spec *target,
	       const struct journal_db *d, enum db_swap_step step, struct err *e)
{
	struct my_conn mc;
	MYSQL *c = NULL;
	int ret = -1;

	(void)cfg;
	if (my_conn_init(&mc, target->uri, target->path, e) < 0 || my_connect(&mc, NULL, &c, e) < 0)
		goto out;
	/* A writer holding a table must not stall the swap for the server's default year. */
	if (my_exec(&mc, c, "set the lock wait", "SET SESSION lock_wait_timeout = 300", e) < 0)
		goto out;
	switch (step) {
	case DB_SWAP_FORWARD:
		ret = swap_forward(&mc, c, d, e);
		break;
	case DB_SWAP_FINISH:
		ret = drop_db(&mc, c, "drop the replaced tables", d->old, e);
		break;
	case DB_SWAP_BACK:
		ret = swap_back(&mc, c, d, e);
		break;
	}
out:
	mysql_close(c);
	my_conn_release(&mc);
	return ret;
}

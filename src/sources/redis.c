/*
 * Redis sources: a point-in-time RDB snapshot of the whole server, taken
 * with `redis-cli --rdb -` (the replication protocol's full sync) as a child,
 * here or in the server's container (process.c), and streamed into the
 * archive as redis/NAME/dump.rdb. The password reaches redis-cli through
 * REDISCLI_AUTH in its environment, never argv.
 *
 * Restore writes the file into the server's data directory, mounted into the
 * sidecar (BACKUP_REDIS_DATA_DIR, or ?data_dir= per URI), while the server is
 * stopped: in a Compose project the restore stops the project's containers
 * around the swap (services.c; a Redis server is never kept running), without
 * one the server must be stopped by hand first. The swap is journaled: the
 * old dump.rdb (and the AOF directory, replaced by one whose base is the
 * restored RDB when the server uses appendonly) waits in
 * DIR/.lifeboat-old.redis.PID until every target swapped.
 */
#include "config-vars.h"
#include "common.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "dburi.h"
#include "fault.h"
#include "fs.h"
#include "journal.h"
#include "process.h"
#include "recover.h"
#include "sources/source.h"
#include "strbuf.h"
#include "stream/member-sink.h"
#include "stream/tar-reader.h"
#include "strvec.h"
#include "xalloc.h"

#define RDB_MEMBER "dump.rdb"
#define AOF_DIR	   "appendonlydir"
#define CHUNK	   (256 * 1024)
/* redis-cli 7.0 writes the replication stream's 40-byte EOF mark after the RDB on stdout. */
#define EOF_MARK 40
#define RDB_TAIL 9 /* the RDB's end: opcode 0xFF and the CRC64 */

struct redis_conn {
	struct dburi u;
	const char *redacted;
	struct process_place where;
	char *data_dir; /* ?data_dir=, or NULL */
	/* rediss:// only: ?cacert=, ?cacertdir=, ?cert=, ?key= (paths where redis-cli runs) */
	char *tls[4];
};

/* The TLS options a rediss:// URI takes, and the redis-cli option each becomes. */
static const char *const tls_opts[4] = { "cacert", "cacertdir", "cert", "key" };

static void conn_release(struct redis_conn *c)
{
	process_place_release(&c->where);
	dburi_release(&c->u);
	free(c->data_dir);
	for (size_t i = 0; i < 4; i++)
		free(c->tls[i]);
}

/* `q` (of length n) is "NAME=VALUE" for an option named `name`. */
static bool is_opt(const char *q, size_t n, const char *name)
{
	size_t k = strlen(name);
	return n > k + 1 && !strncmp(q, name, k) && q[k] == '=';
}

/* Percent-decoding of a query value (paths). */
static char *query_value(const char *q, size_t n)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < n; i++) {
		if (q[i] == '%' && i + 2 < n && isxdigit((unsigned char)q[i + 1]) &&
		    isxdigit((unsigned char)q[i + 2])) {
			char hex[3] = { q[i + 1], q[i + 2], 0 };
			strbuf_addch(&sb, (char)strtol(hex, NULL, 16));
			i += 2;
		} else {
			strbuf_addch(&sb, q[i]);
		}
	}
	return strbuf_detach(&sb, NULL);
}

static int conn_open(struct redis_conn *c, const struct config *cfg, const struct source_spec *s,
		     struct err *e)
{
	*c = (struct redis_conn){ .redacted = s->path };
	if (dburi_parse(s->uri, "BACKUP_REDIS", &c->u, e) < 0)
		return -1;
	const char *db = c->u.database;
	for (const char *p = db; p && *p; p++)
		if (!isdigit((unsigned char)*p))
			return err_set(e, LB_EXIT_CONFIG,
				       "BACKUP_REDIS: '%s': the database must be a number (/0)",
				       c->redacted);
	for (const char *q = c->u.query; q && *q;) {
		size_t n = strcspn(q, "&");
		if (n > 9 && !strncmp(q, "data_dir=", 9)) {
			free(c->data_dir);
			c->data_dir = query_value(q + 9, n - 9);
			if (c->data_dir[0] != '/' || path_has_dotdot(c->data_dir))
				return err_set(e, LB_EXIT_CONFIG,
					       "BACKUP_REDIS: '%s': data_dir must be an absolute "
					       "path without '..'",
					       c->redacted);
		} else if (n) {
			size_t i = 0;
			while (i < 4 && !is_opt(q, n, tls_opts[i]))
				i++;
			if (i == 4)
				return err_set(
					e, LB_EXIT_CONFIG,
					"BACKUP_REDIS: '%s': unknown option '%.*s' (data_dir=, "
					"and with rediss:// cacert=, cacertdir=, cert=, key= are "
					"understood)",
					c->redacted, (int)(n < 64 ? n : 64), q);
			if (strcasecmp(c->u.scheme, "rediss"))
				return err_set(
					e, LB_EXIT_CONFIG,
					"BACKUP_REDIS: '%s': '%s=' is a TLS option: use rediss://",
					c->redacted, tls_opts[i]);
			size_t k = strlen(tls_opts[i]) + 1;
			free(c->tls[i]);
			c->tls[i] = query_value(q + k, n - k);
			if (c->tls[i][0] != '/')
				return err_set(e, LB_EXIT_CONFIG,
					       "BACKUP_REDIS: '%s': %s must be an absolute path",
					       c->redacted, tls_opts[i]);
		}
		q += n;
		if (*q == '&')
			q++;
	}
	if (cfg->redis.cli_exec) {
		struct err de = ERR_INIT;
		if (process_place_container(&c->where, cfg->docker.host, c->u.host, &de) < 0)
			return err_set(e, LB_EXIT_SOURCE,
				       "Redis %s: cannot run redis-cli in the server's container "
				       "'%s': %s",
				       c->redacted, c->u.host, de.msg);
	}
	return 0;
}

/* Start redis-cli with `tail` after the connection options; the password in its environment. */
static int cli_start(struct process *p, const struct redis_conn *c, const char *const *tail,
		     struct err *e)
{
	struct strvec args = STRVEC_INIT, env = STRVEC_INIT;
	bool here = !process_place_is_container(&c->where);

	strvec_push(&args, "redis-cli");
	strvec_push(&args, "-h");
	strvec_push(&args, here ? c->u.host : "127.0.0.1");
	strvec_push(&args, "-p");
	strvec_push(&args, c->u.port ? c->u.port : "6379");
	if (c->u.user && *c->u.user) {
		strvec_push(&args, "--user");
		strvec_push(&args, c->u.user);
	}
	if (!strcasecmp(c->u.scheme, "rediss")) {
		strvec_push(&args, "--tls");
		for (size_t i = 0; i < 4; i++)
			if (c->tls[i]) {
				strvec_pushf(&args, "--%s", tls_opts[i]);
				strvec_push(&args, c->tls[i]);
			}
	}
	strvec_push(&args, "--no-auth-warning");
	for (; *tail; tail++)
		strvec_push(&args, *tail);
	if (c->u.password)
		strvec_pushf(&env, "REDISCLI_AUTH=%s", c->u.password);
	const struct process_spec spec = { .argv = args.v,
					   .env = env.v,
					   .where = &c->where,
					   .want_stdout = true,
					   .fail_code = LB_EXIT_SOURCE };
	int ret = process_start(p, &spec, e);
	for (size_t i = 0; i < env.nr; i++)
		explicit_bzero(env.v[i], strlen(env.v[i]));
	strvec_release(&env);
	strvec_release(&args);
	return ret;
}

/* A line of the server's answer, printable and bounded, for a message. */
static void first_line(const char *s, char *out, size_t n)
{
	size_t k = 0;
	for (; *s && *s != '\n' && *s != '\r' && k + 1 < n; s++)
		out[k++] = (unsigned char)*s >= ' ' && *s != 0x7f ? *s : '?';
	out[k] = '\0';
}

/* INFO server: the server's version; also checks the connection and the password. */
static char *server_version(const struct redis_conn *c, struct err *e)
{
	static const char *const tail[] = { "INFO", "server", NULL };
	struct process p = PROCESS_INIT;
	struct strbuf out = STRBUF_INIT;
	char buf[4096], line[256];
	char *ret = NULL;
	auto_free char *what = xasprintf("redis-cli INFO of Redis %s", c->redacted);

	if (cli_start(&p, c, tail, e) < 0)
		goto out;
	for (;;) {
		ssize_t n = process_read(&p, buf, sizeof(buf));
		if (n <= 0)
			break;
		if (out.len < 65536)
			strbuf_add(&out, buf, (size_t)n);
	}
	if (process_finish(&p, what, e) < 0)
		goto out;
	const char *v = strstr(out.buf, "redis_version:");
	if (!v) {
		first_line(out.buf, line, sizeof(line));
		bool refused = !strncmp(line, "NOAUTH", 6) || !strncmp(line, "WRONGPASS", 9);
		err_set(e, LB_EXIT_SOURCE, "Redis %s: cannot connect: %s%s", c->redacted,
			*line ? line : "no answer",
			refused ? " (the password or ACL user was refused)" : "");
		goto out;
	}
	v += strlen("redis_version:");
	ret = xstrndup(v, strcspn(v, "\r\n"));
out:
	process_release(&p);
	strbuf_release(&out);
	return ret;
}

static char *redis_server_version(const struct source_backup *src, struct err *e)
{
	struct redis_conn c;
	char *v = conn_open(&c, src->cfg, src->spec, e) < 0 ? NULL : server_version(&c, e);
	conn_release(&c);
	return v;
}

static bool all_hex(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit(p[i]) || isupper(p[i]))
			return false;
	return true;
}

/* The stream's first bytes: an RDB file starts with "REDIS". */
static int rdb_head(void *ctx, const unsigned char *buf, size_t len, struct err *e)
{
	const struct redis_conn *c = ctx;
	if (len >= 5 && memcmp(buf, "REDIS", 5))
		return err_set(e, LB_EXIT_SOURCE,
			       "Redis %s: redis-cli --rdb did not send an RDB file", c->redacted);
	return 0;
}

/*
 * The stream's end. When its last EOF_MARK + RDB_TAIL bytes are the RDB's end
 * (0xFF, CRC64) followed by 40 hex digits, those are redis-cli's copy of the EOF
 * mark (it cannot truncate a pipe), not part of the file: they are dropped. A real
 * RDB never ends so (its ninth byte from the end is 0xFF, not a hex digit).
 */
static int rdb_end(void *ctx, const unsigned char *tail, size_t n, uint64_t total, size_t *ret_drop,
		   struct err *e)
{
	const struct redis_conn *c = ctx;
	size_t drop = 0;

	if (n == EOF_MARK + RDB_TAIL && tail[0] == 0xff && all_hex(tail + RDB_TAIL, EOF_MARK))
		drop = EOF_MARK;
	if (total - drop < 5 + RDB_TAIL)
		return err_set(e, LB_EXIT_SOURCE, "Redis %s: redis-cli --rdb sent no snapshot",
			       c->redacted);
	*ret_drop = drop;
	return 0;
}

static int redis_backup(const struct source_backup *src, struct member_sink *sink, struct err *e)
{
	static const char *const tail[] = { "--rdb", "-", NULL };
	struct redis_conn c;
	struct process p = PROCESS_INIT;
	auto_free char *what = xasprintf("redis-cli --rdb of Redis %s", src->spec->path);
	int ret = -1;

	if (conn_open(&c, src->cfg, src->spec, e) < 0)
		goto done;
	if (cli_start(&p, &c, tail, e) < 0)
		goto done;
	/* The snapshot streamed through the sink's pump, its trailer checked and dropped. */
	const struct sink_check check = {
		.hold = EOF_MARK + RDB_TAIL, .ctx = &c, .head = rdb_head, .end = rdb_end
	};
	ret = sink_from_process_checked(sink, &p, RDB_MEMBER, "redis-cli", what, &check, e);
done:
	process_release(&p);
	conn_release(&c);
	return ret;
}

/* ---- restore ---- */

struct redis_restore {
	struct redis_conn c;
	const struct config *cfg;
	const char *name;
	char *dir; /* the data directory */
	int (*record)(void *record_ctx, const struct journal_db *d, struct err *e);
	void *record_ctx;
	bool staged;
};

/* Does anything accept connections at the server's address? (A stopped container: no.) */
static bool server_answers(const struct dburi *u)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	bool up = false;

	if (getaddrinfo(u->host, u->port ? u->port : "6379", &hints, &res) != 0)
		return false;
	for (struct addrinfo *a = res; a && !up; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			up = true;
		if (fd >= 0)
			close(fd);
	}
	freeaddrinfo(res);
	return up;
}

static int check_stopped(const struct dburi *u, const char *redacted, struct err *e)
{
	if (!server_answers(u))
		return 0;
	return err_set(e, LB_EXIT_SOURCE,
		       "Redis %s is running: its data directory is replaced while the server is "
		       "stopped (a restore in its Compose project stops it; else stop it first, "
		       "then start it after the restore)",
		       redacted);
}

static char *data_dir_of(const struct config *cfg, const struct redis_conn *c)
{
	const char *d = c->data_dir ? c->data_dir : cfg->redis.data_dir;
	return d ? xstrdup(d) : NULL;
}

static int redis_restore_begin(const struct source_restore_req *req, void **ctx, struct err *e)
{
	struct redis_restore *r = xcalloc(1, sizeof(*r));
	struct stat st;

	*ctx = r;
	r->cfg = req->cfg;
	r->name = req->target->name;
	r->record = req->record;
	r->record_ctx = req->record_ctx;
	if (conn_open(&r->c, req->cfg, req->target, e) < 0)
		return -1;
	r->dir = data_dir_of(req->cfg, &r->c);
	if (!r->dir)
		return err_set(e, LB_EXIT_CONFIG,
			       "Redis %s: set BACKUP_REDIS_DATA_DIR (or ?data_dir= in its URI) to "
			       "the server's data directory, mounted into this container, to "
			       "restore it",
			       r->c.redacted);
	if (stat(r->dir, &st) < 0)
		return err_set(e, LB_EXIT_CONFIG, "Redis %s: data directory '%s': %s",
			       r->c.redacted, r->dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return err_set(e, LB_EXIT_CONFIG,
			       "Redis %s: data directory '%s' is not a directory", r->c.redacted,
			       r->dir);
	if (access(r->dir, W_OK) < 0)
		return err_set(e, LB_EXIT_SOURCE, "Redis %s: cannot write data directory '%s': %s",
			       r->c.redacted, r->dir, strerror(errno));
	auto_free char *legacy = xasprintf("%s/appendonly.aof", r->dir);
	if (lstat(legacy, &st) == 0)
		return err_set(e, LB_EXIT_SOURCE,
			       "Redis %s: '%s' is a pre-7.0 append-only file, which would take "
			       "precedence over the restored snapshot: lifeboat restores Redis 7 "
			       "data directories only",
			       r->c.redacted, legacy);
	return 0;
}

/* Copy the data directory's owner onto what we create, so the server (uid 999) can read it. */
static void own_like_dir(int fd, const char *dir)
{
	struct stat st;
	if (geteuid() == 0 && stat(dir, &st) == 0 && fchown(fd, st.st_uid, st.st_gid) < 0)
		return;
}

/* Write a file whole, owned like the data directory, fsynced. */
static int write_owned(const char *path, const char *dir, const void *buf, size_t n, struct err *e)
{
	auto_close int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || (own_like_dir(fd, dir), write_all(fd, buf, n) < 0) || fsync(fd) < 0)
		return err_set(e, LB_EXIT_SOURCE, "cannot write '%s': %s", path, strerror(errno));
	return 0;
}

/*
 * With appendonly, Redis 7 loads the AOF directory, not dump.rdb: the restored
 * one holds the snapshot as its base (a hard link of the staged file) and a
 * manifest naming it, with the existing manifest's file prefix.
 */
static int stage_aof(struct redis_restore *r, const char *staged, const char *aof_stage,
		     struct err *e)
{
	auto_free char *live = xasprintf("%s/" AOF_DIR, r->dir);
	auto_free char *prefix = NULL;
	DIR *d = opendir(live);
	struct dirent *de;

	if (!d)
		return err_set(e, LB_EXIT_SOURCE, "cannot read '%s': %s", live, strerror(errno));
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n > 9 && !strcmp(de->d_name + n - 9, ".manifest") && !prefix)
			prefix = xstrndup(de->d_name, n - 9);
	}
	closedir(d);
	if (!prefix)
		prefix = xstrdup("appendonly.aof");
	if (mkdir(aof_stage, 0755) < 0)
		return err_set(e, LB_EXIT_SOURCE, "cannot create '%s': %s", aof_stage,
			       strerror(errno));
	struct stat st;
	if (geteuid() == 0 && stat(r->dir, &st) == 0 && chown(aof_stage, st.st_uid, st.st_gid) < 0)
		return err_set(e, LB_EXIT_SOURCE, "cannot set the owner of '%s': %s", aof_stage,
			       strerror(errno));
	auto_free char *base = xasprintf("%s/%s.1.base.rdb", aof_stage, prefix);
	if (link(staged, base) < 0)
		return err_set(e, LB_EXIT_SOURCE, "cannot link '%s' to '%s': %s", staged, base,
			       strerror(errno));
	auto_free char *manifest = xasprintf("%s/%s.manifest", aof_stage, prefix);
	auto_free char *text = xasprintf("file %s.1.base.rdb seq 1 type b\n", prefix);
	if (write_owned(manifest, r->dir, text, strlen(text), e) < 0)
		return -1;
	int r2 = fsync_dir(aof_stage);
	return r2 < 0 ? err_set(e, LB_EXIT_SOURCE, "cannot flush '%s': %s", aof_stage,
				strerror(-r2))
		      : 0;
}

static int redis_restore_member(void *ctx, const struct restore_member *m, struct err *e)
{
	struct redis_restore *r = ctx;
	long pid = (long)getpid();

	if (strcmp(m->rel, RDB_MEMBER))
		return member_skip(m->reader, e);
	auto_free char *target = xasprintf("%s/" RDB_MEMBER, r->dir);
	auto_free char *staged = xasprintf("%s/" RESTORE_STAGE_PREFIX "redis.%ld.rdb", r->dir, pid);
	auto_free char *old = xasprintf("%s/" RESTORE_OLD_PREFIX "redis.%ld", r->dir, pid);
	auto_free char *aof_live = xasprintf("%s/" AOF_DIR, r->dir);
	auto_free char *aof_stage =
		xasprintf("%s/" RESTORE_STAGE_PREFIX "redis.%ld.aof", r->dir, pid);
	struct stat st;
	bool aof = lstat(aof_live, &st) == 0 && S_ISDIR(st.st_mode);
	struct journal_db jd = { .kind = SOURCE_REDIS,
				 .source = (char *)r->name,
				 .db = aof ? aof_stage : NULL,
				 .target = target,
				 .staged = staged,
				 .old = old,
				 .existed = lstat(target, &st) == 0 };

	if (r->record && r->record(r->record_ctx, &jd, e) < 0)
		return -1;
	r->staged = true;
	unlink(staged);
	remove_tree(aof_stage);
	auto_close int fd = open(staged, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(e, LB_EXIT_SOURCE, "cannot create '%s': %s", staged,
			       strerror(errno));
	own_like_dir(fd, r->dir);
	unsigned char *buf = xmalloc(CHUNK);
	uint64_t total = 0;
	int ret = -1;
	for (;;) {
		ssize_t n = member_read(m->reader, buf, CHUNK, e);
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		if (total == 0 && (n < 5 || memcmp(buf, "REDIS", 5))) {
			err_set(e, LB_EXIT_INTEGRITY, "'%s' is not an RDB file", m->path);
			goto out;
		}
		int w = write_all(fd, buf, (size_t)n);
		if (w < 0) {
			err_set(e, LB_EXIT_SOURCE, "cannot write '%s': %s", staged, strerror(-w));
			goto out;
		}
		total += (uint64_t)n;
	}
	if (fsync(fd) < 0) {
		err_set(e, LB_EXIT_SOURCE, "cannot write '%s': %s", staged, strerror(errno));
		goto out;
	}
	if (aof && stage_aof(r, staged, aof_stage, e) < 0)
		goto out;
	int fr = fsync_dir(r->dir);
	if (fr < 0) {
		err_set(e, LB_EXIT_SOURCE, "cannot flush '%s': %s", r->dir, strerror(-fr));
		goto out;
	}
	ret = 0;
out:
	free(buf);
	return ret;
}

static int redis_restore_end(void *ctx, bool ok, struct err *e)
{
	struct redis_restore *r = ctx;
	int ret = 0;

	if (!r)
		return 0;
	/* The swap replaces the server's files: it must be down (the project's stop did it). */
	if (ok && r->staged && check_stopped(&r->c.u, r->c.redacted, e) < 0)
		ret = -1;
	conn_release(&r->c);
	free(r->dir);
	free(r);
	return ret;
}

static bool exists(const char *p)
{
	struct stat st;
	return lstat(p, &st) == 0;
}

static int step_rename(const char *from, const char *to, struct err *e)
{
	/* fail: as if the rename had failed (EIO) */
	if (FAULT("redis.swap"))
		errno = EIO;
	else if (rename(from, to) == 0)
		return 0;
	return err_set(e, LB_EXIT_SOURCE, "cannot move '%s' to '%s': %s", from, to,
		       strerror(errno));
}

/*
 * The swap of one data directory. FORWARD: `old` made, the live dump.rdb and
 * AOF directory moved into it, the staged AOF directory and then the staged
 * file moved in (the staged file is moved last: while it exists the target is
 * not the restored one). BACK undoes what it finds done. Each step looks at
 * what exists, so a restarted one goes on.
 */
static int redis_swap(const struct config *cfg, const struct source_spec *target,
		      const struct journal_db *d, enum db_swap_step step, struct err *e)
{
	auto_free char *dir = xstrndup(d->target, (size_t)(strrchr(d->target, '/') - d->target));
	auto_free char *old_rdb = xasprintf("%s/" RDB_MEMBER, d->old);
	auto_free char *old_aof = xasprintf("%s/" AOF_DIR, d->old);
	auto_free char *aof = xasprintf("%s/" AOF_DIR, dir);
	struct dburi u;
	int ret = -1;

	(void)cfg;
	if (dburi_parse(target->uri, "BACKUP_REDIS", &u, e) < 0)
		return -1;
	switch (step) {
	case DB_SWAP_FORWARD:
		if (!exists(d->staged))
			break; /* swapped in already */
		if (check_stopped(&u, target->path, e) < 0)
			goto out;
		if (!exists(d->old) && mkdir(d->old, 0700) < 0) {
			err_set(e, LB_EXIT_SOURCE, "cannot create '%s': %s", d->old,
				strerror(errno));
			goto out;
		}
		if (exists(d->target) && !exists(old_rdb) && step_rename(d->target, old_rdb, e) < 0)
			goto out;
		if (d->db && exists(d->db)) {
			if (exists(aof) && !exists(old_aof) && step_rename(aof, old_aof, e) < 0)
				goto out;
			if (step_rename(d->db, aof, e) < 0)
				goto out;
		}
		if (step_rename(d->staged, d->target, e) < 0)
			goto out;
		fsync_dir(dir);
		break;
	case DB_SWAP_FINISH:
		if (exists(d->old) && remove_tree(d->old) < 0) {
			err_set(e, LB_EXIT_SOURCE, "cannot remove '%s'", d->old);
			goto out;
		}
		fsync_dir(dir);
		break;
	case DB_SWAP_BACK:
		if (exists(d->old)) {
			/* `old` exists: the forward step began; the staged file gone means in
			 * place. */
			if (!exists(d->staged) && exists(d->target) &&
			    step_rename(d->target, d->staged, e) < 0)
				goto out;
			if (exists(old_rdb) && step_rename(old_rdb, d->target, e) < 0)
				goto out;
			if (d->db && !exists(d->db) && exists(aof) && exists(old_aof) &&
			    step_rename(aof, d->db, e) < 0)
				goto out;
			if (exists(old_aof) && !exists(aof) && step_rename(old_aof, aof, e) < 0)
				goto out;
		}
		unlink(d->staged);
		if (d->db)
			remove_tree(d->db);
		if (exists(d->old))
			remove_tree(d->old);
		fsync_dir(dir);
		break;
	}
	ret = 0;
out:
	dburi_release(&u);
	return ret;
}

static bool redis_uses_docker(const struct config *cfg)
{
	return cfg->redis.cli_exec;
}

const struct source_ops redis_ops = {
	.after_verify = true,
	.offline_restore = true,
	.check_member = source_check_streamed,
	.backup = redis_backup,
	.server_version = redis_server_version,
	.restore_begin = redis_restore_begin,
	.restore_member = redis_restore_member,
	.restore_end = redis_restore_end,
	.swap = redis_swap,
	.uses_docker = redis_uses_docker,
};

/* ---- its variables ---- */

static int var_redis_cli(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value || !strcmp(value, "local"))
		cfg->redis.cli_exec = false;
	else if (!strcmp(value, "exec"))
		cfg->redis.cli_exec = true;
	else
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_REDIS_CLI '%s' is invalid: expected local or exec",
			       SHOW(value));
	return 0;
}

static void describe_redis(const struct config *cfg, struct strbuf *out)
{
	strbuf_addf(out, "BACKUP_REDIS_DATA_DIR %s\nBACKUP_REDIS_CLI     %s\n",
		    cfg->redis.data_dir ? cfg->redis.data_dir : "(unset: restore needs it)",
		    cfg->redis.cli_exec ? "exec" : "local");
}

static const struct config_var redis_rows[] = {
	{ "BACKUP_REDIS", SECRET, config_var_sources, 0, 0, 0, NULL,
	  "Redis servers, one per line (or separated by commas): `redis://:password@host:6379`, "
	  "`redis://user:password@host:6379` (an ACL user), `rediss://` for TLS (with "
	  "`?cacert=/path` for a CA of your own, also `cacertdir=`, `cert=`, `key=`); a `/db` "
	  "suffix is accepted, but the snapshot always holds every database of the server. "
	  "Percent-encode special characters in the password. `?data_dir=/path` sets this "
	  "server's data directory for a restore. A secret: also `BACKUP_REDIS_FILE`. See "
	  "[Redis](#redis).",
	  NULL },
	{ "BACKUP_REDIS_DATA_DIR", 0, config_var_path, OFF(redis.data_dir), 0, 0, NULL,
	  "The Redis server's data directory (`/data` in the official image), mounted into this "
	  "container: a restore writes `dump.rdb` (and, with appendonly, `appendonlydir`) there "
	  "while the server is stopped. Needed for restore only.",
	  NULL },
	{ "BACKUP_REDIS_CLI", 0, var_redis_cli, 0, 0, 0, "local",
	  "Where `redis-cli` runs for a backup: `local` (default, this image's) or `exec` (in the "
	  "server's container, named by the URI's host, through the Docker socket).",
	  describe_redis },
};
const struct config_var_group redis_vars = CONFIG_VAR_GROUP(redis_rows);

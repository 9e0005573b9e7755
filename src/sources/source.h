/*
 * Sources: one interface for every kind (files, directories, SQLite files,
 * PostgreSQL, MongoDB), and the kind table that names each kind's facts.
 *
 * Backup: ops->backup writes the source into a member sink rooted at its
 * archive directory (KIND-DIR/NAME; stream/member-sink.h). Restore of a
 * database: restore_begin, restore_member for each logical member (parts
 * already joined, through a member reader), restore_end, then swap. Files and
 * directories are restored by restore.c's staging and recover.c's swap.
 */
#ifndef LB_SOURCES_SOURCE_H
#define LB_SOURCES_SOURCE_H

#include "common.h"

#include "config.h"
#include "err.h"
#include "report.h"
#include "strvec.h"

/* Backup side: the member sink (stream/member-sink.h). */
struct member_sink;

/* What a backup of one source is given. */
struct source_backup {
	const struct config *cfg;
	const struct source_spec *spec;
	bool sqlite; /* files: an SQLite database (decided once, as the manifest records) */
	const struct reporter *report; /* warnings (a file that vanished), for the log */
};

/* Restore side: the member reader (stream/tar-reader.h) joins a member's parts. */
struct member_reader;
struct archive_entry;
struct journal;
struct journal_db;

/* What a restore of one source is asked to do. */
struct source_restore_req {
	const struct config *cfg;
	const struct source_spec *target; /* from the current configuration */
	const char *name;		  /* the source's name in the archive */
	/* Files and directories. */
	enum source_kind kind;
	const char *path; /* where it goes */
	bool sqlite;	  /* an SQLite database (its -wal, -shm, -journal move with it) */
	int cwd_fd;	  /* the working directory (libarchive's disk writer works in its own) */
	const struct reporter *report; /* warnings (libarchive's), for the log */
	/*
	 * Before the module creates a staging object, it names it (and where the
	 * object it replaces will wait) here: the restore's journal records it
	 * durably, so a restore killed at any point can find it (see journal.h).
	 */
	int (*record)(void *record_ctx, const struct journal_db *d, struct err *e);
	void *record_ctx;
	/*
	 * A restore drill (RESTORE_DRILL): not NULL, the prefix of the scratch
	 * databases ("lifeboat_drill_<hash of BACKUP_NAME>_"). The module restores
	 * every dump into a new database PREFIX<random> on the target's server,
	 * never into (or over) a live one, records nothing in a journal, restores
	 * no server-wide objects (roles), and restore_end(!ok) drops them.
	 */
	const char *drill;
};

/* The steps of a database swap, as the journal drives them (see recover.h). */
enum db_swap_step {
	DB_SWAP_FORWARD, /* staged object into the target's place; the old one kept aside */
	DB_SWAP_FINISH,	 /* after every target swapped: drop the old object */
	DB_SWAP_BACK,	 /* the old object back in place; the staged one dropped */
};

/* Where a member's data comes from, with the caller hashing it (stream/tar-reader.h). */
typedef int tar_data_fn(void *ctx, const void *buf, size_t n, int64_t off, bool fill,
			struct err *e);

/* One member of the archive, as a restore hands it to its source. */
struct restore_member {
	const char *rel;  /* below the source's archive directory; "" for the source itself */
	const char *path; /* the member's archive path, for messages */
	/* Streamed kinds: the member's bytes, parts joined (hashed as they are read). */
	struct member_reader *reader;
	/*
	 * Files and directories (first pass): the entry (its pathname the module's
	 * to rewrite), and its data, read (and hashed by the caller) into fn.
	 */
	struct archive_entry *ent;
	int (*read)(void *read_ctx, tar_data_fn *fn, void *fn_ctx, struct err *e);
	void *read_ctx;
};

struct source_ops {
	/* Everything the source names into the sink. */
	int (*backup)(const struct source_backup *src, struct member_sink *sink, struct err *e);

	/*
	 * Restore. Every source is staged as the one verifying pass reads it:
	 * restore_begin before the pass. Files and directories get each entry; a
	 * streamed kind (a database, `after_verify`) gets each logical member
	 * through a reader that hashes it, and its restore_end(ok) comes only once
	 * the whole archive verified and the application stopped.
	 */
	bool after_verify;
	/* Every pass, every mode: is this entry one the kind can have? (LB_EXIT_INTEGRITY) */
	int (*check_member)(const char *path, const char *rel, struct archive_entry *ent,
			    const char *name, struct err *e);
	/* Before the first member: stage, or connect and check the target. *ctx is the module's. */
	int (*restore_begin)(const struct source_restore_req *req, void **ctx, struct err *e);
	/* One logical member, in archive order. */
	int (*restore_member)(void *ctx, const struct restore_member *m, struct err *e);
	/* Another source's members come next (may be NULL): close what is open. */
	int (*restore_pause)(void *ctx, struct err *e);
	/*
	 * Before the swap (may be NULL): name the staged copy in the journal (a
	 * database names its objects through req->record as it creates them).
	 * From here the journal owns the staged copy.
	 */
	int (*restore_plan)(void *ctx, struct journal *jr, struct err *e);
	/*
	 * After the last member (ok): finish staging, keeping every staged object
	 * for the swap; on failure (!ok): drop the staged objects the journal does
	 * not own. Frees ctx. Also called after a failed restore_begin, with
	 * whatever it left in *ctx.
	 */
	int (*restore_end)(void *ctx, bool ok, struct err *e);
	/*
	 * A drill, after the last member (may be NULL: the kind is verified only):
	 * finish what restore_end(ok) would, then count what the scratch databases
	 * hold; one line per database into `report` ("database 'app': 3 tables,
	 * 1200 rows (public.t 1000, ...)"). restore_end(!ok) follows on every path.
	 */
	int (*drill_check)(void *ctx, struct strvec *report, struct err *e);
	/*
	 * Before a drill (with drill_check): drop the scratch databases PREFIX* on
	 * the server `target` names that a drill killed outright left behind; each
	 * one's name into `dropped`.
	 */
	int (*drill_sweep)(const struct config *cfg, const struct source_spec *target,
			   const char *prefix, struct strvec *dropped, struct err *e);
	/*
	 * One step of the swap of a recorded object, on the server `target`
	 * names. Each step looks at which of target, staged and old exist, so it
	 * completes whatever a killed process left half done; the restore runs its
	 * own swap with it too (after restore_end(ok) kept the staged objects).
	 */
	int (*swap)(const struct config *cfg, const struct source_spec *target,
		    const struct journal_db *d, enum db_swap_step step, struct err *e);

	/*
	 * The restore replaces the server's files while it is stopped: a restore in a
	 * Compose project stops the server's container around the swap like the
	 * application's, instead of keeping it running for the restore.
	 */
	bool offline_restore;
	/* Before the manifest is written (may be NULL): the server's version, recorded there. */
	char *(*server_version)(const struct source_backup *src, struct err *e);

	/* May the backup or restore of this kind use the Docker engine (may be NULL: never)? */
	bool (*uses_docker)(const struct config *cfg);
};

/* sources/files.c: the backup of files and directories (their restore: files-restore.c). */
int files_backup(const struct source_backup *src, struct member_sink *sink, struct err *e);

extern const struct source_ops files_ops;
/* The kinds' variables, beside their code (config-vars.h). */
struct config_var_group;
extern const struct config_var_group dirs_vars, files_vars, postgres_vars, mongodb_vars, redis_vars,
	mysql_vars;
extern const struct source_ops dirs_ops;
extern const struct source_ops postgres_ops;
extern const struct source_ops mongodb_ops;
extern const struct source_ops redis_ops;
extern const struct source_ops mysql_ops;

/* One row of the kind table (sources/kinds.c), indexed by enum source_kind. */
struct source_kind_desc {
	const char *word;	    /* manifest.json, the journal, messages: "dir" */
	const char *dir;	    /* the archive's directory: "dirs" */
	const char *var;	    /* the variable that configures it: "BACKUP_DIRS" */
	const char *display;	    /* in messages: "PostgreSQL" */
	const char *const *schemes; /* databases: URI schemes; NULL for paths */
	bool host_in_query;	    /* databases: the URI's query may name the host (libpq) */
	bool name_from_host;	    /* databases: a source is named after its host, not its db */
	/*
	 * A directory tree: member REL lands on TARGET/REL, the directory's own
	 * entry is REL "", and a restore removes what the archive does not hold.
	 * Else a member lands on TARGET itself.
	 */
	bool tree;
	const char *replaces; /* what a restore replaces, after the target in the countdown */
	const char *into;     /* "restored KIND 'NAME' INTO 'TARGET'" */
	const struct source_ops *ops;
	const struct config_var_group *vars; /* its rows of the configuration table, or NULL */
};
const struct source_kind_desc *source_kind_desc(enum source_kind kind);

/* Where member `rel` of a source of kind `d` restored to `target` lands (caller frees). */
char *source_member_target(const struct source_kind_desc *d, const char *target, const char *rel);

/* The ops of a kind. */
const struct source_ops *source_ops_for(enum source_kind kind);

/* check_member of a streamed kind: regular files below the source only. */
int source_check_streamed(const char *path, const char *rel, struct archive_entry *ent,
			  const char *name, struct err *e);

#endif

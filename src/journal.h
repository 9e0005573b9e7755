/* The restore journal: a swap recorded durably before it starts, so a killed restore is finished or
 * undone. */
#ifndef LB_JOURNAL_H
#define LB_JOURNAL_H

#include "common.h"

#include <time.h>

#include "config.h"
#include "err.h"
#include "strvec.h"

/*
 * STATE_DIR/NAME.restore.json exists from the moment a restore starts to touch
 * data until its swap is finished or undone. Its state says which way a
 * restore killed meanwhile is recovered (see recover.h):
 *   staging       database sources are still being staged: undo (roll back);
 *   swapping      every staged copy is complete and verified: finish (forward);
 *   rolling-back  the restore failed and was undoing its swap: undo.
 */
enum journal_state { JOURNAL_STAGING, JOURNAL_SWAPPING, JOURNAL_ROLLING_BACK };

/* How far a directory's swap got; each phase is written before its first step. */
enum journal_phase {
	PHASE_PENDING,	/* nothing moved */
	PHASE_CLEARING, /* the target's entries are moving into `old` */
	PHASE_FILLING,	/* the target holds no old entry; staged entries move in */
	PHASE_KEEPING,	/* the excluded entries in `keep` move back from `old` into the target */
	PHASE_DONE,	/* the target holds the staged content (and the kept entries) only */
};

struct journal_meta {
	bool set;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec atime, mtime;
};

/* A file or directory target. */
struct journal_target {
	enum source_kind kind; /* SOURCE_DIR or SOURCE_FILE */
	char *name;
	char *target;
	char *stage; /* the staging directory (.lifeboat-restore.*) */
	char *old;   /* dirs: where the target's entries wait (.lifeboat-old.*) */
	enum journal_phase phase;
	bool sqlite;		  /* files: -wal, -shm and -journal move aside with the old file */
	uint64_t ino, dev;	  /* files: the staged file, to tell it from the old one */
	struct journal_meta root; /* dirs: the directory's own metadata in the backup */
	struct timespec times[2]; /* dirs: the target's atime and mtime before the swap */
	struct strvec keep; /* dirs: BACKUP_EXCLUDE'd paths (relative) the swap leaves in place */
};

/* A database object staged beside its target (PostgreSQL database, MongoDB collection). */
struct journal_db {
	enum source_kind kind;
	char *source; /* the source's name */
	char *db;     /* MongoDB: the database; NULL for PostgreSQL */
	char *target; /* the object replaced */
	char *staged; /* where the backup was restored */
	char *old;    /* where the replaced object waits until the end, or NULL */
	char *owner;  /* PostgreSQL: the replaced database's owner */
	bool existed; /* the target existed before the restore */
};

struct journal {
	char *path;
	char *archive;
	long pid;
	time_t since;
	enum journal_state state;
	struct journal_target *t;
	size_t nr_t;
	struct journal_db *d;
	size_t nr_d;
};

/* STATE_DIR/NAME.restore.json; caller frees. */
char *journal_path(const struct config *cfg);

/* A new, unwritten journal for the restore of `archive`. */
void journal_init(struct journal *j, const struct config *cfg, const char *archive);
void journal_release(struct journal *j);

/* Append an entry (copied; the strings are the journal's). */
struct journal_target *journal_add_target(struct journal *j, enum source_kind kind,
					  const char *name, const char *target, const char *stage);
void journal_add_db(struct journal *j, const struct journal_db *d);

/* Write it durably: temp file, fsync, rename, fsync the directory. */
int journal_write(struct journal *j, struct err *e);

/* Read STATE_DIR/NAME.restore.json: 1 and *ret filled, 0 when there is none, or -1. */
int journal_load(const struct config *cfg, struct journal *ret, struct err *e);

/* Remove the journal file (and a temp file a killed write left); fsync the directory. */
int journal_remove(struct journal *j, struct err *e);

const char *journal_state_str(enum journal_state s);

#endif

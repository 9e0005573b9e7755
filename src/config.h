/* BACKUP_* environment (and *_FILE secrets) parsed and validated into struct config. */
#ifndef LB_CONFIG_H
#define LB_CONFIG_H

#include "common.h"

#include "cmdline.h"
#include "cron.h"
#include "err.h"
#include "exclude.h"
#include "naming.h"
#include "notify-url.h"
#include "parse.h"
#include "retention.h"
#include "strbuf.h"
#include "strvec.h"

enum source_kind {
	SOURCE_DIR,
	SOURCE_FILE,
	SOURCE_POSTGRES,
	SOURCE_MONGODB,
	SOURCE_REDIS,
	SOURCE_MYSQL
};

struct source_spec {
	enum source_kind kind;
	char *path; /* absolute, without trailing slash; databases: the URI redacted */
	char *name; /* [A-Za-z0-9._-]+, unique over files and dirs, and per database kind */
	char *uri;  /* databases: the URI as given (a secret: it may hold a password) */
};

/*
 * What the kind table (sources/kinds.c) says of a kind.
 * "dir", "file", "postgres", "mongodb", "mysql": the manifest's word for a kind.
 */
const char *source_kind_str(enum source_kind kind);
int source_kind_parse(const char *s, enum source_kind *ret);
/* "dirs/NAME", "files/NAME", "postgres/NAME", "mongodb/NAME": a source's place in an archive. */
char *source_archive_prefix(enum source_kind kind, const char *name);
/* The variable a source kind comes from ("BACKUP_DIRS", ...). */
const char *source_var(enum source_kind kind);
/* Its name in messages: "directory", "file", "PostgreSQL", "MongoDB". */
const char *source_display_name(enum source_kind kind);
/* A database kind whose URI may name the host in its query instead (libpq's "?host="). */
bool source_uri_host_in_query(enum source_kind kind);
/* A server-wide database kind: its sources are named after their host (Redis). */
bool source_name_from_host(enum source_kind kind);
/* May a source of this kind use the Docker engine under this configuration? */
struct config;
bool source_uses_docker(const struct config *cfg, enum source_kind kind);
/* A database kind: configured by URIs. */
bool source_is_db(enum source_kind kind);
/* A database kind's URI schemes, NULL-terminated, the one named in messages first. */
const char *const *source_uri_schemes(enum source_kind kind);

/* Where pg_dump / pg_restore run: BACKUP_POSTGRES_DUMP. */
enum pg_dump_mode {
	PG_DUMP_AUTO,  /* here, or in the database's container when its server is newer */
	PG_DUMP_LOCAL, /* always here */
	PG_DUMP_EXEC,  /* always in the database's container (Docker exec) */
};

/* The local store: BACKUP_LOCAL_PATH. */
struct config_local {
	char *path; /* NULL when unset */
};

/* The S3 store: enabled when `bucket` is set. */
struct config_s3 {
	char *bucket;
	char *endpoint; /* scheme://host[:port], NULL for AWS */
	char *region;	/* default us-east-1 */
	struct strbuf access_key, secret_key;
	const char *access_origin, *secret_origin; /* the variables they came from */
	int path_style; /* -1: unset (path-style for custom endpoints), 0, 1 */
	char *ca_file;
	char *storage_class;
	uint64_t part_size; /* floor of the multipart part size */
	unsigned timeout;   /* BACKUP_S3_TIMEOUT: seconds a request may go without progress */
};

/* The SFTP store: enabled when `url` is set. */
struct config_sftp {
	char *url;  /* BACKUP_SFTP_URL as given (it never holds a password) */
	char *user; /* decoded */
	char *host; /* as a URL names it: a name, an IPv4 address or [IPv6] */
	unsigned port;
	char *path; /* the directory, decoded, without a trailing '/': "" is the root */
	struct strbuf password, passphrase;
	const char *password_origin, *passphrase_origin; /* the variables they came from */
	char *identity_file;
	char *known_hosts;
	char *host_key;	  /* BACKUP_SFTP_HOST_KEY as "SHA256:..." (a key given whole is hashed) */
	unsigned timeout; /* BACKUP_SFTP_TIMEOUT: seconds without progress */
};

/* The WebDAV store: enabled when `url` is set. */
struct config_webdav {
	char *url;  /* http(s)://host[:port]/path, without credentials or a trailing '/' */
	char *user; /* NULL: no authentication */
	struct strbuf password;
	const char *password_origin; /* the variable it came from */
	char *ca_file;
	unsigned timeout; /* BACKUP_WEBDAV_TIMEOUT: seconds a request may go without progress */
};

/* The rclone store: enabled when `remote` is set. */
struct config_rclone {
	char *remote;	      /* "name:path", without a trailing '/' */
	struct strbuf config; /* the rclone.conf's text (a secret); empty: none given */
	const char *config_origin;
};

/* Encryption: BACKUP_ENCRYPTION, the passphrase, public keys, age recipients, the private side. */
struct config_crypt {
	bool encrypt;		/* false only with BACKUP_ENCRYPTION=none */
	enum encryption kind;	/* BACKUP_ENCRYPTION: gpg (default), age or none */
	struct strbuf key;	/* BACKUP_ENCRYPTION_KEY: the passphrase (gpg) */
	const char *key_origin; /* which variable the key came from, or NULL */
	/* BACKUP_GPG_PUBLIC_KEYS: every armored key, concatenated (public, not secret). */
	struct strbuf gpg_public;
	const char *gpg_public_origin;
	struct strvec gpg_recipients; /* their primary fingerprints, checked at load */
	struct strvec gpg_subkeys;    /* per recipient: its encryption subkeys' key ids */
	/* BACKUP_AGE_RECIPIENTS: one validated recipient per line. */
	struct strbuf age_recipients;
	const char *age_origin;
	size_t nr_age_recipients;
	/*
	 * The private side, for restore/verify/ls only: BACKUP_GPG_PRIVATE_KEY_FILE with
	 * BACKUP_GPG_PRIVATE_KEY_PASSPHRASE, BACKUP_AGE_IDENTITY_FILE, or `--key-file`
	 * (key_file_arg: then it replaces both files for this run).
	 */
	char *gpg_private_file;
	struct strbuf gpg_private_pass;
	const char *gpg_private_pass_origin;
	char *age_identity_file;
	bool key_file_arg;
	/* Signatures: BACKUP_SIGNING_KEY_FILE (+ passphrase) signs, BACKUP_VERIFY_KEYS checks. */
	char *signing_key_file;
	struct strbuf signing_pass;
	const char *signing_pass_origin;
	struct strbuf verify_keys; /* armored public keys (not secret) */
	const char *verify_origin;
	struct strvec verify_fprs;
};

struct config_compress {
	enum compression algo; /* BACKUP_COMPRESSION, default gzip */
	int level;	       /* BACKUP_COMPRESSION_LEVEL, or the algorithm's default */
	unsigned threads;      /* BACKUP_COMPRESSION_THREADS, or the CPUs we may use */
};

/* The daemon (`lifeboat run`) and the run lock. */
struct config_daemon {
	char *schedule;	  /* BACKUP_SCHEDULE as given; NULL: manual mode */
	struct cron cron; /* parsed schedule, when set */
	/* Restore drills (job_verify): BACKUP_VERIFY_SCHEDULE, NULL: none scheduled. */
	char *verify_schedule;
	struct cron verify_cron;
	bool verify_random;	   /* BACKUP_VERIFY_PICK=random (default latest) */
	unsigned verify_pick_last; /* BACKUP_VERIFY_PICK_LAST: random among the N newest */
	unsigned lock_timeout;	   /* seconds to wait for another run; default 3600 */
	char *metrics_addr;	   /* "HOST:PORT", NULL: off */
};

/* Webhook URLs: secrets, URLs often carry a token. NULL when unset. */
struct config_webhook {
	char *start, *success, *failure;
};

/* Notifications people read (notify.c): BACKUP_NOTIFY_*. */
struct config_notify {
	struct notify_services services; /* BACKUP_NOTIFY_URLS (secrets) */
	enum notify_level level;	 /* BACKUP_NOTIFY_LEVEL, default failure */
	char *template;			 /* BACKUP_NOTIFY_TEMPLATE, NULL: the built-in text */
	const char *origin;		 /* the variable the URLs came from */
};

/* Containers stopped around a backup. */
struct config_stop {
	struct strvec services; /* BACKUP_STOP_SERVICES, validated, no duplicates */
	unsigned stop_wait;	/* BACKUP_STOP_WAIT seconds, default 2 */
	unsigned start_wait;	/* BACKUP_START_WAIT seconds, default 3 */
};

/* Commands run before and after a backup or restore (hooks.c). */
struct config_hooks {
	struct hook_list pre_backup, post_backup;   /* BACKUP_PRE_COMMANDS, BACKUP_POST_COMMANDS */
	struct hook_list pre_restore, post_restore; /* BACKUP_PRE/POST_RESTORE_COMMANDS */
	unsigned timeout;			    /* BACKUP_COMMAND_TIMEOUT seconds */
};

struct config_docker {
	char *host; /* DOCKER_HOST, NULL: unix:///var/run/docker.sock */
};

struct config_postgres {
	enum pg_dump_mode dump_mode; /* BACKUP_POSTGRES_DUMP */
};

struct config_redis {
	char *data_dir; /* BACKUP_REDIS_DATA_DIR: the server's data directory, mounted; or NULL */
	bool cli_exec;	/* BACKUP_REDIS_CLI=exec: redis-cli runs in the server's container */
};

struct config_mysql {
	enum pg_dump_mode dump_mode; /* BACKUP_MYSQL_DUMP: the same three choices */
};

/* BACKUP_UPLOAD: how the archive reaches the stores other than local. */
enum upload_mode {
	UPLOAD_STREAM,	    /* the same stream to every store at once (default) */
	UPLOAD_AFTER_LOCAL, /* local first; then the finished file to the others */
};

struct config {
	char *name;
	struct source_spec *sources;
	size_t nr_sources;
	struct config_local local;
	struct config_s3 s3;
	struct config_sftp sftp;
	struct config_webdav webdav;
	struct config_rclone rclone;
	struct config_crypt crypt;
	struct config_compress compress;
	struct retention_rules retention;
	struct config_daemon daemon;
	struct config_webhook webhook;
	struct config_notify notify;
	struct config_stop stop;
	struct config_hooks hooks;
	struct config_docker docker;
	struct config_postgres postgres;
	struct config_redis redis;
	struct exclude_list exclude; /* BACKUP_EXCLUDE */
	struct config_mysql mysql;
	enum upload_mode upload; /* BACKUP_UPLOAD */
	bool debug;
	char *tz;		/* NULL when unset */
	char *log_file;		/* default /var/log/backup.log */
	char *state_dir;	/* lock and state files; default /var/lib/lifeboat */
	struct strvec warnings; /* for the caller to log */
};
#define CONFIG_INIT                                                                              \
	{                                                                                        \
		.crypt.key = STRBUF_INIT, .warnings = STRVEC_INIT, .stop.services = STRVEC_INIT, \
		.s3.access_key = STRBUF_INIT, .s3.secret_key = STRBUF_INIT, .s3.path_style = -1, \
		.crypt.gpg_public = STRBUF_INIT, .crypt.gpg_recipients = STRVEC_INIT,            \
		.crypt.gpg_subkeys = STRVEC_INIT, .crypt.age_recipients = STRBUF_INIT,           \
		.crypt.gpg_private_pass = STRBUF_INIT, .crypt.signing_pass = STRBUF_INIT,        \
		.crypt.verify_keys = STRBUF_INIT, .crypt.verify_fprs = STRVEC_INIT,              \
		.sftp.password = STRBUF_INIT, .sftp.passphrase = STRBUF_INIT,                    \
		.webdav.password = STRBUF_INIT, .rclone.config = STRBUF_INIT                     \
	}

/* What the command about to run needs from the configuration. */
enum config_need {
	NEED_STORE = 1 << 0,   /* a destination to read or write archives */
	NEED_SOURCES = 1 << 1, /* every source path must exist now (backup) */
	NEED_KEY = 1 << 2,     /* a key, unless BACKUP_ENCRYPTION=none */
	/*
	 * The daemon's start: like NEED_SOURCES, but a BACKUP_FILES file may be missing
	 * while its directory exists (the application may create it later); each such
	 * file is added to cfg->warnings' caller through `missing_files`.
	 */
	NEED_SOURCES_AT_START = 1 << 3,
	/*
	 * BACKUP_VERIFY_KEYS checked with gpg (restore, verify, ls, check). NEED_KEY checks
	 * BACKUP_GPG_PUBLIC_KEYS the same way; without either no command starts gpg to load
	 * the configuration (status, list, prune, version).
	 */
	NEED_VERIFY_KEYS = 1 << 4,
};

/*
 * Parse the environment `envp` (NULL-terminated "K=V" strings). Reads the
 * files named by *_FILE variables. Every failure is LB_EXIT_CONFIG with a
 * message naming the variable; secret values never appear in messages.
 */
int config_load(struct config *cfg, char *const *envp, struct err *e);

/*
 * Only what reporting a refused run needs: BACKUP_NAME, TZ, the webhooks, the
 * BACKUP_NOTIFY_* rows, BACKUP_LOG_FILE and BACKUP_STATE_DIR (so a bad value elsewhere
 * is still reported). Errors as config_load's.
 */
int config_load_reporting(struct config *cfg, char *const *envp, struct err *e);

/*
 * Check what a command needs (see enum config_need); touches the file system, and runs gpg
 * for the keys NEED_KEY and NEED_VERIFY_KEYS check (filling their fingerprints in cfg).
 */
int config_require(struct config *cfg, unsigned need, struct err *e);

/* Directory holding this name's archives in the local store (caller frees). */
char *config_local_dir(const struct config *cfg);

/* Human-readable configuration with secrets redacted. */
void config_describe(const struct config *cfg, struct strbuf *out);

const struct source_spec *config_find_source(const struct config *cfg, enum source_kind kind,
					     const char *name);

/* Validate a backup or source name: [A-Za-z0-9._-]+, not "." or "..". */
static inline bool config_name_valid(const char *s)
{
	return parse_name_valid(s);
}

/* The variables Lifeboat reads as README.md's Markdown table, from the configuration table. */
void config_variables_markdown(struct strbuf *out);

void config_release(struct config *cfg);

#endif

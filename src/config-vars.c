/*
 * The configuration table: one row per variable Lifeboat reads (name, secret, *_FILE,
 * parser and field, default, help), with the parsers and the lines `lifeboat check`
 * prints. Loaded, described and listed in README.md in this order.
 */
#include "common.h"

#include <ctype.h>

#include "compress.h"
#include "config-vars.h"
#include "docker.h"
#include "parse.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

#define KEY_MAX_LEN 4096

#define FIELD(cfg, v, type)  ((type *)(void *)((char *)(cfg) + (v)->off))
#define CFIELD(cfg, v, type) ((const type *)(const void *)((const char *)(cfg) + (v)->off))

#define PARSE_ARGS                                                                     \
	struct config *cfg, const struct config_var *v, const char *value, size_t len, \
		const char *origin, char *const *envp, struct err *e
/* Not every parser needs every argument. */
#define UNUSED_ARGS                                                                            \
	do {                                                                                   \
		(void)cfg, (void)v, (void)value, (void)len, (void)origin, (void)envp, (void)e; \
	} while (0)

/* ---- shared parsers: the row's `off` names the field ---- */

/* An absolute path without "..", normalized (char *); unset: the row's default or NULL. */
static int var_path(PARSE_ARGS)
{
	char **dst = FIELD(cfg, v, char *);
	UNUSED_ARGS;

	if (value && (value[0] != '/' || path_has_dotdot(value)))
		return err_set(e, LB_EXIT_CONFIG, "%s '%s' must be an absolute path without '..'",
			       v->name, SHOW(value));
	if (!value && !v->def)
		return 0;
	*dst = xstrdup(value ? value : v->def);
	path_normalize(*dst);
	return 0;
}

/* A string kept as given (char *), NULL when unset. */
static int var_string(PARSE_ARGS)
{
	UNUSED_ARGS;
	if (value)
		*FIELD(cfg, v, char *) = xstrdup(value);
	return 0;
}

/* true/false (bool). */
static int var_bool(PARSE_ARGS)
{
	UNUSED_ARGS;
	if (value && parse_bool(value, FIELD(cfg, v, bool)) < 0)
		return err_set(e, LB_EXIT_CONFIG, "%s '%s' is invalid: expected true or false",
			       v->name, SHOW(value));
	return 0;
}

/* A whole number from 0 to `max` (unset: the default); `what` says what it counts. */
static int parse_uint(const struct config_var *v, const char *value, const char *what,
		      unsigned *ret, struct err *e)
{
	uint64_t n = 0;

	if (!value && v->def && parse_decimal(v->def, &n, NULL) < 0)
		return err_set(e, LB_EXIT_INTERNAL, "bad default for %s", v->name);
	if (value && (parse_decimal(value, &n, NULL) < 0 || n > v->max))
		return err_set(e, LB_EXIT_CONFIG, "%s '%s' is invalid: expected %s from 0 to %ld",
			       v->name, SHOW(value), what, (long)v->max);
	*ret = (unsigned)n;
	return 0;
}

/* Seconds to wait around stopping containers (unsigned). */
static int var_wait(PARSE_ARGS)
{
	UNUSED_ARGS;
	return parse_uint(v, value, "whole seconds", FIELD(cfg, v, unsigned), e);
}

/* A retention count (int); unset is 0, the rule off. */
static int var_count(PARSE_ARGS)
{
	unsigned n = 0;
	UNUSED_ARGS;

	if (parse_uint(v, value, "a whole number", &n, e) < 0)
		return -1;
	*FIELD(cfg, v, int) = (int)n;
	return 0;
}

/* A duration in seconds (unsigned), from `min` to 7 days. */
static int var_duration(PARSE_ARGS)
{
	UNUSED_ARGS;
	if (parse_duration(value ? value : v->def, v->min, FIELD(cfg, v, unsigned)) < 0)
		return err_set(e, LB_EXIT_CONFIG,
			       "%s '%s' is invalid: expected seconds, or a number with s, m or h "
			       "(%u s to 7 days)",
			       v->name, SHOW(value ? value : v->def), v->min);
	return 0;
}

/* ---- the rows' own parsers ---- */

static int var_name(PARSE_ARGS)
{
	UNUSED_ARGS;
	if (!value)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_NAME is not set: it names your backups (for example "
			       "BACKUP_NAME=myapp-production)");
	if (!parse_name_valid(value) || strlen(value) > NAME_MAX_LEN)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_NAME '%s' is invalid: use 1 to %d letters, digits, '.', '_' "
			       "and '-'",
			       SHOW(value), NAME_MAX_LEN);
	cfg->name = xstrdup(value);
	return 0;
}

static int var_encryption(PARSE_ARGS)
{
	UNUSED_ARGS;
	cfg->encrypt = true;
	if (value && !strcasecmp(value, "none"))
		cfg->encrypt = false;
	else if (value && strcasecmp(value, "gpg"))
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_ENCRYPTION '%s' is invalid: expected 'gpg' or 'none'",
			       SHOW(value));
	return 0;
}

static int var_key(PARSE_ARGS)
{
	UNUSED_ARGS;
	if (!value)
		return 0;
	strbuf_add(&cfg->key, value, len);
	cfg->key_origin = origin;
	if (!cfg->encrypt)
		strvec_pushf(&cfg->warnings, "%s is ignored because BACKUP_ENCRYPTION=none",
			     origin);
	/* gpg reads the passphrase as one line from a pipe (crypt.c). */
	if (cfg->encrypt && cfg->key.len > KEY_MAX_LEN)
		return err_set(e, LB_EXIT_CONFIG, "%s is longer than %d bytes", origin,
			       KEY_MAX_LEN);
	if (cfg->encrypt && memchr(cfg->key.buf, '\n', cfg->key.len))
		return err_set(e, LB_EXIT_CONFIG,
			       "%s contains a line break: gpg would read only its first line",
			       origin);
	return 0;
}

static int var_compression(PARSE_ARGS)
{
	UNUSED_ARGS;
	cfg->compression = COMPRESSION_GZIP;
	if (value && !compression_parse(value, &cfg->compression))
		return err_set(
			e, LB_EXIT_CONFIG,
			"BACKUP_COMPRESSION '%s' is invalid: expected 'gzip', 'zstd' or 'none'",
			SHOW(value));
	return 0;
}

/* After BACKUP_COMPRESSION: the level's range depends on the algorithm. */
static int var_compression_level(PARSE_ARGS)
{
	uint64_t n;
	int lo, hi;
	UNUSED_ARGS;

	cfg->compression_level = compression_default_level(cfg->compression);
	compression_level_range(cfg->compression, &lo, &hi);
	if (value && cfg->compression == COMPRESSION_NONE) {
		strvec_pushf(&cfg->warnings,
			     "BACKUP_COMPRESSION_LEVEL is ignored because BACKUP_COMPRESSION=none");
	} else if (value) {
		if (parse_decimal(value, &n, NULL) < 0 || n < (uint64_t)lo || n > (uint64_t)hi)
			return err_set(
				e, LB_EXIT_CONFIG,
				"BACKUP_COMPRESSION_LEVEL '%s' is invalid: expected %d to %d "
				"for %s",
				SHOW(value), lo, hi, compression_name(cfg->compression));
		cfg->compression_level = (int)n;
	}
	return 0;
}

static int var_compression_threads(PARSE_ARGS)
{
	uint64_t n;
	UNUSED_ARGS;

	cfg->compression_threads = compress_available_cpus();
	if (!value)
		return 0;
	if (parse_decimal(value, &n, NULL) < 0 || n < 1 || n > 256)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_COMPRESSION_THREADS '%s' is invalid: expected a whole "
			       "number from 1 to 256",
			       SHOW(value));
	cfg->compression_threads = (unsigned)n;
	return 0;
}

static int var_dirs(PARSE_ARGS)
{
	UNUSED_ARGS;
	return value ? config_parse_paths(cfg, v->name, value, SOURCE_DIR, e) : 0;
}

static int var_files(PARSE_ARGS)
{
	UNUSED_ARGS;
	return value ? config_parse_paths(cfg, v->name, value, SOURCE_FILE, e) : 0;
}

static int var_postgres(PARSE_ARGS)
{
	UNUSED_ARGS;
	return value ? config_parse_uris(cfg, origin, value, SOURCE_POSTGRES, e) : 0;
}

static int var_mongodb(PARSE_ARGS)
{
	UNUSED_ARGS;
	return value ? config_parse_uris(cfg, origin, value, SOURCE_MONGODB, e) : 0;
}

static int var_pg_dump(PARSE_ARGS)
{
	UNUSED_ARGS;
	if (!value || !strcasecmp(value, "auto"))
		cfg->pg_dump_mode = PG_DUMP_AUTO;
	else if (!strcasecmp(value, "local"))
		cfg->pg_dump_mode = PG_DUMP_LOCAL;
	else if (!strcasecmp(value, "exec"))
		cfg->pg_dump_mode = PG_DUMP_EXEC;
	else
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_POSTGRES_DUMP '%s' is invalid: expected auto, local or exec",
			       SHOW(value));
	return 0;
}

static int var_s3_bucket(PARSE_ARGS)
{
	UNUSED_ARGS;
	if (!value)
		return 0;
	if (!parse_bucket_valid(value))
		return err_set(
			e, LB_EXIT_CONFIG,
			"BACKUP_S3_BUCKET '%s' is invalid: S3 bucket names have 3 to 63 "
			"lowercase letters, digits, '.' and '-', start and end with a letter "
			"or digit, and are not IP addresses (no 's3://' and no path)",
			SHOW(value));
	cfg->s3_bucket = xstrdup(value);
	return 0;
}

static int var_s3_access_key(PARSE_ARGS)
{
	UNUSED_ARGS;
	if (!value)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_S3_BUCKET is set but BACKUP_S3_ACCESS_KEY is not (or "
			       "BACKUP_S3_ACCESS_KEY_FILE)");
	strbuf_add(&cfg->s3_access_key, value, len);
	cfg->s3_access_origin = origin;
	return 0;
}

static int var_s3_secret_key(PARSE_ARGS)
{
	UNUSED_ARGS;
	if (!value)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_S3_BUCKET is set but BACKUP_S3_SECRET_KEY is not (or "
			       "BACKUP_S3_SECRET_KEY_FILE)");
	strbuf_add(&cfg->s3_secret_key, value, len);
	cfg->s3_secret_origin = origin;
	return 0;
}

static int var_s3_endpoint(PARSE_ARGS)
{
	UNUSED_ARGS;
	if (!value)
		return 0;
	if (!parse_endpoint_valid(value))
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_S3_ENDPOINT is invalid: expected "
			       "https://host[:port] or http://host[:port]");
	int r = parse_url_check(value);
	if (r < 0)
		return err_set(e, LB_EXIT_CONFIG, "BACKUP_S3_ENDPOINT '%s' %s", SHOW(value),
			       r == -ERANGE ? "has an invalid port: expected 1 to 65535"
					    : "has no host");
	cfg->s3_endpoint = xstrdup(value);
	size_t n = strlen(cfg->s3_endpoint);
	if (cfg->s3_endpoint[n - 1] == '/')
		cfg->s3_endpoint[n - 1] = '\0';
	return 0;
}

static int var_s3_region(PARSE_ARGS)
{
	UNUSED_ARGS;
	for (const char *p = value; p && *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return err_set(e, LB_EXIT_CONFIG,
				       "BACKUP_S3_REGION '%s' is invalid (expected a name such as "
				       "'us-east-1')",
				       SHOW(value));
	cfg->s3_region = xstrdup(value ? value : v->def);
	return 0;
}

static int var_s3_path_style(PARSE_ARGS)
{
	bool b;
	UNUSED_ARGS;

	if (!value)
		return 0;
	if (parse_bool(value, &b) < 0)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_S3_PATH_STYLE '%s' is invalid: expected true or false",
			       SHOW(value));
	cfg->s3_path_style = b;
	return 0;
}

static int var_s3_ca_file(PARSE_ARGS)
{
	UNUSED_ARGS;
	if (!value)
		return 0;
	if (access(value, R_OK) < 0)
		return err_set(e, LB_EXIT_CONFIG, "BACKUP_S3_CA_FILE '%s': %s", SHOW(value),
			       strerror(errno));
	cfg->s3_ca_file = xstrdup(value);
	return 0;
}

static int var_s3_storage_class(PARSE_ARGS)
{
	UNUSED_ARGS;
	for (const char *p = value; p && *p; p++)
		if (!isupper((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
			return err_set(e, LB_EXIT_CONFIG,
				       "BACKUP_S3_STORAGE_CLASS '%s' is invalid (expected a class "
				       "such as STANDARD_IA)",
				       SHOW(value));
	if (value)
		cfg->s3_storage_class = xstrdup(value);
	return 0;
}

static int var_s3_part_size(PARSE_ARGS)
{
	uint64_t n;
	UNUSED_ARGS;

	if (parse_size(value ? value : v->def, &n) < 0 || n < (5ull << 20) || n > (5ull << 30))
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_S3_PART_SIZE '%s' is invalid: expected a size from 5M to 5G "
			       "(for example 16M)",
			       SHOW(value ? value : v->def));
	cfg->s3_part_size = n;
	return 0;
}

static int var_stop_services(PARSE_ARGS)
{
	UNUSED_ARGS;
	return value ? config_parse_services(cfg, value, e) : 0;
}

static int var_tz(PARSE_ARGS)
{
	UNUSED_ARGS;
	if (!value)
		return 0;
	if (config_check_tz(value, e) < 0)
		return -1;
	cfg->tz = xstrdup(value);
	return 0;
}

static int var_schedule(PARSE_ARGS)
{
	struct err ce = ERR_INIT;
	UNUSED_ARGS;

	if (!value)
		return 0;
	if (cron_parse(value, &cfg->cron, &ce) < 0)
		return err_set(e, LB_EXIT_CONFIG, "BACKUP_SCHEDULE '%s': %s", SHOW(value), ce.msg);
	cfg->schedule = xstrdup(value);
	return 0;
}

/* A secret: the URL often carries a token, so no message shows it. */
static int var_webhook(PARSE_ARGS)
{
	UNUSED_ARGS;
	if (!value)
		return 0;
	if (strncmp(value, "http://", 7) && strncmp(value, "https://", 8))
		return err_set(e, LB_EXIT_CONFIG,
			       "%s is not an http:// or https:// URL (value not shown: it may hold "
			       "a token)",
			       origin);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)value[i] <= 0x20 || value[i] == 0x7f)
			return err_set(e, LB_EXIT_CONFIG,
				       "%s contains spaces or control characters (value not "
				       "shown)",
				       origin);
	int r = parse_url_check(value);
	if (r < 0)
		return err_set(
			e, LB_EXIT_CONFIG, "%s %s (value not shown: it may hold a token)", origin,
			r == -ERANGE ? "has an invalid port: expected 1 to 65535" : "has no host");
	*FIELD(cfg, v, char *) = xstrdup(value);
	return 0;
}

static int var_listen_addr(PARSE_ARGS)
{
	UNUSED_ARGS;
	if (!value)
		return 0;
	if (parse_listen_addr(value) < 0)
		return err_set(e, LB_EXIT_CONFIG,
			       "%s '%s' is invalid: expected HOST:PORT with an IPv4 address, or "
			       ":PORT for all interfaces (for example 127.0.0.1:9090)",
			       v->name, SHOW(value));
	*FIELD(cfg, v, char *) = xstrdup(value);
	return 0;
}

/* Not root (a local, non-container run): the lock and state go under HOME. */
static int var_state_dir(PARSE_ARGS)
{
	const char *home = NULL;

	if (var_path(cfg, v, value, len, origin, envp, e) < 0)
		return -1;
	for (char *const *p = envp; *p && !home; p++)
		if (!strncmp(*p, "HOME=", 5))
			home = *p + 5;
	if (home && !*home)
		home = NULL;
	if (!value && geteuid() != 0 && home && home[0] == '/' && !path_has_dotdot(home)) {
		free(cfg->state_dir);
		cfg->state_dir = xasprintf("%s/.local/state/lifeboat", home);
		path_normalize(cfg->state_dir);
	}
	return 0;
}

/* ---- `lifeboat check`'s lines ---- */

static void describe_name(const struct config *cfg, struct strbuf *out)
{
	strbuf_addf(out, "BACKUP_NAME          %s\n", cfg->name);
}

static void describe_local_path(const struct config *cfg, struct strbuf *out)
{
	strbuf_addf(out, "BACKUP_LOCAL_PATH    %s\n",
		    cfg->local_path ? cfg->local_path : "(unset)");
	if (cfg->local_path)
		strbuf_addf(out, "  archives in        %s/%s/\n", cfg->local_path, cfg->name);
}

static void describe_encryption(const struct config *cfg, struct strbuf *out)
{
	strbuf_addf(out, "BACKUP_ENCRYPTION    %s\n",
		    cfg->encrypt ? "gpg (OpenPGP symmetric, AES-256)" : "none");
}

static void describe_key(const struct config *cfg, struct strbuf *out)
{
	if (cfg->encrypt)
		strbuf_addf(out, "encryption key       %s\n",
			    cfg->key_origin
				    ? (!strcmp(cfg->key_origin, "BACKUP_ENCRYPTION_KEY")
					       ? "set in BACKUP_ENCRYPTION_KEY (redacted)"
					       : "read from BACKUP_ENCRYPTION_KEY_FILE (redacted)")
				    : "(unset)");
}

static void describe_compression(const struct config *cfg, struct strbuf *out)
{
	if (cfg->compression == COMPRESSION_NONE)
		strbuf_addf(out, "BACKUP_COMPRESSION   none\n");
	else
		strbuf_addf(out, "BACKUP_COMPRESSION   %s, level %d, %u thread%s\n",
			    compression_name(cfg->compression), cfg->compression_level,
			    cfg->compression_threads, cfg->compression_threads == 1 ? "" : "s");
}

static void describe_sources(const struct config *cfg, struct strbuf *out, enum source_kind kind)
{
	for (size_t i = 0; i < cfg->nr_sources; i++) {
		const struct source_spec *s = &cfg->sources[i];
		if (s->kind != kind)
			continue;
		char *prefix = source_archive_prefix(s->kind, s->name);
		strbuf_addf(out, "%-20s %s -> %s\n", source_var(s->kind), s->path, prefix);
		free(prefix);
	}
}

static void describe_dirs(const struct config *cfg, struct strbuf *out)
{
	describe_sources(cfg, out, SOURCE_DIR);
}

static void describe_files(const struct config *cfg, struct strbuf *out)
{
	describe_sources(cfg, out, SOURCE_FILE);
}

static void describe_postgres(const struct config *cfg, struct strbuf *out)
{
	describe_sources(cfg, out, SOURCE_POSTGRES);
}

static void describe_mongodb(const struct config *cfg, struct strbuf *out)
{
	describe_sources(cfg, out, SOURCE_MONGODB);
}

/* The S3 store, all its variables at once. */
static void describe_s3(const struct config *cfg, struct strbuf *out)
{
	if (!cfg->s3_bucket)
		return;
	strbuf_addf(out, "BACKUP_S3_BUCKET     %s\n", cfg->s3_bucket);
	strbuf_addf(out, "  archives in        s3://%s/%s/\n", cfg->s3_bucket, cfg->name);
	strbuf_addf(out, "BACKUP_S3_ENDPOINT   %s\n",
		    cfg->s3_endpoint ? cfg->s3_endpoint : "(unset: AWS S3)");
	strbuf_addf(out, "BACKUP_S3_REGION     %s\n", cfg->s3_region);
	strbuf_addf(out, "S3 access key        read from %s (redacted)\n", cfg->s3_access_origin);
	strbuf_addf(out, "S3 secret key        read from %s (redacted)\n", cfg->s3_secret_origin);
	strbuf_addf(out, "BACKUP_S3_PATH_STYLE %s\n",
		    cfg->s3_path_style < 0
			    ? (cfg->s3_endpoint ? "true (custom endpoint)" : "false (AWS)")
		    : cfg->s3_path_style ? "true"
					 : "false");
	if (cfg->s3_ca_file)
		strbuf_addf(out, "BACKUP_S3_CA_FILE    %s\n", cfg->s3_ca_file);
	if (cfg->s3_storage_class)
		strbuf_addf(out, "BACKUP_S3_STORAGE_CLASS %s\n", cfg->s3_storage_class);
	strbuf_addf(out, "BACKUP_S3_PART_SIZE  %llu MiB (minimum; grows for large backups)\n",
		    (unsigned long long)(cfg->s3_part_size >> 20));
	strbuf_addf(out,
		    "BACKUP_S3_TIMEOUT    %us without progress per request (a transfer that "
		    "moves is never cut)\n",
		    cfg->s3_timeout);
}

/* The containers stopped, with the waits and the engine. */
static void describe_stop_services(const struct config *cfg, struct strbuf *out)
{
	if (!cfg->stop_services.nr)
		return;
	strbuf_addstr(out, "BACKUP_STOP_SERVICES ");
	for (size_t i = 0; i < cfg->stop_services.nr; i++)
		strbuf_addf(out, "%s%s", i ? "," : "", cfg->stop_services.v[i]);
	strbuf_addf(out, " (wait %u s after stopping, %u s after starting)\n", cfg->stop_wait,
		    cfg->start_wait);
	strbuf_addf(out, "  Docker engine      %s\n",
		    cfg->docker_host ? cfg->docker_host : "unix:///var/run/docker.sock");
}

static void describe_debug(const struct config *cfg, struct strbuf *out)
{
	strbuf_addf(out, "BACKUP_DEBUG         %s\n", cfg->debug ? "true" : "false");
}

static void describe_tz(const struct config *cfg, struct strbuf *out)
{
	strbuf_addf(out, "TZ                   %s\n", cfg->tz ? cfg->tz : "(unset: UTC)");
}

static void describe_schedule(const struct config *cfg, struct strbuf *out)
{
	strbuf_addf(out, "BACKUP_SCHEDULE      %s\n",
		    cfg->schedule ? cfg->schedule : "(unset: manual mode)");
}

/* Every retention rule at once. */
static void describe_retention(const struct config *cfg, struct strbuf *out)
{
	if (retention_enabled(&cfg->retention))
		strbuf_addf(out,
			    "retention            days %d, keep last %d, daily %d, weekly %d, "
			    "monthly %d (0 = rule off)\n",
			    cfg->retention.days, cfg->retention.keep_last,
			    cfg->retention.keep_daily, cfg->retention.keep_weekly,
			    cfg->retention.keep_monthly);
	else
		strbuf_addf(out, "retention            (none: archives are kept forever)\n");
}

static void describe_webhooks(const struct config *cfg, struct strbuf *out)
{
	strbuf_addf(out, "webhooks             start %s, success %s, failure %s\n",
		    cfg->webhook_start ? "set (redacted)" : "unset",
		    cfg->webhook_success ? "set (redacted)" : "unset",
		    cfg->webhook_failure ? "set (redacted)" : "unset");
}

static void describe_lock_timeout(const struct config *cfg, struct strbuf *out)
{
	strbuf_addf(out, "BACKUP_LOCK_TIMEOUT  %us\n", cfg->lock_timeout);
}

static void describe_metrics_addr(const struct config *cfg, struct strbuf *out)
{
	strbuf_addf(out, "BACKUP_METRICS_ADDR  %s\n",
		    cfg->metrics_addr ? cfg->metrics_addr : "(off)");
}

static void describe_log_file(const struct config *cfg, struct strbuf *out)
{
	strbuf_addf(out, "BACKUP_LOG_FILE      %s\n", cfg->log_file ? cfg->log_file : "(unset)");
}

static void describe_state_dir(const struct config *cfg, struct strbuf *out)
{
	strbuf_addf(out, "BACKUP_STATE_DIR     %s\n", cfg->state_dir ? cfg->state_dir : "(unset)");
}

/* ---- the table ---- */

#define OFF(field) offsetof(struct config, field)
#define SECRET	   (VAR_SECRET | VAR_FILE)

const struct config_var config_vars[] = {
	{ "BACKUP_NAME", 0, var_name, 0, 0, 0, NULL,
	  "**Required.** Names the backups: 1–128 letters, digits, `.`, `_`, `-`.", describe_name },
	{ "BACKUP_LOCAL_PATH", 0, var_path, OFF(local_path), 0, 0, NULL,
	  "Absolute path of a mounted directory. Archives go to `BACKUP_LOCAL_PATH/BACKUP_NAME/`. "
	  "It must not lie inside a `BACKUP_DIRS` directory.",
	  describe_local_path },
	{ "BACKUP_ENCRYPTION", 0, var_encryption, 0, 0, 0, "gpg",
	  "`gpg` (default) or `none`, which writes unencrypted `.tar.gz` archives (`.tar.zst`, "
	  "`.tar` with the compressions below).",
	  describe_encryption },
	{ "BACKUP_ENCRYPTION_KEY", SECRET, var_key, 0, 0, 0, NULL,
	  "Passphrase for OpenPGP symmetric encryption (AES-256). Required for `backup` unless "
	  "`BACKUP_ENCRYPTION=none`. One line (gpg reads no further), at most 4096 bytes. Keep a "
	  "copy elsewhere: without it no backup can be restored. `BACKUP_ENCRYPTION_KEY_FILE` "
	  "reads it from a file instead (Docker secrets); one trailing newline is dropped. Setting "
	  "both is an error.",
	  describe_key },
	{ "BACKUP_COMPRESSION", 0, var_compression, 0, 0, 0, "gzip",
	  "`gzip` (default: `.tar.gz.gpg`, one standard gzip stream that `gzip -d` and `tar xz` "
	  "read, compressed on several threads), `zstd` (`.tar.zst.gpg`, faster and smaller; open "
	  "with `zstd -d` or `tar --zstd`) or `none` (`.tar.gpg`). `list`, `restore`, `verify` and "
	  "retention handle every kind whatever this is set to now.",
	  describe_compression },
	{ "BACKUP_COMPRESSION_LEVEL", 0, var_compression_level, 0, 0, 0, "6 (gzip), 3 (zstd)",
	  "gzip 1–9 (default 6), zstd 1–19 (default 3); ignored with a warning for `none`.", NULL },
	{ "BACKUP_COMPRESSION_THREADS", 0, var_compression_threads, 0, 0, 0,
	  "the CPUs the container may use",
	  "Compression threads, 1–256. Default: the CPUs the container may use (its affinity mask, "
	  "lowered by a cgroup CPU quota such as `docker run --cpus`).",
	  NULL },
	{ "BACKUP_DIRS", 0, var_dirs, 0, 0, 0, NULL,
	  "Directories: `/path:name,/path2:name2` (commas or newlines). Names follow "
	  "`BACKUP_NAME`'s rule: 1–128 letters, digits, `.`, `_`, `-`.",
	  describe_dirs },
	{ "BACKUP_FILES", 0, var_files, 0, 0, 0, NULL,
	  "Single files, same form. Names are unique across both lists, and no source may lie "
	  "inside a `BACKUP_DIRS` directory (a restore replaces a directory's whole content).",
	  describe_files },
	{ "BACKUP_POSTGRES", SECRET, var_postgres, 0, 0, 0, NULL,
	  "PostgreSQL URIs, one per line (or separated by commas): "
	  "`postgresql://user:password@host:5432/db?sslmode=require`. Percent-encode special "
	  "characters in the password (`@` → `%40`, `:` → `%3A`, `/` → `%2F`). Without a database "
	  "(`postgresql://user:pw@db:5432`) every database on the server is backed up, plus roles. "
	  "A host is required (or a socket directory as `?host=/run/postgresql`); a database name "
	  "has at most 63 bytes, PostgreSQL's limit. A secret: also `BACKUP_POSTGRES_FILE`; "
	  "printed with the password as `***`. See [PostgreSQL](#postgresql).",
	  describe_postgres },
	{ "BACKUP_POSTGRES_DUMP", 0, var_pg_dump, 0, 0, 0, "auto",
	  "Where `pg_dump`/`pg_restore` run: `auto` (default: here, or in the database's container "
	  "when the server is newer than this image's client tools), `local` or `exec` (always in "
	  "the database's container, through the Docker socket). See [PostgreSQL](#postgresql).",
	  NULL },
	{ "BACKUP_MONGODB", SECRET, var_mongodb, 0, 0, 0, NULL,
	  "MongoDB databases: `mongodb://` (or `mongodb+srv://`) URIs, one per line or separated "
	  "by commas, with any libmongoc option (`authSource`, `tls=true`/`ssl=true`, "
	  "`replicaSet`, ...) and a percent-encoded password (a secret: also as `_FILE`; printed "
	  "with `***`). With a database in the path, that database; without one, every database "
	  "except `admin`, `local` and `config`. Each is named after its database (or its host "
	  "when none); a database name has at most 63 bytes (MongoDB's: fewer than 64). See "
	  "[MongoDB databases](#mongodb-databases).",
	  describe_mongodb },
	{ "BACKUP_S3_BUCKET", 0, var_s3_bucket, 0, 0, 0, NULL,
	  "S3 bucket to store archives in, at "
	  "`s3://BUCKET/BACKUP_NAME/BACKUP_NAME-YYYY-MM-DD-HHMMSS.tar.gz.gpg`. Works alone or "
	  "together with `BACKUP_LOCAL_PATH` (both get the same stream). The bucket must exist, "
	  "and its name must follow S3's rules: 3–63 lowercase letters, digits, `.` and `-`, a "
	  "letter or digit at each end, no `..`, not an IP address.",
	  describe_s3 },
	{ "BACKUP_S3_ACCESS_KEY", SECRET | VAR_S3, var_s3_access_key, 0, 0, 0, NULL,
	  "Access key ID; required with `BACKUP_S3_BUCKET`.", NULL },
	{ "BACKUP_S3_SECRET_KEY", SECRET | VAR_S3, var_s3_secret_key, 0, 0, 0, NULL,
	  "Secret access key; required with `BACKUP_S3_BUCKET`.", NULL },
	{ "BACKUP_S3_ENDPOINT", VAR_S3, var_s3_endpoint, 0, 0, 0, "AWS S3",
	  "`https://host[:port]` (or `http://`; port 1–65535) of an S3-compatible service (MinIO, "
	  "Backblaze B2, Wasabi, ...). Default: AWS S3 (`https://s3.REGION.amazonaws.com`).",
	  NULL },
	{ "BACKUP_S3_REGION", VAR_S3, var_s3_region, 0, 0, 0, "us-east-1",
	  "Region used for signing; default `us-east-1`.", NULL },
	{ "BACKUP_S3_PATH_STYLE", VAR_S3, var_s3_path_style, 0, 0, 0,
	  "true with an endpoint, else false",
	  "`true`: `https://ENDPOINT/BUCKET/KEY`; `false`: `https://BUCKET.ENDPOINT/KEY`. Default: "
	  "path-style for a custom endpoint, virtual-hosted for AWS.",
	  NULL },
	{ "BACKUP_S3_CA_FILE", VAR_S3, var_s3_ca_file, 0, 0, 0, NULL,
	  "PEM bundle of CAs to trust for the endpoint (a private CA). HTTPS is always verified.",
	  NULL },
	{ "BACKUP_S3_STORAGE_CLASS", VAR_S3, var_s3_storage_class, 0, 0, 0, "the bucket's",
	  "Storage class of new objects, e.g. `STANDARD_IA`; default: the bucket's.", NULL },
	{ "BACKUP_S3_PART_SIZE", VAR_S3, var_s3_part_size, 0, 0, 0, "16M",
	  "Multipart part size floor, `5M` to `5G` (default `16M`). Memory use is about 3 parts. "
	  "Parts double every 1,000 parts so a backup never needs more than S3's 10,000.",
	  NULL },
	{ "BACKUP_S3_TIMEOUT", VAR_S3, var_duration, OFF(s3_timeout), 1, 0, "120",
	  "How long S3 may make no progress before the run gives up on it: seconds, or `5m` (1 s "
	  "to 7 days); default `120` (2 minutes). It bounds silence, not transfers: an upload of "
	  "any size and duration runs as long as bytes keep moving. See [S3](#s3).",
	  NULL },
	{ "BACKUP_STOP_WAIT", 0, var_wait, OFF(stop_wait), 0, 86400, "2",
	  "Seconds to wait after stopping them, before reading the data (default 2; 0 to 86400).",
	  NULL },
	{ "BACKUP_START_WAIT", 0, var_wait, OFF(start_wait), 0, 86400, "3",
	  "Seconds to give them after starting them again before the run reports (default 3; 0 to "
	  "86400).",
	  NULL },
	{ "DOCKER_HOST", 0, var_string, OFF(docker_host), 0, 0, "unix:///var/run/docker.sock",
	  "The Docker engine: `unix:///var/run/docker.sock` (default) or `tcp://HOST:PORT` (a "
	  "socket proxy; no TLS). Checked at start whenever Docker may be used: with "
	  "`BACKUP_STOP_SERVICES`, or `BACKUP_POSTGRES` with `BACKUP_POSTGRES_DUMP` `auto` or "
	  "`exec`.",
	  NULL },
	{ "BACKUP_STOP_SERVICES", 0, var_stop_services, 0, 0, 0, NULL,
	  "Containers to stop during a backup, comma separated: Compose service names of the "
	  "sidecar's own project, or container names (`container_name:`), or Swarm service names. "
	  "Needs the Docker socket. See [Stopping containers](#stopping-containers).",
	  describe_stop_services },
	{ "BACKUP_DEBUG", 0, var_bool, OFF(debug), 0, 0, "false",
	  "`true` for debug logs (never secrets).", describe_debug },
	{ "TZ", 0, var_tz, 0, 0, 0, "UTC",
	  "Time zone of the timestamps in archive names and of `BACKUP_SCHEDULE`, e.g. "
	  "`Europe/Berlin`; default UTC.",
	  describe_tz },
	{ "BACKUP_SCHEDULE", 0, var_schedule, 0, 0, 0, NULL,
	  "Cron expression for `lifeboat run`, in `TZ`: 5 fields (`m h dom mon dow`) or 6 with "
	  "leading seconds; lists, ranges, steps, month and weekday names, `@hourly` `@daily` "
	  "`@weekly` `@monthly` `@yearly`. Unset: manual mode.",
	  describe_schedule },
	{ "BACKUP_RETENTION_DAYS", 0, var_count, OFF(retention.days), 0, 1000000, "0",
	  "After each successful backup, delete this name's archives older than N days, in every "
	  "store. Unset or 0: off.",
	  NULL },
	{ "BACKUP_KEEP_LAST", 0, var_count, OFF(retention.keep_last), 0, 1000000, "0",
	  "Also keep the N newest archives. A backup is kept when any rule keeps it.", NULL },
	{ "BACKUP_KEEP_DAILY", 0, var_count, OFF(retention.keep_daily), 0, 1000000, "0",
	  "Also keep the newest archive of each of the N newest days that have a backup.", NULL },
	{ "BACKUP_KEEP_WEEKLY", 0, var_count, OFF(retention.keep_weekly), 0, 1000000, "0",
	  "Also keep the newest archive of each of the N newest ISO weeks that have a backup.",
	  NULL },
	{ "BACKUP_KEEP_MONTHLY", 0, var_count, OFF(retention.keep_monthly), 0, 1000000, "0",
	  "Also keep the newest archive of each of the N newest months that have a backup.",
	  describe_retention },
	{ "BACKUP_START_WEBHOOK", SECRET, var_webhook, OFF(webhook_start), 0, 0, NULL,
	  "`http(s)://host[:port]/...` URL (port 1–65535) POSTed a JSON report when a run starts "
	  "(never printed).",
	  NULL },
	{ "BACKUP_SUCCESS_WEBHOOK", SECRET, var_webhook, OFF(webhook_success), 0, 0, NULL,
	  "`http(s)://host[:port]/...` URL (port 1–65535) POSTed a JSON report when a run succeeds "
	  "(never printed).",
	  NULL },
	{ "BACKUP_FAILURE_WEBHOOK", SECRET, var_webhook, OFF(webhook_failure), 0, 0, NULL,
	  "`http(s)://host[:port]/...` URL (port 1–65535) POSTed a JSON report when a run fails "
	  "(never printed).",
	  describe_webhooks },
	{ "BACKUP_LOCK_TIMEOUT", 0, var_duration, OFF(lock_timeout), 0, 0, "60m",
	  "How long a run waits for another one to finish: seconds, or `30m`, `2h`; default `60m`. "
	  "Then it exits 9.",
	  describe_lock_timeout },
	{ "BACKUP_METRICS_ADDR", 0, var_listen_addr, OFF(metrics_addr), 0, 0, NULL,
	  "`HOST:PORT` (IPv4) or `:PORT` for `lifeboat run` to serve `/metrics` and `/healthz`. "
	  "Unset: off.",
	  describe_metrics_addr },
	{ "BACKUP_LOG_FILE", 0, var_path, OFF(log_file), 0, 0, "/var/log/backup.log",
	  "Log file for `run`, `backup`, `prune` (besides stderr); default `/var/log/backup.log`. "
	  "If it cannot be opened: one warning, stderr only.",
	  describe_log_file },
	{ "BACKUP_STATE_DIR", 0, var_state_dir, OFF(state_dir), 0, 0, "/var/lib/lifeboat",
	  "Lock and state files (`NAME.lock`, `NAME.state.json`, `NAME.state.lock`); default "
	  "`/var/lib/lifeboat`, or `$HOME/.local/state/lifeboat` when not run as root. Created if "
	  "missing.",
	  describe_state_dir },
};
const size_t config_nr_vars = ARRAY_SIZE(config_vars);
_Static_assert(ARRAY_SIZE(config_vars) <= CONFIG_VARS_MAX, "config.c's NAME_FILE room");

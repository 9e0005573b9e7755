/*
 * The configuration table: one row per variable Lifeboat reads (name, secret, *_FILE,
 * parser and field, default, help), with the parsers and the lines `lifeboat check`
 * prints. Loaded, described and listed in README.md in this order.
 */
#include "common.h"

#include <ctype.h>

#include "compress.h"
#include "config-vars.h"
#include "crypt.h"
#include "docker.h"
#include "fs.h"
#include "hooks.h"
#include "notify.h"
#include "parse.h"
#include "sources/source.h"
#include "stores/store.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

#define KEY_MAX_LEN 4096

/* ---- shared parsers: the row's `off` names the field ---- */

/* An absolute path without "..", normalized (char *); unset: the row's default or NULL. */
int config_var_path(CONFIG_PARSE_ARGS)
{
	char **dst = FIELD(cfg, v, char *);
	CONFIG_UNUSED_ARGS;

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
int config_var_string(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (value)
		*FIELD(cfg, v, char *) = xstrdup(value);
	return 0;
}

/* true/false (bool). */
int config_var_bool(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
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
int config_var_wait(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	return parse_uint(v, value, "whole seconds", FIELD(cfg, v, unsigned), e);
}

/* A retention count (int); unset is 0, the rule off. */
int config_var_count(CONFIG_PARSE_ARGS)
{
	unsigned n = 0;
	CONFIG_UNUSED_ARGS;

	if (parse_uint(v, value, "a whole number", &n, e) < 0)
		return -1;
	*FIELD(cfg, v, int) = (int)n;
	return 0;
}

/* A duration in seconds (unsigned), from `min` to 7 days. */
int config_var_duration(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (parse_duration(value ? value : v->def, v->min, FIELD(cfg, v, unsigned)) < 0)
		return err_set(e, LB_EXIT_CONFIG,
			       "%s '%s' is invalid: expected seconds, or a number with s, m or h "
			       "(%u s to 7 days)",
			       v->name, SHOW(value ? value : v->def), v->min);
	return 0;
}

int config_var_sources(CONFIG_PARSE_ARGS)
{
	const struct source_kind_desc *d;
	CONFIG_UNUSED_ARGS;

	for (size_t k = 0; value && (d = source_kind_desc((enum source_kind)k)); k++)
		if (!strcmp(d->var, v->name))
			return d->schemes ? config_parse_uris(cfg, origin, value,
							      (enum source_kind)k, e)
					  : config_parse_paths(cfg, v->name, value,
							       (enum source_kind)k, e);
	return value ? err_set(e, LB_EXIT_INTERNAL, "%s names no source kind", v->name) : 0;
}

/* ---- the rows' own parsers ---- */

static int var_name(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
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

static int var_encryption(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	cfg->crypt.encrypt = true;
	cfg->crypt.kind = ENCRYPTION_GPG;
	if (value && !strcasecmp(value, "none")) {
		cfg->crypt.encrypt = false;
		cfg->crypt.kind = ENCRYPTION_NONE;
	} else if (value && !strcasecmp(value, "age"))
		cfg->crypt.kind = ENCRYPTION_AGE;
	else if (value && strcasecmp(value, "gpg"))
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_ENCRYPTION '%s' is invalid: expected 'gpg', 'age' or 'none'",
			       SHOW(value));
	return 0;
}

/*
 * A public-key variable's text: the value itself (armored keys, age recipients), a
 * *_FILE's content, or the files a value of absolute paths names (comma or newline
 * separated), concatenated.
 */
static int key_text(const char *value, size_t len, const char *origin, const char *marker,
		    struct strbuf *out, struct err *e)
{
	const char *p = value;

	while (*p && strchr(" \t\r\n", *p))
		p++;
	if (strcmp(origin + strlen(origin) - 5, "_FILE") == 0 || *p != '/' ||
	    !strncmp(p, marker, strlen(marker))) {
		strbuf_add(out, value, len);
		return 0;
	}
	while (*p) {
		size_t n = strcspn(p, ",\n");
		char *path = xstrndup(p, n);
		size_t k = strlen(path);
		while (k && strchr(" \t\r", path[k - 1]))
			path[--k] = '\0';
		if (k) {
			if (path[0] != '/') {
				err_set(e, LB_EXIT_CONFIG,
					"%s: '%s' is neither a key nor an absolute file path",
					origin, SHOW(path));
				free(path);
				return -1;
			}
			struct strbuf f = STRBUF_INIT;
			int r = read_file_capped(path, 1024 * 1024, &f);
			if (r < 0) {
				err_set(e, LB_EXIT_CONFIG, "%s: cannot read '%s': %s", origin,
					SHOW(path),
					r == -EFBIG ? "file is larger than 1 MiB" : strerror(-r));
				strbuf_release(&f);
				free(path);
				return -1;
			}
			strbuf_add(out, f.buf ? f.buf : "", f.len);
			strbuf_addch(out, '\n');
			strbuf_release(&f);
		}
		free(path);
		p += n;
		while (*p && strchr(",\n \t\r", *p))
			p++;
	}
	return 0;
}

static int var_gpg_public(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return 0;
	if (cfg->crypt.kind != ENCRYPTION_GPG) {
		strvec_pushf(&cfg->warnings, "%s is ignored because BACKUP_ENCRYPTION=%s", origin,
			     cfg->crypt.kind == ENCRYPTION_AGE ? "age" : "none");
		return 0;
	}
	cfg->crypt.gpg_public_origin = origin;
	/* Read now; checked with gpg only by the commands that encrypt (config_require). */
	return key_text(value, len, origin, "-----BEGIN", &cfg->crypt.gpg_public, e);
}

static int var_age_recipients(CONFIG_PARSE_ARGS)
{
	struct strbuf text = STRBUF_INIT;
	CONFIG_UNUSED_ARGS;

	if (!value)
		return 0;
	if (cfg->crypt.kind != ENCRYPTION_AGE) {
		strvec_pushf(&cfg->warnings, "%s is ignored because BACKUP_ENCRYPTION is not age",
			     origin);
		return 0;
	}
	cfg->crypt.age_origin = origin;
	int r = key_text(value, len, origin, "age1", &text, e);
	if (r == 0)
		r = crypt_check_age_recipients(text.buf ? text.buf : "", text.len, origin,
					       &cfg->crypt.age_recipients,
					       &cfg->crypt.nr_age_recipients, e);
	strbuf_release(&text);
	return r;
}

static int var_verify_keys(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return 0;
	cfg->crypt.verify_origin = origin;
	/* Read now; checked with gpg only by the commands that verify (config_require). */
	return key_text(value, len, origin, "-----BEGIN", &cfg->crypt.verify_keys, e);
}

/* A passphrase kept as given (struct strbuf at the row's `off`), with its origin next to it. */
static int var_signing_pass(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return 0;
	strbuf_add(&cfg->crypt.signing_pass, value, len);
	cfg->crypt.signing_pass_origin = origin;
	return 0;
}

static int var_private_pass(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return 0;
	strbuf_add(&cfg->crypt.gpg_private_pass, value, len);
	cfg->crypt.gpg_private_pass_origin = origin;
	return 0;
}

static int var_key(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return 0;
	strbuf_add(&cfg->crypt.key, value, len);
	cfg->crypt.key_origin = origin;
	if (!cfg->crypt.encrypt)
		strvec_pushf(&cfg->warnings, "%s is ignored because BACKUP_ENCRYPTION=none",
			     origin);
	/* gpg reads the passphrase as one line from a pipe (crypt.c). */
	if (cfg->crypt.encrypt && cfg->crypt.key.len > KEY_MAX_LEN)
		return err_set(e, LB_EXIT_CONFIG, "%s is longer than %d bytes", origin,
			       KEY_MAX_LEN);
	if (cfg->crypt.encrypt && memchr(cfg->crypt.key.buf, '\n', cfg->crypt.key.len))
		return err_set(e, LB_EXIT_CONFIG,
			       "%s contains a line break: gpg would read only its first line",
			       origin);
	return 0;
}

static int var_compression(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	cfg->compress.algo = COMPRESSION_GZIP;
	if (value && !compression_parse(value, &cfg->compress.algo))
		return err_set(
			e, LB_EXIT_CONFIG,
			"BACKUP_COMPRESSION '%s' is invalid: expected 'gzip', 'zstd' or 'none'",
			SHOW(value));
	return 0;
}

/* After BACKUP_COMPRESSION: the level's range depends on the algorithm. */
static int var_compression_level(CONFIG_PARSE_ARGS)
{
	uint64_t n;
	int lo, hi;
	CONFIG_UNUSED_ARGS;

	cfg->compress.level = compression_default_level(cfg->compress.algo);
	compression_level_range(cfg->compress.algo, &lo, &hi);
	if (value && cfg->compress.algo == COMPRESSION_NONE) {
		strvec_pushf(&cfg->warnings,
			     "BACKUP_COMPRESSION_LEVEL is ignored because BACKUP_COMPRESSION=none");
	} else if (value) {
		if (parse_decimal(value, &n, NULL) < 0 || n < (uint64_t)lo || n > (uint64_t)hi)
			return err_set(
				e, LB_EXIT_CONFIG,
				"BACKUP_COMPRESSION_LEVEL '%s' is invalid: expected %d to %d "
				"for %s",
				SHOW(value), lo, hi, compression_name(cfg->compress.algo));
		cfg->compress.level = (int)n;
	}
	return 0;
}

static int var_compression_threads(CONFIG_PARSE_ARGS)
{
	uint64_t n;
	CONFIG_UNUSED_ARGS;

	cfg->compress.threads = compress_available_cpus();
	if (!value)
		return 0;
	if (parse_decimal(value, &n, NULL) < 0 || n < 1 || n > 256)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_COMPRESSION_THREADS '%s' is invalid: expected a whole "
			       "number from 1 to 256",
			       SHOW(value));
	cfg->compress.threads = (unsigned)n;
	return 0;
}

static int var_stop_services(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	return value ? config_parse_services(cfg, value, e) : 0;
}

/* After the stores' rows: after-local needs the local store. */
static int var_upload(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	cfg->upload = UPLOAD_STREAM;
	if (!value || !strcmp(value, "stream"))
		return 0;
	if (strcmp(value, "after-local"))
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_UPLOAD '%s' is invalid: expected 'stream' or 'after-local'",
			       SHOW(value));
	if (!cfg->local.path)
		return err_set(
			e, LB_EXIT_CONFIG,
			"BACKUP_UPLOAD=after-local needs a local store: set BACKUP_LOCAL_PATH");
	cfg->upload = UPLOAD_AFTER_LOCAL;
	return 0;
}

static void describe_upload(const struct config *cfg, struct strbuf *out)
{
	strbuf_addf(out, "BACKUP_UPLOAD        %s\n",
		    cfg->upload == UPLOAD_AFTER_LOCAL
			    ? "after-local (the other stores get the finished local archive)"
			    : "stream (every store gets the stream at once)");
}

static int var_tz(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return 0;
	if (config_check_tz(value, e) < 0)
		return -1;
	cfg->tz = xstrdup(value);
	return 0;
}

static int var_schedule(CONFIG_PARSE_ARGS)
{
	struct err ce = ERR_INIT;
	CONFIG_UNUSED_ARGS;

	if (!value)
		return 0;
	if (cron_parse(value, &cfg->daemon.cron, &ce) < 0)
		return err_set(e, LB_EXIT_CONFIG, "BACKUP_SCHEDULE '%s': %s", SHOW(value), ce.msg);
	cfg->daemon.schedule = xstrdup(value);
	return 0;
}

static int var_verify_schedule(CONFIG_PARSE_ARGS)
{
	struct err ce = ERR_INIT;
	CONFIG_UNUSED_ARGS;

	if (!value)
		return 0;
	if (cron_parse(value, &cfg->daemon.verify_cron, &ce) < 0)
		return err_set(e, LB_EXIT_CONFIG, "BACKUP_VERIFY_SCHEDULE '%s': %s", SHOW(value),
			       ce.msg);
	cfg->daemon.verify_schedule = xstrdup(value);
	return 0;
}

static int var_verify_pick(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value || !strcmp(value, "latest")) {
		cfg->daemon.verify_random = false;
		return 0;
	}
	if (!strcmp(value, "random")) {
		cfg->daemon.verify_random = true;
		return 0;
	}
	return err_set(e, LB_EXIT_CONFIG,
		       "BACKUP_VERIFY_PICK '%s' is invalid: expected latest or "
		       "random",
		       SHOW(value));
}

static int var_verify_pick_last(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	cfg->daemon.verify_pick_last = 7;
	if (!value)
		return 0;
	if (parse_uint(v, value, "a whole number", &cfg->daemon.verify_pick_last, e) < 0)
		return -1;
	if (!cfg->daemon.verify_pick_last || cfg->daemon.verify_pick_last > 10000)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_VERIFY_PICK_LAST '%s' is invalid: expected 1 to 10000",
			       SHOW(value));
	return 0;
}

/* A secret: the URL often carries a token, so no message shows it. */
static int var_webhook(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
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

static int var_listen_addr(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
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
static int var_state_dir(CONFIG_PARSE_ARGS)
{
	const char *home = NULL;

	if (config_var_path(cfg, v, value, len, origin, envp, e) < 0)
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

static void describe_encryption(const struct config *cfg, struct strbuf *out)
{
	strbuf_addf(out, "BACKUP_ENCRYPTION    %s\n",
		    !cfg->crypt.encrypt			? "none"
		    : cfg->crypt.kind == ENCRYPTION_AGE ? "age (X25519 / SSH recipients)"
		    : cfg->crypt.gpg_recipients.nr && cfg->crypt.key.len
			    ? "gpg (OpenPGP, AES-256: public keys and the passphrase)"
		    : cfg->crypt.gpg_recipients.nr ? "gpg (OpenPGP, AES-256: public keys)"
						   : "gpg (OpenPGP symmetric, AES-256)");
}

static void describe_key(const struct config *cfg, struct strbuf *out)
{
	if (cfg->crypt.encrypt && cfg->crypt.kind == ENCRYPTION_GPG &&
	    (cfg->crypt.key_origin || !cfg->crypt.gpg_recipients.nr))
		strbuf_addf(out, "encryption key       %s\n",
			    cfg->crypt.key_origin
				    ? (!strcmp(cfg->crypt.key_origin, "BACKUP_ENCRYPTION_KEY")
					       ? "set in BACKUP_ENCRYPTION_KEY (redacted)"
					       : "read from BACKUP_ENCRYPTION_KEY_FILE (redacted)")
				    : "(unset)");
}

/* Recipients by fingerprint (public; the keys themselves are never printed). */
static void describe_recipients(const struct config *cfg, struct strbuf *out)
{
	if (cfg->crypt.kind == ENCRYPTION_GPG)
		for (size_t i = 0; i < cfg->crypt.gpg_recipients.nr; i++)
			strbuf_addf(out, "gpg recipient        %s (encryption subkey %s)\n",
				    cfg->crypt.gpg_recipients.v[i],
				    i < cfg->crypt.gpg_subkeys.nr ? cfg->crypt.gpg_subkeys.v[i]
								  : "?");
	if (cfg->crypt.kind != ENCRYPTION_AGE)
		return;
	const char *p = cfg->crypt.age_recipients.buf;
	if (!p)
		strbuf_addstr(out, "age recipients       (unset)\n");
	while (p && *p) {
		size_t n = strcspn(p, "\n");
		/* An SSH key: its type and a short prefix; an age key is one short word. */
		strbuf_addf(out, "age recipient        %.*s%s\n", (int)(n > 70 ? 70 : n), p,
			    n > 70 ? "..." : "");
		p += n + (p[n] == '\n');
	}
}

static void describe_private(const struct config *cfg, struct strbuf *out)
{
	if (cfg->crypt.gpg_private_file)
		strbuf_addf(out, "gpg private key      %s%s (for restore and verify)\n",
			    cfg->crypt.gpg_private_file,
			    cfg->crypt.gpg_private_pass.len ? ", passphrase set (redacted)" : "");
	if (cfg->crypt.age_identity_file)
		strbuf_addf(out, "age identity         %s (for restore and verify)\n",
			    cfg->crypt.age_identity_file);
}

static void describe_signing(const struct config *cfg, struct strbuf *out)
{
	if (cfg->crypt.signing_key_file)
		strbuf_addf(out, "signing key          %s%s (a .sig beside each archive)\n",
			    cfg->crypt.signing_key_file,
			    cfg->crypt.signing_pass.len ? ", passphrase set (redacted)" : "");
	for (size_t i = 0; i < cfg->crypt.verify_fprs.nr; i++)
		strbuf_addf(out,
			    "verify key           %s (restore and verify need its signature)\n",
			    cfg->crypt.verify_fprs.v[i]);
}

static void describe_compression(const struct config *cfg, struct strbuf *out)
{
	if (cfg->compress.algo == COMPRESSION_NONE)
		strbuf_addf(out, "BACKUP_COMPRESSION   none\n");
	else
		strbuf_addf(out, "BACKUP_COMPRESSION   %s, level %d, %u thread%s\n",
			    compression_name(cfg->compress.algo), cfg->compress.level,
			    cfg->compress.threads, cfg->compress.threads == 1 ? "" : "s");
}

void config_describe_sources(const struct config *cfg, struct strbuf *out, const char *var)
{
	for (size_t i = 0; i < cfg->nr_sources; i++) {
		const struct source_spec *s = &cfg->sources[i];
		if (strcmp(source_var(s->kind), var))
			continue;
		char *prefix = source_archive_prefix(s->kind, s->name);
		strbuf_addf(out, "%-20s %s -> %s\n", source_var(s->kind), s->path, prefix);
		free(prefix);
	}
}

/* The containers stopped, with the waits and the engine. */
static void describe_stop_services(const struct config *cfg, struct strbuf *out)
{
	if (!cfg->stop.services.nr)
		return;
	strbuf_addstr(out, "BACKUP_STOP_SERVICES ");
	for (size_t i = 0; i < cfg->stop.services.nr; i++)
		strbuf_addf(out, "%s%s", i ? "," : "", cfg->stop.services.v[i]);
	strbuf_addf(out, " (wait %u s after stopping, %u s after starting)\n", cfg->stop.stop_wait,
		    cfg->stop.start_wait);
	strbuf_addf(out, "  Docker engine      %s\n",
		    cfg->docker.host ? cfg->docker.host : "unix:///var/run/docker.sock");
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
		    cfg->daemon.schedule ? cfg->daemon.schedule : "(unset: manual mode)");
}

static void describe_verify(const struct config *cfg, struct strbuf *out)
{
	if (!cfg->daemon.verify_schedule) {
		strbuf_addf(out, "BACKUP_VERIFY_SCHEDULE (unset: no scheduled restore drill)\n");
		return;
	}
	strbuf_addf(out, "BACKUP_VERIFY_SCHEDULE %s: restore drill of ",
		    cfg->daemon.verify_schedule);
	if (cfg->daemon.verify_random)
		strbuf_addf(out, "a random one of the %u newest archives",
			    cfg->daemon.verify_pick_last);
	else
		strbuf_addf(out, "the newest archive");
	strbuf_addf(out, " in each store; database dumps restored into scratch databases "
			 "lifeboat_drill_* on their own server\n");
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
		    cfg->webhook.start ? "set (redacted)" : "unset",
		    cfg->webhook.success ? "set (redacted)" : "unset",
		    cfg->webhook.failure ? "set (redacted)" : "unset");
}

static void describe_lock_timeout(const struct config *cfg, struct strbuf *out)
{
	strbuf_addf(out, "BACKUP_LOCK_TIMEOUT  %us\n", cfg->daemon.lock_timeout);
}

static void describe_metrics_addr(const struct config *cfg, struct strbuf *out)
{
	strbuf_addf(out, "BACKUP_METRICS_ADDR  %s\n",
		    cfg->daemon.metrics_addr ? cfg->daemon.metrics_addr : "(off)");
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

/* Before the sources' and the stores' rows. */
static const struct config_var general_rows[] = {
	{ "BACKUP_NAME", 0, var_name, 0, 0, 0, NULL,
	  "**Required.** Names the backups: 1–128 letters, digits, `.`, `_`, `-`.", describe_name },
	{ "BACKUP_ENCRYPTION", 0, var_encryption, 0, 0, 0, "gpg",
	  "`gpg` (default: OpenPGP, `.tar.gz.gpg`, to the passphrase and/or "
	  "`BACKUP_GPG_PUBLIC_KEYS`), `age` (`.tar.gz.age`, to `BACKUP_AGE_RECIPIENTS`) or `none`, "
	  "which writes unencrypted `.tar.gz` archives (`.tar.zst`, `.tar` with the compressions "
	  "below). See [Encryption](#encryption-passphrase-public-keys-or-age).",
	  describe_encryption },
	{ "BACKUP_ENCRYPTION_KEY", SECRET, var_key, 0, 0, 0, NULL,
	  "Passphrase for OpenPGP symmetric encryption (AES-256). Required for `backup` unless "
	  "`BACKUP_ENCRYPTION=none`. One line (gpg reads no further), at most 4096 bytes. Keep a "
	  "copy elsewhere: without it no backup can be restored. `BACKUP_ENCRYPTION_KEY_FILE` "
	  "reads it from a file instead (Docker secrets); one trailing newline is dropped. Setting "
	  "both is an error.",
	  describe_key },
	{ "BACKUP_GPG_PUBLIC_KEYS", VAR_FILE, var_gpg_public, 0, 0, 0, NULL,
	  "OpenPGP public keys to encrypt to (`BACKUP_ENCRYPTION=gpg`): armored key text, or "
	  "absolute paths of key files (comma or newline separated); `_FILE` names one file of "
	  "one or more keys. Every key is a recipient (trusted because you named it: gpg runs with "
	  "`--trust-model always`); with `BACKUP_ENCRYPTION_KEY` too, the passphrase or any of the "
	  "private keys opens an archive. Checked with gpg when `backup`, `run` or `check` starts: "
	  "an unreadable, expired or revoked key, or one without an encryption subkey, exits 3 "
	  "(`status` and `list` start no gpg). Public: never a private key here.",
	  describe_recipients },
	{ "BACKUP_AGE_RECIPIENTS", VAR_FILE, var_age_recipients, 0, 0, 0, NULL,
	  "age recipients for `BACKUP_ENCRYPTION=age`: `age1…` X25519 public keys and "
	  "`ssh-ed25519` / `ssh-rsa` public keys, one per line (age1 keys also comma separated; "
	  "`#` comments), or absolute paths of recipients files; `_FILE` names one recipients "
	  "file. A malformed line exits 3.",
	  NULL },
	{ "BACKUP_GPG_PRIVATE_KEY_FILE", 0, config_var_path, OFF(crypt.gpg_private_file), 0, 0,
	  NULL,
	  "For `restore`, `verify` and `ls` only: an OpenPGP private key file (armored or binary) "
	  "that opens archives encrypted to its public key. Keep it off the backup host; "
	  "`--key-file` gives it on the command line instead.",
	  NULL },
	{ "BACKUP_GPG_PRIVATE_KEY_PASSPHRASE", SECRET, var_private_pass, 0, 0, 0, NULL,
	  "The passphrase protecting `BACKUP_GPG_PRIVATE_KEY_FILE` (or `--key-file`), if any.",
	  NULL },
	{ "BACKUP_AGE_IDENTITY_FILE", 0, config_var_path, OFF(crypt.age_identity_file), 0, 0, NULL,
	  "For `restore`, `verify` and `ls` only: an age identity file (`age-keygen` output, or an "
	  "unencrypted SSH private key) that opens `.age` archives; or `--key-file`.",
	  describe_private },
	{ "BACKUP_SIGNING_KEY_FILE", 0, config_var_path, OFF(crypt.signing_key_file), 0, 0, NULL,
	  "An OpenPGP secret key file: each archive gets a detached signature `ARCHIVE.sig` beside "
	  "it in every store (made by gpg over the archive's bytes as they stream; committed after "
	  "the archive, deleted with it). A signature that cannot be made fails the run.",
	  NULL },
	{ "BACKUP_SIGNING_KEY_PASSPHRASE", SECRET, var_signing_pass, 0, 0, 0, NULL,
	  "The passphrase protecting `BACKUP_SIGNING_KEY_FILE`, if any.", NULL },
	{ "BACKUP_VERIFY_KEYS", VAR_FILE, var_verify_keys, 0, 0, 0, NULL,
	  "OpenPGP public keys whose signatures `restore`, `verify` and `ls` accept (text or "
	  "absolute paths, as `BACKUP_GPG_PUBLIC_KEYS`). When set, an archive whose `.sig` is "
	  "missing, bad, or made by another key is refused with exit 7 before anything is read "
	  "or touched. Checked with gpg when those commands and `check` start (expired, revoked "
	  "or unable to sign: exit 3).",
	  describe_signing },
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
};

/* After them. */
static const struct config_var later_rows[] = {
	{ "BACKUP_STOP_WAIT", 0, config_var_wait, OFF(stop.stop_wait), 0, 86400, "2",
	  "Seconds to wait after stopping them, before reading the data (default 2; 0 to 86400).",
	  NULL },
	{ "BACKUP_START_WAIT", 0, config_var_wait, OFF(stop.start_wait), 0, 86400, "3",
	  "Seconds to give them after starting them again before the run reports (default 3; 0 to "
	  "86400).",
	  NULL },
	{ "DOCKER_HOST", 0, config_var_string, OFF(docker.host), 0, 0,
	  "unix:///var/run/docker.sock",
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
	{ "BACKUP_UPLOAD", 0, var_upload, 0, 0, 0, "stream",
	  "`stream` (default): every store gets the archive's bytes as they are made, so the "
	  "slowest store sets the pace of the whole run, containers stopped included. "
	  "`after-local` (needs `BACKUP_LOCAL_PATH`): the archive is written to the local store "
	  "alone, the containers start, and the finished file is then uploaded to every other "
	  "store. See [Upload after the local copy](#upload-after-the-local-copy).",
	  describe_upload },
	{ "BACKUP_DEBUG", 0, config_var_bool, OFF(debug), 0, 0, "false",
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
	{ "BACKUP_VERIFY_SCHEDULE", 0, var_verify_schedule, 0, 0, 0, NULL,
	  "Cron expression (as `BACKUP_SCHEDULE`) for `lifeboat run` to run a restore drill: "
	  "verify an archive in each store and restore each database dump into a scratch "
	  "database `lifeboat_drill_*` on its own server, dropped afterwards. See [Restore "
	  "drills](#restore-drills). Unset: none.",
	  NULL },
	{ "BACKUP_VERIFY_PICK", 0, var_verify_pick, 0, 0, 0, "latest",
	  "Which archive a scheduled drill takes in each store: `latest` (default) or `random` "
	  "(one of the `BACKUP_VERIFY_PICK_LAST` newest).",
	  NULL },
	{ "BACKUP_VERIFY_PICK_LAST", 0, var_verify_pick_last, 0, 1, 10000, "7",
	  "With `BACKUP_VERIFY_PICK=random`: among how many of the newest archives (1 to 10000; "
	  "default 7).",
	  describe_verify },
	{ "BACKUP_RETENTION_DAYS", 0, config_var_count, OFF(retention.days), 0, 1000000, "0",
	  "After each successful backup, delete this name's archives older than N days, in every "
	  "store. Unset or 0: off.",
	  NULL },
	{ "BACKUP_KEEP_LAST", 0, config_var_count, OFF(retention.keep_last), 0, 1000000, "0",
	  "Also keep the N newest archives. A backup is kept when any rule keeps it.", NULL },
	{ "BACKUP_KEEP_DAILY", 0, config_var_count, OFF(retention.keep_daily), 0, 1000000, "0",
	  "Also keep the newest archive of each of the N newest days that have a backup.", NULL },
	{ "BACKUP_KEEP_WEEKLY", 0, config_var_count, OFF(retention.keep_weekly), 0, 1000000, "0",
	  "Also keep the newest archive of each of the N newest ISO weeks that have a backup.",
	  NULL },
	{ "BACKUP_KEEP_MONTHLY", 0, config_var_count, OFF(retention.keep_monthly), 0, 1000000, "0",
	  "Also keep the newest archive of each of the N newest months that have a backup.",
	  describe_retention },
	{ "BACKUP_START_WEBHOOK", SECRET, var_webhook, OFF(webhook.start), 0, 0, NULL,
	  "`http(s)://host[:port]/...` URL (port 1–65535) POSTed a JSON report when a run starts "
	  "(never printed).",
	  NULL },
	{ "BACKUP_SUCCESS_WEBHOOK", SECRET, var_webhook, OFF(webhook.success), 0, 0, NULL,
	  "`http(s)://host[:port]/...` URL (port 1–65535) POSTed a JSON report when a run succeeds "
	  "(never printed).",
	  NULL },
	{ "BACKUP_FAILURE_WEBHOOK", SECRET, var_webhook, OFF(webhook.failure), 0, 0, NULL,
	  "`http(s)://host[:port]/...` URL (port 1–65535) POSTed a JSON report when a run fails "
	  "(never printed).",
	  describe_webhooks },
	{ "BACKUP_LOCK_TIMEOUT", 0, config_var_duration, OFF(daemon.lock_timeout), 0, 0, "60m",
	  "How long a run waits for another one to finish: seconds, or `30m`, `2h`; default `60m`. "
	  "Then it exits 9.",
	  describe_lock_timeout },
	{ "BACKUP_METRICS_ADDR", 0, var_listen_addr, OFF(daemon.metrics_addr), 0, 0, NULL,
	  "`HOST:PORT` (IPv4) or `:PORT` for `lifeboat run` to serve `/metrics` and `/healthz`. "
	  "Unset: off.",
	  describe_metrics_addr },
	{ "BACKUP_LOG_FILE", 0, config_var_path, OFF(log_file), 0, 0, "/var/log/backup.log",
	  "Log file for `run`, `backup`, `prune` (besides stderr); default `/var/log/backup.log`. "
	  "If it cannot be opened: one warning, stderr only.",
	  describe_log_file },
	{ "BACKUP_STATE_DIR", 0, var_state_dir, OFF(state_dir), 0, 0, "/var/lib/lifeboat",
	  "Lock and state files (`NAME.lock`, `NAME.state.json`, `NAME.state.lock`, and "
	  "`NAME.temporaries`: the unfinished uploads of this sidecar's runs, see [Interrupted "
	  "runs](#interrupted-runs)); default `/var/lib/lifeboat`, or "
	  "`$HOME/.local/state/lifeboat` when not run as root. Created if missing.",
	  describe_state_dir },
};
static const struct config_var_group general = CONFIG_VAR_GROUP(general_rows);
static const struct config_var_group later = CONFIG_VAR_GROUP(later_rows);

const struct config_var_group *config_var_group(size_t i)
{
	const struct source_kind_desc *k;
	const struct store_kind *st;

	if (i-- == 0)
		return &general;
	for (size_t n = 0; (k = source_kind_desc((enum source_kind)n)); n++)
		if (k->vars && i-- == 0)
			return k->vars;
	for (size_t n = 0; (st = store_kind_at(n)); n++)
		if (st->vars && i-- == 0)
			return st->vars;
	if (i-- == 0)
		return &later;
	if (i-- == 0)
		return &hooks_vars;
	return i == 0 ? &notify_vars : NULL;
}

const struct config_var *config_var_at(size_t i, const struct config_var_group **ret_group)
{
	const struct config_var_group *g;

	for (size_t n = 0; (g = config_var_group(n)); n++) {
		if (i < g->nr) {
			if (ret_group)
				*ret_group = g;
			return &g->v[i];
		}
		i -= g->nr;
	}
	return NULL;
}

/* Configuration from the environment: parsing, validation and redacted description. */
#include "common.h"

#include <ctype.h>
#include <sys/stat.h>

#include "compress.h"
#include "config-vars.h"
#include "config.h"
#include "crypt.h"
#include "dburi.h"
#include "docker.h"
#include "fs.h"
#include "hooks.h"
#include "parse.h"
#include "stores/store.h"
#include "strbuf.h"
#include "strvec.h"
#include "xalloc.h"

#define SECRET_FILE_MAX (64 * 1024)
#define DB_NAME_MAX	63 /* PostgreSQL: NAMEDATALEN - 1; MongoDB: fewer than 64 */

const char *config_shown(const char *v, char buf[SHOWN_MAX + 32])
{
	size_t n = strlen(v), k = n;
	bool clean = true;

	for (size_t i = 0; i < n && clean; i++)
		clean = (unsigned char)v[i] >= ' ' && v[i] != 0x7f;
	if (n <= SHOWN_MAX && clean)
		return v;
	if (k > SHOWN_MAX) {
		k = SHOWN_MAX;
		while (k && ((unsigned char)v[k] & 0xc0) == 0x80)
			k--;
	}
	memcpy(buf, v, k);
	for (size_t i = 0; i < k; i++)
		if ((unsigned char)buf[i] < ' ' || buf[i] == 0x7f)
			buf[i] = '?';
	if (k < n)
		snprintf(buf + k, 32, "... (%zu bytes)", n);
	else
		buf[k] = '\0';
	return buf;
}
static const char *env_lookup(char *const *envp, const char *name, size_t len)
{
	for (char *const *p = envp; *p; p++)
		if (!strncmp(*p, name, len) && (*p)[len] == '=')
			return *p + len + 1;
	return NULL;
}

static const char *env_get(char *const *envp, const char *name)
{
	const char *v = env_lookup(envp, name, strlen(name));
	return v && *v ? v : NULL;
}

static const struct config_var *var_find(const char *name, size_t len)
{
	const struct config_var *v;

	for (size_t i = 0; (v = config_var_at(i, NULL)); i++) {
		size_t n = strlen(v->name);
		if (n == len && !strncmp(v->name, name, len))
			return v;
		if ((v->flags & VAR_FILE) && len == n + 5 && !strncmp(v->name, name, n) &&
		    !strncmp(name + n, "_FILE", 5))
			return v;
	}
	return NULL;
}

/*
 * Fetch a variable, or the content of the file named by NAME_FILE for
 * secrets. Sets *ret_origin to the variable used; an unset variable leaves
 * `out` empty and *ret_origin NULL.
 */
static int get_value(char *const *envp, const struct config_var *v, size_t idx, struct strbuf *out,
		     const char **ret_origin, struct err *e)
{
	static char file_names[CONFIG_VARS_MAX][48];
	const char *direct = env_get(envp, v->name);
	const char *file = NULL;

	*ret_origin = NULL;
	if (idx >= CONFIG_VARS_MAX)
		return err_set(e, LB_EXIT_INTERNAL, "%s: more rows than CONFIG_VARS_MAX", v->name);
	if (v->flags & VAR_FILE) {
		snprintf(file_names[idx], sizeof(file_names[idx]), "%s_FILE", v->name);
		file = env_get(envp, file_names[idx]);
	}
	if (direct && file)
		return err_set(e, LB_EXIT_CONFIG, "%s and %s are both set: use only one", v->name,
			       file_names[idx]);
	if (direct) {
		strbuf_addstr(out, direct);
		*ret_origin = v->name;
		return 0;
	}
	if (!file)
		return 0;
	int r = read_file_capped(file, SECRET_FILE_MAX, out);
	if (r < 0) {
		strbuf_release_secret(out);
		/* Someone may have pasted the secret itself here: show only path-like values. */
		bool pathlike = file[0] == '/' && strlen(file) < 256 && !strpbrk(file, " \t");
		return err_set(e, LB_EXIT_CONFIG, "%s: cannot read '%s': %s", file_names[idx],
			       pathlike ? file : "(value redacted: expected a file path)",
			       r == -EFBIG ? "file is larger than 64 KiB" : strerror(-r));
	}
	/* Secret files usually end with one newline that is not part of the secret. */
	if (out->len && out->buf[out->len - 1] == '\n')
		out->buf[--out->len] = '\0';
	if (out->len && out->buf[out->len - 1] == '\r')
		out->buf[--out->len] = '\0';
	if (!out->len)
		return err_set(e, LB_EXIT_CONFIG, "%s: file '%s' is empty", file_names[idx], file);
	*ret_origin = file_names[idx];
	return 0;
}

static void trim(const char **start, const char **end)
{
	while (*start < *end && strchr(" \t\r\n", **start))
		(*start)++;
	while (*end > *start && strchr(" \t\r\n", (*end)[-1]))
		(*end)--;
}

static void push_source(struct config *cfg, struct source_spec src)
{
	cfg->sources = xrealloc(cfg->sources, (cfg->nr_sources + 1) * sizeof(*cfg->sources));
	cfg->sources[cfg->nr_sources++] = src;
}

/* Parse "/path:name,/path2:name2" (commas or newlines) into cfg->sources. */
int config_parse_paths(struct config *cfg, const char *var, const char *value,
		       enum source_kind kind, struct err *e)
{
	const char *p = value;

	while (*p) {
		const char *end = p + strcspn(p, ",\n");
		const char *s = p, *t = end;
		p = *end ? end + 1 : end;
		trim(&s, &t);
		if (s == t)
			continue;

		char *item = xstrndup(s, (size_t)(t - s));
		char *colon = strrchr(item, ':');
		if (!colon || colon == item || !colon[1]) {
			err_set(e, LB_EXIT_CONFIG, "%s: entry '%s' is not of the form /path:name",
				var, SHOW(item));
			free(item);
			return -1;
		}
		*colon = '\0';
		const char *name = colon + 1;
		if (!utf8_valid(item)) {
			err_set(e, LB_EXIT_CONFIG, "%s: path for '%s' is not valid UTF-8", var,
				SHOW(name));
			free(item);
			return -1;
		}
		if (item[0] == '/')
			path_normalize(item);
		if (item[0] != '/' || path_has_dotdot(item)) {
			err_set(e, LB_EXIT_CONFIG,
				"%s: path '%s' must be absolute and must not contain '..'", var,
				SHOW(item));
			free(item);
			return -1;
		}
		if (!parse_name_valid(name)) {
			err_set(e, LB_EXIT_CONFIG,
				"%s: name '%s' for '%s' is invalid: use letters, digits, '.', '_' "
				"and '-' only",
				var, SHOW(name), SHOW(item));
			free(item);
			return -1;
		}
		if (strlen(name) > NAME_MAX_LEN) {
			err_set(e, LB_EXIT_CONFIG,
				"%s: name '%s' for '%s' is too long: at most %d characters, as for "
				"BACKUP_NAME",
				var, SHOW(name), SHOW(item), NAME_MAX_LEN);
			free(item);
			return -1;
		}
		for (size_t i = 0; i < cfg->nr_sources; i++) {
			if (!strcmp(cfg->sources[i].name, name)) {
				err_set(e, LB_EXIT_CONFIG,
					"%s: name '%s' is used twice (names must be unique across "
					"BACKUP_DIRS and BACKUP_FILES)",
					var, SHOW(name));
				free(item);
				return -1;
			}
		}
		push_source(cfg, (struct source_spec){
					 .kind = kind, .path = item, .name = xstrdup(name) });
	}
	return 0;
}

/* source_kind_str() and the other facts of a kind: the kind table, sources/kinds.c. */

static bool db_name_taken(const struct config *cfg, enum source_kind kind, const char *name)
{
	for (size_t i = 0; i < cfg->nr_sources; i++)
		if (cfg->sources[i].kind == kind && !strcmp(cfg->sources[i].name, name))
			return true;
	return false;
}

/* libpq also takes the host from "?host=/run/postgresql" (a socket directory) or "?hostaddr=". */
static bool query_has_host(const char *query)
{
	for (const char *p = query; p && *p;) {
		size_t n = strcspn(p, "&");
		if ((n > 5 && !strncasecmp(p, "host=", 5)) ||
		    (n > 9 && !strncasecmp(p, "hostaddr=", 9)))
			return true;
		p += n;
		if (*p == '&')
			p++;
	}
	return false;
}

/* Does a new URI start at `p` (after a comma)? Commas also separate a URI's hosts. */
static bool uri_starts(const char *p, const char *const *schemes)
{
	while (*p == ' ' || *p == '\t')
		p++;
	for (; *schemes; schemes++) {
		size_t n = strlen(*schemes);
		if (!strncasecmp(p, *schemes, n) && !strncmp(p + n, "://", 3))
			return true;
	}
	return false;
}

/*
 * Parse database URIs, one per line or separated by commas, into sources.
 * Each is named after its database (or host); a clash with an earlier one
 * adds the host, then the port, then a number.
 */
int config_parse_uris(struct config *cfg, const char *var, const char *value, enum source_kind kind,
		      struct err *e)
{
	const char *const *schemes = source_uri_schemes(kind);
	const char *p = value;

	while (*p) {
		const char *end = p;
		for (;;) {
			end += strcspn(end, ",\n");
			if (*end != ',' || uri_starts(end + 1, schemes))
				break;
			end++;
		}
		const char *s = p, *t = end;
		p = *end ? end + 1 : end;
		trim(&s, &t);
		if (s == t)
			continue;

		char *item = xstrndup(s, (size_t)(t - s));
		struct dburi u;
		if (dburi_parse(item, var, &u, e) < 0) {
			explicit_bzero(item, strlen(item));
			free(item);
			return -1;
		}
		bool scheme_ok = false;
		for (const char *const *sc = schemes; *sc; sc++)
			scheme_ok |= !strcasecmp(u.scheme, *sc);
		char *redacted = dburi_redact(item);
		int ret = 0;
		if (!scheme_ok) {
			ret = err_set(e, LB_EXIT_CONFIG, "%s: '%s' is not a %s:// URI", var,
				      SHOW(redacted), schemes[0]);
		} else if (!u.host[0] &&
			   (!source_uri_host_in_query(kind) || !query_has_host(u.query))) {
			ret = err_set(e, LB_EXIT_CONFIG, "%s: '%s' has no host", var,
				      SHOW(redacted));
		} else if (u.database && !utf8_valid(u.database)) {
			ret = err_set(e, LB_EXIT_CONFIG,
				      "%s: the database name in '%s' is not UTF-8", var,
				      SHOW(redacted));
		} else if (u.database && strlen(u.database) > DB_NAME_MAX) {
			ret = err_set(e, LB_EXIT_CONFIG,
				      "%s: the database name in '%s' is longer than %d bytes, the "
				      "most %s allows",
				      var, SHOW(redacted), DB_NAME_MAX, source_display_name(kind));
		}
		/* Names stay within what BACKUP_NAME allows, with room for a "-N". */
		char *name = NULL;
		if (!ret && source_name_from_host(kind)) {
			/* A server-wide kind: its name is its host (a database number says little).
			 */
			struct dburi hu = u;
			hu.database = NULL;
			name = dburi_default_name(&hu);
		} else if (!ret) {
			name = dburi_default_name(&u);
		}
		if (name && strlen(name) > NAME_MAX_LEN - 8)
			name[NAME_MAX_LEN - 8] = '\0';
		if (name && db_name_taken(cfg, kind, name)) {
			char *alt = xasprintf("%s-%s", u.host[0] ? u.host : "localhost", name);
			for (char *c = alt; *c; c++)
				if (!isalnum((unsigned char)*c) && !strchr("._-", *c))
					*c = '_';
			if (strlen(alt) > NAME_MAX_LEN - 8)
				alt[NAME_MAX_LEN - 8] = '\0';
			for (int n = 2; db_name_taken(cfg, kind, alt); n++) {
				free(alt);
				alt = xasprintf("%s-%d", name, n);
			}
			free(name);
			name = alt;
		}

		dburi_release(&u);
		if (ret) {
			free(redacted);
			explicit_bzero(item, strlen(item));
			free(item);
			return -1;
		}
		push_source(cfg,
			    (struct source_spec){
				    .kind = kind, .path = redacted, .name = name, .uri = item });
	}
	return 0;
}

/* Container names (Docker's rule) or Compose service names, comma separated. */
int config_parse_services(struct config *cfg, const char *value, struct err *e)
{
	for (const char *p = value; p && *p;) {
		size_t n = strcspn(p, ",");
		size_t lead = strspn(p, " \t");
		const char *name = p + lead;
		size_t k = n - lead;
		while (k && (name[k - 1] == ' ' || name[k - 1] == '\t'))
			k--;
		bool ok = k > 0 && k <= 128 && isalnum((unsigned char)name[0]);
		for (size_t i = 0; ok && i < k; i++)
			ok = isalnum((unsigned char)name[i]) || strchr("_.-", name[i]);
		if (!ok)
			return err_set(e, LB_EXIT_CONFIG,
				       "BACKUP_STOP_SERVICES entry '%.*s' is invalid: expected "
				       "Compose service or container names (letters, digits, '_', "
				       "'.', '-'), comma separated",
				       (int)(k < SHOWN_MAX ? k : SHOWN_MAX), name);
		char *one = xstrndup(name, k);
		bool dup = false;
		for (size_t i = 0; i < cfg->stop.services.nr; i++)
			dup |= !strcmp(cfg->stop.services.v[i], one);
		if (!dup)
			strvec_push(&cfg->stop.services, one);
		free(one);
		p += n;
		if (*p == ',') {
			p++;
			if (!*p)
				return err_set(
					e, LB_EXIT_CONFIG,
					"BACKUP_STOP_SERVICES ends with ',': remove it or add "
					"a name");
		}
	}
	return 0;
}

/* A compiled time zone file starts with the magic "TZif". */
static bool is_tzif(const char *path)
{
	struct strbuf head = STRBUF_INIT;
	struct stat st;
	bool ok = stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		  read_file_capped(path, 1 << 20, &head) == 0 && head.len >= 4 &&
		  !memcmp(head.buf, "TZif", 4);

	strbuf_release(&head);
	return ok;
}

int config_check_tz(const char *tz, struct err *e)
{
	const char *name = tz[0] == ':' ? tz + 1 : tz;
	const char *dir = getenv("TZDIR");

	if (!*name)
		return 0;
	if (name[0] == '/') {
		if (is_tzif(name))
			return 0;
	} else if (!path_has_dotdot(name)) {
		char *path = xasprintf("%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
		bool ok = is_tzif(path);
		free(path);
		if (ok)
			return 0;
		/* A POSIX TZ string such as "EST5EDT" or "UTC0" carries an offset digit. */
		if (tz[0] != ':' && strpbrk(name, "0123456789") && !strchr(name, '/'))
			return 0;
	}
	return err_set(e, LB_EXIT_CONFIG,
		       "TZ: unknown time zone '%s' (expected a name such as 'Europe/Berlin' from "
		       "/usr/share/zoneinfo)",
		       SHOW(tz));
}

static void warn_unknown(struct config *cfg, char *const *envp)
{
	for (char *const *p = envp; *p; p++) {
		if (strncmp(*p, "BACKUP_", 7))
			continue;
		const char *eq = strchr(*p, '=');
		size_t len = eq ? (size_t)(eq - *p) : strlen(*p);
		if (!var_find(*p, len))
			strvec_pushf(
				&cfg->warnings,
				"unknown variable %.*s is ignored (a typo? see README.md for the "
				"list)",
				(int)(len < SHOWN_MAX ? len : SHOWN_MAX), *p);
	}
}

/* Checks across variables, once every row is loaded. */
static int check_whole(struct config *cfg, struct err *e)
{
	if (cfg->crypt.kind == ENCRYPTION_AGE && cfg->crypt.key.len)
		return err_set(
			e, LB_EXIT_CONFIG,
			"%s is set with BACKUP_ENCRYPTION=age: age encrypts to a passphrase "
			"only when a person types it at a terminal, which a scheduled backup "
			"has not; use BACKUP_AGE_RECIPIENTS, or BACKUP_ENCRYPTION=gpg for a "
			"passphrase",
			cfg->crypt.key_origin);

	/* DOCKER_HOST is read as the Docker client will read it, whenever it may be used. */
	bool uses_docker = cfg->stop.services.nr > 0 || hooks_use_docker(cfg);
	for (size_t i = 0; i < cfg->nr_sources; i++)
		uses_docker |= source_uses_docker(cfg, cfg->sources[i].kind);
	if (uses_docker && docker_host_check(cfg->docker.host, e) < 0)
		return -1;

	/* A restore replaces a directory's whole content: sources must not nest. */
	for (size_t i = 0; i < cfg->nr_sources; i++) {
		for (size_t k = 0; k < cfg->nr_sources; k++) {
			const struct source_spec *outer = &cfg->sources[i],
						 *inner = &cfg->sources[k];
			if (i == k || outer->kind != SOURCE_DIR ||
			    !path_within(inner->path, outer->path))
				continue;
			return err_set(e, LB_EXIT_CONFIG,
				       "%s entry '%s:%s' lies inside BACKUP_DIRS entry '%s:%s': "
				       "sources must not overlap",
				       inner->kind == SOURCE_DIR ? "BACKUP_DIRS" : "BACKUP_FILES",
				       inner->path, inner->name, outer->path, outer->name);
		}
	}

	/* Restoring a directory replaces its content: the store must not live inside it. */
	for (size_t i = 0; cfg->local.path && i < cfg->nr_sources; i++) {
		const struct source_spec *s = &cfg->sources[i];
		if (s->kind == SOURCE_DIR && path_within(cfg->local.path, s->path))
			return err_set(
				e, LB_EXIT_CONFIG,
				"BACKUP_LOCAL_PATH '%s' is inside BACKUP_DIRS entry '%s:%s': "
				"keep backups outside the directories they protect",
				cfg->local.path, s->path, s->name);
	}
	return 0;
}

int config_load(struct config *cfg, char *const *envp, struct err *e)
{
	struct strbuf v = STRBUF_INIT;
	int ret = 0;

	warn_unknown(cfg, envp);
	/*
	 * Every row in the table's order: the first bad value is the one reported. Without
	 * its group's `enabled_by` (BACKUP_S3_BUCKET), a VAR_GROUP row set is ignored, with a
	 * warning.
	 */
	const struct config_var_group *g, *enabled = NULL;
	const struct config_var *var;
	for (size_t i = 0; !ret && (var = config_var_at(i, &g)); i++) {
		const char *origin;

		strbuf_release_secret(&v);
		if (get_value(envp, var, i, &v, &origin, e) < 0) {
			ret = -1;
		} else if ((var->flags & VAR_GROUP) && enabled != g) {
			if (origin)
				strvec_pushf(&cfg->warnings, "%s is ignored because %s is not set",
					     origin, g->enabled_by);
		} else {
			if (g->enabled_by && !strcmp(var->name, g->enabled_by) && origin)
				enabled = g;
			ret = var->parse(cfg, var, origin ? v.buf : NULL, v.len, origin, envp, e);
		}
	}
	strbuf_release_secret(&v);
	return ret < 0 ? -1 : check_whole(cfg, e);
}

/* The variables a refused run's report needs, beside every BACKUP_NOTIFY_* row. */
static bool reporting_row(const char *name)
{
	static const char *const names[] = { "BACKUP_NAME",
					     "TZ",
					     "BACKUP_START_WEBHOOK",
					     "BACKUP_SUCCESS_WEBHOOK",
					     "BACKUP_FAILURE_WEBHOOK",
					     "BACKUP_LOG_FILE",
					     "BACKUP_STATE_DIR" };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcmp(name, names[i]))
			return true;
	return !strncmp(name, "BACKUP_NOTIFY_", 14);
}

int config_load_reporting(struct config *cfg, char *const *envp, struct err *e)
{
	struct strbuf v = STRBUF_INIT;
	const struct config_var *var;
	int ret = 0;

	for (size_t i = 0; !ret && (var = config_var_at(i, NULL)); i++) {
		const char *origin;

		if (!reporting_row(var->name))
			continue;
		strbuf_release_secret(&v);
		if (get_value(envp, var, i, &v, &origin, e) < 0)
			ret = -1;
		else
			ret = var->parse(cfg, var, origin ? v.buf : NULL, v.len, origin, envp, e);
	}
	strbuf_release_secret(&v);
	return ret < 0 ? -1 : 0;
}

/*
 * The keys as gpg sees them (parseable, not expired or revoked, able to encrypt or sign),
 * their fingerprints kept for `check` and the encryption. Only for the commands that use
 * them: every gpg run costs a homedir and an agent, and `status` is a healthcheck.
 */
static int require_keys(struct config *cfg, unsigned need, struct err *e)
{
	struct config_crypt *k = &cfg->crypt;

	if ((need & NEED_KEY) && k->kind == ENCRYPTION_GPG && k->gpg_public.len &&
	    !k->gpg_recipients.nr &&
	    crypt_check_gpg_keys(&k->gpg_public,
				 k->gpg_public_origin ? k->gpg_public_origin
						      : "BACKUP_GPG_PUBLIC_KEYS",
				 false, &k->gpg_recipients, &k->gpg_subkeys, e) < 0)
		return -1;
	if ((need & NEED_VERIFY_KEYS) && k->verify_keys.len && !k->verify_fprs.nr) {
		struct strvec subkeys = STRVEC_INIT;
		int r = crypt_check_gpg_keys(
			&k->verify_keys, k->verify_origin ? k->verify_origin : "BACKUP_VERIFY_KEYS",
			true, &k->verify_fprs, &subkeys, e);
		strvec_release(&subkeys);
		if (r < 0)
			return -1;
	}
	return 0;
}

int config_require(struct config *cfg, unsigned need, struct err *e)
{
	struct stat st;

	if (need & NEED_STORE) {
		if (!store_any_configured(cfg))
			return store_none_configured(e);
	}
	if ((need & NEED_STORE) && cfg->local.path) {
		if (stat(cfg->local.path, &st) < 0)
			return err_set(e, LB_EXIT_CONFIG,
				       "BACKUP_LOCAL_PATH '%s': %s (mount a volume there)",
				       SHOW(cfg->local.path), strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return err_set(e, LB_EXIT_CONFIG,
				       "BACKUP_LOCAL_PATH '%s' is not a directory",
				       cfg->local.path);
	}
	if (require_keys(cfg, need, e) < 0)
		return -1;
	if ((need & NEED_KEY) && cfg->crypt.kind == ENCRYPTION_GPG && !cfg->crypt.key.len &&
	    !cfg->crypt.gpg_recipients.nr)
		return err_set(
			e, LB_EXIT_CONFIG,
			"BACKUP_ENCRYPTION_KEY is not set: set it (or BACKUP_ENCRYPTION_KEY_FILE) "
			"or BACKUP_GPG_PUBLIC_KEYS, or set BACKUP_ENCRYPTION=none to store "
			"unencrypted "
			"archives");
	if ((need & NEED_KEY) && cfg->crypt.signing_key_file &&
	    access(cfg->crypt.signing_key_file, R_OK) < 0)
		return err_set(e, LB_EXIT_CONFIG, "BACKUP_SIGNING_KEY_FILE '%s': %s",
			       SHOW(cfg->crypt.signing_key_file), strerror(errno));
	if ((need & NEED_KEY) && cfg->crypt.kind == ENCRYPTION_AGE && !cfg->crypt.nr_age_recipients)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_ENCRYPTION=age needs BACKUP_AGE_RECIPIENTS (age1… or SSH "
			       "public keys, or BACKUP_AGE_RECIPIENTS_FILE)");
	if (need & (NEED_SOURCES | NEED_SOURCES_AT_START)) {
		if (!cfg->nr_sources)
			return err_set(e, LB_EXIT_CONFIG,
				       "nothing to back up: set BACKUP_DIRS, BACKUP_FILES, "
				       "BACKUP_POSTGRES, BACKUP_MONGODB and/or BACKUP_REDIS");
		for (size_t i = 0; i < cfg->nr_sources; i++) {
			const struct source_spec *s = &cfg->sources[i];
			const char *var = source_var(s->kind);
			if (source_is_db(s->kind))
				continue;
			if (stat(s->path, &st) < 0) {
				int saved = errno;
				if ((need & NEED_SOURCES_AT_START) && s->kind == SOURCE_FILE &&
				    saved == ENOENT) {
					/* The application may create it later: its directory must
					 * exist (a mounted volume). */
					char *dir = xstrndup(
						s->path, (size_t)(strrchr(s->path, '/') - s->path));
					int r = stat(*dir ? dir : "/", &st);
					free(dir);
					if (r == 0 && S_ISDIR(st.st_mode))
						continue;
				}
				return err_set(e, LB_EXIT_CONFIG, "%s: '%s' (%s): %s", var,
					       SHOW(s->path), s->name, strerror(saved));
			}
			if (s->kind == SOURCE_DIR && !S_ISDIR(st.st_mode))
				return err_set(e, LB_EXIT_CONFIG,
					       "BACKUP_DIRS: '%s' (%s) is not a directory (use "
					       "BACKUP_FILES for files)",
					       SHOW(s->path), s->name);
			if (s->kind == SOURCE_FILE && !S_ISREG(st.st_mode))
				return err_set(e, LB_EXIT_CONFIG,
					       "BACKUP_FILES: '%s' (%s) is not a regular file%s",
					       SHOW(s->path), s->name,
					       S_ISDIR(st.st_mode)
						       ? " (use BACKUP_DIRS for directories)"
						       : "");
		}
	}
	return 0;
}

char *config_local_dir(const struct config *cfg)
{
	return xasprintf("%s/%s", cfg->local.path, cfg->name);
}

const struct source_spec *config_find_source(const struct config *cfg, enum source_kind kind,
					     const char *name)
{
	for (size_t i = 0; i < cfg->nr_sources; i++)
		if (cfg->sources[i].kind == kind && !strcmp(cfg->sources[i].name, name))
			return &cfg->sources[i];
	return NULL;
}

void config_describe(const struct config *cfg, struct strbuf *out)
{
	const struct config_var *v;

	for (size_t i = 0; (v = config_var_at(i, NULL)); i++) {
		if (v->parse == config_var_sources)
			config_describe_sources(cfg, out, v->name);
		else if (v->describe)
			v->describe(cfg, out);
	}
}

static void free_secret(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

void config_release(struct config *cfg)
{
	free(cfg->name);
	free(cfg->local.path);
	strbuf_release_secret(&cfg->crypt.key);
	strbuf_release(&cfg->crypt.gpg_public);
	strvec_release(&cfg->crypt.gpg_recipients);
	strvec_release(&cfg->crypt.gpg_subkeys);
	strbuf_release(&cfg->crypt.age_recipients);
	free(cfg->crypt.gpg_private_file);
	strbuf_release_secret(&cfg->crypt.gpg_private_pass);
	free(cfg->crypt.age_identity_file);
	free(cfg->crypt.signing_key_file);
	strbuf_release_secret(&cfg->crypt.signing_pass);
	strbuf_release(&cfg->crypt.verify_keys);
	strvec_release(&cfg->crypt.verify_fprs);
	for (size_t i = 0; i < cfg->nr_sources; i++) {
		free(cfg->sources[i].path);
		free(cfg->sources[i].name);
		free_secret(cfg->sources[i].uri);
	}
	free(cfg->sources);
	exclude_release(&cfg->exclude);
	free(cfg->redis.data_dir);
	free(cfg->tz);
	strvec_release(&cfg->stop.services);
	hook_list_release(&cfg->hooks.pre_backup);
	hook_list_release(&cfg->hooks.post_backup);
	hook_list_release(&cfg->hooks.pre_restore);
	hook_list_release(&cfg->hooks.post_restore);
	free(cfg->docker.host);
	free(cfg->s3.bucket);
	free(cfg->s3.endpoint);
	free(cfg->s3.region);
	strbuf_release_secret(&cfg->s3.access_key);
	strbuf_release_secret(&cfg->s3.secret_key);
	free(cfg->s3.ca_file);
	free(cfg->s3.storage_class);
	free(cfg->sftp.url);
	free(cfg->sftp.user);
	free(cfg->sftp.host);
	free(cfg->sftp.path);
	strbuf_release_secret(&cfg->sftp.password);
	strbuf_release_secret(&cfg->sftp.passphrase);
	free(cfg->sftp.identity_file);
	free(cfg->sftp.known_hosts);
	free(cfg->sftp.host_key);
	free(cfg->webdav.url);
	free(cfg->webdav.user);
	strbuf_release_secret(&cfg->webdav.password);
	free(cfg->webdav.ca_file);
	free(cfg->rclone.remote);
	strbuf_release_secret(&cfg->rclone.config);
	free(cfg->daemon.schedule);
	free(cfg->daemon.verify_schedule);
	free_secret(cfg->webhook.start);
	free_secret(cfg->webhook.success);
	free_secret(cfg->webhook.failure);
	notify_services_release(&cfg->notify.services);
	free(cfg->notify.template);
	free(cfg->daemon.metrics_addr);
	free(cfg->log_file);
	free(cfg->state_dir);
	strvec_release(&cfg->warnings);
	*cfg = (struct config)CONFIG_INIT;
}

/* A default shown as code when it is one word ("16M", "/var/lib/lifeboat"), else as prose. */
static bool literal_default(const char *s)
{
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/:._-", *p))
			return false;
	return true;
}

void config_variables_markdown(struct strbuf *out)
{
	strbuf_addstr(out, "| Variable | Default | Secret | Meaning |\n|---|---|---|---|\n");
	const struct config_var *v;

	for (size_t i = 0; (v = config_var_at(i, NULL)); i++) {
		const char *tick = v->def && literal_default(v->def) ? "`" : "";
		strbuf_addf(out, "| `%s` | %s%s%s | ", v->name, tick, v->def ? v->def : "", tick);
		if (v->flags & VAR_SECRET)
			strbuf_addstr(out, "yes");
		if (v->flags & VAR_FILE)
			strbuf_addf(out, ", also `%s_FILE`", v->name);
		strbuf_addf(out, " | %s |\n", v->help);
	}
}

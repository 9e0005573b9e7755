/*
 * The configuration table, shared by the loader (config.c) and the rows (config-vars.c):
 * one row per variable Lifeboat reads, in the order they are loaded and described.
 */
#ifndef LB_CONFIG_VARS_H
#define LB_CONFIG_VARS_H

#include "common.h"

#include "config.h"
#include "strbuf.h"

#define NAME_MAX_LEN	128 /* BACKUP_NAME and every source name */
#define SHOWN_MAX	200 /* bytes of a value echoed in a message */
#define CONFIG_VARS_MAX 128 /* rows the loader has room for (NAME_FILE names) */

enum config_var_flags {
	VAR_SECRET = 1 << 0, /* never printed */
	VAR_FILE = 1 << 1,   /* also read from the file named by NAME_FILE */
	VAR_GROUP = 1 << 2,  /* read only when its group's `enabled_by` is set; else warned about */
};

struct config_var;
/*
 * Set the row's field from `value` (NULL: the variable is unset), `len` bytes (a *_FILE's
 * content may hold NUL bytes); `origin` is the variable it came from (NAME or NAME_FILE);
 * `envp` is the whole environment. 0, or -1 with `e` set to LB_EXIT_CONFIG.
 */
typedef int config_parse_fn(struct config *cfg, const struct config_var *v, const char *value,
			    size_t len, const char *origin, char *const *envp, struct err *e);
/* Append the row's lines to `lifeboat check`'s description. */
typedef void config_describe_fn(const struct config *cfg, struct strbuf *out);

struct config_var {
	const char *name;
	unsigned flags;		      /* enum config_var_flags */
	config_parse_fn *parse;	      /* the parser, or a setter of its own */
	size_t off;		      /* the field in struct config, for the shared parsers */
	unsigned min, max;	      /* bounds, for the numeric parsers */
	const char *def;	      /* the default as README.md shows it; NULL: none */
	const char *help;	      /* README.md's line for it */
	config_describe_fn *describe; /* NULL: nothing in `lifeboat check` */
};

/*
 * The rows of one part of the table: the general variables, a source kind's (its
 * `vars` in sources/kinds.c), a store's (its `vars` in stores/store.c), the later ones.
 * A kind's or a store's rows live in its own file, beside its code.
 */
struct config_var_group {
	const struct config_var *v;
	size_t nr;
	const char *enabled_by; /* rows with VAR_GROUP are read only when this is set */
};
#define CONFIG_VAR_GROUP(rows)                 \
	{                                      \
		(rows), ARRAY_SIZE(rows), NULL \
	}
#define CONFIG_VAR_GROUP_IF(rows, var)          \
	{                                       \
		(rows), ARRAY_SIZE(rows), (var) \
	}

/* The i-th group in load order (general, sources, stores, later), or NULL past the end. */
const struct config_var_group *config_var_group(size_t i);
/* The i-th row over all groups in that order (and its group), or NULL past the end. */
const struct config_var *config_var_at(size_t i, const struct config_var_group **ret_group);

/* ---- for the rows' parsers ---- */

#define CONFIG_PARSE_ARGS                                                              \
	struct config *cfg, const struct config_var *v, const char *value, size_t len, \
		const char *origin, char *const *envp, struct err *e
/* Not every parser needs every argument. */
#define CONFIG_UNUSED_ARGS                                                                     \
	do {                                                                                   \
		(void)cfg, (void)v, (void)value, (void)len, (void)origin, (void)envp, (void)e; \
	} while (0)
/* The field a row's `off` names. */
#define FIELD(cfg, v, type)  ((type *)(void *)((char *)(cfg) + (v)->off))
#define CFIELD(cfg, v, type) ((const type *)(const void *)((const char *)(cfg) + (v)->off))
#define OFF(field)	     offsetof(struct config, field)
#define SECRET		     (VAR_SECRET | VAR_FILE)

/* Shared parsers: the row's `off` names the field. */
/* An absolute path without "..", normalized (char *); unset: the row's default or NULL. */
int config_var_path(CONFIG_PARSE_ARGS);
/* A string kept as given (char *), NULL when unset. */
int config_var_string(CONFIG_PARSE_ARGS);
/* true/false (bool). */
int config_var_bool(CONFIG_PARSE_ARGS);
/* Whole seconds from 0 to the row's max (unsigned). */
int config_var_wait(CONFIG_PARSE_ARGS);
/* A count from 0 to the row's max (int). */
int config_var_count(CONFIG_PARSE_ARGS);
/* Seconds, or with a unit (30m, 2h), at least the row's min (unsigned). */
int config_var_duration(CONFIG_PARSE_ARGS);

/*
 * A source kind's list, paths or database URIs, for the variable its kind table row names.
 * `lifeboat check` describes such a row with config_describe_sources (its `describe` unused).
 */
int config_var_sources(CONFIG_PARSE_ARGS);
/* `lifeboat check`'s lines for the sources configured by variable `var`. */
void config_describe_sources(const struct config *cfg, struct strbuf *out, const char *var);

/*
 * A value for a message: itself when short, else its first SHOWN_MAX bytes (whole UTF-8
 * characters) and its length, so a 128 KiB value makes a one-line error. Control
 * characters become '?'.
 */
const char *config_shown(const char *v, char buf[SHOWN_MAX + 32]);
#define SHOW(v) config_shown((v), (char[SHOWN_MAX + 32]){ 0 })

/* The list parsers, in config.c: BACKUP_DIRS/BACKUP_FILES and the database URI lists. */
int config_parse_paths(struct config *cfg, const char *var, const char *value,
		       enum source_kind kind, struct err *e);
int config_parse_uris(struct config *cfg, const char *var, const char *value, enum source_kind kind,
		      struct err *e);

/* BACKUP_STOP_SERVICES: container or Compose service names, comma separated, into
 * cfg->stop.services without duplicates. */
int config_parse_services(struct config *cfg, const char *value, struct err *e);
/* TZ: a zoneinfo name, an absolute TZif file, or a POSIX TZ string with an offset. */
int config_check_tz(const char *tz, struct err *e);

#endif

/* Database connection URIs (postgresql://, mongodb://): parse, redact, rebuild. */
#ifndef LB_DBURI_H
#define LB_DBURI_H

#include "common.h"

#include "err.h"

struct dburi {
	char *scheme;	/* as written: postgresql, postgres, mongodb, mongodb+srv */
	char *user;	/* decoded; NULL when absent */
	char *password; /* decoded; NULL when absent (a secret: never printed) */
	char *hosts;	/* the raw host list: "db:5432", "[::1]:5432", "h1:27017,h2" */
	char *host;	/* the first host, decoded, without port or brackets */
	char *port;	/* the first host's port; NULL when absent */
	char *database; /* decoded; NULL when absent or empty */
	char *query;	/* raw, without the '?' and without any password parameter */
};

/*
 * Parse `uri`. `var` names the variable for error messages, which show the
 * URI with its password replaced by "***". Accepts percent-encoded user,
 * password and database; a "password=" query parameter becomes the password.
 */
int dburi_parse(const char *uri, const char *var, struct dburi *u, struct err *e);

/* `uri` with any password (user-info or query parameter) replaced by "***". */
char *dburi_redact(const char *uri);

/*
 * Rebuild a URI from the parts, percent-encoding what needs it. The password
 * is left out unless `with_password`; `database` replaces the database when
 * not NULL ("" drops it).
 */
char *dburi_build(const struct dburi *u, bool with_password, const char *database);

/* A source name derived from the URI: its database, or its first host. */
char *dburi_default_name(const struct dburi *u);

void dburi_release(struct dburi *u);

#endif

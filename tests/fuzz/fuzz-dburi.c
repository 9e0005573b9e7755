/*
 * libFuzzer target: database URIs. Parsing any bytes must not crash; a parsed URI
 * rebuilds into one that parses to the same parts; and neither an error message nor
 * the redacted form ever contains the decoded password.
 */
#include "common.h"

#include "dburi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char secret[] = "Zq9Xk2Wv";
	char in[400], uri[512];
	struct dburi u, v;
	struct err e = ERR_INIT;

	if (size >= sizeof(in))
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	free(dburi_redact(in));
	if (dburi_parse(in, "BACKUP_POSTGRES", &u, &e) < 0) {
		if (!e.msg[0] || strchr(e.msg, '\n'))
			abort();
	} else {
		/* Whatever parses rebuilds into a URI with the same parts. */
		char *b = dburi_build(&u, true, NULL);
		struct err e2 = ERR_INIT;
		if (dburi_parse(b, "V", &v, &e2) == 0) {
			if (!same(u.user, v.user) || !same(u.password, v.password) ||
			    !same(u.database, v.database) || !same(u.host, v.host))
				abort();
			dburi_release(&v);
		}
		free(b);
		dburi_release(&u);
	}

	/* A known password between fuzzed parts: "postgresql://USER:SECRET@REST". */
	const char *cut = strchr(in, '\x01');
	int n = cut ? snprintf(uri, sizeof(uri), "postgresql://%.*s:%s@%s", (int)(cut - in), in,
			       secret, cut + 1)
		    : snprintf(uri, sizeof(uri), "postgresql://u:%s@%s", secret, in);
	if (n < 0 || (size_t)n >= sizeof(uri) || strstr(in, secret))
		return 0;
	char *red = dburi_redact(uri);
	if (strstr(red, secret))
		abort();
	free(red);
	struct err e3 = ERR_INIT;
	if (dburi_parse(uri, "BACKUP_POSTGRES", &u, &e3) < 0) {
		if (strstr(e3.msg, secret))
			abort();
		return 0;
	}
	dburi_release(&u);
	return 0;
}

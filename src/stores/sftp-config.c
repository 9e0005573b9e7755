/* The SFTP store's variables (its rows of the configuration table) and its pure helpers. */
#include "common.h"

#include <ctype.h>
#include <curl/curl.h>
#include <openssl/evp.h>

#include "config-vars.h"
#include "stores/sftp.h"
#include "stores/store.h"
#include "strbuf.h"
#include "xalloc.h"

void sftp_fingerprint(const void *blob, size_t len, char out[SFTP_FP_MAX])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned char b64[(EVP_MAX_MD_SIZE + 2) / 3 * 4 + 1];
	unsigned int mdlen = 0;

	EVP_Digest(blob, len, md, &mdlen, EVP_sha256(), NULL);
	int n = EVP_EncodeBlock(b64, md, (int)mdlen);
	while (n > 0 && b64[n - 1] == '=')
		n--;
	snprintf(out, SFTP_FP_MAX, "SHA256:%.*s", n, (const char *)b64);
}

void sftp_key_type(const void *blob, size_t len, char *out, size_t outlen)
{
	const unsigned char *b = blob;
	size_t n =
		len >= 4 ? (size_t)b[0] << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | b[3] : 0;
	bool ok = n && n <= 64 && n <= len - 4;

	for (size_t i = 0; ok && i < n; i++)
		ok = isgraph(b[4 + i]);
	snprintf(out, outlen, "%.*s", ok ? (int)n : 7, ok ? (const char *)b + 4 : "unknown");
}

/* Decode standard base64 (padding optional); -1 when it is not base64. */
static int b64_decode(const char *s, size_t len, struct strbuf *out)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned acc = 0, bits = 0;

	while (len && s[len - 1] == '=')
		len--;
	if (!len || len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		const char *p = s[i] ? strchr(alphabet, s[i]) : NULL;
		if (!p)
			return -1;
		acc = (acc << 6) | (unsigned)(p - alphabet);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			strbuf_addch(out, (char)((acc >> bits) & 0xff));
		}
	}
	return 0;
}

int sftp_host_key_parse(const char *value, char **ret)
{
	struct strbuf blob = STRBUF_INIT;
	const char *p = value;

	if (!strncmp(value, "SHA256:", 7)) {
		size_t n = strlen(value + 7);
		if (b64_decode(value + 7, n, &blob) < 0 || blob.len != 32) {
			strbuf_release(&blob);
			return -1;
		}
		while (n && value[7 + n - 1] == '=')
			n--;
		*ret = xasprintf("SHA256:%.*s", (int)n, value + 7);
		strbuf_release(&blob);
		return 0;
	}
	/* The key itself: the first word that decodes to a key blob naming its type. */
	while (*p) {
		p += strspn(p, " \t");
		size_t n = strcspn(p, " \t");
		char type[80];
		strbuf_reset(&blob);
		if (n && b64_decode(p, n, &blob) == 0) {
			sftp_key_type(blob.buf, blob.len, type, sizeof(type));
			if (strcmp(type, "unknown") && blob.len > strlen(type) + 8) {
				char fp[SFTP_FP_MAX];
				sftp_fingerprint(blob.buf, blob.len, fp);
				*ret = xstrdup(fp);
				strbuf_release(&blob);
				return 0;
			}
		}
		p += n;
	}
	strbuf_release(&blob);
	return -1;
}

int sftp_listing_line(const char *line, size_t len, struct strbuf *name, uint64_t *size)
{
	const char *w[16];
	size_t wl[16], nw = 0;

	strbuf_reset(name);
	while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		len--;
	for (size_t i = 0; i < len && nw < ARRAY_SIZE(w);) {
		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i == len)
			break;
		w[nw] = line + i;
		while (i < len && line[i] != ' ' && line[i] != '\t')
			i++;
		wl[nw] = (size_t)(line + i - w[nw]);
		nw++;
	}
	/* mode ... size month day time-or-year name: a regular file's mode starts with '-'. */
	if (nw < 5 || w[0][0] != '-')
		return 0;
	strbuf_add(name, w[nw - 1], wl[nw - 1]);
	const char *sz = w[nw - 5];
	uint64_t v = 0;
	for (size_t i = 0; i < wl[nw - 5]; i++) {
		if (!isdigit((unsigned char)sz[i]) || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(sz[i] - '0');
	}
	*size = v;
	return 1;
}

void sftp_quote_path(struct strbuf *out, const char *path)
{
	strbuf_addch(out, '"');
	for (const char *p = path; *p; p++) {
		if (*p == '"' || *p == '\\')
			strbuf_addch(out, '\\');
		strbuf_addch(out, *p);
	}
	strbuf_addch(out, '"');
}

/* ---- the rows ---- */

static int url_fail(struct err *e, const char *why)
{
	return err_set(e, LB_EXIT_CONFIG,
		       "BACKUP_SFTP_URL is invalid: %s (expected sftp://USER@HOST[:PORT]/PATH)",
		       why);
}

/* A ".." component: "/../" inside or "/.." at the end. */
static bool has_dotdot(const char *s)
{
	size_t n = strlen(s);

	return strstr(s, "/../") || (n >= 3 && !strcmp(s + n - 3, "/.."));
}

static int var_sftp_url(CONFIG_PARSE_ARGS)
{
	char *user = NULL, *pass = NULL, *host = NULL, *port = NULL, *path = NULL, *q = NULL;
	CURLU *u;
	int ret = -1;
	CONFIG_UNUSED_ARGS;

	if (!value)
		return 0;
	u = curl_url();
	if (!u)
		return err_set(e, LB_EXIT_INTERNAL, "out of memory");
	/* Never echoed whole: a password in it (refused below) must not reach a message. */
	if (strncasecmp(value, "sftp://", 7) ||
	    curl_url_set(u, CURLUPART_URL, value, CURLU_ALLOW_SPACE)) {
		url_fail(e, "not an sftp:// URL");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK) {
		err_set(e, LB_EXIT_CONFIG,
			"BACKUP_SFTP_URL must not hold the password: set BACKUP_SFTP_PASSWORD (or "
			"BACKUP_SFTP_PASSWORD_FILE) instead");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &user, CURLU_URLDECODE) || !*user) {
		url_fail(e, "no user name");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) || !*host) {
		url_fail(e, "no host");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_QUERY, &q, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &q, 0) == CURLUE_OK) {
		url_fail(e, "a query or fragment after the path");
		goto out;
	}
	curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
	curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE);
	for (const char *p = path ? path : ""; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			url_fail(e, "a control character in the path");
			goto out;
		}
	}
	/* Before and after decoding: curl would resolve "a/../b" silently. */
	if (has_dotdot(value) || has_dotdot(path ? path : "")) {
		url_fail(e, "'..' in the path");
		goto out;
	}
	for (const char *p = user; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			url_fail(e, "a control character in the user name");
			goto out;
		}
	}
	cfg->sftp.url = xstrdup(value);
	cfg->sftp.user = xstrdup(user);
	cfg->sftp.host = xstrdup(host);
	cfg->sftp.port = port ? (unsigned)strtoul(port, NULL, 10) : 22;
	cfg->sftp.path = xstrdup(path ? path : "");
	size_t n = strlen(cfg->sftp.path);
	while (n && cfg->sftp.path[n - 1] == '/')
		cfg->sftp.path[--n] = '\0';
	ret = 0;
out:
	curl_free(user);
	if (pass)
		explicit_bzero(pass, strlen(pass));
	curl_free(pass);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(q);
	curl_url_cleanup(u);
	return ret;
}

static int var_sftp_password(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return 0;
	strbuf_add(&cfg->sftp.password, value, len);
	cfg->sftp.password_origin = origin;
	return 0;
}

static int readable_file(const char *var, const char *value, char **dst, struct err *e)
{
	if (value[0] != '/')
		return err_set(e, LB_EXIT_CONFIG, "%s '%s' must be an absolute path", var,
			       SHOW(value));
	if (access(value, R_OK) < 0)
		return err_set(e, LB_EXIT_CONFIG, "%s '%s': %s", var, SHOW(value), strerror(errno));
	*dst = xstrdup(value);
	return 0;
}

static int var_sftp_identity_file(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value && !cfg->sftp.password.len)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_SFTP_URL is set but neither BACKUP_SFTP_PASSWORD (or "
			       "BACKUP_SFTP_PASSWORD_FILE) nor BACKUP_SFTP_IDENTITY_FILE is");
	return value ? readable_file(v->name, value, &cfg->sftp.identity_file, e) : 0;
}

static int var_sftp_passphrase(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return 0;
	if (!cfg->sftp.identity_file)
		return err_set(e, LB_EXIT_CONFIG,
			       "%s is set but BACKUP_SFTP_IDENTITY_FILE is not: the passphrase is "
			       "the identity file's",
			       origin);
	strbuf_add(&cfg->sftp.passphrase, value, len);
	cfg->sftp.passphrase_origin = origin;
	return 0;
}

static int var_sftp_known_hosts(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	return value ? readable_file(v->name, value, &cfg->sftp.known_hosts, e) : 0;
}

static int var_sftp_host_key(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (value && cfg->sftp.known_hosts)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_SFTP_KNOWN_HOSTS and BACKUP_SFTP_HOST_KEY are both set: use "
			       "only one");
	if (!value && !cfg->sftp.known_hosts)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_SFTP_URL is set but neither BACKUP_SFTP_KNOWN_HOSTS nor "
			       "BACKUP_SFTP_HOST_KEY is: the server's host key is always verified "
			       "(a first connection without them fails and prints the key's "
			       "fingerprint)");
	if (value && sftp_host_key_parse(value, &cfg->sftp.host_key) < 0)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_SFTP_HOST_KEY '%s' is invalid: expected a fingerprint "
			       "'SHA256:...' as `ssh-keygen -l` prints it, or the public key "
			       "('ssh-ed25519 AAAA...')",
			       SHOW(value));
	return 0;
}

static void describe_sftp(const struct config *cfg, struct strbuf *out)
{
	const struct config_sftp *s = &cfg->sftp;

	if (!s->url)
		return;
	strbuf_addf(out, "BACKUP_SFTP_URL      %s\n", s->url);
	strbuf_addf(out, "  archives in        sftp://%s@%s:%u%s/%s/\n", s->user, s->host, s->port,
		    s->path, cfg->name);
	if (s->password.len)
		strbuf_addf(out, "SFTP password        read from %s (redacted)\n",
			    s->password_origin);
	if (s->identity_file)
		strbuf_addf(out, "BACKUP_SFTP_IDENTITY_FILE %s%s%s%s\n", s->identity_file,
			    s->passphrase.len ? " (passphrase read from " : "",
			    s->passphrase.len ? s->passphrase_origin : "",
			    s->passphrase.len ? ", redacted)" : "");
	if (s->known_hosts)
		strbuf_addf(out, "BACKUP_SFTP_KNOWN_HOSTS %s (the host key is verified)\n",
			    s->known_hosts);
	if (s->host_key)
		strbuf_addf(out, "BACKUP_SFTP_HOST_KEY %s (the host key is verified)\n",
			    s->host_key);
	strbuf_addf(out, "BACKUP_SFTP_TIMEOUT  %us without progress\n", s->timeout);
}

static const struct config_var sftp_rows[] = {
	{ "BACKUP_SFTP_URL", 0, var_sftp_url, 0, 0, 0, NULL,
	  "`sftp://USER@HOST[:PORT]/PATH` of an SFTP server (a Storage Box, a NAS, any SSH "
	  "server). Archives go to `PATH/BACKUP_NAME/`; `PATH` must exist, `BACKUP_NAME/` is "
	  "created. The port defaults to 22. No password in it: see `BACKUP_SFTP_PASSWORD`. "
	  "Works alone or beside the other stores (all get the same stream). See [SFTP](#sftp).",
	  describe_sftp },
	{ "BACKUP_SFTP_PASSWORD", SECRET | VAR_GROUP, var_sftp_password, 0, 0, 0, NULL,
	  "The SFTP user's password (password or keyboard-interactive authentication).", NULL },
	{ "BACKUP_SFTP_IDENTITY_FILE", VAR_GROUP, var_sftp_identity_file, 0, 0, 0, NULL,
	  "Absolute path of an SSH private key (OpenSSH or PEM format; ed25519 or ECDSA, since "
	  "RSA keys sign with SHA-1, which OpenSSH servers refuse). One of it and "
	  "`BACKUP_SFTP_PASSWORD` is required; with both, the key is tried first.",
	  NULL },
	{ "BACKUP_SFTP_IDENTITY_PASSPHRASE", SECRET | VAR_GROUP, var_sftp_passphrase, 0, 0, 0, NULL,
	  "Passphrase of an encrypted `BACKUP_SFTP_IDENTITY_FILE`.", NULL },
	{ "BACKUP_SFTP_KNOWN_HOSTS", VAR_GROUP, var_sftp_known_hosts, 0, 0, 0, NULL,
	  "Absolute path of a `known_hosts` file holding the server's host key (`ssh-keyscan -p "
	  "PORT HOST`, checked). This or `BACKUP_SFTP_HOST_KEY` is required: the host key is "
	  "always verified.",
	  NULL },
	{ "BACKUP_SFTP_HOST_KEY", VAR_GROUP, var_sftp_host_key, 0, 0, 0, NULL,
	  "The server's host key, pinned: its fingerprint `SHA256:...` as `ssh-keygen -l` prints "
	  "it, or the public key itself (`ssh-ed25519 AAAA...`). An unknown or changed key fails "
	  "with the fingerprint the server showed.",
	  NULL },
	{ "BACKUP_SFTP_TIMEOUT", VAR_GROUP, config_var_duration, OFF(sftp.timeout), 1, 0, "120",
	  "How long the SFTP server may make no progress (connect, answer, take bytes) before the "
	  "run gives up on it: seconds, or `5m`; default `120`. A transfer that moves is never "
	  "cut.",
	  NULL },
};
const struct config_var_group sftp_vars = CONFIG_VAR_GROUP_IF(sftp_rows, "BACKUP_SFTP_URL");

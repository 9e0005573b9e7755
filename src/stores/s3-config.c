/* The S3 store's variables: its rows of the configuration table (config-vars.h). */
#include "common.h"

#include <ctype.h>

#include "config-vars.h"
#include "parse.h"
#include "stores/store.h"
#include "strbuf.h"
#include "xalloc.h"

static int var_s3_bucket(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return 0;
	if (!parse_bucket_valid(value))
		return err_set(
			e, LB_EXIT_CONFIG,
			"BACKUP_S3_BUCKET '%s' is invalid: S3 bucket names have 3 to 63 "
			"lowercase letters, digits, '.' and '-', start and end with a letter "
			"or digit, and are not IP addresses (no 's3://' and no path)",
			SHOW(value));
	cfg->s3.bucket = xstrdup(value);
	return 0;
}

static int var_s3_access_key(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_S3_BUCKET is set but BACKUP_S3_ACCESS_KEY is not (or "
			       "BACKUP_S3_ACCESS_KEY_FILE)");
	strbuf_add(&cfg->s3.access_key, value, len);
	cfg->s3.access_origin = origin;
	return 0;
}

static int var_s3_secret_key(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_S3_BUCKET is set but BACKUP_S3_SECRET_KEY is not (or "
			       "BACKUP_S3_SECRET_KEY_FILE)");
	strbuf_add(&cfg->s3.secret_key, value, len);
	cfg->s3.secret_origin = origin;
	return 0;
}

static int var_s3_endpoint(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
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
	cfg->s3.endpoint = xstrdup(value);
	size_t n = strlen(cfg->s3.endpoint);
	if (cfg->s3.endpoint[n - 1] == '/')
		cfg->s3.endpoint[n - 1] = '\0';
	return 0;
}

static int var_s3_region(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	for (const char *p = value; p && *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return err_set(e, LB_EXIT_CONFIG,
				       "BACKUP_S3_REGION '%s' is invalid (expected a name such as "
				       "'us-east-1')",
				       SHOW(value));
	cfg->s3.region = xstrdup(value ? value : v->def);
	return 0;
}

static int var_s3_path_style(CONFIG_PARSE_ARGS)
{
	bool b;
	CONFIG_UNUSED_ARGS;

	if (!value)
		return 0;
	if (parse_bool(value, &b) < 0)
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_S3_PATH_STYLE '%s' is invalid: expected true or false",
			       SHOW(value));
	cfg->s3.path_style = b;
	return 0;
}

static int var_s3_ca_file(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	if (!value)
		return 0;
	if (access(value, R_OK) < 0)
		return err_set(e, LB_EXIT_CONFIG, "BACKUP_S3_CA_FILE '%s': %s", SHOW(value),
			       strerror(errno));
	cfg->s3.ca_file = xstrdup(value);
	return 0;
}

static int var_s3_storage_class(CONFIG_PARSE_ARGS)
{
	CONFIG_UNUSED_ARGS;
	for (const char *p = value; p && *p; p++)
		if (!isupper((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
			return err_set(e, LB_EXIT_CONFIG,
				       "BACKUP_S3_STORAGE_CLASS '%s' is invalid (expected a class "
				       "such as STANDARD_IA)",
				       SHOW(value));
	if (value)
		cfg->s3.storage_class = xstrdup(value);
	return 0;
}

static int var_s3_part_size(CONFIG_PARSE_ARGS)
{
	uint64_t n;
	CONFIG_UNUSED_ARGS;

	if (parse_size(value ? value : v->def, &n) < 0 || n < (5ull << 20) || n > (5ull << 30))
		return err_set(e, LB_EXIT_CONFIG,
			       "BACKUP_S3_PART_SIZE '%s' is invalid: expected a size from 5M to 5G "
			       "(for example 16M)",
			       SHOW(value ? value : v->def));
	cfg->s3.part_size = n;
	return 0;
}

/* The S3 store, all its variables at once. */
static void describe_s3(const struct config *cfg, struct strbuf *out)
{
	if (!cfg->s3.bucket)
		return;
	strbuf_addf(out, "BACKUP_S3_BUCKET     %s\n", cfg->s3.bucket);
	strbuf_addf(out, "  archives in        s3://%s/%s/\n", cfg->s3.bucket, cfg->name);
	strbuf_addf(out, "BACKUP_S3_ENDPOINT   %s\n",
		    cfg->s3.endpoint ? cfg->s3.endpoint : "(unset: AWS S3)");
	strbuf_addf(out, "BACKUP_S3_REGION     %s\n", cfg->s3.region);
	strbuf_addf(out, "S3 access key        read from %s (redacted)\n", cfg->s3.access_origin);
	strbuf_addf(out, "S3 secret key        read from %s (redacted)\n", cfg->s3.secret_origin);
	strbuf_addf(out, "BACKUP_S3_PATH_STYLE %s\n",
		    cfg->s3.path_style < 0
			    ? (cfg->s3.endpoint ? "true (custom endpoint)" : "false (AWS)")
		    : cfg->s3.path_style ? "true"
					 : "false");
	if (cfg->s3.ca_file)
		strbuf_addf(out, "BACKUP_S3_CA_FILE    %s\n", cfg->s3.ca_file);
	if (cfg->s3.storage_class)
		strbuf_addf(out, "BACKUP_S3_STORAGE_CLASS %s\n", cfg->s3.storage_class);
	strbuf_addf(out, "BACKUP_S3_PART_SIZE  %llu MiB (minimum; grows for large backups)\n",
		    (unsigned long long)(cfg->s3.part_size >> 20));
	strbuf_addf(out,
		    "BACKUP_S3_TIMEOUT    %us without progress per request (a transfer that "
		    "moves is never cut)\n",
		    cfg->s3.timeout);
}

static const struct config_var s3_rows[] = {
	{ "BACKUP_S3_BUCKET", 0, var_s3_bucket, 0, 0, 0, NULL,
	  "S3 bucket to store archives in, at "
	  "`s3://BUCKET/BACKUP_NAME/BACKUP_NAME-YYYY-MM-DD-HHMMSS.tar.gz.gpg`. Works alone or "
	  "together with `BACKUP_LOCAL_PATH` (both get the same stream). The bucket must exist, "
	  "and its name must follow S3's rules: 3–63 lowercase letters, digits, `.` and `-`, a "
	  "letter or digit at each end, no `..`, not an IP address.",
	  describe_s3 },
	{ "BACKUP_S3_ACCESS_KEY", SECRET | VAR_GROUP, var_s3_access_key, 0, 0, 0, NULL,
	  "Access key ID; required with `BACKUP_S3_BUCKET`.", NULL },
	{ "BACKUP_S3_SECRET_KEY", SECRET | VAR_GROUP, var_s3_secret_key, 0, 0, 0, NULL,
	  "Secret access key; required with `BACKUP_S3_BUCKET`.", NULL },
	{ "BACKUP_S3_ENDPOINT", VAR_GROUP, var_s3_endpoint, 0, 0, 0, "AWS S3",
	  "`https://host[:port]` (or `http://`; port 1–65535) of an S3-compatible service (MinIO, "
	  "Backblaze B2, Wasabi, ...). Default: AWS S3 (`https://s3.REGION.amazonaws.com`).",
	  NULL },
	{ "BACKUP_S3_REGION", VAR_GROUP, var_s3_region, 0, 0, 0, "us-east-1",
	  "Region used for signing; default `us-east-1`.", NULL },
	{ "BACKUP_S3_PATH_STYLE", VAR_GROUP, var_s3_path_style, 0, 0, 0,
	  "true with an endpoint, else false",
	  "`true`: `https://ENDPOINT/BUCKET/KEY`; `false`: `https://BUCKET.ENDPOINT/KEY`. Default: "
	  "path-style for a custom endpoint, virtual-hosted for AWS.",
	  NULL },
	{ "BACKUP_S3_CA_FILE", VAR_GROUP, var_s3_ca_file, 0, 0, 0, NULL,
	  "PEM bundle of CAs to trust for the endpoint (a private CA). HTTPS is always verified.",
	  NULL },
	{ "BACKUP_S3_STORAGE_CLASS", VAR_GROUP, var_s3_storage_class, 0, 0, 0, "the bucket's",
	  "Storage class of new objects, e.g. `STANDARD_IA`; default: the bucket's.", NULL },
	{ "BACKUP_S3_PART_SIZE", VAR_GROUP, var_s3_part_size, 0, 0, 0, "16M",
	  "Multipart part size floor, `5M` to `5G` (default `16M`). Memory use is about 3 parts. "
	  "Parts double every 1,000 parts so a backup never needs more than S3's 10,000.",
	  NULL },
	{ "BACKUP_S3_TIMEOUT", VAR_GROUP, config_var_duration, OFF(s3.timeout), 1, 0, "120",
	  "How long S3 may make no progress before the run gives up on it: seconds, or `5m` (1 s "
	  "to 7 days); default `120` (2 minutes). It bounds silence, not transfers: an upload of "
	  "any size and duration runs as long as bytes keep moving. See [S3](#s3).",
	  NULL },
};
const struct config_var_group s3_vars = CONFIG_VAR_GROUP_IF(s3_rows, "BACKUP_S3_BUCKET");

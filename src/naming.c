/* Pure functions naming archives and parsing their names back. */
#include "common.h"

#include "naming.h"
#include "xalloc.h"

static const struct {
	const char *suffix;
	enum compression compression;
	enum encryption encryption;
} suffixes[] = {
	{ ".tar.gz.gpg", COMPRESSION_GZIP, ENCRYPTION_GPG },
	{ ".tar.gz.age", COMPRESSION_GZIP, ENCRYPTION_AGE },
	{ ".tar.gz", COMPRESSION_GZIP, ENCRYPTION_NONE },
	{ ".tar.zst.gpg", COMPRESSION_ZSTD, ENCRYPTION_GPG },
	{ ".tar.zst.age", COMPRESSION_ZSTD, ENCRYPTION_AGE },
	{ ".tar.zst", COMPRESSION_ZSTD, ENCRYPTION_NONE },
	{ ".tar.gpg", COMPRESSION_NONE, ENCRYPTION_GPG },
	{ ".tar.age", COMPRESSION_NONE, ENCRYPTION_AGE },
	{ ".tar", COMPRESSION_NONE, ENCRYPTION_NONE },
};

void naming_timestamp(time_t t, char out[TIMESTAMP_LEN + 1])
{
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, TIMESTAMP_LEN + 1, "%Y-%m-%d-%H%M%S", &tm);
}

static int digits(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

bool naming_timestamp_valid(const char *s, time_t *ret_time)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (strlen(s) < TIMESTAMP_LEN || s[4] != '-' || s[7] != '-' || s[10] != '-')
		return false;
	int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
	int h = digits(s + 11, 2), mi = digits(s + 13, 2), se = digits(s + 15, 2);
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || se < 0 || se > 60)
		return false;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return false;
	if (ret_time) {
		struct tm tm = { .tm_year = y - 1900,
				 .tm_mon = mo - 1,
				 .tm_mday = d,
				 .tm_hour = h,
				 .tm_min = mi,
				 .tm_sec = se,
				 .tm_isdst = -1 };
		*ret_time = mktime(&tm);
	}
	return true;
}

const char *naming_suffix_enc(enum compression c, enum encryption enc)
{
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++)
		if (suffixes[i].compression == c && suffixes[i].encryption == enc)
			return suffixes[i].suffix;
	return ".tar";
}

const char *naming_suffix(enum compression c, bool encrypted)
{
	return naming_suffix_enc(c, encrypted ? ENCRYPTION_GPG : ENCRYPTION_NONE);
}

enum encryption naming_encryption(const struct backup_id *id)
{
	if (id->encryption != ENCRYPTION_NONE)
		return id->encryption;
	return id->encrypted ? ENCRYPTION_GPG : ENCRYPTION_NONE;
}

char *naming_file(const char *name, const struct backup_id *id)
{
	return xasprintf("%s-%s%s", name, id->timestamp,
			 naming_suffix_enc(id->compression, naming_encryption(id)));
}

bool naming_parse(const char *name, const char *file, struct backup_id *ret)
{
	size_t n = strlen(name);
	struct backup_id id = { 0 };

	if (strncmp(file, name, n) || file[n] != '-')
		return false;
	file += n + 1;
	if (strlen(file) <= TIMESTAMP_LEN || !naming_timestamp_valid(file, &id.time))
		return false;
	memcpy(id.timestamp, file, TIMESTAMP_LEN);
	id.timestamp[TIMESTAMP_LEN] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		if (!strcmp(file + TIMESTAMP_LEN, suffixes[i].suffix)) {
			id.compression = suffixes[i].compression;
			id.encryption = suffixes[i].encryption;
			id.encrypted = id.encryption != ENCRYPTION_NONE;
			*ret = id;
			return true;
		}
	}
	return false;
}

/* Archive file names: NAME-YYYY-MM-DD-HHMMSS.tar.gz[.gpg|.age], and timestamps in TZ. */
#ifndef LB_NAMING_H
#define LB_NAMING_H

#include "common.h"

#include <time.h>

#define TIMESTAMP_LEN 17 /* YYYY-MM-DD-HHMMSS */

enum compression { COMPRESSION_GZIP, COMPRESSION_ZSTD, COMPRESSION_NONE };

/* How an archive is encrypted: its last suffix (".gpg", ".age" or none). */
enum encryption { ENCRYPTION_NONE, ENCRYPTION_GPG, ENCRYPTION_AGE };

struct backup_id {
	char timestamp[TIMESTAMP_LEN + 1];
	enum compression compression;
	bool encrypted;		    /* gpg or age */
	enum encryption encryption; /* which; ENCRYPTION_NONE with `encrypted` set means gpg */
	time_t time;		    /* the timestamp read in the current TZ */
};

/* Format `t` as YYYY-MM-DD-HHMMSS in the current TZ. */
void naming_timestamp(time_t t, char out[TIMESTAMP_LEN + 1]);

/* Is `s` a valid YYYY-MM-DD-HHMMSS timestamp? Sets *ret_time when given. */
bool naming_timestamp_valid(const char *s, time_t *ret_time);

/* "NAME-TIMESTAMP.tar.gz.gpg"; caller frees. */
char *naming_file(const char *name, const struct backup_id *id);

/* The suffix for a compression/encryption pair, e.g. ".tar.gz.gpg". */
const char *naming_suffix(enum compression c, bool encrypted);
/* The same for any encryption: ".tar.zst.age". */
const char *naming_suffix_enc(enum compression c, enum encryption enc);
/* An id's encryption, whichever of its two fields was set. */
enum encryption naming_encryption(const struct backup_id *id);

/* Parse a file name of this backup name; false if it is not one of ours. */
bool naming_parse(const char *name, const char *file, struct backup_id *ret);

#endif

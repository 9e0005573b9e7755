/* The SFTP store's pure helpers, exposed for unit tests. */
#ifndef LB_STORES_SFTP_H
#define LB_STORES_SFTP_H

#include "common.h"

#include "strbuf.h"

#define SFTP_FP_MAX 64 /* "SHA256:" + 43 base64 characters + NUL, with room */

/* "SHA256:..." of a public key blob, as `ssh-keygen -l` prints it (no '=' padding). */
void sftp_fingerprint(const void *blob, size_t len, char out[SFTP_FP_MAX]);

/* The key type a public key blob names ("ssh-ed25519"), or "unknown". */
void sftp_key_type(const void *blob, size_t len, char *out, size_t outlen);

/*
 * BACKUP_SFTP_HOST_KEY: "SHA256:<base64>" (as `ssh-keygen -l` prints it), or the key
 * itself ("[type] <base64> [comment]", a .pub file's or known_hosts line's tail). Sets
 * *ret to its "SHA256:..." (the caller frees). 0, or -1 when it is neither.
 */
int sftp_host_key_parse(const char *value, char **ret);

/*
 * One line of an SFTP long listing ("-rw------- 1 u g 1234 Dec  1 23:45 name", as
 * `ls -l` prints it): a regular file's name and size. Returns 1 with both set, 0 for a
 * line naming no regular file, -1 when the size cannot be read (the name is set).
 */
int sftp_listing_line(const char *line, size_t len, struct strbuf *name, uint64_t *size);

/* A path as curl's SFTP commands ("rename", "rm", "mkdir") read it: in double quotes. */
void sftp_quote_path(struct strbuf *out, const char *path);

#endif

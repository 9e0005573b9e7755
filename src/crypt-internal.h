/* What crypt.c and crypt-keys.c share: the gpg child's setup and run. */
#ifndef LB_CRYPT_INTERNAL_H
#define LB_CRYPT_INTERNAL_H

#include "common.h"

#include "crypt.h"
#include "err.h"
#include "strbuf.h"
#include "strvec.h"

/* A private 0700 gpg homedir for `c`. */
int crypt_make_homedir(struct crypt *c, struct err *e);
/* A pipe holding the passphrase and its line end: gpg's --passphrase-fd. */
int crypt_passphrase_fd(const struct strbuf *key, const char *origin, struct err *e);
/* The arguments every gpg run here starts with. */
void crypt_gpg_args(struct crypt *c, struct strvec *a);
/*
 * Start c's child (gpg or age, its arguments set) reading `in` (CHILD_PIPE: a pipe we
 * write), its stdout a pipe, `fd3` (-1: none) as its fd 3, kept open by the caller.
 */
int crypt_child_start(struct crypt *c, int in, int fd3, struct err *e);
/* The last line of a tool's stderr that is neither a status line nor age's "report" advice. */
const char *crypt_err_summary(const struct strbuf *tail, struct strbuf *out);
/*
 * Run one short gpg command in the homedir: `input` on its stdin, its stdout into `out`
 * (NULL: dropped). 0 or the failed run's summary in `why` with -1.
 */
int crypt_gpg_run(struct crypt *c, const char *const *extra, const struct strbuf *input,
		  struct strbuf *out, struct strbuf *why, struct err *e);
/* Read the private key file (it may be binary) into `out`; LB_EXIT_CONFIG naming `origin`. */
int crypt_read_key_file(const char *path, const char *origin, struct strbuf *out, struct err *e);
/* Import public keys into c's homedir and check them (crypt-keys.c's check_listing). */
int crypt_load_public_keys(struct crypt *c, const struct strbuf *keys, const char *var, char cap,
			   struct strvec *fprs, struct strvec *subkeys, struct err *e);

#endif

/* OpenPGP symmetric encryption through GnuPG's gpg, run as a child with pipes we own. */
#ifndef LB_CRYPT_H
#define LB_CRYPT_H

#include "common.h"

#include "child.h"
#include "err.h"
#include "util.h"

struct crypt {
	struct child gpg;
	char homedir[96];
	int home_fd; /* holds an flock on homedir while we use it (see remove_stale_homedirs) */
	bool decrypt;
};
#define CRYPT_INIT                               \
	{                                        \
		.gpg = CHILD_INIT, .home_fd = -1 \
	}

/*
 * Start `gpg --symmetric` (AES-256, no compression). Write plaintext to
 * c->gpg.in_fd, read the OpenPGP message from c->gpg.out_fd.
 */
int crypt_encrypt_start(struct crypt *c, const struct strbuf *key, struct err *e);

/* Start `gpg --decrypt` reading from `in_fd`; read plaintext from c->gpg.out_fd. */
int crypt_decrypt_start(struct crypt *c, const struct strbuf *key, int in_fd, struct err *e);

/*
 * Wait for gpg and judge its result: a wrong passphrase is LB_EXIT_CRYPTO,
 * a damaged message LB_EXIT_INTEGRITY. `what` names the backup in messages.
 */
int crypt_finish(struct crypt *c, const char *what, struct err *e);

/* Stop gpg and its agent and remove the private home directory. */
void crypt_release(struct crypt *c);

#endif

/* Streaming SHA-256 (OpenSSL) with hex output. */
#ifndef LB_HASH_H
#define LB_HASH_H

#include "common.h"

#define SHA256_HEX_LEN 64

struct sha256 {
	void *ctx; /* EVP_MD_CTX */
};

void sha256_init(struct sha256 *h);
void sha256_update(struct sha256 *h, const void *data, size_t len);
/* Finish into 64 hex digits + NUL and release the context. */
void sha256_final_hex(struct sha256 *h, char out[SHA256_HEX_LEN + 1]);
void sha256_release(struct sha256 *h);

#endif

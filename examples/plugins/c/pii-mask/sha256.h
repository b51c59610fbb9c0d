/* HMAC-SHA256 (RFC 2104 over FIPS 180-4). */
#ifndef PII_MASK_SHA256_H
#define PII_MASK_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t bytes;
    unsigned char block[64];
    size_t fill;
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
void sha256_final(sha256_ctx *c, unsigned char out[32]);

/* A keyed HMAC: the inner and outer hash states after the padded key. */
typedef struct {
    sha256_ctx inner, outer;
} hmac_sha256;

void hmac_sha256_init(hmac_sha256 *m, const char *key, size_t len);
/* The lower-case hex MAC of `len` bytes of `data` into `hex` (65 bytes). */
void hmac_sha256_hex(const hmac_sha256 *m, const char *data, size_t len, char hex[65]);

#endif

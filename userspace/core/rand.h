/* Unpredictable identifiers.  RFC 3261 §19.3 asks for tags, branches and
 * Call-IDs that cannot be guessed: an off-path attacker who saw one call
 * must not be able to forge a BYE for the next.  Bytes come from
 * getrandom(2), read ahead in a per-thread buffer so that an identifier
 * costs a copy, not a system call. */
#ifndef SIPHA_RAND_H
#define SIPHA_RAND_H

#include <stddef.h>
#include <stdint.h>

void rnd_bytes(void *buf, size_t n);
uint64_t rnd_u64(void);
/* NBYTES random bytes as 2 * NBYTES lower-case hex digits and a NUL into
 * OUT (at least 2 * NBYTES + 1 bytes). */
void rnd_hex(char *out, size_t nbytes);

#endif

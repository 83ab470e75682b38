/* One keyed hash for every table whose keys come from the network
 * (Call-IDs, tags, branches, AoRs, addresses): SipHash-2-4 (libsodium's
 * crypto_shorthash) under a random key drawn once per process, so that a
 * sender cannot choose keys that fall into one bucket (hash flooding) —
 * FNV-1a, unkeyed, let anyone who read the code do that. */
#ifndef SIPHA_KHASH_H
#define SIPHA_KHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t khash(const void *p, size_t n);
uint64_t khash_str(const char *s);
/* Of the pair A, B (not the same as of A and B written together). */
uint64_t khash_str2(const char *a, const char *b);

#endif

/* SIP digest authentication (RFC 3261 §22; RFC 2617 / RFC 7616 digest; RFC
 * 8760 SHA-256 and MD5 for SIP): the [auth] users file, stateless nonces,
 * the expected "response", nonce-count replay protection and the challenge
 * text.  Pure: no sockets, transactions or server state; the caller parses
 * the Authorization header and decides what to answer.
 *
 * MD5 is libosip2's (osip_MD5*, the RFC 1321 reference code); SHA-256 and
 * HMAC-SHA-256 are libsodium's.
 *
 * A request is authenticated with:
 *   dg_alg_parse(algorithm)          -> -EINVAL: 401 with a fresh challenge
 *   dg_nonce_check(secret, nonce)    -> -ESTALE: 401 ..., stale=true
 *   dg_ha1(users, user, realm, alg)  -> false: 401 (or 403)
 *   dg_response(...) + dg_response_ok(expected, response)
 *   dg_nc_accept(table, nonce, nc)   -> false: 401 ..., stale=true
 * (the nonce-count last, once the response proved the request genuine, so a
 * forged request cannot burn a client's nonce-count). */
#ifndef SIPHA_SIP_DIGEST_H
#define SIPHA_SIP_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dg_alg {
	DG_MD5 = 0,
	DG_SHA256 = 1
};

#define DG_USERS_MAX_LINES 1000000 /* a users file of more lines is refused */
#define DG_USERS_LINE_MAX 1024 /* bytes in a line, CR LF excluded */
#define DG_USER_MAX 128 /* bytes in a user name */
#define DG_NONCE_LEN 54 /* characters in a nonce of dg_nonce_make */
#define DG_NONCE_FUTURE_S 60 /* a nonce from further in the future is stale */

struct dg_users; /* the [auth] users file, parsed */

/* Loads PATH: one credential per line, "user:password", "user:md5:HA1hex" or
 * "user:sha256:HA1hex" (HA1 = H(user:realm:password), hex, 32 or 64 digits;
 * upper case is accepted and kept in lower case); '#' comment lines
 * (leading blanks allowed) and blank lines skipped; CRLF ok.
 *
 * A user name is 1..DG_USER_MAX bytes of printable ASCII other than
 * ':' '"' '\' (or bytes >= 0x80, UTF-8); a password is the rest of the
 * line after the first ':', at least one byte, no control characters
 * (spaces and ':' are kept).  A password that begins with "md5:" or
 * "sha256:" is read as an HA1, so cannot be written in clear.
 *
 * Refuses a file readable by group or others (mode & 077, -EACCES), a
 * symbolic link or not a regular file (-EINVAL), a malformed line (-EINVAL),
 * a user twice (-EINVAL), over DG_USERS_MAX_LINES lines (-EFBIG).  0, or
 * -errno with ERR = "PATH:LINE: reason" (LINE 0 for the file as a whole).
 * Passwords are wiped from memory by dg_users_free. */
int dg_users_load(const char *path, struct dg_users **out, char *err, size_t errlen);
void dg_users_free(struct dg_users *u);
size_t dg_users_count(const struct dg_users *u);

/* HA1 of USER in REALM for ALG as lower-case hex into HEX (65 bytes): from
 * the password, or the stored HA1 when it is of that algorithm (a stored HA1
 * was computed with some realm: REALM is not used for it).  false, HEX
 * empty, when the user is unknown or has no HA1 for ALG (an md5 HA1 cannot
 * serve sha256). */
bool dg_ha1(const struct dg_users *u, const char *user, const char *realm, enum dg_alg alg,
	    char hex[65]);

/* H(DATA) as lower-case hex into OUT (33 or 65 bytes). */
void dg_hash_hex(enum dg_alg alg, const void *data, size_t len, char out[65]);

/* Stateless nonces: NOW_S (seconds, wall clock), 8 random bytes (two clients
 * never share a nonce, so never a nonce-count) and an HMAC-SHA-256 of both
 * under SECRET (32 bytes), truncated to 24 bytes, base64url without padding:
 * DG_NONCE_LEN characters of A-Z a-z 0-9 - _.  Any node holding SECRET can
 * check them (both nodes of a pair) and no state is kept per nonce.  N is
 * OUT's size, at least DG_NONCE_LEN + 1 (else OUT is left empty). */
void dg_nonce_make(const uint8_t secret[32], uint64_t now_s, char *out, size_t n);
/* 0 valid, -ESTALE older than LIFETIME_S (or from the future by more than
 * DG_NONCE_FUTURE_S), -EINVAL forged or malformed (the MAC is checked
 * first: a forged nonce is never stale).  Constant-time comparison. */
int dg_nonce_check(const uint8_t secret[32], const char *nonce, uint64_t now_s,
		   unsigned lifetime_s);

/* The expected "response" (RFC 7616 §3.4.1): with QOP "auth":
 * H(HA1:nonce:nc:cnonce:qop:H(method:uri)); without qop (NULL):
 * H(HA1:nonce:H(method:uri)).  OUT lower-case hex (33 or 65 bytes).  OUT is
 * empty (and so matches no response) for another qop ("auth-int" is not
 * supported), an HA1 not of ALG's length, or a NULL argument that is needed. */
void dg_response(enum dg_alg alg, const char *ha1hex, const char *nonce, const char *nc,
		 const char *cnonce, const char *qop, const char *method, const char *uri,
		 char out[65]);
/* Whether RESPONSE (hex, any case) equals EXPECTED (dg_response's), in time
 * independent of the digits.  false when either is NULL or empty. */
bool dg_response_ok(const char *expected, const char *response);

/* Parses an algorithm token: "MD5" (or NULL) -> DG_MD5, "SHA-256" ->
 * DG_SHA256, case-insensitive; -EINVAL for anything else ("", "MD5-sess",
 * a quoted value). */
int dg_alg_parse(const char *s, enum dg_alg *out);
const char *dg_alg_name(enum dg_alg a); /* "MD5", "SHA-256" */

/* A WWW-Authenticate / Proxy-Authenticate value for REALM, NONCE, ALG,
 * STALE into OUT (N bytes):
 *   Digest realm="...", nonce="...", algorithm=..., qop="auth"[, stale=true]
 * 0, -EINVAL for a realm or nonce that is empty or holds '"', '\' or a
 * control character, -ENOSPC when OUT is too small (OUT then empty). */
int dg_challenge(char *out, size_t n, const char *realm, const char *nonce, enum dg_alg alg,
		 bool stale);

/* nonce-count replay protection with bounded memory: remembers, per nonce
 * (1..63 characters), the highest nc seen, in a table of at most MAX entries
 * where the oldest (first seen) is evicted.  dg_nc_accept returns true and
 * records NC when NC (8 hex digits, not 00000000) is higher than any seen for
 * NONCE; false for a replay or a malformed nc or nonce.
 *
 * Eviction would let a replay through once its nonce is forgotten; so the
 * table keeps the newest issue time of the dg_nonce_make nonces it evicted,
 * and refuses a dg_nonce_make nonce it does not know that is no newer (the
 * client is then re-challenged with stale=true).  Other nonce strings are
 * simply forgotten.  Not thread-safe: one table per thread, or a lock. */
struct dg_nc_table;
/* 0, -EINVAL (MAX 0 or over 2^31), -ENOMEM. */
int dg_nc_new(struct dg_nc_table **out, size_t max);
void dg_nc_free(struct dg_nc_table *t);
bool dg_nc_accept(struct dg_nc_table *t, const char *nonce, const char *nc);
size_t dg_nc_count(const struct dg_nc_table *t);

#endif

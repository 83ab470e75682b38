/* SIP digest authentication: see digest.h.  MD5 comes from libosip2
 * (osip_md5.h, the RFC 1321 reference implementation it ships), SHA-256,
 * HMAC-SHA-256, SipHash, base64 and constant-time comparison from
 * libsodium, random bytes from core/rand. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <osipparser2/osip_md5.h>

#include "core/rand.h"
#include "sip/digest.h"

static const char nonce_label[] = "sipha-digest-nonce-v1";

#define STR_(x) #x
#define DG_STR(x) STR_(x)

#define NONCE_RAND 8
#define NONCE_TAG 24
#define NONCE_BIN (8 + NONCE_RAND + NONCE_TAG)

/* --- hashing ----------------------------------------------------------------- */

struct hctx {
	enum dg_alg alg;
	union {
		osip_MD5_CTX md5;
		crypto_hash_sha256_state sha;
	} u;
};

static size_t hex_len(enum dg_alg alg)
{
	return alg == DG_SHA256 ? 64 : 32;
}

static void h_init(struct hctx *h, enum dg_alg alg)
{
	h->alg = alg;
	if (alg == DG_SHA256)
		crypto_hash_sha256_init(&h->u.sha);
	else
		osip_MD5Init(&h->u.md5);
}

static void h_update(struct hctx *h, const void *data, size_t len)
{
	const unsigned char *p = data;

	if (h->alg == DG_SHA256) {
		crypto_hash_sha256_update(&h->u.sha, p, len);
		return;
	}
	while (len) {
		unsigned int n = len > UINT_MAX ? UINT_MAX : (unsigned int)len;

		/* osip_MD5Update does not write through its pointer */
		osip_MD5Update(&h->u.md5, (unsigned char *)(uintptr_t)p, n);
		p += n;
		len -= n;
	}
}

static void h_str(struct hctx *h, const char *s)
{
	h_update(h, s, strlen(s));
}

static void h_final(struct hctx *h, char out[65])
{
	unsigned char d[32];
	size_t dl = h->alg == DG_SHA256 ? 32 : 16;

	if (h->alg == DG_SHA256)
		crypto_hash_sha256_final(&h->u.sha, d);
	else
		osip_MD5Final(d, &h->u.md5);
	sodium_bin2hex(out, 65, d, dl);
	sodium_memzero(d, sizeof(d));
	sodium_memzero(&h->u, sizeof(h->u));
}

void dg_hash_hex(enum dg_alg alg, const void *data, size_t len, char out[65])
{
	struct hctx h;

	h_init(&h, alg);
	h_update(&h, data, len);
	h_final(&h, out);
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* --- the users file ---------------------------------------------------------- */

enum cred_kind {
	CRED_PASSWORD,
	CRED_MD5,
	CRED_SHA256
};

struct cred {
	char *user; /* one allocation: user NUL secret NUL */
	const char *secret; /* password, or HA1 in lower-case hex */
	size_t size; /* of the allocation, to wipe it */
	enum cred_kind kind;
	unsigned line;
};

struct dg_users {
	struct cred *v;
	size_t n, cap;
	uint32_t *slot; /* open addressing: index + 1 into v, 0 empty */
	size_t nslot; /* power of two, at least twice n */
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

static struct cred *users_find(const struct dg_users *u, const char *user)
{
	size_t mask = u->nslot - 1;

	if (!u->nslot)
		return NULL;
	for (size_t i = fnv1a(user) & mask;; i = (i + 1) & mask) {
		uint32_t s = u->slot[i];

		if (!s)
			return NULL;
		if (!strcmp(u->v[s - 1].user, user))
			return &u->v[s - 1];
	}
}

static void slot_put(uint32_t *slot, size_t nslot, const char *user, uint32_t idx)
{
	size_t mask = nslot - 1, i = fnv1a(user) & mask;

	while (slot[i])
		i = (i + 1) & mask;
	slot[i] = idx + 1;
}

/* Room for one more credential. */
static int users_grow(struct dg_users *u)
{
	if (u->n == u->cap) {
		size_t cap = u->cap ? u->cap * 2 : 64;
		struct cred *v = realloc(u->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		u->v = v;
		u->cap = cap;
	}
	if ((u->n + 1) * 2 > u->nslot) {
		size_t nslot = u->nslot ? u->nslot * 2 : 128;
		uint32_t *slot = calloc(nslot, sizeof(*slot));

		if (!slot)
			return -ENOMEM;
		for (size_t i = 0; i < u->n; i++)
			slot_put(slot, nslot, u->v[i].user, (uint32_t)i);
		free(u->slot);
		u->slot = slot;
		u->nslot = nslot;
	}
	return 0;
}

void dg_users_free(struct dg_users *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n; i++) {
		sodium_memzero(u->v[i].user, u->v[i].size);
		free(u->v[i].user);
	}
	free(u->v);
	free(u->slot);
	free(u);
}

size_t dg_users_count(const struct dg_users *u)
{
	return u ? u->n : 0;
}

static int fail(char *err, size_t errlen, int rc, const char *path, unsigned line, const char *fmt,
		...) __attribute__((format(printf, 6, 7)));

static int fail(char *err, size_t errlen, int rc, const char *path, unsigned line, const char *fmt,
		...)
{
	va_list ap;
	int n;

	if (!err || !errlen)
		return rc;
	n = snprintf(err, errlen, "%s:%u: ", path, line);
	if (n >= 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static bool user_char_ok(unsigned char c)
{
	return c >= 0x80 || (c > 0x20 && c < 0x7f && c != ':' && c != '"' && c != '\\');
}

/* Parses one line (no line ending, NUL-free) into U; a reason on error. */
static const char *parse_line(struct dg_users *u, char *s, size_t len, unsigned line, char *dup,
			      size_t duplen)
{
	const char *colon = memchr(s, ':', len), *sec;
	size_t ulen, slen;
	enum cred_kind kind = CRED_PASSWORD;
	struct cred *c;
	char *mem;

	if (!colon)
		return "no ':' after the user name";
	ulen = (size_t)(colon - s);
	if (!ulen)
		return "empty user name";
	if (ulen > DG_USER_MAX)
		return "user name longer than " DG_STR(DG_USER_MAX) " bytes";
	for (size_t i = 0; i < ulen; i++) {
		if (!user_char_ok((unsigned char)s[i]))
			return "user name has a space, a control character, '\"' or '\\'";
	}
	sec = colon + 1;
	slen = len - ulen - 1;
	if (slen >= 4 && !memcmp(sec, "md5:", 4)) {
		kind = CRED_MD5;
		sec += 4;
		slen -= 4;
		if (slen != 32 || !is_hex(sec, slen))
			return "md5 HA1 is not 32 hex digits";
	} else if (slen >= 7 && !memcmp(sec, "sha256:", 7)) {
		kind = CRED_SHA256;
		sec += 7;
		slen -= 7;
		if (slen != 64 || !is_hex(sec, slen))
			return "sha256 HA1 is not 64 hex digits";
	} else {
		if (!slen)
			return "empty password";
		for (size_t i = 0; i < slen; i++) {
			unsigned char ch = (unsigned char)sec[i];

			if (ch < 0x20 || ch == 0x7f)
				return "password has a control character";
		}
	}
	s[ulen] = '\0';
	c = users_find(u, s);
	if (c) {
		snprintf(dup, duplen, "user '%s' given twice (first on line %u)", s, c->line);
		s[ulen] = ':';
		return dup;
	}
	s[ulen] = ':';
	if (users_grow(u))
		return NULL; /* ENOMEM: told apart by the caller */
	mem = malloc(ulen + 1 + slen + 1);
	if (!mem)
		return NULL;
	memcpy(mem, s, ulen);
	mem[ulen] = '\0';
	memcpy(mem + ulen + 1, sec, slen);
	mem[ulen + 1 + slen] = '\0';
	if (kind != CRED_PASSWORD) {
		for (size_t i = 0; i < slen; i++)
			mem[ulen + 1 + i] = (char)tolower((unsigned char)mem[ulen + 1 + i]);
	}
	c = &u->v[u->n];
	c->user = mem;
	c->secret = mem + ulen + 1;
	c->size = ulen + 1 + slen + 1;
	c->kind = kind;
	c->line = line;
	slot_put(u->slot, u->nslot, mem, (uint32_t)u->n);
	u->n++;
	return "";
}

static bool blank_or_comment(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i == len || s[i] == '#';
}

int dg_users_load(const char *path, struct dg_users **out, char *err, size_t errlen)
{
	struct dg_users *u = NULL;
	char *buf = NULL, dup[DG_USER_MAX + 64];
	size_t cap = 0;
	unsigned line = 0;
	struct stat st;
	ssize_t len;
	FILE *f = NULL;
	int fd, rc = 0;

	*out = NULL;
	if (err && errlen)
		err[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ELOOP)
			return fail(err, errlen, -EINVAL, path, 0,
				    "a symbolic link (refused: name the file itself)");
		return fail(err, errlen, rc, path, 0, "%s", strerror(-rc));
	}
	if (fstat(fd, &st)) {
		rc = fail(err, errlen, -errno, path, 0, "%s", strerror(errno));
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return fail(err, errlen, -EINVAL, path, 0, "not a regular file");
	}
	if (st.st_mode & 077) {
		close(fd);
		return fail(err, errlen, -EACCES, path, 0,
			    "open to group or others (mode %04o): chmod 600 it",
			    (unsigned)(st.st_mode & 07777));
	}
	f = fdopen(fd, "r");
	if (!f) {
		rc = fail(err, errlen, -errno, path, 0, "%s", strerror(errno));
		close(fd);
		return rc;
	}
	u = calloc(1, sizeof(*u));
	if (!u) {
		rc = fail(err, errlen, -ENOMEM, path, 0, "out of memory");
		goto out;
	}
	errno = 0;
	while ((len = getline(&buf, &cap, f)) >= 0) {
		const char *why;

		if (line == DG_USERS_MAX_LINES) {
			rc = fail(err, errlen, -EFBIG, path, 0, "over %u lines",
				  (unsigned)DG_USERS_MAX_LINES);
			goto out;
		}
		line++;
		if (len && buf[len - 1] == '\n')
			len--;
		if (len && buf[len - 1] == '\r')
			len--;
		buf[len] = '\0';
		if (strlen(buf) != (size_t)len) {
			rc = fail(err, errlen, -EINVAL, path, line, "a NUL byte");
			goto out;
		}
		if ((size_t)len > DG_USERS_LINE_MAX) {
			rc = fail(err, errlen, -EINVAL, path, line, "longer than %u bytes",
				  (unsigned)DG_USERS_LINE_MAX);
			goto out;
		}
		if (blank_or_comment(buf, (size_t)len))
			continue;
		why = parse_line(u, buf, (size_t)len, line, dup, sizeof(dup));
		if (!why) {
			rc = fail(err, errlen, -ENOMEM, path, line, "out of memory");
			goto out;
		}
		if (*why) {
			rc = fail(err, errlen, -EINVAL, path, line, "%s", why);
			goto out;
		}
		errno = 0;
	}
	if (ferror(f)) {
		rc = errno ? -errno : -EIO;
		rc = fail(err, errlen, rc, path, 0, "%s", strerror(-rc));
	}
out:
	if (buf) {
		sodium_memzero(buf, cap);
		free(buf);
	}
	sodium_memzero(dup, sizeof(dup));
	fclose(f);
	if (rc) {
		dg_users_free(u);
		return rc;
	}
	*out = u;
	return 0;
}

bool dg_ha1(const struct dg_users *u, const char *user, const char *realm, enum dg_alg alg,
	    char hex[65])
{
	const struct cred *c;
	struct hctx h;

	hex[0] = '\0';
	if (!u || !user || (alg != DG_MD5 && alg != DG_SHA256))
		return false;
	c = users_find(u, user);
	if (!c)
		return false;
	switch (c->kind) {
	case CRED_MD5:
	case CRED_SHA256:
		if ((c->kind == CRED_MD5) != (alg == DG_MD5))
			return false;
		memcpy(hex, c->secret, hex_len(alg) + 1);
		return true;
	case CRED_PASSWORD:
		if (!realm)
			return false;
		h_init(&h, alg);
		h_str(&h, c->user);
		h_update(&h, ":", 1);
		h_str(&h, realm);
		h_update(&h, ":", 1);
		h_str(&h, c->secret);
		h_final(&h, hex);
		return true;
	}
	return false;
}

/* --- nonces -------------------------------------------------------------------- */

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void nonce_tag(const uint8_t secret[32], const uint8_t *ts_rand, uint8_t tag[NONCE_TAG])
{
	crypto_auth_hmacsha256_state st;
	uint8_t full[32];

	crypto_auth_hmacsha256_init(&st, secret, 32);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)nonce_label, sizeof(nonce_label) - 1);
	crypto_auth_hmacsha256_update(&st, ts_rand, 8 + NONCE_RAND);
	crypto_auth_hmacsha256_final(&st, full);
	memcpy(tag, full, NONCE_TAG);
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(full, sizeof(full));
}

void dg_nonce_make(const uint8_t secret[32], uint64_t now_s, char *out, size_t n)
{
	uint8_t bin[NONCE_BIN];

	if (!out || !n)
		return;
	out[0] = '\0';
	if (n < DG_NONCE_LEN + 1)
		return;
	put_be64(bin, now_s);
	rnd_bytes(bin + 8, NONCE_RAND);
	nonce_tag(secret, bin, bin + 8 + NONCE_RAND);
	sodium_bin2base64(out, n, bin, sizeof(bin), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* The DG_NONCE_LEN characters of NONCE decoded into BIN. */
static bool nonce_decode(const char *nonce, uint8_t bin[NONCE_BIN])
{
	size_t binlen = 0;
	const char *end = NULL;

	if (!nonce || strnlen(nonce, DG_NONCE_LEN + 1) != DG_NONCE_LEN)
		return false;
	if (sodium_base642bin(bin, NONCE_BIN, nonce, DG_NONCE_LEN, NULL, &binlen, &end,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING))
		return false;
	return binlen == NONCE_BIN && end == nonce + DG_NONCE_LEN;
}

int dg_nonce_check(const uint8_t secret[32], const char *nonce, uint64_t now_s, unsigned lifetime_s)
{
	uint8_t bin[NONCE_BIN], want[NONCE_TAG];
	uint64_t ts;
	int bad;

	if (!nonce_decode(nonce, bin))
		return -EINVAL;
	nonce_tag(secret, bin, want);
	bad = sodium_memcmp(want, bin + 8 + NONCE_RAND, NONCE_TAG);
	sodium_memzero(want, sizeof(want));
	if (bad)
		return -EINVAL;
	ts = get_be64(bin);
	if (ts > now_s && ts - now_s > DG_NONCE_FUTURE_S)
		return -ESTALE;
	if (now_s > ts && now_s - ts > lifetime_s)
		return -ESTALE;
	return 0;
}

/* --- response ------------------------------------------------------------------ */

void dg_response(enum dg_alg alg, const char *ha1hex, const char *nonce, const char *nc,
		 const char *cnonce, const char *qop, const char *method, const char *uri,
		 char out[65])
{
	struct hctx h;
	char ha2[65];

	out[0] = '\0';
	if (alg != DG_MD5 && alg != DG_SHA256)
		return;
	if (!ha1hex || !nonce || !method || !uri || strlen(ha1hex) != hex_len(alg))
		return;
	if (qop && (strcasecmp(qop, "auth") || !nc || !cnonce))
		return;
	h_init(&h, alg);
	h_str(&h, method);
	h_update(&h, ":", 1);
	h_str(&h, uri);
	h_final(&h, ha2);

	h_init(&h, alg);
	h_str(&h, ha1hex);
	h_update(&h, ":", 1);
	h_str(&h, nonce);
	h_update(&h, ":", 1);
	if (qop) {
		h_str(&h, nc);
		h_update(&h, ":", 1);
		h_str(&h, cnonce);
		h_update(&h, ":", 1);
		h_str(&h, qop);
		h_update(&h, ":", 1);
	}
	h_str(&h, ha2);
	h_final(&h, out);
}

bool dg_response_ok(const char *expected, const char *response)
{
	char low[64];
	size_t n;
	bool ok;

	if (!expected || !response)
		return false;
	n = strlen(expected);
	if ((n != 32 && n != 64) || strnlen(response, 65) != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)response[i];

		/* branch-free: 'A'..'F' (and other upper case) to lower case */
		low[i] = (char)(c | (((unsigned)(c - 'A') < 26u) << 5));
	}
	ok = sodium_memcmp(low, expected, n) == 0;
	sodium_memzero(low, sizeof(low));
	return ok;
}

/* --- algorithm and challenge ----------------------------------------------------- */

int dg_alg_parse(const char *s, enum dg_alg *out)
{
	if (!s || !strcasecmp(s, "MD5")) {
		*out = DG_MD5;
		return 0;
	}
	if (!strcasecmp(s, "SHA-256")) {
		*out = DG_SHA256;
		return 0;
	}
	return -EINVAL;
}

const char *dg_alg_name(enum dg_alg a)
{
	return a == DG_SHA256 ? "SHA-256" : "MD5";
}

static bool quotable(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
			return false;
	}
	return true;
}

int dg_challenge(char *out, size_t n, const char *realm, const char *nonce, enum dg_alg alg,
		 bool stale)
{
	int w;

	if (out && n)
		out[0] = '\0';
	if (!out || !quotable(realm) || !quotable(nonce) || (alg != DG_MD5 && alg != DG_SHA256))
		return -EINVAL;
	w = snprintf(out, n, "Digest realm=\"%s\", nonce=\"%s\", algorithm=%s, qop=\"auth\"%s",
		     realm, nonce, dg_alg_name(alg), stale ? ", stale=true" : "");
	if (w < 0 || (size_t)w >= n) {
		if (n)
			out[0] = '\0';
		return -ENOSPC;
	}
	return 0;
}

/* --- nonce-count table --------------------------------------------------------- */

#define NC_NONE UINT32_MAX

struct nc_ent {
	char nonce[64];
	uint64_t hash;
	uint64_t ts; /* issue time of a dg_nonce_make nonce */
	bool has_ts;
	uint32_t nc;
	uint32_t next; /* in its bucket, NC_NONE at the end */
};

struct dg_nc_table {
	struct nc_ent *e; /* a ring in order first seen: e[head] is the oldest */
	uint32_t *bucket;
	size_t max, n, head, mask;
	uint8_t key[crypto_shorthash_KEYBYTES];
	bool has_mark;
	uint64_t mark; /* newest issue time of an evicted dg_nonce_make nonce */
};

int dg_nc_new(struct dg_nc_table **out, size_t max)
{
	struct dg_nc_table *t;
	size_t nb = 16;

	*out = NULL;
	if (!max || max > (size_t)1 << 31)
		return -EINVAL;
	while (nb < max)
		nb *= 2;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->e = calloc(max, sizeof(*t->e));
	t->bucket = malloc(nb * sizeof(*t->bucket));
	if (!t->e || !t->bucket) {
		dg_nc_free(t);
		return -ENOMEM;
	}
	memset(t->bucket, 0xff, nb * sizeof(*t->bucket));
	t->max = max;
	t->mask = nb - 1;
	rnd_bytes(t->key, sizeof(t->key));
	*out = t;
	return 0;
}

void dg_nc_free(struct dg_nc_table *t)
{
	if (!t)
		return;
	free(t->e);
	free(t->bucket);
	sodium_memzero(t->key, sizeof(t->key));
	free(t);
}

size_t dg_nc_count(const struct dg_nc_table *t)
{
	return t ? t->n : 0;
}

static bool nc_parse(const char *s, uint32_t *v)
{
	uint32_t x = 0;

	if (!s || strnlen(s, 9) != 8 || !is_hex(s, 8))
		return false;
	for (int i = 0; i < 8; i++) {
		int c = tolower((unsigned char)s[i]);

		x = x << 4 | (uint32_t)(c <= '9' ? c - '0' : c - 'a' + 10);
	}
	*v = x;
	return x != 0;
}

static void nc_unlink(struct dg_nc_table *t, uint32_t idx)
{
	uint32_t *p = &t->bucket[t->e[idx].hash & t->mask];

	while (*p != idx)
		p = &t->e[*p].next;
	*p = t->e[idx].next;
}

bool dg_nc_accept(struct dg_nc_table *t, const char *nonce, const char *nc)
{
	uint8_t bin[NONCE_BIN];
	struct nc_ent *e;
	uint64_t hash, ts = 0;
	bool has_ts;
	size_t len, idx;
	uint32_t v;

	if (!t || !nonce || !nc_parse(nc, &v))
		return false;
	len = strnlen(nonce, sizeof(e->nonce));
	if (!len || len >= sizeof(e->nonce))
		return false;
	crypto_shorthash((uint8_t *)&hash, (const uint8_t *)nonce, len, t->key);
	for (uint32_t i = t->bucket[hash & t->mask]; i != NC_NONE; i = t->e[i].next) {
		e = &t->e[i];
		if (e->hash == hash && !strcmp(e->nonce, nonce)) {
			if (v <= e->nc)
				return false;
			e->nc = v;
			return true;
		}
	}
	has_ts = nonce_decode(nonce, bin);
	if (has_ts)
		ts = get_be64(bin);
	if (has_ts && t->has_mark && ts <= t->mark)
		return false; /* perhaps seen, then forgotten */
	if (t->n == t->max) {
		/* evict the oldest: its slot becomes the newest */
		idx = t->head;
		e = &t->e[idx];
		nc_unlink(t, (uint32_t)idx);
		if (e->has_ts && (!t->has_mark || e->ts > t->mark)) {
			t->mark = e->ts;
			t->has_mark = true;
		}
		t->head = (t->head + 1) % t->max;
	} else {
		idx = (t->head + t->n) % t->max;
		t->n++;
	}
	e = &t->e[idx];
	memcpy(e->nonce, nonce, len + 1);
	e->hash = hash;
	e->ts = ts;
	e->has_ts = has_ts;
	e->nc = v;
	e->next = t->bucket[hash & t->mask];
	t->bucket[hash & t->mask] = (uint32_t)idx;
	return true;
}

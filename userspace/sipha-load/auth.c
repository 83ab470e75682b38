/* Digest credentials for sipha-load (--user or --register, --password):
 * an INVITE or REGISTER answered 401 or 407 is sent again, once, with
 * credentials for that challenge (RFC 3261 §22.2; RFC 7616 digest with
 * qop=auth, MD5 or SHA-256 by sip/digest.c).  Each call and each
 * REGISTER answers its own challenge with nonce-count 1, as sipp's
 * scenarios do. */
#include "sipha-load/load.h"

#include <errno.h>
#include <stdio.h>
#include <strings.h>

#include "sip/digest.h"

/* Copies the value of a "name=value" or name="value" pair at *PP (in
 * [*PP, E)) into OUT; advances past it and the comma after it. */
static int pair(const char **pp, const char *e, char *name, size_t nn, char *val, size_t vn)
{
	const char *p = *pp, *s;
	size_t k;

	while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
		p++;
	if (p >= e)
		return -ENOENT;
	s = p;
	while (p < e && *p != '=' && *p != ' ' && *p != ',')
		p++;
	k = (size_t)(p - s);
	if (k == 0 || k >= nn || p >= e || *p != '=')
		return -EINVAL;
	memcpy(name, s, k);
	name[k] = 0;
	p++;
	if (p < e && *p == '"') {
		s = ++p;
		while (p < e && *p != '"')
			p++;
		if (p >= e)
			return -EINVAL;
		k = (size_t)(p - s);
		p++;
	} else {
		s = p;
		while (p < e && *p != ',' && *p != ' ')
			p++;
		k = (size_t)(p - s);
	}
	if (k >= vn)
		return -EINVAL;
	memcpy(val, s, k);
	val[k] = 0;
	*pp = p;
	return 0;
}

int auth_challenge(struct load *ld, struct ld_auth *au, const char *v, size_t n)
{
	const char *p = v, *e = v + n;
	char name[32], val[256], realm[130] = "", nonce[LD_NONCE_MAX] = "", alg[32] = "";
	bool qop_auth = false;
	enum dg_alg a;
	int err;

	if (n < 7 || strncasecmp(p, "Digest", 6) || (p[6] != ' ' && p[6] != '\t'))
		return -EINVAL;
	p += 7;
	while ((err = pair(&p, e, name, sizeof(name), val, sizeof(val))) == 0) {
		if (!strcasecmp(name, "realm") && strlen(val) < sizeof(realm))
			strcpy(realm, val);
		else if (!strcasecmp(name, "nonce") && strlen(val) < sizeof(nonce))
			strcpy(nonce, val);
		else if (!strcasecmp(name, "algorithm") && strlen(val) < sizeof(alg))
			strcpy(alg, val);
		else if (!strcasecmp(name, "qop"))
			qop_auth = strstr(val, "auth") != NULL;
	}
	if (err != -ENOENT || !realm[0] || !nonce[0] || dg_alg_parse(alg[0] ? alg : NULL, &a))
		return -EINVAL;
	if (strcmp(realm, ld->realm)) {
		ld->ha1[0][0] = ld->ha1[1][0] = 0;
		snprintf(ld->realm, sizeof(ld->realm), "%s", realm);
	}
	memcpy(au->nonce, nonce, strlen(nonce) + 1);
	au->alg = (uint8_t)a;
	au->qop = qop_auth;
	return 0;
}

/* HA1 of USER for the realm in OUT; --user's is kept, the users of
 * --register are hashed each time (one hash more per challenge). */
static int ha1(struct load *ld, const char *user, enum dg_alg a, char out[65])
{
	char buf[512];
	int k;

	if (user == ld->o.user && ld->ha1[a][0]) {
		memcpy(out, ld->ha1[a], 65);
		return 0;
	}
	k = snprintf(buf, sizeof(buf), "%s:%s:%s", user, ld->realm, ld->o.password);
	if (k < 0 || (size_t)k >= sizeof(buf))
		return -EINVAL;
	dg_hash_hex(a, buf, (size_t)k, out);
	if (user == ld->o.user)
		memcpy(ld->ha1[a], out, 65);
	return 0;
}

void auth_header(struct wb *w, struct load *ld, const struct ld_auth *au, const char *user,
		 const char *method, const struct ld_str *uri, const char *cnonce)
{
	char resp[65], h1[65];
	enum dg_alg a = (enum dg_alg)au->alg;

	if (ha1(ld, user, a, h1))
		return; /* a password too long for the buffer: the request goes bare */
	dg_response(a, h1, au->nonce, au->qop ? "00000001" : NULL, au->qop ? cnonce : NULL,
		    au->qop ? "auth" : NULL, method, uri->s, resp);
	if (au->proxy)
		wb_lit(w, "Proxy-Authorization: Digest username=\"");
	else
		wb_lit(w, "Authorization: Digest username=\"");
	wb_mem(w, user, strlen(user));
	wb_lit(w, "\", realm=\"");
	wb_mem(w, ld->realm, strlen(ld->realm));
	wb_lit(w, "\", nonce=\"");
	wb_mem(w, au->nonce, strlen(au->nonce));
	wb_lit(w, "\", uri=\"");
	wb_str(w, uri);
	wb_lit(w, "\", response=\"");
	wb_mem(w, resp, strlen(resp));
	wb_lit(w, "\", algorithm=");
	if (a == DG_SHA256)
		wb_lit(w, "SHA-256");
	else
		wb_lit(w, "MD5");
	if (au->qop) {
		wb_lit(w, ", cnonce=\"");
		wb_mem(w, cnonce, strlen(cnonce));
		wb_lit(w, "\", qop=auth, nc=00000001");
	}
	wb_lit(w, "\r\n");
}

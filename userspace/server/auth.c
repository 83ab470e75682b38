#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cc/cc.h"
#include "core/log.h"
#include "server/auth.h"
#include "server/server.h"
#include "sip/digest.h"
#include "xdp/xdp.h"

#define BAN_SLOTS 4096 /* sources tracked at once (power of two) */
#define BAN_PROBE 16 /* slots looked at for one source */
#define NC_TABLE 65536 /* nonces whose nonce-count is remembered */

struct ban {
	struct auth *a;
	struct sockaddr_storage ip; /* port 0 */
	bool used, banned;
	unsigned fails;
	uint64_t last_ms;
	struct timer t; /* the end of the ban */
};

struct auth {
	struct server *srv;
	struct dg_users *users;
	uint8_t secret[32]; /* for nonces */
	uint8_t hkey[crypto_shorthash_KEYBYTES]; /* for the table of sources */
	struct dg_nc_table *nc;
	struct ban *bans;
	unsigned nbanned;
	struct auth_stats st;
};

static const char *ip_str(const struct sockaddr_storage *ss, char *buf, size_t n)
{
	const void *a = ss->ss_family == AF_INET
				? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
				: (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;

	return inet_ntop(ss->ss_family, a, buf, (socklen_t)n) ? buf : "?";
}

static bool same_ip(const struct sockaddr_storage *x, const struct sockaddr_storage *y)
{
	const uint8_t *a, *b;
	size_t n = sipt_ip_bytes(x, &a);

	return x->ss_family == y->ss_family && sipt_ip_bytes(y, &b) == n && !memcmp(a, b, n);
}

/* The slot of source IP: its own, or a free one, or the stalest unbanned
 * one of its probe window (keyed SipHash: a sender cannot aim at a slot). */
static struct ban *slot(struct auth *a, const struct sockaddr_storage *ip, bool create)
{
	const uint8_t *b;
	size_t n = sipt_ip_bytes(ip, &b);
	uint64_t h;
	struct ban *victim = NULL;

	crypto_shorthash((unsigned char *)&h, b, n, a->hkey);
	for (unsigned i = 0; i < BAN_PROBE; i++) {
		struct ban *s = &a->bans[(h + i) & (BAN_SLOTS - 1)];

		if (s->used && same_ip(&s->ip, ip))
			return s;
		if (!s->used) {
			if (!victim || victim->used)
				victim = s;
		} else if (!s->banned &&
			   (!victim || (victim->used && s->last_ms < victim->last_ms))) {
			victim = s;
		}
	}
	if (!create || !victim)
		return NULL;
	memset(&victim->ip, 0, sizeof(victim->ip));
	victim->ip.ss_family = ip->ss_family;
	memcpy(victim->ip.ss_family == AF_INET
		       ? (void *)&((struct sockaddr_in *)&victim->ip)->sin_addr
		       : (void *)&((struct sockaddr_in6 *)&victim->ip)->sin6_addr,
	       b, n);
	victim->used = true;
	victim->fails = 0;
	return victim;
}

static void xdp_ban(struct auth *a, const struct ban *b, bool add)
{
	char ip[64], pfx[72];

	if (!a->srv->xdp)
		return;
	snprintf(pfx, sizeof(pfx), "%s/%d", ip_str(&b->ip, ip, sizeof(ip)),
		 b->ip.ss_family == AF_INET ? 32 : 128);
	if (sxdp_block(a->srv->xdp, pfx, add))
		pr_warn("auth: cannot %s %s in the XDP blocklist", add ? "add" : "remove", pfx);
}

static void unban(struct timer *t)
{
	struct ban *b = container_of(t, struct ban, t);
	char ip[64];

	b->banned = false;
	b->fails = 0;
	b->a->nbanned--;
	xdp_ban(b->a, b, false);
	pr_info("auth: %s unblocked", ip_str(&b->ip, ip, sizeof(ip)));
}

/* One more failed authentication from IP; past ban_after it is blocked. */
static void failed(struct auth *a, const struct sockaddr_storage *ip)
{
	const struct sipha_config *cfg = a->srv->cfg;
	uint64_t now = a->srv->tw->now;
	struct ban *b;
	char s[64];

	a->st.failures++;
	if (!cfg->auth.ban_after || !(b = slot(a, ip, true)) || b->banned)
		return;
	if (b->fails && now - b->last_ms > cfg->auth.ban_ms)
		b->fails = 0; /* an old failure is forgiven */
	b->fails++;
	b->last_ms = now;
	if (b->fails < cfg->auth.ban_after)
		return;
	b->banned = true;
	b->a = a;
	a->nbanned++;
	a->st.bans++;
	timer_init(&b->t, unban);
	timer_add(a->srv->tw, &b->t, now + cfg->auth.ban_ms);
	xdp_ban(a, b, true);
	pr_warn("auth: %s blocked for %u ms after %u failed authentications",
		ip_str(ip, s, sizeof(s)), cfg->auth.ban_ms, b->fails);
}

bool auth_source_ok(struct auth *a, const struct sip_peer *from)
{
	struct ban *b;

	if (!a || (from->addr.ss_family != AF_INET && from->addr.ss_family != AF_INET6))
		return true;
	b = slot(a, &from->addr, false);
	if (!b || !b->banned)
		return true;
	a->st.banned_dropped++;
	return false;
}

static bool trusted(const struct auth *a, const struct sockaddr_storage *ip)
{
	const struct cfg_prefix_list *pl = &a->srv->cfg->auth.trusted;
	const uint8_t *b;
	size_t n = sipt_ip_bytes(ip, &b);

	for (unsigned i = 0; i < pl->n; i++) {
		const struct cfg_prefix *p = &pl->v[i];
		const uint8_t *pb = p->family == AF_INET ? (const uint8_t *)&p->addr.v4
							 : (const uint8_t *)&p->addr.v6;
		unsigned bits = p->prefixlen, full = bits / 8;

		if ((p->family == AF_INET) != (n == 4))
			continue;
		if (memcmp(pb, b, full))
			continue;
		if (bits % 8 && ((pb[full] ^ b[full]) & (0xff00 >> (bits % 8)) & 0xff))
			continue;
		return true;
	}
	return false;
}

/* --- answers ---------------------------------------------------------------------- */

static void reply(struct auth *a, struct txn *st, int code, const char *reason, bool proxy,
		  bool stale)
{
	struct server *srv = a->srv;
	osip_message_t *r = NULL;
	char tag[32], nonce[80], ch[512];

	srv_new_tag(srv, tag, sizeof(tag));
	if (sipmsg_response(st->req, code, reason, tag, &r))
		return;
	if (code == 401 || code == 407) {
		/* In [auth] algorithms' order (SHA-256, then MD5 for older phones:
		 * RFC 8760 §2.4), one nonce. */
		dg_nonce_make(a->secret, (uint64_t)time(NULL), nonce, sizeof(nonce));
		for (unsigned i = 0; i < srv->cfg->auth.algorithms.n; i++) {
			dg_challenge(ch, sizeof(ch), srv->cfg->auth.realm, nonce,
				     (enum dg_alg)srv->cfg->auth.algorithms.v[i], stale);
			osip_message_set_header(
				r, proxy ? "Proxy-Authenticate" : "WWW-Authenticate", ch);
		}
		a->st.challenges++;
	}
	osip_message_set_header(r, "Server", "sipha");
	if (txn_respond(st, r))
		srv->st.sip_tx_errors++;
	else
		srv->st.sip_tx_responses++;
	osip_message_free(r);
}

/* A quoted-string's content ("a" -> a), in OUT (N bytes); "" when absent. */
static void unq(const char *s, char *out, size_t n)
{
	size_t len;

	out[0] = '\0';
	if (!s)
		return;
	len = strlen(s);
	if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
		s++;
		len -= 2;
	}
	if (len >= n)
		len = n - 1;
	memcpy(out, s, len);
	out[len] = '\0';
}

/* The credentials for our realm among LIST (osip_authorization_t). */
static osip_authorization_t *ours(struct auth *a, const osip_list_t *list)
{
	char realm[160];

	for (int i = 0; i < osip_list_size(list); i++) {
		osip_authorization_t *c = osip_list_get(list, i);

		unq(c ? c->realm : NULL, realm, sizeof(realm));
		if (c && !strcmp(realm, a->srv->cfg->auth.realm))
			return c;
	}
	return NULL;
}

/* The user the request speaks for: the AoR of a REGISTER, the caller of an
 * INVITE. */
static const char *claimed(const osip_message_t *req, bool reg)
{
	const osip_from_t *h = reg ? req->to : req->from;

	return h && h->url ? h->url->username : NULL;
}

/* Checks credentials C of REQ.  1 ok, 0 failed, -ESTALE a stale nonce. */
static int verify(struct auth *a, const osip_message_t *req, const osip_authorization_t *c,
		  bool reg)
{
	char user[130], nonce[130], uri[1024], resp[130], alg_s[32], cnonce[130], nc[32], qop[32],
		ha1[65], want[65];
	const char *who = claimed(req, reg);
	enum dg_alg alg;
	bool known;
	int ret;

	unq(c->username, user, sizeof(user));
	unq(c->nonce, nonce, sizeof(nonce));
	unq(c->uri, uri, sizeof(uri));
	unq(c->response, resp, sizeof(resp));
	unq(c->algorithm, alg_s, sizeof(alg_s));
	unq(c->cnonce, cnonce, sizeof(cnonce));
	unq(c->nonce_count, nc, sizeof(nc));
	unq(c->message_qop, qop, sizeof(qop));
	if (dg_alg_parse(alg_s[0] ? alg_s : NULL, &alg))
		return 0;
	ret = dg_nonce_check(a->secret, nonce, (uint64_t)time(NULL),
			     a->srv->cfg->auth.nonce_lifetime_s);
	if (ret == -ESTALE)
		return -ESTALE;
	if (ret)
		return 0;
	/* The same work for a user that does not exist: no timing tells. */
	known = dg_ha1(a->users, user, a->srv->cfg->auth.realm, alg, ha1);
	if (!known) {
		size_t n = alg == DG_SHA256 ? 64 : 32;

		memset(ha1, '0', n);
		ha1[n] = '\0';
	}
	dg_response(alg, ha1, nonce, qop[0] ? nc : NULL, qop[0] ? cnonce : NULL,
		    qop[0] ? qop : NULL, req->sip_method, uri, want);
	if (!dg_response_ok(want, resp) || !known)
		return 0;
	/* A phone authenticates for its own extension only. */
	if (!who || strcmp(who, user))
		return 0;
	/* We offer qop=auth: its nonce-count must grow.  One that does not is
	 * a replay (or a nonce this node no longer remembers): the credentials
	 * were right, so a fresh challenge, not a failure (a replayer learns
	 * nothing from it). */
	if (strcmp(qop, "auth"))
		return 0;
	if (!dg_nc_accept(a->nc, nonce, nc))
		return -ESTALE;
	return 1;
}

bool auth_request(struct auth *a, struct txn *st, osip_message_t *req)
{
	enum sip_method m = sipmsg_method_id(req->sip_method);
	bool reg = m == SIP_REGISTER;
	osip_authorization_t *c;
	char ip[64];
	int ret;

	if (!a || (m != SIP_REGISTER && m != SIP_INVITE))
		return true;
	/* Every initial INVITE is challenged, whoever its From names: asking
	 * only extensions told a scanner which ones exist (407 for them, a
	 * route or 404 for the rest).  Trunks and gateways are listed in
	 * [auth] trusted. */
	if (trusted(a, &st->peer.addr)) {
		a->st.trusted++;
		return true;
	}
	if (!auth_source_ok(a, &st->peer))
		return false; /* blocked meanwhile: no answer at all */
	c = ours(a, reg ? &req->authorizations : &req->proxy_authorizations);
	if (!c && !reg)
		c = ours(a, &req->authorizations);
	if (!c) {
		reply(a, st, reg ? 401 : 407,
		      reg ? "Unauthorized" : "Proxy Authentication Required", !reg, false);
		return false;
	}
	ret = verify(a, req, c, reg);
	if (ret == 1) {
		a->st.ok++;
		return true;
	}
	if (ret == -ESTALE) {
		a->st.stale++;
		reply(a, st, reg ? 401 : 407,
		      reg ? "Unauthorized" : "Proxy Authentication Required", !reg, true);
		return false;
	}
	pr_debug("auth: %s from %s refused", req->sip_method,
		 ip_str(&st->peer.addr, ip, sizeof(ip)));
	failed(a, &st->peer.addr);
	reply(a, st, 403, "Forbidden", false, false);
	return false;
}

int auth_new(struct auth **out, struct server *srv)
{
	const struct sipha_config *cfg = srv->cfg;
	struct auth *a;
	char err[512];
	int ret;

	*out = NULL;
	if (sodium_init() < 0)
		return -EIO;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->srv = srv;
	a->bans = calloc(BAN_SLOTS, sizeof(*a->bans));
	ret = a->bans ? dg_nc_new(&a->nc, NC_TABLE) : -ENOMEM;
	if (!ret)
		ret = dg_users_load(cfg->auth.users, &a->users, err, sizeof(err));
	if (ret) {
		if (a->bans && a->nc)
			pr_err("auth: %s", err);
		auth_free(a);
		return ret;
	}
	/* Both nodes of a pair derive the same nonce key from the HA key, so a
	 * nonce survives a failover; without one it is this process's own. */
	if (cfg->ha.has_key)
		crypto_auth_hmacsha256(a->secret, (const uint8_t *)"sipha-sip-nonce-v1", 18,
				       cfg->ha.key);
	else
		randombytes_buf(a->secret, sizeof(a->secret));
	randombytes_buf(a->hkey, sizeof(a->hkey));
	pr_info("auth: %zu users in realm %s; REGISTER and initial INVITEs from untrusted sources "
		"challenged",
		dg_users_count(a->users), cfg->auth.realm);
	*out = a;
	return 0;
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	/* Bans end with the daemon: the blocklist map outlives it (pinned). */
	for (unsigned i = 0; a->bans && i < BAN_SLOTS; i++)
		if (a->bans[i].banned) {
			timer_del(a->srv->tw, &a->bans[i].t);
			xdp_ban(a, &a->bans[i], false);
		}
	dg_users_free(a->users);
	dg_nc_free(a->nc);
	free(a->bans);
	sodium_memzero(a->secret, sizeof(a->secret));
	free(a);
}

const struct auth_stats *auth_stats(const struct auth *a)
{
	return &a->st;
}

unsigned auth_banned_now(const struct auth *a)
{
	return a ? a->nbanned : 0;
}

/* SIP digest authentication through srv_rx() (sipnode.h): REGISTER and
 * INVITEs from extensions challenged (SHA-256 and MD5 offered), right,
 * wrong, unknown-user, stale, replayed and foreign-user credentials, the
 * same answers for users that exist and users that do not, trusted sources
 * and trunks not challenged, and a source blocked after ban_after failures
 * (all its messages dropped) until ban_ms is over. */
#include <errno.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/auth.h"
#include "sip/digest.h"
#include "sipnode.h"

#define REALM "sipha.test"

struct fx {
	struct sipnode n;
	char dir[32], users[64], key[64];
	char conf[1400];
	struct sip_peer phone;
	int cseq;
	char nonce[128];
};

/* HA: with an [ha] section and the pair's key_file. */
static int setup_with(void **state, bool ha)
{
	struct fx *f = calloc(1, sizeof(*f));
	char *conf, hasec[256] = "";
	FILE *u;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/sipha-authXXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->users, sizeof(f->users), "%s/users", f->dir);
	u = fopen(f->users, "w");
	assert_non_null(u);
	fputs("# extensions\n1001:secret-1001\n1002:secret-1002\n", u);
	fclose(u);
	assert_int_equal(chmod(f->users, 0600), 0);
	if (ha) {
		snprintf(f->key, sizeof(f->key), "%s/ha.key", f->dir);
		u = fopen(f->key, "w");
		assert_non_null(u);
		fputs("the pair's shared key, 32 bytes and more", u);
		fclose(u);
		assert_int_equal(chmod(f->key, 0600), 0);
		snprintf(hasec, sizeof(hasec),
			 "[ha]\nlisten = 127.0.0.1:7100\npeer = 127.0.0.2:7100\nkey_file = %s\n",
			 f->key);
	}
	conf = f->conf;
	snprintf(conf, sizeof(f->conf),
		 "[node]\nid = t\n[sip]\nlisten = 127.0.0.1:5060\ndomain = " REALM "\n"
		 "[control]\nsocket = /tmp/sipha-test-auth.sock\n"
		 "[auth]\nrealm = " REALM "\nusers = %s\nban_after = 5\nban_ms = 10000\n"
		 "trusted = 10.0.0.200, 10.9.0.0/16\n%s"
		 "[dn]\n1001 = extension\n1002 = extension\n3000 = sip:10.0.0.50:5080\n",
		 f->users, hasec);
	sipnode_init(&f->n, conf);
	f->phone = udp_peer("10.0.0.20", 5090);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, false);
}

static int setup_ha(void **state)
{
	return setup_with(state, true);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	sipnode_fini(&f->n);
	if (f->key[0])
		unlink(f->key);
	unlink(f->users);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* The phone's REGISTER for USER, with AUTH (an Authorization value) or
 * none, to node N. */
static void reg_on(struct fx *f, struct sipnode *n, const struct sip_peer *from, const char *user,
		   const char *auth)
{
	f->cseq++;
	inject(n, from,
	       "REGISTER sip:" REALM " SIP/2.0\r\n"
	       "Via: SIP/2.0/UDP 10.0.0.20:5090;branch=z9hG4bKr%d\r\nMax-Forwards: 70\r\n"
	       "From: <sip:%s@" REALM ">;tag=r%d\r\nTo: <sip:%s@" REALM ">\r\n"
	       "Call-ID: reg-%s@10.0.0.20\r\nCSeq: %d REGISTER\r\n"
	       "Contact: <sip:%s@10.0.0.20:5090>\r\nExpires: 600\r\n%s%s%s"
	       "Content-Length: 0\r\n\r\n",
	       f->cseq, user, f->cseq, user, user, f->cseq, user, auth ? "Authorization: " : "",
	       auth ? auth : "", auth ? "\r\n" : "");
}

static void reg(struct fx *f, const struct sip_peer *from, const char *user, const char *auth)
{
	reg_on(f, &f->n, from, user, auth);
}

/* The I-th (0-based) line of header NAME in the raw text of what was taken
 * last, into OUT; false when there is none. */
static bool raw_header(struct fx *f, const char *name, int i, char *out, size_t n)
{
	const char *p = last_sent(&f->n);
	size_t len = strlen(name);

	while ((p = strstr(p, "\r\n"))) {
		p += 2;
		if (!strncasecmp(p, name, len) && p[len] == ':' && i-- == 0) {
			p += len + 1;
			p += strspn(p, " ");
			snprintf(out, n, "%.*s", (int)strcspn(p, "\r"), p);
			return true;
		}
	}
	return false;
}

/* The 401's challenges: SHA-256 then MD5, one nonce; it is kept. */
static void expect_challenge(struct fx *f, int code, bool stale)
{
	const char *hname = code == 401 ? "WWW-Authenticate" : "Proxy-Authenticate";
	char what[32], h[512];
	const char *p;

	snprintf(what, sizeof(what), "%d %s", code, code == 401 ? "REGISTER" : "INVITE");
	osip_message_free(expect_msg(&f->n, what, NULL));
	assert_true(raw_header(f, hname, 0, h, sizeof(h)));
	assert_non_null(strstr(h, "algorithm=SHA-256"));
	assert_non_null(strstr(h, "realm=\"" REALM "\""));
	assert_non_null(strstr(h, "qop=\"auth\""));
	assert_true(!stale == !strstr(h, "stale=true"));
	p = strstr(h, "nonce=\"");
	assert_non_null(p);
	snprintf(f->nonce, sizeof(f->nonce), "%s", p + 7);
	f->nonce[strcspn(f->nonce, "\"")] = '\0';
	assert_true(raw_header(f, hname, 1, h, sizeof(h)));
	assert_non_null(strstr(h, "algorithm=MD5"));
	assert_non_null(strstr(h, f->nonce));
}

/* An Authorization value for USER with PASSWORD, computed as a phone does. */
static void creds(char *out, size_t n, enum dg_alg alg, const char *user, const char *pass,
		  const char *nonce, const char *nc, const char *method, const char *uri)
{
	char a1[256], ha1[65], resp[65];

	snprintf(a1, sizeof(a1), "%s:" REALM ":%s", user, pass);
	dg_hash_hex(alg, a1, strlen(a1), ha1);
	dg_response(alg, ha1, nonce, nc, "c0ffee", "auth", method, uri, resp);
	snprintf(out, n,
		 "Digest username=\"%s\", realm=\"" REALM "\", nonce=\"%s\", uri=\"%s\", "
		 "response=\"%s\", algorithm=%s, cnonce=\"c0ffee\", nc=%s, qop=auth",
		 user, nonce, uri, resp, dg_alg_name(alg), nc);
}

static const struct auth_stats *st(struct fx *f)
{
	return auth_stats(f->n.srv.auth);
}

static void test_register_sha256_and_md5(void **state)
{
	struct fx *f = *state;
	char a[1024];

	reg(f, &f->phone, "1001", NULL);
	expect_challenge(f, 401, false);
	assert_int_equal(reg_binding_count(f->n.srv.reg), 0);
	creds(a, sizeof(a), DG_SHA256, "1001", "secret-1001", f->nonce, "00000001", "REGISTER",
	      "sip:" REALM);
	reg(f, &f->phone, "1001", a);
	osip_message_free(expect_msg(&f->n, "200 REGISTER", NULL));
	assert_int_equal(reg_binding_count(f->n.srv.reg), 1);
	/* MD5 for the other phone, with a challenge of its own. */
	reg(f, &f->phone, "1002", NULL);
	expect_challenge(f, 401, false);
	creds(a, sizeof(a), DG_MD5, "1002", "secret-1002", f->nonce, "00000001", "REGISTER",
	      "sip:" REALM);
	reg(f, &f->phone, "1002", a);
	osip_message_free(expect_msg(&f->n, "200 REGISTER", NULL));
	assert_int_equal(reg_binding_count(f->n.srv.reg), 2);
	assert_int_equal(st(f)->ok, 2);
	assert_int_equal(st(f)->failures, 0);
}

/* Wrong password, unknown user, another user's credentials, a forged
 * nonce: all 403, and nothing registered; a replayed nonce-count: a fresh
 * challenge.  An unknown
 * user gets exactly the challenge a known one gets. */
static void test_refusals_tell_nothing(void **state)
{
	struct fx *f = *state;
	char a[1024], known[512], unknown[512];

	reg(f, &f->phone, "1001", NULL);
	osip_message_free(expect_msg(&f->n, "401 REGISTER", NULL));
	assert_true(raw_header(f, "WWW-Authenticate", 0, known, sizeof(known)));
	*strstr(known, "nonce=") = '\0';
	reg(f, &f->phone, "9999", NULL);
	osip_message_free(expect_msg(&f->n, "401 REGISTER", NULL));
	assert_true(raw_header(f, "WWW-Authenticate", 0, unknown, sizeof(unknown)));
	*strstr(unknown, "nonce=") = '\0';
	assert_string_equal(known, unknown); /* the same challenge, nonce aside */

	reg(f, &f->phone, "1001", NULL);
	expect_challenge(f, 401, false);
	creds(a, sizeof(a), DG_SHA256, "1001", "wrong", f->nonce, "00000001", "REGISTER",
	      "sip:" REALM);
	reg(f, &f->phone, "1001", a);
	osip_message_free(expect_msg(&f->n, "403 REGISTER", NULL));
	creds(a, sizeof(a), DG_SHA256, "9999", "anything", f->nonce, "00000001", "REGISTER",
	      "sip:" REALM);
	reg(f, &f->phone, "9999", a);
	osip_message_free(expect_msg(&f->n, "403 REGISTER", NULL));
	/* 1002's right password, registering 1001. */
	creds(a, sizeof(a), DG_SHA256, "1002", "secret-1002", f->nonce, "00000001", "REGISTER",
	      "sip:" REALM);
	reg(f, &f->phone, "1001", a);
	osip_message_free(expect_msg(&f->n, "403 REGISTER", NULL));
	/* Right, then the same nonce-count again (a replay). */
	creds(a, sizeof(a), DG_SHA256, "1001", "secret-1001", f->nonce, "00000002", "REGISTER",
	      "sip:" REALM);
	reg(f, &f->phone, "1001", a);
	osip_message_free(expect_msg(&f->n, "200 REGISTER", NULL));
	reg(f, &f->phone, "1001", a); /* a replay gets a fresh challenge, nothing more */
	expect_challenge(f, 401, true);
	assert_int_equal(st(f)->stale, 1);
	/* A nonce we never issued. */
	creds(a, sizeof(a), DG_SHA256, "1001", "secret-1001",
	      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "00000001", "REGISTER",
	      "sip:" REALM);
	reg(f, &f->phone, "1001", a);
	osip_message_free(expect_msg(&f->n, "403 REGISTER", NULL));
	assert_int_equal(st(f)->failures, 4);
	assert_int_equal(st(f)->ok, 1);
	assert_int_equal(reg_binding_count(f->n.srv.reg), 1);
}

/* An INVITE from an extension is challenged (407), and goes on with the
 * right Proxy-Authorization; so is one naming no extension (a scanner must
 * not tell them apart); one from a trusted source is not. */
static void test_invite(void **state)
{
	struct fx *f = *state;
	struct sip_peer caller = udp_peer("10.0.0.1", 5061);
	struct sip_peer trusted = udp_peer("10.9.3.4", 5061);
	char a[1024], body[] = SDP_A;

#define INVITE(from_user, branch, extra)                                                     \
	"INVITE sip:3000@" REALM                                                             \
	" SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bK" branch                   \
	"\r\nMax-Forwards: 70\r\nFrom: <sip:" from_user "@" REALM ">;tag=f" branch           \
	"\r\nTo: <sip:3000@" REALM ">\r\nCall-ID: " branch "@10.0.0.1\r\nCSeq: 1 INVITE\r\n" \
	"Contact: <sip:" from_user "@10.0.0.1:5061>\r\n" extra                               \
	"Content-Type: application/sdp\r\nContent-Length: %zu\r\n\r\n%s"

	inject(&f->n, &caller, INVITE("1001", "i1", ""), strlen(body), body);
	expect_challenge(f, 407, false);
	assert_int_equal(calls_count(f->n.srv.calls), 0);
	creds(a, sizeof(a), DG_SHA256, "1001", "secret-1001", f->nonce, "00000001", "INVITE",
	      "sip:3000@" REALM);
	inject(&f->n, &caller, INVITE("1001", "i2", "Proxy-Authorization: %s\r\n"), a, strlen(body),
	       body);
	osip_message_free(expect_msg(&f->n, "100 INVITE", NULL));
	osip_message_free(expect_msg(&f->n, "INVITE", NULL)); /* to the callee */
	assert_int_equal(calls_count(f->n.srv.calls), 1);
	/* No extension of ours in From: the same challenge, nothing routed. */
	inject(&f->n, &caller, INVITE("carrier", "i3", ""), strlen(body), body);
	expect_challenge(f, 407, false);
	assert_int_equal(calls_count(f->n.srv.calls), 1);
	/* From a trusted prefix, as an extension: not challenged either. */
	inject(&f->n, &trusted, INVITE("1002", "i4", ""), strlen(body), body);
	osip_message_free(expect_msg(&f->n, "100 INVITE", NULL));
	osip_message_free(expect_msg(&f->n, "INVITE", NULL));
	assert_int_equal(st(f)->trusted, 1);
#undef INVITE
}

/* ban_after (5) failures from one source: it is blocked, everything it
 * sends is dropped unanswered, others are served; ban_ms later it is back. */
static void test_ban(void **state)
{
	struct fx *f = *state;
	struct sip_peer other = udp_peer("10.0.0.21", 5090);
	char a[1024];

	reg(f, &f->phone, "1001", NULL);
	expect_challenge(f, 401, false);
	for (int i = 0; i < 5; i++) {
		char nc[16];

		snprintf(nc, sizeof(nc), "%08x", i + 1);
		creds(a, sizeof(a), DG_MD5, "1001", "guess", f->nonce, nc, "REGISTER",
		      "sip:" REALM);
		reg(f, &f->phone, "1001", a);
		osip_message_free(expect_msg(&f->n, "403 REGISTER", NULL));
	}
	assert_int_equal(st(f)->bans, 1);
	assert_int_equal(auth_banned_now(f->n.srv.auth), 1);
	/* Blocked: even an OPTIONS gets nothing. */
	inject(&f->n, &f->phone,
	       "OPTIONS sip:" REALM
	       " SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.20:5090;branch=z9hG4bKo1\r\n"
	       "Max-Forwards: 70\r\nFrom: <sip:x@" REALM ">;tag=o\r\nTo: <sip:" REALM ">\r\n"
	       "Call-ID: o1@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n");
	expect_none(&f->n);
	assert_true(st(f)->banned_dropped >= 1);
	/* Another source is not. */
	reg(f, &other, "1002", NULL);
	expect_challenge(f, 401, false);
	/* After ban_ms, the phone is heard again. */
	advance(&f->n, 10000);
	assert_int_equal(auth_banned_now(f->n.srv.auth), 0);
	reg(f, &f->phone, "1001", NULL);
	expect_challenge(f, 401, false);
}

/* A failover between challenge and answer: the nonce node A issued is
 * good on node B, which holds the pair's HA key too (nonces are HMACs under
 * it, no state to replicate); the same credentials on a node with another
 * key are refused. */
static void test_nonce_across_failover(void **state)
{
	struct fx *f = *state;
	struct sipnode b;
	char a[1024];
	FILE *k;

	reg(f, &f->phone, "1001", NULL);
	expect_challenge(f, 401, false);
	creds(a, sizeof(a), DG_SHA256, "1001", "secret-1001", f->nonce, "00000001", "REGISTER",
	      "sip:" REALM);

	sipnode_init(&b, f->conf); /* the backup, same key: it took over */
	reg_on(f, &b, &f->phone, "1001", a);
	osip_message_free(expect_msg(&b, "200 REGISTER", NULL));
	assert_int_equal(reg_binding_count(b.srv.reg), 1);
	sipnode_fini(&b);

	/* Another pair's key: the nonce is not one of its own. */
	k = fopen(f->key, "w");
	assert_non_null(k);
	fputs("another pair's key, quite different", k);
	fclose(k);
	sipnode_init(&b, f->conf);
	reg_on(f, &b, &f->phone, "1001", a);
	osip_message_free(expect_msg(&b, "403 REGISTER", NULL));
	assert_int_equal(reg_binding_count(b.srv.reg), 0);
	sipnode_fini(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_register_sha256_and_md5, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals_tell_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ban, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonce_across_failover, setup_ha, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

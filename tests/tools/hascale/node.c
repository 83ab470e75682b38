/* hascale — the fixture: a sipha server core whose send function only
 * counts (and keeps the last INVITE and the last message to the caller),
 * and the calls built on the active through srv_rx() as a caller and a
 * callee would: INVITE, 180, and for an established call 200 and ACK, each
 * step checked against what sipha sent. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "sip/transport.h"

#include "hascale.h"

#define HS_CALLER_PORT 5061
#define HS_CALLEE_PORT 5080

#define HS_CONF                                                                              \
	"[node]\nid = %s\n[sip]\nlisten = 127.0.0.1:5060\ndomain = sipha.test\n"             \
	"no_answer_ms = 60000\n%s[control]\nsocket = /tmp/sipha-hascale-%ld-%s.sock\n[dn]\n" \
	"3000 = sip:10.0.0.50:5080\n"

#define HS_SDP                                      \
	"v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\n" \
	"c=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
#define HS_SDP_B                                     \
	"v=0\r\no=b 2 2 IN IP4 10.0.0.50\r\ns=-\r\n" \
	"c=IN IP4 10.0.0.50\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n"

static unsigned peer_port(const struct sip_peer *p)
{
	return ntohs(((const struct sockaddr_in *)&p->addr)->sin_port);
}

static void keep_copy(char *dst, const char *buf, size_t len)
{
	if (len >= HS_MSG)
		len = HS_MSG - 1;
	memcpy(dst, buf, len);
	dst[len] = '\0';
}

static int hs_send(void *arg, const struct sip_peer *to, const char *buf, size_t len)
{
	struct hs_node *n = arg;
	bool invite = len > 7 && !memcmp(buf, "INVITE ", 7);

	n->msgs++;
	n->bytes += len;
	n->invites += invite;
	if (!n->keep)
		return 0;
	if (invite)
		keep_copy(n->inv, buf, len);
	if (peer_port(to) == HS_CALLER_PORT)
		keep_copy(n->to_caller, buf, len);
	return 0;
}

/* N's server core, with room for MAX_TXNS live transactions, or the
 * default limit for 0. */
int hs_node_init(struct hs_node *n, const char *id, bool keep, unsigned max_txns)
{
	char text[512], limit[64] = "", err[256];
	int ret;

	memset(n, 0, sizeof(*n));
	if (max_txns)
		snprintf(limit, sizeof(limit), "max_transactions = %u\n", max_txns);
	snprintf(text, sizeof(text), HS_CONF, id, limit, (long)getpid(), id);
	ret = cfg_load_string(text, "hascale.conf", &n->cfg, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "hascale: configuration: %s\n", err);
		return ret;
	}
	timer_wheel_init(&n->tw, 1000);
	ret = srv_core_init(&n->srv, &n->cfg, &n->tw, hs_send, n);
	if (ret) {
		fprintf(stderr, "hascale: srv_core_init: %s\n", strerror(-ret));
		cfg_free(&n->cfg);
		return ret;
	}
	n->keep = keep;
	n->up = true;
	return 0;
}

void hs_node_fini(struct hs_node *n)
{
	if (!n->up)
		return;
	srv_core_fini(&n->srv);
	cfg_free(&n->cfg);
	n->up = false;
}

static struct sip_peer udp_peer(const char *ip, unsigned port)
{
	struct sip_peer p;

	sipt_peer_set(&p, SIP_PROTO_UDP, ip, port); /* literals: cannot fail */
	return p;
}

static __attribute__((format(printf, 3, 4))) int
inject(struct hs_node *n, const struct sip_peer *from, const char *fmt, ...)
{
	char buf[HS_MSG];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (len <= 0 || len >= (int)sizeof(buf))
		return -EMSGSIZE;
	srv_rx(&n->srv, from, buf, (size_t)len);
	return 0;
}

/* The header line NAME ("Via") of MSG, without its CRLF, into OUT. */
static int header_line(const char *msg, const char *name, char *out, size_t size)
{
	size_t nlen = strlen(name), len;
	const char *p = msg, *end;

	while ((p = strstr(p, "\r\n"))) {
		p += 2;
		if (!strncmp(p, name, nlen) && p[nlen] == ':')
			break;
	}
	if (!p || !(end = strstr(p, "\r\n")))
		return -ENOENT;
	len = (size_t)(end - p);
	if (len >= size)
		return -ENAMETOOLONG;
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

/* The tag sipha gave the caller's dialog: the To tag of MSG. */
static int to_tag(const char *msg, char *out, size_t size)
{
	char line[1024];
	const char *t;
	size_t len;
	int ret = header_line(msg, "To", line, sizeof(line));

	if (ret)
		return ret;
	t = strstr(line, ";tag=");
	if (!t)
		return -ENOENT;
	t += 5;
	len = strcspn(t, ";> ");
	if (!len || len >= size)
		return -EBADMSG;
	memcpy(out, t, len);
	out[len] = '\0';
	return 0;
}

/* What the callee needs from sipha's INVITE to answer it. */
struct hs_uas {
	char via[1024], from[1024], to[1024], call_id[512];
};

/* N's message count must have grown by WANT since BEFORE, and its last
 * message to the caller must start with START when START is set. */
static int expect_sent(const struct hs_node *n, uint64_t before, unsigned want, const char *start,
		       unsigned i, const char *step)
{
	if (n->msgs - before != want) {
		fprintf(stderr, "hascale: call %u, %s: %" PRIu64 " messages sent, expected %u\n", i,
			step, n->msgs - before, want);
		return -EPROTO;
	}
	if (start && strncmp(n->to_caller, start, strlen(start))) {
		fprintf(stderr, "hascale: call %u, %s: the caller got:\n%.300s\n", i, step,
			n->to_caller);
		return -EPROTO;
	}
	return 0;
}

static int callee_answer(struct hs_node *n, const struct sip_peer *callee, const struct hs_uas *u,
			 unsigned i, int code, const char *reason, const char *sdp)
{
	return inject(n, callee,
		      "SIP/2.0 %d %s\r\n%s\r\n%s\r\n%s;tag=b%u\r\n%s\r\nCSeq: 1 INVITE\r\n"
		      "Contact: <sip:bob@10.0.0.50:5080>\r\n%sContent-Length: %zu\r\n\r\n%s",
		      code, reason, u->via, u->from, u->to, i, u->call_id,
		      sdp ? "Content-Type: application/sdp\r\n" : "", sdp ? strlen(sdp) : 0,
		      sdp ? sdp : "");
}

/* Call I on the active: the caller's INVITE, the callee's 180, and for an
 * established call the callee's 200 and the caller's ACK. */
int hs_build_call(struct hs_node *act, unsigned i, bool established)
{
	const struct sip_peer caller = udp_peer("10.0.0.1", HS_CALLER_PORT);
	const struct sip_peer callee = udp_peer("10.0.0.50", HS_CALLEE_PORT);
	size_t ncalls = calls_count(act->srv.calls);
	uint64_t before = act->msgs, invites = act->invites;
	struct hs_uas u;
	char ttag[128];
	int ret;

	ret = inject(act, &caller,
		     "INVITE sip:3000@sipha.test SIP/2.0\r\n"
		     "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKa%u\r\nMax-Forwards: 70\r\n"
		     "From: \"Alice\" <sip:alice@sipha.test>;tag=f%u\r\n"
		     "To: <sip:3000@sipha.test>\r\nCall-ID: c%u@10.0.0.1\r\nCSeq: 1 INVITE\r\n"
		     "Contact: <sip:alice@10.0.0.1:5061>\r\nContent-Type: application/sdp\r\n"
		     "Content-Length: %zu\r\n\r\n%s",
		     i, i, i, strlen(HS_SDP), HS_SDP);
	if (!ret)
		ret = expect_sent(act, before, 2, "SIP/2.0 100 ", i, "INVITE");
	if (ret)
		return ret;
	if (act->invites != invites + 1 || calls_count(act->srv.calls) != ncalls + 1) {
		fprintf(stderr, "hascale: call %u: no call or no INVITE to the callee\n", i);
		return -EPROTO;
	}
	if (header_line(act->inv, "Via", u.via, sizeof(u.via)) ||
	    header_line(act->inv, "From", u.from, sizeof(u.from)) ||
	    header_line(act->inv, "To", u.to, sizeof(u.to)) ||
	    header_line(act->inv, "Call-ID", u.call_id, sizeof(u.call_id))) {
		fprintf(stderr, "hascale: call %u: cannot read sipha's INVITE:\n%.500s\n", i,
			act->inv);
		return -EPROTO;
	}
	before = act->msgs;
	ret = callee_answer(act, &callee, &u, i, 180, "Ringing", NULL);
	if (!ret)
		ret = expect_sent(act, before, 1, "SIP/2.0 180 ", i, "180");
	if (ret || !established)
		return ret;
	before = act->msgs;
	ret = callee_answer(act, &callee, &u, i, 200, "OK", HS_SDP_B);
	if (!ret)
		ret = expect_sent(act, before, 2, "SIP/2.0 200 ", i, "200");
	if (ret)
		return ret;
	if (to_tag(act->to_caller, ttag, sizeof(ttag))) {
		fprintf(stderr, "hascale: call %u: no To tag in the 200\n", i);
		return -EPROTO;
	}
	before = act->msgs;
	ret = inject(act, &caller,
		     "ACK sip:sipha@127.0.0.1:5060 SIP/2.0\r\n"
		     "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKack%u\r\nMax-Forwards: 70\r\n"
		     "From: \"Alice\" <sip:alice@sipha.test>;tag=f%u\r\n"
		     "To: <sip:3000@sipha.test>;tag=%s\r\nCall-ID: c%u@10.0.0.1\r\n"
		     "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
		     i, i, ttag, i);
	return ret ? ret : expect_sent(act, before, 0, NULL, i, "ACK");
}

struct hs_count {
	size_t est, ring, other;
};

static void count_call(void *arg, const struct call *c)
{
	struct hs_count *k = arg;

	if (c->state == CALL_ESTABLISHED)
		k->est++;
	else if (c->state == CALL_RINGING)
		k->ring++;
	else
		k->other++;
}

int hs_check_states(const struct hs_node *n, size_t est, size_t ring, const char *who)
{
	struct hs_count k = { 0 };

	calls_foreach(n->srv.calls, count_call, &k);
	if (k.est != est || k.ring != ring || k.other) {
		fprintf(stderr,
			"hascale: %s: %zu established, %zu ringing, %zu other; expected %zu and "
			"%zu\n",
			who, k.est, k.ring, k.other, est, ring);
		return -EPROTO;
	}
	return 0;
}

/* One sipha server in a unit test: its configuration, a fake timer wheel, and
 * a send function that keeps every message sent, so a test can drive it
 * through srv_rx() and read what came out in order; and the two parties of a
 * call around it, as they write their messages.  Used by test_call.c and
 * test_takeover.c; each test binary is one translation unit, hence a header
 * of static functions (inline, so a test that needs only some of them still
 * builds under -Werror). */
#ifndef SIPHA_TEST_SIPNODE_H
#define SIPHA_TEST_SIPNODE_H

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ha/journal.h"
#include "ha/replica.h"
#include "server/call.h"
#include "server/server.h"

#define SIPNODE_MAXSENT 1024

struct sipnode_sent {
	struct sip_peer to;
	char *buf; /* NUL-terminated copy, for failure messages */
	size_t len;
};

struct sipnode {
	struct sipha_config cfg;
	struct timer_wheel tw;
	struct server srv;
	struct sipnode_sent sent[SIPNODE_MAXSENT];
	unsigned nsent;
	unsigned seen; /* messages already looked at by take() */
};

static inline int sipnode_capture(void *arg, const struct sip_peer *to, const char *buf, size_t len)
{
	struct sipnode *n = arg;
	struct sipnode_sent *s;

	assert_true(n->nsent < SIPNODE_MAXSENT);
	s = &n->sent[n->nsent++];
	s->to = *to;
	s->buf = malloc(len + 1);
	assert_non_null(s->buf);
	memcpy(s->buf, buf, len);
	s->buf[len] = '\0';
	s->len = len;
	return 0;
}

/* N from the configuration CONF_TEXT, its clock at 1000 ms. */
static inline void sipnode_init(struct sipnode *n, const char *conf_text)
{
	char err[256];

	memset(n, 0, sizeof(*n));
	assert_int_equal(cfg_load_string(conf_text, "t.conf", &n->cfg, err, sizeof(err)), 0);
	timer_wheel_init(&n->tw, 1000);
	assert_int_equal(srv_core_init(&n->srv, &n->cfg, &n->tw, sipnode_capture, n), 0);
}

static inline void sipnode_fini(struct sipnode *n)
{
	srv_core_fini(&n->srv);
	for (unsigned i = 0; i < n->nsent; i++)
		free(n->sent[i].buf);
	cfg_free(&n->cfg);
}

static inline struct sip_peer udp_peer(const char *ip, unsigned port)
{
	struct sip_peer p;

	assert_int_equal(sipt_peer_set(&p, SIP_PROTO_UDP, ip, port), 0);
	return p;
}

static inline unsigned port_of(const struct sip_peer *p)
{
	return ntohs(((const struct sockaddr_in *)&p->addr)->sin_port);
}

/* A message from FROM, formatted, into srv_rx(). */
static inline __attribute__((format(printf, 3, 4))) void
inject(struct sipnode *n, const struct sip_peer *from, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	assert_true(len > 0 && len < (int)sizeof(buf));
	srv_rx(&n->srv, from, buf, (size_t)len);
}

static inline void advance(struct sipnode *n, uint64_t ms)
{
	timer_run(&n->tw, n->tw.now + ms);
}

static inline void expect_none(struct sipnode *n)
{
	if (n->seen < n->nsent)
		fail_msg("unexpected message sent:\n%s", n->sent[n->seen].buf);
}

/* The raw text of the message take() returned last. */
static inline const char *last_sent(const struct sipnode *n)
{
	assert_true(n->seen > 0);
	return n->sent[n->seen - 1].buf;
}

/* The next message sipha sent that we have not looked at yet, parsed (NULL
 * when there is none); where it went in *TO if TO. */
static inline osip_message_t *take(struct sipnode *n, struct sip_peer *to)
{
	osip_message_t *m = NULL;
	struct sipnode_sent *s;

	if (n->seen >= n->nsent)
		return NULL;
	s = &n->sent[n->seen++];
	assert_int_equal(sipmsg_parse(s->buf, s->len, true, &m), 0);
	if (to)
		*to = s->to;
	return m;
}

/* The next message, which must be WHAT: a method ("ACK") or a response code
 * and the method of its CSeq ("180 INVITE"); where it went in *TO if TO. */
static inline osip_message_t *expect_msg(struct sipnode *n, const char *what, struct sip_peer *to)
{
	const char *method = strchr(what, ' ');
	osip_message_t *m = take(n, to);

	if (!m)
		fail_msg("expected %s, nothing sent", what);
	if (method ? m->status_code != atoi(what) || strcmp(m->cseq->method, method + 1)
		   : !m->sip_method || strcmp(m->sip_method, what))
		fail_msg("expected %s, got:\n%s", what, last_sent(n));
	return m;
}

static inline char *callid(const osip_message_t *m)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s%s%s", m->call_id->number, m->call_id->host ? "@" : "",
		 m->call_id->host ? m->call_id->host : "");
	return buf;
}

static inline const char *tag_of(osip_from_t *h)
{
	osip_generic_param_t *p = NULL;

	return osip_from_get_tag(h, &p) == 0 && p ? p->gvalue : NULL;
}

static inline const char *branch_of(osip_message_t *m)
{
	osip_via_t *v = NULL;
	osip_generic_param_t *p = NULL;

	osip_message_get_via(m, 0, &v);
	assert_non_null(v);
	osip_via_param_get_byname(v, "branch", &p);
	assert_non_null(p);
	return p->gvalue;
}

static inline const char *body_of(osip_message_t *m)
{
	osip_body_t *b = NULL;

	return osip_message_get_body(m, 0, &b) >= 0 && b ? b->body : NULL;
}

static inline void first_call(void *arg, const struct call *c)
{
	*(const struct call **)arg = c;
}

/* The one call N has; fails unless there is exactly one. */
static inline const struct call *only_call(struct sipnode *n)
{
	const struct call *c = NULL;

	assert_int_equal(calls_count(n->srv.calls), 1);
	calls_foreach(n->srv.calls, first_call, &c);
	assert_non_null(c);
	return c;
}

/* Both tests play the same two parties around sipha (127.0.0.1:5060). */
#define SDP_A                                       \
	"v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\n" \
	"c=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
#define SDP_B                                        \
	"v=0\r\no=b 2 2 IN IP4 10.0.0.50\r\ns=-\r\n" \
	"c=IN IP4 10.0.0.50\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n"

/* The caller, alice at 10.0.0.1:5061. */
struct uac {
	struct sip_peer peer;
	char invite[2048]; /* its INVITE, raw, when a test keeps it */
	char id[16];
	char callid[64];
	char ftag[32];
	char ttag[64]; /* sipha's tag on the A leg, learnt from its responses */
	int cseq;
};

/* The callee, 3000 at 10.0.0.50:5080, whose tag is always "btag": what it
 * needs to answer sipha's INVITE and to send requests back. */
struct uas {
	struct sip_peer peer;
	char invite[8192]; /* the INVITE sipha sent, raw */
	size_t invite_len;
	char callid[256];
	char ftag[64]; /* sipha's tag on the B leg */
	char via[256]; /* top Via of that INVITE */
	char ruri[256];
	int cseq;
};

#define SIPNODE_ALICE "\"Alice\" <sip:alice@sipha.test>"
#define SIPNODE_3000 "<sip:3000@sipha.test>"

/* An in-dialog request to sipha as either party writes it. */
struct sipnode_req {
	const char *method, *via, *from, *ftag, *to, *ttag, *call_id, *sdp;
	int cseq;
};

static inline void sipnode_request(struct sipnode *n, const struct sip_peer *peer,
				   const struct sipnode_req *r, const char *branch_fmt, va_list ap)
{
	char branch[128];
	int len = vsnprintf(branch, sizeof(branch), branch_fmt, ap);

	assert_true(len > 0 && (size_t)len < sizeof(branch));
	inject(n, peer,
	       "%s sip:sipha@127.0.0.1:5060 SIP/2.0\r\n"
	       "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s\r\n"
	       "Max-Forwards: 70\r\n"
	       "From: %s;tag=%s\r\n"
	       "To: %s;tag=%s\r\n"
	       "Call-ID: %s\r\n"
	       "CSeq: %d %s\r\n"
	       "%sContent-Length: %zu\r\n\r\n%s",
	       r->method, r->via, branch, r->from, r->ftag, r->to, r->ttag, r->call_id, r->cseq,
	       r->method, r->sdp ? "Content-Type: application/sdp\r\n" : "",
	       r->sdp ? strlen(r->sdp) : 0, r->sdp ? r->sdp : "");
}

/* An in-dialog request from the caller (SDP its body if any); its Via
 * branch is the magic cookie and BRANCH_FMT. */
static inline __attribute__((format(printf, 6, 7))) void
caller_in_dialog(struct sipnode *n, const struct uac *a, const char *method, int cseq,
		 const char *sdp, const char *branch_fmt, ...)
{
	const struct sipnode_req r = { .method = method,
				       .cseq = cseq,
				       .via = "10.0.0.1:5061",
				       .from = SIPNODE_ALICE,
				       .ftag = a->ftag,
				       .to = SIPNODE_3000,
				       .ttag = a->ttag,
				       .call_id = a->callid,
				       .sdp = sdp };
	va_list ap;

	va_start(ap, branch_fmt);
	sipnode_request(n, &a->peer, &r, branch_fmt, ap);
	va_end(ap);
}

/* An in-dialog request from the callee; its Via branch is the magic cookie
 * and BRANCH_FMT. */
static inline __attribute__((format(printf, 5, 6))) void
callee_in_dialog(struct sipnode *n, const struct uas *b, const char *method, int cseq,
		 const char *branch_fmt, ...)
{
	const struct sipnode_req r = { .method = method,
				       .cseq = cseq,
				       .via = "10.0.0.50:5080",
				       .from = SIPNODE_3000,
				       .ftag = "btag",
				       .to = SIPNODE_ALICE,
				       .ttag = b->ftag,
				       .call_id = b->callid };
	va_list ap;

	va_start(ap, branch_fmt);
	sipnode_request(n, &b->peer, &r, branch_fmt, ap);
	va_end(ap);
}

/* The callee answers sipha's INVITE with CODE (tagged unless a 100). */
static inline void callee_respond(struct sipnode *n, const struct uas *b, int code,
				  const char *reason, const char *sdp)
{
	inject(n, &b->peer,
	       "SIP/2.0 %d %s\r\n"
	       "Via: %s\r\n"
	       "From: \"Alice\" <sip:alice@sipha.test>;tag=%s\r\n"
	       "To: <sip:3000@sipha.test>%s\r\n"
	       "Call-ID: %s\r\n"
	       "CSeq: 1 INVITE\r\n"
	       "Contact: <sip:bob@10.0.0.50:5080>\r\n"
	       "%s"
	       "Content-Length: %zu\r\n\r\n%s",
	       code, reason, b->via, b->ftag, code > 100 ? ";tag=btag" : "", b->callid,
	       sdp ? "Content-Type: application/sdp\r\n" : "", sdp ? strlen(sdp) : 0,
	       sdp ? sdp : "");
}

/* The one record in JB (what an active node encoded) through the wire
 * format into standby N, as role.c applies it; JB is emptied. */
static inline void sipnode_apply_record(struct sipnode *n, struct jr_buf *jb)
{
	struct jr_decoder d;
	struct jr_frame fr;
	struct jr_record r;
	size_t used = 0;

	jr_decoder_init(&d, 0);
	assert_int_equal(jr_decode(&d, jb->data, jb->len, &used, &fr), 0);
	assert_int_equal(used, jb->len);
	assert_int_equal(jr_record_decode(&fr, &r), 0);
	assert_int_equal(rep_apply(&n->srv, &r), 0);
	jr_buf_reset(jb);
}

#endif

/* SIP transaction layer: every machine's transitions and timers on a fake
 * clock, matching (RFC 3261 and RFC 2543 style), ownership.  A fake transport
 * records what the layer sends; each test parses it back to see what it is. */
#include <errno.h>
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sip/msg.h"
#include "sip/txn.h"

#define T1 500
#define T2 4000
#define T4 5000
#define MAX_SENT 128
#define MAX_REC 32

struct fx;

/* What one transaction told its user. */
struct rec {
	struct fx *f;
	struct txn *t;
	int nresp;
	int codes[32];
	int ntimeout, timeout_code;
	int nterm, nnoack;
	/* re-entrancy probes */
	bool reply_in_cb; /* on_no_ack / on_terminated: txn_reply on itself */
	int reply_in_cb_err;
	bool request_in_cb; /* on_response: start another client transaction */
};

struct sent {
	struct sip_peer to;
	char *buf;
	size_t len;
	uint64_t at;
};

struct fx {
	struct timer_wheel tw;
	struct txn_layer *tl;
	uint64_t start;
	struct sent sent[MAX_SENT];
	size_t nsent;
	int send_err; /* what the fake transport answers */
	struct rec recs[MAX_REC];
	int nrec;
	struct sip_peer udp, tcp;
};

/* ---- fake transport and user ---------------------------------------------------- */

static int fake_send(void *arg, const struct sip_peer *to, const char *buf, size_t len)
{
	struct fx *f = arg;
	struct sent *s;

	assert_true(f->nsent < MAX_SENT);
	assert_non_null(buf);
	assert_true(len > 0);
	if (f->send_err)
		return f->send_err;
	s = &f->sent[f->nsent++];
	s->to = *to;
	s->buf = malloc(len);
	assert_non_null(s->buf);
	memcpy(s->buf, buf, len);
	s->len = len;
	s->at = f->tw.now;
	return 0;
}

static void on_response(struct txn *t, void *uarg, osip_message_t *resp)
{
	struct rec *r = uarg;

	assert_ptr_equal(r->t ? r->t : t, t);
	assert_int_not_equal(t->state, TXN_TERMINATED);
	assert_true(r->nresp < 32);
	r->codes[r->nresp++] = resp->status_code;
	if (r->request_in_cb) {
		/* A new transaction from inside a callback of another. */
		char branch[64];
		osip_message_t *req = NULL;
		struct txn *nt = NULL;
		char buf[512];

		txn_new_branch(t->tl, branch, sizeof(branch));
		snprintf(buf, sizeof(buf),
			 "BYE sip:bob@192.0.2.9 SIP/2.0\r\n"
			 "Via: SIP/2.0/UDP 10.99.0.100:5060;branch=%s\r\n"
			 "Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\n"
			 "Call-ID: cb-%s\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
			 branch, branch);
		assert_int_equal(sipmsg_parse(buf, strlen(buf), true, &req), 0);
		assert_int_equal(txn_request(t->tl, req, &t->peer, NULL, NULL, &nt), 0);
		assert_non_null(nt);
		r->request_in_cb = false;
	}
}

static void on_timeout(struct txn *t, void *uarg, int code)
{
	struct rec *r = uarg;

	assert_ptr_equal(r->t, t);
	r->ntimeout++;
	r->timeout_code = code;
}

static void on_terminated(struct txn *t, void *uarg)
{
	struct rec *r = uarg;

	assert_ptr_equal(r->t, t);
	assert_int_equal(t->state, TXN_TERMINATED);
	r->nterm++;
	if (r->reply_in_cb)
		r->reply_in_cb_err = txn_reply(t, 500, NULL, NULL);
}

static void on_no_ack(struct txn *t, void *uarg)
{
	struct rec *r = uarg;

	assert_ptr_equal(r->t, t);
	r->nnoack++;
	if (r->reply_in_cb)
		r->reply_in_cb_err = txn_reply(t, 500, NULL, NULL);
}

static const struct txn_user user = {
	.on_response = on_response,
	.on_timeout = on_timeout,
	.on_terminated = on_terminated,
	.on_no_ack = on_no_ack,
};

static struct rec *new_rec(struct fx *f)
{
	struct rec *r;

	assert_true(f->nrec < MAX_REC);
	r = &f->recs[f->nrec++];
	r->f = f;
	return r;
}

/* ---- fixture ------------------------------------------------------------------------ */

static int setup_env(void **state, unsigned max)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct txn_env env = { 0 };

	assert_non_null(f);
	f->start = 1000000;
	timer_wheel_init(&f->tw, f->start);
	env.tw = &f->tw;
	env.send = fake_send;
	env.send_arg = f;
	env.max_txns = max; /* t1/t2/t4 left 0: the defaults are the RFC's */
	assert_int_equal(txn_layer_new(&f->tl, &env), 0);
	f->udp.proto = SIP_PROTO_UDP;
	f->tcp.proto = SIP_PROTO_TCP;
	f->tcp.conn = 7;
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_env(state, 0);
}

static int setup_small(void **state)
{
	return setup_env(state, 3);
}

/* Frees the layer (which terminates whatever is left) and checks that every
 * transaction a test saw was terminated exactly once. */
static int teardown(void **state)
{
	struct fx *f = *state;

	txn_layer_free(f->tl);
	for (int i = 0; i < f->nrec; i++)
		if (f->recs[i].t)
			assert_int_equal(f->recs[i].nterm, 1);
	for (size_t i = 0; i < f->nsent; i++)
		free(f->sent[i].buf);
	free(f);
	return 0;
}

/* Moves the fake clock to START + MS. */
static void at(struct fx *f, uint64_t ms)
{
	assert_true(f->start + ms >= f->tw.now);
	timer_run(&f->tw, f->start + ms);
}

/* ---- messages ----------------------------------------------------------------------- */

struct rq {
	const char *method; /* default INVITE */
	const char *ruri; /* default sip:bob@sipha.test */
	const char *proto; /* default UDP */
	const char *sentby; /* default 192.0.2.1:5060 */
	const char *branch; /* NULL: no branch parameter (RFC 2543) */
	const char *callid; /* default call-1@192.0.2.1 */
	unsigned cseq; /* default 1 */
	const char *cseq_method; /* default METHOD */
	const char *to_tag; /* NULL: none */
	const char *extra; /* more header lines */
};

static osip_message_t *parse(const char *buf)
{
	osip_message_t *m = NULL;

	assert_int_equal(sipmsg_parse(buf, strlen(buf), true, &m), 0);
	assert_non_null(m);
	return m;
}

static osip_message_t *mkreq(const struct rq *r)
{
	const char *method = r->method ? r->method : "INVITE";
	char via_params[128] = "", to_params[64] = "", buf[2048];

	if (r->branch)
		snprintf(via_params, sizeof(via_params), ";branch=%s", r->branch);
	if (r->to_tag)
		snprintf(to_params, sizeof(to_params), ";tag=%s", r->to_tag);
	snprintf(buf, sizeof(buf),
		 "%s %s SIP/2.0\r\n"
		 "Via: SIP/2.0/%s %s%s\r\n"
		 "Max-Forwards: 70\r\n"
		 "From: \"Alice\" <sip:alice@example.com>;tag=from1\r\n"
		 "To: <sip:bob@sipha.test>%s\r\n"
		 "Call-ID: %s\r\n"
		 "CSeq: %u %s\r\n"
		 "%s"
		 "Content-Length: 0\r\n\r\n",
		 method, r->ruri ? r->ruri : "sip:bob@sipha.test", r->proto ? r->proto : "UDP",
		 r->sentby ? r->sentby : "192.0.2.1:5060", via_params, to_params,
		 r->callid ? r->callid : "call-1@192.0.2.1", r->cseq ? r->cseq : 1,
		 r->cseq_method ? r->cseq_method : method, r->extra ? r->extra : "");
	return parse(buf);
}

/* A response to REQ as the peer would send it. */
static osip_message_t *mkresp(const osip_message_t *req, int code, const char *tag)
{
	osip_message_t *m = NULL;

	assert_int_equal(sipmsg_response(req, code, NULL, tag, &m), 0);
	return m;
}

static osip_message_t *sent_msg(struct fx *f, size_t i)
{
	char *s;
	osip_message_t *m;

	assert_true(i < f->nsent);
	s = strndup(f->sent[i].buf, f->sent[i].len);
	assert_non_null(s);
	m = parse(s);
	free(s);
	return m;
}

static int sent_code(struct fx *f, size_t i)
{
	osip_message_t *m = sent_msg(f, i);
	int code = m->status_code;

	osip_message_free(m);
	return code;
}

static bool sent_is(struct fx *f, size_t i, const char *method)
{
	osip_message_t *m = sent_msg(f, i);
	bool ok = MSG_IS_REQUEST(m) && !strcmp(m->sip_method, method);

	osip_message_free(m);
	return ok;
}

static const char *branch_of(const osip_message_t *m)
{
	osip_via_t *via = osip_list_get(&m->vias, 0);
	osip_generic_param_t *p = NULL;

	assert_non_null(via);
	osip_via_param_get_byname(via, "branch", &p);
	return p ? p->gvalue : NULL;
}

static const char *to_tag_of(const osip_message_t *m)
{
	osip_generic_param_t *p = NULL;

	osip_to_get_tag(m->to, &p);
	return p ? p->gvalue : NULL;
}

/* Server: feeds REQ (freed) from PEER. */
static enum txn_rx rx_req(struct fx *f, osip_message_t *req, const struct sip_peer *peer,
			  struct txn **out)
{
	struct txn *dummy;
	enum txn_rx rx = txn_rx_request(f->tl, req, peer, out ? out : &dummy);

	osip_message_free(req);
	return rx;
}

/* Server: feeds a request made from RQ, from PEER. */
static enum txn_rx rx(struct fx *f, struct rq rq, const struct sip_peer *peer)
{
	return rx_req(f, mkreq(&rq), peer, NULL);
}

/* Server: a new transaction for REQ (not freed), with a recording user. */
static struct rec *server(struct fx *f, const osip_message_t *req, const struct sip_peer *peer)
{
	struct rec *r = new_rec(f);
	osip_message_t *c = NULL;

	assert_int_equal(osip_message_clone(req, &c), 0);
	assert_int_equal(rx_req(f, c, peer, &r->t), TXN_RX_NEW);
	assert_non_null(r->t);
	txn_set_user(r->t, &user, r);
	return r;
}

/* Client: sends a request made from RQ with a fresh branch; *SENT gets a
 * copy of it (the caller frees it). */
static struct rec *client(struct fx *f, struct rq rq, const struct sip_peer *peer,
			  osip_message_t **sent)
{
	struct rec *r = new_rec(f);
	char branch[64];
	osip_message_t *req;

	txn_new_branch(f->tl, branch, sizeof(branch));
	rq.branch = branch;
	rq.sentby = "10.99.0.100:5060";
	req = mkreq(&rq);
	assert_int_equal(osip_message_clone(req, sent), 0);
	assert_int_equal(txn_request(f->tl, req, peer, &user, r, &r->t), 0);
	assert_non_null(r->t);
	return r;
}

static bool rx_resp(struct fx *f, osip_message_t *resp)
{
	bool ok = txn_rx_response(f->tl, resp, &f->udp);

	osip_message_free(resp);
	return ok;
}

/* Checks that the sends from index FROM on happened exactly at the relative
 * times in WANT (N of them). */
static void check_times(struct fx *f, size_t from, const uint64_t *want, size_t n)
{
	assert_int_equal(f->nsent - from, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(f->sent[from + i].at - f->start, want[i]);
}

/* ---- INVITE server ---------------------------------------------------------------------- */

static void test_ist_2xx_accepted(void **state)
{
	struct fx *f = *state;
	osip_message_t *inv = mkreq(&(struct rq){ .branch = "z9hG4bKist1" });
	struct rec *r = server(f, inv, &f->udp);
	osip_message_t *ok = NULL;

	assert_int_equal(r->t->kind, TXN_IST);
	assert_int_equal(r->t->state, TXN_PROCEEDING);
	assert_int_equal(txn_count(f->tl), 1);

	/* Before any provisional response a retransmission has nothing to get. */
	assert_int_equal(rx(f, (struct rq){ .branch = "z9hG4bKist1" }, &f->udp), TXN_RX_ABSORBED);
	assert_int_equal(f->nsent, 0);

	assert_int_equal(txn_reply(r->t, 100, NULL, NULL), 0);
	assert_int_equal(txn_reply(r->t, 180, NULL, "uas1"), 0);
	assert_int_equal(r->t->state, TXN_PROCEEDING);
	assert_int_equal(f->nsent, 2);
	assert_int_equal(sent_code(f, 0), 100);
	assert_int_equal(sent_code(f, 1), 180);

	/* Retransmitted INVITE in Proceeding: the last provisional again. */
	assert_int_equal(rx(f, (struct rq){ .branch = "z9hG4bKist1" }, &f->udp), TXN_RX_ABSORBED);
	assert_int_equal(f->nsent, 3);
	assert_int_equal(sent_code(f, 2), 180);

	at(f, 1000);
	assert_int_equal(txn_reply(r->t, 200, NULL, "uas1"), 0);
	assert_int_equal(r->t->state, TXN_ACCEPTED);
	assert_int_equal(r->t->code, 200);
	assert_int_equal(sent_code(f, 3), 200);

	/* Accepted: INVITE retransmissions are absorbed, the TU resends 2xx. */
	assert_int_equal(rx(f, (struct rq){ .branch = "z9hG4bKist1" }, &f->udp), TXN_RX_ABSORBED);
	assert_int_equal(f->nsent, 4);
	ok = mkresp(inv, 200, "uas1");
	assert_int_equal(txn_respond(r->t, ok), 0);
	osip_message_free(ok);
	assert_int_equal(f->nsent, 5);
	assert_int_equal(sent_code(f, 4), 200);
	/* ...and nothing but 2xx may follow. */
	assert_int_equal(txn_reply(r->t, 486, NULL, "uas1"), -EINVAL);
	assert_int_equal(txn_reply(r->t, 180, NULL, "uas1"), -EINVAL);
	assert_int_equal(f->nsent, 5);

	/* The ACK for the 2xx (its own branch) is the dialog's; so is one
	 * that reuses the INVITE's branch while Accepted. */
	assert_int_equal(
		rx(f, (struct rq){ .method = "ACK", .branch = "z9hG4bKack2xx", .to_tag = "uas1" },
		   &f->udp),
		TXN_RX_ACK);
	assert_int_equal(
		rx(f, (struct rq){ .method = "ACK", .branch = "z9hG4bKist1", .to_tag = "uas1" },
		   &f->udp),
		TXN_RX_ACK);
	assert_int_equal(r->t->state, TXN_ACCEPTED);

	/* Timer L = 64*T1 after the 2xx; no retransmission meanwhile. */
	at(f, 1000 + 64 * T1 - 1);
	assert_int_equal(r->nterm, 0);
	assert_int_equal(f->nsent, 5);
	at(f, 1000 + 64 * T1);
	assert_int_equal(r->nterm, 1);
	assert_int_equal(txn_count(f->tl), 0);
	osip_message_free(inv);
}

static void test_ist_486_udp(void **state)
{
	struct fx *f = *state;
	osip_message_t *inv = mkreq(&(struct rq){ .branch = "z9hG4bKist2" });
	struct rec *r = server(f, inv, &f->udp);
	static const uint64_t g[] = { 0, 500, 1500, 3500, 7500, 11500, 15500 };
	osip_message_t *m;

	assert_int_equal(txn_reply(r->t, 486, "Busy Here", "uas2"), 0);
	assert_int_equal(r->t->state, TXN_COMPLETED);
	/* Timer G: T1, 2T1, 4T1, then capped at T2. */
	at(f, 499);
	assert_int_equal(f->nsent, 1);
	at(f, 15500);
	check_times(f, 0, g, 7);
	for (size_t i = 0; i < f->nsent; i++)
		assert_int_equal(sent_code(f, i), 486);
	for (size_t i = 0; i < f->nsent; i++)
		assert_int_equal(f->sent[i].to.proto, SIP_PROTO_UDP);

	/* Retransmitted INVITE: the 486 again, at once. */
	at(f, 16000);
	assert_int_equal(rx(f, (struct rq){ .branch = "z9hG4bKist2" }, &f->udp), TXN_RX_ABSORBED);
	assert_int_equal(f->nsent, 8);
	assert_int_equal(f->sent[7].at - f->start, 16000);
	m = sent_msg(f, 7);
	assert_int_equal(m->status_code, 486);
	assert_string_equal(to_tag_of(m), "uas2");
	osip_message_free(m);

	/* An ACK with another branch is not this transaction's. */
	assert_int_equal(
		rx(f, (struct rq){ .method = "ACK", .branch = "z9hG4bKother", .to_tag = "uas2" },
		   &f->udp),
		TXN_RX_ACK);
	assert_int_equal(r->t->state, TXN_COMPLETED);

	/* The ACK (same branch, §17.1.1.3) confirms: G and H stop, I runs. */
	assert_int_equal(
		rx(f, (struct rq){ .method = "ACK", .branch = "z9hG4bKist2", .to_tag = "uas2" },
		   &f->udp),
		TXN_RX_ABSORBED);
	assert_int_equal(r->t->state, TXN_CONFIRMED);
	assert_int_equal(
		rx(f, (struct rq){ .method = "ACK", .branch = "z9hG4bKist2", .to_tag = "uas2" },
		   &f->udp),
		TXN_RX_ABSORBED);
	assert_int_equal(rx(f, (struct rq){ .branch = "z9hG4bKist2" }, &f->udp), TXN_RX_ABSORBED);
	assert_int_equal(f->nsent, 8);
	at(f, 16000 + T4 - 1);
	assert_int_equal(f->nsent, 8);
	assert_int_equal(r->nterm, 0);
	at(f, 16000 + T4);
	assert_int_equal(r->nterm, 1);
	assert_int_equal(r->nnoack, 0);
	assert_int_equal(txn_count(f->tl), 0);
	osip_message_free(inv);
}

static void test_ist_486_tcp(void **state)
{
	struct fx *f = *state;
	osip_message_t *inv = mkreq(&(struct rq){ .proto = "TCP", .branch = "z9hG4bKist3" });
	struct rec *r = server(f, inv, &f->tcp);

	assert_true(r->t->reliable);
	assert_int_equal(txn_reply(r->t, 486, NULL, "uas3"), 0);
	assert_int_equal(f->sent[0].to.proto, SIP_PROTO_TCP);
	assert_int_equal(f->sent[0].to.conn, 7);
	at(f, 64 * T1 - 1);
	assert_int_equal(f->nsent, 1); /* no Timer G on TCP */
	assert_int_equal(r->t->state, TXN_COMPLETED);
	/* Timer I is 0 on TCP: the ACK ends the transaction. */
	assert_int_equal(rx(f,
			    (struct rq){ .method = "ACK",
					 .proto = "TCP",
					 .branch = "z9hG4bKist3",
					 .to_tag = "uas3" },
			    &f->tcp),
			 TXN_RX_ABSORBED);
	assert_int_equal(r->nterm, 1);
	assert_int_equal(r->nnoack, 0);
	assert_int_equal(txn_count(f->tl), 0);
	osip_message_free(inv);
}

static void test_ist_timer_h(void **state)
{
	struct fx *f = *state;
	osip_message_t *inv = mkreq(&(struct rq){ .branch = "z9hG4bKist4" });
	osip_message_t *inv_tcp = mkreq(&(struct rq){ .proto = "TCP", .branch = "z9hG4bKist5" });
	struct rec *r = server(f, inv, &f->udp);
	struct rec *rt = server(f, inv_tcp, &f->tcp);

	r->reply_in_cb = true;
	assert_int_equal(txn_reply(r->t, 603, NULL, "uas4"), 0);
	assert_int_equal(txn_reply(rt->t, 603, NULL, "uas5"), 0);
	at(f, 64 * T1 - 1);
	assert_int_equal(r->nnoack + rt->nnoack, 0);
	assert_int_equal(txn_count(f->tl), 2);
	/* UDP: 2 sent + G at 500,1500,3500,7500,...,31500 (10). */
	assert_int_equal(f->nsent, 12);
	at(f, 64 * T1);
	assert_int_equal(r->nnoack, 1);
	assert_int_equal(rt->nnoack, 1);
	assert_int_equal(r->nterm, 1);
	assert_int_equal(rt->nterm, 1);
	/* A response from inside on_no_ack / on_terminated is refused. */
	assert_int_equal(r->reply_in_cb_err, -EINVAL);
	assert_int_equal(f->nsent, 12);
	assert_int_equal(txn_count(f->tl), 0);
	osip_message_free(inv);
	osip_message_free(inv_tcp);
}

/* ---- non-INVITE server ------------------------------------------------------------------ */

static void test_nist_udp(void **state)
{
	struct fx *f = *state;
	struct rq rq = { .method = "BYE", .branch = "z9hG4bKnist1", .to_tag = "t1" };
	osip_message_t *bye = mkreq(&rq);
	struct rec *r = server(f, bye, &f->udp);

	assert_int_equal(r->t->kind, TXN_NIST);
	assert_int_equal(r->t->state, TXN_TRYING);
	assert_int_equal(rx(f, rq, &f->udp), TXN_RX_ABSORBED);
	assert_int_equal(f->nsent, 0);
	assert_int_equal(txn_reply(r->t, 183, NULL, NULL), 0);
	assert_int_equal(r->t->state, TXN_PROCEEDING);
	assert_int_equal(rx(f, rq, &f->udp), TXN_RX_ABSORBED);
	assert_int_equal(f->nsent, 2);
	assert_int_equal(sent_code(f, 1), 183);

	at(f, 100);
	assert_int_equal(txn_reply(r->t, 200, NULL, NULL), 0);
	assert_int_equal(r->t->state, TXN_COMPLETED);
	assert_int_equal(txn_reply(r->t, 500, NULL, NULL), -EINVAL);
	assert_int_equal(rx(f, rq, &f->udp), TXN_RX_ABSORBED);
	assert_int_equal(f->nsent, 4);
	assert_int_equal(sent_code(f, 2), 200);
	assert_int_equal(sent_code(f, 3), 200);
	/* The tick after, the parsed request is dropped; a retransmission is
	 * still matched (on its To tag too) and answered with the same bytes. */
	assert_non_null(r->t->req);
	at(f, 101);
	assert_null(r->t->req);
	assert_int_equal(rx(f, rq, &f->udp), TXN_RX_ABSORBED);
	assert_int_equal(f->nsent, 5);
	assert_int_equal(sent_code(f, 4), 200);
	assert_int_equal(f->sent[4].len, f->sent[3].len);
	assert_memory_equal(f->sent[4].buf, f->sent[3].buf, f->sent[3].len);
	/* Timer J = 64*T1, and no retransmission of its own. */
	at(f, 100 + 64 * T1 - 1);
	assert_int_equal(r->nterm, 0);
	assert_int_equal(f->nsent, 5);
	at(f, 100 + 64 * T1);
	assert_int_equal(r->nterm, 1);
	assert_int_equal(txn_count(f->tl), 0);
	osip_message_free(bye);
}

static void test_nist_tcp(void **state)
{
	struct fx *f = *state;
	struct rq rq = { .method = "OPTIONS", .proto = "TCP", .branch = "z9hG4bKnist2" };
	osip_message_t *req = mkreq(&rq);
	struct rec *r = server(f, req, &f->tcp);

	assert_int_equal(txn_reply(r->t, 200, NULL, "x"), 0);
	/* Timer J is 0 on TCP. */
	assert_int_equal(r->nterm, 1);
	assert_int_equal(txn_count(f->tl), 0);
	assert_int_equal(f->nsent, 1);
	assert_int_equal(f->sent[0].to.conn, 7);
	/* Gone: the same request again is a new transaction. */
	assert_int_equal(rx(f, rq, &f->tcp), TXN_RX_NEW);
	assert_int_equal(txn_count(f->tl), 1);
	osip_message_free(req);
}

/* A server's send failure on TCP ends the transaction; on UDP it only tells
 * the TU, and the response goes out again with the next retransmission. */
static void test_server_send_failure(void **state)
{
	struct fx *f = *state;
	struct rq rq_u = { .branch = "z9hG4bKsf1" };
	struct rq rq_t = { .proto = "TCP", .branch = "z9hG4bKsf2" };
	osip_message_t *u = mkreq(&rq_u), *t = mkreq(&rq_t);
	struct rec *ru = server(f, u, &f->udp), *rt = server(f, t, &f->tcp);

	f->send_err = -ENOTCONN;
	assert_int_equal(txn_reply(rt->t, 180, NULL, "x"), -ENOTCONN);
	assert_int_equal(rt->nterm, 1);
	assert_int_equal(txn_count(f->tl), 1);
	f->send_err = -ENOBUFS;
	assert_int_equal(txn_reply(ru->t, 180, NULL, "x"), -ENOBUFS);
	assert_int_equal(ru->nterm, 0);
	assert_int_equal(ru->t->state, TXN_PROCEEDING);
	assert_int_equal(txn_reply(ru->t, 486, NULL, "x"), -ENOBUFS);
	assert_int_equal(ru->t->state, TXN_COMPLETED);
	f->send_err = 0;
	assert_int_equal(rx(f, rq_u, &f->udp), TXN_RX_ABSORBED);
	assert_int_equal(f->nsent, 1);
	assert_int_equal(sent_code(f, 0), 486);
	at(f, T1); /* and Timer G */
	assert_int_equal(f->nsent, 2);
	assert_int_equal(sent_code(f, 1), 486);
	osip_message_free(u);
	osip_message_free(t);
}

/* ---- INVITE client ---------------------------------------------------------------------- */

static void test_ict_timer_a_b(void **state)
{
	struct fx *f = *state;
	osip_message_t *inv;
	struct rec *r = client(f, (struct rq){ 0 }, &f->udp, &inv);
	/* Timer A doubles with no cap: T1, 2T1, 4T1, 8T1, 16T1, 32T1. */
	static const uint64_t a[] = { 0, 500, 1500, 3500, 7500, 15500, 31500 };

	assert_int_equal(r->t->kind, TXN_ICT);
	assert_int_equal(r->t->state, TXN_CALLING);
	assert_true(sent_is(f, 0, "INVITE"));
	at(f, 499);
	assert_int_equal(f->nsent, 1);
	at(f, 64 * T1 - 1);
	check_times(f, 0, a, 7);
	for (size_t i = 0; i < f->nsent; i++)
		assert_true(sent_is(f, i, "INVITE"));
	assert_int_equal(r->ntimeout, 0);
	/* Timer B */
	at(f, 64 * T1);
	assert_int_equal(r->ntimeout, 1);
	assert_int_equal(r->timeout_code, 408);
	assert_int_equal(r->nresp, 0);
	assert_int_equal(r->nterm, 1);
	assert_int_equal(txn_count(f->tl), 0);
	/* A late answer matches nothing now. */
	assert_false(rx_resp(f, mkresp(inv, 180, "late")));
	osip_message_free(inv);
}

static void test_ict_tcp(void **state)
{
	struct fx *f = *state;
	osip_message_t *inv;
	struct rec *r = client(f, (struct rq){ .proto = "TCP" }, &f->tcp, &inv);

	at(f, 64 * T1 - 1);
	assert_int_equal(f->nsent, 1); /* no Timer A on TCP */
	at(f, 64 * T1);
	assert_int_equal(r->timeout_code, 408);
	assert_int_equal(r->nterm, 1);

	/* 3xx-6xx on TCP: ACK, then Terminated at once (Timer D = 0). */
	osip_message_free(inv);
	r = client(f, (struct rq){ .proto = "TCP", .callid = "c2" }, &f->tcp, &inv);
	assert_true(rx_resp(f, mkresp(inv, 404, "u")));
	assert_true(sent_is(f, f->nsent - 1, "ACK"));
	assert_int_equal(f->sent[f->nsent - 1].to.conn, 7);
	assert_int_equal(r->nresp, 1);
	assert_int_equal(r->codes[0], 404);
	assert_int_equal(r->nterm, 1);
	assert_int_equal(txn_count(f->tl), 0);
	osip_message_free(inv);
}

static void test_ict_180_200(void **state)
{
	struct fx *f = *state;
	osip_message_t *inv;
	struct rec *r = client(f, (struct rq){ 0 }, &f->udp, &inv);

	at(f, 600);
	assert_int_equal(f->nsent, 2); /* one Timer A retransmission */
	assert_true(rx_resp(f, mkresp(inv, 180, "b1")));
	assert_int_equal(r->t->state, TXN_PROCEEDING);
	assert_int_equal(r->nresp, 1);
	assert_int_equal(r->codes[0], 180);
	assert_true(rx_resp(f, mkresp(inv, 183, "b1")));
	assert_int_equal(r->nresp, 2);
	/* Proceeding: Timer A stopped, and Timer B too. */
	at(f, 64 * T1 + 1000);
	assert_int_equal(f->nsent, 2);
	assert_int_equal(r->ntimeout, 0);

	assert_true(rx_resp(f, mkresp(inv, 200, "b1")));
	assert_int_equal(r->t->state, TXN_ACCEPTED);
	assert_int_equal(r->t->code, 200);
	/* Every 2xx goes up: retransmissions and other forks alike. */
	assert_true(rx_resp(f, mkresp(inv, 200, "b1")));
	assert_true(rx_resp(f, mkresp(inv, 200, "fork2")));
	assert_int_equal(r->nresp, 5);
	assert_int_equal(r->codes[2], 200);
	assert_int_equal(r->codes[3], 200);
	assert_int_equal(r->codes[4], 200);
	/* A 1xx or a non-2xx final after the 2xx has no transition. */
	assert_false(rx_resp(f, mkresp(inv, 180, "b1")));
	assert_false(rx_resp(f, mkresp(inv, 486, "b1")));
	assert_int_equal(r->nresp, 5);
	/* The ACK for 2xx is the TU's: nothing sent here. */
	assert_int_equal(f->nsent, 2);

	/* Timer M = 64*T1 after the first 2xx. */
	at(f, 64 * T1 + 1000 + 64 * T1 - 1);
	assert_int_equal(r->nterm, 0);
	at(f, 64 * T1 + 1000 + 64 * T1);
	assert_int_equal(r->nterm, 1);
	assert_false(rx_resp(f, mkresp(inv, 200, "b1")));
	assert_int_equal(r->nresp, 5);
	osip_message_free(inv);
}

static void test_ict_200_from_calling_and_timer_c(void **state)
{
	struct fx *f = *state;
	osip_message_t *inv, *inv2;
	struct rec *r = client(f, (struct rq){ 0 }, &f->udp, &inv);
	struct rec *r2 = client(f, (struct rq){ .callid = "c2" }, &f->udp, &inv2);

	assert_true(rx_resp(f, mkresp(inv, 200, "b1")));
	assert_int_equal(r->t->state, TXN_ACCEPTED);
	at(f, 64 * T1 - 1);
	/* r's Timer A stopped at once; r2 still retransmits. */
	for (size_t i = 0; i < f->nsent; i++) {
		osip_message_t *m = sent_msg(f, i);

		if (i > 1)
			assert_string_equal(m->call_id->number, "c2");
		osip_message_free(m);
	}
	assert_int_equal(f->nsent, 8);

	/* A UAS that rings for ever without refreshing its 1xx: Timer C. */
	assert_true(rx_resp(f, mkresp(inv2, 180, "b2")));
	at(f, 64 * T1 - 1 + 60000);
	assert_true(rx_resp(f, mkresp(inv2, 180, "b2"))); /* restarts C */
	at(f, 64 * T1 - 1 + 60000 + 181000 - 1);
	assert_int_equal(r2->ntimeout, 0);
	at(f, 64 * T1 - 1 + 60000 + 181000);
	assert_int_equal(r2->ntimeout, 1);
	assert_int_equal(r2->timeout_code, 408);
	assert_int_equal(r2->nterm, 1);
	assert_int_equal(r->nterm, 1); /* M long gone */
	osip_message_free(inv);
	osip_message_free(inv2);
}

static void test_ict_486_ack(void **state)
{
	struct fx *f = *state;
	osip_message_t *inv, *ack, *resp;
	struct rec *r = client(f,
			       (struct rq){ .cseq = 42,
					    .extra = "Route: <sip:p1.example.com;lr>\r\n"
						     "Route: <sip:p2.example.com;lr>\r\n" },
			       &f->udp, &inv);
	osip_route_t *rt;
	char *s = NULL;

	at(f, 100);
	resp = mkresp(inv, 486, "busy9");
	assert_true(rx_resp(f, resp));
	assert_int_equal(r->t->state, TXN_COMPLETED);
	assert_int_equal(r->nresp, 1);
	assert_int_equal(r->codes[0], 486);
	assert_int_equal(f->nsent, 2);

	ack = sent_msg(f, 1);
	assert_true(MSG_IS_REQUEST(ack));
	assert_string_equal(ack->sip_method, "ACK");
	assert_int_equal(osip_uri_to_str(ack->req_uri, &s), 0);
	assert_string_equal(s, "sip:bob@sipha.test");
	osip_free(s);
	assert_int_equal(osip_list_size(&ack->vias), 1);
	assert_string_equal(branch_of(ack), branch_of(inv));
	assert_string_equal(to_tag_of(ack), "busy9");
	assert_string_equal(ack->cseq->number, "42");
	assert_string_equal(ack->cseq->method, "ACK");
	assert_string_equal(ack->call_id->number, inv->call_id->number);
	assert_int_equal(osip_from_tag_match(ack->from, inv->from), 0);
	assert_int_equal(osip_list_size(&ack->routes), 2);
	rt = osip_list_get(&ack->routes, 0);
	assert_string_equal(rt->url->host, "p1.example.com");
	rt = osip_list_get(&ack->routes, 1);
	assert_string_equal(rt->url->host, "p2.example.com");
	osip_message_free(ack);

	/* Completed: no more Timer A; a retransmitted 486 gets the ACK again
	 * and is not delivered again. */
	at(f, 10000);
	assert_int_equal(f->nsent, 2);
	assert_true(rx_resp(f, mkresp(inv, 486, "busy9")));
	assert_int_equal(f->nsent, 3);
	assert_true(sent_is(f, 2, "ACK"));
	assert_int_equal(f->sent[2].len, f->sent[1].len);
	assert_memory_equal(f->sent[2].buf, f->sent[1].buf, f->sent[1].len);
	assert_int_equal(r->nresp, 1);

	/* Timer D = 32 s from the 486. */
	at(f, 100 + 32000 - 1);
	assert_int_equal(r->nterm, 0);
	at(f, 100 + 32000);
	assert_int_equal(r->nterm, 1);
	assert_int_equal(txn_count(f->tl), 0);
	osip_message_free(inv);
}

static void test_build_ack_direct(void **state)
{
	osip_message_t *inv = mkreq(&(struct rq){ .branch = "z9hG4bKba1", .cseq = 7 });
	osip_message_t *resp = mkresp(inv, 503, "t503"), *ack = NULL;

	(void)state;
	assert_int_equal(txn_build_ack(inv, resp, &ack), 0);
	assert_string_equal(ack->sip_method, "ACK");
	assert_string_equal(branch_of(ack), "z9hG4bKba1");
	assert_string_equal(ack->cseq->number, "7");
	assert_string_equal(to_tag_of(ack), "t503");
	assert_int_equal(osip_list_size(&ack->routes), 0);
	osip_message_free(ack);
	/* Wrong way round, or missing parts: refused, nothing leaked. */
	assert_int_equal(txn_build_ack(resp, inv, &ack), -EINVAL);
	assert_null(ack);
	assert_int_equal(txn_build_ack(inv, NULL, &ack), -EINVAL);
	osip_message_free(resp);
	osip_message_free(inv);
}

/* ---- non-INVITE client ------------------------------------------------------------------ */

static void test_nict_timer_e_f(void **state)
{
	struct fx *f = *state;
	osip_message_t *bye;
	struct rec *r = client(f, (struct rq){ .method = "BYE", .to_tag = "x" }, &f->udp, &bye);
	/* Timer E: T1, 2T1, 4T1, then T2. */
	static const uint64_t e[] = { 0,     500,   1500,  3500,  7500, 11500,
				      15500, 19500, 23500, 27500, 31500 };

	assert_int_equal(r->t->kind, TXN_NICT);
	assert_int_equal(r->t->state, TXN_TRYING);
	at(f, 64 * T1 - 1);
	check_times(f, 0, e, 11);
	for (size_t i = 0; i < f->nsent; i++)
		assert_true(sent_is(f, i, "BYE"));
	assert_int_equal(r->ntimeout, 0);
	at(f, 64 * T1); /* Timer F */
	assert_int_equal(r->ntimeout, 1);
	assert_int_equal(r->timeout_code, 408);
	assert_int_equal(r->nterm, 1);
	assert_int_equal(f->nsent, 11);
	osip_message_free(bye);
}

static void test_nict_proceeding_completed(void **state)
{
	struct fx *f = *state;
	osip_message_t *req;
	struct rec *r = client(f, (struct rq){ .method = "OPTIONS" }, &f->udp, &req);
	/* E at 500, then 1xx at 600: the E armed for 1500 fires, then every T2. */
	static const uint64_t e[] = { 0, 500, 1500, 5500, 9500 };

	at(f, 600);
	assert_true(rx_resp(f, mkresp(req, 100, NULL)));
	assert_int_equal(r->t->state, TXN_PROCEEDING);
	assert_int_equal(r->nresp, 1);
	at(f, 9500);
	check_times(f, 0, e, 5);

	assert_true(rx_resp(f, mkresp(req, 200, "o1")));
	assert_int_equal(r->t->state, TXN_COMPLETED);
	assert_int_equal(r->nresp, 2);
	assert_int_equal(r->codes[1], 200);
	/* Completed: finals absorbed, no retransmission, K = T4. */
	assert_true(rx_resp(f, mkresp(req, 200, "o1")));
	assert_true(rx_resp(f, mkresp(req, 500, "o1")));
	assert_int_equal(r->nresp, 2);
	at(f, 9500 + T4 - 1);
	assert_int_equal(f->nsent, 5);
	assert_int_equal(r->nterm, 0);
	at(f, 9500 + T4);
	assert_int_equal(r->nterm, 1);
	assert_int_equal(r->ntimeout, 0);
	osip_message_free(req);
}

static void test_nict_tcp(void **state)
{
	struct fx *f = *state;
	osip_message_t *req;
	struct rec *r =
		client(f, (struct rq){ .method = "REGISTER", .proto = "TCP" }, &f->tcp, &req);

	at(f, 20000);
	assert_int_equal(f->nsent, 1);
	assert_true(rx_resp(f, mkresp(req, 401, "r")));
	assert_int_equal(r->nresp, 1);
	assert_int_equal(r->nterm, 1); /* K = 0 */
	assert_int_equal(txn_count(f->tl), 0);
	osip_message_free(req);
}

/* ---- transport failure ------------------------------------------------------------------- */

static void test_client_transport_failure(void **state)
{
	struct fx *f = *state;
	osip_message_t *inv, *bye;
	struct rec *ri = client(f, (struct rq){ 0 }, &f->udp, &inv);
	struct rec *rb = client(f, (struct rq){ .method = "BYE", .callid = "b" }, &f->udp, &bye);
	char branch[64];
	struct txn *t = (struct txn *)1;
	osip_message_t *req;

	/* A retransmission that cannot be sent: 503, Terminated. */
	f->send_err = -ENETUNREACH;
	at(f, T1);
	assert_int_equal(ri->ntimeout, 1);
	assert_int_equal(ri->timeout_code, 503);
	assert_int_equal(rb->ntimeout, 1);
	assert_int_equal(rb->timeout_code, 503);
	assert_int_equal(ri->nterm + rb->nterm, 2);
	assert_int_equal(txn_count(f->tl), 0);

	/* The first send failing: the caller hears it at once, no transaction. */
	txn_new_branch(f->tl, branch, sizeof(branch));
	req = mkreq(&(struct rq){ .method = "OPTIONS", .branch = branch });
	assert_int_equal(txn_request(f->tl, req, &f->udp, &user, NULL, &t), -ENETUNREACH);
	assert_null(t);
	assert_int_equal(txn_count(f->tl), 0);
	f->send_err = 0;
	osip_message_free(inv);
	osip_message_free(bye);
}

static struct sip_peer peer_at(const struct sip_peer *base, const char *ip, unsigned port)
{
	struct sip_peer p;

	assert_int_equal(sipt_peer_set(&p, base->proto, ip, port), 0);
	p.conn = base->conn;
	return p;
}

static void test_peer_set(void **state)
{
	struct sip_peer p;
	char buf[64];

	(void)state;
	assert_int_equal(sipt_peer_set(&p, SIP_PROTO_TCP, "10.1.2.3", 5070), 0);
	assert_int_equal(p.proto, SIP_PROTO_TCP);
	assert_int_equal(p.conn, 0);
	assert_string_equal(sipt_addr_str(&p.addr, buf, sizeof(buf)), "10.1.2.3:5070");
	assert_int_equal(sipt_peer_set(&p, SIP_PROTO_UDP, "fd99::1", 5060), 0);
	assert_string_equal(sipt_addr_str(&p.addr, buf, sizeof(buf)), "[fd99::1]:5060");
	assert_int_equal(p.addrlen, sizeof(struct sockaddr_in6));
	assert_int_equal(sipt_peer_set(&p, SIP_PROTO_UDP, "10.1.2", 5060), -EINVAL);
	assert_int_equal(sipt_peer_set(&p, SIP_PROTO_UDP, "sipha.test", 5060), -EINVAL);
	assert_int_equal(sipt_peer_set(&p, SIP_PROTO_UDP, "10.1.2.3", 65536), -EINVAL);
}

/* A TCP connection to an address failed (an asynchronous connect refused):
 * the client transactions over TCP to it that wait for their answer end
 * with 503 at once, not at Timer B/F; one already answered (Proceeding),
 * another address and UDP to the same one are untouched. */
static void test_tcp_connection_failed(void **state)
{
	struct fx *f = *state;
	struct sip_peer a = peer_at(&f->tcp, "10.0.0.1", 5060),
			b = peer_at(&f->tcp, "10.0.0.2", 5060),
			u = peer_at(&f->udp, "10.0.0.1", 5060);
	osip_message_t *m[5];
	struct rec *inv = client(f, (struct rq){ .proto = "TCP" }, &a, &m[0]);
	struct rec *bye = client(f, (struct rq){ .proto = "TCP", .method = "BYE", .callid = "c2" },
				 &a, &m[1]);
	struct rec *rang = client(f, (struct rq){ .proto = "TCP", .callid = "c3" }, &a, &m[2]);
	struct rec *other = client(f, (struct rq){ .proto = "TCP", .callid = "c4" }, &b, &m[3]);
	struct rec *udp = client(f, (struct rq){ .callid = "c5" }, &u, &m[4]);

	assert_true(rx_resp(f, mkresp(m[2], 180, "t")));
	assert_int_equal(txn_transport_error(f->tl, &u), 0); /* UDP has no connection */
	assert_int_equal(txn_transport_error(f->tl, &a), 2);
	assert_int_equal(inv->ntimeout, 1);
	assert_int_equal(inv->timeout_code, 503);
	assert_int_equal(inv->nterm, 1);
	assert_int_equal(bye->ntimeout, 1);
	assert_int_equal(bye->timeout_code, 503);
	assert_int_equal(bye->nterm, 1);
	assert_int_equal(rang->ntimeout + rang->nterm, 0);
	assert_int_equal(other->ntimeout + other->nterm, 0);
	assert_int_equal(udp->ntimeout + udp->nterm, 0);
	assert_int_equal(txn_count(f->tl), 3);
	assert_int_equal(txn_transport_error(f->tl, &a), 0); /* nothing left to fail */
	for (int i = 0; i < 5; i++)
		osip_message_free(m[i]);
}

/* ---- matching ----------------------------------------------------------------------------- */

static void test_match_two_branches(void **state)
{
	struct fx *f = *state;
	osip_message_t *a = mkreq(&(struct rq){ .branch = "z9hG4bKaaa" });
	osip_message_t *b = mkreq(&(struct rq){ .branch = "z9hG4bKbbb" });
	struct rec *ra = server(f, a, &f->udp), *rb = server(f, b, &f->udp);

	assert_ptr_not_equal(ra->t, rb->t);
	assert_int_equal(txn_count(f->tl), 2);
	assert_int_equal(txn_reply(ra->t, 180, NULL, "ta"), 0);
	assert_int_equal(txn_reply(rb->t, 183, NULL, "tb"), 0);
	assert_int_equal(rx(f, (struct rq){ .branch = "z9hG4bKbbb" }, &f->udp), TXN_RX_ABSORBED);
	assert_int_equal(sent_code(f, 2), 183);
	assert_int_equal(rx(f, (struct rq){ .branch = "z9hG4bKaaa" }, &f->udp), TXN_RX_ABSORBED);
	assert_int_equal(sent_code(f, 3), 180);
	/* Branches compare exactly. */
	assert_int_equal(rx(f, (struct rq){ .branch = "z9hG4bKAAA" }, &f->udp), TXN_RX_NEW);
	assert_int_equal(txn_count(f->tl), 3);
	osip_message_free(a);
	osip_message_free(b);
}

static void test_match_cancel(void **state)
{
	struct fx *f = *state;
	osip_message_t *inv = mkreq(&(struct rq){ .branch = "z9hG4bKcx" });
	struct rq cq = { .method = "CANCEL", .branch = "z9hG4bKcx" };
	osip_message_t *cancel = mkreq(&cq);
	struct rec *ri = server(f, inv, &f->udp), *rc;
	osip_message_t *other;

	/* Same branch, other method: its own transaction. */
	rc = server(f, cancel, &f->udp);
	assert_ptr_not_equal(rc->t, ri->t);
	assert_int_equal(rc->t->kind, TXN_NIST);
	assert_ptr_equal(txn_find_invite(f->tl, cancel), ri->t);
	assert_int_equal(txn_reply(rc->t, 200, NULL, NULL), 0);
	assert_int_equal(txn_reply(ri->t, 487, NULL, "t"), 0);
	/* The CANCEL's retransmission finds the CANCEL, not the INVITE. */
	assert_int_equal(rx(f, cq, &f->udp), TXN_RX_ABSORBED);
	assert_int_equal(f->nsent, 3);
	assert_int_equal(sent_code(f, 2), 200);
	/* A CANCEL for no INVITE, and a CANCEL from elsewhere. */
	other = mkreq(&(struct rq){ .method = "CANCEL", .branch = "z9hG4bKnone" });
	assert_null(txn_find_invite(f->tl, other));
	osip_message_free(other);
	other = mkreq(&(struct rq){
		.method = "CANCEL", .branch = "z9hG4bKcx", .sentby = "192.0.2.7:5060" });
	assert_null(txn_find_invite(f->tl, other));
	osip_message_free(other);
	/* A non-INVITE server transaction is no CANCEL target. */
	osip_message_free(inv);
	inv = mkreq(&(struct rq){ .method = "OPTIONS", .branch = "z9hG4bKopt" });
	server(f, inv, &f->udp);
	other = mkreq(&(struct rq){ .method = "CANCEL", .branch = "z9hG4bKopt" });
	assert_null(txn_find_invite(f->tl, other));
	osip_message_free(other);
	osip_message_free(inv);
	osip_message_free(cancel);
}

static void test_match_sent_by(void **state)
{
	struct fx *f = *state;
	osip_message_t *inv =
		mkreq(&(struct rq){ .branch = "z9hG4bKsb", .sentby = "Host.Example" });
	struct rec *r = server(f, inv, &f->udp);

	assert_int_equal(txn_reply(r->t, 180, NULL, "t"), 0);
	/* Host case and the default port do not matter... */
	assert_int_equal(
		rx(f, (struct rq){ .branch = "z9hG4bKsb", .sentby = "host.example:5060" }, &f->udp),
		TXN_RX_ABSORBED);
	assert_int_equal(f->nsent, 2);
	/* ...another sent-by does. */
	assert_int_equal(
		rx(f, (struct rq){ .branch = "z9hG4bKsb", .sentby = "host.example:5070" }, &f->udp),
		TXN_RX_NEW);
	assert_int_equal(
		rx(f, (struct rq){ .branch = "z9hG4bKsb", .sentby = "other.example" }, &f->udp),
		TXN_RX_NEW);
	assert_int_equal(txn_count(f->tl), 3);
	assert_int_equal(f->nsent, 2);
	osip_message_free(inv);
}

/* RFC 4475 §3.3.9 badbranch.dat, verbatim: the branch is the bare cookie. */
static const char badbranch[] = "OPTIONS sip:user@example.com SIP/2.0\r\n"
				"To: sip:user@example.com\r\n"
				"From: sip:caller@example.org;tag=33242\r\n"
				"Max-Forwards: 3\r\n"
				"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK\r\n"
				"Accept: application/sdp\r\n"
				"Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n\r\n"
				"CSeq: 8 OPTIONS\r\n"
				"l: 0\r\n"
				"\r\n";

static void test_match_rfc2543(void **state)
{
	struct fx *f = *state;
	osip_message_t *bb = parse(badbranch), *m;
	struct rec *r = server(f, bb, &f->udp), *ri;
	char other[sizeof(badbranch) + 8], *p;
	struct rq inv = { .branch = NULL, .callid = "old@192.0.2.1", .cseq = 5 };
	struct rq ack = inv;

	assert_int_equal(r->t->kind, TXN_NIST);
	assert_int_equal(txn_reply(r->t, 200, NULL, "bb"), 0);
	/* Its retransmission matches through the RFC 2543 rules... */
	assert_int_equal(rx_req(f, parse(badbranch), &f->udp, NULL), TXN_RX_ABSORBED);
	assert_int_equal(f->nsent, 2);
	assert_int_equal(sent_code(f, 1), 200);
	/* ...and another request with the same bare cookie does not. */
	memcpy(other, badbranch, sizeof(badbranch));
	p = strstr(other, "badbranch.");
	memcpy(p, "goodbran", 8);
	assert_int_equal(rx_req(f, parse(other), &f->udp, NULL), TXN_RX_NEW);
	assert_int_equal(txn_count(f->tl), 2);

	/* An INVITE with no branch at all. */
	m = mkreq(&inv);
	ri = server(f, m, &f->udp);
	osip_message_free(m);
	assert_int_equal(txn_reply(ri->t, 180, NULL, "old1"), 0);
	assert_int_equal(rx(f, inv, &f->udp), TXN_RX_ABSORBED);
	assert_int_equal(sent_code(f, f->nsent - 1), 180);
	/* Another CSeq, Call-ID or Request-URI is another transaction. */
	assert_int_equal(rx(f, (struct rq){ .callid = "old@192.0.2.1", .cseq = 6 }, &f->udp),
			 TXN_RX_NEW);
	assert_int_equal(rx(f,
			    (struct rq){ .callid = "old@192.0.2.1",
					 .cseq = 5,
					 .ruri = "sip:carol@sipha.test" },
			    &f->udp),
			 TXN_RX_NEW);
	/* A CANCEL finds it (its To tag is not compared, §9.2). */
	m = mkreq(&(struct rq){ .method = "CANCEL", .callid = "old@192.0.2.1", .cseq = 5 });
	assert_ptr_equal(txn_find_invite(f->tl, m), ri->t);
	osip_message_free(m);

	assert_int_equal(txn_reply(ri->t, 486, NULL, "old1"), 0);
	/* The ACK must carry our response's To tag. */
	ack.method = "ACK";
	ack.to_tag = "wrong";
	assert_int_equal(rx(f, ack, &f->udp), TXN_RX_ACK);
	assert_int_equal(ri->t->state, TXN_COMPLETED);
	ack.to_tag = "old1";
	assert_int_equal(rx(f, ack, &f->udp), TXN_RX_ABSORBED);
	assert_int_equal(ri->t->state, TXN_CONFIRMED);
	osip_message_free(bb);
}

static void test_match_responses(void **state)
{
	struct fx *f = *state;
	osip_message_t *inv, *resp;
	struct rec *r = client(f, (struct rq){ 0 }, &f->udp, &inv);
	osip_via_t *via;
	osip_generic_param_t *p = NULL;

	/* Unknown branch. */
	resp = mkresp(inv, 180, "x");
	via = osip_list_get(&resp->vias, 0);
	osip_via_param_get_byname(via, "branch", &p);
	p->gvalue[strlen(p->gvalue) - 1] ^= 1;
	assert_false(rx_resp(f, resp));
	/* Right branch, other CSeq method (the CANCEL's transaction). */
	resp = mkresp(inv, 200, "x");
	osip_free(resp->cseq->method);
	resp->cseq->method = osip_strdup("CANCEL");
	assert_false(rx_resp(f, resp));
	/* No Via at all. */
	resp = mkresp(inv, 200, "x");
	via = osip_list_get(&resp->vias, 0);
	osip_list_remove(&resp->vias, 0);
	osip_via_free(via);
	assert_false(rx_resp(f, resp));
	assert_int_equal(r->nresp, 0);
	assert_int_equal(r->t->state, TXN_CALLING);
	osip_message_free(inv);
}

/* ---- limits, bad input, ownership -------------------------------------------------------- */

static void test_bad_input(void **state)
{
	struct fx *f = *state;
	osip_message_t *m, *req;
	struct txn *t = NULL;
	struct rec *r;
	osip_via_t *via;

	/* A request without a Via cannot be matched. */
	m = mkreq(&(struct rq){ .branch = "z9hG4bKnv" });
	via = osip_list_get(&m->vias, 0);
	osip_list_remove(&m->vias, 0);
	osip_via_free(via);
	assert_int_equal(rx_req(f, m, &f->udp, &t), TXN_RX_ERROR);
	assert_null(t);
	/* RFC 2543 style without the fields its matching needs. */
	m = mkreq(&(struct rq){ 0 });
	osip_call_id_free(m->call_id);
	m->call_id = NULL;
	assert_int_equal(rx_req(f, m, &f->udp, NULL), TXN_RX_ERROR);
	/* A response is no request. */
	req = mkreq(&(struct rq){ .branch = "z9hG4bKr" });
	m = mkresp(req, 200, "x");
	assert_int_equal(txn_rx_request(f->tl, m, &f->udp, &t), TXN_RX_ERROR);
	assert_false(txn_rx_response(f->tl, req, &f->udp));
	osip_message_free(m);
	assert_int_equal(txn_count(f->tl), 0);

	/* Client requests the layer refuses; each is freed (ASan checks). */
	assert_int_equal(txn_request(f->tl, mkreq(&(struct rq){ 0 }), &f->udp, &user, NULL, &t),
			 -EINVAL); /* no branch */
	assert_int_equal(txn_request(f->tl, mkreq(&(struct rq){ .branch = "z9hG4bK" }), &f->udp,
				     &user, NULL, &t),
			 -EINVAL); /* bare cookie */
	assert_int_equal(txn_request(f->tl,
				     mkreq(&(struct rq){ .method = "ACK", .branch = "z9hG4bKk1" }),
				     &f->udp, &user, NULL, &t),
			 -EINVAL); /* an ACK is no transaction */
	assert_int_equal(
		txn_request(f->tl,
			    mkreq(&(struct rq){ .branch = "z9hG4bKk2", .cseq_method = "BYE" }),
			    &f->udp, &user, NULL, &t),
		-EINVAL);
	assert_int_equal(txn_request(f->tl, NULL, &f->udp, &user, NULL, &t), -EINVAL);
	assert_null(t);
	r = new_rec(f);
	assert_int_equal(txn_request(f->tl, mkreq(&(struct rq){ .branch = "z9hG4bKdup" }), &f->udp,
				     &user, r, &r->t),
			 0);
	assert_int_equal(txn_request(f->tl, mkreq(&(struct rq){ .branch = "z9hG4bKdup" }), &f->udp,
				     &user, NULL, &t),
			 -EEXIST);
	/* Server operations on a client transaction. */
	assert_int_equal(txn_reply(r->t, 200, NULL, NULL), -EINVAL);
	m = mkresp(req, 200, "x");
	assert_int_equal(txn_respond(r->t, m), -EINVAL);
	/* A request handed to txn_respond. */
	t = server(f, req, &f->udp)->t;
	assert_int_equal(txn_respond(t, req), -EINVAL);
	m->status_code = 99;
	assert_int_equal(txn_respond(t, m), -EINVAL);
	osip_message_free(m);
	assert_int_equal(txn_reply(t, 700, NULL, NULL), -EINVAL);
	assert_int_equal(f->nsent, 1);
	assert_int_equal(txn_count(f->tl), 2);
	assert_string_equal(txn_state_name(TXN_CONFIRMED), "Confirmed");
	assert_string_equal(txn_state_name(TXN_NSTATES), "?");
	osip_message_free(req);
}

static void test_limit(void **state)
{
	struct fx *f = *state;
	char b[64];
	struct txn *t = NULL;

	for (int i = 0; i < 3; i++) {
		osip_message_t *m;

		snprintf(b, sizeof(b), "z9hG4bKlim%d", i);
		m = mkreq(&(struct rq){ .branch = b });
		server(f, m, &f->udp);
		osip_message_free(m);
	}
	assert_int_equal(txn_count(f->tl), 3);
	assert_int_equal(rx_req(f, mkreq(&(struct rq){ .branch = "z9hG4bKlim3" }), &f->udp, &t),
			 TXN_RX_ERROR);
	assert_null(t);
	/* Retransmissions of live ones still match. */
	assert_int_equal(rx(f, (struct rq){ .branch = "z9hG4bKlim1" }, &f->udp), TXN_RX_ABSORBED);
	assert_int_equal(txn_request(f->tl, mkreq(&(struct rq){ .branch = "z9hG4bKlimc" }), &f->udp,
				     &user, NULL, &t),
			 -ENOBUFS);
	/* Room again once one ends. */
	assert_int_equal(txn_reply(f->recs[0].t, 200, NULL, "x"), 0);
	at(f, 64 * T1);
	assert_int_equal(txn_count(f->tl), 2);
	assert_int_equal(rx_req(f, mkreq(&(struct rq){ .branch = "z9hG4bKlim3" }), &f->udp, &t),
			 TXN_RX_NEW);
}

static void test_branch_unique(void **state)
{
	struct fx *f = *state;
	struct txn_layer *tl2 = NULL;
	struct txn_env env = { .tw = &f->tw, .send = fake_send, .send_arg = f };
	char a[40], b[40], prev[40] = "";

	for (int i = 0; i < 1000; i++) {
		txn_new_branch(f->tl, a, sizeof(a));
		assert_int_equal(strncmp(a, "z9hG4bK", 7), 0);
		assert_true(strlen(a) > 7 && strlen(a) < sizeof(a));
		assert_string_not_equal(a, prev);
		strcpy(prev, a);
	}
	/* Another layer (another node, a restart) has another salt. */
	assert_int_equal(txn_layer_new(&tl2, &env), 0);
	txn_new_branch(f->tl, a, sizeof(a));
	txn_new_branch(tl2, b, sizeof(b));
	assert_string_not_equal(a, b);
	assert_int_not_equal(strncmp(a, b, 19), 0);
	txn_layer_free(tl2);
}

/* Many transactions of every kind, in every state, with the layer freed in
 * the middle: each on_terminated exactly once (teardown checks), and ASan
 * finds neither leak nor use after free. */
static void test_ownership(void **state)
{
	struct fx *f = *state;
	osip_message_t *m[8];
	struct rec *r;
	int n = 0;

	m[n] = mkreq(&(struct rq){ .branch = "z9hG4bKo1" });
	server(f, m[n++], &f->udp); /* IST Proceeding */
	m[n] = mkreq(&(struct rq){ .branch = "z9hG4bKo2" });
	r = server(f, m[n++], &f->udp);
	assert_int_equal(txn_reply(r->t, 486, NULL, "x"), 0); /* IST Completed */
	m[n] = mkreq(&(struct rq){ .branch = "z9hG4bKo3" });
	r = server(f, m[n++], &f->udp);
	assert_int_equal(txn_reply(r->t, 200, NULL, "x"), 0); /* IST Accepted */
	m[n] = mkreq(&(struct rq){ .method = "BYE", .branch = "z9hG4bKo4" });
	server(f, m[n++], &f->udp); /* NIST Trying */
	client(f, (struct rq){ 0 }, &f->udp, &m[n++]); /* ICT Calling */
	r = client(f, (struct rq){ .callid = "o6" }, &f->udp, &m[n]);
	assert_true(rx_resp(f, mkresp(m[n++], 180, "y"))); /* ICT Proceeding */
	client(f, (struct rq){ .method = "INFO", .to_tag = "z" }, &f->udp, &m[n++]);
	/* A callback that starts a transaction: ICT on TCP, 486 → Terminated
	 * within txn_rx_response while its user opens another one. */
	r = client(f, (struct rq){ .callid = "o8", .proto = "TCP" }, &f->tcp, &m[n]);
	r->request_in_cb = true;
	assert_true(rx_resp(f, mkresp(m[n++], 486, "w")));
	assert_int_equal(r->nterm, 1);
	assert_false(r->request_in_cb);
	assert_int_equal(txn_count(f->tl), 8);
	at(f, 1000);
	for (int i = 0; i < n; i++)
		osip_message_free(m[i]);
	/* teardown: txn_layer_free with 8 live transactions */
}

static void test_layer_args(void **state)
{
	struct txn_layer *tl = (struct txn_layer *)1;
	struct txn_env env = { 0 };

	(void)state;
	assert_int_equal(txn_layer_new(&tl, &env), -EINVAL);
	assert_null(tl);
	assert_int_equal(txn_layer_new(&tl, NULL), -EINVAL);
	txn_layer_free(NULL);
	assert_int_equal(txn_count(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ist_2xx_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ist_486_udp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ist_486_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ist_timer_h, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nist_udp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nist_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_send_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ict_timer_a_b, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ict_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ict_180_200, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ict_200_from_calling_and_timer_c, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ict_486_ack, setup, teardown),
		cmocka_unit_test(test_build_ack_direct),
		cmocka_unit_test_setup_teardown(test_nict_timer_e_f, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nict_proceeding_completed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nict_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_transport_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_connection_failed, setup, teardown),
		cmocka_unit_test(test_peer_set),
		cmocka_unit_test_setup_teardown(test_match_two_branches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_match_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_match_sent_by, setup, teardown),
		cmocka_unit_test_setup_teardown(test_match_rfc2543, setup, teardown),
		cmocka_unit_test_setup_teardown(test_match_responses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_branch_unique, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ownership, setup, teardown),
		cmocka_unit_test(test_layer_args),
	};

	sipmsg_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* B2BUA call engine: see call.h.  The A side's INVITE server transaction
 * and the B side's INVITE client transaction are joined by struct call;
 * in-dialog requests are relayed as new requests of the other leg's dialog
 * (relay.c-style pairs below), responses come back the same way. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "server/call.h"
#include "server/call_int.h"
#include "server/server.h"

/* A relayed in-dialog request: the server transaction on one leg and the
 * client transaction that carries it on the other. */
struct relay {
	struct call *call;
	struct txn *st;
	struct txn *ct;
	struct leg *from; /* the leg the request came in on */
	struct leg *to;
	bool is_invite;
	bool is_bye;
};

/* --- helpers ----------------------------------------------------------------------- */

void copy_body(osip_message_t *dst, const osip_message_t *src)
{
	osip_body_t *b;
	int pos = 0;

	if (src->content_type) {
		osip_content_type_free(dst->content_type);
		dst->content_type = NULL;
		osip_content_type_clone(src->content_type, &dst->content_type);
	}
	while (osip_message_get_body(src, pos++, &b) >= 0 && b && b->body) {
		if (osip_message_set_body(dst, b->body, b->length))
			break;
	}
}

static bool has_body(const osip_message_t *m)
{
	osip_body_t *b = NULL;

	return osip_message_get_body(m, 0, &b) >= 0 && b && b->length;
}

static void contact_uri(struct server *srv, enum sip_proto proto, char *buf, size_t len)
{
	bool v6 = srv->adv.ss_family == AF_INET6;

	snprintf(buf, len, "sip:sipha@%s%s%s:%u%s", v6 ? "[" : "", srv->adv_host, v6 ? "]" : "",
		 srv->adv_port, proto == SIP_PROTO_TCP ? ";transport=tcp" : "");
}

void add_contact(struct server *srv, osip_message_t *m, enum sip_proto proto)
{
	char uri[128], hdr[140];

	contact_uri(srv, proto, uri, sizeof(uri));
	snprintf(hdr, sizeof(hdr), "<%s>", uri);
	osip_message_set_contact(m, hdr);
}

/* Sends a response on a server transaction, built from RESP_SRC's code,
 * reason and body when given (a relayed response), else CODE/REASON. */
static int reply(struct server *srv, struct txn *st, int code, const char *reason,
		 const char *to_tag, const osip_message_t *resp_src, bool contact)
{
	osip_message_t *r = NULL;
	int ret;

	if (!st || st->state == TXN_COMPLETED || st->state == TXN_CONFIRMED ||
	    st->state == TXN_TERMINATED || st->state == TXN_ACCEPTED)
		return -EINVAL;
	if (resp_src) {
		code = resp_src->status_code;
		reason = resp_src->reason_phrase;
	}
	ret = sipmsg_response(st->req, code, reason, to_tag, &r);
	if (ret)
		return ret;
	if (resp_src)
		copy_body(r, resp_src);
	if (contact)
		add_contact(srv, r, st->peer.proto);
	if (code >= 200 && code < 300)
		osip_message_set_allow(r, SIPHA_ALLOW);
	osip_message_set_header(r, "Server", "sipha");
	ret = txn_respond(st, r);
	osip_message_free(r);
	if (ret)
		srv->st.sip_tx_errors++;
	else
		srv->st.sip_tx_responses++;
	return ret;
}

/* Where requests to URI go: its host and port (IP literals; sipha does not
 * resolve names, RFC 3263), with transport=tcp honoured. */
int call_resolve(const char *uri_str, struct sip_peer *out)
{
	osip_uri_t *u = NULL;
	osip_uri_param_t *tp = NULL;
	unsigned port = 5060;
	int ret = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (osip_uri_init(&u) || osip_uri_parse(u, uri_str) || !u->host)
		goto out;
	if (u->port && (port = (unsigned)strtoul(u->port, NULL, 10)) - 1 > 65534)
		goto out;
	osip_uri_uparam_get_byname(u, "transport", &tp);
	out->proto = tp && tp->gvalue && !osip_strcasecmp(tp->gvalue, "tcp") ? SIP_PROTO_TCP
									     : SIP_PROTO_UDP;
	if (strchr(u->host, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->addr;
		char h[64];

		snprintf(h, sizeof(h), "%s", u->host[0] == '[' ? u->host + 1 : u->host);
		h[strcspn(h, "]")] = '\0';
		if (inet_pton(AF_INET6, h, &s6->sin6_addr) != 1) {
			ret = -EHOSTUNREACH;
			goto out;
		}
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		out->addrlen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&out->addr;

		if (inet_pton(AF_INET, u->host, &s4->sin_addr) != 1) {
			ret = -EHOSTUNREACH;
			goto out;
		}
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		out->addrlen = sizeof(*s4);
	}
	ret = 0;
out:
	osip_uri_free(u);
	return ret;
}

/* The peer in-dialog requests of leg L go to: the first route, or the
 * remote target; a leg that reached us over TCP keeps its connection. */
int leg_peer(struct leg *l, struct sip_peer *out)
{
	const char *target = l->dlg.nroutes ? l->dlg.routes[0] : l->dlg.remote_target;
	char buf[512];
	int ret;

	if (l->dlg.peer.proto == SIP_PROTO_TCP && l->dlg.peer.conn) {
		*out = l->dlg.peer;
		return 0;
	}
	/* A Route value is a name-addr: strip the angle brackets. */
	snprintf(buf, sizeof(buf), "%s", target[0] == '<' ? target + 1 : target);
	buf[strcspn(buf, ">")] = '\0';
	ret = call_resolve(buf, out);
	if (!ret && l->dlg.peer.addrlen && out->proto == SIP_PROTO_UDP)
		out->local = l->dlg.peer.local;
	return ret;
}

/* --- 2xx retransmission towards a UAS leg (§13.3.1.4) ------------------------------ */

void call_ok_retx(struct timer *t)
{
	struct uas_2xx *ok = container_of(t, struct uas_2xx, t);
	struct leg *l = container_of(ok, struct leg, ok);
	struct call *c = l->call;
	struct server *srv = c->srv;
	struct sip_peer to;
	uint64_t now = srv->tw->now;

	if (now >= ok->deadline) {
		/* No ACK within 64*T1: the dialog is confirmed in name only;
		 * end the call on both sides (§13.3.1.4). */
		pr_warn("call %llu: no ACK for 2xx, releasing", (unsigned long long)c->id);
		free(ok->buf);
		ok->buf = NULL;
		srv->st.calls_no_ack++;
		call_release(c, "no ACK");
		return;
	}
	if (!leg_peer(l, &to))
		srv_send(srv, &to, ok->buf, ok->len);
	ok->interval = ok->interval * 2 > srv->t2_ms ? srv->t2_ms : ok->interval * 2;
	timer_add(srv->tw, t, now + ok->interval);
}

/* Keeps BUF (a 2xx sent to leg L) to retransmit until L's ACK. */
int arm_2xx(struct call *c, struct leg *l, const char *buf, size_t len, uint32_t cseq,
	    bool reliable)
{
	struct server *srv = c->srv;

	free(l->ok.buf);
	l->ok.buf = malloc(len);
	if (!l->ok.buf)
		return -ENOMEM;
	memcpy(l->ok.buf, buf, len);
	l->ok.len = len;
	l->ok.cseq = cseq;
	if (reliable)
		return 0; /* TCP delivers it; still wait for the ACK */
	l->ok.interval = srv->t1_ms;
	l->ok.deadline = srv->tw->now + 64ull * srv->t1_ms;
	timer_add(srv->tw, &l->ok.t, srv->tw->now + l->ok.interval);
	return 0;
}

/* Sends the 2xx on the IST and keeps retransmitting it ourselves. */
static int reply_2xx(struct call *c, struct leg *l, struct txn *st, const osip_message_t *src)
{
	int ret = reply(c->srv, st, 200, "OK", l->dlg.local_tag, src, true);

	if (ret)
		return ret;
	return arm_2xx(c, l, st->out, st->outlen,
		       (uint32_t)strtoul(st->req->cseq->number, NULL, 10), st->reliable);
}

/* --- requests sipha sends as UAC ---------------------------------------------------- */

static int leg_request(struct call *c, struct leg *l, const char *method, uint32_t cseq,
		       const char *branch_in, osip_message_t **out, struct sip_peer *to)
{
	struct server *srv = c->srv;
	char branch[48], contact[128];
	int ret;

	ret = leg_peer(l, to);
	if (ret)
		return ret;
	if (branch_in)
		snprintf(branch, sizeof(branch), "%s", branch_in);
	else
		txn_new_branch(srv->txns, branch, sizeof(branch));
	contact_uri(srv, to->proto, contact, sizeof(contact));
	return dlg_build_request(
		&l->dlg, method, cseq, srv->adv_host, srv->adv_port, to->proto, branch,
		strcmp(method, "BYE") && strcmp(method, "ACK") ? contact : NULL, out);
}

void send_ack(struct call *c, struct leg *l, uint32_t cseq, const osip_message_t *body)
{
	struct server *srv = c->srv;
	osip_message_t *ack = NULL;
	struct sip_peer to;
	char *buf = NULL;
	size_t len;

	if (leg_request(c, l, "ACK", cseq, NULL, &ack, &to))
		return;
	if (body)
		copy_body(ack, body);
	if (!sipmsg_to_str(ack, &buf, &len)) {
		srv_send(srv, &to, buf, len);
		free(l->ack_buf);
		l->ack_buf = buf;
		l->ack_len = len;
		l->ack_cseq = cseq;
	}
	osip_message_free(ack);
}

static void send_bye(struct call *c, struct leg *l);

/* --- the B leg's INVITE client transaction -------------------------------------------- */

static void binv_terminated(struct txn *t, void *uarg)
{
	struct call *c = uarg;

	(void)t;
	c->b_inv = NULL;
	call_put(c);
}

static void send_cancel(struct call *c)
{
	struct server *srv = c->srv;
	osip_message_t *cancel = NULL;
	osip_via_t *via = NULL;
	struct txn *t;
	char cs[32];

	const osip_message_t *inv = c->b_inv ? c->b_inv->req : NULL;

	if (!inv)
		return;
	/* §9.1: same Request-URI, Call-ID, From, To, CSeq number and the
	 * INVITE's top Via (so the branch matches its transaction). */
	if (osip_message_init(&cancel))
		return;
	osip_message_set_method(cancel, osip_strdup("CANCEL"));
	osip_message_set_version(cancel, osip_strdup("SIP/2.0"));
	osip_uri_clone(inv->req_uri, &cancel->req_uri);
	osip_message_get_via(inv, 0, &via);
	if (via) {
		osip_via_t *v2 = NULL;

		osip_via_clone(via, &v2);
		osip_list_add(&cancel->vias, v2, -1);
	}
	osip_from_clone(inv->from, &cancel->from);
	osip_to_clone(inv->to, &cancel->to);
	osip_call_id_clone(inv->call_id, &cancel->call_id);
	snprintf(cs, sizeof(cs), "%s CANCEL", inv->cseq->number);
	osip_message_set_cseq(cancel, cs);
	osip_message_set_max_forwards(cancel, "70");
	txn_request(srv->txns, cancel, &c->b_inv->peer, NULL, NULL, &t);
}

static void binv_response(struct txn *t, void *uarg, osip_message_t *resp)
{
	struct call *c = uarg;
	struct server *srv = c->srv;
	int code = resp->status_code;

	if (code == 100)
		return;
	if (code < 200) {
		c->b_provisional = true;
		/* A gave up before B said anything: now the CANCEL may go. */
		if (c->cancel_pending) {
			c->cancel_pending = false;
			send_cancel(c);
			return;
		}
		if (c->state == CALL_RELEASED)
			return;
		if (resp->to && !dlg_uac_update(&c->b.dlg, resp) && c->b.dlg.remote_tag)
			dlg_index_add(c->srv->calls, &c->b);
		reply(srv, c->a_inv, code, NULL, c->a.dlg.local_tag, resp, true);
		if (c->state == CALL_DIALING) {
			c->state = CALL_RINGING;
			srv->st.calls_ringing++;
			replicate(c, false);
		}
		return;
	}
	if (code < 300) {
		uint32_t cseq = (uint32_t)strtoul(resp->cseq->number, NULL, 10);

		if (c->b.ack_buf && c->b.ack_cseq == cseq) {
			/* A retransmitted 2xx: our ACK was lost, send it again. */
			struct sip_peer to;

			if (!leg_peer(&c->b, &to))
				srv_send(srv, &to, c->b.ack_buf, c->b.ack_len);
			return;
		}
		if (c->b.ack_deferred)
			return; /* still waiting for A's ACK */
		dlg_uac_update(&c->b.dlg, resp);
		dlg_index_add(c->srv->calls, &c->b);
		if (c->state == CALL_RELEASED || c->cancelled) {
			/* Answered after A gave up (CANCEL race, §15): confirm and end. */
			send_ack(c, &c->b, cseq, NULL);
			send_bye(c, &c->b);
			return;
		}
		/* Delayed offer: the answer comes in A's ACK, so B's ACK waits. */
		if (has_body(t->req))
			send_ack(c, &c->b, cseq, NULL);
		else
			c->b.ack_deferred = true;
		c->b.ack_cseq = cseq;
		if (reply_2xx(c, &c->a, c->a_inv, resp)) {
			call_release(c, "cannot answer A");
			return;
		}
		c->a_inv = NULL;
		c->state = CALL_ESTABLISHED;
		c->answered_ms = srv->tw->now;
		srv->st.calls_answered++;
		replicate(c, false);
		timer_del(srv->tw, &c->t_ring);
		return;
	}
	/* 3xx–6xx: the ICT has ACKed it.  A redirect is not followed by a
	 * B2BUA that hides B, so A hears 480. */
	if (c->state == CALL_RELEASED)
		return;
	if (c->a_inv) {
		if (c->no_answer)
			reply(srv, c->a_inv, 480, "No Answer", c->a.dlg.local_tag, NULL, false);
		else if (code < 400)
			reply(srv, c->a_inv, 480, "Temporarily Unavailable", c->a.dlg.local_tag,
			      NULL, false);
		else if (!c->cancelled)
			reply(srv, c->a_inv, code, NULL, c->a.dlg.local_tag, resp, false);
	}
	srv->st.calls_failed++;
	call_release(c, "callee refused");
}

static void binv_timeout(struct txn *t, void *uarg, int code)
{
	struct call *c = uarg;

	(void)t;
	if (c->state == CALL_RELEASED)
		return;
	if (c->a_inv)
		reply(c->srv, c->a_inv, c->no_answer ? 480 : code,
		      c->no_answer ? "No Answer" : NULL, c->a.dlg.local_tag, NULL, false);
	c->srv->st.calls_failed++;
	call_release(c, code == 408 ? "callee timeout" : "transport error");
}

const struct txn_user call_binv_user = {
	.on_response = binv_response,
	.on_timeout = binv_timeout,
	.on_terminated = binv_terminated,
};

/* The A side's INVITE server transaction. */
static void ainv_terminated(struct txn *t, void *uarg)
{
	struct call *c = uarg;

	if (c->a_inv == t)
		c->a_inv = NULL;
	call_put(c);
}

static void ainv_no_ack(struct txn *t, void *uarg)
{
	(void)t;
	(void)uarg; /* our error answer was not ACKed: nothing left to undo */
}

const struct txn_user call_ainv_user = {
	.on_terminated = ainv_terminated,
	.on_no_ack = ainv_no_ack,
};

void call_ring_timeout(struct timer *t)
{
	struct call *c = container_of(t, struct call, t_ring);

	/* The caller hears 480 now; the callee is cancelled (at once, or at
	 * its first provisional answer: §9.1 forbids a CANCEL before one). */
	c->no_answer = true;
	c->srv->st.calls_no_answer++;
	reply(c->srv, c->a_inv, 480, "No Answer", c->a.dlg.local_tag, NULL, false);
	if (c->b_provisional)
		send_cancel(c);
	else
		c->cancel_pending = true;
	call_release(c, "no answer");
}

/* --- new calls ------------------------------------------------------------------------- */

/* The callee for DN USER: a registered contact of the extension (the one
 * with the highest q; forking is not done), or a static route's URI with
 * the dialed user put in when the route names none. */
static int pick_target(struct server *srv, const char *user, char *uri, size_t len,
		       struct sip_peer *to, int *fail_code)
{
	const struct cfg_dn *dn = cfg_dn_find(srv->cfg, user);
	const struct reg_aor *a = reg_find(srv->reg, user);

	if (dn && dn->kind == CFG_DN_ROUTING_POINT) {
		*fail_code = 486; /* routing points arrive with CTI */
		return -EAGAIN;
	}
	if (dn && dn->kind == CFG_DN_ROUTE) {
		osip_uri_t *u = NULL;
		char *s = NULL;

		if (osip_uri_init(&u) || osip_uri_parse(u, dn->uri)) {
			osip_uri_free(u);
			*fail_code = 500;
			return -EINVAL;
		}
		if (!u->username)
			u->username = osip_strdup(user);
		osip_uri_to_str(u, &s);
		osip_uri_free(u);
		snprintf(uri, len, "%s", s ? s : dn->uri);
		osip_free(s);
	} else if (a) {
		const struct reg_binding *best = a->bindings;

		for (const struct reg_binding *b = a->bindings; b; b = b->next)
			if (b->q > best->q)
				best = b;
		snprintf(uri, len, "%s", best->contact);
		/* Registered over a connection or from behind NAT: reach it the
		 * way its REGISTER came (flow reuse), not by its Contact. */
		if (best->src.addrlen) {
			*to = best->src;
			return 0;
		}
	} else {
		*fail_code = dn ? 480 : 404;
		return -ENOENT;
	}
	if (call_resolve(uri, to)) {
		*fail_code = 502;
		return -EHOSTUNREACH;
	}
	return 0;
}

static int build_b_invite(struct call *c, const osip_message_t *req, const char *target,
			  enum sip_proto proto, osip_message_t **out)
{
	struct server *srv = c->srv;
	char callid[128], tag[32], branch[48], contact[128];
	osip_header_t *mf = NULL;
	int ret;

	snprintf(callid, sizeof(callid), "b%016llx%08x@%s", (unsigned long long)c->id,
		 srv->tag_salt, srv->adv_host);
	srv_new_tag(srv, tag, sizeof(tag));
	ret = dlg_init_uac(&c->b.dlg, callid, tag, c->from, req->from->displayname, c->to, target,
			   0);
	if (ret)
		return ret;
	txn_new_branch(srv->txns, branch, sizeof(branch));
	contact_uri(srv, proto, contact, sizeof(contact));
	ret = dlg_build_request(&c->b.dlg, "INVITE", 0, srv->adv_host, srv->adv_port, proto, branch,
				contact, out);
	if (ret)
		return ret;
	/* Max-Forwards counts hops through us too (loop protection). */
	if (osip_message_get_max_forwards(req, 0, &mf) >= 0 && mf && mf->hvalue) {
		osip_header_t *own = NULL;
		long n = strtol(mf->hvalue, NULL, 10);
		char v[24];

		snprintf(v, sizeof(v), "%ld", n > 255 ? 69 : n > 0 ? n - 1 : 0);

		if (osip_message_get_max_forwards(*out, 0, &own) >= 0 && own) {
			osip_free(own->hvalue);
			own->hvalue = osip_strdup(v);
		}
	}
	osip_message_set_allow(*out, SIPHA_ALLOW);
	copy_body(*out, req);
	return 0;
}

/* §21.4.7: a caller whose Accept rules out every body type sipha relays
 * (application/sdp) cannot take the answer's session description. */
static bool accepts_sdp(const osip_message_t *req)
{
	osip_accept_t *a = NULL;
	int pos = 0;

	if (osip_message_get_accept(req, 0, &a) < 0)
		return true; /* no Accept: application/sdp is implied */
	while (osip_message_get_accept(req, pos++, &a) >= 0) {
		if (!a || !a->type)
			return true; /* an empty Accept value: lenient */
		if (!strcmp(a->type, "*") ||
		    (!osip_strcasecmp(a->type, "application") && a->subtype &&
		     (!strcmp(a->subtype, "*") || !osip_strcasecmp(a->subtype, "sdp"))))
			return true;
	}
	return false;
}

void call_on_invite(struct server *srv, struct txn *st, osip_message_t *req)
{
	struct call_table *ct = srv->calls;
	const char *user = req->req_uri ? req->req_uri->username : NULL;
	osip_header_t *mf = NULL;
	char target[512], tag[32], *s = NULL;
	struct sip_peer to;
	osip_message_t *inv = NULL;
	struct call *c;
	int code = 500;

	srv->st.calls_offered++;
	if (osip_message_get_max_forwards(req, 0, &mf) >= 0 && mf && mf->hvalue &&
	    strtol(mf->hvalue, NULL, 10) <= 0) {
		txn_reply(st, 483, "Too Many Hops", NULL);
		srv->st.calls_failed++;
		return;
	}
	if (!accepts_sdp(req)) {
		osip_message_t *r = NULL;

		srv_new_tag(srv, tag, sizeof(tag));
		if (!sipmsg_response(req, 406, "Not Acceptable", tag, &r)) {
			osip_message_set_accept(r, "application/sdp");
			txn_respond(st, r);
			osip_message_free(r);
		}
		srv->st.calls_failed++;
		return;
	}
	if (!user || pick_target(srv, user, target, sizeof(target), &to, &code)) {
		srv_new_tag(srv, tag, sizeof(tag));
		txn_reply(st, code, NULL, tag);
		srv->st.calls_failed++;
		return;
	}
	c = call_alloc(srv, ct->next_id++);
	if (!c) {
		txn_reply(st, 500, "Server Internal Error", NULL);
		return;
	}
	srv_new_tag(srv, tag, sizeof(tag));
	c->dn = strdup(user);
	if (osip_uri_to_str(req->from->url, &s) == 0) {
		c->from = strdup(s);
		osip_free(s);
	}
	if (osip_uri_to_str(req->to->url, &s) == 0) {
		c->to = strdup(s);
		osip_free(s);
	}
	if (!c->dn || !c->from || !c->to || dlg_init_uas(&c->a.dlg, req, tag)) {
		txn_reply(st, 500, "Server Internal Error", NULL);
		c->state = CALL_RELEASED;
		call_put(c);
		return;
	}
	c->a.dlg.peer = st->peer;
	/* In the table from here on: every exit below goes through release. */
	table_add(ct, c);
	c->a_inv = st;
	c->refs++;
	txn_set_user(st, &call_ainv_user, c);
	txn_reply(st, 100, "Trying", NULL);

	if (build_b_invite(c, req, target, to.proto, &inv)) {
		reply(srv, st, 500, "Server Internal Error", tag, NULL, false);
		call_release(c, "cannot build B INVITE");
		return;
	}
	/* Indexed at once by sipha's own tag: its responses find the call
	 * even on a node that took over from us. */
	dlg_index_add(ct, &c->b);
	c->b.dlg.peer = to;
	c->refs++;
	if (txn_request(srv->txns, inv, &to, &call_binv_user, c, &c->b_inv)) {
		c->refs--;
		reply(srv, st, 503, "Service Unavailable", tag, NULL, false);
		srv->st.calls_failed++;
		call_release(c, "cannot send B INVITE");
		return;
	}
	if (srv->cfg->sip.no_answer_ms)
		timer_add(srv->tw, &c->t_ring, srv->tw->now + srv->cfg->sip.no_answer_ms);
	replicate(c, false); /* with both INVITEs: a takeover can resume it */
}

void call_on_cancel(struct server *srv, struct txn *st, osip_message_t *req)
{
	struct txn *inv = txn_find_invite(srv->txns, req);
	struct call *c = inv && inv->user == &call_ainv_user ? inv->uarg : NULL;

	if (!c) {
		txn_reply(st, 481, "Call/Transaction Does Not Exist", NULL);
		return;
	}
	txn_reply(st, 200, "OK", c->a.dlg.local_tag);
	if (c->state != CALL_DIALING && c->state != CALL_RINGING)
		return; /* answered already: the caller will BYE */
	c->cancelled = true;
	srv->st.calls_cancelled++;
	reply(srv, c->a_inv, 487, "Request Terminated", c->a.dlg.local_tag, NULL, false);
	if (c->b_provisional)
		send_cancel(c);
	else
		c->cancel_pending = true;
	call_release(c, "cancelled by caller");
}

/* --- in-dialog requests ------------------------------------------------------------------ */

static void relay_terminated(struct txn *t, void *uarg)
{
	struct relay *r = uarg;

	if (r->st == t)
		r->st = NULL;
	if (r->ct == t)
		r->ct = NULL;
	if (!r->st && !r->ct) {
		call_put(r->call);
		free(r);
	}
}

static void relay_response(struct txn *t, void *uarg, osip_message_t *resp)
{
	struct relay *r = uarg;
	struct call *c = r->call;
	int code = resp->status_code;

	(void)t;
	if (code == 100)
		return;
	if (r->is_invite && code >= 200 && code < 300) {
		uint32_t cseq = (uint32_t)strtoul(resp->cseq->number, NULL, 10);

		if (r->to->ack_buf && r->to->ack_cseq == cseq) {
			struct sip_peer to;

			if (!leg_peer(r->to, &to))
				srv_send(c->srv, &to, r->to->ack_buf, r->to->ack_len);
			return;
		}
		dlg_refresh_target(&r->to->dlg, resp);
		send_ack(c, r->to, cseq, NULL);
		if (r->st)
			reply_2xx(c, r->from, r->st, resp);
		return;
	}
	if (code >= 200 && code < 300)
		dlg_refresh_target(&r->to->dlg, resp);
	if (r->is_bye && (code == 481 || code == 408)) {
		/* The other side's dialog is gone (after a takeover, say): this
		 * side's with sipha still ends with 200 (§15.1.2). */
		if (r->st)
			reply(c->srv, r->st, 200, "OK", r->from->dlg.local_tag, NULL, false);
	} else if (r->st) {
		reply(c->srv, r->st, code, NULL, r->from->dlg.local_tag, resp, r->is_invite);
	}
	if (r->is_bye && code >= 200)
		call_release(c, "BYE answered");
}

static void relay_timeout(struct txn *t, void *uarg, int code)
{
	struct relay *r = uarg;

	(void)t;
	if (r->st && r->is_bye)
		reply(r->call->srv, r->st, 200, "OK", r->from->dlg.local_tag, NULL, false);
	else if (r->st)
		reply(r->call->srv, r->st, code, NULL, r->from->dlg.local_tag, NULL, false);
	if (r->is_bye)
		call_release(r->call, "BYE unanswered");
}

static const struct txn_user relay_user = {
	.on_response = relay_response,
	.on_timeout = relay_timeout,
	.on_terminated = relay_terminated,
};

static void bye_terminated(struct txn *t, void *uarg)
{
	(void)t;
	call_put(uarg);
}

static const struct txn_user bye_user = {
	.on_terminated = bye_terminated,
};

/* A BYE of sipha's own (not relayed), e.g. after a CANCEL race. */
static void send_bye(struct call *c, struct leg *l)
{
	osip_message_t *bye = NULL;
	struct sip_peer to;
	struct txn *t;

	if (l->bye_sent || leg_request(c, l, "BYE", 0, NULL, &bye, &to))
		return;
	l->bye_sent = true;
	c->refs++;
	if (txn_request(c->srv->txns, bye, &to, &bye_user, c, &t))
		c->refs--;
}

bool call_on_indialog(struct server *srv, struct txn *st, osip_message_t *req)
{
	struct leg *from, *to;
	struct call *c;
	struct relay *r;
	osip_message_t *out = NULL;
	struct sip_peer dst;
	enum sip_method m = sipmsg_method_id(req->sip_method);

	from = dlg_find(srv->calls, req, false);
	if (!from)
		return false;
	c = from->call;
	to = from == &c->a ? &c->b : &c->a;
	if (!dlg_check_remote_cseq(&from->dlg, req)) {
		txn_reply(st, 500, "Out of Order CSeq", from->dlg.local_tag);
		return true;
	}
	if (from->dlg.peer.proto == SIP_PROTO_TCP)
		from->dlg.peer = st->peer; /* the connection may have been re-opened */
	if (m == SIP_BYE && (from->bye_sent || to->bye_rcvd || c->state != CALL_ESTABLISHED ||
			     !to->dlg.remote_tag)) {
		/* BYEs crossed, or the other leg never got confirmed: answer
		 * here and end the call; nothing to relay. */
		from->bye_rcvd = true;
		txn_reply(st, 200, "OK", from->dlg.local_tag);
		if (c->state != CALL_ESTABLISHED && c->b_inv)
			send_cancel(c);
		call_release(c, "BYE");
		return true;
	}
	if (!to->dlg.remote_tag || c->state == CALL_RELEASED) {
		txn_reply(st, 481, "Call/Transaction Does Not Exist", from->dlg.local_tag);
		return true;
	}
	if (m == SIP_INVITE || m == SIP_UPDATE)
		dlg_refresh_target(&from->dlg, req);
	if (leg_request(c, to, req->sip_method, 0, NULL, &out, &dst)) {
		txn_reply(st, 500, "Server Internal Error", from->dlg.local_tag);
		return true;
	}
	copy_body(out, req);
	r = calloc(1, sizeof(*r));
	if (!r) {
		osip_message_free(out);
		txn_reply(st, 500, "Server Internal Error", from->dlg.local_tag);
		return true;
	}
	r->call = c;
	r->from = from;
	r->to = to;
	r->st = st;
	r->is_invite = m == SIP_INVITE;
	r->is_bye = m == SIP_BYE;
	if (r->is_bye) {
		from->bye_rcvd = true;
		to->bye_sent = true;
	}
	c->refs++;
	txn_set_user(st, &relay_user, r);
	if (txn_request(srv->txns, out, &dst, &relay_user, r, &r->ct)) {
		r->ct = NULL;
		txn_reply(st, 503, "Service Unavailable", from->dlg.local_tag);
		if (r->is_bye)
			call_release(c, "BYE not relayable");
	}
	srv->st.indialog_relayed++;
	replicate(c, false); /* CSeqs and targets moved */
	return true;
}

void call_on_ack(struct server *srv, osip_message_t *ack)
{
	struct leg *l, *other;
	struct call *c;
	uint32_t cseq;

	l = ack->cseq ? dlg_find(srv->calls, ack, false) : NULL;
	cseq = l ? (uint32_t)strtoul(ack->cseq->number, NULL, 10) : 0;
	if (!l || !l->ok.buf || l->ok.cseq != cseq) {
		srv->st.sip_rx_ack_dropped++;
		return;
	}
	c = l->call;
	timer_del(srv->tw, &l->ok.t);
	free(l->ok.buf);
	l->ok.buf = NULL;
	other = l == &c->a ? &c->b : &c->a;
	if (other->ack_deferred) {
		other->ack_deferred = false;
		send_ack(c, other, other->ack_cseq, ack);
	}
	replicate(c, false); /* the standby stops holding the 2xx */
}

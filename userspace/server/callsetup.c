/* Setting a call up: a new INVITE finds its callee and becomes two legs,
 * the caller's INVITE server transaction (A) and sipha's INVITE client
 * transaction to the callee (B), joined until B answers, refuses, times
 * out or is cancelled (by the caller or the no-answer timer). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rand.h"
#include "server/call.h"
#include "server/call_int.h"
#include "server/server.h"

/* --- the B leg's INVITE client transaction -------------------------------------------- */

static bool has_body(const osip_message_t *m)
{
	osip_body_t *b = NULL;

	return osip_message_get_body(m, 0, &b) >= 0 && b && b->length;
}

static void binv_terminated(struct txn *t, void *uarg)
{
	struct call *c = uarg;

	(void)t;
	c->b_inv = NULL;
	call_put(c);
}

void send_cancel(struct call *c)
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
		call_reply(srv, c->a_inv, code, NULL, c->a.dlg.local_tag, resp, true);
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
			call_reply(srv, c->a_inv, 480, "No Answer", c->a.dlg.local_tag, NULL,
				   false);
		else if (code < 400)
			call_reply(srv, c->a_inv, 480, "Temporarily Unavailable",
				   c->a.dlg.local_tag, NULL, false);
		else if (!c->cancelled)
			call_reply(srv, c->a_inv, code, NULL, c->a.dlg.local_tag, resp, false);
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
		call_reply(c->srv, c->a_inv, c->no_answer ? 480 : code,
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

	if (c->state == CALL_QUEUED) {
		call_route_timeout(c);
		return;
	}
	/* The caller hears 480 now; the callee is cancelled (at once, or at
	 * its first provisional answer: §9.1 forbids a CANCEL before one). */
	c->no_answer = true;
	c->srv->st.calls_no_answer++;
	call_reply(c->srv, c->a_inv, 480, "No Answer", c->a.dlg.local_tag, NULL, false);
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
int call_pick_target(struct server *srv, const char *user, char *uri, size_t len,
		     struct sip_peer *to, int *fail_code)
{
	const struct cfg_dn *dn = cfg_dn_find(srv->cfg, user);
	const struct reg_aor *a = reg_find(srv->reg, user);

	if (dn && dn->kind == CFG_DN_ROUTING_POINT) {
		*fail_code = 486; /* a routing point is a queue, not a callee */
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

	char r[33];

	/* 128 random bits: unique, and not derived from the call's id (a
	 * sequence an attacker could follow). */
	rnd_hex(r, 16);
	snprintf(callid, sizeof(callid), "b%s@%s", r, srv->adv_host);
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

struct call *call_open(struct server *srv, struct txn *st, const osip_message_t *req,
		       const char *user)
{
	struct call_table *ct = srv->calls;
	struct call *c = call_alloc(srv, ct->next_id++);
	char tag[32], *s = NULL;

	if (!c) {
		txn_reply(st, 500, "Server Internal Error", NULL);
		return NULL;
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
		return NULL;
	}
	c->a.dlg.peer = st->peer;
	/* In the table from here on: every exit below goes through release. */
	table_add(ct, c);
	c->a_inv = st;
	c->refs++;
	txn_set_user(st, &call_ainv_user, c);
	return c;
}

void call_on_invite(struct server *srv, struct txn *st, osip_message_t *req)
{
	struct call_table *ct = srv->calls;
	const char *user = req->req_uri ? req->req_uri->username : NULL;
	osip_header_t *mf = NULL;
	const struct cfg_dn *dn;
	char target[512], tag[32];
	struct sip_peer to;
	struct call *c;
	int code = 500;

	c = call_pending_for(ct, req);
	if (c) {
		/* The caller's INVITE again, for a call taken over and not
		 * resumed yet: this transaction is the call's, not a new call. */
		call_resume_now(c, st);
		return;
	}
	srv->st.calls_offered++;
	if (calls_count(ct) >= srv->cfg->sip.max_calls) {
		srv->st.calls_overload++;
		srv->st.calls_failed++;
		log_warn_rl(&srv->rl_calls, srv->tw->now,
			    "sip: INVITE answered 503: max_calls (%u) calls up",
			    srv->cfg->sip.max_calls);
		srv_reply_full(srv, st, req);
		return;
	}
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
	dn = user ? cfg_dn_find(srv->cfg, user) : NULL;
	if (dn && dn->kind == CFG_DN_ROUTING_POINT) {
		call_queue(srv, st, req, user);
		return;
	}
	if (!user || call_pick_target(srv, user, target, sizeof(target), &to, &code)) {
		srv_new_tag(srv, tag, sizeof(tag));
		txn_reply(st, code, NULL, tag);
		srv->st.calls_failed++;
		return;
	}
	c = call_open(srv, st, req, user);
	if (!c)
		return;
	txn_reply(st, 100, "Trying", NULL);

	if (call_dial(c, req, target, &to))
		return;
	replicate(c, false); /* with both INVITEs: a takeover can resume it */
}

int call_dial(struct call *c, const osip_message_t *req, const char *target,
	      const struct sip_peer *to)
{
	struct server *srv = c->srv;
	osip_message_t *inv = NULL;

	if (build_b_invite(c, req, target, to->proto, &inv)) {
		call_reply(srv, c->a_inv, 500, "Server Internal Error", c->a.dlg.local_tag, NULL,
			   false);
		call_release(c, "cannot build B INVITE");
		return -ENOMEM;
	}
	/* Indexed at once by sipha's own tag: its responses find the call
	 * even on a node that took over from us. */
	dlg_index_add(srv->calls, &c->b);
	c->b.dlg.peer = *to;
	c->refs++;
	if (txn_request(srv->txns, inv, to, &call_binv_user, c, &c->b_inv)) {
		c->refs--;
		call_reply(srv, c->a_inv, 503, "Service Unavailable", c->a.dlg.local_tag, NULL,
			   false);
		srv->st.calls_failed++;
		call_release(c, "cannot send B INVITE");
		return -EIO;
	}
	if (srv->cfg->sip.no_answer_ms)
		timer_add(srv->tw, &c->t_ring, srv->tw->now + srv->cfg->sip.no_answer_ms);
	return 0;
}

void call_on_cancel(struct server *srv, struct txn *st, osip_message_t *req)
{
	struct txn *inv = txn_find_invite(srv->txns, req);
	struct call *c = inv && inv->user == &call_ainv_user ? inv->uarg : NULL;

	if (!inv && (c = call_pending_for(srv->calls, req))) {
		/* Taken over, not resumed yet: its INVITE transaction first. */
		c = call_resume_now(c, NULL) ? NULL : c;
		inv = c ? c->a_inv : NULL;
	}
	if (!c) {
		txn_reply(st, 481, "Call/Transaction Does Not Exist", NULL);
		return;
	}
	txn_reply(st, 200, "OK", c->a.dlg.local_tag);
	if (c->state != CALL_DIALING && c->state != CALL_RINGING && c->state != CALL_QUEUED)
		return; /* answered already: the caller will BYE */
	c->cancelled = true;
	srv->st.calls_cancelled++;
	call_reply(srv, c->a_inv, 487, "Request Terminated", c->a.dlg.local_tag, NULL, false);
	/* A queued call has no callee to cancel. */
	if (c->b_inv && c->b_provisional)
		send_cancel(c);
	else if (c->b_inv)
		c->cancel_pending = true;
	call_release(c, "cancelled by caller");
}

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cc/cc.h"
#include "core/log.h"
#include "core/rand.h"
#include "server/call.h"
#include "server/auth.h"
#include "server/cti.h"
#include "server/subscribe.h"
#include "server/control.h"
#include "server/server.h"
#include "garp.h"
#include "vip.h"
#include "ha/role.h"
#include "xdp/xdp.h"

void srv_new_tag(struct server *srv, char *buf, size_t len)
{
	char r[17];

	(void)srv;
	/* 64 random bits (RFC 3261 §19.3 asks for at least 32). */
	rnd_hex(r, 8);
	snprintf(buf, len, "s%s", r);
}

struct extra_hdr {
	const char *name;
	const char *value;
};

#define SRV_REPLY_MAX 8192 /* a response built in place; larger ones go through libosip2 */

/* The extra header lines of a response, and USER's bindings as Contacts. */
static ssize_t extra_text(struct server *srv, const struct extra_hdr *extra, size_t nextra,
			  const char *user_contacts, char *buf, size_t cap)
{
	size_t o = 0;
	ssize_t c;
	int n;

	n = snprintf(buf, cap, "Server: sipha\r\n");
	for (size_t i = 0; i < nextra && n > 0 && (size_t)n < cap - o; i++) {
		o += (size_t)n;
		if (strpbrk(extra[i].value, "\r\n"))
			return -EINVAL;
		n = snprintf(buf + o, cap - o, "%s: %s\r\n", extra[i].name, extra[i].value);
	}
	if (n < 0 || (size_t)n >= cap - o)
		return -ENOSPC;
	o += (size_t)n;
	if (!user_contacts)
		return (ssize_t)o;
	c = reg_contacts_text(srv->reg, user_contacts, srv->tw->now, buf + o, cap - o);
	return c < 0 ? c : (ssize_t)o + c;
}

/* The response built in place from the request's octets (sipmsg_reply):
 * 0 when sent, -EAGAIN when only libosip2 can build it. */
static int respond_fast(struct server *srv, struct txn *st, const struct sip_peer *from,
			const osip_message_t *req, const struct sipmsg_ix *ix, int code,
			const char *reason, const char *tag, const char *extra, size_t elen)
{
	struct sipmsg_reply_opt r = {
		.code = code, .reason = reason, .to_tag = tag, .extra = extra, .extralen = elen
	};
	char buf[SRV_REPLY_MAX];
	ssize_t n;

	/* a transaction kept the headers it echoes when it was made */
	if (st)
		return txn_reply_opt(st, &r);
	n = sipmsg_reply(req, ix, code, reason, tag, extra, elen, buf, sizeof(buf));
	if (n < 0)
		return -EAGAIN;
	return srv_send(srv, from, buf, (size_t)n);
}

/* Answers REQ: through its server transaction ST when there is one (so a
 * retransmitted request gets the same answer), else statelessly to FROM
 * (requests refused before a transaction exists).  IX, the index of the
 * octets REQ came from (or NULL), lets the answer be built in place. */
static void respond(struct server *srv, struct txn *st, const struct sip_peer *from,
		    const osip_message_t *req, const struct sipmsg_ix *ix, int code,
		    const char *reason, const struct extra_hdr *extra, size_t nextra,
		    const char *user_contacts)
{
	osip_message_t *resp = NULL;
	char tag[32], *buf = NULL, ebuf[SRV_REPLY_MAX / 2];
	size_t len = 0;
	ssize_t elen;
	int ret;

	srv_new_tag(srv, tag, sizeof(tag));
	if (ix) {
		elen = extra_text(srv, extra, nextra, user_contacts, ebuf, sizeof(ebuf));
		ret = elen < 0 ? -EAGAIN
			       : respond_fast(srv, st, from, req, ix, code, reason, tag, ebuf,
					      (size_t)elen);
		if (ret != -EAGAIN)
			goto done;
	}
	if (sipmsg_response(req, code, reason, tag, &resp)) {
		srv->st.sip_tx_errors++;
		return;
	}
	osip_message_set_header(resp, "Server", "sipha");
	for (size_t i = 0; i < nextra; i++)
		osip_message_set_header(resp, extra[i].name, extra[i].value);
	if (user_contacts && reg_fill_contacts(srv->reg, user_contacts, srv->tw->now, resp)) {
		srv->st.sip_tx_errors++;
		goto out;
	}
	if (st) {
		ret = txn_respond(st, resp);
	} else {
		ret = sipmsg_to_str(resp, &buf, &len);
		if (!ret)
			ret = srv_send(srv, from, buf, len);
		free(buf);
	}
done:
	if (ret)
		srv->st.sip_tx_errors++;
	else
		srv->st.sip_tx_responses++;
out:
	osip_message_free(resp);
}

void srv_reply_full(struct server *srv, struct txn *st, const osip_message_t *req)
{
	static const struct extra_hdr h = { "Retry-After", SRV_RETRY_AFTER };

	respond(srv, st, NULL, req, NULL, 503, "Service Unavailable", &h, 1, NULL);
}

static void handle_register(struct server *srv, struct txn *st, osip_message_t *req,
			    const struct sipmsg_ix *ix)
{
	struct reg_result res;
	char minexp[16];

	reg_register(srv->reg, req, ix, &st->peer, srv->tw->now, &res);
	if (res.code == 503) {
		srv->st.register_refused++;
		srv->st.register_overload++;
		log_warn_rl(&srv->rl_registrations, srv->tw->now,
			    "sip: REGISTER for a new address of record answered 503: "
			    "max_registrations (%u) reached",
			    srv->cfg->sip.max_registrations);
		srv_reply_full(srv, st, req);
		return;
	}
	if (res.code != 200) {
		struct extra_hdr h = { "Min-Expires", minexp };

		srv->st.register_refused++;
		snprintf(minexp, sizeof(minexp), "%u", res.min_expires);
		respond(srv, st, NULL, req, ix, res.code, res.reason, &h, res.code == 423, NULL);
		return;
	}
	srv->st.register_ok++;
	respond(srv, st, NULL, req, ix, 200, "OK", NULL, 0, res.aor_user);
}

static bool has_to_tag(const osip_message_t *m)
{
	osip_generic_param_t *p = NULL;

	return m->to && osip_to_get_tag(m->to, &p) == 0 && p && p->gvalue;
}

static void handle_new(struct server *srv, struct txn *st, osip_message_t *req,
		       const struct sipmsg_ix *ix)
{
	static const struct extra_hdr allow = { "Allow", SIPHA_ALLOW };
	enum sip_method m = sipmsg_method_id(req->sip_method);

	if (has_to_tag(req) && m != SIP_CANCEL && m != SIP_REGISTER) {
		if (call_on_indialog(srv, st, req) || sub_on_indialog(srv, st, req))
			return;
		/* §12.2.2: a request for a dialog we do not have. */
		srv->st.no_dialog++;
		respond(srv, st, NULL, req, ix, 481, "Call/Transaction Does Not Exist", NULL, 0,
			NULL);
		return;
	}
	/* REGISTER and initial INVITEs from extensions prove who they are. */
	if ((m == SIP_REGISTER || m == SIP_INVITE) && !auth_request(srv->auth, st, req))
		return;
	switch (m) {
	case SIP_REGISTER:
		handle_register(srv, st, req, ix);
		break;
	case SIP_OPTIONS: {
		const struct extra_hdr h[] = { allow, { "Accept", "application/sdp" } };

		srv->st.options_answered++;
		respond(srv, st, NULL, req, ix, 200, "OK", h, 2, NULL);
		break;
	}
	case SIP_INVITE:
		call_on_invite(srv, st, req);
		break;
	case SIP_CANCEL:
		call_on_cancel(srv, st, req);
		break;
	case SIP_BYE:
	case SIP_UPDATE:
	case SIP_INFO:
	case SIP_PRACK:
		srv->st.no_dialog++;
		respond(srv, st, NULL, req, ix, 481, "Call/Transaction Does Not Exist", NULL, 0,
			NULL);
		break;
	case SIP_SUBSCRIBE:
		sub_on_subscribe(srv, st, req);
		break;
	case SIP_NOTIFY:
	case SIP_REFER:
	case SIP_MESSAGE:
	case SIP_PUBLISH:
		srv->st.method_not_allowed++;
		respond(srv, st, NULL, req, ix, 405, "Method Not Allowed", &allow, 1, NULL);
		break;
	default:
		srv->st.method_not_implemented++;
		respond(srv, st, NULL, req, ix, 501, "Not Implemented", &allow, 1, NULL);
		break;
	}
}

/* A new transaction takes *REQP over (and *REQP becomes NULL). */
static void handle_request(struct server *srv, const struct sip_peer *from, osip_message_t **reqp,
			   const struct sipmsg_ix *ix)
{
	osip_message_t *req = *reqp;
	enum sip_method m = sipmsg_method_id(req->sip_method);
	struct sip_verdict v;
	struct txn *st = NULL;
	struct sip_peer p;

	srv->st.sip_rx_requests++;
	/* received= and rport= first: every answer, the stateless ones to a
	 * bad request included, copies this Via.  Without a top Via the
	 * check below answers 400 anyway; out of memory, the answers go
	 * without the amendment rather than not at all. */
	(void)sipmsg_via_received(req, (const struct sockaddr *)&from->addr);
	sipmsg_check_request_ix(req, ix, &v);
	if (v.code) {
		/* An ACK is never answered (RFC 3261 §17.2.1): drop it. */
		if (m == SIP_ACK) {
			srv->st.sip_rx_ack_dropped++;
			return;
		}
		struct extra_hdr h = { v.hname, v.hvalue };

		srv->st.sip_rx_rejected++;
		respond(srv, NULL, from, req, ix, v.code, v.reason, &h, v.hname != NULL, NULL);
		return;
	}
	if (from->proto == SIP_PROTO_TCP) {
		p = *from;
		p.reply_port = sipmsg_via_port(req);
		from = &p;
	}
	switch (txn_rx_request_take(srv->txns, reqp, ix, from, &st)) {
	case TXN_RX_NEW:
		handle_new(srv, st, st->req, ix);
		break;
	case TXN_RX_ABSORBED:
		srv->st.sip_rx_retransmissions++;
		break;
	case TXN_RX_ACK:
		call_on_ack(srv, req);
		break;
	case TXN_RX_ERROR:
		if (txn_count(srv->txns) >= srv->cfg->sip.max_transactions) {
			/* Overloaded: say so, statelessly, rather than leave the
			 * sender retransmitting into us (RFC 3261 §21.5.4). */
			struct extra_hdr h = { "Retry-After", SRV_RETRY_AFTER };

			srv->st.sip_rx_overload++;
			log_warn_rl(&srv->rl_transactions, srv->tw->now,
				    "sip: %s answered 503: max_transactions (%u) live",
				    req->sip_method, srv->cfg->sip.max_transactions);
			respond(srv, NULL, from, req, ix, 503, "Service Unavailable", &h, 1, NULL);
		} else {
			srv->st.sip_tx_errors++;
		}
		break;
	}
}

void srv_rx(void *arg, const struct sip_peer *from, const char *buf, size_t len)
{
	struct server *srv = arg;
	osip_message_t *msg = NULL;
	struct sipmsg_ix ix;

	srv->st.sip_rx_messages++;
	/* A source blocked for failed authentications (XDP drops it first
	 * when it is attached): not even parsed. */
	if (srv->auth && !auth_source_ok(srv->auth, from))
		return;
	if (sipmsg_parse_ix(buf, len, from->proto == SIP_PROTO_UDP, &ix, &msg)) {
		char a[64];

		srv->st.sip_rx_unparsable++;
		pr_debug("sip: unparsable message of %zu bytes from %s dropped", len,
			 sipt_addr_str(&from->addr, a, sizeof(a)));
		return;
	}
	if (MSG_IS_REQUEST(msg)) {
		handle_request(srv, from, &msg, &ix);
	} else {
		srv->st.sip_rx_responses++;
		if (sipmsg_check_response(msg) ||
		    (!txn_rx_response(srv->txns, msg, from) && !call_on_stray_response(srv, msg)))
			srv->st.sip_rx_responses_dropped++;
	}
	osip_message_free(msg);
}

static void set_adv(struct server *srv)
{
	const struct sipha_config *cfg = srv->cfg;
	uint16_t port = ntohs(((const struct sockaddr_in *)&cfg->sip.listen.ss)->sin_port);

	memset(&srv->adv, 0, sizeof(srv->adv));
	if (cfg->vip.present && cfg->vip.address.family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&srv->adv;

		s->sin_family = AF_INET;
		s->sin_addr = cfg->vip.address.addr.v4;
		s->sin_port = htons(port);
		srv->adv_is_vip = true;
	} else if (cfg->vip.present) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&srv->adv;

		s->sin6_family = AF_INET6;
		s->sin6_addr = cfg->vip.address.addr.v6;
		s->sin6_port = htons(port);
		srv->adv_is_vip = true;
	} else {
		memcpy(&srv->adv, &cfg->sip.listen.ss, cfg->sip.listen.len);
	}
	srv->adv_port = port;
	if (srv->adv.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&srv->adv)->sin_addr, srv->adv_host,
			  sizeof(srv->adv_host));
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&srv->adv)->sin6_addr, srv->adv_host,
			  sizeof(srv->adv_host));
}

/* Every change of a binding: the contact-centre layer's device state (an
 * extension with no binding left is unregistered), then HA replication. */
static void srv_binding_changed(void *arg, const struct reg_aor *a, const struct reg_binding *b,
				bool gone)
{
	struct server *srv = arg;
	bool registered = !gone;

	for (const struct reg_binding *o = a->bindings; gone && o; o = o->next)
		if (o != b)
			registered = true;
	cc_reg_update(srv->cc, a->user, registered);
	if (srv->repl.binding)
		srv->repl.binding(srv->repl.arg, a, b, gone);
}

static int cc_route_cb(void *arg, uint64_t call, const char *target, char *why, size_t n)
{
	return call_route_id(arg, call, target, why, n);
}

static int cc_release_cb(void *arg, uint64_t call, char *why, size_t n)
{
	return call_release_id(arg, call, why, n);
}

void srv_ha_state(struct server *srv, bool active)
{
	bool was = cc_publishing(srv->cc);

	cc_set_publishing(srv->cc, active);
	/* A node leaving the active role delivers nothing more: what it holds
	 * the new active has (and delivers) or numbers anew. */
	if (!active)
		cc_drop_held(srv->cc);
	else if (!was)
		subs_take_over(srv->subs);
	if (was != active)
		cti_node_state(srv->cti, active);
}

static int cc_start(struct server *srv)
{
	const struct sipha_config *cfg = srv->cfg;
	struct cc_engine eng = { cc_route_cb, cc_release_cb, srv };
	int ret;

	ret = cc_new(&srv->cc, cfg, cfg->cti.event_log_max, cfg->cti.event_log_ms);
	if (ret)
		return ret;
	cc_set_engine(srv->cc, &eng);
	ret = subs_new(&srv->subs, srv);
	if (ret)
		return ret;
	cc_set_device_watch(srv->cc, sub_device_changed, srv);
	cc_set_clock(srv->cc, &srv->tw->now, NULL);
	/* Alone, a node is the active one; the HA engine says otherwise. */
	cc_set_publishing(srv->cc, true);
	reg_set_notify(srv->reg, srv_binding_changed, srv);
	return 0;
}

int srv_core_init(struct server *srv, struct sipha_config *cfg, struct timer_wheel *tw,
		  srv_send_fn send, void *send_arg)
{
	struct reg_limits lim = {
		.min_expires = cfg->sip.min_expires,
		.max_expires = cfg->sip.max_expires,
		.default_expires = cfg->sip.default_expires,
		.max_contacts = cfg->sip.max_contacts,
		.max_aors = cfg->sip.max_registrations,
		.domain = cfg->sip.domain,
	};
	struct txn_env env = {
		.tw = tw,
		.send = send,
		.send_arg = send_arg,
		.t1_ms = 500,
		.t2_ms = 4000,
		.t4_ms = 5000,
		.max_txns = cfg->sip.max_transactions,
	};
	int ret;

	memset(srv, 0, sizeof(*srv));
	srv->cfg = cfg;
	srv->tw = tw;
	srv->send = send;
	srv->send_arg = send_arg;
	srv->started_ms = tw->now;
	srv->t1_ms = env.t1_ms;
	srv->t2_ms = env.t2_ms;
	srv->t4_ms = env.t4_ms;
	set_adv(srv);
	sipmsg_init();
	ret = reg_new(&srv->reg, tw, &lim);
	if (!ret)
		ret = txn_layer_new(&srv->txns, &env);
	if (!ret)
		ret = calls_new(&srv->calls, srv);
	if (!ret)
		ret = cc_start(srv);
	if (!ret && cfg->auth.present)
		ret = auth_new(&srv->auth, srv);
	if (ret)
		srv_core_fini(srv);
	return ret;
}

void srv_core_fini(struct server *srv)
{
	/* Shutting down changes device states: nobody is notified of that. */
	if (srv->cc)
		cc_set_device_watch(srv->cc, NULL, NULL);
	/* Calls and subscriptions first (they leave their tables), then the
	 * transactions that still refer to them. */
	calls_free(srv->calls);
	srv->calls = NULL;
	subs_clear(srv->subs);
	txn_layer_free(srv->txns);
	srv->txns = NULL;
	reg_free(srv->reg);
	srv->reg = NULL;
	subs_free(srv->subs);
	srv->subs = NULL;
	auth_free(srv->auth);
	srv->auth = NULL;
	cc_free(srv->cc);
	srv->cc = NULL;
}

static int transport_send(void *arg, const struct sip_peer *to, const char *buf, size_t len)
{
	struct server *srv = arg;

	return sipt_send(srv->tp, to, buf, len);
}

/* How often the daemon stamps its proof of life: twice per heartbeat, at
 * most every 20 ms, so the stamp is never much older than the last
 * heartbeat the peer heard. */
unsigned srv_xdp_tick_ms(const struct sipha_config *cfg)
{
	unsigned t = cfg->ha.present ? cfg->ha.heartbeat_ms / 2 : 20;

	return t < 1 ? 1 : t > 20 ? 20 : t;
}

/* Proof of life for the XDP program's dead man's switch (docs/ARCHITECTURE.md §3):
 * a daemon that stops ticking stops claiming the VIP. */
static void xdp_tick(struct timer *t)
{
	struct server *srv = container_of(t, struct server, xdp_tick);

	sxdp_heartbeat(srv->xdp);
	timer_add(srv->tw, t, srv->tw->now + srv_xdp_tick_ms(srv->cfg));
}

static int xdp_start(struct server *srv)
{
	const struct sipha_config *cfg = srv->cfg;
	uint8_t mac[6] = { 0 };
	int ret;

	ret = sxdp_open(&srv->xdp, cfg->node.id, cfg->xdp.interface, cfg->xdp.mode, srv->adv_port);
	if (ret)
		return ret;
	ret = sxdp_set_rates(srv->xdp, cfg->xdp.invite_rate, cfg->xdp.register_rate,
			     cfg->xdp.burst);
	if (ret)
		return ret;
	if (if_mac(cfg->xdp.interface, mac))
		pr_warn("xdp: cannot read the MAC of %s", cfg->xdp.interface);
	/* Opened before the HA link's death watch, so that a dying process
	 * closes it first (its files close in order of their numbers). */
	if (cfg->vip.present && (ret = sxdp_sentinel(srv->xdp, cfg->vip.address.family)))
		pr_warn("xdp: no sentinel socket (%s): a dead daemon is seen by its stamp only",
			strerror(-ret));
	/* Alone, a node is active and has no peer to steer to: the switch
	 * stays off (timeout 0) until the HA engine knows a peer. */
	ret = sxdp_set_role(srv->xdp, true, cfg->vip.present ? &cfg->vip.address : NULL, mac, NULL,
			    0);
	if (ret)
		return ret;
	timer_init(&srv->xdp_tick, xdp_tick);
	timer_add(srv->tw, &srv->xdp_tick, srv->tw->now + srv_xdp_tick_ms(cfg));
	pr_info("xdp: attached to %s (%s)", cfg->xdp.interface, sxdp_mode_name(cfg->xdp.mode));
	return 0;
}

/* A node without [ha] is its own active node: it holds the VIP for as
 * long as it runs (with [ha] the role machine moves it). */
static int vip_take(struct server *srv)
{
	const struct sipha_config *cfg = srv->cfg;
	int ret = vip_add(cfg->vip.interface, &cfg->vip.address);

	if (ret) {
		pr_err("vip: cannot add %s/%u to %s: %s", srv->adv_host, cfg->vip.address.prefixlen,
		       cfg->vip.interface, strerror(-ret));
		return ret;
	}
	srv->vip_owned = true;
	if (cfg->vip.garp_count &&
	    garp_send(cfg->vip.interface, &cfg->vip.address, cfg->vip.garp_count))
		pr_warn("vip: gratuitous ARP/NA on %s failed", cfg->vip.interface);
	pr_info("vip: %s/%u on %s", srv->adv_host, cfg->vip.address.prefixlen, cfg->vip.interface);
	return 0;
}

/* A TCP connection failed: requests sent on it end now (503) instead of
 * waiting 32 s for Timer B/F, e.g. a callee that does not listen. */
static void srv_tp_error(void *arg, const struct sip_peer *peer, int err)
{
	struct server *srv = arg;
	char a[64];
	size_t n = txn_transport_error(srv->txns, peer);

	if (n)
		pr_info("tcp %s: %s; %zu requests failed with it",
			sipt_addr_str(&peer->addr, a, sizeof(a)), strerror(-err), n);
}

int srv_init(struct server *srv, struct sipha_config *cfg, struct loop *l)
{
	int ret = srv_core_init(srv, cfg, loop_timers(l), transport_send, srv);

	if (ret)
		return ret;
	srv->loop = l;
	/* Send from the VIP only when it is ours to use; a wildcard listen
	 * address answers from where each request arrived. */
	ret = sipt_open(&srv->tp, l, &cfg->sip.listen, srv->adv_is_vip ? &srv->adv : NULL, srv_rx,
			srv);
	if (ret)
		goto err;
	sipt_set_error_fn(srv->tp, srv_tp_error);
	sipt_set_limits(srv->tp, &(struct sipt_limits){
					 .max_per_source = cfg->sip.tcp_max_per_source,
					 .silent_ms = cfg->sip.tcp_silent_ms,
					 .idle_ms = cfg->sip.tcp_idle_ms,
				 });
	if (cfg->vip.present && !cfg->ha.present) {
		ret = vip_take(srv);
		if (ret)
			goto err;
	}
	if (cfg->xdp.mode != CFG_XDP_OFF) {
		ret = xdp_start(srv);
		if (ret)
			goto err;
	}
	if (cfg->cti.present) {
		ret = cti_open(&srv->cti, l, srv);
		if (ret)
			goto err;
	}
	if (cfg->ha.present) {
		/* Not active until the role machine says so. */
		srv_ha_state(srv, false);
		ret = ha_start(&srv->ha, srv);
		if (ret)
			goto err;
	}
	ret = ctl_open(&srv->ctl, l, cfg->control.socket, srv);
	if (ret)
		goto err;
	return 0;
err:
	srv_fini(srv);
	return ret;
}

void srv_shutdown(struct server *srv, void (*stopped)(void *arg), void *arg)
{
	if (srv->ha)
		ha_shutdown(srv->ha, stopped, arg);
	else
		stopped(arg);
}

void srv_fini(struct server *srv)
{
	ctl_close(srv->ctl);
	srv->ctl = NULL;
	cti_close(srv->cti);
	srv->cti = NULL;
	/* Its bans leave the XDP blocklist while XDP is there. */
	auth_free(srv->auth);
	srv->auth = NULL;
	/* The VIP goes before the program that steers for it. */
	ha_stop(srv->ha);
	srv->ha = NULL;
	if (srv->xdp) {
		timer_del(srv->tw, &srv->xdp_tick);
		sxdp_close(srv->xdp);
		srv->xdp = NULL;
	}
	srv_core_fini(srv);
	sipt_close(srv->tp);
	srv->tp = NULL;
	if (srv->vip_owned) {
		int ret = vip_del(srv->cfg->vip.interface, &srv->cfg->vip.address);

		if (ret)
			pr_err("vip: cannot remove %s from %s: %s", srv->adv_host,
			       srv->cfg->vip.interface, strerror(-ret));
		else
			pr_info("vip: removed %s from %s", srv->adv_host, srv->cfg->vip.interface);
		srv->vip_owned = false;
	}
}

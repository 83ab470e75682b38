/* Routing points.  A call to a routing-point DN has only its A leg: the
 * caller's INVITE server transaction is held, answered 180, and the call
 * waits (state queued) until a CTI client routes it (RouteCall), the route
 * timeout sends it to the default route (or answers 480), ReleaseCall ends
 * it, or the caller cancels.  Routing gives it its B leg as any call has,
 * made from the caller's INVITE: from then on it is an ordinary call, and
 * the caller hears the target's answers on the INVITE it sent.
 *
 * The queue itself is the call table: a queued call is a call in state
 * CALL_QUEUED, replicated with the caller's INVITE like a call being set up,
 * so a takeover rebuilds its server transaction and a RouteCall on the new
 * active connects it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cc.h"
#include "core/log.h"
#include "server/call.h"
#include "server/call_int.h"
#include "server/server.h"

void call_queue(struct server *srv, struct txn *st, osip_message_t *req, const char *user)
{
	struct call *c = call_open(srv, st, req, user);

	if (!c)
		return;
	c->state = CALL_QUEUED;
	/* 180 with sipha's tag: the caller hears ringback and has an early
	 * dialog with sipha, whatever the target turns out to be. */
	call_reply(srv, st, 180, "Ringing", c->a.dlg.local_tag, NULL, true);
	timer_add(srv->tw, &c->t_ring, srv->tw->now + srv->cfg->cti.route_timeout_ms);
	replicate(c, false);
}

struct call *call_by_id(const struct call_table *ct, uint64_t id)
{
	/* Linear in live calls: a CTI request, not a datagram, pays for it. */
	for (struct call *c = ct->live; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static bool is_uri(const char *s)
{
	return !strncasecmp(s, "sip:", 4) || !strncasecmp(s, "sips:", 5);
}

/* Sends queued call C to TARGET.  0, or -errno with WHY and C still queued
 * (nothing was sent: the client may route it elsewhere); a failure after the
 * INVITE was built releases it (call_dial answers the caller). */
static int route(struct call *c, const char *target, char *why, size_t n)
{
	struct server *srv = c->srv;
	const struct cfg_dn *dn = NULL;
	struct sip_peer to;
	char uri[512];
	int code = 0, ret;

	if (strlen(target) >= sizeof(uri)) {
		snprintf(why, n, "target too long");
		return -EINVAL;
	}
	if (is_uri(target)) {
		snprintf(uri, sizeof(uri), "%s", target);
		if (call_resolve(uri, &to)) {
			snprintf(why, n, "target unreachable (an IP address is needed)");
			return -EHOSTUNREACH;
		}
	} else {
		dn = cfg_dn_find(srv->cfg, target);
		if (!dn) {
			snprintf(why, n, "unknown dn");
			return -ENOENT;
		}
		if (dn->kind == CFG_DN_ROUTING_POINT) {
			snprintf(why, n, "target is a routing point");
			return -EINVAL;
		}
		ret = call_pick_target(srv, target, uri, sizeof(uri), &to, &code);
		if (ret) {
			snprintf(why, n, "%s",
				 code == 480   ? "target not registered"
				 : code == 502 ? "target unreachable"
					       : "no route to target");
			return ret;
		}
	}
	free(c->routed_to);
	c->routed_to = strdup(target);
	if (!c->routed_to) {
		snprintf(why, n, "out of memory");
		return -ENOMEM;
	}
	timer_del(srv->tw, &c->t_ring);
	c->state = CALL_DIALING;
	if (call_dial(c, c->a_inv->req, uri, &to)) {
		snprintf(why, n, "the INVITE to the target could not be sent");
		return -EIO;
	}
	pr_debug("call %llu routed to %s", (unsigned long long)c->id, target);
	replicate(c, false);
	return 0;
}

int call_route_id(struct server *srv, uint64_t id, const char *target, char *why, size_t n)
{
	struct call *c = call_by_id(srv->calls, id);

	if (!c) {
		snprintf(why, n, "no such call");
		return -ENOENT;
	}
	if (c->state != CALL_QUEUED) {
		snprintf(why, n, "call not queued (%s)", call_state_name(c->state));
		return -EINVAL;
	}
	if (c->resume_pending && call_resume_now(c, NULL)) {
		snprintf(why, n, "call lost at the takeover");
		return -EIO;
	}
	if (!c->a_inv) {
		snprintf(why, n, "call has no pending INVITE");
		return -EIO;
	}
	return route(c, target, why, n);
}

void call_route_timeout(struct call *c)
{
	struct server *srv = c->srv;
	const char *def = srv->cfg->cti.default_route;
	char why[128];

	srv->st.calls_route_timeout++;
	if (def && !route(c, def, why, sizeof(why))) {
		pr_info("call %llu: no route in time; default route %s", (unsigned long long)c->id,
			def);
		return;
	}
	if (c->state != CALL_QUEUED)
		return; /* call_dial failed and released it */
	if (def)
		pr_warn("call %llu: default route %s failed: %s", (unsigned long long)c->id, def,
			why);
	call_reply(srv, c->a_inv, 480, "Temporarily Unavailable", c->a.dlg.local_tag, NULL, false);
	srv->st.calls_failed++;
	call_release(c, "route timeout");
}

int call_release_id(struct server *srv, uint64_t id, char *why, size_t n)
{
	struct call *c = call_by_id(srv->calls, id);

	if (!c) {
		snprintf(why, n, "no such call");
		return -ENOENT;
	}
	if (c->resume_pending)
		call_resume_now(c, NULL); /* its transactions first, to answer on */
	if (c->state == CALL_RELEASED)
		return 0; /* could not be resumed: it is gone */
	switch (c->state) {
	case CALL_QUEUED:
	case CALL_DIALING:
	case CALL_RINGING:
		/* As a no-answer: the caller hears 480, the callee a CANCEL (at
		 * its first provisional answer when it has given none yet). */
		if (c->a_inv)
			call_reply(srv, c->a_inv, 480, "Temporarily Unavailable",
				   c->a.dlg.local_tag, NULL, false);
		if (c->b_inv) {
			if (c->b_provisional)
				send_cancel(c);
			else
				c->cancel_pending = true;
		}
		srv->st.calls_failed++;
		break;
	case CALL_ESTABLISHED:
		send_bye(c, &c->a);
		send_bye(c, &c->b);
		break;
	case CALL_RELEASED:
		break;
	}
	call_release(c, "released by CTI");
	return 0;
}

/* --- the contact-centre layer's view of a call ------------------------------------- */

static const enum cc_call_state cc_states[] = {
	[CALL_DIALING] = CCS_DIALING,	      [CALL_RINGING] = CCS_RINGING,
	[CALL_ESTABLISHED] = CCS_ESTABLISHED, [CALL_QUEUED] = CCS_QUEUED,
	[CALL_RELEASED] = CCS_RELEASED,
};

/* The user part of a SIP URI ("sip:1001@host;x" → "1001"), or "". */
static void uri_user(const char *uri, char *out, size_t n)
{
	const char *p = uri, *at, *end;

	out[0] = '\0';
	if (!p)
		return;
	if (!strncasecmp(p, "sip:", 4))
		p += 4;
	else if (!strncasecmp(p, "sips:", 5))
		p += 5;
	else
		return;
	at = strchr(p, '@');
	if (!at)
		return;
	end = p + strcspn(p, ";:@");
	if (end > at)
		end = at;
	if ((size_t)(end - p) < n) {
		memcpy(out, p, (size_t)(end - p));
		out[end - p] = '\0';
	}
}

void call_cc_note(struct call *c, bool gone)
{
	struct server *srv = c->srv;
	char caller[EV_DN_MAX + 1];
	struct cc_call v;

	if (!srv->cc)
		return;
	uri_user(c->from, caller, sizeof(caller));
	v = (struct cc_call){
		.id = c->id,
		.state = gone ? CCS_RELEASED : cc_states[c->state],
		.dn = c->dn,
		.target = c->routed_to && !is_uri(c->routed_to) ? c->routed_to : NULL,
		.caller = caller[0] ? caller : NULL,
		.from = c->from,
		.to = c->to,
		.cause = c->release_why,
	};
	cc_call_update(srv->cc, &v);
}

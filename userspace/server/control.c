#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cc/cc.h"
#include "core/smalloc.h"
#include "core/log.h"
#include "server/call.h"
#include "server/control.h"
#include "server/auth.h"
#include "server/cti.h"
#include "server/subscribe.h"
#include "server/server.h"
#include "ha/clock.h"
#include "ha/link.h"
#include "ha/role.h"
#include "xdp/xdp.h"

#define CTL_MAX_LINE (64u << 10)

struct control {
	struct loop *l;
	struct server *srv;
	int fd;
	char *path;
	gid_t gid; /* the sipha group, when it exists */
	bool have_gid;
};

static json_t *refuse(const char *why, bool usage)
{
	return json_pack("{s:b, s:s, s:b}", "ok", 0, "error", why, "usage", usage);
}

static json_t *ok_obj(void)
{
	return json_pack("{s:b}", "ok", 1);
}

static const char *role_name(enum cfg_role r)
{
	return r == CFG_ROLE_PRIMARY ? "primary" : "backup";
}

static json_t *cmd_status(struct server *srv, json_t *args)
{
	const struct sipha_config *cfg = srv->cfg;
	json_t *o = ok_obj();

	(void)args;
	json_object_set_new(o, "node", json_string(cfg->node.id));
	struct ha_status hs = { .state = HA_ACTIVE };

	/* Alone (no [ha]) a node serves: it is the active one. */
	if (srv->ha)
		ha_get_status(srv->ha, &hs);
	json_object_set_new(o, "role", json_string(role_name(cfg->node.role)));
	json_object_set_new(o, "state", json_string(ha_state_name(hs.state)));
	/* "none" when the node runs alone, so no one looks for a peer. */
	json_object_set_new(o, "redundancy",
			    json_string(!cfg->ha.present		      ? "none"
					: cfg->node.redundancy == CFG_RED_HOT ? "hot"
									      : "warm"));
	json_object_set_new(o, "epoch", json_integer((json_int_t)hs.epoch));
	json_object_set_new(o, "peer_connected", json_boolean(hs.peer_connected));
	json_object_set_new(o, "in_sync", json_boolean(hs.in_sync));
	json_object_set_new(o, "sync_lag", json_integer((json_int_t)hs.sync_lag));
	if (srv->ha) {
		json_object_set_new(o, "peer", json_string(hs.peer));
		json_object_set_new(o, "takeovers", json_integer((json_int_t)hs.takeovers));
		json_object_set_new(o, "records_sent", json_integer((json_int_t)hs.records_sent));
		json_object_set_new(o, "records_applied",
				    json_integer((json_int_t)hs.records_applied));
	}
	json_object_set_new(o, "calls", json_integer((json_int_t)calls_count(srv->calls)));
	json_object_set_new(o, "registrations",
			    json_integer((json_int_t)reg_binding_count(srv->reg)));
	json_object_set_new(o, "aors", json_integer((json_int_t)reg_aor_count(srv->reg)));
	json_object_set_new(o, "subscriptions", json_integer((json_int_t)subs_count(srv->subs)));
	json_object_set_new(o, "agents_logged_in",
			    json_integer((json_int_t)cc_agents_logged_in(srv->cc)));
	json_object_set_new(o, "workers", json_integer(1));
	json_object_set_new(o, "ha", json_boolean(cfg->ha.present));
	json_object_set_new(o, "sip_address", json_string(srv->adv_host));
	json_object_set_new(o, "sip_port", json_integer(srv->adv_port));
	json_object_set_new(o, "uptime_ms",
			    json_integer((json_int_t)(srv->tw->now - srv->started_ms)));
	return o;
}

struct reg_list_ctx {
	json_t *list;
	const char *domain;
	uint64_t now;
};

static void add_binding(void *arg, const struct reg_aor *a, const struct reg_binding *b)
{
	struct reg_list_ctx *c = arg;
	uint64_t left = b->expires > c->now ? (b->expires - c->now + 999) / 1000 : 0;
	char aor[256];

	snprintf(aor, sizeof(aor), "sip:%s@%s", a->user, c->domain);
	json_array_append_new(c->list, json_pack("{s:s, s:s, s:I}", "aor", aor, "contact",
						 b->contact, "expires", (json_int_t)left));
}

static json_t *cmd_registrations(struct server *srv, json_t *args)
{
	struct reg_list_ctx c = { json_array(), srv->cfg->sip.domain, srv->tw->now };
	json_t *o = ok_obj();

	(void)args;
	reg_foreach(srv->reg, add_binding, &c);
	json_object_set_new(o, "registrations", c.list);
	return o;
}

static json_t *call_json(const struct call *c)
{
	char id[24];

	snprintf(id, sizeof(id), "%llu", (unsigned long long)c->id);
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", id, "state", call_state_name(c->state),
			 "from", c->from ? c->from : "", "to", c->to ? c->to : "", "dn",
			 c->dn ? c->dn : "");
}

static void add_call(void *arg, const struct call *c)
{
	json_array_append_new(arg, call_json(c));
}

static json_t *cmd_calls(struct server *srv, json_t *args)
{
	json_t *o = ok_obj(), *list = json_array();

	(void)args;
	calls_foreach(srv->calls, add_call, list);
	json_object_set_new(o, "calls", list);
	return o;
}

static json_t *cmd_agents(struct server *srv, json_t *args)
{
	json_t *o = ok_obj(), *list = json_array();

	(void)args;
	/* Logged-out agents stay known (their last state), so an operator
	 * sees who left; the list is in no particular order. */
	for (const struct agent *a = cc_agents(srv->cc)->list; a; a = a->next) {
		json_t *e = json_pack("{s:s, s:s, s:s}", "agent", a->id, "dn", a->dn, "state",
				      ag_state_name(a->state));

		if (e && a->reason[0])
			json_object_set_new(e, "reason", json_string(a->reason));
		json_array_append_new(list, e);
	}
	json_object_set_new(o, "agents", list);
	return o;
}

static json_t *cmd_vip(struct server *srv, json_t *args)
{
	const struct sipha_config *cfg = srv->cfg;
	json_t *o;
	char addr[80];

	(void)args;
	if (!cfg->vip.present)
		return refuse("no [vip] configured: this node serves on its listen address", false);
	o = ok_obj();
	snprintf(addr, sizeof(addr), "%s/%u", srv->adv_host, cfg->vip.address.prefixlen);
	json_object_set_new(o, "address", json_string(addr));
	json_object_set_new(o, "interface", json_string(cfg->vip.interface));
	/* Alone, the node holds the VIP while it runs; the kernel's view
	 * ("present") is added by siphactl through libnl. */
	if (srv->ha) {
		struct ha_status hs;

		ha_get_status(srv->ha, &hs);
		json_object_set_new(o, "expected", json_boolean(hs.state == HA_ACTIVE));
	} else {
		json_object_set_new(o, "expected", json_boolean(srv->vip_owned));
	}
	return o;
}

static json_t *cmd_xdp(struct server *srv, json_t *args)
{
	uint64_t c[SXDP_NCOUNTERS] = { 0 };
	json_t *o = ok_obj(), *counters = json_object();

	(void)args;
	struct sxdp_status xs = { 0 };

	/* Ask the kernel: a program detached from outside is not attached. */
	json_object_set_new(o, "attached",
			    json_boolean(srv->xdp && !sxdp_pinned_status(srv->cfg->node.id, &xs) &&
					 xs.attached));
	json_object_set_new(o, "mode", json_string(sxdp_mode_name(srv->cfg->xdp.mode)));
	json_object_set_new(o, "interface", json_string(srv->cfg->xdp.interface));
	if (srv->xdp && !sxdp_counters(srv->xdp, c))
		for (unsigned i = 0; i < SXDP_NCOUNTERS; i++)
			json_object_set_new(counters, sxdp_counter_name(i),
					    json_integer((json_int_t)c[i]));
	json_object_set_new(o, "counters", counters);
	return o;
}

static json_t *cmd_block(struct server *srv, json_t *args)
{
	const char *op = json_string_value(json_array_get(args, 0));
	const char *prefix = json_string_value(json_array_get(args, 1));
	int ret;

	if (json_array_size(args) != 2 || !op || !prefix ||
	    (strcmp(op, "add") && strcmp(op, "del")))
		return refuse("usage: block add|del PREFIX", true);
	if (!srv->xdp)
		return refuse("XDP is not attached on this node: no blocklist to change", false);
	ret = sxdp_block(srv->xdp, prefix, !strcmp(op, "add"));
	if (ret == -EINVAL)
		return refuse("not an IPv4 or IPv6 prefix", true);
	if (ret && !(ret == -ENOENT && !strcmp(op, "del")))
		return refuse(strerror(-ret), false);
	return ok_obj();
}

static json_t *cmd_switchover(struct server *srv, json_t *args)
{
	(void)args;
	const char *why = NULL;

	if (!srv->ha)
		return refuse("no [ha] configured: there is no peer to hand over to", false);
	if (ha_switchover(srv->ha, &why))
		return refuse(why, false);
	json_t *o = ok_obj();

	json_object_set_new(o, "state", json_string("standby"));
	return o;
}

static void metric(FILE *f, const char *node, const char *name, const char *type, const char *help,
		   uint64_t v)
{
	fprintf(f, "# HELP sipha_%s %s\n# TYPE sipha_%s %s\nsipha_%s{node=\"%s\"} %llu\n", name,
		help, name, type, name, node, (unsigned long long)v);
}

static void ha_metrics(FILE *f, const char *node, const struct ha *ha)
{
	const struct hal_stats *ls = ha_link_stats(ha);
	struct ha_clock_stats cs;
	struct ha_status hs;

	ha_get_status(ha, &hs);
	metric(f, node, "ha_takeovers", "counter", "times this node took the active role",
	       hs.takeovers);
	metric(f, node, "ha_demotions", "counter", "times this node left the active role",
	       hs.demotions);
	metric(f, node, "ha_records_sent", "counter",
	       "journal records produced for the standby (kept for it while it is away)",
	       hs.records_sent);
	metric(f, node, "ha_records_applied", "counter", "journal records applied as standby",
	       hs.records_applied);
	metric(f, node, "ha_snapshots", "counter", "snapshots sent to a standby", hs.snapshots);
	metric(f, node, "ha_resumes", "counter",
	       "standbys that got only the records they missed (no snapshot)", hs.resumes);
	metric(f, node, "ha_trailing_sent", "counter",
	       "calls that ended here after a handover, told to the new active", hs.trailing_sent);
	metric(f, node, "ha_trailing_applied", "counter",
	       "calls the old active ended after handing over, applied here", hs.trailing_applied);
	metric(f, node, "ha_late_sent", "counter",
	       "records made here while handing over, sent to the new active", hs.late_sent);
	metric(f, node, "ha_late_applied", "counter",
	       "records the old active made while handing over, applied here", hs.late_applied);
	if (ha_clock_counters(ha, &cs)) {
		metric(f, node, "ha_clock_sent", "counter", "HA clock datagrams sent", cs.sent);
		metric(f, node, "ha_clock_heard", "counter",
		       "HA clock datagrams heard from the peer", cs.heard);
		metric(f, node, "ha_clock_refused", "counter",
		       "HA clock datagrams refused: wrong address, tag, replayed, malformed",
		       cs.refused);
		metric(f, node, "ha_clock_silences", "counter",
		       "times the HA clock heard the peer fall silent", cs.silences);
		metric(f, node, "ha_clock_held", "counter",
		       "heartbeats not sent: the SIP loop showed no progress for stall_ms",
		       cs.held);
		metric(f, node, "ha_clock_late_ticks", "counter",
		       "HA clock ticks more than a heartbeat late", cs.late_ticks);
		metric(f, node, "ha_clock_realtime", "gauge",
		       "1 when the HA clock thread is real-time", cs.realtime);
	}
	metric(f, node, "ha_sync_lag", "gauge", "records sent and not yet acknowledged",
	       hs.sync_lag);
#define L(name, help) metric(f, node, "ha_link_" #name, "counter", help, ls->name);
	L(frames_in, "HA link frames received")
	L(frames_out, "HA link frames sent")
	L(bytes_in, "HA link bytes received")
	L(bytes_out, "HA link bytes sent")
	L(heartbeats_missed, "heartbeat intervals without a frame from the peer")
	L(ups, "times the HA link came up")
	L(downs, "times the HA link went down")
	L(peer_dead, "times the peer was declared dead")
	L(peer_gone, "up links the peer's kernel closed with no GOODBYE (its process died)")
	L(silences_forgiven, "link silences ignored: the HA clock still heard the peer")
	L(watches_sent, "death watches this node set on its peer while active")
	L(watches, "death watches the peer set on this node")
	L(watches_refused, "WATCH frames refused: no link, a second one, a wrong proof")
	L(decode_errors, "malformed bytes from the peer")
	L(backlog_overflows, "sends dropped the link: the peer did not read")
	L(strangers, "HA connections refused: not from the [ha] peer address")
	L(auth_failures, "HA connections refused: wrong or missing authentication")
	L(handshake_timeouts, "HA connections closed before they became the link (timeout_ms)")
#undef L
}

static void cc_metrics(FILE *f, const char *node, const struct server *srv)
{
	const struct cc_stats *cs = cc_stats(srv->cc);
	const struct evlog *log = cc_evlog(srv->cc);

	metric(f, node, "cti_events", "counter", "CTI events published", cs->events);
	metric(f, node, "cti_calls_queued", "counter", "calls queued on a routing point",
	       cs->queued);
	metric(f, node, "cti_calls_routed", "counter", "queued calls routed by RouteCall",
	       cs->routed);
	metric(f, node, "cti_event_log", "gauge", "events held in the replicated log", log->n);
	metric(f, node, "cti_last_seq", "gauge", "the newest event sequence", log->last_seq);
	if (srv->cti) {
		const struct cti_stats *ts = cti_stats(srv->cti);

		metric(f, node, "cti_clients", "gauge", "CTI clients connected",
		       cti_clients(srv->cti));
#define C(name, help) metric(f, node, "cti_" #name, "counter", help, ts->name);
		C(connections, "CTI connections accepted")
		C(refused, "CTI connections refused (max_clients)")
		C(requests, "CTI requests received")
		C(errors, "CTI requests answered with an Error")
		C(duplicates, "CTI requests sent again, answered from the event log")
		C(events_sent, "CTI event lines written to clients")
		C(slow_clients, "CTI clients cut off because they did not read")
		C(auth_failures, "CTI requests refused: a wrong or missing token")
#undef C
	}
}

char *ctl_metrics_text(struct server *srv)
{
	const struct sipt_stats *ts = sipt_stats(srv->tp);
	const struct loop_stats *ls = loop_stats(srv->loop);
	const char *node = srv->cfg->node.id;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
#define X(name, help) metric(f, node, #name, "counter", help, srv->st.name);
	SRV_COUNTERS(X)
#undef X
#define T(name, help) metric(f, node, "transport_" #name, "counter", help, ts->name);
	T(udp_in, "UDP datagrams received on the SIP port")
	T(udp_out, "UDP datagrams sent")
	T(udp_truncated, "UDP datagrams larger than a receive buffer, dropped")
	T(udp_send_errors, "UDP sends that failed")
	T(tcp_in, "SIP messages framed from TCP streams")
	T(tcp_out, "SIP messages written to TCP streams")
	T(tcp_accepted, "TCP connections accepted")
	T(tcp_connects, "TCP connections opened by sipha")
	T(tcp_framing_errors, "TCP connections closed for unframeable input")
	T(tcp_send_errors, "TCP writes that failed")
	T(keepalives, "CRLF keep-alives received on streams")
	T(tcp_refused, "TCP connections refused at accept: per-source or global limit")
	T(tcp_table_full, "TCP connections refused: the node's 65,536 were open")
	T(tcp_timeouts, "TCP connections closed: silent since opened, or idle")
#undef T
	metric(f, node, "tcp_connections", "gauge", "TCP connections open", ts->tcp_open);
	metric(f, node, "registrations", "gauge", "registered contact bindings",
	       reg_binding_count(srv->reg));
	metric(f, node, "aors", "gauge", "addresses of record with a binding",
	       reg_aor_count(srv->reg));
	metric(f, node, "calls", "gauge", "calls in the call table", calls_count(srv->calls));
	metric(f, node, "heap_bytes", "gauge",
	       "heap bytes in use (mallinfo2, and libosip2's blocks in core/smalloc)",
	       (uint64_t)mallinfo2().uordblks + (uint64_t)smalloc_live_bytes());
	metric(f, node, "smalloc_pool_bytes", "gauge",
	       "bytes core/smalloc has carved for libosip2's blocks (never returned)",
	       (uint64_t)smalloc_pool_bytes());
	metric(f, node, "transactions", "gauge", "live SIP transactions", txn_count(srv->txns));
	if (srv->ha)
		ha_metrics(f, node, srv->ha);
	cc_metrics(f, node, srv);
	if (srv->auth) {
		const struct auth_stats *as = auth_stats(srv->auth);

#define A(name, help) metric(f, node, "auth_" #name, "counter", help, as->name);
		A(challenges, "requests answered 401/407 with a digest challenge")
		A(ok, "requests whose credentials were right")
		A(failures, "requests refused 403: wrong credentials, user or nonce")
		A(stale, "requests with an expired nonce, challenged again")
		A(bans, "sources blocked after [auth] ban_after failures")
		A(banned_dropped, "messages from a blocked source dropped in user space")
		A(trusted, "requests from [auth] trusted sources, not challenged")
#undef A
		metric(f, node, "auth_banned", "gauge", "sources blocked now",
		       auth_banned_now(srv->auth));
	}
	metric(f, node, "loop_iterations", "counter", "event loop iterations", ls->iterations);
	metric(f, node, "loop_completions", "counter", "io_uring completions handled", ls->cqes);
	metric(f, node, "loop_nobufs", "counter", "times the UDP provided-buffer ring ran dry",
	       ls->nobufs);
	metric(f, node, "loop_rearm_retries", "counter",
	       "multishot re-arms that found no submission slot and were retried",
	       ls->rearm_retries);
	metric(f, node, "loop_streams_oversized", "counter",
	       "streams closed: their input filled the buffer with no whole message",
	       ls->streams_oversized);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

static json_t *cmd_metrics(struct server *srv, json_t *args)
{
	char *text = ctl_metrics_text(srv);
	json_t *o;

	(void)args;
	if (!text)
		return refuse("out of memory", false);
	o = ok_obj();
	json_object_set_new(o, "text", json_string(text));
	free(text);
	return o;
}

struct ctl_cmd {
	const char *name;
	json_t *(*fn)(struct server *srv, json_t *args);
	bool changes; /* changes the node: root or the sipha group only */
};

static const struct ctl_cmd cmds[] = {
	{ "status", cmd_status, false },   { "registrations", cmd_registrations, false },
	{ "calls", cmd_calls, false },	   { "agents", cmd_agents, false },
	{ "vip", cmd_vip, false },	   { "xdp", cmd_xdp, false },
	{ "block", cmd_block, true },	   { "switchover", cmd_switchover, true },
	{ "metrics", cmd_metrics, false },
};

json_t *ctl_execute(struct server *srv, json_t *req)
{
	return ctl_execute_as(srv, req, true);
}

json_t *ctl_execute_as(struct server *srv, json_t *req, bool may_change)
{
	const char *name = json_string_value(json_object_get(req, "cmd"));
	json_t *args = json_object_get(req, "args");

	if (!name)
		return refuse("request has no \"cmd\"", true);
	if (args && !json_is_array(args))
		return refuse("\"args\" must be an array", true);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(cmds[i].name, name))
			continue;
		if (cmds[i].changes && !may_change)
			return refuse("not permitted: root or the sipha group only", false);
		return cmds[i].fn(srv, args);
	}
	return refuse("unknown command", true);
}

/* One client of the socket, and whether it may change the node (from its
 * SO_PEERCRED at accept). */
struct ctl_client {
	struct control *c;
	bool may_change;
	struct loop_stream *s;
	/* A `calls` answer under way: sent in slices, because serialising a
	 * large table at once held the loop, and the HA clock on it, for tens
	 * of milliseconds (50 ms at 20,000 calls). */
	bool listing;
	struct call **calls; /* held (calls_hold_all) until written */
	size_t ncalls, ci, nout;
	struct timer t;
};

#define LIST_SLICE 256 /* calls serialised per loop iteration */
#define LIST_BACKLOG (1u << 20) /* bytes queued to the client before we wait */

static void list_end(struct ctl_client *cl)
{
	timer_del(loop_timers(cl->c->l), &cl->t);
	for (; cl->ci < cl->ncalls; cl->ci++)
		call_unhold(cl->calls[cl->ci]);
	free(cl->calls);
	cl->calls = NULL;
	cl->ncalls = cl->ci = cl->nout = 0;
	cl->listing = false;
}

static void list_slice(struct ctl_client *cl)
{
	if (loop_stream_backlog(cl->s) > LIST_BACKLOG) {
		loop_timer_in(cl->c->l, &cl->t, 1); /* the client reads slowly */
		return;
	}
	for (unsigned n = 0; n < LIST_SLICE && cl->ci < cl->ncalls; n++) {
		struct call *c = cl->calls[cl->ci++];
		char *one = NULL;
		json_t *o;

		/* A call released meanwhile is no longer listed. */
		if (c->state != CALL_RELEASED && (o = call_json(c))) {
			one = json_dumps(o, JSON_COMPACT);
			json_decref(o);
		}
		if (one) {
			if (cl->nout++)
				loop_stream_write(cl->s, ",", 1);
			loop_stream_write(cl->s, one, strlen(one));
			free(one);
		}
		call_unhold(c);
	}
	if (cl->ci < cl->ncalls) {
		loop_timer_in(cl->c->l, &cl->t, 0);
		return;
	}
	loop_stream_write(cl->s, "]}\n", 3);
	list_end(cl);
}

static void list_fire(struct timer *t)
{
	list_slice(container_of(t, struct ctl_client, t));
}

/* `calls` with no arguments, streamed: the same JSON as ctl_execute's. */
static bool list_start(struct ctl_client *cl, json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "cmd"));
	json_t *args = json_object_get(req, "args");

	if (!name || strcmp(name, "calls") ||
	    (args && (!json_is_array(args) || json_array_size(args))))
		return false;
	if (calls_hold_all(cl->c->srv->calls, &cl->calls, &cl->ncalls)) {
		free(cl->calls);
		cl->calls = NULL;
		return false; /* out of memory: the one-piece answer, or its error */
	}
	cl->listing = true;
	loop_stream_write(cl->s, "{\"ok\":true,\"calls\":[", 20);
	list_slice(cl);
	return true;
}

static size_t ctl_data(struct loop_stream *s, void *arg, const char *buf, size_t len)
{
	struct ctl_client *cl = arg;
	struct control *c = cl->c;
	const char *nl = memchr(buf, '\n', len);
	json_error_t jerr;
	json_t *req, *ans;
	char *out;

	/* One answer at a time: the next request waits for a listing. */
	if (cl->listing)
		return 0;
	if (!nl) {
		if (len >= CTL_MAX_LINE)
			loop_stream_close(s, false);
		return 0;
	}
	req = json_loadb(buf, (size_t)(nl - buf), 0, &jerr);
	cl->s = s;
	if (req && json_is_object(req) && list_start(cl, req)) {
		json_decref(req);
		return (size_t)(nl - buf) + 1;
	}
	if (!req || !json_is_object(req))
		ans = refuse("request is not a JSON object", true);
	else
		ans = ctl_execute_as(c->srv, req, cl->may_change);
	json_decref(req);
	out = json_dumps(ans, JSON_COMPACT);
	json_decref(ans);
	if (out) {
		loop_stream_write(s, out, strlen(out));
		loop_stream_write(s, "\n", 1);
		free(out);
	}
	return (size_t)(nl - buf) + 1;
}

static void ctl_closed(struct loop_stream *s, void *arg, int err)
{
	struct ctl_client *cl = arg;

	(void)s;
	(void)err;
	if (cl->listing)
		list_end(cl);
	free(cl);
}

static const struct loop_stream_ops ctl_ops = {
	.on_data = ctl_data,
	.on_close = ctl_closed,
};

/* Root, this daemon's own user, or a member of the sipha group (primary or
 * listed): the socket's mode lets others in to read (status, calls, ...),
 * only these may change the node (switchover, block). */
static bool privileged(const struct control *c, const struct ucred *cr)
{
	const struct passwd *pw;
	const struct group *gr;

	if (cr->uid == 0 || cr->uid == geteuid())
		return true;
	if (!c->have_gid)
		return false;
	if (cr->gid == c->gid)
		return true;
	pw = getpwuid(cr->uid);
	gr = getgrgid(c->gid);
	for (char **m = gr && pw ? gr->gr_mem : NULL; m && *m; m++)
		if (!strcmp(*m, pw->pw_name))
			return true;
	return false;
}

static void ctl_accept(void *arg, int fd, const struct sockaddr_storage *peer, socklen_t len)
{
	struct control *c = arg;
	struct ctl_client *cl = calloc(1, sizeof(*cl));
	struct ucred cr;
	socklen_t crlen = sizeof(cr);

	(void)peer;
	(void)len;
	if (!cl) {
		close(fd);
		return;
	}
	cl->c = c;
	timer_init(&cl->t, list_fire);
	cl->may_change =
		!getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) && privileged(c, &cr);
	if (!loop_stream_add(c->l, fd, &ctl_ops, cl))
		free(cl);
}

static int mkdir_parent(const char *path)
{
	char tmp[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *p;

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (p = tmp + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(tmp, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

int ctl_open(struct control **out, struct loop *l, const char *path, struct server *srv)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const struct group *grp;
	struct control *c;
	int ret, fd = -1;
	mode_t old;

	*out = NULL;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		pr_err("control: socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, path);
	ret = mkdir_parent(path);
	if (ret) {
		pr_err("control: cannot create the directory of %s: %s", path, strerror(-ret));
		return ret;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A socket file that nobody answers on is a leftover of a crash; one
	 * that answers belongs to a running daemon, which we must not steal. */
	if (!connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		pr_err("control: %s is in use by a running siphad", path);
		close(fd);
		return -EADDRINUSE;
	}
	unlink(path);
	/* Created 0660 from the start (a chmod after bind leaves a window in
	 * which anyone may connect). */
	old = umask(0117);
	ret = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || listen(fd, 16) ? -errno : 0;
	umask(old);
	if (ret) {
		pr_err("control: cannot listen on %s: %s", path, strerror(-ret));
		close(fd);
		return ret;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->path = strdup(path))) {
		free(c);
		close(fd);
		unlink(path);
		return -ENOMEM;
	}
	c->l = l;
	c->srv = srv;
	c->fd = fd;
	grp = getgrnam("sipha");
	if (grp) {
		c->gid = grp->gr_gid;
		c->have_gid = true;
		if (chown(path, (uid_t)-1, grp->gr_gid))
			pr_warn("control: cannot give %s to group sipha: %s", path,
				strerror(errno));
	}
	ret = loop_listen_add(l, fd, ctl_accept, c);
	if (ret) {
		ctl_close(c);
		return ret;
	}
	*out = c;
	return 0;
}

void ctl_close(struct control *c)
{
	if (!c)
		return;
	close(c->fd);
	unlink(c->path);
	free(c->path);
	free(c);
}

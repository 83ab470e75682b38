/* HA role machine.  Events: the link's HELLO (the peer's state), its death
 * after timeout_ms of silence, a GOODBYE "demoting" (manual switchover), the
 * start-up timer, and siphactl switchover.  Actions: take over (probe the
 * VIP, bump and persist the epoch, add the VIP, GARP, XDP active) and demote
 * (VIP removed, XDP steering to the peer). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <net/if.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cc/cc.h"
#include "server/subscribe.h"
#include "core/log.h"
#include "garp.h"
#include "nlwatch.h"
#include "ha/link.h"
#include "ha/replica.h"
#include "ha/role.h"
#include "core/caps.h"
#include "ha/role_int.h"
#include "server/call.h"
#include "server/server.h"
#include "vip.h"
#include "xdp/xdp.h"

static const char *const state_names[] = {
	[HA_STARTING] = "standby",
	[HA_ACTIVE] = "active",
	[HA_STANDBY] = "standby",
	[HA_ISOLATED] = "isolated",
};

const char *ha_state_name(enum ha_state s)
{
	return state_names[s];
}

static uint8_t jr_state_of(enum ha_state s)
{
	switch (s) {
	case HA_ACTIVE:
		return JR_STATE_ACTIVE;
	case HA_STANDBY:
		return JR_STATE_STANDBY;
	case HA_ISOLATED:
		return JR_STATE_ISOLATED;
	default:
		return JR_STATE_STARTING;
	}
}

/* --- epoch on disk ------------------------------------------------------------ */

static int mkdir_p(const char *path)
{
	char tmp[512];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

static uint64_t epoch_load(const char *path)
{
	FILE *f = fopen(path, "r");
	uint64_t e = 0;

	if (f) {
		if (fscanf(f, "%" SCNu64, &e) != 1)
			e = 0;
		fclose(f);
	}
	return e;
}

/* Written to a temporary file and renamed, so a crash leaves the old epoch
 * or the new one, never a torn one.  A write that fails (a full disk) says
 * why and leaves no temporary file behind. */
static int epoch_store(const char *path, uint64_t e)
{
	char tmp[600];
	int ret = 0;
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	if (fprintf(f, "%" PRIu64 "\n", e) < 0 || fflush(f) || fsync(fileno(f)))
		ret = errno ? -errno : -EIO;
	if (fclose(f) && !ret)
		ret = errno ? -errno : -EIO;
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}

/* The epoch goes to disk on a thread of its own: an fsync takes
 * milliseconds (tens on a busy disk), and a node taking over serves first.
 * Writes run one at a time in the order asked (a ticket each), so the file
 * ends with the newest.  The peer may hear of an epoch before it is on
 * disk: a node that crashes in between restarts with the older one and
 * adopts the peer's newer epoch as soon as the link is up (decide()). */
struct epoch_job {
	char path[512];
	uint64_t e;
	uint64_t ticket;
};

static pthread_mutex_t epoch_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t epoch_cv = PTHREAD_COND_INITIALIZER;
static uint64_t epoch_tickets, epoch_turn;

static void *epoch_job_run(void *arg)
{
	struct epoch_job *j = arg;
	int ret;

	pthread_mutex_lock(&epoch_mu);
	while (epoch_turn != j->ticket)
		pthread_cond_wait(&epoch_cv, &epoch_mu);
	ret = epoch_store(j->path, j->e);
	epoch_turn++;
	pthread_cond_broadcast(&epoch_cv);
	pthread_mutex_unlock(&epoch_mu);
	if (ret)
		pr_err("ha: cannot persist epoch %" PRIu64 " to %s: %s", j->e, j->path,
		       strerror(-ret));
	free(j);
	return NULL;
}

static void epoch_persist(const struct ha *h)
{
	struct epoch_job *j = malloc(sizeof(*j));
	pthread_attr_t a;
	pthread_t t;
	int ret = -1;

	if (!j) {
		pr_err("ha: cannot persist epoch %" PRIu64 ": out of memory", h->epoch);
		return;
	}
	snprintf(j->path, sizeof(j->path), "%s", h->epoch_path);
	j->e = h->epoch;
	pthread_mutex_lock(&epoch_mu);
	j->ticket = epoch_tickets++;
	pthread_mutex_unlock(&epoch_mu);
	if (!pthread_attr_init(&a)) {
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		ret = pthread_create(&t, &a, epoch_job_run, j);
		pthread_attr_destroy(&a);
	}
	if (ret)
		epoch_job_run(j); /* no thread: here, in turn */
}

/* Every epoch asked for is on disk (or failed, logged). */
static void epoch_flush(void)
{
	pthread_mutex_lock(&epoch_mu);
	while (epoch_turn != epoch_tickets)
		pthread_cond_wait(&epoch_cv, &epoch_mu);
	pthread_mutex_unlock(&epoch_mu);
}

/* --- roles -------------------------------------------------------------------- */

static void xdp_role(struct ha *h, bool active)
{
	const struct sipha_config *cfg = h->srv->cfg;

	if (!h->srv->xdp)
		return;
	/* The dead man's switch needs a peer to steer to.  It fires one
	 * heartbeat interval before the peer declares us dead, so by the time
	 * the peer probes the VIP our kernel no longer answers for it; never
	 * within three stamps, which a live daemon's loop would trip. */
	uint64_t dms_ms = cfg->ha.timeout_ms - cfg->ha.heartbeat_ms;
	uint64_t floor_ms = 3 * (uint64_t)srv_xdp_tick_ms(cfg);

	if (dms_ms < floor_ms)
		dms_ms = floor_ms;

	sxdp_set_role(h->srv->xdp, active, cfg->vip.present ? &cfg->vip.address : NULL, h->mac,
		      h->have_peer_mac ? h->peer_mac : NULL,
		      h->have_peer_mac ? dms_ms * 1000000ull : 0);
}

static void set_state(struct ha *h, enum ha_state s)
{
	if (h->state == s)
		return;
	pr_info("ha: %s -> %s (epoch %" PRIu64 ")", state_names[h->state], state_names[s],
		h->epoch);
	h->state = s;
	h->st.state = s;
	hal_update_hello(h->link, h->epoch, jr_state_of(s), h->seq);
	/* The standby learns of our death from our kernel (link_watch.c). */
	hal_watch(h->link, s == HA_ACTIVE);
	srv_ha_state(h->srv, s == HA_ACTIVE);
}

static void end_late(struct ha *h);

/* The epoch is the pair's: a node that is not active catches up with its
 * peer, so its next takeover is newer than anything either saw. */
static void epoch_catch_up(struct ha *h)
{
	if (h->peer.epoch <= h->epoch)
		return;
	h->epoch = h->peer.epoch;
	h->st.epoch = h->epoch;
	epoch_persist(h);
}

static void demote(struct ha *h, const char *why)
{
	const struct sipha_config *cfg = h->srv->cfg;

	if (h->state != HA_ACTIVE)
		return;
	pr_warn("ha: leaving the active role: %s", why);
	end_late(h);
	calls_quiesce(h->srv->calls);
	feed_ring_clear(h);
	/* Steer first, then drop the address: a packet that still reaches us
	 * goes on to the peer instead of into a closed socket. */
	xdp_role(h, false);
	if (cfg->vip.present) {
		int ret = vip_del(cfg->vip.interface, &cfg->vip.address);

		if (ret)
			pr_err("ha: cannot remove the VIP: %s", strerror(-ret));
	}
	h->st.demotions++;
	h->synced = false;
	/* A switchover or a lost split brain: the peer's HELLO, with its newer
	 * epoch, came while we were active, and none may come again. */
	epoch_catch_up(h);
	set_state(h, HA_STANDBY);
}

static void arm_decide(struct ha *h, unsigned ms)
{
	timer_add(h->srv->tw, &h->t_decide, h->srv->tw->now + ms);
}

/* How long a GOODBYE is given to leave before the process exits: it is
 * one small write on a local link. */
#define GOODBYE_MS 50

/* Shutting down, the last step: out of the active role (the peer, told
 * "demoting", takes over at once), goodbye, and exit shortly after. */
static void leave(struct ha *h)
{
	bool was_active = h->state == HA_ACTIVE;

	demote(h, "shutting down");
	hal_stop(h->link, was_active ? JR_BYE_DEMOTING : JR_BYE_SHUTDOWN, "shutting down");
	arm_decide(h, GOODBYE_MS);
}

/* Someone else answers for the VIP: a live holder, so only the link (or
 * the clock) broke: stay off the VIP and probe again a heartbeat later. */
static void isolate(struct ha *h, const uint8_t holder[6], const char *why)
{
	/* Said once per episode: an isolated node re-probes often. */
	if (h->state != HA_ISOLATED)
		pr_warn("ha: VIP still answered by %02x:%02x:%02x:%02x:%02x:%02x; not taking it "
			"(%s)",
			holder[0], holder[1], holder[2], holder[3], holder[4], holder[5], why);
	set_state(h, HA_ISOLATED);
	arm_decide(h, h->srv->cfg->ha.heartbeat_ms);
}

/* Takes the active role.  PROBE: first ask the network whether someone
 * still answers for the VIP (docs/ARCHITECTURE.md §3); a live holder means only the
 * link broke: stay off the VIP (isolated) and probe again later. */
static void take_over(struct ha *h, bool probe, const char *why)
{
	const struct sipha_config *cfg = h->srv->cfg;
	uint8_t holder[6];
	size_t resumed;
	int ret;

	if (h->state == HA_ACTIVE)
		return;
	/* Without carrier nobody could reach the VIP here, and a probe would
	 * hear no holder for the wrong reason. */
	if (cfg->vip.present && nlw_link_up(cfg->vip.interface) == 0) {
		pr_warn("ha: %s has no carrier; not taking the VIP (%s)", cfg->vip.interface, why);
		set_state(h, h->state == HA_STARTING ? HA_STANDBY : h->state);
		arm_decide(h, cfg->ha.timeout_ms);
		return;
	}
	if (probe && cfg->vip.present) {
		ret = garp_ctx_probe(&h->garp, cfg->ha.probe_ms, holder);
		if (ret == 1) {
			isolate(h, holder, why);
			return;
		}
		if (ret < 0)
			pr_warn("ha: VIP probe failed: %s; going on", strerror(-ret));
	}
	/* What serves first: the address, then our XDP role (frames the peer
	 * steers to us pass from now on), then the announcement.  The epoch
	 * goes to disk meanwhile, on its own thread (epoch_persist). */
	h->epoch++;
	if (cfg->vip.present) {
		ret = vip_add(cfg->vip.interface, &cfg->vip.address);
		if (ret) {
			pr_err("ha: cannot add the VIP: %s", strerror(-ret));
			h->epoch--;
			set_state(h, HA_ISOLATED);
			arm_decide(h, cfg->ha.timeout_ms);
			return;
		}
	}
	xdp_role(h, true);
	if (cfg->vip.present && cfg->vip.garp_count && garp_ctx_send(&h->garp, cfg->vip.garp_count))
		pr_warn("ha: gratuitous ARP/NA failed");
	epoch_persist(h);
	h->st.takeovers++;
	h->split_lost = false;
	/* A new stream: this node's records, numbered on from what it applied. */
	h->fed_by = 0;
	hal_set_progress(h->link, h->seq, 0);
	feed_ring_clear(h);
	timer_del(h->srv->tw, &h->t_decide);
	resumed = calls_take_over(h->srv->calls);
	pr_info("ha: active (%s), %zu calls (%zu being set up), %zu registrations", why,
		calls_count(h->srv->calls), resumed, reg_binding_count(h->srv->reg));
	set_state(h, HA_ACTIVE);
	h->st.epoch = h->epoch;
}

/* --- a probe that does not block ------------------------------------------------ */

#define PROBE_SENDS 2 /* requests per probe: at its start and half way */

static void probe_end(struct ha *h)
{
	h->probe.running = false;
	h->probe.done = true;
	h->probe.done_at = h->srv->tw->now;
	if (!h->probe.take)
		return;
	h->probe.take = false;
	if (h->state == HA_ACTIVE)
		return;
	if (h->probe.answered)
		isolate(h, h->probe.holder, h->probe.why);
	else
		take_over(h, false, h->probe.why);
}

static void probe_fired(struct timer *t)
{
	struct ha *h = container_of(t, struct ha, probe.t);
	uint64_t now = h->srv->tw->now;
	int ret;

	ret = garp_ctx_probe_poll(&h->garp, h->probe.holder);
	if (ret == 1)
		h->probe.answered = true;
	if (h->probe.answered || now >= h->probe.deadline) {
		probe_end(h);
		return;
	}
	if (h->probe.sent < PROBE_SENDS && !garp_ctx_probe_send(&h->garp, false))
		h->probe.sent++;
	timer_add(h->srv->tw, t, h->probe.deadline);
}

/* Asks the LAN whether someone answers for the VIP, over probe_ms, on the
 * loop's timers.  TAKE: then take over (or go isolated) with the result;
 * otherwise the result waits for the verdict (probe_result()).  Nothing
 * to ask without a VIP. */
static void probe_begin(struct ha *h, bool take, const char *why)
{
	const struct sipha_config *cfg = h->srv->cfg;

	if (h->probe.running) {
		h->probe.take |= take;
		h->probe.why = why;
		return;
	}
	if (!cfg->vip.present || garp_ctx_probe_send(&h->garp, true)) {
		if (take)
			take_over(h, cfg->vip.present, why);
		return;
	}
	h->probe.running = true;
	h->probe.done = h->probe.answered = false;
	h->probe.take = take;
	h->probe.why = why;
	h->probe.sent = 1;
	h->probe.deadline = h->srv->tw->now + cfg->ha.probe_ms;
	timer_add(h->srv->tw, &h->probe.t, h->srv->tw->now + (cfg->ha.probe_ms + 1) / 2);
}

/* The peer is dead: decide with the probe begun when it was suspect, if
 * there is one, else probe now. */
static void probe_verdict(struct ha *h, const char *why)
{
	const struct sipha_config *cfg = h->srv->cfg;

	if (h->probe.running) {
		h->probe.take = true;
		h->probe.why = why;
		return;
	}
	/* A probe that ended just now, no older than the silence it follows. */
	if (h->probe.done && h->srv->tw->now - h->probe.done_at <= cfg->ha.probe_ms) {
		h->probe.done = false;
		if (h->probe.answered)
			isolate(h, h->probe.holder, why);
		else
			take_over(h, false, why);
		return;
	}
	probe_begin(h, true, why);
}

/* A call the peer's snapshot did not name: it ended while the link was
 * down, or — after a lost split brain — only this node ever knew it. */
static void log_swept(void *arg, const struct call *c)
{
	const struct ha *h = arg;

	if (!h->split_lost) {
		pr_debug("ha: call %llu ended on the peer while the link was down",
			 (unsigned long long)c->id);
		return;
	}
	pr_warn("ha: split brain: call %llu (%s) %s -> %s, dn %s was known only here; dropped",
		(unsigned long long)c->id, call_state_name(c->state), c->from ? c->from : "?",
		c->to ? c->to : "?", c->dn ? c->dn : "?");
}

/* Higher (epoch, priority, node id) wins (docs/ARCHITECTURE.md §3). */
static bool we_win(const struct ha *h)
{
	const struct sipha_config *cfg = h->srv->cfg;

	if (h->epoch != h->peer.epoch)
		return h->epoch > h->peer.epoch;
	if ((unsigned)cfg->node.priority != h->peer.priority)
		return (unsigned)cfg->node.priority > h->peer.priority;
	return strcmp(cfg->node.id, h->peer.node_id) > 0;
}

/* What the peer's HELLO means for us. */
static void decide(struct ha *h)
{
	const struct sipha_config *cfg = h->srv->cfg;
	bool peer_active = h->peer.state == JR_STATE_ACTIVE;

	if (h->state != HA_ACTIVE && h->peer.epoch > h->epoch) {
		epoch_catch_up(h);
		hal_update_hello(h->link, h->epoch, jr_state_of(h->state), h->seq);
	}
	if (h->state == HA_ACTIVE && peer_active && h->handing_over) {
		/* Make before break: the peer serves now, so we may stop. */
		h->handing_over = false;
		timer_del(h->srv->tw, &h->t_decide);
		/* What we did while it took over (a BYE answered, a call set up)
		 * never reached it: the link was being re-made.  It applies these
		 * until our HELLO says standby. */
		feed_send_since(h, h->handover_seq);
		demote(h, "switchover done");
		if (h->stopped)
			leave(h);
		return;
	}
	if (h->state == HA_ACTIVE && peer_active) {
		if (we_win(h)) {
			/* Not while it hands over to us: its HELLO says active
			 * until it has sent its late records and demoted. */
			if (!h->late_ok)
				pr_warn("ha: split brain with %s: this node wins", h->peer.node_id);
			return;
		}
		pr_warn("ha: split brain with %s: the peer wins; its snapshot replaces the %zu "
			"calls known here, and those it lacks are listed then",
			h->peer.node_id, calls_count(h->srv->calls));
		h->split_lost = true;
		demote(h, "split brain lost");
		return;
	}
	if (h->state == HA_ACTIVE) {
		if (h->hot && !h->snap_sent)
			feed_start(h);
		return;
	}
	if (peer_active) {
		timer_del(h->srv->tw, &h->t_decide);
		set_state(h, HA_STANDBY);
		return;
	}
	/* Neither is active: the primary (or, between equals, the winner of
	 * the tie-break) takes the VIP. */
	if ((cfg->node.role == CFG_ROLE_PRIMARY && h->peer.role != JR_ROLE_PRIMARY) ||
	    ((cfg->node.role == CFG_ROLE_PRIMARY) == (h->peer.role == JR_ROLE_PRIMARY) &&
	     we_win(h)))
		take_over(h, true, "peer is not active");
	else if (h->state == HA_STARTING)
		set_state(h, HA_STANDBY);
}

static void t_decide_fired(struct timer *t)
{
	struct ha *h = container_of(t, struct ha, t_decide);

	if (h->stopped) {
		if (h->handing_over) {
			h->handing_over = false;
			pr_warn("ha: the peer did not take over in time; leaving anyway");
			leave(h);
			return;
		}
		h->stopped(h->stopped_arg); /* the GOODBYE had its time */
		return;
	}
	if (h->handing_over) {
		h->handing_over = false;
		pr_warn("ha: the peer did not take over in time; staying active");
		cc_release_held(h->srv->cc);
		return;
	}
	if (h->state == HA_ACTIVE && h->late_ok) {
		pr_warn("ha: %s handed over but never said standby; its late records are no "
			"longer awaited",
			h->peer.node_id);
		end_late(h);
		return;
	}
	if (h->state == HA_ACTIVE || (h->peer_up && h->peer.state == JR_STATE_ACTIVE))
		return;
	take_over(h, true, h->state == HA_ISOLATED ? "re-probe" : "no peer at start-up");
}

/* --- link events ------------------------------------------------------------------ */

static void on_up(void *arg, const struct jr_hello *peer)
{
	struct ha *h = arg;

	h->peer_up = true;
	h->peer = *peer;
	h->late_link = h->late_ok; /* the late records come on this link */
	memcpy(h->peer_mac, peer->mac, 6);
	h->have_peer_mac = memcmp(peer->mac, "\0\0\0\0\0\0", 6) != 0;
	feed_reset(h); /* a new link: nothing of the old one goes on it */
	h->synced = false;
	snprintf(h->st.peer, sizeof(h->st.peer), "%s", peer->node_id);
	pr_info("ha: link up with %s (epoch %" PRIu64 ", %s)", peer->node_id, peer->epoch,
		peer->state == JR_STATE_ACTIVE ? "active" : "not active");
	/* The HELLO the peer got on this connection may predate a state change
	 * of ours (a takeover racing a reconnect): say where we are now. */
	hal_update_hello(h->link, h->epoch, jr_state_of(h->state), h->seq);
	xdp_role(h, h->state == HA_ACTIVE);
	decide(h);
}

static void standby_frame(struct ha *h, const struct jr_frame *f)
{
	struct jr_record r;
	size_t n;

	switch (f->type) {
	case JR_T_SNAPSHOT_BEGIN:
		/* Calls are kept until the end, to tell which ones the peer
		 * lacks (mark and sweep); registrations are simply replaced. */
		rep_clear_registrations(h->srv);
		calls_mark_all(h->srv->calls);
		cc_snap_begin(h->srv->cc);
		subs_clear(h->srv->subs);
		h->synced = false;
		h->fed_by = 0; /* a whole snapshot again, should the link break now */
		hal_set_progress(h->link, h->seq, 0);
		break;
	case JR_T_SNAPSHOT_END:
		cc_snap_end(h->srv->cc);
		n = calls_sweep(h->srv->calls, log_swept, h);
		if (h->split_lost)
			pr_warn("ha: split brain: %zu calls were known only here", n);
		h->split_lost = false;
		h->synced = true;
		h->seq = f->seq;
		h->fed_by = h->peer.instance;
		hal_set_progress(h->link, h->seq, h->fed_by);
		hal_send_ack(h->link, f->seq);
		pr_info("ha: in sync with %s: %zu calls, %zu registrations", h->peer.node_id,
			calls_count(h->srv->calls), reg_binding_count(h->srv->reg));
		break;
	case JR_T_RECORD:
		if (jr_record_decode(f, &r) || rep_apply(h->srv, &r)) {
			pr_err("ha: bad record %" PRIu64 " from the peer; resynchronising", f->seq);
			h->fed_by = 0;
			hal_set_progress(h->link, h->seq, 0);
			hal_stop(h->link, JR_BYE_PROTOCOL, "bad record");
			hal_start(h->link);
			return;
		}
		h->seq = f->seq;
		h->st.records_applied++;
		hal_set_progress(h->link, h->seq, h->fed_by);
		hal_send_ack(h->link, f->seq);
		break;
	}
}

/* A record the old active made while handing over to us: applied as a
 * standby would (its calls ended or set up then), not counted in our own
 * journal. */
static void late_record(struct ha *h, const struct jr_frame *f)
{
	struct jr_record r;

	if (jr_record_decode(f, &r) || rep_apply(h->srv, &r)) {
		pr_warn("ha: bad late record %" PRIu64 " from %s; ignored", f->seq,
			h->peer.node_id);
		return;
	}
	h->st.records_applied++;
	h->st.late_applied++;
	/* A call it set up meanwhile gets its transactions here, as at the
	 * takeover (the few late records make this walk cheap enough). */
	if (r.kind == JR_KIND_CALL && r.op == JR_OP_UPSERT)
		calls_take_over(h->srv->calls);
}

/* The old active's late records are all in (its HELLO says standby, or
 * the link went): the events made here meanwhile get their numbers. */
static void end_late(struct ha *h)
{
	if (!h->late_ok)
		return;
	h->late_ok = h->late_link = false;
	timer_del(h->srv->tw, &h->t_decide); /* begin_late()'s deadline */
	cc_set_defer(h->srv->cc, false);
}

/* Taken over by a switchover: the old active's late records are awaited.
 * They come on the link it re-makes at once, since the one that carried
 * its GOODBYE is going down now (that down ends nothing); at the latest
 * when it gives up the handover itself (2 x timeout_ms). */
static void begin_late(struct ha *h)
{
	h->late_ok = true;
	h->late_link = false;
	/* Its last CTI events come as late records: ours are numbered after
	 * them. */
	cc_set_defer(h->srv->cc, true);
	arm_decide(h, h->srv->cfg->ha.timeout_ms * 2);
}

/* A record from our standby: only the delete of a call it ended after
 * handing the active role to us (a BYE it was relaying, see feed.c) is
 * taken; anything else from a standby is out of place. */
static void trailing_record(struct ha *h, const struct jr_frame *f)
{
	struct jr_record r;

	if (jr_record_decode(f, &r) || r.kind != JR_KIND_CALL || r.op != JR_OP_DELETE ||
	    rep_apply(h->srv, &r)) {
		pr_warn("ha: record %" PRIu64 " from standby %s ignored", f->seq, h->peer.node_id);
		return;
	}
	h->st.trailing_applied++;
}

static void on_frame(void *arg, const struct jr_frame *f)
{
	struct ha *h = arg;
	struct jr_goodbye g;

	switch (f->type) {
	case JR_T_HELLO:
		if (!jr_hello_decode(f, &h->peer)) {
			if (h->peer.state != JR_STATE_ACTIVE)
				end_late(h);
			decide(h);
		}
		break;
	case JR_T_GOODBYE:
		/* A switchover: the peer has let the VIP go for us. */
		if (!jr_goodbye_decode(f, &g) && g.code == JR_BYE_DEMOTING &&
		    h->state != HA_ACTIVE) {
			take_over(h, false, "handed over by the peer");
			if (h->state == HA_ACTIVE)
				begin_late(h);
		}
		break;
	case JR_T_ACK:
		/* CTI events wait for this: the standby has them now. */
		if (h->state == HA_ACTIVE)
			cc_journal_acked(h->srv->cc, f->seq);
		break;
	default:
		if (h->state != HA_ACTIVE)
			standby_frame(h, f);
		else if (h->late_ok && f->type == JR_T_RECORD)
			late_record(h, f);
		else if (f->type == JR_T_RECORD)
			trailing_record(h, f);
		break;
	}
}

static void on_down(void *arg, int err, const char *reason)
{
	struct ha *h = arg;

	(void)err;
	pr_warn("ha: link down: %s", reason);
	h->peer_up = false;
	feed_reset(h); /* the next link gets a snapshot of its own */
	/* No standby to wait for, unless we are handing over to it (the link is
	 * re-made on purpose then). */
	if (!h->handing_over)
		cc_release_held(h->srv->cc);
	/* The link of the late records went down: none will come now.  The
	 * one that carried the GOODBYE is no such link. */
	if (h->late_link)
		end_late(h);
}

static void on_peer_dead(void *arg)
{
	struct ha *h = arg;

	/* The link's silence is its loop's: the clock still hears the peer. */
	if (h->clock && ha_clock_hears_peer(h->clock))
		return;

	pr_warn("ha: peer silent for %u ms: dead", h->srv->cfg->ha.timeout_ms);
	if (h->state != HA_ACTIVE)
		probe_verdict(h, "peer dead");
}

/* The peer's kernel closed its death watch or the link with no GOODBYE:
 * its process died (a network fault does not close a TCP connection, it
 * times out).  An active
 * peer is replaced now, not timeout_ms later; the probe is the safety: a
 * live holder's kernel still answers for the VIP, while a dead daemon's
 * XDP program stops its kernel answering as soon as the daemon's SIP
 * socket is gone (SXDP_ROLE_F_SOCK). */
static void on_peer_gone(void *arg)
{
	struct ha *h = arg;

	if (h->state == HA_ACTIVE || h->peer.state != JR_STATE_ACTIVE)
		return;
	pr_warn("ha: %s closed the link with no goodbye: its process is gone", h->peer.node_id);
	probe_begin(h, true, "peer process gone");
}

/* --- the HA clock (ha/clock.h) ------------------------------------------------------- */

static bool clock_alive(void *arg)
{
	const struct ha *h = arg;

	return h->clock && ha_clock_hears_peer(h->clock);
}

/* The clock's thread heard the peer fall silent for timeout_ms. */
static void clock_silent(void *arg, int fd, unsigned revents)
{
	struct ha *h = arg;
	uint64_t n;

	(void)revents;
	if (read(fd, &n, sizeof(n)) != (ssize_t)sizeof(n) || h->state == HA_ACTIVE || h->stopped)
		return;
	switch (ha_clock_phase(h->clock)) {
	case HA_CLOCK_SUSPECT:
		/* Its answer is ready by the verdict, probe_ms from now: by
		 * then a dead holder's XDP has stopped answering for the VIP
		 * (its dead man's switch fires a heartbeat before the
		 * timeout, and probe_ms is less than a heartbeat). */
		if (h->peer.state == JR_STATE_ACTIVE)
			probe_begin(h, false, "peer suspect");
		break;
	case HA_CLOCK_SILENT:
		pr_warn("ha: the peer's heartbeats stopped %u ms ago: dead",
			h->srv->cfg->ha.timeout_ms);
		probe_verdict(h, "peer dead");
		break;
	case HA_CLOCK_HEARD:
		break;
	}
}

static unsigned progress_ms(const struct sipha_config *cfg)
{
	return cfg->ha.heartbeat_ms / 2 ? cfg->ha.heartbeat_ms / 2 : 1;
}

static void t_progress_fired(struct timer *t)
{
	struct ha *h = container_of(t, struct ha, t_progress);

	ha_clock_progress(h->clock, h->srv->tw->now);
	timer_add(h->srv->tw, t, h->srv->tw->now + progress_ms(h->srv->cfg));
}

/* A SIP loop stuck this long stops the heartbeats (the peer takes over)
 * and the XDP stamps; one merely slow does not. */
static unsigned stall_ms(const struct sipha_config *cfg)
{
	return hal_patience_ms(cfg->ha.timeout_ms);
}

#define CLOCK_RT_PRIORITY 10

static void clock_start(struct ha *h)
{
	const struct sipha_config *cfg = h->srv->cfg;
	struct ha_clock_config cc = { 0 };
	struct ha_clock_stats cs;
	int ret;

	cc.listen = cfg->ha.listen.ss;
	cc.listen_len = cfg->ha.listen.len;
	cc.peer = cfg->ha.peer.ss;
	cc.peer_len = cfg->ha.peer.len;
	cc.heartbeat_ms = cfg->ha.heartbeat_ms;
	cc.timeout_ms = cfg->ha.timeout_ms;
	/* The probe runs in the last probe_ms of the silence, and only after
	 * the peer's own dead man's switch (a heartbeat before the timeout). */
	cc.suspect_ms =
		cfg->ha.probe_ms < cfg->ha.heartbeat_ms ? cfg->ha.timeout_ms - cfg->ha.probe_ms : 0;
	cc.stall_ms = stall_ms(cfg);
	cc.keyed = cfg->ha.has_key;
	memcpy(cc.key, cfg->ha.key, sizeof(cc.key));
	cc.instance = hal_instance(h->link);
	cc.xdp = h->srv->xdp;
	cc.rt_priority = CLOCK_RT_PRIORITY;
	cc.drop_caps = geteuid() == 0;
	caps_for_config(cfg, &cc.keep);
	ret = ha_clock_start(&h->clock, &cc);
	explicit_bzero(cc.key, sizeof(cc.key));
	if (!ret && loop_poll_add(h->srv->loop, ha_clock_fd(h->clock), clock_silent, h)) {
		ha_clock_stop(h->clock);
		h->clock = NULL;
		ret = -EIO;
	}
	if (ret) {
		pr_warn("ha: no HA clock (%s): the link's heartbeats alone judge the peer",
			strerror(-ret));
		return;
	}
	hal_set_alive_check(h->link, clock_alive, h);
	ha_clock_stats(h->clock, &cs);
	pr_info("ha: clock thread (%s) heartbeats the peer over UDP every %u ms",
		cs.realtime ? "real-time" : "normal priority", cfg->ha.heartbeat_ms);
	timer_init(&h->t_progress, t_progress_fired);
	timer_add(h->srv->tw, &h->t_progress, h->srv->tw->now + progress_ms(cfg));
}

/* --- the kernel's view (netlink) ------------------------------------------------ */

static bool is_vip(const struct ha *h, const struct cfg_prefix *p)
{
	const struct cfg_prefix *v = &h->srv->cfg->vip.address;

	if (p->family != v->family)
		return false;
	return v->family == AF_INET ? p->addr.v4.s_addr == v->addr.v4.s_addr
				    : !memcmp(&p->addr.v6, &v->addr.v6, sizeof(v->addr.v6));
}

static void vip_restore(struct ha *h, const char *why)
{
	const struct sipha_config *cfg = h->srv->cfg;
	int ret;

	pr_warn("ha: the VIP left %s while this node is active (%s): adding it again",
		cfg->vip.interface, why);
	ret = vip_add(cfg->vip.interface, &cfg->vip.address);
	if (ret)
		pr_err("ha: cannot add the VIP again: %s", strerror(-ret));
	else if (cfg->vip.garp_count)
		garp_ctx_send(&h->garp, cfg->vip.garp_count);
}

static void nl_addr(void *arg, const struct nlw_addr *a)
{
	struct ha *h = arg;
	const struct sipha_config *cfg = h->srv->cfg;

	if (!a->added && h->state == HA_ACTIVE &&
	    a->ifindex == if_nametoindex(cfg->vip.interface) && is_vip(h, &a->prefix))
		vip_restore(h, "deleted by someone else");
}

static void nl_link(void *arg, const struct nlw_link *l)
{
	struct ha *h = arg;
	const struct sipha_config *cfg = h->srv->cfg;
	if (l->up || h->state != HA_ACTIVE || strcmp(l->name, cfg->vip.interface))
		return;
	/* No carrier on the service side: the VIP is no use here.  Hand over
	 * when the peer is reachable; otherwise let go of it (the peer, which
	 * cannot hear us either, takes it after its probe). */
	pr_warn("ha: %s lost its carrier%s", cfg->vip.interface,
		h->peer_up ? ": handing over to the peer" : "; giving up the VIP");
	/* Break before make here: the VIP is of no use on this link anyway. */
	demote(h, "carrier lost");
	if (h->peer_up) {
		hal_stop(h->link, JR_BYE_DEMOTING, "carrier lost");
		hal_start(h->link);
	}
	arm_decide(h, cfg->ha.timeout_ms);
}

static void nl_overrun(void *arg)
{
	struct ha *h = arg;
	const struct sipha_config *cfg = h->srv->cfg;

	/* Events were lost: look at the state itself. */
	if (h->state == HA_ACTIVE && vip_present(cfg->vip.interface, &cfg->vip.address) == 0)
		vip_restore(h, "found missing after a netlink overrun");
}

static void nl_readable(void *arg, int fd, unsigned revents)
{
	struct ha *h = arg;

	(void)fd;
	(void)revents;
	nlw_process(h->nlw);
}

static const struct nlw_callbacks nl_ops = {
	.on_link = nl_link,
	.on_addr = nl_addr,
	.on_overrun = nl_overrun,
};

static const struct hal_ops link_ops = {
	.on_up = on_up,
	.on_frame = on_frame,
	.on_down = on_down,
	.on_peer_dead = on_peer_dead,
	.on_peer_gone = on_peer_gone,
};

/* --- API ------------------------------------------------------------------------- */

int ha_start(struct ha **out, struct server *srv)
{
	const struct sipha_config *cfg = srv->cfg;
	struct hal_config hc = { 0 };
	const char *ifname = cfg->vip.present ? cfg->vip.interface : cfg->xdp.interface;
	struct ha *h;
	int ret;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->srv = srv;
	h->hot = cfg->node.redundancy == CFG_RED_HOT;
	jr_buf_init(&h->out);
	timer_init(&h->t_decide, t_decide_fired);
	feed_init(h);
	ret = mkdir_p(cfg->node.state_dir);
	if (ret) {
		pr_err("ha: cannot create %s: %s", cfg->node.state_dir, strerror(-ret));
		goto err;
	}
	snprintf(h->epoch_path, sizeof(h->epoch_path), "%s/epoch", cfg->node.state_dir);
	h->epoch = epoch_load(h->epoch_path);
	h->st.epoch = h->epoch;
	if (ifname[0] && if_mac(ifname, h->mac))
		pr_warn("ha: cannot read the MAC of %s", ifname);

	hc.node_id = cfg->node.id;
	hc.epoch = h->epoch;
	hc.priority = (uint16_t)cfg->node.priority;
	hc.redundancy = h->hot ? JR_RED_HOT : JR_RED_WARM;
	hc.role = cfg->node.role == CFG_ROLE_PRIMARY ? JR_ROLE_PRIMARY : JR_ROLE_BACKUP;
	hc.state = JR_STATE_STARTING;
	memcpy(hc.mac, h->mac, 6);
	hc.listen = cfg->ha.listen.ss;
	hc.listen_len = cfg->ha.listen.len;
	hc.peer = cfg->ha.peer.ss;
	hc.peer_len = cfg->ha.peer.len;
	hc.heartbeat_ms = cfg->ha.heartbeat_ms;
	hc.timeout_ms = cfg->ha.timeout_ms;
	hc.keyed = cfg->ha.has_key;
	memcpy(hc.key, cfg->ha.key, sizeof(hc.key));
	if (!hc.keyed)
		pr_warn("ha: the HA link is not authenticated: anyone who can send from "
			"the peer's address is believed; set [ha] key_file on both nodes");
	/* The start grace (the link's, armed by hal_new(), and the decision's,
	 * below) counts from here, not from the loop's last clock reading,
	 * before the set-up (attaching XDP alone takes 100 ms and more): else
	 * a node started beside a live peer judges it before the link is up. */
	loop_clock_update(srv->loop);
	ret = hal_new(srv->loop, &hc, &link_ops, h, &h->link);
	explicit_bzero(hc.key, sizeof(hc.key));
	if (ret)
		goto err;
	timer_init(&h->probe.t, probe_fired);
	clock_start(h);
	/* A VIP left on our interface by a crashed run is not ours until the
	 * peer has had its say: drop it and decide afresh. */
	if (cfg->vip.present && vip_present(cfg->vip.interface, &cfg->vip.address) == 1) {
		pr_warn("ha: the VIP is on %s from an earlier run; removing it until the role is "
			"decided",
			cfg->vip.interface);
		vip_del(cfg->vip.interface, &cfg->vip.address);
	}
	if (srv->xdp)
		sxdp_set_role(srv->xdp, false, cfg->vip.present ? &cfg->vip.address : NULL, h->mac,
			      NULL, 0);
	h->garp.fd_send = h->garp.fd_probe = -1;
	if (cfg->vip.present) {
		ret = garp_ctx_open(&h->garp, cfg->vip.interface, &cfg->vip.address);
		if (ret) {
			pr_err("ha: cannot open packet sockets on %s: %s", cfg->vip.interface,
			       strerror(-ret));
			hal_free(h->link);
			goto err;
		}
	}
	if (cfg->vip.present) {
		struct nlw_callbacks cb = nl_ops;

		cb.arg = h;
		ret = nlw_open(&h->nlw, &cb);
		if (!ret)
			ret = loop_poll_add(srv->loop, nlw_fd(h->nlw), nl_readable, h);
		if (ret) {
			pr_err("ha: cannot watch links and addresses: %s", strerror(-ret));
			hal_free(h->link);
			nlw_close(h->nlw);
			garp_ctx_close(&h->garp);
			goto err;
		}
	}
	srv->repl.call = feed_call;
	srv->repl.binding = feed_binding;
	srv->repl.sub = feed_sub;
	srv->repl.arg = h;
	cc_set_journal(srv->cc, feed_event, feed_agent, h);
	loop_clock_update(srv->loop);
	hal_start(h->link);
	loop_timer_in(srv->loop, &h->t_decide,
		      cfg->ha.timeout_ms + hal_start_grace_ms(cfg->ha.heartbeat_ms));
	*out = h;
	return 0;
err:
	if (h->clock) {
		timer_del(srv->tw, &h->t_progress);
		ha_clock_stop(h->clock);
	}
	feed_fini(h);
	jr_buf_free(&h->out);
	free(h);
	return ret;
}

void ha_stop(struct ha *h)
{
	if (!h)
		return;
	epoch_flush();
	timer_del(h->srv->tw, &h->probe.t);
	if (h->clock) {
		timer_del(h->srv->tw, &h->t_progress);
		ha_clock_stop(h->clock);
		h->clock = NULL;
	}
	timer_del(h->srv->tw, &h->t_decide);
	memset(&h->srv->repl, 0, sizeof(h->srv->repl));
	cc_set_journal(h->srv->cc, NULL, NULL, NULL);
	cc_release_held(h->srv->cc);
	if (h->state == HA_ACTIVE) {
		demote(h, "shutting down");
		hal_stop(h->link, JR_BYE_DEMOTING, "shutting down");
	} else {
		hal_stop(h->link, JR_BYE_SHUTDOWN, "shutting down");
	}
	hal_free(h->link);
	nlw_close(h->nlw);
	garp_ctx_close(&h->garp);
	feed_fini(h);
	jr_buf_free(&h->out);
	free(h);
}

void ha_shutdown(struct ha *h, void (*stopped)(void *arg), void *arg)
{
	const char *why = NULL;

	if (h->stopped)
		return;
	h->stopped = stopped;
	h->stopped_arg = arg;
	timer_del(h->srv->tw, &h->t_decide);
	if (h->state == HA_ACTIVE && !ha_switchover(h, &why)) {
		pr_info("ha: shutting down: handing the active role to %s first", h->peer.node_id);
		return;
	}
	if (h->state == HA_ACTIVE && h->peer_up)
		pr_warn("ha: shutting down without a switchover: %s", why);
	leave(h);
}

int ha_switchover(struct ha *h, const char **why)
{
	if (!h->peer_up) {
		*why = "the peer is not connected";
		return -ENOTCONN;
	}
	if (h->state != HA_ACTIVE) {
		*why = "this node is not active; run switchover on the active node";
		return -EINVAL;
	}
	/* Records still in flight are fine: the GOODBYE follows them on the
	 * same connection. */
	if (h->hot && !feed_caught_up(h)) {
		*why = "the standby is not in sync yet";
		return -EAGAIN;
	}
	/* Make before break: GOODBYE "demoting" asks the peer to take over
	 * (it adds the VIP while we still serve, so no request finds nobody);
	 * the link comes back at once and when its HELLO says active, with a
	 * newer epoch, we demote and steer stray packets to it. */
	h->handing_over = true;
	h->handover_seq = h->seq;
	arm_decide(h, h->srv->cfg->ha.timeout_ms * 2);
	hal_stop(h->link, JR_BYE_DEMOTING, "switchover");
	hal_start(h->link);
	return 0;
}

const struct hal_stats *ha_link_stats(const struct ha *h)
{
	return hal_stats(h->link);
}

bool ha_clock_counters(const struct ha *h, struct ha_clock_stats *out)
{
	if (!h->clock)
		return false;
	ha_clock_stats(h->clock, out);
	return true;
}

void ha_get_status(const struct ha *h, struct ha_status *st)
{
	*st = h->st;
	st->state = h->state;
	st->epoch = h->epoch;
	st->peer_connected = h->peer_up;
	if (h->state == HA_ACTIVE) {
		st->sync_lag = h->peer_up ? feed_lag(h) : 0;
		st->in_sync = h->hot && h->peer_up && feed_in_sync(h);
	} else {
		st->sync_lag = 0;
		st->in_sync = h->hot && h->peer_up && h->synced;
	}
}

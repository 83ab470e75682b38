/* The active node's output to a hot standby: one journal record per change
 * of a call or a binding, and on each new link a snapshot of everything
 * live.  Frames go to the link while its stream has room and nothing waits
 * before them, else they wait here and a pacer feeds them.  A snapshot is
 * encoded in slices by the same pacer, so the loop never stalls on a large
 * table and the stream never overflows.
 *
 * Why live records may interleave with a snapshot's: the standby marks its
 * calls at SNAPSHOT_BEGIN and any upsert confirms one, a delete removes it,
 * and SNAPSHOT_END sweeps only what stayed marked.  A call changed before
 * its slice is encoded goes out with its newer state in the slice; one
 * changed after, in a live record that follows the slice.  One created
 * during the snapshot is not in it, but its own records are. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cc/cc.h"
#include "core/log.h"
#include "ha/link.h"
#include "ha/replica.h"
#include "ha/role_int.h"
#include "server/call.h"
#include "server/registrar.h"
#include "server/server.h"
#include "server/subscribe.h"

#define FEED_SOFT_LIMIT (2u << 20) /* bytes in the stream before frames wait here */
#define FEED_CHUNK (256u << 10) /* the most handed to the link at once */
#define FEED_SLICE 256 /* snapshot objects encoded per pacer tick */
#define FEED_MS 1 /* the pacer's period while there is work */
#define FEED_RING_MAX (32u << 20) /* frames kept for a standby that comes back */

static void pace(struct ha *h)
{
	if (!timer_pending(&h->feed.t))
		timer_add(h->srv->tw, &h->feed.t, h->srv->tw->now + FEED_MS);
}

static void snap_release(struct feed *f)
{
	for (; f->ci < f->ncalls; f->ci++)
		call_unhold(f->calls[f->ci]);
	for (; f->si < f->nsubs; f->si++)
		sub_unhold(f->subs[f->si]);
	free(f->subs);
	f->subs = NULL;
	f->nsubs = f->si = 0;
	free(f->calls);
	free(f->users);
	f->calls = NULL;
	f->users = NULL;
	f->ncalls = f->ci = f->nusers = f->ui = 0;
	f->snapping = false;
}

void feed_reset(struct ha *h)
{
	struct feed *f = &h->feed;

	snap_release(f);
	f->pend.len = f->pend.off = 0;
	timer_del(h->srv->tw, &f->t);
	if (f->pend.cap > 4 * FEED_SOFT_LIMIT) {
		/* A big snapshot went out: give its memory back. */
		free(f->pend.data);
		f->pend.data = NULL;
		f->pend.cap = 0;
	}
	h->snap_sent = false;
}

/* Hands whole frames to the link; a failure drops the link, which comes
 * back with a snapshot of its own. */
static bool send_frames(struct ha *h, const uint8_t *buf, size_t len)
{
	if (!hal_send_frame(h->link, buf, len))
		return true;
	pr_warn("ha: replication frames not sent; the peer will resync");
	feed_reset(h);
	return false;
}

static bool pending(const struct feed *f)
{
	return f->pend.off < f->pend.len;
}

static uint64_t frame_seq(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 8; i < 16; i++)
		v = v << 8 | p[i];
	return v;
}

/* The longest run of whole frames at BUF (LEN bytes) within FEED_CHUNK,
 * at least one frame. */
static size_t frames_upto(const uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (off + JR_HDR_LEN <= len) {
		size_t n = jr_frame_len(buf + off);

		if (off + n > len || (off && off + n > FEED_CHUNK))
			break;
		off += n;
	}
	return off;
}

void feed_ring_clear(struct ha *h)
{
	h->feed.ring.len = 0;
}

/* Keeps BUF (whole frames) at the ring's end; past FEED_RING_MAX the oldest
 * quarter goes.  Memory trouble only shortens the ring (a snapshot then). */
static void ring_add(struct ha *h, const uint8_t *buf, size_t len)
{
	struct feed *f = &h->feed;

	if (f->ring.len + len > FEED_RING_MAX) {
		size_t cut = 0;

		while (cut < f->ring.len && (f->ring.len - cut + len > FEED_RING_MAX * 3 / 4))
			cut += jr_frame_len(f->ring.data + cut);
		if (cut > f->ring.len)
			cut = f->ring.len;
		memmove(f->ring.data, f->ring.data + cut, f->ring.len - cut);
		f->ring.len -= cut;
	}
	if (len > FEED_RING_MAX)
		return;
	if (f->ring.len + len > f->ring.cap) {
		size_t cap = f->ring.cap ? f->ring.cap : (1u << 20);
		void *p;

		while (cap < f->ring.len + len)
			cap *= 2;
		p = realloc(f->ring.data, cap);
		if (!p) {
			f->ring.len = 0;
			return;
		}
		f->ring.data = p;
		f->ring.cap = cap;
	}
	memcpy(f->ring.data + f->ring.len, buf, len);
	f->ring.len += len;
}

/* Out goes what was encoded: into the ring, and to the link at once while
 * it has room and nothing waits before it, else behind what waits. */
static void emit(struct ha *h, const uint8_t *buf, size_t len)
{
	struct feed *f = &h->feed;

	if (!pending(f) && hal_backlog(h->link) + len <= FEED_SOFT_LIMIT) {
		send_frames(h, buf, len);
		return;
	}
	if (f->pend.len + len > f->pend.cap) {
		size_t cap = f->pend.cap ? f->pend.cap : (1u << 20);
		void *p;

		while (cap < f->pend.len + len)
			cap *= 2;
		p = realloc(f->pend.data, cap);
		if (!p) {
			pr_err("ha: no memory for replication frames; restarting the link");
			feed_reset(h);
			hal_stop(h->link, JR_BYE_PROTOCOL, "out of memory");
			hal_start(h->link);
			return;
		}
		f->pend.data = p;
		f->pend.cap = cap;
	}
	memcpy(f->pend.data + f->pend.len, buf, len);
	f->pend.len += len;
	pace(h);
}

static void flush(struct ha *h)
{
	if (!h->out.len)
		return;
	ring_add(h, h->out.data, h->out.len);
	/* No standby being fed: the ring keeps it for its return. */
	if (h->peer_up && h->snap_sent)
		emit(h, h->out.data, h->out.len);
	jr_buf_reset(&h->out);
}

/* One slice of the snapshot: calls first, then the registrations of each
 * AoR, then the CTI event log, then SNAPSHOT_END (agents went with
 * SNAPSHOT_BEGIN). */
static void snap_slice(struct ha *h)
{
	struct feed *f = &h->feed;

	for (unsigned n = 0; f->snapping && n < FEED_SLICE && h->out.len < FEED_CHUNK; n++) {
		if (f->ci < f->ncalls) {
			struct call *c = f->calls[f->ci++];

			if (c->state != CALL_RELEASED &&
			    !rep_call_encode(&h->out, ++h->seq, c, JR_OP_UPSERT))
				h->st.records_sent++;
			call_unhold(c);
		} else if (f->ui < f->nusers) {
			const struct reg_aor *a = reg_find(h->srv->reg, f->users[f->ui++]);

			for (const struct reg_binding *b = a ? a->bindings : NULL; b; b = b->next)
				if (!rep_reg_encode(&h->out, ++h->seq, a, b, JR_OP_UPSERT,
						    h->srv->tw->now))
					h->st.records_sent++;
		} else if (f->si < f->nsubs) {
			struct sub *sb = f->subs[f->si++];

			if (!sb->terminated &&
			    !rep_sub_encode(&h->out, ++h->seq, sb, JR_OP_UPSERT, h->srv->tw->now))
				h->st.records_sent++;
			sub_unhold(sb);
		} else if (f->ev_next <= f->ev_last) {
			/* Pruned meanwhile: the standby's log starts later. */
			const struct ev *e = evlog_get(cc_evlog(h->srv->cc), f->ev_next++);

			if (e && !rep_event_encode(&h->out, ++h->seq, e, true))
				h->st.records_sent++;
		} else {
			jr_snapshot_encode(&h->out, JR_T_SNAPSHOT_END, ++h->seq, UINT64_MAX);
			snap_release(f);
			h->st.snapshots++;
		}
	}
	flush(h);
}

static void t_feed_fired(struct timer *t)
{
	struct ha *h = container_of(t, struct ha, feed.t);
	struct feed *f = &h->feed;

	while (pending(f) && hal_backlog(h->link) < FEED_SOFT_LIMIT) {
		size_t n = frames_upto(f->pend.data + f->pend.off, f->pend.len - f->pend.off);

		if (!n || !send_frames(h, f->pend.data + f->pend.off, n))
			return;
		f->pend.off += n;
	}
	if (!pending(f))
		f->pend.len = f->pend.off = 0;
	if (f->snapping && !pending(f) && hal_backlog(h->link) < FEED_SOFT_LIMIT)
		snap_slice(h);
	if (f->snapping || pending(f))
		pace(h);
}

void feed_init(struct ha *h)
{
	memset(&h->feed, 0, sizeof(h->feed));
	timer_init(&h->feed.t, t_feed_fired);
}

void feed_fini(struct ha *h)
{
	snap_release(&h->feed);
	timer_del(h->srv->tw, &h->feed.t);
	free(h->feed.pend.data);
	free(h->feed.ring.data);
	h->feed.pend.data = NULL;
	h->feed.ring.data = NULL;
}

static void feed_snapshot(struct ha *h)
{
	struct feed *f = &h->feed;
	const struct evlog *log;

	snap_release(f);
	if (calls_hold_all(h->srv->calls, &f->calls, &f->ncalls) ||
	    rep_reg_users(h->srv, &f->users, &f->nusers) ||
	    subs_hold_all(h->srv->subs, &f->subs, &f->nsubs)) {
		pr_err("ha: no memory for a snapshot; the link restarts");
		snap_release(f);
		hal_stop(h->link, JR_BYE_PROTOCOL, "out of memory");
		hal_start(h->link);
		return;
	}
	f->snapping = true;
	h->snap_sent = true; /* live records flow from now on */
	log = cc_evlog(h->srv->cc);
	f->ev_next = evlog_first_seq(log);
	f->ev_last = log->last_seq;
	jr_snapshot_encode(&h->out, JR_T_SNAPSHOT_BEGIN, ++h->seq,
			   f->ncalls + f->nusers + f->nsubs + (f->ev_last + 1 - f->ev_next));
	/* The agents at once, before any live record of theirs: a few
	 * thousand at most, and a later upsert must not be overtaken. */
	for (const struct agent *a = cc_agents(h->srv->cc)->list; a; a = a->next)
		if (!rep_agent_encode(&h->out, ++h->seq, a))
			h->st.records_sent++;
	flush(h);
	pr_info("ha: snapshot for %s: %zu calls, %zu AoRs", h->peer.node_id, f->ncalls, f->nusers);
	pace(h);
}

/* The standby says it applied this node's stream up to LAST: what came
 * after, when the ring still holds all of it, then SNAPSHOT_END (which tells
 * it it is in sync; it has nothing marked to sweep).  False: a snapshot. */
static bool feed_resume(struct ha *h, uint64_t last)
{
	struct feed *f = &h->feed;
	size_t off = 0;

	if (h->peer.fed_by != hal_instance(h->link) || last > h->seq || !f->ring.len ||
	    frame_seq(f->ring.data) > last + 1)
		return false;
	while (off < f->ring.len && frame_seq(f->ring.data + off) <= last)
		off += jr_frame_len(f->ring.data + off);
	pr_info("ha: %s is in sync up to %" PRIu64 ": resuming the stream (%zu bytes)",
		h->peer.node_id, last, f->ring.len - off);
	h->snap_sent = true;
	if (off < f->ring.len)
		emit(h, f->ring.data + off, f->ring.len - off); /* paced if large */
	jr_snapshot_encode(&h->out, JR_T_SNAPSHOT_END, ++h->seq, UINT64_MAX);
	flush(h);
	h->st.resumes++;
	return true;
}

void feed_send_since(struct ha *h, uint64_t since)
{
	struct feed *f = &h->feed;
	size_t off = 0, n = 0;

	while (off < f->ring.len && frame_seq(f->ring.data + off) <= since)
		off += jr_frame_len(f->ring.data + off);
	for (size_t o = off; o < f->ring.len; o += jr_frame_len(f->ring.data + o))
		n++;
	if (n) {
		pr_info("ha: %zu records (%zu bytes) from the handover go to %s", n,
			f->ring.len - off, h->peer.node_id);
		emit(h, f->ring.data + off, f->ring.len - off);
		h->st.late_sent += n;
	}
}

void feed_start(struct ha *h)
{
	if (!feed_resume(h, h->peer.last_seq))
		feed_snapshot(h);
}

bool feed_caught_up(const struct ha *h)
{
	return h->snap_sent && !h->feed.snapping && !pending(&h->feed);
}

bool feed_in_sync(const struct ha *h)
{
	return h->snap_sent && !h->feed.snapping && !pending(&h->feed) &&
	       hal_sync_lag(h->link) == 0;
}

uint64_t feed_lag(const struct ha *h)
{
	uint64_t acked = hal_stats(h->link)->last_seq_acked;

	/* Frames still waiting here count as much as ones in flight. */
	if (h->feed.snapping || pending(&h->feed))
		return h->seq > acked ? h->seq - acked : 0;
	return hal_sync_lag(h->link);
}

/* Every change is encoded while this node is the hot active one, also with
 * no standby connected: the ring keeps it for the standby's return. */
static bool replicating(const struct ha *h)
{
	return h->hot && h->state == HA_ACTIVE;
}

/* A node that has just handed over may still be finishing a BYE it relayed
 * while active: the callee answers the address the BYE came from, which is
 * this node's own, so the call ends here and the new active never sees it.
 * It is told with a trailing delete, which it applies whatever our role. */
static bool trailing(const struct ha *h, const struct call *c, bool gone)
{
	return gone && h->hot && h->state != HA_ACTIVE && !h->stopped && h->peer_up &&
	       (c->a.bye_sent || c->b.bye_sent);
}

static void send_trailing(struct ha *h, const struct call *c)
{
	struct jr_buf b;

	jr_buf_init(&b);
	if (!rep_call_encode(&b, h->seq, c, JR_OP_DELETE) &&
	    !hal_send_frame(h->link, b.data, b.len))
		h->st.trailing_sent++;
	else
		pr_warn("ha: call %llu ended here after the handover; the peer was not told",
			(unsigned long long)c->id);
	jr_buf_free(&b);
}

void feed_call(void *arg, const struct call *c, bool gone)
{
	struct ha *h = arg;

	if (trailing(h, c, gone)) {
		send_trailing(h, c);
		return;
	}
	if (!replicating(h))
		return;
	if (!rep_call_encode(&h->out, ++h->seq, c, gone ? JR_OP_DELETE : JR_OP_UPSERT))
		h->st.records_sent++;
	flush(h);
}

void feed_binding(void *arg, const struct reg_aor *a, const struct reg_binding *b, bool gone)
{
	struct ha *h = arg;

	if (!replicating(h))
		return;
	if (!rep_reg_encode(&h->out, ++h->seq, a, b, gone ? JR_OP_DELETE : JR_OP_UPSERT,
			    h->srv->tw->now))
		h->st.records_sent++;
	flush(h);
}

uint64_t feed_event(void *arg, const struct ev *e)
{
	struct ha *h = arg;

	if (!replicating(h) || rep_event_encode(&h->out, ++h->seq, e, false))
		return 0;
	h->st.records_sent++;
	flush(h);
	/* Held for the standby's ACK only when it is fed on this link and its
	 * snapshot is through: then a takeover cannot lose what a client saw.
	 * While handing over, held whatever the link does: the peer gets it as
	 * a late record and its clients hear it from there; this node, about
	 * to demote, drops it undelivered. */
	return (h->peer_up && h->snap_sent && !h->feed.snapping) || h->handing_over ? h->seq : 0;
}

void feed_agent(void *arg, const struct agent *a)
{
	struct ha *h = arg;

	if (!replicating(h))
		return;
	if (!rep_agent_encode(&h->out, ++h->seq, a))
		h->st.records_sent++;
	flush(h);
}

void feed_sub(void *arg, const struct sub *s, bool gone)
{
	struct ha *h = arg;

	if (!replicating(h))
		return;
	if (!rep_sub_encode(&h->out, ++h->seq, s, gone ? JR_OP_DELETE : JR_OP_UPSERT,
			    h->srv->tw->now))
		h->st.records_sent++;
	flush(h);
}

/* hascale — what hot-standby replication costs at scale, in one process.
 *
 *   hascale [-v] N
 *
 * Two sipha cores as tests/unit/test_takeover.c builds them ("active" and
 * "standby", each with its own fake timer wheel and a send function that
 * only counts), and N calls set up on the active through srv_rx(): N/2
 * answered and ACKed (established), N/2 left ringing.  Nothing replicates
 * while they are built (srv.repl.call stays NULL); then, as ha/feed.c does
 * on a link that comes up:
 *
 *   encode   every call of one kind as a journal record (rep_call_encode
 *            into a jr_buf emptied past 256 KiB): the cost per call of
 *            each kind;
 *   slices   the snapshot as feed.c sends it: every call held
 *            (calls_hold_all), SNAPSHOT_BEGIN, then slices of at most 256
 *            objects (fewer once a slice's frames pass 256 KiB), each
 *            handed on as hal_send_frame() takes it (every frame decoded,
 *            the bytes copied as the stream queues them), SNAPSHOT_END in
 *            the last.  Each slice is what one 1 ms pacer tick runs on the
 *            active's loop: the longest is its stall;
 *   apply    SNAPSHOT_BEGIN, the records and SNAPSHOT_END on a fresh standby
 *            (jr_decode, jr_record_decode, rep_apply; mark and sweep), as
 *            role.c's standby_frame does;
 *   takeover calls_take_over() on that standby: the ringing half gets its
 *            two INVITE transactions rebuilt and its INVITE resent, the
 *            first slice at once (takeover_ms: what delays the first answer)
 *            and the rest a slice per timer tick, driven back to back on the
 *            fake clock until every INVITE went out (resume_*; the longest
 *            tick is resume_tick_max_ms, of all three runs).
 *
 * The clock never moves, so every transaction stays: both nodes get room
 * for 2N + 1024 of them ([sip] max_transactions).  The takeover is run once
 * more at the end on a standby that keeps the default limit (default_cap_*).
 * There are no registrations: the AoR part of a snapshot is not measured.
 *
 * Each phase runs three times (a fresh standby for each apply and takeover)
 * and the median is printed, but slice_max_ms is the longest slice of all
 * three runs (and resume_tick_max_ms the longest tick); heap (mallinfo2
 * uordblks) is measured on the standby around the apply of each kind and
 * around the takeover.  One line on stdout, key=value:
 *
 *   N= est= ring= build_s= snap_bytes= bytes_est= bytes_ring= encode_ms=
 *   encode_est_us= encode_ring_us= hold_ms= slices= slice_objs= slice_max_ms=
 *   slice_med_ms= slices_ms= apply_ms= apply_est_us= apply_ring_us=
 *   takeover_ms= takeover_us= resume_ms= resume_ticks= resume_tick_max_ms=
 *   resumed= heap_est= heap_ring= heap_resumed= max_txns= default_cap_resumed=
 *   default_cap_dropped= default_cap_takeover_ms=
 *
 * (_us per call of that kind, takeover_us resume_ms per resumed call,
 * heap_* bytes per call, heap_resumed what a resumed call adds at the
 * takeover; takeover_ms until calls_take_over() returns; hold_ms the
 * part of the snapshot done at once, slices_ms all slices together,
 * slice_objs objects per slice on average).  Under valgrind --tool=callgrind
 * each phase of the first repetition is dumped on its own
 * (CALLGRIND_DUMP_STATS_AT with the phase's name).  The engine logs errors
 * only (-v: warnings too, one per call that a takeover cannot resume).  Exit
 * status 0, 1 on any error (a call not set up as expected, a record refused,
 * a call not resumed), 2 on usage errors.
 *
 * This file: the measured phases and the report; node.c: the server cores
 * and the calls; snapshot.c: the snapshot's encode, hand-on and apply. */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "ha/replica.h"

#include "hascale.h"

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_ZERO_STATS \
	do {                 \
	} while (0)
#define CALLGRIND_DUMP_STATS_AT(s) ((void)(s))
#endif

#define HS_REPS 3
#define HS_MAX_CALLS 2000000u
#define HS_SLICE 256 /* feed.c's FEED_SLICE: snapshot objects per pacer tick */
#define HS_CHUNK (256u << 10) /* feed.c's FEED_CHUNK: a slice ends past this */
/* Ticks driven after a takeover: below T1 (500 ms), so that no resumed
 * INVITE is retransmitted and counted twice. */
#define HS_RESUME_TICKS 499

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t heap_used(void)
{
	return mallinfo2().uordblks;
}

/* --- measurements -------------------------------------------------------------------- */

struct hs_rep {
	double encode_est, encode_ring; /* ns */
	double hold, slices, slice_max, slice_med; /* ns */
	double apply_est, apply_ring, takeover, resume, resume_tick; /* ns */
	double heap_est, heap_ring, heap_resumed; /* bytes per call */
};

struct hs_run {
	unsigned n;
	unsigned max_txns; /* on both nodes: room for every call's two */
	size_t est, ring;
	double build_s;
	size_t bytes_est, bytes_ring; /* one pass's total */
	size_t snap_bytes; /* BEGIN, every call, END */
	size_t nslices;
	double *slice_ns; /* one run's slices, for their median */
	size_t resumed;
	unsigned resume_ticks;
	struct hs_rep rep[HS_REPS];
	/* The takeover again on a standby with the default limit. */
	size_t cap_resumed, cap_dropped;
	double cap_takeover; /* ns */
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* What a record costs to encode, for each kind of call apart. */
static int encode_phase(const struct hs_node *act, struct jr_buf *jb, struct hs_run *run,
			struct hs_rep *rep, bool first)
{
	struct hs_snap est = { .jb = jb, .want = CALL_ESTABLISHED, .limit = HS_CHUNK };
	struct hs_snap ring = { .jb = jb, .want = CALL_RINGING, .limit = HS_CHUNK };
	uint64_t t0;
	int ret;

	jr_buf_reset(jb);
	CALLGRIND_ZERO_STATS;
	t0 = now_ns();
	ret = hs_snap_checked(act, &est, run->est);
	rep->encode_est = (double)(now_ns() - t0);
	if (first)
		CALLGRIND_DUMP_STATS_AT("encode_est");
	if (ret)
		return ret;
	jr_buf_reset(jb);
	CALLGRIND_ZERO_STATS;
	t0 = now_ns();
	ret = hs_snap_checked(act, &ring, run->ring);
	rep->encode_ring = (double)(now_ns() - t0);
	if (first)
		CALLGRIND_DUMP_STATS_AT("encode_ring");
	if (ret)
		return ret;
	run->bytes_est = est.bytes;
	run->bytes_ring = ring.bytes;
	return 0;
}

/* The snapshot as feed.c sends it: what feed_snapshot() does at once
 * (every call held, SNAPSHOT_BEGIN), then the slices snap_slice() encodes
 * one per pacer tick, each timed with its hand-on to the link. */
static int slice_phase(struct hs_node *act, struct jr_buf *jb, struct hs_queue *q,
		       struct hs_run *run, struct hs_rep *rep, bool first)
{
	struct call **calls = NULL;
	size_t ncalls = 0, ci = 0, records = 0, bytes = 0, nslices = 0;
	uint64_t seq = 0, t0;
	long frames = 0;
	bool snapping = true;
	int ret;

	jr_buf_reset(jb);
	rep->slices = rep->slice_max = 0;
	CALLGRIND_ZERO_STATS;
	t0 = now_ns();
	ret = calls_hold_all(act->srv.calls, &calls, &ncalls);
	if (!ret)
		ret = jr_snapshot_encode(jb, JR_T_SNAPSHOT_BEGIN, ++seq, ncalls);
	if (!ret)
		ret = hs_hand_on(jb, q, &frames, &bytes);
	rep->hold = (double)(now_ns() - t0);
	while (!ret && snapping) {
		double ns;

		t0 = now_ns();
		for (unsigned k = 0; !ret && snapping && k < HS_SLICE && jb->len < HS_CHUNK; k++) {
			if (ci < ncalls) {
				struct call *c = calls[ci++];

				if (c->state != CALL_RELEASED) {
					ret = rep_call_encode(jb, ++seq, c, JR_OP_UPSERT);
					records++;
				}
				call_unhold(c);
			} else {
				ret = jr_snapshot_encode(jb, JR_T_SNAPSHOT_END, ++seq, UINT64_MAX);
				snapping = false;
			}
		}
		if (!ret)
			ret = hs_hand_on(jb, q, &frames, &bytes);
		ns = (double)(now_ns() - t0);
		run->slice_ns[nslices++] = ns;
		rep->slices += ns;
		if (ns > rep->slice_max)
			rep->slice_max = ns;
	}
	if (first)
		CALLGRIND_DUMP_STATS_AT("slices");
	for (; ci < ncalls; ci++)
		call_unhold(calls[ci]);
	free(calls);
	if (ret) {
		fprintf(stderr, "hascale: snapshot in slices: %s\n", strerror(-ret));
		return ret;
	}
	if (records != run->n || frames != (long)run->n + 2 || bytes != run->snap_bytes) {
		fprintf(stderr,
			"hascale: snapshot in slices: %zu records, %ld frames, %zu bytes; "
			"expected %u, %u, %zu\n",
			records, frames, bytes, run->n, run->n + 2, run->snap_bytes);
		return -EPROTO;
	}
	run->nslices = nslices;
	qsort(run->slice_ns, nslices, sizeof(run->slice_ns[0]), cmp_double);
	rep->slice_med = run->slice_ns[nslices / 2];
	return 0;
}

static double per(double total, size_t n)
{
	return n ? total / (double)n : 0;
}

/* What calls_take_over() left to timer ticks (the rest of the calls, a
 * slice per tick): the standby's ticks run 1 ms apart, back to back, until
 * RESUMED INVITEs went out since INVITES were counted.  Returns the ticks
 * run; *LONGEST: the longest tick, in ns. */
static unsigned drive_resumption(struct hs_node *sby, uint64_t invites, size_t resumed,
				 double *longest)
{
	unsigned ticks = 0;

	*longest = 0;
	while (sby->invites - invites < resumed && ticks < HS_RESUME_TICKS) {
		uint64_t t0 = now_ns();
		double ns;

		timer_run(&sby->tw, sby->tw.now + 1);
		ns = (double)(now_ns() - t0);
		if (ns > *longest)
			*longest = ns;
		ticks++;
	}
	return ticks;
}

/* The standby's side, on a fresh standby: the snapshot applied (EST: BEGIN
 * and the established calls, RING: the ringing ones and END), then the
 * takeover. */
static int standby_phase(struct hs_node *sby, const struct jr_buf *est, const struct jr_buf *ring,
			 struct hs_run *run, struct hs_rep *rep, bool first)
{
	size_t h0, h1, h2, h3, resumed;
	uint64_t t0, invites;
	int ret;

	ret = hs_node_init(sby, "b", false, run->max_txns);
	if (ret)
		return ret;
	h0 = heap_used();
	CALLGRIND_ZERO_STATS;
	t0 = now_ns();
	ret = hs_apply_frames(sby, est);
	rep->apply_est = (double)(now_ns() - t0);
	if (first)
		CALLGRIND_DUMP_STATS_AT("apply_est");
	if (ret)
		goto out;
	h1 = heap_used();
	CALLGRIND_ZERO_STATS;
	t0 = now_ns();
	ret = hs_apply_frames(sby, ring);
	rep->apply_ring = (double)(now_ns() - t0);
	if (first)
		CALLGRIND_DUMP_STATS_AT("apply_ring");
	if (ret)
		goto out;
	h2 = heap_used();
	ret = hs_check_states(sby, run->est, run->ring, "standby");
	if (ret)
		goto out;
	if (sby->msgs) {
		fprintf(stderr, "hascale: the standby sent %" PRIu64 " messages by itself\n",
			sby->msgs);
		ret = -EPROTO;
		goto out;
	}

	invites = sby->invites;
	CALLGRIND_ZERO_STATS;
	t0 = now_ns();
	resumed = calls_take_over(sby->srv.calls);
	rep->takeover = (double)(now_ns() - t0);
	run->resume_ticks = drive_resumption(sby, invites, resumed, &rep->resume_tick);
	rep->resume = (double)(now_ns() - t0);
	if (first)
		CALLGRIND_DUMP_STATS_AT("takeover");
	h3 = heap_used();
	if (resumed != run->ring || sby->invites - invites != run->ring ||
	    calls_count(sby->srv.calls) != run->n) {
		fprintf(stderr,
			"hascale: takeover: %zu resumed, %" PRIu64 " INVITEs sent, %zu calls; "
			"expected %zu, %zu, %u\n",
			resumed, sby->invites - invites, calls_count(sby->srv.calls), run->ring,
			run->ring, run->n);
		ret = -EPROTO;
		goto out;
	}
	run->resumed = resumed;
	rep->heap_est = per((double)h1 - (double)h0, run->est);
	rep->heap_ring = per((double)h2 - (double)h1, run->ring);
	rep->heap_resumed = per((double)h3 - (double)h2, run->ring);
out:
	hs_node_fini(sby);
	return ret;
}

/* What a standby with the default max_transactions does with these calls:
 * a call whose transactions do not fit is released at the takeover. */
static int default_cap_phase(struct hs_node *sby, const struct jr_buf *est,
			     const struct jr_buf *ring, struct hs_run *run)
{
	uint64_t t0, invites;
	size_t resumed;
	double longest;
	int ret;

	ret = hs_node_init(sby, "b", false, 0);
	if (ret)
		return ret;
	ret = hs_apply_frames(sby, est);
	if (!ret)
		ret = hs_apply_frames(sby, ring);
	if (ret)
		goto out;
	invites = sby->invites;
	t0 = now_ns();
	resumed = calls_take_over(sby->srv.calls);
	run->cap_takeover = (double)(now_ns() - t0);
	drive_resumption(sby, invites, resumed, &longest);
	run->cap_resumed = sby->invites - invites;
	run->cap_dropped = run->n - calls_count(sby->srv.calls);
	if (run->cap_resumed + run->cap_dropped != run->ring) {
		fprintf(stderr, "hascale: default limit: %zu resumed, %zu dropped of %zu\n",
			run->cap_resumed, run->cap_dropped, run->ring);
		ret = -EPROTO;
	}
out:
	hs_node_fini(sby);
	return ret;
}

/* The median over the repetitions of the field at OFFSET of struct hs_rep. */
static double median(const struct hs_run *run, size_t offset)
{
	double v[HS_REPS];

	for (unsigned i = 0; i < HS_REPS; i++)
		memcpy(&v[i], (const char *)&run->rep[i] + offset, sizeof(double));
	qsort(v, HS_REPS, sizeof(v[0]), cmp_double);
	return v[HS_REPS / 2];
}

#define MED(run, field) median(run, offsetof(struct hs_rep, field))

static void print_run(const struct hs_run *r)
{
	double enc_est = MED(r, encode_est), enc_ring = MED(r, encode_ring);
	double app_est = MED(r, apply_est), app_ring = MED(r, apply_ring);
	double tko = MED(r, takeover), slice_max = 0, tick_max = 0;

	for (unsigned i = 0; i < HS_REPS; i++) {
		if (r->rep[i].slice_max > slice_max)
			slice_max = r->rep[i].slice_max;
		if (r->rep[i].resume_tick > tick_max)
			tick_max = r->rep[i].resume_tick;
	}
	printf("N=%u est=%zu ring=%zu build_s=%.2f snap_bytes=%zu bytes_est=%.0f bytes_ring=%.0f "
	       "encode_ms=%.2f encode_est_us=%.2f encode_ring_us=%.2f hold_ms=%.3f slices=%zu "
	       "slice_objs=%.1f slice_max_ms=%.3f slice_med_ms=%.3f slices_ms=%.2f "
	       "apply_ms=%.2f apply_est_us=%.2f apply_ring_us=%.2f takeover_ms=%.2f "
	       "takeover_us=%.2f resume_ms=%.2f resume_ticks=%u resume_tick_max_ms=%.3f "
	       "resumed=%zu heap_est=%.0f "
	       "heap_ring=%.0f heap_resumed=%.0f max_txns=%u default_cap_resumed=%zu "
	       "default_cap_dropped=%zu default_cap_takeover_ms=%.2f\n",
	       r->n, r->est, r->ring, r->build_s, r->snap_bytes, per((double)r->bytes_est, r->est),
	       per((double)r->bytes_ring, r->ring), (enc_est + enc_ring) / 1e6,
	       per(enc_est, r->est) / 1e3, per(enc_ring, r->ring) / 1e3, MED(r, hold) / 1e6,
	       r->nslices, per((double)r->n + 1, r->nslices), slice_max / 1e6,
	       MED(r, slice_med) / 1e6, MED(r, slices) / 1e6, (app_est + app_ring) / 1e6,
	       per(app_est, r->est) / 1e3, per(app_ring, r->ring) / 1e3, tko / 1e6,
	       per(MED(r, resume), r->resumed) / 1e3, MED(r, resume) / 1e6, r->resume_ticks,
	       tick_max / 1e6, r->resumed, MED(r, heap_est), MED(r, heap_ring),
	       MED(r, heap_resumed), r->max_txns, r->cap_resumed, r->cap_dropped,
	       r->cap_takeover / 1e6);
}

static int usage(void)
{
	fprintf(stderr, "usage: hascale [-v] N   (2 <= N <= %u calls)\n", HS_MAX_CALLS);
	return 2;
}

static int run_all(struct hs_run *run)
{
	struct hs_node *act = calloc(1, sizeof(*act)), *sby = calloc(1, sizeof(*sby));
	struct jr_buf jb, est_buf, ring_buf;
	struct hs_snap est = { .jb = &est_buf, .want = CALL_ESTABLISHED };
	struct hs_snap ring = { .jb = &ring_buf, .want = CALL_RINGING };
	struct hs_queue q = { 0 };
	uint64_t t0, seq;
	int ret;

	jr_buf_init(&jb);
	jr_buf_init(&est_buf);
	jr_buf_init(&ring_buf);
	run->slice_ns = calloc(run->n + 2, sizeof(*run->slice_ns));
	if (!act || !sby || !run->slice_ns) {
		ret = -ENOMEM;
		goto out;
	}
	ret = hs_node_init(act, "a", true, run->max_txns);
	if (ret)
		goto out;

	t0 = now_ns();
	for (unsigned i = 0; i < run->n && !ret; i++)
		ret = hs_build_call(act, i, i % 2 == 0);
	run->build_s = (double)(now_ns() - t0) / 1e9;
	if (!ret)
		ret = hs_check_states(act, run->est, run->ring, "active");
	if (ret)
		goto out;

	/* The snapshot the standbys get, kept whole: BEGIN and the established
	 * calls, then the ringing ones and END, so that each kind's apply is
	 * timed apart. */
	ret = jr_snapshot_encode(&est_buf, JR_T_SNAPSHOT_BEGIN, 1, run->n);
	est.seq = 1;
	if (!ret)
		ret = hs_snap_checked(act, &est, run->est);
	ring.seq = est.seq;
	if (!ret)
		ret = hs_snap_checked(act, &ring, run->ring);
	seq = ring.seq + 1;
	if (!ret)
		ret = jr_snapshot_encode(&ring_buf, JR_T_SNAPSHOT_END, seq, UINT64_MAX);
	if (ret) {
		fprintf(stderr, "hascale: snapshot: %s\n", strerror(-ret));
		goto out;
	}
	run->snap_bytes = est_buf.len + ring_buf.len;
	for (unsigned i = 0; i < HS_REPS && !ret; i++)
		ret = encode_phase(act, &jb, run, &run->rep[i], i == 0);
	for (unsigned i = 0; i < HS_REPS && !ret; i++)
		ret = slice_phase(act, &jb, &q, run, &run->rep[i], i == 0);
	for (unsigned i = 0; i < HS_REPS && !ret; i++)
		ret = standby_phase(sby, &est_buf, &ring_buf, run, &run->rep[i], i == 0);
	if (!ret)
		ret = default_cap_phase(sby, &est_buf, &ring_buf, run);
out:
	if (act)
		hs_node_fini(act);
	jr_buf_free(&jb);
	jr_buf_free(&est_buf);
	jr_buf_free(&ring_buf);
	free(q.data);
	free(run->slice_ns);
	run->slice_ns = NULL;
	free(act);
	free(sby);
	return ret;
}

int main(int argc, char **argv)
{
	struct hs_run run = { 0 };
	unsigned long n;
	char *end;
	int opt, ret;

	log_set_level(LOG_ERR);
	while ((opt = getopt(argc, argv, "v")) != -1) {
		if (opt != 'v')
			return usage();
		log_set_level(LOG_WARN);
	}
	if (optind != argc - 1)
		return usage();
	errno = 0;
	n = strtoul(argv[optind], &end, 10);
	if (errno || *end || n < 2 || n > HS_MAX_CALLS)
		return usage();
	run.n = (unsigned)n;
	run.est = (n + 1) / 2;
	run.ring = n / 2;
	run.max_txns = (unsigned)(2 * n + 1024);
	ret = run_all(&run);
	if (ret) {
		fprintf(stderr, "hascale: failed: %s\n", strerror(-ret));
		return 1;
	}
	print_run(&run);
	return 0;
}

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
 * a call not resumed), 2 on usage errors. */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "core/log.h"
#include "ha/journal.h"
#include "ha/replica.h"
#include "server/call.h"
#include "server/server.h"
#include "sip/transport.h"

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
#define HS_MSG 8192
#define HS_CALLER_PORT 5061
#define HS_CALLEE_PORT 5080

#define HS_CONF                                                                              \
	"[node]\nid = %s\n[sip]\nlisten = 127.0.0.1:5060\ndomain = sipha.test\n"             \
	"no_answer_ms = 60000\n%s[control]\nsocket = /tmp/sipha-hascale-%ld-%s.sock\n[dn]\n" \
	"3000 = sip:10.0.0.50:5080\n"

#define HS_SDP                                      \
	"v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\n" \
	"c=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"
#define HS_SDP_B                                     \
	"v=0\r\no=b 2 2 IN IP4 10.0.0.50\r\ns=-\r\n" \
	"c=IN IP4 10.0.0.50\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n"

/* One server core and what its send function saw. */
struct hs_node {
	struct sipha_config cfg;
	struct timer_wheel tw;
	struct server srv;
	bool up;
	bool keep; /* copy the messages the build needs to read back */
	uint64_t msgs, bytes, invites;
	char inv[HS_MSG]; /* the last INVITE sent, NUL-terminated */
	char to_caller[HS_MSG]; /* the last message to the caller */
};

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

static unsigned peer_port(const struct sip_peer *p)
{
	return ntohs(((const struct sockaddr_in *)&p->addr)->sin_port);
}

static void keep_copy(char *dst, const char *buf, size_t len)
{
	if (len >= HS_MSG)
		len = HS_MSG - 1;
	memcpy(dst, buf, len);
	dst[len] = '\0';
}

static int hs_send(void *arg, const struct sip_peer *to, const char *buf, size_t len)
{
	struct hs_node *n = arg;
	bool invite = len > 7 && !memcmp(buf, "INVITE ", 7);

	n->msgs++;
	n->bytes += len;
	n->invites += invite;
	if (!n->keep)
		return 0;
	if (invite)
		keep_copy(n->inv, buf, len);
	if (peer_port(to) == HS_CALLER_PORT)
		keep_copy(n->to_caller, buf, len);
	return 0;
}

/* N's server core, with room for MAX_TXNS live transactions, or the
 * default limit for 0. */
static int node_init(struct hs_node *n, const char *id, bool keep, unsigned max_txns)
{
	char text[512], limit[64] = "", err[256];
	int ret;

	memset(n, 0, sizeof(*n));
	if (max_txns)
		snprintf(limit, sizeof(limit), "max_transactions = %u\n", max_txns);
	snprintf(text, sizeof(text), HS_CONF, id, limit, (long)getpid(), id);
	ret = cfg_load_string(text, "hascale.conf", &n->cfg, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "hascale: configuration: %s\n", err);
		return ret;
	}
	timer_wheel_init(&n->tw, 1000);
	ret = srv_core_init(&n->srv, &n->cfg, &n->tw, hs_send, n);
	if (ret) {
		fprintf(stderr, "hascale: srv_core_init: %s\n", strerror(-ret));
		cfg_free(&n->cfg);
		return ret;
	}
	n->keep = keep;
	n->up = true;
	return 0;
}

static void node_fini(struct hs_node *n)
{
	if (!n->up)
		return;
	srv_core_fini(&n->srv);
	cfg_free(&n->cfg);
	n->up = false;
}

static struct sip_peer udp_peer(const char *ip, unsigned port)
{
	struct sip_peer p;

	sipt_peer_set(&p, SIP_PROTO_UDP, ip, port); /* literals: cannot fail */
	return p;
}

static __attribute__((format(printf, 3, 4))) int
inject(struct hs_node *n, const struct sip_peer *from, const char *fmt, ...)
{
	char buf[HS_MSG];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (len <= 0 || len >= (int)sizeof(buf))
		return -EMSGSIZE;
	srv_rx(&n->srv, from, buf, (size_t)len);
	return 0;
}

/* The header line NAME ("Via") of MSG, without its CRLF, into OUT. */
static int header_line(const char *msg, const char *name, char *out, size_t size)
{
	size_t nlen = strlen(name), len;
	const char *p = msg, *end;

	while ((p = strstr(p, "\r\n"))) {
		p += 2;
		if (!strncmp(p, name, nlen) && p[nlen] == ':')
			break;
	}
	if (!p || !(end = strstr(p, "\r\n")))
		return -ENOENT;
	len = (size_t)(end - p);
	if (len >= size)
		return -ENAMETOOLONG;
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

/* The tag sipha gave the caller's dialog: the To tag of MSG. */
static int to_tag(const char *msg, char *out, size_t size)
{
	char line[1024];
	const char *t;
	size_t len;
	int ret = header_line(msg, "To", line, sizeof(line));

	if (ret)
		return ret;
	t = strstr(line, ";tag=");
	if (!t)
		return -ENOENT;
	t += 5;
	len = strcspn(t, ";> ");
	if (!len || len >= size)
		return -EBADMSG;
	memcpy(out, t, len);
	out[len] = '\0';
	return 0;
}

/* What the callee needs from sipha's INVITE to answer it. */
struct hs_uas {
	char via[1024], from[1024], to[1024], call_id[512];
};

/* N's message count must have grown by WANT since BEFORE, and its last
 * message to the caller must start with START when START is set. */
static int expect_sent(const struct hs_node *n, uint64_t before, unsigned want, const char *start,
		       unsigned i, const char *step)
{
	if (n->msgs - before != want) {
		fprintf(stderr, "hascale: call %u, %s: %" PRIu64 " messages sent, expected %u\n", i,
			step, n->msgs - before, want);
		return -EPROTO;
	}
	if (start && strncmp(n->to_caller, start, strlen(start))) {
		fprintf(stderr, "hascale: call %u, %s: the caller got:\n%.300s\n", i, step,
			n->to_caller);
		return -EPROTO;
	}
	return 0;
}

static int callee_answer(struct hs_node *n, const struct sip_peer *callee, const struct hs_uas *u,
			 unsigned i, int code, const char *reason, const char *sdp)
{
	return inject(n, callee,
		      "SIP/2.0 %d %s\r\n%s\r\n%s\r\n%s;tag=b%u\r\n%s\r\nCSeq: 1 INVITE\r\n"
		      "Contact: <sip:bob@10.0.0.50:5080>\r\n%sContent-Length: %zu\r\n\r\n%s",
		      code, reason, u->via, u->from, u->to, i, u->call_id,
		      sdp ? "Content-Type: application/sdp\r\n" : "", sdp ? strlen(sdp) : 0,
		      sdp ? sdp : "");
}

/* Call I on the active: the caller's INVITE, the callee's 180, and for an
 * established call the callee's 200 and the caller's ACK. */
static int build_call(struct hs_node *act, unsigned i, bool established)
{
	const struct sip_peer caller = udp_peer("10.0.0.1", HS_CALLER_PORT);
	const struct sip_peer callee = udp_peer("10.0.0.50", HS_CALLEE_PORT);
	size_t ncalls = calls_count(act->srv.calls);
	uint64_t before = act->msgs, invites = act->invites;
	struct hs_uas u;
	char ttag[128];
	int ret;

	ret = inject(act, &caller,
		     "INVITE sip:3000@sipha.test SIP/2.0\r\n"
		     "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKa%u\r\nMax-Forwards: 70\r\n"
		     "From: \"Alice\" <sip:alice@sipha.test>;tag=f%u\r\n"
		     "To: <sip:3000@sipha.test>\r\nCall-ID: c%u@10.0.0.1\r\nCSeq: 1 INVITE\r\n"
		     "Contact: <sip:alice@10.0.0.1:5061>\r\nContent-Type: application/sdp\r\n"
		     "Content-Length: %zu\r\n\r\n%s",
		     i, i, i, strlen(HS_SDP), HS_SDP);
	if (!ret)
		ret = expect_sent(act, before, 2, "SIP/2.0 100 ", i, "INVITE");
	if (ret)
		return ret;
	if (act->invites != invites + 1 || calls_count(act->srv.calls) != ncalls + 1) {
		fprintf(stderr, "hascale: call %u: no call or no INVITE to the callee\n", i);
		return -EPROTO;
	}
	if (header_line(act->inv, "Via", u.via, sizeof(u.via)) ||
	    header_line(act->inv, "From", u.from, sizeof(u.from)) ||
	    header_line(act->inv, "To", u.to, sizeof(u.to)) ||
	    header_line(act->inv, "Call-ID", u.call_id, sizeof(u.call_id))) {
		fprintf(stderr, "hascale: call %u: cannot read sipha's INVITE:\n%.500s\n", i,
			act->inv);
		return -EPROTO;
	}
	before = act->msgs;
	ret = callee_answer(act, &callee, &u, i, 180, "Ringing", NULL);
	if (!ret)
		ret = expect_sent(act, before, 1, "SIP/2.0 180 ", i, "180");
	if (ret || !established)
		return ret;
	before = act->msgs;
	ret = callee_answer(act, &callee, &u, i, 200, "OK", HS_SDP_B);
	if (!ret)
		ret = expect_sent(act, before, 2, "SIP/2.0 200 ", i, "200");
	if (ret)
		return ret;
	if (to_tag(act->to_caller, ttag, sizeof(ttag))) {
		fprintf(stderr, "hascale: call %u: no To tag in the 200\n", i);
		return -EPROTO;
	}
	before = act->msgs;
	ret = inject(act, &caller,
		     "ACK sip:sipha@127.0.0.1:5060 SIP/2.0\r\n"
		     "Via: SIP/2.0/UDP 10.0.0.1:5061;branch=z9hG4bKack%u\r\nMax-Forwards: 70\r\n"
		     "From: \"Alice\" <sip:alice@sipha.test>;tag=f%u\r\n"
		     "To: <sip:3000@sipha.test>;tag=%s\r\nCall-ID: c%u@10.0.0.1\r\n"
		     "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
		     i, i, ttag, i);
	return ret ? ret : expect_sent(act, before, 0, NULL, i, "ACK");
}

struct hs_count {
	size_t est, ring, other;
};

static void count_call(void *arg, const struct call *c)
{
	struct hs_count *k = arg;

	if (c->state == CALL_ESTABLISHED)
		k->est++;
	else if (c->state == CALL_RINGING)
		k->ring++;
	else
		k->other++;
}

static int check_states(const struct hs_node *n, size_t est, size_t ring, const char *who)
{
	struct hs_count k = { 0 };

	calls_foreach(n->srv.calls, count_call, &k);
	if (k.est != est || k.ring != ring || k.other) {
		fprintf(stderr,
			"hascale: %s: %zu established, %zu ringing, %zu other; expected %zu and "
			"%zu\n",
			who, k.est, k.ring, k.other, est, ring);
		return -EPROTO;
	}
	return 0;
}

/* --- the snapshot -------------------------------------------------------------------- */

/* One pass over the calls in state WANT, each encoded as a record.  LIMIT:
 * empty the buffer past that many bytes (as a slice of feed.c ends), 0 to
 * keep everything for the apply. */
struct hs_snap {
	struct jr_buf *jb;
	uint64_t seq;
	enum call_state want;
	size_t limit;
	size_t records, bytes;
	int err;
};

static void snap_call(void *arg, const struct call *c)
{
	struct hs_snap *s = arg;
	int ret;

	if (s->err || c->state != s->want)
		return;
	ret = rep_call_encode(s->jb, ++s->seq, c, JR_OP_UPSERT);
	if (ret) {
		s->err = ret;
		return;
	}
	s->records++;
	if (s->limit && s->jb->len > s->limit) {
		s->bytes += s->jb->len;
		jr_buf_reset(s->jb);
	}
}

static int snap_pass(const struct hs_node *act, struct hs_snap *s)
{
	calls_foreach(act->srv.calls, snap_call, s);
	s->bytes += s->jb->len;
	if (s->err)
		fprintf(stderr, "hascale: rep_call_encode: %s\n", strerror(-s->err));
	return s->err;
}

/* What hal_send_frame() does with the bytes before queueing them: decode
 * every frame.  Returns the number of frames, or -errno. */
static long walk_frames(const struct jr_buf *jb)
{
	struct jr_decoder d;
	struct jr_frame f;
	size_t off = 0, used;
	long frames = 0;

	jr_decoder_init(&d, 0);
	while (off < jb->len) {
		if (jr_decode(&d, jb->data + off, jb->len - off, &used, &f))
			return -EBADMSG;
		off += used;
		frames++;
	}
	return frames;
}

/* Where a slice's frames go: the copy the link's stream makes of them
 * (loop_stream_write). */
struct hs_queue {
	uint8_t *data;
	size_t cap;
};

/* JB's frames handed on as feed.c's flush does through hal_send_frame():
 * every frame decoded, the bytes copied; JB is empty again.  Adds to
 * *FRAMES and *BYTES. */
static int hand_on(struct jr_buf *jb, struct hs_queue *q, long *frames, size_t *bytes)
{
	long n = walk_frames(jb);

	if (n < 0) {
		fprintf(stderr, "hascale: a slice's frames do not decode\n");
		return -EBADMSG;
	}
	if (jb->len > q->cap) {
		void *p = realloc(q->data, jb->len);

		if (!p)
			return -ENOMEM;
		q->data = p;
		q->cap = jb->len;
	}
	memcpy(q->data, jb->data, jb->len);
	*frames += n;
	*bytes += jb->len;
	jr_buf_reset(jb);
	return 0;
}

/* The standby's side of JB, as role.c's standby_frame: SNAPSHOT_BEGIN
 * marks, each RECORD is applied, SNAPSHOT_END sweeps (nothing, here). */
static int apply_frames(struct hs_node *sby, const struct jr_buf *jb)
{
	struct jr_decoder d;
	struct jr_frame f;
	struct jr_record r;
	size_t off = 0, used, swept;
	int ret;

	jr_decoder_init(&d, 0);
	while (off < jb->len) {
		ret = jr_decode(&d, jb->data + off, jb->len - off, &used, &f);
		if (ret) {
			fprintf(stderr, "hascale: jr_decode: %s\n", d.err ? d.err : "?");
			return ret;
		}
		off += used;
		switch (f.type) {
		case JR_T_SNAPSHOT_BEGIN:
			rep_clear_registrations(&sby->srv);
			calls_mark_all(sby->srv.calls);
			break;
		case JR_T_SNAPSHOT_END:
			swept = calls_sweep(sby->srv.calls, NULL, NULL);
			if (swept) {
				fprintf(stderr, "hascale: the snapshot swept %zu calls\n", swept);
				return -EPROTO;
			}
			break;
		case JR_T_RECORD:
			ret = jr_record_decode(&f, &r);
			if (!ret)
				ret = rep_apply(&sby->srv, &r);
			if (ret) {
				fprintf(stderr, "hascale: record %" PRIu64 " refused: %s\n", f.seq,
					strerror(-ret));
				return ret;
			}
			break;
		default:
			fprintf(stderr, "hascale: unexpected frame %s\n", jr_type_name(f.type));
			return -EPROTO;
		}
	}
	return 0;
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

static int snap_checked(const struct hs_node *act, struct hs_snap *s, size_t want)
{
	int ret = snap_pass(act, s);

	if (!ret && s->records != want) {
		fprintf(stderr, "hascale: the snapshot has %zu records, expected %zu\n", s->records,
			want);
		ret = -EPROTO;
	}
	return ret;
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
	ret = snap_checked(act, &est, run->est);
	rep->encode_est = (double)(now_ns() - t0);
	if (first)
		CALLGRIND_DUMP_STATS_AT("encode_est");
	if (ret)
		return ret;
	jr_buf_reset(jb);
	CALLGRIND_ZERO_STATS;
	t0 = now_ns();
	ret = snap_checked(act, &ring, run->ring);
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
		ret = hand_on(jb, q, &frames, &bytes);
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
			ret = hand_on(jb, q, &frames, &bytes);
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

	ret = node_init(sby, "b", false, run->max_txns);
	if (ret)
		return ret;
	h0 = heap_used();
	CALLGRIND_ZERO_STATS;
	t0 = now_ns();
	ret = apply_frames(sby, est);
	rep->apply_est = (double)(now_ns() - t0);
	if (first)
		CALLGRIND_DUMP_STATS_AT("apply_est");
	if (ret)
		goto out;
	h1 = heap_used();
	CALLGRIND_ZERO_STATS;
	t0 = now_ns();
	ret = apply_frames(sby, ring);
	rep->apply_ring = (double)(now_ns() - t0);
	if (first)
		CALLGRIND_DUMP_STATS_AT("apply_ring");
	if (ret)
		goto out;
	h2 = heap_used();
	ret = check_states(sby, run->est, run->ring, "standby");
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
	node_fini(sby);
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

	ret = node_init(sby, "b", false, 0);
	if (ret)
		return ret;
	ret = apply_frames(sby, est);
	if (!ret)
		ret = apply_frames(sby, ring);
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
	node_fini(sby);
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
	ret = node_init(act, "a", true, run->max_txns);
	if (ret)
		goto out;

	t0 = now_ns();
	for (unsigned i = 0; i < run->n && !ret; i++)
		ret = build_call(act, i, i % 2 == 0);
	run->build_s = (double)(now_ns() - t0) / 1e9;
	if (!ret)
		ret = check_states(act, run->est, run->ring, "active");
	if (ret)
		goto out;

	/* The snapshot the standbys get, kept whole: BEGIN and the established
	 * calls, then the ringing ones and END, so that each kind's apply is
	 * timed apart. */
	ret = jr_snapshot_encode(&est_buf, JR_T_SNAPSHOT_BEGIN, 1, run->n);
	est.seq = 1;
	if (!ret)
		ret = snap_checked(act, &est, run->est);
	ring.seq = est.seq;
	if (!ret)
		ret = snap_checked(act, &ring, run->ring);
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
		node_fini(act);
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

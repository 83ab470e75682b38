/* HA link over real TCP on 127.0.0.1, driven by the real loop.
 *
 * Two links share one loop in this process for most tests.  A peer that dies
 * (kill -9), hangs (SIGSTOP) or restarts runs as a child process: this binary
 * re-executed with --hal-peer, a link of its own that acknowledges every
 * record and exits cleanly (ASan leak check included) when its stdin closes.
 * Every wait is bounded: the loop runs under a deadline timer. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/log.h"
#include "core/loop.h"
#include "ha/link.h"

extern char **environ;

#define HB 10
#define TO_STABLE 250 /* tests that must not see a timeout */
#define TO_DEAD 60 /* tests that measure one */
#define DEAD_SLACK 50 /* how late on_peer_dead may be, in ms, under ASan */

/* --- a side of the pair ---------------------------------------------------- */

struct side {
	const char *id;
	uint64_t epoch;
	uint64_t instance;
	uint8_t mac[6];
	struct loop *l;
	struct hal_link *h;

	int ups, downs, deads, goodbyes, hellos, gones;
	struct jr_hello peer;
	uint64_t t_up, t_down, t_dead, t_gone;
	uint64_t rx_at_dead; /* stats.last_rx_ms when on_peer_dead came */
	int down_err;
	char down_reason[160];
	char events[32]; /* U up, D down, X dead, G goodbye, K gone, in order */
	unsigned nev;

	bool auto_ack;
	bool keyed; /* [ha] key_file: KEY */
	uint8_t key[32];
	uint64_t next_seq; /* the RECORD seq expected next; 0: any */
	uint64_t recs, regs, snaps, out_of_order;
};

static void ev(struct side *s, char c)
{
	if (s->nev < sizeof(s->events) - 1)
		s->events[s->nev++] = c;
}

static void fill_binding(struct jr_reg_binding *rb, uint64_t seq)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&rb->src;

	memset(rb, 0, sizeof(*rb));
	snprintf(rb->user, sizeof(rb->user), "%llu", (unsigned long long)(1000 + seq % 100));
	snprintf(rb->contact, sizeof(rb->contact), "sip:u%llu@10.0.0.1:5060",
		 (unsigned long long)seq);
	snprintf(rb->call_id, sizeof(rb->call_id), "call-%llu", (unsigned long long)seq);
	rb->expires_ms = 3600000 - seq;
	rb->cseq = (uint32_t)seq;
	rb->q = (uint16_t)(seq % 1001);
	rb->src_proto = JR_PROTO_UDP;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(5060);
	sin->sin_addr.s_addr = htonl(0x0a000001);
}

static void cb_up(void *arg, const struct jr_hello *peer)
{
	struct side *s = arg;

	s->ups++;
	s->peer = *peer;
	s->t_up = loop_now(s->l);
	ev(s, 'U');
}

static void cb_down(void *arg, int err, const char *reason)
{
	struct side *s = arg;

	s->downs++;
	s->down_err = err;
	snprintf(s->down_reason, sizeof(s->down_reason), "%s", reason);
	s->t_down = loop_now(s->l);
	ev(s, 'D');
}

static void cb_dead(void *arg)
{
	struct side *s = arg;

	s->deads++;
	s->t_dead = loop_now(s->l);
	s->rx_at_dead = hal_stats(s->h)->last_rx_ms;
	ev(s, 'X');
}

static void cb_gone(void *arg)
{
	struct side *s = arg;

	s->gones++;
	s->t_gone = loop_now(s->l);
	ev(s, 'K');
}

static void cb_frame(void *arg, const struct jr_frame *f)
{
	struct side *s = arg;
	struct jr_record r;

	switch (f->type) {
	case JR_T_GOODBYE:
		s->goodbyes++;
		ev(s, 'G');
		return;
	case JR_T_HELLO:
		s->hellos++;
		return;
	case JR_T_SNAPSHOT_BEGIN:
	case JR_T_SNAPSHOT_END:
		s->snaps++;
		break;
	case JR_T_RECORD:
		if (jr_record_decode(f, &r))
			return;
		if (s->next_seq && r.seq != s->next_seq)
			s->out_of_order++;
		s->next_seq = r.seq + 1;
		s->recs++;
		if (r.kind == JR_KIND_REGISTRATION) {
			struct jr_reg_binding got, want;

			fill_binding(&want, r.seq);
			if (!jr_reg_decode(&r, &got) && !memcmp(&got, &want, sizeof(got)))
				s->regs++;
		}
		break;
	default:
		return;
	}
	if (s->auto_ack)
		hal_send_ack(s->h, f->seq);
}

static const struct hal_ops side_ops = {
	.on_up = cb_up,
	.on_frame = cb_frame,
	.on_down = cb_down,
	.on_peer_dead = cb_dead,
	.on_peer_gone = cb_gone,
};

static void mkaddr(struct sockaddr_storage *ss, socklen_t *len, uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*len = sizeof(*sin);
}

static int side_start(struct side *s, struct loop *l, uint16_t listen, uint16_t peer, unsigned hb,
		      unsigned to)
{
	struct hal_config c;

	memset(&c, 0, sizeof(c));
	c.node_id = s->id;
	c.epoch = s->epoch;
	c.instance = s->instance;
	c.priority = 100;
	c.redundancy = JR_RED_HOT;
	c.role = JR_ROLE_PRIMARY;
	c.state = JR_STATE_STARTING;
	memcpy(c.mac, s->mac, 6);
	mkaddr(&c.listen, &c.listen_len, listen);
	mkaddr(&c.peer, &c.peer_len, peer);
	c.heartbeat_ms = hb;
	c.timeout_ms = to;
	c.backoff_min_ms = 20;
	c.backoff_max_ms = 200;
	c.keyed = s->keyed;
	memcpy(c.key, s->key, sizeof(c.key));
	s->l = l;
	return hal_new(l, &c, &side_ops, s, &s->h);
}

/* Two distinct free ports: both held while picking, so they differ. */
static void free_ports(uint16_t *a, uint16_t *b)
{
	int fd[2];

	for (int i = 0; i < 2; i++) {
		struct sockaddr_storage ss;
		socklen_t len;

		fd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(fd[i] >= 0);
		mkaddr(&ss, &len, 0);
		assert_int_equal(bind(fd[i], (struct sockaddr *)&ss, len), 0);
		assert_int_equal(getsockname(fd[i], (struct sockaddr *)&ss, &len), 0);
		*(i ? b : a) = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	close(fd[0]);
	close(fd[1]);
}

/* --- running the loop under a deadline --------------------------------------- */

struct runner {
	struct timer t;
	struct loop *l;
	bool (*pred)(void *arg);
	void *arg;
	uint64_t deadline;
	bool ok;
};

static void runner_tick(struct timer *t)
{
	struct runner *r = container_of(t, struct runner, t);

	if (r->pred && r->pred(r->arg)) {
		r->ok = true;
		loop_stop(r->l);
	} else if (loop_now(r->l) >= r->deadline) {
		loop_stop(r->l);
	} else {
		loop_timer_in(r->l, &r->t, 1);
	}
}

/* Runs L until PRED holds (true) or MAX_MS passed (false). */
static bool run_until(struct loop *l, bool (*pred)(void *), void *arg, unsigned max_ms)
{
	struct runner r = { .l = l, .pred = pred, .arg = arg };
	struct timespec ts;

	/* loop_now() is from the last iteration; the deadline is from now. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	r.deadline = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + max_ms;
	timer_init(&r.t, runner_tick);
	loop_timer_in(l, &r.t, 0);
	assert_int_equal(loop_run(l), 0);
	timer_del(loop_timers(l), &r.t);
	return r.ok;
}

static void run_for(struct loop *l, unsigned ms)
{
	run_until(l, NULL, NULL, ms);
}

/* --- fixture ------------------------------------------------------------------ */

struct fx {
	struct loop *l;
	struct side a, b;
	uint16_t pa, pb;
};

static void side_init(struct side *s, const char *id, uint64_t epoch, uint64_t instance,
		      uint8_t mac_last)
{
	memset(s, 0, sizeof(*s));
	s->id = id;
	s->epoch = epoch;
	s->instance = instance;
	s->mac[0] = 0x02;
	s->mac[5] = mac_last;
	s->auto_ack = true;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(loop_new(&f->l), 0);
	free_ports(&f->pa, &f->pb);
	side_init(&f->a, "a", 5, 0xa1, 0xaa);
	side_init(&f->b, "b", 9, 0xb1, 0xbb);
	*state = f;
	return 0;
}

/* Both sides with the same key: every test of the link again, authenticated. */
static int setup_keyed(void **state)
{
	struct fx *f;

	setup(state);
	f = *state;
	f->a.keyed = f->b.keyed = true;
	memset(f->a.key, 0x5a, 32);
	memset(f->b.key, 0x5a, 32);
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	hal_free(f->a.h);
	hal_free(f->b.h);
	loop_free(f->l);
	free(f);
	return 0;
}

static bool both_up(void *arg)
{
	struct fx *f = arg;

	return hal_is_up(f->a.h) && hal_is_up(f->b.h) && hal_stats(f->a.h)->conns == 1 &&
	       hal_stats(f->b.h)->conns == 1;
}

static void start_pair(struct fx *f, unsigned to)
{
	assert_int_equal(side_start(&f->a, f->l, f->pa, f->pb, HB, to), 0);
	assert_int_equal(side_start(&f->b, f->l, f->pb, f->pa, HB, to), 0);
	assert_true(run_until(f->l, both_up, f, 3000));
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* --- tests ------------------------------------------------------------------------ */

static void test_up_hello_heartbeats(void **state)
{
	struct fx *f = *state;
	struct hal_conn_info ia, ib;
	struct jr_record r = { .seq = 1, .kind = JR_KIND_AGENT, .op = JR_OP_DELETE };
	uint64_t hb_a, hb_b;

	assert_int_equal(side_start(&f->a, f->l, f->pa, f->pb, HB, TO_STABLE), 0);
	assert_int_equal(side_start(&f->b, f->l, f->pb, f->pa, HB, TO_STABLE), 0);
	/* Nothing goes out before the link is up. */
	r.key = (const uint8_t *)"k";
	r.key_len = 1;
	assert_false(hal_is_up(f->a.h));
	assert_null(hal_peer(f->a.h));
	assert_int_equal(hal_send_ack(f->a.h, 1), -ENOTCONN);
	assert_int_equal(hal_send_record(f->a.h, &r), -ENOTCONN);
	assert_int_equal(hal_conn_info(f->a.h, &ia), -ENOTCONN);

	assert_true(run_until(f->l, both_up, f, 3000));
	/* Each side got the other's HELLO. */
	assert_string_equal(f->a.peer.node_id, "b");
	assert_int_equal(f->a.peer.epoch, 9);
	assert_int_equal(f->a.peer.instance, 0xb1);
	assert_memory_equal(f->a.peer.mac, f->b.mac, 6);
	assert_int_equal(f->a.peer.proto_major, JR_VERSION);
	assert_string_equal(f->b.peer.node_id, "a");
	assert_int_equal(f->b.peer.epoch, 5);
	assert_int_equal(f->b.peer.instance, 0xa1);
	assert_memory_equal(f->b.peer.mac, f->a.mac, 6);
	assert_string_equal(hal_peer(f->b.h)->node_id, "a");
	/* One connection, the same on both sides, and started at once by both:
	 * the one "a" (the lower id) initiated. */
	assert_int_equal(hal_conn_info(f->a.h, &ia), 0);
	assert_int_equal(hal_conn_info(f->b.h, &ib), 0);
	assert_int_equal(port_of(&ia.local), port_of(&ib.remote));
	assert_int_equal(port_of(&ia.remote), port_of(&ib.local));
	assert_true(ia.outbound);
	assert_false(ib.outbound);
	assert_int_equal(port_of(&ia.remote), f->pb);

	/* Heartbeats both ways while idle, and no false alarm. */
	hb_a = hal_stats(f->a.h)->heartbeats_in;
	hb_b = hal_stats(f->b.h)->heartbeats_in;
	run_for(f->l, 200);
	assert_true(hal_stats(f->a.h)->heartbeats_in >= hb_a + 8);
	assert_true(hal_stats(f->b.h)->heartbeats_in >= hb_b + 8);
	assert_true(hal_stats(f->a.h)->heartbeats_out >= 8);
	assert_int_equal(f->a.ups, 1);
	assert_int_equal(f->b.ups, 1);
	assert_int_equal(f->a.downs + f->b.downs + f->a.deads + f->b.deads, 0);
	assert_int_equal(hal_stats(f->a.h)->conns, 1);
	assert_int_equal(hal_stats(f->b.h)->conns, 1);
	assert_int_equal(hal_stats(f->a.h)->decode_errors + hal_stats(f->b.h)->decode_errors, 0);
	assert_true(hal_stats(f->a.h)->last_rx_ms + 2 * HB >= loop_now(f->l));
}

struct want_recs {
	struct fx *f;
	uint64_t n;
};

static bool all_acked(void *arg)
{
	struct want_recs *w = arg;

	return w->f->b.recs >= w->n && hal_sync_lag(w->f->a.h) == 0 &&
	       hal_stats(w->f->a.h)->last_seq_acked >= w->n;
}

static void test_records_in_order_and_acks(void **state)
{
	enum {
		N = 3000
	};
	struct fx *f = *state;
	struct want_recs w = { f, N };
	struct jr_buf b;
	uint8_t fields[2100];

	start_pair(f, TO_STABLE);
	jr_buf_init(&b);
	/* All queued before the loop runs again: the stream carries a few MB
	 * and B sees frames split across reads. */
	for (uint64_t seq = 1; seq <= N; seq++) {
		if (seq % 3 == 0) {
			struct jr_reg_binding rb;

			fill_binding(&rb, seq);
			jr_buf_reset(&b);
			assert_int_equal(jr_reg_encode(&b, seq, JR_OP_UPSERT, &rb), 0);
			assert_int_equal(hal_send_frame(f->a.h, b.data, b.len), 0);
		} else {
			struct jr_record r = { .seq = seq,
					       .kind = JR_KIND_CALL,
					       .op = JR_OP_UPSERT };
			size_t flen = (seq * 37) % 2000;
			char key[32];

			/* Fields: one opaque attribute of FLEN bytes. */
			fields[0] = 0, fields[1] = 1, fields[2] = 0, fields[3] = 0;
			fields[4] = (uint8_t)(flen >> 8), fields[5] = (uint8_t)flen;
			memset(fields + 6, (int)(seq & 0xff), flen);
			snprintf(key, sizeof(key), "call-%llu", (unsigned long long)seq);
			r.key = (const uint8_t *)key;
			r.key_len = (uint32_t)strlen(key);
			r.has_fields = true;
			r.fields = fields;
			r.fields_len = (uint32_t)(6 + flen);
			assert_int_equal(hal_send_record(f->a.h, &r), 0);
		}
	}
	assert_int_equal(hal_stats(f->a.h)->last_seq_sent, N);
	assert_int_equal(hal_sync_lag(f->a.h), N);
	assert_true(run_until(f->l, all_acked, &w, 5000));
	assert_int_equal(f->b.recs, N);
	assert_int_equal(f->b.out_of_order, 0);
	assert_int_equal(f->b.regs, N / 3);
	assert_int_equal(hal_stats(f->b.h)->last_ack_sent, N);
	assert_int_equal(hal_stats(f->a.h)->last_seq_acked, N);
	assert_int_equal(hal_sync_lag(f->a.h), 0);

	/* Several frames in one call arrive in order too. */
	jr_buf_reset(&b);
	assert_int_equal(jr_snapshot_encode(&b, JR_T_SNAPSHOT_BEGIN, N + 2, 1), 0);
	{
		struct jr_reg_binding rb;

		fill_binding(&rb, N + 1);
		assert_int_equal(jr_reg_encode(&b, N + 1, JR_OP_UPSERT, &rb), 0);
		fill_binding(&rb, N + 2);
		assert_int_equal(jr_reg_encode(&b, N + 2, JR_OP_UPSERT, &rb), 0);
	}
	assert_int_equal(jr_snapshot_encode(&b, JR_T_SNAPSHOT_END, N + 2, 1), 0);
	assert_int_equal(hal_send_frame(f->a.h, b.data, b.len), 0);
	w.n = N + 2;
	assert_true(run_until(f->l, all_acked, &w, 3000));
	assert_int_equal(f->b.snaps, 2);
	assert_int_equal(f->b.regs, N / 3 + 2);
	assert_int_equal(f->b.out_of_order, 0);

	/* What hal_send_frame refuses, without harm to the link. */
	jr_buf_reset(&b);
	{
		struct jr_hello h = { .proto_major = 1, .node_id = "a" };

		assert_int_equal(jr_hello_encode(&b, &h), 0);
	}
	assert_int_equal(hal_send_frame(f->a.h, b.data, b.len), -EINVAL);
	jr_buf_reset(&b);
	assert_int_equal(jr_simple_encode(&b, JR_T_HEARTBEAT, 1), 0);
	assert_int_equal(hal_send_frame(f->a.h, b.data, b.len), -EINVAL);
	jr_buf_reset(&b);
	assert_int_equal(jr_simple_encode(&b, JR_T_ACK, 1), 0);
	assert_int_equal(hal_send_frame(f->a.h, b.data, b.len - 1), -EINVAL); /* partial */
	assert_int_equal(hal_send_frame(f->a.h, "garbage!garbage!", 16), -EINVAL);
	{
		size_t big = HAL_MAX_PAYLOAD + 1 - JR_ATTR_HDR_LEN;
		uint8_t *p = calloc(1, big);

		assert_non_null(p);
		jr_buf_reset(&b);
		assert_int_equal(jr_frame_begin(&b, JR_T_SNAPSHOT_BEGIN, N + 3), 0);
		jr_put_bytes(&b, 100, p, big);
		assert_int_equal(jr_frame_end(&b), 0);
		assert_int_equal(hal_send_frame(f->a.h, b.data, b.len), -EMSGSIZE);
		free(p);
	}
	/* A frame type from a future minor version is let through and skipped. */
	jr_buf_reset(&b);
	assert_int_equal(jr_frame_begin(&b, 200, 1), 0);
	jr_put_str(&b, 1, "from the future");
	assert_int_equal(jr_frame_end(&b), 0);
	assert_int_equal(hal_send_frame(f->a.h, b.data, b.len), 0);
	run_for(f->l, 50);
	assert_int_equal(hal_stats(f->b.h)->unknown_frames, 1);
	assert_true(hal_is_up(f->a.h));
	assert_int_equal(f->a.downs + f->b.downs, 0);
	assert_int_equal(hal_stats(f->b.h)->decode_errors, 0);
	assert_int_equal(hal_stats(f->b.h)->protocol_errors, 0);
	jr_buf_free(&b);
}

static bool a_dead(void *arg)
{
	return ((struct fx *)arg)->a.deads > 0;
}

static bool a_up_twice(void *arg)
{
	struct fx *f = arg;

	return f->a.ups >= 2 && both_up(f);
}

static void check_dead_timing(const struct side *s, unsigned to)
{
	/* Never early; late only by the loop's reaction time. */
	assert_true(s->t_dead >= s->rx_at_dead + to);
	assert_true(s->t_dead <= s->rx_at_dead + to + DEAD_SLACK);
	assert_true(s->t_down <= s->t_dead);
}

static void test_stop_then_start(void **state)
{
	struct fx *f = *state;

	start_pair(f, TO_DEAD);
	hal_stop(f->b.h, JR_BYE_SHUTDOWN, "maintenance");
	/* The local side sees its own link go down, never a dead peer. */
	assert_int_equal(f->b.downs, 1);
	assert_false(hal_is_up(f->b.h));
	assert_true(run_until(f->l, a_dead, f, 2000));
	/* A: the GOODBYE, then down, then dead timeout_ms after B's last frame. */
	assert_string_equal(f->a.events, "UGDX");
	assert_non_null(strstr(f->a.down_reason, "goodbye (shutdown): maintenance"));
	check_dead_timing(&f->a, TO_DEAD);
	assert_int_equal(f->b.deads, 0);
	/* A keeps knocking; a stopped B turns it away. */
	run_for(f->l, 100);
	assert_true(hal_stats(f->b.h)->accepts_refused >= 1);
	assert_int_equal(f->a.ups, 1);
	assert_int_equal(f->a.deads, 1); /* once per silence */

	hal_start(f->b.h);
	assert_true(run_until(f->l, a_up_twice, f, 3000));
	assert_int_equal(f->b.ups, 2);
	assert_int_equal(hal_stats(f->a.h)->reconnects, 1);
	assert_int_equal(hal_stats(f->a.h)->ups, 2);
	assert_string_equal(f->a.events, "UGDXU");
}

static bool b_got_hello(void *arg)
{
	return ((struct fx *)arg)->b.hellos > 0;
}

static void test_hello_update(void **state)
{
	struct fx *f = *state;

	start_pair(f, TO_STABLE);
	assert_int_equal(hal_update_hello(f->a.h, 42, JR_STATE_ACTIVE, 7), 0);
	assert_int_equal(hal_update_hello(f->a.h, 42, 200, 7), -EINVAL);
	assert_true(run_until(f->l, b_got_hello, f, 2000));
	assert_int_equal(hal_peer(f->b.h)->epoch, 42);
	assert_int_equal(hal_peer(f->b.h)->state, JR_STATE_ACTIVE);
	assert_int_equal(hal_peer(f->b.h)->last_seq, 7);
	assert_int_equal(f->b.ups, 1);
	assert_int_equal(f->b.downs, 0);
}

static void test_backlog_overflow(void **state)
{
	struct fx *f = *state;
	struct jr_record r = { .kind = JR_KIND_CALL, .op = JR_OP_UPSERT };
	size_t flen = 100000;
	uint8_t *fields = calloc(1, flen);
	int ret = 0;

	assert_non_null(fields);
	start_pair(f, TO_STABLE);
	fields[1] = 1; /* attribute type 1, length flen - 6 */
	fields[4] = (uint8_t)((flen - 6) >> 8);
	fields[5] = (uint8_t)(flen - 6);
	fields[3] = (uint8_t)((flen - 6) >> 16);
	r.key = (const uint8_t *)"big";
	r.key_len = 3;
	r.has_fields = true;
	r.fields = fields;
	r.fields_len = (uint32_t)flen;
	/* The loop does not run: nothing leaves, the backlog only grows. */
	for (uint64_t seq = 1; seq < 1000 && !ret; seq++) {
		r.seq = seq;
		ret = hal_send_record(f->a.h, &r);
	}
	assert_int_equal(ret, -ENOBUFS);
	assert_int_equal(hal_stats(f->a.h)->backlog_overflows, 1);
	assert_int_equal(f->a.downs, 1);
	assert_int_equal(f->a.down_err, -ENOBUFS);
	assert_false(hal_is_up(f->a.h));
	assert_int_equal(hal_send_record(f->a.h, &r), -ENOTCONN);
	/* It comes back by itself. */
	assert_true(run_until(f->l, a_up_twice, f, 3000));
	assert_int_equal(f->b.downs, 1);
	free(fields);
}

static void test_same_id_refused(void **state)
{
	struct fx *f = *state;

	f->b.id = "a";
	assert_int_equal(side_start(&f->a, f->l, f->pa, f->pb, HB, TO_STABLE), 0);
	assert_int_equal(side_start(&f->b, f->l, f->pb, f->pa, HB, TO_STABLE), 0);
	run_for(f->l, 400);
	assert_int_equal(f->a.ups + f->b.ups, 0);
	assert_true(hal_stats(f->a.h)->refused >= 1);
	assert_true(hal_stats(f->b.h)->refused >= 1);
	/* Backoff bounds the retries: 20, 40, 80, 160, 200... ms. */
	assert_true(hal_stats(f->a.h)->connect_attempts <= 8);
	/* No peer ever answered: the silence is reported once. */
	assert_int_equal(f->a.deads, 1);
	assert_int_equal(f->b.deads, 1);
}

/* --- raw clients ------------------------------------------------------------------- */

/* A client of PORT from SRC (NULL: the kernel's choice, 127.0.0.1). */
static int raw_connect_from(uint16_t port, const char *src)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	if (src) {
		struct sockaddr_in sin = { .sin_family = AF_INET };

		assert_int_equal(inet_pton(AF_INET, src, &sin.sin_addr), 1);
		assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	}
	mkaddr(&ss, &len, port);
	/* The kernel completes the handshake on the listen queue; the loop
	 * need not run for this to return. */
	assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	return fd;
}

static int raw_connect(uint16_t port)
{
	return raw_connect_from(port, NULL);
}

struct clients {
	int fd[16];
	bool closed[16];
	unsigned n;
};

/* Reads past whatever A says (HELLO, GOODBYE) until A closes. */
static bool all_closed(void *arg)
{
	struct clients *cs = arg;
	bool all = true;

	for (unsigned i = 0; i < cs->n; i++) {
		char buf[512];
		ssize_t r;

		while (!cs->closed[i]) {
			r = recv(cs->fd[i], buf, sizeof(buf), 0);
			if (r > 0)
				continue;
			if (r == 0 || errno != EAGAIN)
				cs->closed[i] = true;
			break;
		}
		all = all && cs->closed[i];
	}
	return all;
}

static void clients_close(struct clients *cs)
{
	for (unsigned i = 0; i < cs->n; i++)
		close(cs->fd[i]);
	cs->n = 0;
}

/* One client: connects to A, sends BUF, and must be dropped by A. */
static void one_client(struct fx *f, const void *buf, size_t len)
{
	struct clients cs = { .n = 1 };

	cs.fd[0] = raw_connect(f->pa);
	if (len)
		assert_int_equal(send(cs.fd[0], buf, len, MSG_NOSIGNAL), (ssize_t)len);
	assert_true(run_until(f->l, all_closed, &cs, 3000));
	clients_close(&cs);
}

static void hello_bytes(struct jr_buf *b, const char *id, uint8_t major, uint64_t instance)
{
	struct jr_hello h = { .proto_major = major, .instance = instance };

	snprintf(h.node_id, sizeof(h.node_id), "%s", id);
	jr_buf_reset(b);
	assert_int_equal(jr_hello_encode(b, &h), 0);
}

static void test_garbage_clients(void **state)
{
	struct fx *f = *state;
	const struct hal_stats *sa;
	struct clients flood = { 0 };
	struct jr_buf b;
	uint64_t hb0;

	start_pair(f, TO_STABLE);
	sa = hal_stats(f->a.h);
	jr_buf_init(&b);
	hb0 = hal_stats(f->b.h)->heartbeats_in;

	/* Not our protocol at all. */
	one_client(f, "GET / HTTP/1.0\r\n\r\n", 18);
	assert_int_equal(sa->decode_errors, 1);
	/* A right header over a HELLO whose first attribute has a bad size. */
	hello_bytes(&b, "zz", JR_VERSION, 1);
	b.data[JR_HDR_LEN + 5] = 0x40;
	one_client(f, b.data, b.len);
	assert_int_equal(sa->decode_errors, 2);
	/* A declared payload length over the limit, the rest never sent. */
	jr_buf_reset(&b);
	assert_int_equal(jr_simple_encode(&b, JR_T_RECORD, 5), 0);
	b.data[4] = 0x7f;
	one_client(f, b.data, 8);
	assert_int_equal(sa->decode_errors, 3);
	/* A valid HELLO with A's own node id. */
	hello_bytes(&b, "a", JR_VERSION, 2);
	one_client(f, b.data, b.len);
	assert_int_equal(sa->refused, 1);
	/* A HELLO of protocol 2.x in a 1.x frame, then a 2.x frame. */
	hello_bytes(&b, "c", 2, 3);
	one_client(f, b.data, b.len);
	assert_int_equal(sa->refused, 2);
	b.data[2] = 2;
	one_client(f, b.data, b.len);
	assert_int_equal(sa->refused, 3);
	assert_int_equal(sa->decode_errors, 3);
	/* A third node while the link with "b" is up. */
	hello_bytes(&b, "c", JR_VERSION, 4);
	one_client(f, b.data, b.len);
	assert_int_equal(sa->refused, 4);
	/* A frame before any HELLO. */
	jr_buf_reset(&b);
	assert_int_equal(jr_simple_encode(&b, JR_T_ACK, 5), 0);
	one_client(f, b.data, b.len);
	assert_int_equal(sa->protocol_errors, 1);
	/* Silence: dropped at the handshake deadline. */
	one_client(f, NULL, 0);
	assert_int_equal(sa->handshake_timeouts, 1);
	/* A flood of silent connections (no more than the listen backlog, as
	 * the loop is not accepting while they connect): four wait for their
	 * deadline, the rest are turned away at once. */
	for (flood.n = 0; flood.n < 8; flood.n++)
		flood.fd[flood.n] = raw_connect(f->pa);
	assert_true(run_until(f->l, all_closed, &flood, 3000));
	clients_close(&flood);
	assert_int_equal(sa->accepts_refused, 4);
	assert_int_equal(sa->handshake_timeouts, 5);
	assert_true(sa->accepts >= 17); /* and B's own connection(s) */

	/* The link never noticed. */
	assert_true(hal_is_up(f->a.h));
	assert_int_equal(f->a.ups, 1);
	assert_int_equal(f->a.downs + f->b.downs + f->a.deads + f->b.deads, 0);
	assert_true(hal_stats(f->b.h)->heartbeats_in > hb0 + 10);
	assert_int_equal(hal_peer(f->a.h)->instance, 0xb1);
	run_for(f->l, 30);
	assert_int_equal(sa->conns, 1);
	hal_send_ack(f->b.h, 77);
	assert_int_equal(hal_stats(f->b.h)->last_ack_sent, 77);
	jr_buf_free(&b);
}

/* A stranger (any address but [ha] peer's) that knows the protocol: closed
 * at accept, before a byte is read, however right its HELLO; counted. */
static void test_stranger_refused(void **state)
{
	struct fx *f = *state;
	const struct hal_stats *sa;
	struct clients cs = { .n = 1 };
	struct jr_buf b;

	start_pair(f, TO_STABLE);
	sa = hal_stats(f->a.h);
	jr_buf_init(&b);
	/* The peer's own node id, active, a huge epoch: what an attacker on
	 * the LAN would claim. */
	hello_bytes(&b, "b", JR_VERSION, 0xbad);
	cs.fd[0] = raw_connect_from(f->pa, "127.0.0.2");
	send(cs.fd[0], b.data, b.len, MSG_NOSIGNAL);
	assert_true(run_until(f->l, all_closed, &cs, 3000));
	clients_close(&cs);
	assert_int_equal(sa->strangers, 1);
	assert_int_equal(sa->decode_errors + sa->refused + sa->protocol_errors, 0);
	/* The link never noticed; the peer is still the real B. */
	assert_true(hal_is_up(f->a.h));
	assert_int_equal(f->a.ups, 1);
	assert_int_equal(f->a.downs, 0);
	assert_int_equal(hal_peer(f->a.h)->instance, 0xb1);

	/* From the peer's address, the peer's id, an absurd epoch: refused as
	 * a lie, never adopted. */
	{
		struct jr_hello h = { .proto_major = JR_VERSION,
				      .instance = 0xbad,
				      .epoch = 1000000,
				      .state = JR_STATE_ACTIVE };

		snprintf(h.node_id, sizeof(h.node_id), "b");
		jr_buf_reset(&b);
		assert_int_equal(jr_hello_encode(&b, &h), 0);
		one_client(f, b.data, b.len);
		assert_int_equal(sa->refused, 1);
		h.epoch = UINT64_MAX;
		jr_buf_reset(&b);
		assert_int_equal(jr_hello_encode(&b, &h), 0);
		one_client(f, b.data, b.len);
		assert_int_equal(sa->refused, 2);
	}
	assert_true(hal_is_up(f->a.h));
	assert_int_equal(f->a.downs, 0);
	assert_int_equal(hal_peer(f->a.h)->instance, 0xb1);
	assert_true(hal_peer(f->a.h)->epoch < 1000);
	jr_buf_free(&b);
}

/* --- authentication ([ha] key_file) ------------------------------------------------- */

/* Different keys, or a key on one side only: the link never comes up, each
 * attempt is an authentication failure, nothing of the peer is believed. */
static void test_auth_key_mismatch(void **state)
{
	struct fx *f = *state;

	for (int round = 0; round < 2; round++) {
		f->a.keyed = true;
		memset(f->a.key, 0x11, 32);
		f->b.keyed = round == 0;
		memset(f->b.key, 0x22, 32);
		assert_int_equal(side_start(&f->a, f->l, f->pa, f->pb, HB, TO_STABLE), 0);
		assert_int_equal(side_start(&f->b, f->l, f->pb, f->pa, HB, TO_STABLE), 0);
		run_for(f->l, 400);
		assert_false(hal_is_up(f->a.h));
		assert_false(hal_is_up(f->b.h));
		assert_int_equal(f->a.ups + f->b.ups, 0);
		assert_true(hal_stats(f->a.h)->auth_failures >= 1);
		assert_true(hal_stats(f->b.h)->auth_failures >= 1);
		hal_free(f->a.h);
		hal_free(f->b.h);
		f->a.h = f->b.h = NULL;
		run_for(f->l, 20);
	}
}

/* A forger at the peer's address that speaks the protocol.  Its HELLO has
 * a nonce; A answers with its own HELLO and AUTH.  FORGER_AUTH decides
 * what it answers. */
enum forger_auth {
	FA_GARBAGE, /* 32 random bytes */
	FA_REPLAYED, /* a right AUTH for another connection's nonces */
	FA_RIGHT_THEN_BAD_TAG, /* a right AUTH (it has the key), then a frame with a bad tag */
	FA_RIGHT_THEN_REPLAY, /* a right AUTH, a frame, then the same frame and tag again */
};

/* The next frame A sends the forger on FD (A's loop runs meanwhile). */
static size_t read_frame(struct fx *f, int fd, uint8_t *buf, size_t cap, struct jr_frame *fr)
{
	struct jr_decoder d;
	size_t have = 0, used = 0;

	jr_decoder_init(&d, 0);
	for (int i = 0; i < 3000; i++) {
		ssize_t n = recv(fd, buf + have, 1, 0); /* one byte at a time: no tags read */

		if (n == 1)
			have++;
		else
			run_for(f->l, 1);
		if (have >= JR_HDR_LEN && !jr_decode(&d, buf, have, &used, fr))
			return used;
		assert_true(have < cap);
	}
	fail_msg("no frame from A");
	return 0;
}

static void hmac3(const uint8_t key[32], const char *label, const uint8_t *a, const uint8_t *b,
		  const uint8_t *c, uint8_t out[32])
{
	crypto_auth_hmacsha256_state st;

	crypto_auth_hmacsha256_init(&st, key, 32);
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)label, strlen(label));
	crypto_auth_hmacsha256_update(&st, a, 32);
	crypto_auth_hmacsha256_update(&st, b, 32);
	if (c)
		crypto_auth_hmacsha256_update(&st, c, 32);
	crypto_auth_hmacsha256_final(&st, out);
}

static void send_tagged(int fd, const uint8_t k[32], uint64_t ctr, const struct jr_buf *fb,
			bool break_tag)
{
	crypto_auth_hmacsha256_state st;
	uint8_t be[8], t[32];

	for (int i = 7; i >= 0; i--, ctr >>= 8)
		be[i] = (uint8_t)ctr;
	crypto_auth_hmacsha256_init(&st, k, 32);
	crypto_auth_hmacsha256_update(&st, be, 8);
	crypto_auth_hmacsha256_update(&st, fb->data, fb->len);
	crypto_auth_hmacsha256_final(&st, t);
	if (break_tag)
		t[0] ^= 1;
	assert_int_equal(send(fd, fb->data, fb->len, MSG_NOSIGNAL), (ssize_t)fb->len);
	assert_int_equal(send(fd, t, 16, MSG_NOSIGNAL), 16);
}

static void forge(struct fx *f, enum forger_auth how)
{
	struct clients cs = { .n = 1 };
	struct jr_hello h = { .proto_major = JR_VERSION, .instance = 0xf0, .has_nonce = true };
	uint8_t buf[4096], my_hash[32], a_hash[32], mac[32], a_nonce[32], k_tx[32];
	struct jr_frame fr;
	struct jr_buf b;
	size_t n;

	jr_buf_init(&b);
	snprintf(h.node_id, sizeof(h.node_id), "b");
	randombytes_buf(h.nonce, 32);
	assert_int_equal(jr_hello_encode(&b, &h), 0);
	crypto_hash_sha256(my_hash, b.data + JR_HDR_LEN, b.len - JR_HDR_LEN);
	cs.fd[0] = raw_connect(f->pa);
	assert_int_equal(send(cs.fd[0], b.data, b.len, MSG_NOSIGNAL), (ssize_t)b.len);
	/* A's HELLO (it has our HELLO's nonce to answer). */
	n = read_frame(f, cs.fd[0], buf, sizeof(buf), &fr);
	(void)n;
	assert_int_equal(fr.type, JR_T_HELLO);
	{
		struct jr_hello ah;

		assert_int_equal(jr_hello_decode(&fr, &ah), 0);
		assert_true(ah.has_nonce);
		memcpy(a_nonce, ah.nonce, 32);
		crypto_hash_sha256(a_hash, fr.payload, fr.len);
	}
	(void)a_hash;
	switch (how) {
	case FA_GARBAGE:
		randombytes_buf(mac, 32);
		break;
	case FA_REPLAYED: {
		uint8_t other[32];

		randombytes_buf(other, 32); /* the nonce A sent on an earlier connection */
		hmac3(f->a.key, "sipha-ha-auth-v1", h.nonce, other, my_hash, mac);
		break;
	}
	default:
		hmac3(f->a.key, "sipha-ha-auth-v1", h.nonce, a_nonce, my_hash, mac);
		break;
	}
	jr_buf_reset(&b);
	assert_int_equal(jr_frame_begin(&b, JR_T_AUTH, 0), 0);
	jr_put_bytes(&b, JR_AUTH_MAC, mac, 32);
	assert_int_equal(jr_frame_end(&b), 0);
	assert_int_equal(send(cs.fd[0], b.data, b.len, MSG_NOSIGNAL), (ssize_t)b.len);
	if (how == FA_RIGHT_THEN_BAD_TAG || how == FA_RIGHT_THEN_REPLAY) {
		hmac3(f->a.key, "sipha-ha-frames-v1", h.nonce, a_nonce, NULL, k_tx);
		jr_buf_reset(&b);
		assert_int_equal(jr_simple_encode(&b, JR_T_HEARTBEAT, 0), 0);
		send_tagged(cs.fd[0], k_tx, 0, &b, how == FA_RIGHT_THEN_BAD_TAG);
		if (how == FA_RIGHT_THEN_REPLAY)
			send_tagged(cs.fd[0], k_tx, 0, &b, false); /* counter 0 again */
	}
	assert_true(run_until(f->l, all_closed, &cs, 3000));
	clients_close(&cs);
	jr_buf_free(&b);
}

static void test_auth_forgers(void **state)
{
	struct fx *f = *state;
	const struct hal_stats *sa;

	/* A alone, keyed: no real peer is ever around. */
	f->a.keyed = true;
	memset(f->a.key, 0x5a, 32);
	assert_int_equal(side_start(&f->a, f->l, f->pa, f->pb, HB, TO_STABLE), 0);
	sa = hal_stats(f->a.h);
	forge(f, FA_GARBAGE);
	assert_int_equal(sa->auth_failures, 1);
	forge(f, FA_REPLAYED);
	assert_int_equal(sa->auth_failures, 2);
	assert_int_equal(f->a.ups, 0);
	/* With the key (an insider): the AUTH is right, but a frame whose tag
	 * is wrong, or replayed, drops the connection all the same. */
	forge(f, FA_RIGHT_THEN_BAD_TAG);
	assert_int_equal(sa->auth_failures, 3);
	forge(f, FA_RIGHT_THEN_REPLAY);
	assert_int_equal(sa->auth_failures, 4);
	/* Its right AUTH was taken (the link came up), the bad frame took it down. */
	assert_int_equal(f->a.ups, 2);
	assert_int_equal(f->a.downs, 2);
	assert_false(hal_is_up(f->a.h));
}

/* --- the death watch ----------------------------------------------------------------- */

static bool a_watches(void *arg)
{
	struct fx *f = arg;

	return hal_stats(f->a.h)->watches == 1 && hal_stats(f->b.h)->watches_sent == 1;
}

static bool both_up_watched(void *arg)
{
	struct fx *f = arg;

	return hal_is_up(f->a.h) && hal_is_up(f->b.h) && a_watches(arg);
}

static bool a_watch_gone(void *arg)
{
	struct fx *f = arg;

	return hal_stats(f->a.h)->conns == 1;
}

/* A WATCH from the peer's address that is not the peer's: refused,
 * counted, and its close tells nothing. */
static void forge_watch(struct fx *f, uint64_t instance, bool with_mac)
{
	struct clients cs = { .n = 1 };
	struct jr_buf b;
	uint8_t mac[32];

	jr_buf_init(&b);
	assert_int_equal(jr_frame_begin(&b, JR_T_WATCH, 0), 0);
	jr_put_u64(&b, JR_WATCH_INSTANCE, instance);
	if (with_mac) {
		randombytes_buf(mac, sizeof(mac));
		jr_put_bytes(&b, JR_WATCH_MAC, mac, sizeof(mac));
	}
	assert_int_equal(jr_frame_end(&b), 0);
	cs.fd[0] = raw_connect(f->pa);
	assert_int_equal(send(cs.fd[0], b.data, b.len, MSG_NOSIGNAL), (ssize_t)b.len);
	assert_true(run_until(f->l, all_closed, &cs, 3000));
	clients_close(&cs);
	jr_buf_free(&b);
}

static void test_watch(void **state)
{
	struct fx *f = *state;
	const struct hal_stats *sa;

	start_pair(f, TO_STABLE);
	sa = hal_stats(f->a.h);
	/* B (as if active) watches over its process on A. */
	hal_watch(f->b.h, true);
	assert_true(run_until(f->l, a_watches, f, 3000));
	assert_int_equal(sa->conns, 2);

	/* Forgers: the right instance with a wrong proof or none, a second
	 * watch, a watch for another process. */
	forge_watch(f, 0xb1, true);
	forge_watch(f, 0xb1, false);
	forge_watch(f, 0xdead, true);
	assert_int_equal(sa->watches_refused, 3);
	assert_int_equal(sa->watches, 1);
	assert_int_equal(f->a.gones, 0);
	assert_true(hal_is_up(f->a.h));

	/* B ends its watch itself (it leaves the active role): a GOODBYE,
	 * not a death. */
	hal_watch(f->b.h, false);
	assert_true(run_until(f->l, a_watch_gone, f, 3000));
	run_for(f->l, 20);
	assert_int_equal(f->a.gones, 0);
	assert_int_equal(sa->peer_gone, 0);
	assert_true(hal_is_up(f->a.h));
	assert_string_equal(f->a.events, "U");
}

/* A node active before any link (a lone primary): its watch is set when
 * the link comes up. */
static void test_watch_before_link(void **state)
{
	struct fx *f = *state;

	assert_int_equal(side_start(&f->b, f->l, f->pb, f->pa, HB, TO_STABLE), 0);
	hal_watch(f->b.h, true);
	run_for(f->l, 30);
	assert_int_equal(side_start(&f->a, f->l, f->pa, f->pb, HB, TO_STABLE), 0);
	assert_true(run_until(f->l, both_up_watched, f, 3000));
}

/* --- simultaneous connect ------------------------------------------------------------- */

static void test_simultaneous_connect(void **state)
{
	static const char *const ids[][2] = { { "a", "b" }, { "node9", "node10" } };
	uint64_t dups = 0;

	(void)state;
	for (int round = 0; round < 20; round++) {
		struct fx f = { 0 };
		struct hal_conn_info ia, ib;
		struct side *lower;

		assert_int_equal(loop_new(&f.l), 0);
		free_ports(&f.pa, &f.pb);
		side_init(&f.a, ids[round & 1][0], 1, 0x100 + (uint64_t)round, 1);
		side_init(&f.b, ids[round & 1][1], 1, 0x200 + (uint64_t)round, 2);
		/* Created back to back: both connect in the same loop iteration. */
		start_pair(&f, TO_STABLE);
		run_for(f.l, 40);
		assert_true(both_up(&f));
		assert_int_equal(f.a.ups, 1);
		assert_int_equal(f.b.ups, 1);
		assert_int_equal(f.a.downs + f.b.downs, 0);
		assert_int_equal(hal_conn_info(f.a.h, &ia), 0);
		assert_int_equal(hal_conn_info(f.b.h, &ib), 0);
		assert_int_equal(port_of(&ia.local), port_of(&ib.remote));
		assert_int_equal(port_of(&ia.remote), port_of(&ib.local));
		/* strcmp order: "node10" < "node9". */
		lower = strcmp(f.a.id, f.b.id) < 0 ? &f.a : &f.b;
		assert_true(lower == &f.a ? ia.outbound : ib.outbound);
		assert_true(lower == &f.a ? !ib.outbound : !ia.outbound);
		dups += hal_stats(f.a.h)->duplicates + hal_stats(f.b.h)->duplicates;
		hal_free(f.a.h);
		hal_free(f.b.h);
		loop_free(f.l);
	}
	/* Every round had two connections, one closed by the tie-break. */
	assert_true(dups >= 20);
}

/* --- a peer in another process -------------------------------------------------------- */

static void peer_stdin(void *arg, int fd, unsigned revents)
{
	char buf[64];

	(void)revents;
	if (read(fd, buf, sizeof(buf)) <= 0)
		loop_stop(arg);
}

struct peer_deadline {
	struct timer t;
	struct loop *l;
	bool hit;
};

static void peer_deadline_fire(struct timer *t)
{
	struct peer_deadline *d = container_of(t, struct peer_deadline, t);

	/* The parent never closed our stdin: end anyway, and say so. */
	d->hit = true;
	loop_stop(d->l);
}

static int peer_main(int argc, char **argv)
{
	struct side s;
	struct loop *l;
	struct peer_deadline dl = { 0 };

	if (argc != 9)
		return 2;
	side_init(&s, argv[2], strtoull(argv[3], NULL, 0), strtoull(argv[8], NULL, 0), 0xcc);
	log_set_ident("peer");
	if (loop_new(&l))
		return 1;
	if (side_start(&s, l, (uint16_t)atoi(argv[4]), (uint16_t)atoi(argv[5]),
		       (unsigned)atoi(argv[6]), (unsigned)atoi(argv[7])))
		return 1;
	if (loop_poll_add(l, 0, peer_stdin, l))
		return 1;
	/* As an active node does: its death is seen through the watch. */
	hal_watch(s.h, true);
	dl.l = l;
	timer_init(&dl.t, peer_deadline_fire);
	loop_timer_in(l, &dl.t, 60000);
	loop_run(l);
	timer_del(loop_timers(l), &dl.t);
	hal_free(s.h);
	loop_free(l);
	return dl.hit ? 3 : 0;
}

struct child {
	pid_t pid;
	int wfd;
};

static void spawn_peer(struct child *c, const char *id, uint64_t epoch, uint64_t instance,
		       uint16_t listen, uint16_t peer, unsigned to)
{
	char ep[24], lp[8], pp[8], hb[8], tos[8], inst[24];
	char *argv[] = { "test_halink", "--hal-peer", (char *)id, ep, lp, pp, hb, tos, inst, NULL };
	posix_spawn_file_actions_t fa;
	int p[2];

	snprintf(ep, sizeof(ep), "%llu", (unsigned long long)epoch);
	snprintf(lp, sizeof(lp), "%u", listen);
	snprintf(pp, sizeof(pp), "%u", peer);
	snprintf(hb, sizeof(hb), "%u", HB);
	snprintf(tos, sizeof(tos), "%u", to);
	snprintf(inst, sizeof(inst), "%llu", (unsigned long long)instance);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	assert_int_equal(posix_spawn_file_actions_adddup2(&fa, p[0], 0), 0);
	assert_int_equal(posix_spawn(&c->pid, "/proc/self/exe", &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(p[0]);
	c->wfd = p[1];
}

/* Reaps C; with GRACEFUL, closes its stdin and expects exit status 0. */
static void end_peer(struct child *c, bool graceful)
{
	int st = 0;

	if (c->pid <= 0)
		return;
	if (!graceful)
		kill(c->pid, SIGKILL);
	close(c->wfd);
	for (int i = 0; i < 500; i++) {
		if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
			c->pid = 0;
			break;
		}
		usleep(10000);
	}
	if (c->pid) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, &st, 0);
		c->pid = 0;
		fail_msg("peer process did not exit");
	}
	if (graceful) {
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
}

static bool a_up_with_epoch(void *arg)
{
	struct fx *f = arg;

	/* The link, and the peer's death watch once it is set. */
	return hal_is_up(f->a.h) && hal_peer(f->a.h)->epoch == f->b.epoch &&
	       (hal_stats(f->a.h)->conns == 1 ||
		(hal_stats(f->a.h)->conns == 2 && hal_stats(f->a.h)->watches > 0));
}

static bool a_lag_zero(void *arg)
{
	struct fx *f = arg;

	return hal_sync_lag(f->a.h) == 0 && hal_stats(f->a.h)->last_seq_acked > 0;
}

static bool a_watched(void *arg)
{
	struct fx *f = arg;

	return hal_stats(f->a.h)->watches == 1;
}

static void test_peer_killed_and_restarted(void **state)
{
	struct fx *f = *state;
	struct child c1, c2;
	struct jr_buf b;
	uint64_t inst1;

	assert_int_equal(side_start(&f->a, f->l, f->pa, f->pb, HB, TO_DEAD), 0);
	f->b.epoch = 20;
	spawn_peer(&c1, "b", 20, 0xb20, f->pb, f->pa, TO_DEAD);
	assert_true(run_until(f->l, a_up_with_epoch, f, 5000));
	inst1 = hal_peer(f->a.h)->instance;
	assert_int_equal(inst1, 0xb20);

	/* Replication across processes: the peer acknowledges. */
	jr_buf_init(&b);
	for (uint64_t seq = 1; seq <= 50; seq++) {
		struct jr_reg_binding rb;

		fill_binding(&rb, seq);
		jr_buf_reset(&b);
		assert_int_equal(jr_reg_encode(&b, seq, JR_OP_UPSERT, &rb), 0);
		assert_int_equal(hal_send_frame(f->a.h, b.data, b.len), 0);
	}
	assert_true(run_until(f->l, a_lag_zero, f, 3000));
	assert_int_equal(hal_stats(f->a.h)->last_seq_acked, 50);
	assert_true(run_until(f->l, a_watched, f, 3000));

	/* kill -9: the kernel closes the socket with no GOODBYE: A sees it go
	 * down at once, is told the process is gone (K), and still declares
	 * the peer dead timeout_ms after its last frame. */
	end_peer(&c1, false);
	assert_true(run_until(f->l, a_dead, f, 2000));
	assert_string_equal(f->a.events, "UDKX");
	assert_int_equal(hal_stats(f->a.h)->peer_gone, 1);
	/* Told by the watch, long before the silence could say it. */
	assert_true(f->a.t_gone - f->a.t_down <= 1);
	assert_true(f->a.t_dead - f->a.t_gone >= TO_DEAD / 2);
	check_dead_timing(&f->a, TO_DEAD);

	/* A restarted peer: new instance, new epoch. */
	f->b.epoch = 21;
	spawn_peer(&c2, "b", 21, 0xb21, f->pb, f->pa, TO_DEAD);
	assert_true(run_until(f->l, a_up_with_epoch, f, 5000));
	assert_int_equal(hal_peer(f->a.h)->instance, 0xb21);
	assert_int_equal(f->a.ups, 2);
	assert_string_equal(f->a.events, "UDKXU");
	/* The new process has nothing: the lag says so until it acks. */
	assert_int_equal(hal_sync_lag(f->a.h), 50);
	run_for(f->l, 50);
	assert_true(hal_is_up(f->a.h));
	end_peer(&c2, true);
	jr_buf_free(&b);
}

static void test_peer_hangs(void **state)
{
	struct fx *f = *state;
	struct child c;

	assert_int_equal(side_start(&f->a, f->l, f->pa, f->pb, HB, TO_DEAD), 0);
	f->b.epoch = 30;
	spawn_peer(&c, "b", 30, 0xb30, f->pb, f->pa, TO_DEAD);
	assert_true(run_until(f->l, a_up_with_epoch, f, 5000));

	/* A hung process keeps its socket open: only the silence tells. */
	assert_int_equal(kill(c.pid, SIGSTOP), 0);
	assert_true(run_until(f->l, a_dead, f, 2000));
	assert_string_equal(f->a.events, "UDX");
	assert_int_equal(f->a.down_err, -ETIMEDOUT);
	assert_int_equal(f->a.t_down, f->a.t_dead);
	check_dead_timing(&f->a, TO_DEAD);
	/* Silence of 2 heartbeats and more, at each of A's ticks until then. */
	assert_true(hal_stats(f->a.h)->heartbeats_missed >= 2);

	assert_int_equal(kill(c.pid, SIGCONT), 0);
	assert_true(run_until(f->l, a_up_with_epoch, f, 5000));
	assert_int_equal(f->a.ups, 2);
	assert_int_equal(hal_peer(f->a.h)->instance, 0xb30);
	end_peer(&c, true);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_up_hello_heartbeats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_records_in_order_and_acks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_then_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hello_update, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backlog_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_id_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stranger_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch, setup_keyed, teardown),
		cmocka_unit_test_setup_teardown(test_watch_before_link, setup_keyed, teardown),
		cmocka_unit_test_setup_teardown(test_watch_before_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_clients, setup, teardown),
		cmocka_unit_test(test_simultaneous_connect),
		cmocka_unit_test_setup_teardown(test_peer_killed_and_restarted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_hangs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_up_hello_heartbeats, setup_keyed, teardown),
		cmocka_unit_test_setup_teardown(test_records_in_order_and_acks, setup_keyed,
						teardown),
		cmocka_unit_test_setup_teardown(test_stop_then_start, setup_keyed, teardown),
		cmocka_unit_test_setup_teardown(test_hello_update, setup_keyed, teardown),
		cmocka_unit_test_setup_teardown(test_auth_key_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auth_forgers, setup, teardown),
	};

	if (argc > 1 && !strcmp(argv[1], "--hal-peer"))
		return peer_main(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

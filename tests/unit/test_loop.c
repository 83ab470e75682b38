/* The io_uring loop on a real ring: timers armed by a handler after an idle
 * sleep, datagrams both ways, and a stream echo with framing left to the
 * caller. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/loop.h"

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct idle_ctx {
	struct loop *l;
	struct timer t, guard;
	int tfd;
	uint64_t armed_at;
	uint64_t fired_after;
	bool fired;
};

static void idle_fired(struct timer *t)
{
	struct idle_ctx *c = container_of(t, struct idle_ctx, t);

	c->fired = true;
	c->fired_after = mono_ms() - c->armed_at;
	loop_stop(c->l);
}

static void guard_fired(struct timer *t)
{
	struct idle_ctx *c = container_of(t, struct idle_ctx, guard);

	loop_stop(c->l); /* bounded: never hang the suite */
}

static void woke(void *arg, int fd, unsigned revents)
{
	struct idle_ctx *c = arg;
	uint64_t n;

	(void)revents;
	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return;
	/* A handler arms a 100 ms timer right after the loop slept 300 ms. */
	c->armed_at = mono_ms();
	timer_init(&c->t, idle_fired);
	/* against the wheel's own clock, as the SIP engine arms its timers */
	timer_add(loop_timers(c->l), &c->t, loop_timers(c->l)->now + 100);
}

static void test_timer_after_idle_sleep(void **state)
{
	struct idle_ctx c = { 0 };
	struct itimerspec its = { .it_value = { .tv_nsec = 300 * 1000000 } };

	(void)state;
	assert_int_equal(loop_new(&c.l), 0);
	c.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	assert_true(c.tfd >= 0);
	assert_int_equal(loop_poll_add(c.l, c.tfd, woke, &c), 0);
	/* The only wheel timer is far away, so the loop sleeps until the
	 * timerfd (a kernel timer) wakes it. */
	timer_init(&c.guard, guard_fired);
	loop_timer_in(c.l, &c.guard, 5000);
	assert_int_equal(timerfd_settime(c.tfd, 0, &its, NULL), 0);
	assert_int_equal(loop_run(c.l), 0);
	assert_true(c.fired);
	/* On time, not at once with a clock stale by the 300 ms of sleep. */
	assert_true(c.fired_after >= 95);
	assert_true(c.fired_after < 1000);
	timer_del(loop_timers(c.l), &c.guard);
	loop_free(c.l);
	close(c.tfd);
}

struct udp_ctx {
	struct loop *l;
	int fd;
	int got;
	char last[64];
	struct sockaddr_storage dst;
	struct timer guard;
};

static void udp_rx(void *arg, int fd, const struct loop_dgram *d)
{
	struct udp_ctx *c = arg;

	(void)fd;
	snprintf(c->last, sizeof(c->last), "%.*s", (int)d->len, d->buf);
	c->dst = d->dst;
	if (++c->got == 1)
		/* answer the sender from the address it wrote to */
		loop_dgram_send(c->l, c->fd, "pong", 4, (const struct sockaddr *)d->src, d->srclen,
				(const struct sockaddr *)&d->dst);
	else
		loop_stop(c->l);
}

static void udp_guard(struct timer *t)
{
	loop_stop(container_of(t, struct udp_ctx, guard)->l);
}

static void test_datagrams_both_ways(void **state)
{
	struct udp_ctx c = { 0 };
	struct sockaddr_in a = { .sin_family = AF_INET }, b = a;
	socklen_t len = sizeof(a);
	int peer;
	char buf[16];

	(void)state;
	assert_int_equal(loop_new(&c.l), 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_int_equal(bind(c.fd, (struct sockaddr *)&a, sizeof(a)), 0);
	getsockname(c.fd, (struct sockaddr *)&a, &len);
	assert_int_equal(loop_dgram_add(c.l, c.fd, udp_rx, &c), 0);
	peer = socket(AF_INET, SOCK_DGRAM, 0);
	b.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(peer, (struct sockaddr *)&b, sizeof(b)), 0);
	assert_int_equal(sendto(peer, "ping", 4, 0, (struct sockaddr *)&a, sizeof(a)), 4);
	timer_init(&c.guard, udp_guard);
	loop_timer_in(c.l, &c.guard, 2000);
	/* first run: receive ping, queue pong; the reply goes out with the
	 * next submission, so run again until the second datagram */
	assert_int_equal(sendto(peer, "again", 5, 0, (struct sockaddr *)&a, sizeof(a)), 5);
	assert_int_equal(loop_run(c.l), 0);
	assert_int_equal(c.got, 2);
	assert_string_equal(c.last, "again");
	/* IP_PKTINFO told us where the datagram was sent */
	assert_int_equal(((struct sockaddr_in *)&c.dst)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	assert_int_equal(recv(peer, buf, sizeof(buf), 0), 4);
	assert_memory_equal(buf, "pong", 4);
	assert_int_equal(loop_stats(c.l)->dgrams_in, 2);
	timer_del(loop_timers(c.l), &c.guard);
	loop_free(c.l);
	close(c.fd);
	close(peer);
}

struct stream_ctx {
	struct loop *l;
	int closed;
	int err;
	struct timer guard;
};

/* Echoes whole lines; keeps a partial line for later. */
static size_t echo_lines(struct loop_stream *s, void *arg, const char *buf, size_t len)
{
	const char *nl = memchr(buf, '\n', len);

	(void)arg;
	if (!nl)
		return 0;
	loop_stream_write(s, buf, (size_t)(nl - buf) + 1);
	return (size_t)(nl - buf) + 1;
}

static void echo_closed(struct loop_stream *s, void *arg, int err)
{
	struct stream_ctx *c = arg;

	(void)s;
	c->closed++;
	c->err = err;
	loop_stop(c->l);
}

static const struct loop_stream_ops echo_ops = { .on_data = echo_lines, .on_close = echo_closed };

static void stream_guard(struct timer *t)
{
	loop_stop(container_of(t, struct stream_ctx, guard)->l);
}

static void test_stream_echo_and_close(void **state)
{
	struct stream_ctx c = { 0 };
	int sv[2];
	char buf[64];
	ssize_t n;

	(void)state;
	assert_int_equal(loop_new(&c.l), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_non_null(loop_stream_add(c.l, sv[0], &echo_ops, &c));
	/* a line split in two writes, then a partial one, then EOF */
	assert_int_equal(write(sv[1], "hel", 3), 3);
	assert_int_equal(write(sv[1], "lo\nwor", 6), 6);
	shutdown(sv[1], SHUT_WR);
	timer_init(&c.guard, stream_guard);
	loop_timer_in(c.l, &c.guard, 2000);
	assert_int_equal(loop_run(c.l), 0);
	/* the peer's EOF closed the stream: reported once, with no error */
	assert_int_equal(c.closed, 1);
	assert_int_equal(c.err, 0);
	n = read(sv[1], buf, sizeof(buf));
	assert_int_equal(n, 6);
	assert_memory_equal(buf, "hello\n", 6);
	timer_del(loop_timers(c.l), &c.guard);
	loop_free(c.l);
	close(sv[1]);
}

/* A flushing close waits as long as the peer does not read; an abort ends
 * it at once, with the error given (the metrics endpoint's slow client). */
struct abort_ctx {
	struct stream_ctx c;
	struct loop_stream *s;
	int closed_before_abort;
	bool aborted;
	struct timer abort;
};

static void abort_fire(struct timer *t)
{
	struct abort_ctx *a = container_of(t, struct abort_ctx, abort);

	a->closed_before_abort = a->c.closed;
	a->aborted = true;
	loop_stream_abort(a->s, -ETIMEDOUT);
}

static void test_stream_abort_while_flushing(void **state)
{
	struct abort_ctx a = { 0 };
	static char chunk[64 << 10];
	int sv[2], sz = 4096;

	(void)state;
	assert_int_equal(loop_new(&a.c.l), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	a.s = loop_stream_add(a.c.l, sv[0], &echo_ops, &a.c);
	assert_non_null(a.s);
	/* 4 MiB the peer never reads: far more than the kernel holds */
	for (int i = 0; i < 64; i++)
		assert_int_equal(loop_stream_write(a.s, chunk, sizeof(chunk)), 0);
	loop_stream_close(a.s, true);
	timer_init(&a.abort, abort_fire);
	timer_init(&a.c.guard, stream_guard);
	loop_timer_in(a.c.l, &a.abort, 200);
	loop_timer_in(a.c.l, &a.c.guard, 3000);
	assert_int_equal(loop_run(a.c.l), 0);
	assert_true(a.aborted);
	assert_int_equal(a.closed_before_abort, 0); /* the flush was still waiting */
	assert_int_equal(a.c.closed, 1);
	assert_int_equal(a.c.err, -ETIMEDOUT);
	assert_int_equal(loop_stats(a.c.l)->streams_open, 0);
	timer_del(loop_timers(a.c.l), &a.c.guard);
	loop_free(a.c.l);
	close(sv[1]);
}

/* --- loop health: buffers running out, a full submission queue, a stream
 * that never frames ----------------------------------------------------- */

#define FLOOD 600 /* datagrams: more than the 256 provided buffers */

struct flood_ctx {
	struct loop *l;
	int got;
	struct timer guard;
};

static void flood_rx(void *arg, int fd, const struct loop_dgram *d)
{
	struct flood_ctx *c = arg;

	(void)fd;
	(void)d;
	if (++c->got == FLOOD)
		loop_stop(c->l);
}

static void flood_guard(struct timer *t)
{
	loop_stop(container_of(t, struct flood_ctx, guard)->l);
}

/* A bound UDP socket that can queue FLOOD datagrams, its address in *A. */
static int flood_socket(struct sockaddr_in *a)
{
	socklen_t len = sizeof(*a);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0), sz = 8 << 20;

	assert_true(fd >= 0);
	/* FORCE needs CAP_NET_ADMIN; without it the plain option, capped */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)a, sizeof(*a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)a, &len), 0);
	return fd;
}

/* FLOOD datagrams queued, every buffer held after use: the kernel fills
 * all 256, ends the multishot receive with ENOBUFS, and the loop counts it,
 * re-arms once the buffers are back and gets the rest.
 * SQ_FULL re-arm attempts find no submission slot first: each is counted
 * and retried, none is lost. */
static void run_flood(unsigned sq_full)
{
	struct flood_ctx c = { 0 };
	struct sockaddr_in a;
	int fd = flood_socket(&a), peer = socket(AF_INET, SOCK_DGRAM, 0);
	int queued = 0;

	assert_int_equal(loop_new(&c.l), 0);
	assert_int_equal(loop_dgram_add(c.l, fd, flood_rx, &c), 0);
	for (int i = 0; i < FLOOD; i++)
		if (sendto(peer, "x", 1, 0, (struct sockaddr *)&a, sizeof(a)) == 1)
			queued++;
	assert_int_equal(queued, FLOOD);
	/* The kernel hands over datagrams in small batches and the loop
	 * returns each buffer at once, so a real ring seldom runs dry in a
	 * test: hold every buffer back until it does. */
	loop_inject_buf_shortage(c.l, 256);
	loop_inject_sq_full(c.l, sq_full);
	timer_init(&c.guard, flood_guard);
	loop_timer_in(c.l, &c.guard, 3000);
	assert_int_equal(loop_run(c.l), 0);
	assert_int_equal(c.got, FLOOD);
	assert_true(loop_stats(c.l)->nobufs >= 1);
	assert_int_equal(loop_stats(c.l)->rearm_retries, sq_full);
	/* and the receive still works afterwards */
	c.got = FLOOD - 1;
	assert_int_equal(sendto(peer, "y", 1, 0, (struct sockaddr *)&a, sizeof(a)), 1);
	assert_int_equal(loop_run(c.l), 0);
	assert_int_equal(c.got, FLOOD);
	timer_del(loop_timers(c.l), &c.guard);
	loop_free(c.l);
	close(fd);
	close(peer);
}

static void test_nobufs_rearmed(void **state)
{
	(void)state;
	run_flood(0);
}

static void test_sq_full_rearm_retried(void **state)
{
	(void)state;
	run_flood(3);
}

/* A peer that sends and sends without one message we can frame: closed
 * with -EMSGSIZE once the input window is full, and counted. */
struct big_ctx {
	struct loop *l;
	int peer;
	int closed, err;
	size_t sent;
	struct timer pump, guard;
};

static size_t never_frames(struct loop_stream *s, void *arg, const char *buf, size_t len)
{
	(void)s;
	(void)arg;
	(void)buf;
	(void)len;
	return 0;
}

static void big_closed(struct loop_stream *s, void *arg, int err)
{
	struct big_ctx *c = arg;

	(void)s;
	c->closed++;
	c->err = err;
	loop_stop(c->l);
}

static const struct loop_stream_ops big_ops = { .on_data = never_frames, .on_close = big_closed };

static void big_pump(struct timer *t)
{
	struct big_ctx *c = container_of(t, struct big_ctx, pump);
	static char chunk[16384];
	ssize_t n;

	memset(chunk, 'a', sizeof(chunk));
	while ((n = send(c->peer, chunk, sizeof(chunk), MSG_DONTWAIT | MSG_NOSIGNAL)) > 0)
		c->sent += (size_t)n;
	if (c->sent < 4 * LOOP_STREAM_MAX_INBUF)
		loop_timer_in(c->l, &c->pump, 1);
}

static void big_guard(struct timer *t)
{
	loop_stop(container_of(t, struct big_ctx, guard)->l);
}

static void test_stream_oversized_input(void **state)
{
	struct big_ctx c = { 0 };
	int sv[2];

	(void)state;
	assert_int_equal(loop_new(&c.l), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	c.peer = sv[1];
	assert_non_null(loop_stream_add(c.l, sv[0], &big_ops, &c));
	timer_init(&c.pump, big_pump);
	timer_init(&c.guard, big_guard);
	loop_timer_in(c.l, &c.pump, 0);
	loop_timer_in(c.l, &c.guard, 3000);
	assert_int_equal(loop_run(c.l), 0);
	assert_int_equal(c.closed, 1);
	assert_int_equal(c.err, -EMSGSIZE);
	assert_true(c.sent >= LOOP_STREAM_MAX_INBUF);
	assert_int_equal(loop_stats(c.l)->streams_oversized, 1);
	assert_int_equal(loop_stats(c.l)->streams_open, 0);
	timer_del(loop_timers(c.l), &c.pump);
	timer_del(loop_timers(c.l), &c.guard);
	loop_free(c.l);
	close(sv[1]);
}

/* Out of descriptors, a multishot accept ends with EMFILE: the loop logs
 * it and retries after a pause, neither spinning nor going deaf; once
 * descriptors are back, the waiting connection is accepted. */
struct acc_ctx {
	struct loop *l;
	int accepted;
	struct rlimit saved;
	uint64_t iters_short; /* loop iterations while descriptors were short */
	struct timer restore, guard;
};

static void acc_fn(void *arg, int fd, const struct sockaddr_storage *peer, socklen_t len)
{
	struct acc_ctx *c = arg;

	(void)peer;
	(void)len;
	close(fd);
	c->accepted++;
	loop_stop(c->l);
}

static void acc_restore(struct timer *t)
{
	struct acc_ctx *c = container_of(t, struct acc_ctx, restore);

	c->iters_short = loop_stats(c->l)->iterations;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &c->saved), 0);
}

static void acc_guard(struct timer *t)
{
	loop_stop(container_of(t, struct acc_ctx, guard)->l);
}

static void test_accept_out_of_files_retried(void **state)
{
	struct acc_ctx c = { 0 };
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	struct rlimit low;
	int lfd, cfd, probe;

	(void)state;
	assert_int_equal(loop_new(&c.l), 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	assert_int_equal(listen(lfd, 8), 0);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(cfd >= 0);
	/* The lowest free descriptor becomes the limit: the next one fails. */
	probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(probe >= 0);
	close(probe);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &c.saved), 0);
	low = c.saved;
	low.rlim_cur = (rlim_t)probe;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	assert_int_equal(loop_listen_add(c.l, lfd, acc_fn, &c), 0);
	/* a loopback connect completes into the backlog at once */
	connect(cfd, (struct sockaddr *)&a, sizeof(a));
	timer_init(&c.restore, acc_restore);
	timer_init(&c.guard, acc_guard);
	loop_timer_in(c.l, &c.restore, 300);
	loop_timer_in(c.l, &c.guard, 3000);
	assert_int_equal(loop_run(c.l), 0);
	setrlimit(RLIMIT_NOFILE, &c.saved);
	assert_int_equal(c.accepted, 1);
	/* 300 ms with a retry every 50 ms: a few dozen iterations at most,
	 * where an immediate re-arm would have spun thousands of times */
	assert_true(c.iters_short > 0);
	assert_true(c.iters_short < 60);
	timer_del(loop_timers(c.l), &c.restore);
	timer_del(loop_timers(c.l), &c.guard);
	loop_free(c.l);
	close(cfd);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timer_after_idle_sleep),
		cmocka_unit_test(test_datagrams_both_ways),
		cmocka_unit_test(test_stream_echo_and_close),
		cmocka_unit_test(test_stream_abort_while_flushing),
		cmocka_unit_test(test_nobufs_rearmed),
		cmocka_unit_test(test_sq_full_rearm_retried),
		cmocka_unit_test(test_stream_oversized_input),
		cmocka_unit_test(test_accept_out_of_files_retried),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

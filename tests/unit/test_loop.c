/* The io_uring loop on a real ring: timers armed by a handler after an idle
 * sleep, datagrams both ways, and a stream echo with framing left to the
 * caller. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timer_after_idle_sleep),
		cmocka_unit_test(test_datagrams_both_ways),
		cmocka_unit_test(test_stream_echo_and_close),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

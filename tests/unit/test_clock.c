/* The HA clock (ha/clock.c): two clocks on loopback hear each other; a
 * clock whose SIP loop shows no progress stops its heartbeats and its peer
 * signals the silence; forged and replayed datagrams are refused; a clock
 * that stops is missed. */
#include <arpa/inet.h>
#include <poll.h>
#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ha/clock.h"

#define HB 10
#define TO 60

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void addr(struct sockaddr_storage *ss, socklen_t *len, uint16_t port)
{
	struct sockaddr_in *s = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	s->sin_family = AF_INET;
	s->sin_port = htons(port);
	s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*len = sizeof(*s);
}

static uint16_t free_udp_port(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	addr(&ss, &len, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	close(fd);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

struct fx {
	struct ha_clock *a, *b;
	uint16_t pa, pb;
	uint8_t key[32];
};

static void cfg_of(struct fx *f, struct ha_clock_config *c, uint16_t me, uint16_t peer,
		   uint64_t instance)
{
	memset(c, 0, sizeof(*c));
	addr(&c->listen, &c->listen_len, me);
	addr(&c->peer, &c->peer_len, peer);
	c->heartbeat_ms = HB;
	c->timeout_ms = TO;
	c->stall_ms = 100;
	c->keyed = true;
	memcpy(c->key, f->key, 32);
	c->instance = instance;
}

static int setup(void **state)
{
	static struct fx f;
	struct ha_clock_config ca, cb;

	memset(&f, 0, sizeof(f));
	assert_true(sodium_init() >= 0);
	memset(f.key, 0x42, sizeof(f.key));
	f.pa = free_udp_port();
	f.pb = free_udp_port();
	cfg_of(&f, &ca, f.pa, f.pb, 0xa1);
	cfg_of(&f, &cb, f.pb, f.pa, 0xb1);
	assert_int_equal(ha_clock_start(&f.a, &ca), 0);
	assert_int_equal(ha_clock_start(&f.b, &cb), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	ha_clock_stop(f->a);
	ha_clock_stop(f->b);
	return 0;
}

/* Keeps A's and B's SIP loops "alive" for MS, unless A is held. */
static void live_for(struct fx *f, unsigned ms, bool a_alive)
{
	uint64_t end = mono_ms() + ms;

	while (mono_ms() < end) {
		if (a_alive)
			ha_clock_progress(f->a, mono_ms());
		ha_clock_progress(f->b, mono_ms());
		usleep(2000);
	}
}

static bool fired(int fd, unsigned ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t n;

	if (poll(&p, 1, (int)ms) != 1)
		return false;
	return read(fd, &n, sizeof(n)) == (ssize_t)sizeof(n);
}

static void test_hear_hold_resume(void **state)
{
	struct fx *f = *state;
	struct ha_clock_stats sa, sb;

	live_for(f, 100, true);
	assert_true(ha_clock_hears_peer(f->a));
	assert_true(ha_clock_hears_peer(f->b));
	ha_clock_stats(f->b, &sb);
	assert_true(sb.heard >= 5);
	assert_int_equal(sb.refused, 0);
	assert_false(fired(ha_clock_fd(f->b), 0));

	/* A's loop stops showing progress: after stall_ms (100) it sends no
	 * more, and B signals the silence once, timeout_ms (60) later. */
	live_for(f, 300, false);
	ha_clock_stats(f->a, &sa);
	assert_true(sa.held >= 5);
	assert_false(ha_clock_hears_peer(f->b));
	assert_true(fired(ha_clock_fd(f->b), 0));
	assert_false(fired(ha_clock_fd(f->b), 50)); /* once per silence */
	ha_clock_stats(f->b, &sb);
	assert_int_equal(sb.silences, 1);

	/* A's loop moves again: B hears it again. */
	live_for(f, 100, true);
	assert_true(ha_clock_hears_peer(f->b));
}

/* What a forger on the peer's address sends: a datagram with the right
 * layout; TAG_KEY signs it (NULL: a garbage tag). */
static void forge(struct fx *f, uint64_t instance, uint64_t counter, const uint8_t *tag_key)
{
	uint8_t m[48] = { 'S', 'H', 'C', '1' };
	struct sockaddr_storage to;
	socklen_t len;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	for (int i = 0; i < 8; i++) {
		m[8 + i] = (uint8_t)(instance >> (56 - 8 * i));
		m[16 + i] = (uint8_t)(counter >> (56 - 8 * i));
	}
	if (tag_key) {
		crypto_auth_hmacsha256_state st;
		uint8_t full[32];

		crypto_auth_hmacsha256_init(&st, tag_key, 32);
		crypto_auth_hmacsha256_update(&st, (const uint8_t *)"sipha-ha-clock-v1", 17);
		crypto_auth_hmacsha256_update(&st, m, 32);
		crypto_auth_hmacsha256_final(&st, full);
		memcpy(m + 32, full, 16);
	} else {
		memset(m + 32, 0x77, 16);
	}
	addr(&to, &len, f->pb);
	assert_int_equal(sendto(fd, m, sizeof(m), 0, (struct sockaddr *)&to, len), 48);
	close(fd);
}

static void test_forgers(void **state)
{
	struct fx *f = *state;
	uint8_t wrong[32];
	struct ha_clock_stats sb0, sb1;

	live_for(f, 60, true);
	ha_clock_stats(f->b, &sb0);
	memset(wrong, 0x13, sizeof(wrong));
	/* A garbage tag, the wrong key, an old counter of A's instance: all
	 * refused, none keeps A alive once it is gone. */
	forge(f, 0xa1, 1u << 30, NULL);
	forge(f, 0xa1, 1u << 30, wrong);
	forge(f, 0xa1, 1, f->key);
	live_for(f, 30, true);
	ha_clock_stats(f->b, &sb1);
	assert_int_equal(sb1.refused - sb0.refused, 3);

	/* A stops: B misses it, and a stream of forgeries does not help. */
	ha_clock_stop(f->a);
	f->a = NULL;
	for (int i = 0; i < 20; i++) {
		forge(f, 0xa1, 1, f->key); /* replayed counter */
		forge(f, 0xdead, 5, NULL); /* an instance with no key */
		ha_clock_progress(f->b, mono_ms());
		usleep(5000);
	}
	assert_true(fired(ha_clock_fd(f->b), 100));
	assert_false(ha_clock_hears_peer(f->b));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hear_hold_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forgers, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

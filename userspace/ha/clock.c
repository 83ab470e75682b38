/* The HA clock (ha/clock.h, docs/HA-PROTOCOL.md §4.9).
 *
 * A datagram, 48 bytes, big-endian:
 *
 *   0  magic "SHC1"
 *   4  flags (u32, 0)
 *   8  instance (u64): the sender's, as in its HELLO
 *  16  counter (u64): the sender's datagrams, from 1
 *  24  unused (u64, 0)
 *  32  tag: the first 16 bytes of HMAC-SHA-256(key, "sipha-ha-clock-v1" |
 *      bytes 0..31); zeros without a key
 *
 * The thread's loop: poll the socket until the next tick or the silence
 * deadline, whichever comes first; read every datagram; at a tick, send
 * and stamp XDP if the SIP loop showed progress; past the deadline, signal. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "ha/clock.h"
#include "xdp/xdp.h"

#define CLK_MAGIC 0x53484331u /* "SHC1" */
#define CLK_LEN 48
#define CLK_SIGNED 32
#define CLK_TAG 16

struct ha_clock {
	struct ha_clock_config cfg;
	int fd, efd;
	pthread_t th;
	bool running;
	atomic_bool stop;
	atomic_uint_fast64_t progress_ms; /* the SIP loop's last sign of life */
	atomic_uint_fast64_t last_rx_ms; /* 0: never heard */
	uint64_t counter; /* ours */
	uint64_t peer_instance, peer_counter;
	bool fired, suspected; /* the eventfd was signalled for this silence */
	atomic_int phase; /* enum ha_clock_phase */
	pthread_mutex_t st_mu;
	struct ha_clock_stats st;
};

static const char clock_label[] = "sipha-ha-clock-v1";

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void tag(const struct ha_clock *c, const uint8_t *msg, uint8_t out[CLK_TAG])
{
	crypto_auth_hmacsha256_state st;
	uint8_t full[32];

	if (!c->cfg.keyed) {
		memset(out, 0, CLK_TAG);
		return;
	}
	crypto_auth_hmacsha256_init(&st, c->cfg.key, sizeof(c->cfg.key));
	crypto_auth_hmacsha256_update(&st, (const uint8_t *)clock_label, strlen(clock_label));
	crypto_auth_hmacsha256_update(&st, msg, CLK_SIGNED);
	crypto_auth_hmacsha256_final(&st, full);
	memcpy(out, full, CLK_TAG);
	sodium_memzero(&st, sizeof(st));
}

static void count(struct ha_clock *c, uint64_t *field)
{
	pthread_mutex_lock(&c->st_mu);
	(*field)++;
	pthread_mutex_unlock(&c->st_mu);
}

static bool from_peer(const struct ha_clock *c, const struct sockaddr_storage *a)
{
	const struct sockaddr_storage *p = &c->cfg.peer;

	if (a->ss_family != p->ss_family)
		return false;
	if (p->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)p)->sin_addr.s_addr;
	return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		       &((const struct sockaddr_in6 *)p)->sin6_addr, sizeof(struct in6_addr));
}

static void send_beat(struct ha_clock *c)
{
	uint8_t m[CLK_LEN] = { 0 };

	m[0] = 'S', m[1] = 'H', m[2] = 'C', m[3] = '1';
	put64(m + 8, c->cfg.instance);
	put64(m + 16, ++c->counter);
	tag(c, m, m + CLK_SIGNED);
	if (sendto(c->fd, m, sizeof(m), MSG_DONTWAIT, (const struct sockaddr *)&c->cfg.peer,
		   c->cfg.peer_len) == (ssize_t)sizeof(m))
		count(c, &c->st.sent);
}

/* One datagram: the peer's, authentic and new, or refused. */
static void hear(struct ha_clock *c, const uint8_t *m, ssize_t n,
		 const struct sockaddr_storage *from)
{
	uint8_t t[CLK_TAG];
	uint64_t inst, ctr;

	if (n != CLK_LEN || get64(m) >> 32 != CLK_MAGIC || !from_peer(c, from))
		goto refuse;
	tag(c, m, t);
	if (c->cfg.keyed && crypto_verify_16(t, m + CLK_SIGNED))
		goto refuse;
	inst = get64(m + 8);
	ctr = get64(m + 16);
	/* A restarted peer counts from 1 again under a new instance; the same
	 * instance must move forward (a replay does not). */
	if (inst == c->peer_instance && ctr <= c->peer_counter)
		goto refuse;
	c->peer_instance = inst;
	c->peer_counter = ctr;
	atomic_store(&c->last_rx_ms, mono_ms());
	c->fired = c->suspected = false;
	atomic_store(&c->phase, HA_CLOCK_HEARD);
	count(c, &c->st.heard);
	return;
refuse:
	count(c, &c->st.refused);
}

static void drain(struct ha_clock *c)
{
	uint8_t m[256];
	struct sockaddr_storage from;
	socklen_t fl;
	ssize_t n;

	for (int i = 0; i < 64; i++) {
		fl = sizeof(from);
		n = recvfrom(c->fd, m, sizeof(m), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
		if (n < 0)
			return;
		hear(c, m, n, &from);
	}
}

static void *run(void *arg)
{
	struct ha_clock *c = arg;
	uint64_t hb = c->cfg.heartbeat_ms, next = mono_ms();

	if (c->cfg.drop_caps && caps_drop(&c->cfg.keep))
		pr_warn("ha: clock: could not drop its capabilities");
	while (!atomic_load(&c->stop)) {
		uint64_t now = mono_ms(), rx = atomic_load(&c->last_rx_ms), wake = next;
		struct pollfd p = { .fd = c->fd, .events = POLLIN };

		if (now >= next) {
			if (now - next > hb)
				count(c, &c->st.late_ticks);
			if (now - atomic_load(&c->progress_ms) <= c->cfg.stall_ms) {
				send_beat(c);
				if (c->cfg.xdp)
					sxdp_heartbeat(c->cfg.xdp);
			} else {
				count(c, &c->st.held);
			}
			next = now + hb;
			wake = next;
		}
		if (rx && !c->fired) {
			uint64_t one = 1;

			if (now - rx >= c->cfg.timeout_ms) {
				c->fired = c->suspected = true;
				atomic_store(&c->phase, HA_CLOCK_SILENT);
				count(c, &c->st.silences);
				(void)!write(c->efd, &one, sizeof(one));
			} else if (c->cfg.suspect_ms && !c->suspected &&
				   now - rx >= c->cfg.suspect_ms) {
				c->suspected = true;
				atomic_store(&c->phase, HA_CLOCK_SUSPECT);
				(void)!write(c->efd, &one, sizeof(one));
			}
			if (!c->fired && c->cfg.suspect_ms && !c->suspected &&
			    rx + c->cfg.suspect_ms < wake)
				wake = rx + c->cfg.suspect_ms;
			if (!c->fired && rx + c->cfg.timeout_ms < wake)
				wake = rx + c->cfg.timeout_ms;
		}
		if (poll(&p, 1, wake > now ? (int)(wake - now) : 0) > 0)
			drain(c);
	}
	return NULL;
}

int ha_clock_start(struct ha_clock **out, const struct ha_clock_config *cfg)
{
	struct ha_clock *c = calloc(1, sizeof(*c));
	pthread_attr_t a;
	int ret;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->cfg = *cfg;
	c->efd = -1;
	pthread_mutex_init(&c->st_mu, NULL);
	atomic_store(&c->progress_ms, mono_ms());
	c->fd = socket(cfg->listen.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || bind(c->fd, (const struct sockaddr *)&cfg->listen, cfg->listen_len)) {
		ret = -errno;
		pr_err("ha: clock: cannot bind UDP on the [ha] listen address: %s", strerror(-ret));
		goto err;
	}
	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->efd < 0) {
		ret = -errno;
		goto err;
	}
	pthread_attr_init(&a);
	if (cfg->rt_priority > 0) {
		struct sched_param sp = { .sched_priority = cfg->rt_priority };

		pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED);
		pthread_attr_setschedpolicy(&a, SCHED_FIFO);
		pthread_attr_setschedparam(&a, &sp);
		ret = -pthread_create(&c->th, &a, run, c);
		if (!ret)
			c->st.realtime = true;
		else
			pr_warn("ha: clock: no real-time priority (%s); a normal thread",
				strerror(-ret));
	} else {
		ret = -1;
	}
	pthread_attr_destroy(&a);
	if (ret)
		ret = -pthread_create(&c->th, NULL, run, c);
	if (ret)
		goto err;
	c->running = true;
	*out = c;
	return 0;
err:
	if (c->fd >= 0)
		close(c->fd);
	if (c->efd >= 0)
		close(c->efd);
	pthread_mutex_destroy(&c->st_mu);
	free(c);
	return ret;
}

void ha_clock_stop(struct ha_clock *c)
{
	if (!c)
		return;
	atomic_store(&c->stop, true);
	if (c->running)
		pthread_join(c->th, NULL);
	close(c->fd);
	close(c->efd);
	pthread_mutex_destroy(&c->st_mu);
	sodium_memzero(c->cfg.key, sizeof(c->cfg.key));
	free(c);
}

void ha_clock_progress(struct ha_clock *c, uint64_t now_ms)
{
	if (c)
		atomic_store(&c->progress_ms, now_ms);
}

int ha_clock_fd(const struct ha_clock *c)
{
	return c->efd;
}

enum ha_clock_phase ha_clock_phase(const struct ha_clock *c)
{
	return (enum ha_clock_phase)atomic_load(&((struct ha_clock *)c)->phase);
}

bool ha_clock_hears_peer(const struct ha_clock *c)
{
	uint64_t rx = atomic_load(&((struct ha_clock *)c)->last_rx_ms);

	return rx && mono_ms() - rx < c->cfg.timeout_ms;
}

void ha_clock_stats(const struct ha_clock *c, struct ha_clock_stats *out)
{
	struct ha_clock *m = (struct ha_clock *)c;

	pthread_mutex_lock(&m->st_mu);
	*out = c->st;
	pthread_mutex_unlock(&m->st_mu);
}

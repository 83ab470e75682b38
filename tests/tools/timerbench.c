/* timerbench — how long one timer_run() takes with many pending timers, on a
 * fake clock advanced 1 ms at a time, as the event loop does when busy.
 *
 *   timerbench [-n TIMERS] [-m MINUTES] [-p PASSES] [-s SEED] mix|storm
 *
 * mix: TIMERS timers (default 1,000,000) kept pending all along: 64 HA
 *   heartbeats re-armed every 10 ms; 60% SIP transaction timers, 0.5–32 s,
 *   re-armed on firing with a new delay, and 50 of them re-armed at random
 *   before each tick (answers cancelling timers, new transactions); 40%
 *   registrations, first expiring anywhere in the hour, then re-armed for
 *   an hour (re-registrations).
 * storm: TIMERS registrations all armed at once for an hour plus up to one
 *   second (a re-registration storm after a failover), never re-armed.
 *
 * The clock starts half an hour before 2^24 ms, a boundary of the top levels
 * of both the cascading wheel and the current one, and runs MINUTES
 * (default 60 for mix, 62 for storm) minutes, or until the storm has fired.
 * Only timer_run() and timer_next() are timed, each call apart, in wall time
 * and in the thread's CPU time (which leaves out the time the thread was
 * preempted: on a shared machine the wall time's tail is mostly other
 * processes).  The whole is done PASSES times (default 2) from the same
 * seed, so every pass does exactly the same runs, and each run counts with
 * the lowest of its times: a hiccup of the machine (preemption, a stolen
 * vCPU, an interrupt) seldom hits the same run in every pass.  Prints one
 * line:
 *
 *   wheel=NAME scenario=S timers=N passes=P ticks=T fired=F pending=P
 *   run_mean_us=.. run_max_us=.. run_p999_us=.. run_p99_us=.. run_p50_us=..
 *   run_over_1ms=K cpu_mean_us=.. cpu_max_us=.. (the same for CPU time)
 *   next_cpu_max_us=.. total_s=..
 *
 * NAME is TIMERBENCH_WHEEL ("current" unless built otherwise): bench/timers.sh
 * builds this file a second time against the old wheel from git.  Uses
 * only the timer API both wheels share. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/timer.h"

#ifndef TIMERBENCH_WHEEL
#define TIMERBENCH_WHEEL "current"
#endif

#define HEARTBEATS 64
#define CHURN 50
#define HOUR_MS 3600000u
#define START_MS ((UINT64_C(1) << 24) - HOUR_MS / 2)

enum kind {
	K_HB,
	K_SIP,
	K_REG,
	K_STORM
};

struct btimer {
	struct timer t;
	enum kind kind;
};

static struct timer_wheel wheel;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t fired;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * UINT64_C(2685821657736338717);
}

static uint64_t rnd_range(uint64_t lo, uint64_t hi) /* [lo, hi] */
{
	return lo + rnd() % (hi - lo + 1);
}

static uint64_t sip_delay(void)
{
	return rnd_range(500, 32000);
}

static void on_fire(struct timer *t)
{
	struct btimer *b = container_of(t, struct btimer, t);

	fired++;
	switch (b->kind) {
	case K_HB:
		timer_add(&wheel, t, wheel.now + 10);
		break;
	case K_SIP:
		timer_add(&wheel, t, wheel.now + sip_delay());
		break;
	case K_REG:
		timer_add(&wheel, t, wheel.now + HOUR_MS + rnd_range(0, 999));
		break;
	case K_STORM:
		break;
	}
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static uint64_t cpu_ns(void)
{
	return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static uint32_t clamp32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* The first expiry of timer I, of kind K. */
static uint64_t first_expiry(size_t i, enum kind k)
{
	switch (k) {
	case K_HB:
		return wheel.now + 1 + i % 10;
	case K_SIP:
		return wheel.now + sip_delay();
	case K_REG:
		return wheel.now + rnd_range(1, HOUR_MS);
	case K_STORM:
		break;
	}
	return wheel.now + HOUR_MS + i % 1000;
}

/* Arms the N timers of BT, of the storm or of the mix; returns how many of
 * them are SIP timers (those after the heartbeats), for the churn.  They are
 * armed in random order, so that the lists of the wheel, like a server's,
 * chain timers scattered in memory. */
static size_t arm(struct btimer *bt, size_t n, bool storm)
{
	size_t i, j, sip = 0, *perm;

	perm = malloc(n * sizeof(*perm));
	if (!perm) {
		perror("malloc");
		exit(1);
	}
	for (i = 0; i < n; i++) {
		timer_init(&bt[i].t, on_fire);
		if (storm)
			bt[i].kind = K_STORM;
		else if (i < HEARTBEATS)
			bt[i].kind = K_HB;
		else if (i < HEARTBEATS + (n - HEARTBEATS) * 6 / 10)
			bt[i].kind = K_SIP;
		else
			bt[i].kind = K_REG;
		sip += bt[i].kind == K_SIP;
		perm[i] = i;
	}
	for (i = n - 1; i > 0; i--) {
		j = rnd() % (i + 1);
		size_t x = perm[i];

		perm[i] = perm[j];
		perm[j] = x;
	}
	for (i = 0; i < n; i++)
		timer_add(&wheel, &bt[perm[i]].t, first_expiry(i, bt[perm[i]].kind));
	free(perm);
	return sip;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(const uint32_t *sorted, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1));

	return sorted[i] / 1000.0;
}

/* Sorts the N samples of NS and prints them as PREFIX_max_us= and so on. */
static void report(const char *prefix, uint32_t *ns, size_t n)
{
	size_t i, over = 0;
	double sum = 0;

	for (i = 0; i < n; i++) {
		over += ns[i] > 1000000;
		sum += ns[i];
	}
	qsort(ns, n, sizeof(*ns), cmp_u32);
	printf(" %s_mean_us=%.2f", prefix, sum / (double)n / 1000.0);
	printf(" %s_max_us=%.1f %s_p999_us=%.1f %s_p99_us=%.1f %s_p50_us=%.2f %s_over_1ms=%zu",
	       prefix, ns[n - 1] / 1000.0, prefix, pct_us(ns, n, 0.999), prefix,
	       pct_us(ns, n, 0.99), prefix, pct_us(ns, n, 0.5), prefix, over);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: timerbench [-n TIMERS] [-m MINUTES] [-p PASSES] [-s SEED] mix|storm\n");
	exit(2);
}

/* Per run of the wheel: wall and CPU time of timer_run(), CPU time of the
 * timer_next() after it; the lowest over the passes. */
struct samples {
	uint32_t *wall, *cpu, *next;
};

static void keep_min(uint32_t *slot, uint64_t ns, bool first)
{
	uint32_t v = clamp32(ns);

	if (first || v < *slot)
		*slot = v;
}

/* One pass from scratch: N timers of the storm or the mix, at most TICKS
 * runs; returns the runs done. */
static size_t pass(struct btimer *bt, size_t n, bool storm, size_t ticks, struct samples *s,
		   bool first)
{
	uint64_t t0, t1, c0, c1;
	size_t sip, k, c;

	fired = 0;
	timer_wheel_init(&wheel, START_MS);
	sip = arm(bt, n, storm);
	for (k = 0; k < ticks && wheel.count; k++) {
		/* what the loop's handlers do between two runs: untimed */
		for (c = 0; sip && c < CHURN; c++)
			timer_add(&wheel, &bt[HEARTBEATS + rnd() % sip].t, wheel.now + sip_delay());
		c0 = cpu_ns();
		t0 = mono_ns();
		timer_run(&wheel, wheel.now + 1);
		t1 = mono_ns();
		c1 = cpu_ns();
		keep_min(&s->wall[k], t1 - t0, first);
		keep_min(&s->cpu[k], c1 - c0, first);
		c0 = cpu_ns();
		(void)timer_next(&wheel);
		c1 = cpu_ns();
		keep_min(&s->next[k], c1 - c0, first);
	}
	return k;
}

int main(int argc, char **argv)
{
	size_t n = 1000000, ticks, done = 0;
	uint64_t minutes = 0, seed = rng, start;
	unsigned passes = 2, p;
	struct samples s;
	struct btimer *bt;
	bool storm;
	int opt;

	while ((opt = getopt(argc, argv, "n:m:p:s:")) != -1) {
		switch (opt) {
		case 'n':
			n = strtoul(optarg, NULL, 10);
			break;
		case 'm':
			minutes = strtoull(optarg, NULL, 10);
			break;
		case 'p':
			passes = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0) | 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || n <= HEARTBEATS || !passes)
		usage();
	if (!strcmp(argv[optind], "storm"))
		storm = true;
	else if (!strcmp(argv[optind], "mix"))
		storm = false;
	else
		usage();
	if (!minutes)
		minutes = storm ? 62 : 60;
	ticks = (size_t)(minutes * 60000);
	bt = calloc(n, sizeof(*bt));
	s.wall = calloc(ticks, sizeof(*s.wall));
	s.cpu = calloc(ticks, sizeof(*s.cpu));
	s.next = calloc(ticks, sizeof(*s.next));
	if (!bt || !s.wall || !s.cpu || !s.next) {
		perror("calloc");
		return 1;
	}
	start = mono_ns();
	for (p = 0; p < passes; p++) {
		rng = seed; /* the same timers, the same runs */
		done = pass(bt, n, storm, ticks, &s, p == 0);
	}
	printf("wheel=%s scenario=%s timers=%zu passes=%u ticks=%zu fired=%" PRIu64 " pending=%zu",
	       TIMERBENCH_WHEEL, storm ? "storm" : "mix", n, passes, done, fired, wheel.count);
	report("run", s.wall, done);
	report("cpu", s.cpu, done);
	qsort(s.next, done, sizeof(*s.next), cmp_u32);
	printf(" next_cpu_max_us=%.1f total_s=%.1f\n", s.next[done - 1] / 1000.0,
	       (mono_ns() - start) / 1e9);
	free(s.next);
	free(s.cpu);
	free(s.wall);
	free(bt);
	return 0;
}

/* optprobe — measures how long a SIP address stops answering: a failover.
 *
 *   optprobe [-i INTERVAL_MS] [-g GAP_MS] [-T SEC] [-A SEC] IPV4[:PORT]
 *
 * Sends a well-formed OPTIONS to IPV4:PORT (default 5060) every INTERVAL_MS
 * (default 5) from one UDP socket and notes when each answer arrives.  It
 * prints "up NS" at the first answer, so a script knows the target serves.
 * SIGUSR1 arms it: send it just before the failure is caused.  From then on
 * it waits for a silence of at least GAP_MS (default 20) and ends at the
 * first answer after that silence, printing one line:
 *
 *   armed NS last NS first NS gap_ms MS sent N answered N
 *
 * armed is when SIGUSR1 was handled, last the last answer before the silence,
 * first the first one after it; times are CLOCK_REALTIME nanoseconds so that
 * a script can compare them with its own clock (bash's EPOCHREALTIME).  Only
 * datagrams from the target that start "SIP/2.0 " and carry this run's
 * Call-ID count as answers.
 *
 * Bounded: it stops after SEC seconds in all (default 30), or SEC seconds
 * after being armed (-A, default 10); at that point it sends no more and
 * waits up to 300 ms for the answers still in flight, so the last request is
 * not counted lost for being last.  If no silence of GAP_MS came by then but
 * answers did, the outage was shorter than GAP_MS: it prints "below ..." (the
 * same fields) with the longest silence between two answers that began
 * before the arming or less than GAP_MS after it (the failure's silence
 * begins there: an upper bound of that outage, under GAP_MS; a hiccup
 * seconds later is not taken for it); with no answer since the arming,
 * "timeout ...".  Exit status: 0 when a
 * silence was measured ("armed" or "below"), 1 on timeout or socket errors,
 * 2 on usage errors. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define OP_DEFAULT_PORT 5060
#define OP_BUF 4096

struct op_run {
	struct sockaddr_in dst;
	unsigned interval_ms, gap_ms, deadline_s, armed_deadline_s;
	char callid[64];
	char local[INET_ADDRSTRLEN + 8];
	unsigned sent, answered;
	uint64_t up_ns, armed_ns, last_ns, first_ns;
	bool in_gap; /* armed, and a silence of gap_ms seen */
	/* Armed, no silence of gap_ms yet: the longest one so far, between
	 * two answers, that began (its first answer) before the arming or
	 * less than gap_ms after it. */
	uint64_t below_last_ns, below_first_ns;
};

static volatile sig_atomic_t op_armed;

static void on_usr1(int sig)
{
	(void)sig;
	op_armed = 1;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

static int parse_dst(const char *arg, struct sockaddr_in *dst)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strchr(arg, ':');
	unsigned port = OP_DEFAULT_PORT;
	size_t n = colon ? (size_t)(colon - arg) : strlen(arg);

	if (n == 0 || n >= sizeof(host))
		return -EINVAL;
	memcpy(host, arg, n);
	host[n] = '\0';
	if (colon && !parse_uint(colon + 1, 1, 65535, &port))
		return -EINVAL;
	memset(dst, 0, sizeof(*dst));
	dst->sin_family = AF_INET;
	dst->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &dst->sin_addr) == 1 ? 0 : -EINVAL;
}

static int send_options(struct op_run *r, int fd)
{
	char host[INET_ADDRSTRLEN], msg[1024];
	unsigned seq = r->sent + 1;
	int len;

	inet_ntop(AF_INET, &r->dst.sin_addr, host, sizeof(host));
	len = snprintf(msg, sizeof(msg),
		       "OPTIONS sip:%s:%u SIP/2.0\r\n"
		       "Via: SIP/2.0/UDP %s;branch=z9hG4bK-op%u-%u;rport\r\n"
		       "Max-Forwards: 70\r\n"
		       "From: <sip:optprobe@%s>;tag=op%u\r\n"
		       "To: <sip:%s:%u>\r\n"
		       "Call-ID: %s\r\n"
		       "CSeq: %u OPTIONS\r\n"
		       "Content-Length: 0\r\n\r\n",
		       host, ntohs(r->dst.sin_port), r->local, (unsigned)getpid(), seq, r->local,
		       (unsigned)getpid(), host, ntohs(r->dst.sin_port), r->callid, seq);
	if (len < 0 || (size_t)len >= sizeof(msg))
		return -EOVERFLOW;
	if (sendto(fd, msg, (size_t)len, 0, (const struct sockaddr *)&r->dst, sizeof(r->dst)) < 0) {
		/* A failing target may make the kernel refuse a send for a
		 * moment (no neighbour yet, a full queue): it is not an answer,
		 * and the next tick tries again. */
		if (errno == EAGAIN || errno == ENOBUFS || errno == ECONNREFUSED ||
		    errno == EHOSTUNREACH || errno == ENETUNREACH)
			return 0;
		return -errno;
	}
	r->sent++;
	return 0;
}

static bool is_answer(const struct op_run *r, const char *buf, ssize_t n,
		      const struct sockaddr_in *from)
{
	if (from->sin_addr.s_addr != r->dst.sin_addr.s_addr || from->sin_port != r->dst.sin_port)
		return false;
	if (n < 8 || memcmp(buf, "SIP/2.0 ", 8))
		return false;
	return memmem(buf, (size_t)n, r->callid, strlen(r->callid)) != NULL;
}

/* Reads every datagram waiting; 1 once the silence is over, else 0 or -errno. */
static int drain(struct op_run *r, int fd)
{
	char buf[OP_BUF];
	struct sockaddr_in from;
	socklen_t flen;
	uint64_t now;
	ssize_t n;

	for (;;) {
		flen = sizeof(from);
		n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
			    errno == ECONNREFUSED)
				return 0;
			return -errno;
		}
		if (!is_answer(r, buf, n, &from))
			continue;
		now = realtime_ns();
		r->answered++;
		if (!r->up_ns) {
			r->up_ns = now;
			printf("up %llu\n", (unsigned long long)now);
			fflush(stdout);
		}
		if (r->in_gap) {
			r->first_ns = now;
			return 1;
		}
		if (r->armed_ns && r->last_ns &&
		    r->last_ns < r->armed_ns + (uint64_t)r->gap_ms * 1000000ull &&
		    now - r->last_ns > r->below_first_ns - r->below_last_ns) {
			r->below_last_ns = r->last_ns;
			r->below_first_ns = now;
		}
		r->last_ns = now;
	}
}

static int run(struct op_run *r)
{
	struct sockaddr_in me;
	socklen_t mlen = sizeof(me);
	uint64_t start = realtime_ns(), next = start, now, ref, grace_end = 0;
	int fd, ret = 0;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return -errno;
	/* connect() only to learn the source address the Via must name; the
	 * socket stays unconnected so it hears whoever answers. */
	if (connect(fd, (const struct sockaddr *)&r->dst, sizeof(r->dst)) ||
	    getsockname(fd, (struct sockaddr *)&me, &mlen)) {
		ret = -errno;
		goto out;
	}
	inet_ntop(AF_INET, &me.sin_addr, r->local, INET_ADDRSTRLEN);
	snprintf(r->local + strlen(r->local), 8, ":%u", ntohs(me.sin_port));
	{
		struct sockaddr_in un = { .sin_family = AF_UNSPEC };

		if (connect(fd, (const struct sockaddr *)&un, sizeof(un))) {
			ret = -errno;
			goto out;
		}
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int wait_ms;

		now = realtime_ns();
		if (op_armed && !r->armed_ns)
			r->armed_ns = now;
		if (!grace_end &&
		    (now - start > (uint64_t)r->deadline_s * 1000000000ull ||
		     (r->armed_ns &&
		      now - r->armed_ns > (uint64_t)r->armed_deadline_s * 1000000000ull))) {
			/* No more requests; the answers to those in flight still
			 * count (one sent a moment ago is not a lost one). */
			grace_end = now + 300000000ull;
		}
		if (grace_end && (now >= grace_end || r->answered >= r->sent)) {
			ret = -ETIMEDOUT;
			goto out;
		}
		/* The silence is measured from the last answer after arming,
		 * or from the arming itself when none came since. */
		ref = r->last_ns > r->armed_ns ? r->last_ns : r->armed_ns;
		if (r->armed_ns && !r->in_gap && now - ref >= (uint64_t)r->gap_ms * 1000000ull)
			r->in_gap = true;
		if (now >= next && !grace_end) {
			ret = send_options(r, fd);
			if (ret)
				goto out;
			next += (uint64_t)r->interval_ms * 1000000ull;
			if (next < now)
				next = now + (uint64_t)r->interval_ms * 1000000ull;
		}
		{
			uint64_t until = grace_end ? grace_end : next;

			wait_ms = until > now ? (int)((until - now) / 1000000ull) + 1 : 0;
		}
		if (poll(&p, 1, wait_ms) < 0 && errno != EINTR) {
			ret = -errno;
			goto out;
		}
		ret = drain(r, fd);
		if (ret < 0)
			goto out;
		if (ret == 1) {
			ret = 0;
			break;
		}
	}
out:
	close(fd);
	return ret;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: optprobe [-i INTERVAL_MS] [-g GAP_MS] [-T SEC] [-A SEC] IPV4[:PORT]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct op_run r = {
		.interval_ms = 5, .gap_ms = 20, .deadline_s = 30, .armed_deadline_s = 10
	};
	struct sigaction sa = { .sa_handler = on_usr1 };
	const char *what = "armed";
	bool ok = true;
	int opt, ret;

	while ((opt = getopt(argc, argv, "i:g:T:A:")) != -1) {
		switch (opt) {
		case 'i':
			ok = parse_uint(optarg, 1, 1000, &r.interval_ms);
			break;
		case 'g':
			ok = parse_uint(optarg, 1, 60000, &r.gap_ms);
			break;
		case 'T':
			ok = parse_uint(optarg, 1, 3600, &r.deadline_s);
			break;
		case 'A':
			ok = parse_uint(optarg, 1, 3600, &r.armed_deadline_s);
			break;
		default:
			return usage();
		}
		if (!ok) {
			fprintf(stderr, "optprobe: bad value for -%c: %s\n", opt, optarg);
			return 2;
		}
	}
	if (optind + 1 != argc)
		return usage();
	if (parse_dst(argv[optind], &r.dst)) {
		fprintf(stderr, "optprobe: bad address %s (want IPV4[:PORT])\n", argv[optind]);
		return 2;
	}
	snprintf(r.callid, sizeof(r.callid), "optprobe-%u-%llu", (unsigned)getpid(),
		 (unsigned long long)realtime_ns());
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL)) {
		perror("optprobe: sigaction");
		return 1;
	}

	ret = run(&r);
	if (ret && ret != -ETIMEDOUT) {
		fprintf(stderr, "optprobe: %s\n", strerror(-ret));
		return 1;
	}
	if (ret && !r.in_gap && r.below_first_ns) {
		r.last_ns = r.below_last_ns;
		r.first_ns = r.below_first_ns;
		ret = 0;
		what = "below";
	}
	printf("%s %llu last %llu first %llu gap_ms %.1f sent %u answered %u\n",
	       ret ? "timeout" : what, (unsigned long long)r.armed_ns,
	       (unsigned long long)r.last_ns, (unsigned long long)r.first_ns,
	       r.first_ns && r.last_ns ? (double)(r.first_ns - r.last_ns) / 1e6 : 0.0, r.sent,
	       r.answered);
	return ret ? 1 : 0;
}

/* udpflood — a small, fast, bounded UDP sender for the XDP tests and benchmarks.
 *
 *   udpflood -n COUNT [-r RATE] [-k KIND[,KIND...]] [-s SRC[,SRC...]] [-l LEN]
 *            [-b BATCH] [-T SEC] [-S SEED] [-u USER] HOST:PORT
 *   udpflood -L
 *
 * Sends exactly COUNT datagrams to HOST:PORT (an IPv4 address, or an IPv6 one
 * in brackets) with sendmmsg(), RATE per second (0: as fast as it goes), and
 * stops at the deadline of SEC seconds whatever happens.  The kinds listed
 * with -k take turns datagram by datagram; -L lists them.  With -s, one socket
 * is bound to each SRC and batches take turns among them, so one sender looks
 * like several sources (the addresses must be configured on an interface).
 *
 * A send the kernel refuses for a moment (ENOBUFS from a full qdisc, EAGAIN,
 * or ECONNREFUSED left by an ICMP error on the connected socket) is tried
 * again, so "sent" is what the kernel accepted.  The sockets ask for
 * IP_RECVERR, without which Linux reports a qdisc drop on UDP as success.
 * The summary on stdout is machine-readable:
 *
 *   sent N
 *   kind NAME N          (one line per kind)
 *   source ADDR N        (one line per source socket)
 *   retries N            (sends repeated after a refusal)
 *   elapsed_s SECONDS
 *   pps RATE             (datagrams per second achieved)
 *
 * Exit status: 0 when all COUNT were sent, 1 when the run failed (socket
 * error, deadline), 2 on usage errors. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define UF_MAX_COUNT 100000000u
#define UF_MAX_BATCH 256
#define UF_MAX_SRC 16
#define UF_MAX_KINDS 8
#define UF_BUF 1500 /* one Ethernet frame's worth: no IP fragments */
#define UF_MAX_LEN 1400
#define UF_POOL 256 /* random payloads cycled through by "garbage" */
#define UF_RETRY_NS 50000

struct uf_src {
	int fd;
	char host[INET6_ADDRSTRLEN + 3]; /* as written in a Via: [v6] */
	unsigned port;
	uint64_t sent;
};

struct uf_ctx {
	struct sockaddr_storage dst;
	socklen_t dstlen;
	char dsthost[INET6_ADDRSTRLEN + 3];
	unsigned len; /* payload length of garbage and text */
	const char *user; /* Request-URI user of the SIP kinds */
	uint64_t rng;
	pid_t pid;
	unsigned char pool[UF_POOL][UF_MAX_LEN];
};

typedef size_t (*uf_gen_fn)(struct uf_ctx *c, const struct uf_src *s, uint64_t seq, char *buf);

struct uf_kind {
	const char *name;
	const char *what;
	uf_gen_fn gen;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000ull, .tv_nsec = ns % 1000000000ull };

	nanosleep(&ts, NULL);
}

/* xorshift64*: reproducible from -S, no libc state. */
static uint32_t rnd(struct uf_ctx *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return (uint32_t)((c->rng * 0x2545F4914F6CDD1DULL) >> 32);
}

/* Random bytes behind a first byte of 0xff: no SIP method or response, no
 * token, no STUN header (its top two bits are zero), no CRLF keep-alive.
 * Every classifier, sipha's XDP program and siphad alike, must call it junk. */
static size_t gen_garbage(struct uf_ctx *c, const struct uf_src *s, uint64_t seq, char *buf)
{
	(void)s;
	memcpy(buf, c->pool[seq % UF_POOL], c->len);
	return c->len;
}

/* Plain text that is not SIP: an HTTP request, padded to -l bytes. */
static size_t gen_text(struct uf_ctx *c, const struct uf_src *s, uint64_t seq, char *buf)
{
	int n;

	(void)s;
	n = snprintf(buf, UF_BUF, "GET /index.html HTTP/1.1\r\nHost: %s\r\nX-Seq: %llu\r\n",
		     c->dsthost, (unsigned long long)seq);
	if (n < 0)
		return 0;
	if ((unsigned)n + 12 < c->len) {
		memcpy(buf + n, "X-Pad: ", 7);
		memset(buf + n + 7, 'x', c->len - n - 11);
		n = c->len - 4;
		memcpy(buf + n, "\r\n", 2);
		n += 2;
	}
	memcpy(buf + n, "\r\n", 2);
	return n + 2;
}

/* A SIP request with unique Call-ID, branch and tag per datagram.  TO_TAG
 * puts it inside a dialog. */
static size_t gen_sip(struct uf_ctx *c, const struct uf_src *s, uint64_t seq, char *buf,
		      const char *method, bool to_tag, bool sdp)
{
	static const char body[] = "v=0\r\n"
				   "o=udpflood 1 1 IN IP4 0.0.0.0\r\n"
				   "s=-\r\n"
				   "c=IN IP4 0.0.0.0\r\n"
				   "t=0 0\r\n"
				   "m=audio 40000 RTP/AVP 0\r\n";
	unsigned long long q = (unsigned long long)seq;
	bool reg = !strcmp(method, "REGISTER");
	int n;

	/* A REGISTER's Request-URI names the domain only (RFC 3261 §10.2). */
	n = snprintf(buf, UF_BUF,
		     "%s sip:%s%s%s SIP/2.0\r\n"
		     "Via: SIP/2.0/UDP %s:%u;branch=z9hG4bK-uf%d-%llu;rport\r\n"
		     "Max-Forwards: 70\r\n"
		     "From: <sip:flood@%s>;tag=uf%llu\r\n"
		     "To: <sip:%s@%s>%s\r\n"
		     "Call-ID: uf-%d-%llu-%08x@%s\r\n"
		     "CSeq: 1 %s\r\n"
		     "Contact: <sip:flood@%s:%u>\r\n"
		     "%s"
		     "Content-Length: %zu\r\n\r\n%s",
		     method, reg ? "" : c->user, reg ? "" : "@", c->dsthost, s->host, s->port,
		     c->pid, q, s->host, q, c->user, c->dsthost, to_tag ? ";tag=peer1" : "", c->pid,
		     q, rnd(c), s->host, method, s->host, s->port,
		     sdp ? "Content-Type: application/sdp\r\n" : "", sdp ? sizeof(body) - 1 : 0,
		     sdp ? body : "");
	if (n < 0 || n >= UF_BUF)
		return 0;
	return n;
}

static size_t gen_options(struct uf_ctx *c, const struct uf_src *s, uint64_t seq, char *buf)
{
	return gen_sip(c, s, seq, buf, "OPTIONS", false, false);
}

static size_t gen_invite(struct uf_ctx *c, const struct uf_src *s, uint64_t seq, char *buf)
{
	return gen_sip(c, s, seq, buf, "INVITE", false, true);
}

static size_t gen_reinvite(struct uf_ctx *c, const struct uf_src *s, uint64_t seq, char *buf)
{
	return gen_sip(c, s, seq, buf, "INVITE", true, true);
}

static size_t gen_register(struct uf_ctx *c, const struct uf_src *s, uint64_t seq, char *buf)
{
	return gen_sip(c, s, seq, buf, "REGISTER", false, false);
}

static const struct uf_kind kinds[] = {
	{ "garbage", "random bytes after a 0xff first byte (-l bytes)", gen_garbage },
	{ "text", "an HTTP GET, not SIP (padded to -l bytes)", gen_text },
	{ "options", "a well-formed OPTIONS", gen_options },
	{ "invite", "an initial INVITE with SDP (no To-tag)", gen_invite },
	{ "reinvite", "an in-dialog INVITE (To-tag) with SDP", gen_reinvite },
	{ "register", "a REGISTER for the -u user", gen_register },
};

#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static int usage(void)
{
	fprintf(stderr, "usage: udpflood -n COUNT [-r RATE] [-k KIND[,KIND...]] [-s SRC[,SRC...]] "
			"[-l LEN]\n"
			"                [-b BATCH] [-T SEC] [-S SEED] [-u USER] HOST:PORT\n"
			"       udpflood -L   (list the kinds)\n");
	return 2;
}

static bool parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* "a.b.c.d:port" or "[v6]:port" into C's destination. */
static int parse_dst(struct uf_ctx *c, const char *arg)
{
	char host[INET6_ADDRSTRLEN];
	const char *colon, *h = arg;
	unsigned long port;
	size_t hl;

	colon = strrchr(arg, ':');
	if (!colon || !parse_uint(colon + 1, 1, 65535, &port))
		return -EINVAL;
	hl = colon - arg;
	if (*h == '[') {
		if (hl < 2 || arg[hl - 1] != ']')
			return -EINVAL;
		h++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	memset(&c->dst, 0, sizeof(c->dst));
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&c->dst)->sin_addr) == 1) {
		struct sockaddr_in *a = (struct sockaddr_in *)&c->dst;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		c->dstlen = sizeof(*a);
		snprintf(c->dsthost, sizeof(c->dsthost), "%s", host);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&c->dst)->sin6_addr) == 1) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&c->dst;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		c->dstlen = sizeof(*a);
		snprintf(c->dsthost, sizeof(c->dsthost), "[%s]", host);
	} else {
		return -EINVAL;
	}
	return 0;
}

/* One socket bound to SRC (NULL: wherever the route says), connected to the
 * destination; records the local address and port for Via and Contact. */
static int src_open(struct uf_ctx *c, const char *src, struct uf_src *s)
{
	struct sockaddr_storage a = { 0 };
	socklen_t alen = sizeof(a);
	char host[INET6_ADDRSTRLEN];
	int fd, ret = 0, sndbuf = 4 << 20, one = 1;

	s->fd = -1;
	fd = socket(c->dst.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A deeper send buffer lets a burst wait in the kernel instead of
	 * bouncing back as ENOBUFS; best effort.  Without IP_RECVERR a UDP
	 * socket hides a full qdisc (ENOBUFS) and "sent" would count
	 * datagrams that never left. */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (c->dst.ss_family == AF_INET)
		ret = setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof(one));
	else
		ret = setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof(one));
	if (ret) {
		ret = -errno;
		fprintf(stderr, "udpflood: IP_RECVERR: %s\n", strerror(-ret));
		goto out;
	}
	if (src) {
		a.ss_family = c->dst.ss_family;
		if (a.ss_family == AF_INET)
			ret = inet_pton(AF_INET, src, &((struct sockaddr_in *)&a)->sin_addr);
		else
			ret = inet_pton(AF_INET6, src, &((struct sockaddr_in6 *)&a)->sin6_addr);
		if (ret != 1) {
			fprintf(stderr, "udpflood: bad source address %s\n", src);
			ret = -EINVAL;
			goto out;
		}
		if (bind(fd, (struct sockaddr *)&a,
			 a.ss_family == AF_INET ? sizeof(struct sockaddr_in)
						: sizeof(struct sockaddr_in6))) {
			ret = -errno;
			fprintf(stderr, "udpflood: bind %s: %s\n", src, strerror(-ret));
			goto out;
		}
	}
	if (connect(fd, (struct sockaddr *)&c->dst, c->dstlen) ||
	    getsockname(fd, (struct sockaddr *)&a, &alen)) {
		ret = -errno;
		fprintf(stderr, "udpflood: connect: %s\n", strerror(-ret));
		goto out;
	}
	if (a.ss_family == AF_INET) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)&a)->sin_addr, host, sizeof(host));
		snprintf(s->host, sizeof(s->host), "%s", host);
		s->port = ntohs(((struct sockaddr_in *)&a)->sin_port);
	} else {
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a)->sin6_addr, host, sizeof(host));
		snprintf(s->host, sizeof(s->host), "[%s]", host);
		s->port = ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
	}
	s->fd = fd;
	fd = -1;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

struct uf_run {
	uint64_t count;
	unsigned rate;
	unsigned batch;
	unsigned deadline_s;
	const struct uf_kind *kind[UF_MAX_KINDS];
	uint64_t kind_sent[UF_MAX_KINDS];
	unsigned nkinds;
	struct uf_src src[UF_MAX_SRC];
	unsigned nsrc;
	uint64_t sent, retries;
	uint64_t elapsed_ns;
};

static struct mmsghdr msgs[UF_MAX_BATCH];
static struct iovec iovs[UF_MAX_BATCH];
static char bufs[UF_MAX_BATCH][UF_BUF];

/* Sends one prepared batch of N on S, retrying refusals, until all went or
 * the deadline passed.  Returns how many went; *ERR gets a hard error. */
static unsigned send_batch(struct uf_run *r, struct uf_src *s, unsigned n, uint64_t end, int *err)
{
	unsigned done = 0;
	int k;

	while (done < n) {
		k = sendmmsg(s->fd, msgs + done, n - done, 0);
		if (k > 0) {
			done += k;
			continue;
		}
		if (k < 0 && errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED &&
		    errno != EINTR) {
			*err = -errno;
			break;
		}
		r->retries++;
		if (now_ns() >= end) {
			*err = -ETIMEDOUT;
			break;
		}
		sleep_ns(UF_RETRY_NS);
	}
	return done;
}

static int run(struct uf_ctx *c, struct uf_run *r)
{
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)r->deadline_s * 1000000000ull;
	unsigned batch = r->batch, nb = 0;
	int err = 0;

	/* Pacing in slices of about a millisecond keeps the rate smooth. */
	if (r->rate && r->rate / 1000 + 1 < batch)
		batch = r->rate / 1000 + 1;
	while (r->sent < r->count && !err) {
		struct uf_src *s = &r->src[nb++ % r->nsrc];
		unsigned n = batch, i, k, went;
		uint64_t t = now_ns();

		if (t >= end) {
			err = -ETIMEDOUT;
			break;
		}
		if (r->rate) {
			uint64_t due = t0 + r->sent * 1000000000ull / r->rate;

			if (due > t) {
				sleep_ns(due - t);
				continue;
			}
		}
		if (r->count - r->sent < n)
			n = r->count - r->sent;
		for (i = 0; i < n; i++) {
			k = (r->sent + i) % r->nkinds;
			iovs[i].iov_base = bufs[i];
			iovs[i].iov_len = r->kind[k]->gen(c, s, r->sent + i, bufs[i]);
			msgs[i].msg_hdr = (struct msghdr){ .msg_iov = &iovs[i], .msg_iovlen = 1 };
		}
		went = send_batch(r, s, n, end, &err);
		for (i = 0; i < went; i++)
			r->kind_sent[(r->sent + i) % r->nkinds]++;
		s->sent += went;
		r->sent += went;
	}
	r->elapsed_ns = now_ns() - t0;
	if (err)
		fprintf(stderr, "udpflood: stopped after %llu of %llu: %s\n",
			(unsigned long long)r->sent, (unsigned long long)r->count, strerror(-err));
	return err;
}

static int add_kinds(struct uf_run *r, char *list)
{
	char *save = NULL, *tok;
	unsigned k;

	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		for (k = 0; k < NKINDS; k++)
			if (!strcmp(tok, kinds[k].name))
				break;
		if (k == NKINDS || r->nkinds == UF_MAX_KINDS) {
			fprintf(stderr, "udpflood: unknown kind or too many kinds: %s\n", tok);
			return -EINVAL;
		}
		r->kind[r->nkinds++] = &kinds[k];
	}
	return r->nkinds ? 0 : -EINVAL;
}

static int open_sources(struct uf_ctx *c, struct uf_run *r, char *list)
{
	char *save = NULL, *tok;
	int ret;

	if (!list)
		return src_open(c, NULL, &r->src[r->nsrc++]);
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (r->nsrc == UF_MAX_SRC) {
			fprintf(stderr, "udpflood: at most %d sources\n", UF_MAX_SRC);
			return -EINVAL;
		}
		ret = src_open(c, tok, &r->src[r->nsrc]);
		if (ret)
			return ret;
		r->nsrc++;
	}
	return r->nsrc ? 0 : -EINVAL;
}

static void report(const struct uf_run *r)
{
	double secs = r->elapsed_ns / 1e9;
	unsigned i;

	printf("sent %llu\n", (unsigned long long)r->sent);
	for (i = 0; i < r->nkinds; i++)
		printf("kind %s %llu\n", r->kind[i]->name, (unsigned long long)r->kind_sent[i]);
	for (i = 0; i < r->nsrc; i++)
		printf("source %s %llu\n", r->src[i].host, (unsigned long long)r->src[i].sent);
	printf("retries %llu\n", (unsigned long long)r->retries);
	printf("elapsed_s %.6f\n", secs);
	printf("pps %.0f\n", secs > 0 ? r->sent / secs : 0.0);
}

int main(int argc, char **argv)
{
	static struct uf_ctx c = { .len = 200, .user = "3999" };
	static struct uf_run r = { .batch = 64, .deadline_s = 60 };
	char *kindlist = NULL, *srclist = NULL;
	char defkind[] = "garbage";
	unsigned long v = 0, seed = 1;
	bool ok = true;
	int opt, ret = 0;
	unsigned i, j;

	while ((opt = getopt(argc, argv, "n:r:k:s:l:b:T:S:u:L")) != -1) {
		switch (opt) {
		case 'n':
			ok = parse_uint(optarg, 1, UF_MAX_COUNT, &v);
			r.count = v;
			break;
		case 'r':
			ok = parse_uint(optarg, 0, 100000000, &v);
			r.rate = v;
			break;
		case 'k':
			kindlist = optarg;
			break;
		case 's':
			srclist = optarg;
			break;
		case 'l':
			ok = parse_uint(optarg, 1, UF_MAX_LEN, &v);
			c.len = v;
			break;
		case 'b':
			ok = parse_uint(optarg, 1, UF_MAX_BATCH, &v);
			r.batch = v;
			break;
		case 'T':
			ok = parse_uint(optarg, 1, 3600, &v);
			r.deadline_s = v;
			break;
		case 'S':
			ok = parse_uint(optarg, 0, UINT32_MAX, &seed);
			break;
		case 'u':
			c.user = optarg;
			ok = strlen(optarg) > 0 && strlen(optarg) < 64 &&
			     !strpbrk(optarg, "@ \r\n");
			break;
		case 'L':
			for (i = 0; i < NKINDS; i++)
				printf("%-10s %s\n", kinds[i].name, kinds[i].what);
			return 0;
		default:
			return usage();
		}
		if (!ok) {
			fprintf(stderr, "udpflood: bad value for -%c: %s\n", opt, optarg);
			return 2;
		}
	}
	if (optind != argc - 1 || !r.count)
		return usage();
	if (parse_dst(&c, argv[optind])) {
		fprintf(stderr, "udpflood: bad destination %s\n", argv[optind]);
		return 2;
	}
	if (add_kinds(&r, kindlist ? kindlist : defkind))
		return 2;
	c.pid = getpid();
	c.rng = seed * 0x9E3779B97F4A7C15ull + 1;
	for (i = 0; i < UF_POOL; i++) {
		c.pool[i][0] = 0xff;
		for (j = 1; j < UF_MAX_LEN; j++)
			c.pool[i][j] = rnd(&c) & 0xff;
	}
	ret = open_sources(&c, &r, srclist);
	if (ret) {
		ret = ret == -EINVAL ? 2 : 1;
		goto out;
	}
	ret = run(&c, &r) ? 1 : 0;
	report(&r);
out:
	for (i = 0; i < r.nsrc; i++)
		if (r.src[i].fd >= 0)
			close(r.src[i].fd);
	return ret;
}

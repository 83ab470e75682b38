/* tcpidle — holds many idle TCP connections open, from many source addresses.
 *
 *   tcpidle -n COUNT -s FIRST_SRC [-k NSRC] [-T SEC] IPV4:PORT
 *
 * Opens COUNT connections to IPV4:PORT, the i-th bound to source address
 * FIRST_SRC + (i mod NSRC) (IPv4, counted on in host order; NSRC default 1),
 * with at most 512 connects in flight.  Sends nothing.  Once each has
 * connected or failed it prints
 *
 *   open N
 *   failed N
 *   ms N            (time to open them all)
 *
 * and holds them until SIGTERM/SIGINT or the deadline of SEC seconds after
 * start (default 60), noticing every connection the peer closes.  Then:
 *
 *   peer_closed N
 *
 * Raises RLIMIT_NOFILE to its hard limit first.  Exit status: 0 when every
 * connection opened and none was closed by the peer, 1 otherwise, 2 on
 * usage errors. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TI_MAX_COUNT 200000u
#define TI_MAX_SRC 65536u
#define TI_INFLIGHT 512u

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void usage(void)
{
	fprintf(stderr, "usage: tcpidle -n COUNT -s FIRST_SRC [-k NSRC] [-T SEC] IPV4:PORT\n");
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return !errno && *s && !*end && *out <= max;
}

static bool parse_dst(const char *arg, struct sockaddr_in *dst)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strrchr(arg, ':');
	unsigned long port;

	if (!colon || (size_t)(colon - arg) >= sizeof(host) ||
	    !parse_uint(colon + 1, 65535, &port) || !port)
		return false;
	memcpy(host, arg, (size_t)(colon - arg));
	host[colon - arg] = '\0';
	memset(dst, 0, sizeof(*dst));
	dst->sin_family = AF_INET;
	dst->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &dst->sin_addr) == 1;
}

/* Starts connection I; its fd (>= 0) or -errno. */
static int start_one(int ep, const struct sockaddr_in *dst, uint32_t src_host)
{
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(src_host) };
	struct epoll_event ev = { .events = EPOLLOUT };
	int fd, one = 1, ret;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* The port is chosen at connect, per destination: 10,000 connections
	 * from one address do not run out of ports. */
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) ||
	    (connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) && errno != EINPROGRESS)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	ev.data.fd = fd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int main(int argc, char **argv)
{
	unsigned long count = 0, nsrc = 1, secs = 60;
	unsigned started = 0, inflight = 0, open_n = 0, failed = 0, peer_closed = 0;
	struct epoll_event evs[256];
	struct sockaddr_in dst;
	struct in_addr first = { 0 };
	struct rlimit rl;
	struct sigaction sa;
	uint64_t t0, deadline;
	bool have_src = false;
	int opt, ep, last_err = 0;

	while ((opt = getopt(argc, argv, "n:s:k:T:")) != -1) {
		switch (opt) {
		case 'n':
			if (!parse_uint(optarg, TI_MAX_COUNT, &count) || !count) {
				fprintf(stderr, "tcpidle: -n %s: want 1..%u\n", optarg,
					TI_MAX_COUNT);
				return 2;
			}
			break;
		case 's':
			if (inet_pton(AF_INET, optarg, &first) != 1) {
				fprintf(stderr, "tcpidle: -s %s: not an IPv4 address\n", optarg);
				return 2;
			}
			have_src = true;
			break;
		case 'k':
			if (!parse_uint(optarg, TI_MAX_SRC, &nsrc) || !nsrc) {
				fprintf(stderr, "tcpidle: -k %s: want 1..%u\n", optarg, TI_MAX_SRC);
				return 2;
			}
			break;
		case 'T':
			if (!parse_uint(optarg, 3600, &secs) || !secs) {
				fprintf(stderr, "tcpidle: -T %s: want 1..3600 seconds\n", optarg);
				return 2;
			}
			break;
		default:
			usage();
			return 2;
		}
	}
	if (!count || !have_src || optind != argc - 1) {
		usage();
		return 2;
	}
	if (!parse_dst(argv[optind], &dst)) {
		fprintf(stderr, "tcpidle: %s: want IPV4:PORT\n", argv[optind]);
		return 2;
	}
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < count + 16) {
		fprintf(stderr, "tcpidle: RLIMIT_NOFILE %llu is too small for %lu connections\n",
			(unsigned long long)rl.rlim_cur, count);
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		perror("tcpidle: epoll_create1");
		return 1;
	}
	t0 = now_ms();
	deadline = t0 + secs * 1000u;

	/* Open them all, TI_INFLIGHT connects at a time. */
	while (!stop && open_n + failed < count && now_ms() < deadline) {
		int n, i;

		while (started < count && inflight < TI_INFLIGHT) {
			int fd = start_one(ep, &dst,
					   ntohl(first.s_addr) + (uint32_t)(started % nsrc));

			started++;
			if (fd < 0) {
				failed++;
				last_err = -fd;
				continue;
			}
			inflight++;
		}
		n = epoll_wait(ep, evs, 256, 100);
		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd, err = 0;
			socklen_t len = sizeof(err);
			struct epoll_event ev = { .events = EPOLLRDHUP, .data.fd = fd };

			if (!(evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
				continue;
			inflight--;
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) || err ||
			    (evs[i].events & (EPOLLERR | EPOLLHUP)) ||
			    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev)) {
				failed++;
				last_err = err ? err : EPIPE;
				close(fd);
				continue;
			}
			open_n++;
		}
	}
	failed += count - open_n - failed; /* those the deadline cut short */
	printf("open %u\nfailed %u\nms %llu\n", open_n, failed,
	       (unsigned long long)(now_ms() - t0));
	if (last_err)
		fprintf(stderr, "tcpidle: last error: %s\n", strerror(last_err));
	fflush(stdout);

	/* Hold them: a connection the peer closes shows as EPOLLRDHUP. */
	while (!stop && now_ms() < deadline) {
		int n = epoll_wait(ep, evs, 256, 200), i;

		for (i = 0; i < n; i++) {
			if (!(evs[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
				continue;
			peer_closed++;
			epoll_ctl(ep, EPOLL_CTL_DEL, evs[i].data.fd, NULL);
			close(evs[i].data.fd);
		}
	}
	printf("peer_closed %u\n", peer_closed);
	fflush(stdout);
	close(ep);
	/* The remaining fds close with the process. */
	return open_n == count && !peer_closed ? 0 : 1;
}

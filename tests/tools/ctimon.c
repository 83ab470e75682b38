/* ctimon: many CTI clients in one process, for benchmarks (bench/cti.sh).
 *
 *   ctimon [-n CLIENTS] [-m DN]... [-r TARGET] [-t SECONDS] [-q IDLE_MS] HOST:PORT
 *
 * Opens CLIENTS connections (default 1), each says Hello and monitors every
 * DN given with -m; with -r, the first one also answers every RouteRequest
 * with a RouteCall to TARGET.  It reads everything, counts event lines (those
 * with "seq") per connection, and stops after SECONDS (default 10) or after
 * IDLE_MS without a line once one came (default 2000).  The last line:
 *
 *   clients=N events=TOTAL min=M max=X routed=R errors=E seconds=S events_per_s=V
 *
 * where min/max are the events one connection got: with every client
 * monitoring the same DNs they are equal unless one fell behind or was cut
 * off.  Only loopback or test-namespace addresses, and it always ends. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC 4096
#define MAXDN 64
#define BUFSZ (256 * 1024)

struct conn {
	int fd;
	char *buf;
	size_t len;
	uint64_t events;
	bool open;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int send_all(int fd, const char *s)
{
	size_t n = strlen(s), off = 0;

	while (off < n) {
		ssize_t w = write(fd, s + off, n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return 0;
}

static int dial(const char *hostport)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char host[64];
	const char *colon = strrchr(hostport, ':');
	int fd, one = 1;

	if (!colon || (size_t)(colon - hostport) >= sizeof(host))
		return -1;
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The call id of a RouteRequest line, or NULL. */
static const char *route_request(const char *line, char *id, size_t n)
{
	const char *p;
	size_t k;

	if (!strstr(line, "\"event\":\"RouteRequest\"") || !(p = strstr(line, "\"call\":\"")))
		return NULL;
	p += 8;
	k = strcspn(p, "\"");
	if (!k || k >= n)
		return NULL;
	memcpy(id, p, k);
	id[k] = '\0';
	return id;
}

int main(int argc, char **argv)
{
	const char *dns[MAXDN], *target = NULL, *addr;
	unsigned nclients = 1, ndns = 0, secs = 10, idle_ms = 2000;
	uint64_t total = 0, minev = UINT64_MAX, maxev = 0, routed = 0, errors = 0, start, last = 0;
	static struct conn c[MAXC];
	static struct pollfd pfd[MAXC];
	char line[512];
	int opt;

	while ((opt = getopt(argc, argv, "n:m:r:t:q:")) != -1) {
		switch (opt) {
		case 'n':
			nclients = (unsigned)atoi(optarg);
			break;
		case 'm':
			if (ndns < MAXDN)
				dns[ndns++] = optarg;
			break;
		case 'r':
			target = optarg;
			break;
		case 't':
			secs = (unsigned)atoi(optarg);
			break;
		case 'q':
			idle_ms = (unsigned)atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: ctimon [-n N] [-m DN]... [-r TARGET] [-t S] [-q MS] "
				"HOST:PORT\n");
			return 2;
		}
	}
	if (optind != argc - 1 || !nclients || nclients > MAXC || secs > 3600) {
		fprintf(stderr, "ctimon: one HOST:PORT, 1..%d clients, at most 3600 s\n", MAXC);
		return 2;
	}
	addr = argv[optind];
	for (unsigned i = 0; i < nclients; i++) {
		c[i].fd = dial(addr);
		c[i].buf = malloc(BUFSZ);
		if (c[i].fd < 0 || !c[i].buf) {
			fprintf(stderr, "ctimon: cannot connect client %u to %s\n", i, addr);
			return 1;
		}
		c[i].open = true;
		snprintf(line, sizeof(line), "{\"req\":\"Hello\",\"ref\":0,\"client\":\"mon%u\"}\n",
			 i);
		send_all(c[i].fd, line);
		for (unsigned d = 0; d < ndns; d++) {
			snprintf(line, sizeof(line),
				 "{\"req\":\"Monitor\",\"ref\":%u,\"dn\":\"%s\"}\n", d + 1, dns[d]);
			send_all(c[i].fd, line);
		}
		pfd[i].fd = c[i].fd;
		pfd[i].events = POLLIN;
	}
	printf("ready clients=%u\n", nclients);
	fflush(stdout);
	start = now_ms();
	while (now_ms() - start < (uint64_t)secs * 1000) {
		int r = poll(pfd, nclients, 100);

		if (r < 0 && errno != EINTR)
			break;
		if (last && now_ms() - last > idle_ms)
			break;
		for (unsigned i = 0; r > 0 && i < nclients; i++) {
			ssize_t got;
			char *p, *nl;

			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			got = read(c[i].fd, c[i].buf + c[i].len, BUFSZ - c[i].len);
			if (got <= 0) {
				c[i].open = false;
				pfd[i].fd = -1;
				continue;
			}
			c[i].len += (size_t)got;
			last = now_ms();
			for (p = c[i].buf;
			     (nl = memchr(p, '\n', c[i].len - (size_t)(p - c[i].buf)));
			     p = nl + 1) {
				char id[32];

				*nl = '\0';
				if (strstr(p, "\"seq\":"))
					c[i].events++;
				if (strstr(p, "\"event\":\"Error\""))
					errors++;
				if (i == 0 && target && route_request(p, id, sizeof(id))) {
					snprintf(line, sizeof(line),
						 "{\"req\":\"RouteCall\",\"ref\":\"r%s\",\"call\":"
						 "\"%s\","
						 "\"target\":\"%s\"}\n",
						 id, id, target);
					if (!send_all(c[0].fd, line))
						routed++;
				}
			}
			c[i].len -= (size_t)(p - c[i].buf);
			memmove(c[i].buf, p, c[i].len);
			if (c[i].len == BUFSZ)
				c[i].len = 0; /* a line longer than the buffer: drop it */
		}
	}
	for (unsigned i = 0; i < nclients; i++) {
		total += c[i].events;
		if (c[i].events < minev)
			minev = c[i].events;
		if (c[i].events > maxev)
			maxev = c[i].events;
		close(c[i].fd);
		free(c[i].buf);
	}
	{
		double s = (double)((last ? last : now_ms()) - start) / 1000.0;

		printf("clients=%u events=%llu min=%llu max=%llu routed=%llu errors=%llu "
		       "seconds=%.2f events_per_s=%.0f\n",
		       nclients, (unsigned long long)total, (unsigned long long)minev,
		       (unsigned long long)maxev, (unsigned long long)routed,
		       (unsigned long long)errors, s, s > 0 ? (double)total / s : 0.0);
	}
	return 0;
}

/* ctijunk — what a stranger who read docs/CTI.md sends a CTI server.
 *
 *   ctijunk [-n COUNT] [-S SEED] [-T SEC] HOST:PORT
 *
 * Sends COUNT (default 2000) malformed request lines to the CTI server at
 * HOST:PORT (IPv4, or IPv6 in brackets), one at a time.  The lines are not
 * JSON, carry wrong types, unknown or duplicate fields, huge numbers,
 * control characters, NUL bytes, bytes that are not UTF-8, arrays nested
 * 2,100 deep or more, refs and client names that are too long; every
 * 500th is 100 KB without a newline.  None is a request a server may
 * carry out.  After each line it waits 2 s at most for an answer: an
 * Error line, or the connection closed (the next line goes on a new one).
 * After the Error for a line over 8192 bytes the server must close the
 * connection (docs/CTI.md, Framing).  At the end it prints one line:
 *
 *   JUNK sent=N errors=E closed=C other=O silent=S open_after_long=L
 *
 * other: an answer that is no Error; silent: no answer in 2 s;
 * open_after_long: a long line after whose Error the connection stayed
 * open.  Exit status 0 when every line got an Error or a close and the
 * long lines a close; 1 otherwise; 2 on usage errors.  Bounded by -T
 * (default 60 s).  The same SEED gives the same lines. */
#include <getopt.h>
#include <netdb.h>
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

#define LONG_LINE (100 * 1024)
#define INBUF (1u << 20)

static struct addrinfo *dst;
static int fd = -1;
static char in[INBUF];
static size_t inlen;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void drop(const char *why, int k)
{
	if (fd >= 0)
		close(fd);
	fd = -1;
	inlen = 0;
	if (why)
		printf("# line %d: %s\n", k, why);
}

/* Requests no node may accept; "@" is replaced by a random number. */
static const char *const junk_tpl[] = {
	"{\"req\":\"Monitor\",\"dn\":@}",
	"{\"req\":@}",
	"{\"req\":null,\"ref\":@}",
	"{\"req\":\"Bogus@\"}",
	"{\"ref\":@}",
	"[\"req\",\"Hello\",@]",
	"@",
	"\"Hello@\"",
	"{\"req\":\"Monitor\"}@",
	"{\"req\":\"Monitor\",\"dn\":\"\"}, @",
	"{\"req\":\"RouteCall\",\"call\":\"x@\",\"target\":1}",
	"{\"req\":\"Hello\",\"since_seq\":\"s@\"}",
	"{\"req\":\"Hello\",\"client\":[@]}",
	"{\"req\":\"Hello\",\"ref\":{\"a\":@}}",
	"{\"req\":\"Monitor\",\"dn\":\"1001\",\"foo\":@}",
	"{\"req\":\"Hello\",\"since\":@}",
	"{\"req\":\"AgentReady\",\"agent\":\"a\",\"dn\":\"@\"}",
	"{\"req\":\"AgentLogin\",\"agent\":\"a@\"}",
	"{\"req\":\"RouteCall\",\"call\":99999999999999999999999@,\"target\":\"1001\"}",
	"{\"req\":\"Hello\",\"since_seq\":1e40@}",
	"{\"req\":\"ReleaseCall\",\"call\":-@}",
	"{\"req\":\"Hello\",\"since_seq\":\"999999999999999999999@\"}",
	"{\"req\":\"Monitor\",\"dn\":\"10\\u0001@\"}",
	"{\"req\":\"Monitor\",\"dn\":\"10\x01@\"}",
	"{\"req\":\"Monitor\",\"dn\":\"\\u0000@\"}",
	"{\"req\":\"Monitor\",\"dn\":\"\xff\xfe@\"}",
	"{\"req\":\"Monitor\",\"dn\":\"1001\",\"dn\":\"@\"}",
};
#define NTPL (sizeof(junk_tpl) / sizeof(junk_tpl[0]))

/* Line K of the run into BUF (no '\n', never empty); returns its length. */
static size_t junk_line(unsigned k, char *buf)
{
	unsigned kind = (unsigned)rand() % (NTPL + 6), v = (unsigned)rand(), n, d;
	const char *t = junk_tpl[kind % NTPL];

	if (k % 500 == 499) {
		memset(buf, 'x', LONG_LINE);
		return LONG_LINE;
	}
	switch (kind < NTPL ? 99 : kind - NTPL) {
	case 99:
		return (size_t)snprintf(buf, 8192, "%.*s%u%s", (int)strcspn(t, "@"), t, v,
					strchr(t, '@') + 1);
	case 0: /* random bytes, no line end among them */
	case 1:
		n = 1 + v % 300;
		for (unsigned i = 0; i < n; i++) {
			char ch = (char)(rand() % 255 + 1);

			buf[i] = ch == '\n' || ch == '\r' ? '.' : ch;
		}
		return n;
	case 2: /* NUL bytes in an object */
		n = (unsigned)snprintf(buf, 64, "{\"req\":\"Hello\",\"client\":\"a%ub\"}", v);
		buf[10] = buf[26] = '\0';
		return n;
	case 3: /* arrays nested deeper than any parser goes, bare or as a ref */
	case 4:
		n = kind == NTPL + 4 ? (unsigned)snprintf(buf, 64, "{\"req\":\"Hello\",\"ref\":")
				     : 0;
		d = 2100 + v % 1000;
		memset(buf + n, '[', d);
		memset(buf + n + d, ']', d);
		return n + 2 * d +
		       (kind == NTPL + 4 ? (unsigned)snprintf(buf + n + 2 * d, 4, "}") : 0);
	default: /* a ref or a client name too long */
		n = (unsigned)snprintf(buf, 64, "{\"req\":\"Hello\",\"%s\":\"",
				       v % 2 ? "ref" : "client");
		memset(buf + n, 'r', 200);
		return n + 200 + (unsigned)snprintf(buf + n + 200, 8, "\"}");
	}
}

/* Waits 2 s at most for a line or the close: 1 an Error line, 2 another
 * line, 3 closed, 0 nothing. */
static int await(int k)
{
	char *nl;
	ssize_t r;

	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };

		if ((nl = memchr(in, '\n', inlen))) {
			int ret;

			*nl = '\0';
			ret = strstr(in, "\"event\":\"Error\"") ? 1 : 2;
			if (ret == 2)
				printf("# line %d: not an Error: %.200s\n", k, in);
			inlen -= (size_t)(nl + 1 - in);
			memmove(in, nl + 1, inlen);
			return ret;
		}
		if (poll(&p, 1, 2000) <= 0)
			return 0;
		if ((r = recv(fd, in + inlen, INBUF - inlen, 0)) <= 0) {
			drop(NULL, k);
			return 3;
		}
		inlen += (size_t)r;
	}
}

int main(int argc, char **argv)
{
	static char buf[LONG_LINE + 1];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST };
	unsigned res[4] = { 0 }, sent = 0, open_after_long = 0, seed = 1;
	int opt, count = 2000, secs = 60;
	char host[128], *colon;
	uint64_t deadline;

	while ((opt = getopt(argc, argv, "n:S:T:")) != -1) {
		if (opt == 'n')
			count = atoi(optarg);
		else if (opt == 'S')
			seed = (unsigned)strtoul(optarg, NULL, 0);
		else if (opt == 'T')
			secs = atoi(optarg);
		else
			return 2;
	}
	if (optind != argc - 1 || !(colon = strrchr(argv[optind], ':')) || count < 1 || secs < 1) {
		fprintf(stderr, "usage: ctijunk [-n COUNT] [-S SEED] [-T SEC] HOST:PORT\n");
		return 2;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - argv[optind]), argv[optind]);
	if (host[0] == '[') {
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	if (getaddrinfo(host, colon + 1, &hints, &dst)) {
		fprintf(stderr, "ctijunk: bad address %s\n", argv[optind]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	srand(seed);
	deadline = now_ms() + (uint64_t)secs * 1000u;
	for (int k = 0; k < count && now_ms() < deadline; k++) {
		size_t n = junk_line((unsigned)k, buf);
		struct timeval tv = { 1, 0 };
		int got;

		if (fd < 0) {
			fd = socket(dst->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
			    connect(fd, dst->ai_addr, dst->ai_addrlen)) {
				printf("# line %d: cannot connect\n", k);
				break;
			}
		}
		if (n < LONG_LINE)
			buf[n++] = '\n';
		sent++;
		send(fd, buf, n, MSG_NOSIGNAL); /* a close shows in await() */
		res[got = await(k)]++;
		if (!got)
			drop("no answer in 2 s", k);
		if (n > 8192 && got == 1 && await(k) != 3) {
			open_after_long++;
			drop("still open after the Error for a line over 8192 bytes", k);
		}
	}
	freeaddrinfo(dst);
	printf("JUNK sent=%u errors=%u closed=%u other=%u silent=%u open_after_long=%u\n", sent,
	       res[1], res[3], res[2], res[0], open_after_long);
	return sent == (unsigned)count && !res[2] && !res[0] && !open_after_long ? 0 : 1;
}

/* bsctl: drives one baresip through its ctrl_tcp module, for the real-phone
 * test (tests/integration/test_phones.sh).
 *
 *   bsctl [-T SECONDS] HOST PORT
 *
 * ctrl_tcp keeps one connection only (a new one replaces the old), and its
 * events arrive on that connection, so one bsctl holds it for the whole
 * test: every line read from stdin ("dial sip:1002@sipha.test", "accept",
 * "hangup") is sent as a netstring {"command":..,"params":..,"token":N};
 * every netstring baresip sends (a command's response or an event) is
 * printed as one line on stdout, flushed, so the test can grep it.  It ends
 * at EOF on stdin, when baresip closes, or after SECONDS (default 60).
 * Exit 0, or 1 with a message naming what failed (connect, a malformed
 * netstring, the time limit). */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BS_MAX 65536

static int bs_connect(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL, *p;
	int fd = -1, err;

	err = getaddrinfo(host, port, &hints, &ai);
	if (err) {
		fprintf(stderr, "bsctl: %s:%s: %s\n", host, port, gai_strerror(err));
		return -1;
	}
	for (p = ai; p; p = p->ai_next) {
		fd = socket(p->ai_family, p->ai_socktype, p->ai_protocol);
		if (fd < 0)
			continue;
		if (!connect(fd, p->ai_addr, p->ai_addrlen))
			break;
		close(fd);
		fd = -1;
	}
	if (fd < 0)
		fprintf(stderr, "bsctl: connect %s:%s: %s\n", host, port, strerror(errno));
	freeaddrinfo(ai);
	return fd;
}

static int write_all(int fd, const char *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* JSON string body of S (quotes, backslashes and controls escaped) into
 * OUT; 0, or -1 when it does not fit. */
static int json_str(const char *s, char *out, size_t n)
{
	size_t o = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (o + 7 >= n)
			return -1;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20) {
			o += (size_t)snprintf(out + o, n - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return 0;
}

/* One stdin line "COMMAND [PARAMS]" as a netstring. */
static int send_command(int fd, char *line, unsigned token)
{
	char cmd[1024], par[2048], js[4096], ns[4200];
	char *sp;
	int n, m;

	line[strcspn(line, "\r\n")] = '\0';
	if (!*line)
		return 0;
	sp = strchr(line, ' ');
	if (sp)
		*sp++ = '\0';
	if (json_str(line, cmd, sizeof(cmd)) || json_str(sp ? sp : "", par, sizeof(par))) {
		fprintf(stderr, "bsctl: command line too long\n");
		return -1;
	}
	n = snprintf(js, sizeof(js), "{\"command\":\"%s\",\"params\":\"%s\",\"token\":\"%u\"}", cmd,
		     par, token);
	if (n < 0 || (size_t)n >= sizeof(js))
		return -1;
	m = snprintf(ns, sizeof(ns), "%d:%s,", n, js);
	if (m < 0 || (size_t)m >= sizeof(ns))
		return -1;
	return write_all(fd, ns, (size_t)m);
}

/* Prints every complete netstring at the start of BUF[0..*LEN) and keeps
 * the rest; -1 on a malformed one. */
static int drain(char *buf, size_t *len)
{
	size_t off = 0;

	for (;;) {
		size_t i = off, n = 0;

		while (i < *len && buf[i] >= '0' && buf[i] <= '9' && i - off < 6)
			n = n * 10 + (size_t)(buf[i++] - '0');
		if (i == *len)
			break; /* the length is still arriving */
		if (i == off || buf[i] != ':' || n > BS_MAX - 16) {
			fprintf(stderr, "bsctl: malformed netstring from baresip\n");
			return -1;
		}
		if (*len - i - 1 < n + 1)
			break;
		if (buf[i + 1 + n] != ',') {
			fprintf(stderr, "bsctl: netstring without its comma\n");
			return -1;
		}
		fwrite(buf + i + 1, 1, n, stdout);
		fputc('\n', stdout);
		fflush(stdout);
		off = i + 2 + n;
	}
	memmove(buf, buf + off, *len - off);
	*len -= off;
	return 0;
}

int main(int argc, char **argv)
{
	static char rx[BS_MAX];
	char line[3072];
	size_t rxlen = 0, llen = 0;
	unsigned token = 0;
	long secs = 60;
	time_t end;
	int fd, opt, ret = 1;

	while ((opt = getopt(argc, argv, "T:")) != -1) {
		if (opt == 'T') {
			char *e;

			secs = strtol(optarg, &e, 10);
			if (*e || secs <= 0 || secs > 3600) {
				fprintf(stderr, "bsctl: -T %s: 1..3600 seconds\n", optarg);
				return 2;
			}
		} else {
			goto usage;
		}
	}
	if (argc - optind != 2)
		goto usage;
	fd = bs_connect(argv[optind], argv[optind + 1]);
	if (fd < 0)
		return 1;
	end = time(NULL) + secs;
	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
				       { .fd = 0, .events = POLLIN } };
		long left = (long)(end - time(NULL));

		if (left <= 0) {
			fprintf(stderr, "bsctl: %ld s time limit\n", secs);
			break;
		}
		if (poll(p, 2, (int)(left * 1000)) < 0) {
			if (errno == EINTR)
				continue;
			perror("bsctl: poll");
			break;
		}
		if (p[0].revents) {
			ssize_t r = read(fd, rx + rxlen, sizeof(rx) - rxlen);

			if (r <= 0) {
				ret = 0; /* baresip went away: the test sees it */
				break;
			}
			rxlen += (size_t)r;
			if (drain(rx, &rxlen))
				break;
			if (rxlen == sizeof(rx)) {
				fprintf(stderr, "bsctl: netstring longer than %d\n", BS_MAX);
				break;
			}
		}
		if (p[1].revents) {
			ssize_t r = read(0, line + llen, sizeof(line) - 1 - llen);
			char *nl;

			if (r <= 0) {
				ret = 0;
				break;
			}
			llen += (size_t)r;
			line[llen] = '\0';
			while ((nl = strchr(line, '\n'))) {
				*nl = '\0';
				if (send_command(fd, line, ++token)) {
					fprintf(stderr, "bsctl: cannot send \"%s\"\n", line);
					goto out;
				}
				memmove(line, nl + 1, llen - (size_t)(nl + 1 - line) + 1);
				llen -= (size_t)(nl + 1 - line);
			}
			if (llen == sizeof(line) - 1) {
				fprintf(stderr, "bsctl: stdin line too long\n");
				break;
			}
		}
	}
out:
	close(fd);
	return ret;
usage:
	fprintf(stderr, "usage: bsctl [-T SECONDS] HOST PORT\n");
	return 2;
}

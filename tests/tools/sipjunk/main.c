/* sipjunk — sends malformed SIP to a server and accounts for every answer.
 *
 *   sipjunk [-n COUNT] [-k KINDS] [-s SEED] [-r RATE] [-b BATCH] [-w MS] [-T SEC] [-v] HOST:PORT
 *   sipjunk -f FILE [-t] [-w MS] [-S SAVE] HOST:PORT
 *   sipjunk -o [-t] [-w MS] [-S SAVE] HOST:PORT
 *   sipjunk -l
 *
 * Junk mode sends COUNT datagrams of the kinds listed by -l, each from a
 * socket of its own, so every answer is attributed to the datagram that
 * caused it without parsing what came back.  Each kind knows which answers
 * are right for it (a status code, or none at all); the summary is a set of
 * machine-readable lines:
 *
 *   kind NAME sent N answered N unanswered N unexpected N
 *   sent N
 *   answered CODE COUNT      (one line per status code; code 0: not a SIP response)
 *   unanswered N
 *   extra N                  (answers beyond the first to one datagram)
 *   unexpected N             (datagrams whose outcome is not one their kind allows)
 *   unexpected KIND #I got CODE|none allowed LIST   (-v, the first 50)
 *
 * File mode sends FILE as one datagram (or over one TCP connection with -t)
 * and prints one line: the status codes of the answers in order, "none" when
 * nothing came within the wait, followed by "closed" when the server closed
 * the TCP connection.  -o does the same with a well-formed OPTIONS.
 *
 * Every mode is bounded in count and time; the exit status is 0 when the
 * run completed (whatever the server answered), 2 on usage errors, 1 when
 * the run itself failed (socket errors, deadline).
 *
 * This file: file mode, the options and main; kinds.c: the kinds of junk;
 * junk.c: junk mode and its accounting. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sipjunk.h"

#define SJ_MAX_COUNT 100000
#define SJ_MAX_FILE (1u << 20)

/* --- file mode --------------------------------------------------------------------- */

static int read_file(const char *path, struct sj_buf *b)
{
	char chunk[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if (b->len + (size_t)n > SJ_MAX_FILE) {
			ret = -EFBIG;
			break;
		}
		sj_buf_add(b, chunk, (size_t)n);
	}
	if (n < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* Splits complete messages off the front of a TCP stream by Content-Length;
 * returns the octets used, 0 when more are needed. */
static size_t frame_response(const char *p, size_t len, int *code)
{
	const char *end = memmem(p, len, "\r\n\r\n", 4);
	size_t hdr, body = 0;

	if (!end)
		return 0;
	hdr = (size_t)(end - p) + 4;
	for (const char *l = p; l && l < end; l = memmem(l, (size_t)(end - l), "\r\n", 2)) {
		if (l != p)
			l += 2;
		if (!strncasecmp(l, "Content-Length:", 15))
			body = strtoul(l + 15, NULL, 10);
		else if (!strncasecmp(l, "l:", 2))
			body = strtoul(l + 2, NULL, 10);
	}
	if (hdr + body > len)
		return 0;
	*code = sj_status_code(p, len);
	return hdr + body;
}

struct file_run {
	bool tcp;
	unsigned wait_ms, grace_ms;
	const char *save;
};

static int run_file(struct sj_ctx *c, const struct file_run *fr, const struct sj_buf *msg)
{
	struct sj_buf in = { 0 }, line = { 0 };
	FILE *save = NULL;
	bool closed = false;
	unsigned nanswers = 0;
	uint64_t until;
	int fd = -1, ret = 0;

	if (fr->save && !(save = fopen(fr->save, "w")))
		return -errno;
	fd = socket(c->dst.ss_family, (fr->tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&c->dst, c->dstlen)) {
		ret = -errno;
		goto out;
	}
	for (size_t off = 0; off < msg->len;) {
		ssize_t n = send(fd, msg->p + off, msg->len - off, MSG_NOSIGNAL);

		if (n < 0) {
			if (fr->tcp && (errno == EPIPE || errno == ECONNRESET)) {
				closed = true;
				break;
			}
			ret = -errno;
			goto out;
		}
		off += (size_t)n;
		if (!fr->tcp)
			break;
	}
	until = sj_now_ms() + fr->wait_ms;
	while (!closed) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char buf[SJ_MAX_DGRAM + 1];
		uint64_t t = sj_now_ms();
		ssize_t n;

		if (t >= until)
			break;
		if (poll(&pfd, 1, (int)(until - t)) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n < 0 && errno == ECONNREFUSED && !fr->tcp)
			continue; /* ICMP from an earlier life of the port */
		if (n <= 0) {
			closed = fr->tcp;
			if (!fr->tcp)
				continue;
			break;
		}
		if (save)
			fwrite(buf, 1, (size_t)n, save);
		if (!fr->tcp) {
			sj_buf_printf(&line, "%s%d", nanswers++ ? " " : "",
				      sj_status_code(buf, (size_t)n));
		} else {
			size_t used;
			int code;

			sj_buf_add(&in, buf, (size_t)n);
			while (in.len && (used = frame_response(in.p, in.len, &code))) {
				sj_buf_printf(&line, "%s%d", nanswers++ ? " " : "", code);
				memmove(in.p, in.p + used, in.len - used);
				in.len -= used;
			}
		}
		/* Once something came, wait only a little longer for more:
		 * a second answer to one request is a fault we want to see. */
		if (nanswers && until > sj_now_ms() + fr->grace_ms)
			until = sj_now_ms() + fr->grace_ms;
	}
	if (!nanswers)
		printf("%s\n", closed ? "closed" : "none");
	else
		printf("%s%s\n", line.p, closed ? " closed" : "");
out:
	if (fd >= 0)
		close(fd);
	if (save)
		fclose(save);
	free(in.p);
	free(line.p);
	return ret;
}

/* --- main --------------------------------------------------------------------------- */

static int parse_dst(const char *s, struct sj_ctx *c)
{
	char host[256];
	const char *colon = strrchr(s, ':');
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST }, *ai = NULL;
	size_t hl;

	if (!colon || colon == s)
		return -EINVAL;
	hl = (size_t)(colon - s);
	if (s[0] == '[' && hl > 2 && s[hl - 1] == ']') {
		s++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	c->dstport = (unsigned)strtoul(colon + 1, NULL, 10);
	if (!c->dstport || c->dstport > 65535 || getaddrinfo(host, colon + 1, &hints, &ai))
		return -EINVAL;
	memcpy(&c->dst, ai->ai_addr, ai->ai_addrlen);
	c->dstlen = ai->ai_addrlen;
	snprintf(c->dsthost, sizeof(c->dsthost), ai->ai_family == AF_INET6 ? "[%s]" : "%s", host);
	freeaddrinfo(ai);
	return 0;
}

static int use_kinds(struct sj_junk_run *r, char *list)
{
	for (char *save = NULL, *t = strtok_r(list, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		unsigned k;

		for (k = 0; k < SJ_NKINDS && strcmp(sj_kinds[k].name, t); k++)
			;
		if (k == SJ_NKINDS) {
			fprintf(stderr, "sipjunk: unknown kind '%s' (sipjunk -l lists them)\n", t);
			return -EINVAL;
		}
		r->use[k] = true;
	}
	return 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: sipjunk [-n COUNT] [-k KIND,...] [-s SEED] [-r RATE] [-b BATCH] [-w MS]\n"
		"               [-T SEC] [-v] HOST:PORT\n"
		"       sipjunk -f FILE [-t] [-w MS] [-S SAVE] HOST:PORT\n"
		"       sipjunk -o [-t] [-w MS] [-S SAVE] HOST:PORT\n"
		"       sipjunk -l\n");
	return 2;
}

static bool parse_uint_opt(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || !*s || v < lo || v > hi)
		return false;
	*out = (unsigned)v;
	return true;
}

int main(int argc, char **argv)
{
	struct sj_junk_run r = { .count = 1000, .rate = 2000, .batch = 100, .deadline_s = 60 };
	struct file_run fr = { .grace_ms = 150 };
	struct sj_ctx c = { 0 };
	struct sj_buf msg = { 0 };
	const char *file = NULL;
	char *kindlist = NULL;
	bool options = false, have_seed = false, ok = true;
	unsigned seed = 0, wait_ms = 0;
	int opt, ret;

	while ((opt = getopt(argc, argv, "n:k:s:r:b:w:T:vf:tS:ol")) != -1) {
		switch (opt) {
		case 'n':
			ok = parse_uint_opt(optarg, 1, SJ_MAX_COUNT, &r.count);
			break;
		case 'k':
			kindlist = optarg;
			break;
		case 's':
			ok = parse_uint_opt(optarg, 0, UINT32_MAX, &seed);
			have_seed = true;
			break;
		case 'r':
			ok = parse_uint_opt(optarg, 0, 1000000, &r.rate);
			break;
		case 'b':
			ok = parse_uint_opt(optarg, 1, SJ_MAX_BATCH, &r.batch);
			break;
		case 'w':
			ok = parse_uint_opt(optarg, 1, 60000, &wait_ms);
			break;
		case 'T':
			ok = parse_uint_opt(optarg, 1, 3600, &r.deadline_s);
			break;
		case 'v':
			r.verbose = true;
			break;
		case 'f':
			file = optarg;
			break;
		case 't':
			fr.tcp = true;
			break;
		case 'S':
			fr.save = optarg;
			break;
		case 'o':
			options = true;
			break;
		case 'l':
			for (unsigned k = 0; k < SJ_NKINDS; k++)
				printf("%-16s %s\n", sj_kinds[k].name, sj_kinds[k].what);
			return 0;
		default:
			return usage();
		}
		if (!ok) {
			fprintf(stderr, "sipjunk: bad value for -%c: %s\n", opt, optarg);
			return 2;
		}
	}
	if (optind + 1 != argc || (file && options))
		return usage();
	if (parse_dst(argv[optind], &c)) {
		fprintf(stderr, "sipjunk: bad address %s (want IP:PORT)\n", argv[optind]);
		return 2;
	}
	if (!have_seed)
		seed = (unsigned)(sj_now_us() ^ ((uint64_t)getpid() << 16));
	/* Never 0: xorshift would stay there. */
	c.rng = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 1;

	if (file || options) {
		fr.wait_ms = wait_ms ? wait_ms : 500;
		if (options) {
			sj_make_options(&c, &msg, fr.tcp);
		} else if ((ret = read_file(file, &msg))) {
			fprintf(stderr, "sipjunk: %s: %s\n", file, strerror(-ret));
			return 1;
		}
		ret = run_file(&c, &fr, &msg);
		free(msg.p);
		if (ret)
			fprintf(stderr, "sipjunk: %s\n", strerror(-ret));
		return ret ? 1 : 0;
	}

	r.wait_ms = wait_ms ? wait_ms : 300;
	if (kindlist) {
		if (use_kinds(&r, kindlist))
			return 2;
	} else {
		for (unsigned k = 0; k < SJ_NKINDS; k++)
			r.use[k] = true;
	}
	printf("seed %u\n", seed);
	ret = sj_run_junk(&c, &r);
	sj_print_junk(&r);
	if (ret)
		fprintf(stderr, "sipjunk: %s\n", strerror(-ret));
	return ret ? 1 : 0;
}

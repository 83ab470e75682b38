/* sipjunk — junk mode: COUNT datagrams in batches, each from a socket of its
 * own so that every answer is attributed to the datagram that caused it;
 * each batch waits WAIT_MS for its answers, then every datagram's outcome
 * is checked against what its kind allows and counted. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sipjunk.h"

#define SJ_VERBOSE_MAX 50

/* --- answers ---------------------------------------------------------------------- */

/* Status code of a response, 0 when BUF is not one. */
int sj_status_code(const char *buf, size_t len)
{
	int code = 0;

	if (len < 12 || memcmp(buf, "SIP/2.0 ", 8))
		return 0;
	for (size_t i = 8; i < 11; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			return 0;
		code = code * 10 + buf[i] - '0';
	}
	return buf[11] == ' ' || buf[11] == '\r' ? code : 0;
}

static bool allowed(const struct sj_msg *m, int got)
{
	for (unsigned i = 0; i < m->nallowed; i++)
		if (m->allowed[i] == got)
			return true;
	return false;
}

static void allowed_str(const struct sj_msg *m, char *out, size_t len)
{
	size_t off = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < m->nallowed && off < len; i++) {
		int n = m->allowed[i] == SJ_NONE
				? snprintf(out + off, len - off, "%snone", i ? "," : "")
				: snprintf(out + off, len - off, "%s%d", i ? "," : "",
					   m->allowed[i]);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/* --- junk mode ---------------------------------------------------------------- */

struct slot {
	int fd;
	unsigned kind;
	unsigned idx;
	int first; /* first status code, -1 none yet */
	unsigned answers;
	struct sj_msg msg;
};

static int open_udp(const struct sj_ctx *c, unsigned *lport)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl = sizeof(ss);
	int fd;

	fd = socket(c->dst.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Bind to the loopback (or the family's any) so the Via can name the
	 * port the answer must come back to. */
	ss.ss_family = c->dst.ss_family;
	if (ss.ss_family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_ANY);
	if (bind(fd, (struct sockaddr *)&ss,
		 ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
					 : sizeof(struct sockaddr_in6)) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	*lport = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					       : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

static void drain(struct sj_junk_run *r, struct slot *s)
{
	char buf[SJ_MAX_DGRAM + 1];
	ssize_t n;

	while ((n = recv(s->fd, buf, sizeof(buf) - 1, 0)) >= 0) {
		int code = sj_status_code(buf, (size_t)n);

		if (s->answers++ == 0)
			s->first = code;
		else
			r->extra++;
		r->codes[code]++;
	}
}

static void settle(struct sj_junk_run *r, struct slot *s)
{
	struct sj_kind_stats *k = &r->ks[s->kind];
	int outcome = s->answers ? s->first : SJ_NONE;

	if (s->answers) {
		k->answered++;
	} else {
		k->unanswered++;
		r->unanswered++;
	}
	/* A datagram answered twice is wrong whatever the codes were. */
	if (!allowed(&s->msg, outcome) || s->answers > 1) {
		k->unexpected++;
		r->unexpected++;
		if (r->verbose && r->verbose_left) {
			char a[64];

			r->verbose_left--;
			allowed_str(&s->msg, a, sizeof(a));
			if (s->answers)
				printf("unexpected %s #%u got %d%s allowed %s\n",
				       sj_kinds[s->kind].name, s->idx, outcome,
				       s->answers > 1 ? " (and more)" : "", a);
			else
				printf("unexpected %s #%u got none allowed %s\n",
				       sj_kinds[s->kind].name, s->idx, a);
		}
	}
	close(s->fd);
	s->fd = -1;
	free(s->msg.b.p);
	memset(&s->msg, 0, sizeof(s->msg));
}

static unsigned pick_kind(struct sj_ctx *c, const struct sj_junk_run *r)
{
	unsigned n = 0, k;

	for (k = 0; k < SJ_NKINDS; k++)
		n += r->use[k];
	n = sj_rnd(c) % n;
	for (k = 0; k < SJ_NKINDS; k++) {
		if (r->use[k] && n-- == 0)
			break;
	}
	return k;
}

int sj_run_junk(struct sj_ctx *c, struct sj_junk_run *r)
{
	struct slot *slots = calloc(r->batch, sizeof(*slots));
	uint64_t deadline = sj_now_ms() + (uint64_t)r->deadline_s * 1000;
	uint64_t gap_us = r->rate ? 1000000 / r->rate : 0;
	int ret = 0;

	if (!slots)
		return -ENOMEM;
	for (unsigned i = 0; i < r->batch; i++)
		slots[i].fd = -1;
	r->verbose_left = SJ_VERBOSE_MAX;
	while (r->sent < r->count) {
		unsigned n = 0;
		uint64_t next = sj_now_us(), until;

		if (sj_now_ms() > deadline) {
			fprintf(stderr, "sipjunk: deadline reached after %u datagrams\n", r->sent);
			ret = -ETIMEDOUT;
			break;
		}
		for (; n < r->batch && r->sent < r->count; n++) {
			struct slot *s = &slots[n];
			unsigned lport = 0;
			int fd = open_udp(c, &lport);

			if (fd < 0) {
				fprintf(stderr, "sipjunk: socket: %s\n", strerror(-fd));
				ret = fd;
				break;
			}
			s->fd = fd;
			s->idx = r->sent;
			s->kind = pick_kind(c, r);
			s->first = -1;
			s->answers = 0;
			c->seq = r->sent;
			sj_kinds[s->kind].gen(c, lport, &s->msg);
			while (sj_now_us() < next)
				usleep((useconds_t)(next - sj_now_us()));
			next += gap_us;
			if (sendto(fd, s->msg.b.p ? s->msg.b.p : "", s->msg.b.len, 0,
				   (struct sockaddr *)&c->dst, c->dstlen) < 0) {
				fprintf(stderr, "sipjunk: send %s #%u (%zu octets): %s\n",
					sj_kinds[s->kind].name, r->sent, s->msg.b.len,
					strerror(errno));
				r->errors++;
			}
			r->ks[s->kind].sent++;
			r->sent++;
		}
		/* Wait for answers: everything the server will say about this
		 * batch comes within WAIT_MS of the last datagram. */
		until = sj_now_ms() + r->wait_ms;
		for (;;) {
			struct pollfd pfd[SJ_MAX_BATCH];
			uint64_t t = sj_now_ms();
			int pr;

			if (t >= until)
				break;
			for (unsigned i = 0; i < n; i++)
				pfd[i] = (struct pollfd){ .fd = slots[i].fd, .events = POLLIN };
			pr = poll(pfd, n, (int)(until - t));
			if (pr < 0 && errno != EINTR)
				break;
			for (unsigned i = 0; pr > 0 && i < n; i++)
				if (pfd[i].revents & POLLIN)
					drain(r, &slots[i]);
		}
		for (unsigned i = 0; i < n; i++) {
			drain(r, &slots[i]);
			settle(r, &slots[i]);
		}
		if (ret)
			break;
	}
	free(slots);
	return ret;
}

void sj_print_junk(const struct sj_junk_run *r)
{
	for (unsigned k = 0; k < SJ_NKINDS; k++) {
		const struct sj_kind_stats *s = &r->ks[k];

		if (!r->use[k])
			continue;
		printf("kind %s sent %u answered %u unanswered %u unexpected %u\n",
		       sj_kinds[k].name, s->sent, s->answered, s->unanswered, s->unexpected);
	}
	printf("sent %u\n", r->sent);
	for (unsigned i = 0; i < sizeof(r->codes) / sizeof(r->codes[0]); i++)
		if (r->codes[i])
			printf("answered %u %u\n", i, r->codes[i]);
	printf("unanswered %u\n", r->unanswered);
	printf("extra %u\n", r->extra);
	printf("send_errors %u\n", r->errors);
	printf("unexpected %u\n", r->unexpected);
}

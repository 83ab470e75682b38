/* sipjunk — what its files share: the message buffer, the target and random
 * state, the table of junk kinds (kinds.c), and the junk mode's run and
 * accounting (junk.c) that main.c sets up and prints.  Private to the tool. */
#ifndef SIPJUNK_H
#define SIPJUNK_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#define SJ_MAX_BATCH 512
#define SJ_MAX_DGRAM 65507
#define SJ_MAX_ALLOWED 6
#define SJ_NONE 0 /* "no answer" in an allowed list */
#define SJ_NKINDS 21 /* entries of sj_kinds[]; kinds.c checks it */

struct sj_buf {
	char *p;
	size_t len, cap;
};

struct sj_ctx {
	struct sockaddr_storage dst;
	socklen_t dstlen;
	char dsthost[INET6_ADDRSTRLEN + 2]; /* as written in URIs ([v6]) */
	unsigned dstport;
	uint64_t rng;
	unsigned seq;
};

/* What a generator produced: the datagram and the answers that are right. */
struct sj_msg {
	struct sj_buf b;
	int allowed[SJ_MAX_ALLOWED];
	unsigned nallowed;
};

struct sj_kind {
	const char *name;
	const char *what;
	void (*gen)(struct sj_ctx *c, unsigned lport, struct sj_msg *m);
};

struct sj_kind_stats {
	unsigned sent, answered, unanswered, unexpected;
};

/* A junk run: the options, then what came of it. */
struct sj_junk_run {
	unsigned count, rate, batch, wait_ms, deadline_s;
	bool verbose;
	bool use[SJ_NKINDS];
	unsigned sent, unanswered, extra, unexpected, errors, verbose_left;
	unsigned codes[1000]; /* by status code; [0]: not a SIP response */
	struct sj_kind_stats ks[SJ_NKINDS];
};

static inline uint64_t sj_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline uint64_t sj_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* kinds.c */
extern const struct sj_kind sj_kinds[SJ_NKINDS];
uint32_t sj_rnd(struct sj_ctx *c);
void sj_buf_add(struct sj_buf *b, const void *data, size_t len);
void sj_buf_printf(struct sj_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A well-formed OPTIONS, over TCP or UDP as its Via says, into B. */
void sj_make_options(struct sj_ctx *c, struct sj_buf *b, bool tcp);

/* junk.c */
int sj_status_code(const char *buf, size_t len);
int sj_run_junk(struct sj_ctx *c, struct sj_junk_run *r);
void sj_print_junk(const struct sj_junk_run *r);

#endif /* SIPJUNK_H */

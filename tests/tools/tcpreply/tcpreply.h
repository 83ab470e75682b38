/* tcpreply — what its two files share: the run's state (both ends of the
 * call, the connections, the trace), a parsed SIP message, and the message
 * builders and parsers of msg.c that the steps of main.c use.  Private to
 * the tool. */
#ifndef TCPREPLY_H
#define TCPREPLY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TR_BUF 65536
#define TR_MAX_CONNS 4
#define TR_TRACE 16384

/* One TCP connection of the caller: the one it opened, or one sipha opened. */
struct tr_conn {
	int fd;
	bool eof;
	size_t len;
	char buf[TR_BUF];
};

/* A parsed SIP message; pointers into the buffer it was framed from. */
struct tr_msg {
	const char *buf;
	size_t len, hlen; /* hlen: the header section with its blank line */
	int code; /* a response's status, 0 for a request */
	char method[16]; /* a request's method */
	char cseq_method[16];
	char callid[256];
	char first[160]; /* the first line, for the trace */
};

struct tr_run {
	uint16_t sipha_port, caller_port, callee_port;
	unsigned total_s;
	uint64_t t0, deadline;
	int lfd, ufd;
	struct tr_conn first; /* the caller's own connection to sipha */
	struct tr_conn acc[TR_MAX_CONNS]; /* connections sipha opened */
	unsigned n_acc;
	bool callee_live; /* the callee answers (after step 3) */
	char callid[128], from_tag[32];
	/* caller side */
	bool got_100, got_180, got_200, got_bye_200, a_error;
	int inv_final; /* a final response to the INVITE other than 200 */
	int ok_conn; /* index in acc[] of the 200's connection */
	char ok_to[512], ok_contact[512];
	uint64_t accept_ms;
	unsigned n_ok; /* 200s for the INVITE, retransmissions included */
	/* callee side */
	char b_callid[256], b_tag[32], b_ok[4096];
	size_t b_ok_len;
	unsigned b_invites, b_acks, b_byes, b_other;
	char trace[TR_TRACE];
	size_t trace_len;
};

static inline uint64_t tr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* msg.c */
/* One line of the trace, stamped with the time since the start. */
void tr_trace(struct tr_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The value of header NAME (compact form C, 0: none) into OUT ("" when
 * absent); false when absent. */
bool tr_hdr_get(const struct tr_msg *m, const char *name, char c, char *out, size_t size);
size_t tr_content_length(const char *buf, size_t hlen);
bool tr_parse_msg(struct tr_msg *m, const char *buf, size_t len, size_t hlen);
bool tr_tag_of(const char *hv, char *out, size_t size);
int tr_send_invite(struct tr_run *r);
int tr_send_in_dialog(struct tr_run *r, const char *method, unsigned cseq);
int tr_callee_reply(struct tr_run *r, const struct tr_msg *req, int code, const char *reason,
		    const struct sockaddr_in *from);

#endif /* TCPREPLY_H */

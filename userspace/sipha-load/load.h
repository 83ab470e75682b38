/* sipha-load: one thread, UDP sockets read and written in batches
 * (recvmmsg/sendmmsg), messages written from templates straight into the
 * send queue, answers read by scan.c, timers on the project's wheel
 * (core/timer.c), latencies in core/hist.c.  Nothing is allocated per call
 * or per message: the call table and the queues are sized at start. */
#ifndef SIPHA_LOAD_H
#define SIPHA_LOAD_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "core/hist.h"
#include "core/timer.h"
#include "sipha-load/dist.h"
#include "sipha-load/pace.h"
#include "sipha-load/scan.h"
#include "sipha-load/search.h"

#define LD_QLEN 64 /* datagrams per sendmmsg / recvmmsg */
#define LD_MSG_MAX 2048 /* the largest message sipha-load writes */
#define LD_RX_MAX 8192 /* the largest datagram read whole */
#define LD_TAG_MAX 96
#define LD_URI_MAX 160
#define LD_NONCE_MAX 96
#define LD_ROUTE_MAX 256 /* a call's route set, as its Route header value */
#define LD_USER_MAX 80

/* One UDP socket with its send queue and receive batch. */
struct ld_ep {
	int fd;
	char host[72]; /* "ip:port" (IPv6 in brackets) as Via and Contact write it */
	unsigned nq;
	struct mmsghdr q[LD_QLEN];
	struct iovec qiov[LD_QLEN];
	struct sockaddr_storage qdst[LD_QLEN];
	uint64_t qtag[LD_QLEN]; /* the call a queued message belongs to (0: none) */
	char qbuf[LD_QLEN][LD_MSG_MAX];
	struct mmsghdr r[LD_QLEN];
	struct iovec riov[LD_QLEN];
	struct sockaddr_storage rsrc[LD_QLEN];
	/* SCM_TIMESTAMPNS: when the kernel took each datagram in, so that a
	 * batch read late still measures each answer to the microsecond */
	uint64_t rctl[LD_QLEN][8];
	char rbuf[LD_QLEN][LD_RX_MAX];
};

#define LD_TCP_IN (256u << 10)
#define LD_TCP_OUT (1u << 20)
#define LD_MAX_CONNS 256

/* A TCP connection: the caller's one to TARGET, or one the callee accepted. */
struct ld_conn {
	uint64_t id; /* unique in the run: a callee transaction names its connection so */
	int fd;
	bool up; /* connected (the caller's may be connecting) */
	bool uac;
	size_t in_len, out_len, out_off;
	char *in, *out;
};

enum ld_cstate {
	LC_FREE,
	LC_INVITING, /* INVITE sent, no final answer yet */
	LC_HOLD,
	LC_BYEING,
};

/* What a challenge asked for (auth.c): one per challenged request. */
struct ld_auth {
	char nonce[LD_NONCE_MAX];
	uint8_t alg; /* enum dg_alg */
	bool qop, proxy; /* qop=auth offered; 407 (Proxy-Authorization) */
};

/* A next hop other than TARGET (a route set's first URI). */
union ld_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* The mid-call transaction of a held call (--options-every,
 * --reinvite-after): one at a time, on its own timer. */
enum ld_mstate {
	LM_NONE, /* nothing planned */
	LM_WAIT, /* the next one is due at the timer */
	LM_TXN, /* one is in flight */
};

struct ld_call {
	struct timer tm; /* the call: timers A/B, hold, E/F of the BYE */
	struct timer mtm; /* mid-call: the next OPTIONS/re-INVITE, or its A/B, E/F */
	struct load *ld;
	uint32_t gen; /* bumped at each release: stale answers miss */
	uint8_t state;
	bool provisional; /* a 1xx stopped the retransmissions */
	uint8_t totag_len, contact_len;
	uint8_t cseq_inv; /* 1, or 2 for the INVITE with credentials */
	char inv_kind; /* its branch: 'i', or 'j' with credentials */
	bool auth_tried;
	bool set_up; /* its INVITE got a 2xx */
	bool judged; /* --max-rate: counted in the verdict of its step */
	uint16_t step; /* --max-rate: the step it started in */
	/* mid-call */
	uint8_t mstate, mmethod; /* enum ld_mstate; SL_OPTIONS or SL_INVITE */
	bool mprov, bye_waits, reinvited;
	/* route set (Record-Route of the 2xx, reversed) */
	bool has_hop, strict;
	uint16_t route_len, route_first; /* the value; the length of its first <uri> */
	uint32_t cseq; /* the last CSeq of ours in the dialog */
	uint32_t mcseq; /* the mid-call transaction's */
	uint32_t rcseq; /* the re-INVITE's */
	uint32_t rto_ms, mrto_ms;
	uint64_t t_inv_us, t_txn_us, deadline_ms;
	uint64_t mt_us, mdeadline_ms, next_opt_ms, reinv_at_ms, bye_at_ms;
	union ld_addr hop;
	struct ld_auth auth; /* the challenge's, with --user */
	char totag[LD_TAG_MAX];
	char contact[LD_URI_MAX];
	char route[LD_ROUTE_MAX];
};

/* One user of --register. */
enum ld_rstate {
	LR_IDLE, /* not registered yet, or failed */
	LR_TXN, /* a REGISTER in flight */
	LR_BOUND, /* registered; refreshed at the timer (not in --register alone) */
};

struct ld_reg {
	struct timer tm;
	struct load *ld;
	uint8_t state;
	bool provisional, auth_tried, ended_once;
	uint32_t cseq, rto_ms;
	uint64_t t_txn_us, deadline_ms;
	struct ld_auth auth;
};

/* Counters and response times of one kind of transaction (REGISTER,
 * mid-call OPTIONS and re-INVITE). */
struct ld_mstat {
	uint64_t sent, ok, failed, timeouts, transport, retrans, challenges;
	uint64_t status[700];
	struct hist us;
};

struct ld_str {
	char *s;
	size_t n;
};

/* S becomes a new string of FMT (vasprintf): 0, or -ENOMEM with S empty. */
int str_printf(struct ld_str *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct ld_opts {
	bool uac, uas, json, quiet, tcp;
	const char *local_ip;
	unsigned local_port, uac_port;
	const char *dn;
	double rate, ramp_to; /* ramp_to 0: no ramp */
	unsigned ramp_s;
	uint64_t max_calls; /* UAC: calls to place; UAS alone: calls to see ended, 0: no end;
			     * --register alone: REGISTERs to send */
	unsigned hold_ms, limit, t1_ms, t2_ms;
	struct ld_dist hold; /* -d or --hold-dist */
	unsigned tick_us; /* while busy, read and write at most once per tick */
	const char *hist_path;
	const char *user, *password; /* digest credentials */
	/* --register N: users FIRST.. (users_prefix + a number counting up from
	 * users_first, zero-padded to users_width digits; width 0: no number) */
	unsigned reg_n, reg_expires;
	double reg_rate;
	char users_prefix[LD_USER_MAX];
	uint64_t users_first;
	unsigned users_width;
	/* mid-call */
	unsigned options_ms; /* 0: none */
	unsigned reinvite_ms;
	bool reinvite;
	/* --max-rate */
	bool max_rate;
	double max_fail_pct, rate_max;
	unsigned step_s;
	uint64_t max_p99_us; /* 0: no bound */
	/* callee */
	unsigned ring_ms;
	struct sockaddr_storage target;
	socklen_t target_len;
	char target_host[72];
	bool have_target;
	/* probe */
	unsigned interval_us, duration_s, gap_us;
};

struct ld_stats {
	uint64_t started, ok, failed, timeouts, transport, bad_answer, retrans;
	uint64_t rx_retrans; /* 2xx to INVITE seen again, ACKed again */
	uint64_t stray; /* answers matching no live call */
	uint64_t junk; /* datagrams that are not SIP */
	uint64_t status[700]; /* failures by final status */
	uint64_t uas_invites, uas_acks, uas_byes, uas_other;
	uint64_t uas_cancels; /* CANCELs that found their INVITE unanswered (487) */
	uint64_t uas_rtx; /* final answers sent again (no ACK yet) */
	uint64_t uas_inv_rtx; /* retransmitted INVITEs answered again */
	uint64_t uas_ack_timeouts; /* final answers never ACKed in 64*T1 */
	uint64_t uas_untracked; /* INVITEs answered without state (table full) */
	uint64_t connects, conn_lost, connect_failed; /* the caller's TCP */
	uint64_t challenges; /* 401/407 answered with credentials */
	uint64_t reg_refreshes; /* REGISTERs that refreshed a binding of ours */
	struct ld_mstat reg, opt, reinv;
};

/* One step of --max-rate. */
#define LD_MAX_STEPS 64

struct ld_step_rec {
	double rate;
	uint64_t started, judged;
	double failed_pct;
	uint64_t p99_us;
	bool pass;
};

struct load {
	struct ld_opts o;
	uint64_t now_us, t0_us;
	struct timer_wheel tw;
	struct ld_ep *uac_ep, *uas_ep;
	struct ld_call *calls;
	uint32_t *freel;
	uint32_t nfree, ncalls, active;
	struct ld_stats st;
	struct ld_pace pace;
	uint64_t pace_t0_us, pace_n0; /* the pacer runs from there (calls then started) */
	struct hist setup, setup_iv, txn_invite, txn_bye;
	struct hist hold; /* the hold times drawn, ms */
	struct hist reg_iv; /* REGISTER times of the live report's second */
	uint64_t rng;
	/* --register */
	struct ld_reg *regs;
	struct ld_pace reg_pace;
	uint64_t reg_t0_us, reg_next; /* the registration pacer; REGISTERs it began */
	uint64_t reg_ended; /* first registrations done (ok or failed) */
	uint32_t reg_inflight;
	bool reg_phase; /* calls wait for the first registration of every user */
	/* --max-rate */
	struct ld_search search;
	struct ld_step step; /* the current step's counts */
	struct hist step_setup;
	uint64_t step_t0_us, step_end_us, judge_until_us;
	uint16_t step_no;
	unsigned nsteps;
	struct ld_step_rec steps[LD_MAX_STEPS];
	char run[12]; /* this run's mark in Call-IDs */
	/* UAC templates */
	struct ld_str ruri, req_via, via_from, to_open, inv_tail, ack_tail, sdp_tail;
	struct ld_str reg_ruri, reg_contact; /* REGISTER's Request-URI; "@host[;transport=tcp]>" */
	/* TCP (-t t1) */
	struct ld_conn *uac_conn;
	struct sockaddr_storage uac_bind;
	socklen_t uac_bind_len;
	char uac_host[72], uas_host[72];
	int lfd;
	struct ld_conn *conns[LD_MAX_CONNS];
	unsigned nconns, backoff_ms;
	uint64_t conn_serial;
	struct uas_tab *uas; /* the callee's transactions */
	uint64_t reconnect_at_us;
	char realm[130], ha1[2][65]; /* digest: HA1 by algorithm for realm and --user */
	struct ld_probe *probe; /* probe mode: answers go to probe_rx() */
	volatile int stop;
	bool done;
};

/* A tiny writer for building messages in place: a write past the end sets
 * over and writes nothing more. */
struct wb {
	char *p, *end;
	bool over;
};

static inline void wb_mem(struct wb *w, const void *s, size_t n)
{
	if ((size_t)(w->end - w->p) < n) {
		w->over = true;
		w->p = w->end;
		return;
	}
	memcpy(w->p, s, n);
	w->p += n;
}

#define wb_lit(w, s) wb_mem(w, s, sizeof(s) - 1)

static inline void wb_str(struct wb *w, const struct ld_str *s)
{
	wb_mem(w, s->s, s->n);
}

static inline void wb_u64(struct wb *w, uint64_t v)
{
	char t[20];
	int i = 20;

	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	wb_mem(w, t + i, (size_t)(20 - i));
}

static inline void wb_hex(struct wb *w, uint64_t v)
{
	static const char hx[] = "0123456789abcdef";
	char t[16];
	int i = 16;

	do {
		t[--i] = hx[v & 15];
		v >>= 4;
	} while (v);
	wb_mem(w, t + i, (size_t)(16 - i));
}

/* ep.c */
int ld_ep_open(struct ld_ep **out, const char *ip, unsigned port,
	       const struct sockaddr_storage *towards);
void ld_ep_close(struct ld_ep *ep);
/* The buffer of the next queued datagram (the queue is flushed first when
 * full); commit it with ld_ep_commit(). */
char *ld_ep_next(struct load *ld, struct ld_ep *ep);
void ld_ep_commit(struct ld_ep *ep, size_t len, const struct sockaddr *dst, socklen_t dlen,
		  uint64_t tag);
void ld_ep_flush(struct load *ld, struct ld_ep *ep);
/* Reads what is waiting (up to a few batches) and hands each datagram to
 * ld_rx(); returns how many were read. */
unsigned ld_ep_drain(struct load *ld, struct ld_ep *ep);
/* A message from EP (UDP, from SRC) or from connection CONN (TCP). */
void ld_rx(struct load *ld, struct ld_ep *ep, struct ld_conn *conn, const char *buf, size_t len,
	   const struct sockaddr_storage *src);
uint64_t ld_mono_us(void);
uint64_t ld_real_us(void);
int ld_format_host(const struct sockaddr_storage *ss, char *out, size_t cap);
int ld_parse_target(const char *s, struct sockaddr_storage *ss, socklen_t *sl);

/* A queued datagram's tag: a call's (slot and generation + 1), or a
 * registration's (LD_TAG_REG | its index). */
#define LD_TAG_REG (1ull << 63)
#define LD_GEN_MASK 0x7fffffffu

static inline uint64_t since(uint64_t now, uint64_t t)
{
	return now > t ? now - t : 0;
}

/* A 1xx to a client transaction of ours (flag *PROV) with timer T: the
 * retransmissions stop and it waits for its final answer until DEADLINE_MS
 * (timer B or F). */
static inline void ld_provisional(struct load *ld, struct timer *t, bool *prov,
				  uint64_t deadline_ms)
{
	if (*prov)
		return;
	*prov = true;
	timer_add(&ld->tw, t, deadline_ms);
}

/* uac.c */
int uac_init(struct load *ld);
void uac_free(struct load *ld);
/* Calls may start (now, or when the registrations are done). */
void uac_begin(struct load *ld);
void uac_pace(struct load *ld);
/* Microseconds until the next call is due, 0 when one is, -1: none. */
int64_t uac_pace_wait(const struct load *ld);
void uac_answer(struct load *ld, const char *buf, const struct sl_msg *m);
/* A request in a call's dialog (a BYE from the far end): true when it was
 * one of ours. */
bool uac_request(struct load *ld, const char *buf, const struct sl_msg *m);
void uac_send_failed(struct load *ld, uint64_t tag, int err);
/* The caller's TCP connection broke: what waited on it fails. */
void uac_conn_lost(struct load *ld);

/* route.c: C's route set from the Record-Route of M (its INVITE's 2xx): 0,
 * or -ENOSPC when it is longer than LD_ROUTE_MAX.  The Request-URI and the
 * Route header line of an in-dialog request of C. */
int route_set(struct ld_call *c, const char *buf, const struct sl_msg *m);
void route_ruri(struct wb *w, const struct load *ld, const struct ld_call *c);
void route_header(struct wb *w, const struct ld_call *c);

/* maxrate.c: --max-rate's steps (search.c chooses their rates). */
void maxrate_begin(struct load *ld);
/* At each turn of the loop: ends a step when its time is up; true once
 * the search is over (no more calls). */
bool maxrate_tick(struct load *ld);
void maxrate_started(struct load *ld, struct ld_call *c);
void maxrate_set_up(struct load *ld, const struct ld_call *c, uint64_t us);
void maxrate_failed_after(struct load *ld, const struct ld_call *c);

/* reg.c: --register */
int reg_init(struct load *ld);
void reg_free(struct load *ld);
void reg_user(const struct load *ld, uint32_t i, char out[LD_USER_MAX + 24]);
void reg_pace(struct load *ld);
int64_t reg_pace_wait(const struct load *ld);
/* No REGISTER in flight and (alone) none left to send. */
bool reg_over(const struct load *ld);
void reg_answer(struct load *ld, const char *buf, const struct sl_msg *m);
void reg_send_failed(struct load *ld, uint64_t tag);
void reg_conn_lost(struct load *ld);

/* uas.c */
int uas_init(struct load *ld);
void uas_free(struct load *ld);
void uas_request(struct load *ld, struct ld_ep *ep, struct ld_conn *conn, const char *buf,
		 size_t len, const struct sl_msg *m, const struct sockaddr_storage *src);

/* auth.c: reads challenge V[0..N) into AU (0, or -EINVAL: not one we can
 * answer); writes the (Proxy-)Authorization line of USER for METHOD URI. */
int auth_challenge(struct load *ld, struct ld_auth *au, const char *v, size_t n);
void auth_header(struct wb *w, struct load *ld, const struct ld_auth *au, const char *user,
		 const char *method, const struct ld_str *uri, const char *cnonce);

/* tcp.c */
struct pollfd;
int tcp_uac_init(struct load *ld, const struct sockaddr_storage *bind_to, socklen_t blen);
int tcp_uas_listen(struct load *ld, const char *ip, unsigned port);
bool tcp_uac_up(const struct load *ld);
/* The open connection with id ID, or NULL. */
struct ld_conn *tcp_conn_by_id(struct load *ld, uint64_t id);
char *tcp_next(struct load *ld, struct ld_conn *c);
void tcp_commit(struct ld_conn *c, size_t len);
void tcp_flush(struct load *ld, struct ld_conn *c);
void tcp_flush_all(struct load *ld);
unsigned tcp_pollfds(struct load *ld, struct pollfd *pf, unsigned max);
unsigned tcp_service(struct load *ld, const struct pollfd *pf, unsigned n, bool all);
void tcp_tick(struct load *ld);
void tcp_close_all(struct load *ld);

/* report.c */
struct ld_report {
	uint64_t at_us, started, ended, uas_invites, reg_sent;
};
double cpu_seconds(void);
/* The live line on stderr; starts the next interval. */
void live_report(struct load *ld, struct ld_report *r);
void summary(struct load *ld, double wall, double cpu, FILE *f);
void json_out(struct load *ld, double wall, double cpu);
int write_hists(struct load *ld);

/* probe.c */
int probe_main(int argc, char **argv);
void probe_rx(struct load *ld, const char *buf, size_t len);

#endif

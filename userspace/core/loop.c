/* io_uring backend of the loop API (core/loop.h).
 *
 * Every submitted operation's user_data points at a struct loop_op embedded
 * in the object it serves; the op's kind picks the handler.  Objects with
 * operations in flight are never freed directly: streams go to a zombie list
 * and are finalised at the end of an iteration once nothing of theirs is in
 * flight. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "core/log.h"
#include "core/loop.h"

/* Provided buffers for datagrams: every datagram fits (SIP over UDP caps at
 * 65,535 octets), so nothing is ever truncated by us; 256 of them absorb a
 * burst while the handlers run. */
#define DGRAM_NBUF 256
#define DGRAM_PAYLOAD 65536
#define DGRAM_CTRL 64
#define DGRAM_BUFSZ                                                                           \
	(sizeof(struct io_uring_recvmsg_out) + sizeof(struct sockaddr_storage) + DGRAM_CTRL + \
	 DGRAM_PAYLOAD)
#define DGRAM_BGID 0

#define RING_ENTRIES 4096

/* A multishot request that could not be re-armed at once is retried: at the
 * next iteration when the submission queue was full or the provided buffers
 * ran out (handlers have returned them by then), after REARM_BACKOFF_MS when
 * the kernel reported another error (out of files: retrying at once would
 * spin while the cause lasts). */
#define REARM_BACKOFF_MS 50

enum op_kind {
	OP_DGRAM_RECV = 1,
	OP_DGRAM_SEND,
	OP_ACCEPT,
	OP_STREAM_RECV,
	OP_STREAM_SEND,
	OP_POLL,
	OP_STREAM_CONNECT,
};

struct loop_op {
	enum op_kind kind;
};

/* The re-arm state of a multishot request (datagram receive, accept, poll). */
struct rearm {
	struct loop_op *op; /* the request's op: its kind says how to arm it */
	int fd;
	bool pending; /* on the loop's retry list */
	uint64_t due; /* loop time of the next attempt */
	uint64_t warn_ms; /* when an error of the request may be logged again */
	uint64_t slot_warn_ms; /* when a re-arm without a slot may be logged again */
	struct rearm *next;
};

struct dgram_sock {
	struct loop_op op;
	struct loop *l;
	int fd;
	loop_dgram_fn fn;
	void *arg;
	struct msghdr mh; /* template for multishot recvmsg: name and control sizes */
	struct rearm ra;
	struct dgram_sock *next;
};

struct dgram_out {
	struct loop_op op;
	struct msghdr mh;
	struct iovec iov;
	struct sockaddr_storage to;
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} ctrl;
	char data[];
};

/* A multishot accept or poll on one fd: the same object, two callbacks. */
struct watch {
	struct loop_op op; /* OP_ACCEPT or OP_POLL */
	int fd;
	union {
		loop_accept_fn accept;
		loop_poll_fn poll;
	} fn;
	void *arg;
	struct rearm ra; /* ra.warn_ms also paces the logging of accept/poll errors */
	struct watch *next;
};

struct bytes {
	char *data;
	size_t len, off, cap;
};

struct loop_stream {
	struct loop *l;
	int fd;
	const struct loop_stream_ops *ops;
	void *arg;
	struct loop_op rop, sop, cop;
	bool recv_busy, send_busy, connecting;
	struct sockaddr_storage to; /* connect target */
	socklen_t tolen;
	bool closing, flush, finalised;
	int err;
	struct bytes in;
	struct bytes sending; /* owned by the in-flight send */
	struct bytes pending; /* appended by loop_stream_write */
	struct loop_stream *next, *prev; /* open streams, or the zombie list */
};

struct loop {
	struct io_uring ring;
	bool stop;
	uint64_t now;
	struct timer_wheel tw;
	struct loop_stats st;

	struct io_uring_buf_ring *br;
	char *bufs;
	size_t br_size;

	struct dgram_sock *dgrams;
	struct watch *watches;
	struct loop_stream *streams;
	struct loop_stream *zombies;
	struct rearm *rearms; /* multishot requests waiting to be re-armed */
	uint64_t oversize_warn_ms;
	unsigned sq_fail; /* loop_inject_sq_full() */
	unsigned hold; /* loop_inject_buf_shortage(): buffers still to hold back */
	unsigned nheld;
	unsigned short held[DGRAM_NBUF];
};

static uint64_t clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct io_uring_sqe *get_sqe(struct loop *l)
{
	struct io_uring_sqe *sqe;

	if (l->sq_fail) {
		l->sq_fail--;
		return NULL;
	}
	sqe = io_uring_get_sqe(&l->ring);

	if (!sqe) {
		/* SQ full: hand what we have to the kernel and take a fresh slot. */
		io_uring_submit(&l->ring);
		sqe = io_uring_get_sqe(&l->ring);
	}
	return sqe;
}

static int setup_buf_ring(struct loop *l)
{
	struct io_uring_buf_reg reg = { 0 };
	int ret;

	l->br_size = DGRAM_NBUF * sizeof(struct io_uring_buf);
	l->br = mmap(NULL, l->br_size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (l->br == MAP_FAILED) {
		l->br = NULL;
		return -errno;
	}
	l->bufs = malloc((size_t)DGRAM_NBUF * DGRAM_BUFSZ);
	if (!l->bufs)
		return -ENOMEM;
	reg.ring_addr = (unsigned long)l->br;
	reg.ring_entries = DGRAM_NBUF;
	reg.bgid = DGRAM_BGID;
	ret = io_uring_register_buf_ring(&l->ring, &reg, 0);
	if (ret) {
		pr_err("io_uring: cannot register buffer ring: %s", strerror(-ret));
		return ret;
	}
	io_uring_buf_ring_init(l->br);
	for (unsigned i = 0; i < DGRAM_NBUF; i++)
		io_uring_buf_ring_add(l->br, l->bufs + (size_t)i * DGRAM_BUFSZ, DGRAM_BUFSZ, i,
				      io_uring_buf_ring_mask(DGRAM_NBUF), i);
	io_uring_buf_ring_advance(l->br, DGRAM_NBUF);
	return 0;
}

static void recycle_buf(struct loop *l, unsigned bid)
{
	io_uring_buf_ring_add(l->br, l->bufs + (size_t)bid * DGRAM_BUFSZ, DGRAM_BUFSZ, bid,
			      io_uring_buf_ring_mask(DGRAM_NBUF), 0);
	io_uring_buf_ring_advance(l->br, 1);
}

int loop_new(struct loop **out)
{
	struct io_uring_params p = { 0 };
	struct loop *l;
	int ret;

	*out = NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	/* One thread owns the ring: let the kernel skip cross-thread locking and
	 * run task work only when we wait, in batches. */
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
	p.cq_entries = RING_ENTRIES * 4;
	ret = io_uring_queue_init_params(RING_ENTRIES, &l->ring, &p);
	if (ret == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = RING_ENTRIES * 4;
		ret = io_uring_queue_init_params(RING_ENTRIES, &l->ring, &p);
	}
	if (ret) {
		pr_err("io_uring: cannot set up ring: %s", strerror(-ret));
		free(l);
		return ret;
	}
	if (!(p.features & IORING_FEAT_EXT_ARG)) {
		pr_err("io_uring: kernel lacks IORING_FEAT_EXT_ARG (need Linux 5.11+)");
		io_uring_queue_exit(&l->ring);
		free(l);
		return -EOPNOTSUPP;
	}
	ret = setup_buf_ring(l);
	if (ret) {
		loop_free(l);
		return ret;
	}
	l->now = clock_ms();
	timer_wheel_init(&l->tw, l->now);
	*out = l;
	return 0;
}

static void stream_free(struct loop_stream *s)
{
	free(s->in.data);
	free(s->sending.data);
	free(s->pending.data);
	free(s);
}

/* Cancels every request and reaps the completions, so sockets held by
 * multishot requests are released now (a restarted daemon can bind its
 * ports at once) and datagrams still being sent are freed. */
static void cancel_all(struct loop *l)
{
	struct __kernel_timespec ts = { .tv_nsec = 20 * 1000000 };
	struct io_uring_sqe *sqe = get_sqe(l);
	struct io_uring_cqe *cqe;

	if (!sqe)
		return;
	io_uring_prep_cancel(sqe, NULL, IORING_ASYNC_CANCEL_ANY);
	io_uring_sqe_set_data(sqe, NULL);
	io_uring_submit(&l->ring);
	for (int rounds = 0; rounds < 50; rounds++) {
		if (io_uring_wait_cqe_timeout(&l->ring, &cqe, &ts))
			break;
		struct loop_op *op = io_uring_cqe_get_data(cqe);

		if (op && op->kind == OP_DGRAM_SEND)
			free(container_of(op, struct dgram_out, op));
		io_uring_cqe_seen(&l->ring, cqe);
	}
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	cancel_all(l);
	/* Closing the ring cancels whatever is still in flight; only then are
	 * the buffers those operations point into safe to free. */
	io_uring_queue_exit(&l->ring);
	for (int pass = 0; pass < 2; pass++) {
		struct loop_stream *s = pass ? l->zombies : l->streams, *n;

		for (; s; s = n) {
			n = s->next;
			if (s->ops->on_close)
				s->ops->on_close(s, s->arg, s->err ? s->err : -ECANCELED);
			close(s->fd);
			stream_free(s);
		}
	}
	for (struct dgram_sock *d = l->dgrams, *n; d; d = n) {
		n = d->next;
		free(d);
	}
	for (struct watch *w = l->watches, *n; w; w = n) {
		n = w->next;
		free(w);
	}
	if (l->br)
		munmap(l->br, l->br_size);
	free(l->bufs);
	free(l);
}

uint64_t loop_now(const struct loop *l)
{
	return l->now;
}

struct timer_wheel *loop_timers(struct loop *l)
{
	return &l->tw;
}

void loop_timer_in(struct loop *l, struct timer *t, uint64_t delay_ms)
{
	timer_add(&l->tw, t, l->now + delay_ms);
}

void loop_clock_update(struct loop *l)
{
	l->now = clock_ms();
}

const struct loop_stats *loop_stats(const struct loop *l)
{
	return &l->st;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}

void loop_inject_sq_full(struct loop *l, unsigned n)
{
	l->sq_fail = n;
}

void loop_inject_buf_shortage(struct loop *l, unsigned n)
{
	l->hold = n < DGRAM_NBUF ? n : DGRAM_NBUF;
}

/* --- re-arming multishot requests -------------------------------------------- */

static const char *rearm_what(const struct rearm *ra)
{
	switch (ra->op->kind) {
	case OP_DGRAM_RECV:
		return "udp recvmsg";
	case OP_ACCEPT:
		return "accept";
	default:
		return "poll";
	}
}

static int arm_dgram(struct loop *l, struct dgram_sock *d);
static int arm_watch(struct loop *l, struct watch *w);

static int rearm_now(struct loop *l, struct rearm *ra)
{
	if (ra->op->kind == OP_DGRAM_RECV)
		return arm_dgram(l, container_of(ra->op, struct dgram_sock, op));
	return arm_watch(l, container_of(ra->op, struct watch, op));
}

/* Puts RA on the retry list, due DELAY_MS from now (0: next iteration). */
static void rearm_later(struct loop *l, struct rearm *ra, uint64_t delay_ms)
{
	ra->due = l->now + delay_ms;
	if (ra->pending)
		return;
	ra->pending = true;
	ra->next = l->rearms;
	l->rearms = ra;
}

/* A multishot request ended (IORING_CQE_F_MORE clear) with RES: arm it
 * again, or retry later, never leave its socket unheard in silence. */
static void rearm(struct loop *l, struct rearm *ra, int res)
{
	if (res == -EBADF)
		return; /* the socket is gone: nothing left to hear */
	if (res == -ENOBUFS) {
		rearm_later(l, ra, 0);
		return;
	}
	if (res < 0 && res != -ECANCELED) {
		rearm_later(l, ra, REARM_BACKOFF_MS);
		return;
	}
	if (rearm_now(l, ra)) {
		l->st.rearm_retries++;
		if (l->now >= ra->slot_warn_ms) {
			pr_warn("%s on fd %d: no submission slot to re-arm it, retrying",
				rearm_what(ra), ra->fd);
			ra->slot_warn_ms = l->now + 1000;
		}
		rearm_later(l, ra, 0);
	}
}

/* Retries the re-arms that are due; returns the loop time of the earliest
 * one still waiting, or UINT64_MAX when none is. */
static uint64_t rearm_run(struct loop *l)
{
	struct rearm **pp = &l->rearms, *ra;
	uint64_t next = UINT64_MAX;

	while ((ra = *pp)) {
		if (ra->due <= l->now) {
			if (!rearm_now(l, ra)) {
				*pp = ra->next;
				ra->pending = false;
				ra->next = NULL;
				continue;
			}
			l->st.rearm_retries++;
			if (l->now >= ra->slot_warn_ms) {
				pr_warn("%s on fd %d: still no submission slot to re-arm it",
					rearm_what(ra), ra->fd);
				ra->slot_warn_ms = l->now + 1000;
			}
			ra->due = l->now;
		}
		if (ra->due < next)
			next = ra->due;
		pp = &ra->next;
	}
	return next;
}

/* --- datagrams ------------------------------------------------------------ */

static int arm_dgram(struct loop *l, struct dgram_sock *d)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_recvmsg_multishot(sqe, d->fd, &d->mh, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = DGRAM_BGID;
	io_uring_sqe_set_data(sqe, &d->op);
	return 0;
}

int loop_dgram_add(struct loop *l, int fd, loop_dgram_fn fn, void *arg)
{
	struct dgram_sock *d;
	int one = 1, ret;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl))
		return -errno;
	if (ss.ss_family == AF_INET6) {
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)))
			return -errno;
		/* A dual-stack socket also reports v4-mapped destinations here. */
		setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	} else if (setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one))) {
		return -errno;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->op.kind = OP_DGRAM_RECV;
	d->l = l;
	d->fd = fd;
	d->fn = fn;
	d->arg = arg;
	d->mh.msg_namelen = sizeof(struct sockaddr_storage);
	d->mh.msg_controllen = DGRAM_CTRL;
	d->ra.op = &d->op;
	d->ra.fd = fd;
	ret = arm_dgram(l, d);
	if (ret) {
		free(d);
		return ret;
	}
	d->next = l->dgrams;
	l->dgrams = d;
	return 0;
}

static void read_pktinfo(struct io_uring_recvmsg_out *o, struct msghdr *mh, struct loop_dgram *d)
{
	for (struct cmsghdr *c = io_uring_recvmsg_cmsg_firsthdr(o, mh); c;
	     c = io_uring_recvmsg_cmsg_nexthdr(o, mh, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			struct sockaddr_in *sin = (struct sockaddr_in *)&d->dst;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			sin->sin_family = AF_INET;
			sin->sin_addr = pi.ipi_addr;
			d->ifindex = pi.ipi_ifindex;
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&d->dst;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			sin6->sin6_family = AF_INET6;
			sin6->sin6_addr = pi.ipi6_addr;
			d->ifindex = (int)pi.ipi6_ifindex;
		}
	}
}

static void handle_dgram_recv(struct loop *l, struct dgram_sock *ds, struct io_uring_cqe *cqe)
{
	if (cqe->res >= 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		char *buf = l->bufs + (size_t)bid * DGRAM_BUFSZ;
		struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(buf, cqe->res, &ds->mh);

		if (o) {
			struct loop_dgram d = { 0 };

			d.buf = io_uring_recvmsg_payload(o, &ds->mh);
			d.len = io_uring_recvmsg_payload_length(o, cqe->res, &ds->mh);
			d.truncated = o->flags & MSG_TRUNC;
			d.src = io_uring_recvmsg_name(o);
			d.srclen = o->namelen;
			read_pktinfo(o, &ds->mh, &d);
			l->st.dgrams_in++;
			if (d.truncated)
				l->st.dgrams_truncated++;
			ds->fn(ds->arg, ds->fd, &d);
		}
		if (l->hold) {
			l->hold--;
			l->held[l->nheld++] = (unsigned short)bid;
		} else {
			recycle_buf(l, bid);
		}
	} else if (cqe->res == -ENOBUFS) {
		/* Every provided buffer was taken before this batch was
		 * handled; they are back once it is, so the receive is re-armed
		 * at the next iteration. */
		l->st.nobufs++;
		while (l->nheld)
			recycle_buf(l, l->held[--l->nheld]);
		if (l->now >= ds->ra.warn_ms) {
			pr_warn("udp recvmsg on fd %d: out of receive buffers (%d), re-armed once "
				"they are returned",
				ds->fd, DGRAM_NBUF);
			ds->ra.warn_ms = l->now + 1000;
		}
	} else if (cqe->res < 0 && cqe->res != -ECANCELED && l->now >= ds->ra.warn_ms) {
		pr_warn("udp recvmsg on fd %d: %s", ds->fd, strerror(-cqe->res));
		ds->ra.warn_ms = l->now + 1000;
	}
	if (!(cqe->flags & IORING_CQE_F_MORE))
		rearm(l, &ds->ra, cqe->res < 0 ? cqe->res : 0);
}

int loop_dgram_send(struct loop *l, int fd, const void *buf, size_t len, const struct sockaddr *to,
		    socklen_t tolen, const struct sockaddr *from)
{
	struct io_uring_sqe *sqe;
	struct dgram_out *o;

	if (tolen > sizeof(o->to))
		return -EINVAL;
	o = malloc(sizeof(*o) + len);
	if (!o)
		return -ENOMEM;
	memset(o, 0, sizeof(*o));
	o->op.kind = OP_DGRAM_SEND;
	memcpy(o->data, buf, len);
	memcpy(&o->to, to, tolen);
	o->iov.iov_base = o->data;
	o->iov.iov_len = len;
	o->mh.msg_name = &o->to;
	o->mh.msg_namelen = tolen;
	o->mh.msg_iov = &o->iov;
	o->mh.msg_iovlen = 1;
	if (from && from->sa_family == AF_INET) {
		struct cmsghdr *c = (struct cmsghdr *)o->ctrl.buf;
		struct in_pktinfo pi = { 0 };

		pi.ipi_spec_dst = ((const struct sockaddr_in *)from)->sin_addr;
		o->mh.msg_control = o->ctrl.buf;
		o->mh.msg_controllen = CMSG_SPACE(sizeof(pi));
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
	} else if (from && from->sa_family == AF_INET6) {
		struct cmsghdr *c = (struct cmsghdr *)o->ctrl.buf;
		struct in6_pktinfo pi = { 0 };

		pi.ipi6_addr = ((const struct sockaddr_in6 *)from)->sin6_addr;
		o->mh.msg_control = o->ctrl.buf;
		o->mh.msg_controllen = CMSG_SPACE(sizeof(pi));
		c->cmsg_level = IPPROTO_IPV6;
		c->cmsg_type = IPV6_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
	}
	sqe = get_sqe(l);
	if (!sqe) {
		free(o);
		return -EBUSY;
	}
	io_uring_prep_sendmsg(sqe, fd, &o->mh, 0);
	io_uring_sqe_set_data(sqe, &o->op);
	l->st.dgrams_out++;
	return 0;
}

static void handle_dgram_send(struct loop *l, struct dgram_out *o, struct io_uring_cqe *cqe)
{
	if (cqe->res < 0) {
		l->st.dgram_send_errors++;
		pr_debug("udp sendmsg: %s", strerror(-cqe->res));
	}
	free(o);
}

/* --- listeners and polls ---------------------------------------------------- */

static int arm_watch(struct loop *l, struct watch *w)
{
	struct io_uring_sqe *sqe = get_sqe(l);

	if (!sqe)
		return -EBUSY;
	if (w->op.kind == OP_ACCEPT)
		io_uring_prep_multishot_accept(sqe, w->fd, NULL, NULL,
					       SOCK_NONBLOCK | SOCK_CLOEXEC);
	else
		io_uring_prep_poll_multishot(sqe, w->fd, POLLIN);
	io_uring_sqe_set_data(sqe, &w->op);
	return 0;
}

static struct watch *watch_add(struct loop *l, enum op_kind kind, int fd, void *arg, int *err)
{
	struct watch *w = calloc(1, sizeof(*w));

	*err = -ENOMEM;
	if (!w)
		return NULL;
	w->op.kind = kind;
	w->fd = fd;
	w->arg = arg;
	w->ra.op = &w->op;
	w->ra.fd = fd;
	*err = arm_watch(l, w);
	if (*err) {
		free(w);
		return NULL;
	}
	w->next = l->watches;
	l->watches = w;
	return w;
}

int loop_listen_add(struct loop *l, int fd, loop_accept_fn fn, void *arg)
{
	int ret;
	struct watch *w = watch_add(l, OP_ACCEPT, fd, arg, &ret);

	if (w)
		w->fn.accept = fn;
	return ret;
}

int loop_poll_add(struct loop *l, int fd, loop_poll_fn fn, void *arg)
{
	int ret;
	struct watch *w = watch_add(l, OP_POLL, fd, arg, &ret);

	if (w)
		w->fn.poll = fn;
	return ret;
}

static void handle_watch(struct loop *l, struct watch *w, struct io_uring_cqe *cqe)
{
	int res = cqe->res;

	if (res >= 0 && w->op.kind == OP_ACCEPT) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);

		if (getpeername(res, (struct sockaddr *)&peer, &pl))
			close(res);
		else
			w->fn.accept(w->arg, res, &peer, pl);
	} else if (res > 0) {
		w->fn.poll(w->arg, w->fd, (unsigned)res);
	} else if (res < 0 && res != -ECANCELED) {
		/* Out of files, a connection flood: said once a second at most. */
		if (loop_now(l) >= w->ra.warn_ms) {
			pr_warn("%s on fd %d: %s", rearm_what(&w->ra), w->fd, strerror(-res));
			w->ra.warn_ms = loop_now(l) + 1000;
		}
	}
	if (!(cqe->flags & IORING_CQE_F_MORE))
		rearm(l, &w->ra, res < 0 ? res : 0);
}

/* --- streams ----------------------------------------------------------------- */

static void list_del_stream(struct loop_stream **head, struct loop_stream *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		*head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
}

static void list_add_stream(struct loop_stream **head, struct loop_stream *s)
{
	s->prev = NULL;
	s->next = *head;
	if (*head)
		(*head)->prev = s;
	*head = s;
}

static void stream_kill(struct loop_stream *s, int err)
{
	if (s->closing && !s->flush)
		return;
	if (!s->err)
		s->err = err;
	s->closing = true;
	s->flush = false;
	/* Wakes a pending recv with 0 and fails a pending send, so every op of
	 * this stream completes and it can be finalised. */
	shutdown(s->fd, SHUT_RDWR);
	list_del_stream(&s->l->streams, s);
	list_add_stream(&s->l->zombies, s);
}

static void arm_recv(struct loop_stream *s)
{
	struct io_uring_sqe *sqe;

	if (s->recv_busy || s->closing || s->connecting)
		return;
	if (s->in.cap - s->in.len < 2048) {
		size_t cap = s->in.cap ? s->in.cap * 2 : 4096;
		char *p;

		if (cap > LOOP_STREAM_MAX_INBUF)
			cap = LOOP_STREAM_MAX_INBUF;
		if (cap == s->in.len) {
			/* The peer filled our window without a message we could
			 * consume: it is not speaking our framing. */
			s->l->st.streams_oversized++;
			if (s->l->now >= s->l->oversize_warn_ms) {
				pr_warn("stream on fd %d: %u bytes without a message, closed",
					s->fd, LOOP_STREAM_MAX_INBUF);
				s->l->oversize_warn_ms = s->l->now + 1000;
			}
			stream_kill(s, -EMSGSIZE);
			return;
		}
		p = realloc(s->in.data, cap);
		if (!p) {
			stream_kill(s, -ENOMEM);
			return;
		}
		s->in.data = p;
		s->in.cap = cap;
	}
	sqe = get_sqe(s->l);
	if (!sqe) {
		stream_kill(s, -EBUSY);
		return;
	}
	io_uring_prep_recv(sqe, s->fd, s->in.data + s->in.len, s->in.cap - s->in.len, 0);
	io_uring_sqe_set_data(sqe, &s->rop);
	s->recv_busy = true;
}

static void arm_send(struct loop_stream *s)
{
	struct io_uring_sqe *sqe;

	if (s->send_busy || s->connecting)
		return;
	if (s->sending.off == s->sending.len) {
		/* The in-flight buffer is done: the pending one becomes it. */
		struct bytes t = s->sending;

		s->sending = s->pending;
		t.len = t.off = 0;
		s->pending = t;
	}
	if (s->sending.off == s->sending.len) {
		if (s->closing && s->flush)
			stream_kill(s, 0);
		return;
	}
	sqe = get_sqe(s->l);
	if (!sqe) {
		stream_kill(s, -EBUSY);
		return;
	}
	io_uring_prep_send(sqe, s->fd, s->sending.data + s->sending.off,
			   s->sending.len - s->sending.off, MSG_NOSIGNAL);
	io_uring_sqe_set_data(sqe, &s->sop);
	s->send_busy = true;
}

static struct loop_stream *stream_new(struct loop *l, int fd, const struct loop_stream_ops *ops,
				      void *arg)
{
	struct loop_stream *s = calloc(1, sizeof(*s));

	if (!s) {
		close(fd);
		return NULL;
	}
	s->l = l;
	s->fd = fd;
	s->ops = ops;
	s->arg = arg;
	s->rop.kind = OP_STREAM_RECV;
	s->sop.kind = OP_STREAM_SEND;
	s->cop.kind = OP_STREAM_CONNECT;
	list_add_stream(&l->streams, s);
	l->st.streams_open++;
	l->st.streams_total++;
	return s;
}

struct loop_stream *loop_stream_add(struct loop *l, int fd, const struct loop_stream_ops *ops,
				    void *arg)
{
	struct loop_stream *s = stream_new(l, fd, ops, arg);

	if (s)
		arm_recv(s);
	return s;
}

struct loop_stream *loop_stream_connect(struct loop *l, int fd, const struct sockaddr *addr,
					socklen_t addrlen, const struct loop_stream_ops *ops,
					void *arg)
{
	struct loop_stream *s;
	struct io_uring_sqe *sqe;

	if (addrlen > sizeof(s->to)) {
		close(fd);
		return NULL;
	}
	s = stream_new(l, fd, ops, arg);
	if (!s)
		return NULL;
	memcpy(&s->to, addr, addrlen);
	s->tolen = addrlen;
	sqe = get_sqe(l);
	if (!sqe) {
		stream_kill(s, -EBUSY);
		return s;
	}
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)&s->to, s->tolen);
	io_uring_sqe_set_data(sqe, &s->cop);
	s->connecting = true;
	return s;
}

static void handle_stream_connect(struct loop_stream *s, struct io_uring_cqe *cqe)
{
	s->connecting = false;
	if (s->closing && !s->flush)
		return;
	if (cqe->res < 0) {
		stream_kill(s, cqe->res);
		return;
	}
	arm_recv(s);
	arm_send(s);
}

int loop_stream_fd(const struct loop_stream *s)
{
	return s->fd;
}

size_t loop_stream_backlog(const struct loop_stream *s)
{
	return s->pending.len + (s->sending.len - s->sending.off);
}

int loop_stream_write(struct loop_stream *s, const void *buf, size_t len)
{
	struct bytes *p = &s->pending;

	if (s->closing)
		return -EPIPE;
	if (p->len + len + (s->sending.len - s->sending.off) > LOOP_STREAM_MAX_BACKLOG) {
		stream_kill(s, -ENOBUFS);
		return -ENOBUFS;
	}
	if (p->len + len > p->cap) {
		size_t cap = p->cap ? p->cap : 4096;
		char *n;

		while (cap < p->len + len)
			cap *= 2;
		n = realloc(p->data, cap);
		if (!n)
			return -ENOMEM;
		p->data = n;
		p->cap = cap;
	}
	memcpy(p->data + p->len, buf, len);
	p->len += len;
	arm_send(s);
	return 0;
}

void loop_stream_close(struct loop_stream *s, bool flush)
{
	if (s->closing)
		return;
	if (flush && (s->send_busy || s->pending.len)) {
		s->closing = true;
		s->flush = true;
		return;
	}
	stream_kill(s, 0);
}

void loop_stream_abort(struct loop_stream *s, int err)
{
	stream_kill(s, err);
}

static void handle_stream_recv(struct loop_stream *s, struct io_uring_cqe *cqe)
{
	s->recv_busy = false;
	if (s->closing && !s->flush)
		return;
	if (cqe->res <= 0) {
		stream_kill(s, cqe->res);
		return;
	}
	s->in.len += (size_t)cqe->res;
	while (s->in.len && !(s->closing && !s->flush)) {
		size_t used = s->ops->on_data(s, s->arg, s->in.data, s->in.len);

		if (!used)
			break;
		if (used > s->in.len)
			used = s->in.len;
		memmove(s->in.data, s->in.data + used, s->in.len - used);
		s->in.len -= used;
	}
	if (!s->closing)
		arm_recv(s);
}

static void handle_stream_send(struct loop_stream *s, struct io_uring_cqe *cqe)
{
	s->send_busy = false;
	if (cqe->res < 0) {
		stream_kill(s, cqe->res);
		return;
	}
	s->sending.off += (size_t)cqe->res;
	if (s->closing && !s->flush)
		return;
	arm_send(s);
}

static void reap_zombies(struct loop *l)
{
	struct loop_stream *s = l->zombies, *n;

	for (; s; s = n) {
		n = s->next;
		if (s->recv_busy || s->send_busy || s->connecting)
			continue;
		list_del_stream(&l->zombies, s);
		l->st.streams_open--;
		if (s->ops->on_close)
			s->ops->on_close(s, s->arg, s->err);
		close(s->fd);
		stream_free(s);
	}
}

/* --- the loop -------------------------------------------------------------------- */

static void dispatch(struct loop *l, struct io_uring_cqe *cqe)
{
	struct loop_op *op = io_uring_cqe_get_data(cqe);

	if (!op)
		return;
	switch (op->kind) {
	case OP_DGRAM_RECV:
		handle_dgram_recv(l, container_of(op, struct dgram_sock, op), cqe);
		break;
	case OP_DGRAM_SEND:
		handle_dgram_send(l, container_of(op, struct dgram_out, op), cqe);
		break;
	case OP_ACCEPT:
	case OP_POLL:
		handle_watch(l, container_of(op, struct watch, op), cqe);
		break;
	case OP_STREAM_RECV:
		handle_stream_recv(container_of(op, struct loop_stream, rop), cqe);
		break;
	case OP_STREAM_SEND:
		handle_stream_send(container_of(op, struct loop_stream, sop), cqe);
		break;
	case OP_STREAM_CONNECT:
		handle_stream_connect(container_of(op, struct loop_stream, cop), cqe);
		break;
	}
}

int loop_run(struct loop *l)
{
	l->stop = false;
	while (!l->stop) {
		struct __kernel_timespec ts, *tsp = NULL;
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		uint64_t rearm_due;
		int64_t next;
		int ret;

		l->now = clock_ms();
		timer_run(&l->tw, l->now);
		reap_zombies(l);
		if (l->stop)
			break;
		rearm_due = rearm_run(l);
		next = timer_next(&l->tw);
		if (rearm_due != UINT64_MAX) {
			int64_t in = rearm_due > l->now ? (int64_t)(rearm_due - l->now) : 0;

			/* no wait at all for a retry due now: an iteration is cheap */
			if (next < 0 || in < next)
				next = in;
		}
		if (next >= 0) {
			ts.tv_sec = next / 1000;
			ts.tv_nsec = (next % 1000) * 1000000;
			tsp = &ts;
		}
		/* One system call submits everything queued since the last
		 * iteration and waits for at least one completion or the next
		 * timer, whichever comes first. */
		ret = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, tsp, NULL);
		if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			pr_err("io_uring wait: %s", strerror(-ret));
			return ret;
		}
		l->st.iterations++;
		/* The wheel's clock is what handlers arm timers against: bring it
		 * up to date before they run, or after an idle sleep every timer
		 * they arm would be due at once (seconds in the past). */
		l->now = clock_ms();
		timer_run(&l->tw, l->now);
		io_uring_for_each_cqe (&l->ring, head, cqe) {
			dispatch(l, cqe);
			n++;
		}
		io_uring_cq_advance(&l->ring, n);
		l->st.cqes += n;
	}
	/* What the last handlers queued (an answer, a GOODBYE) still goes out. */
	io_uring_submit(&l->ring);
	return 0;
}

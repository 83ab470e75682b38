/* nfqdelay — a fixed delay on some packets, for a kernel without netem.
 *
 *   nfqdelay [-q QUEUE] [-d DELAY_MS] [-r RAMP_MS] [-T SEC]
 *
 * Binds NFQUEUE queue QUEUE (default 0) in the current network namespace and
 * accepts each packet the kernel queues there DELAY_MS (default 50) after it
 * arrived, in arrival order.  Packets reach it through an iptables rule
 * (`-j NFQUEUE --queue-num QUEUE --queue-bypass`: nftables' own `queue`
 * needs CONFIG_NFT_QUEUE, which some kernels lack; the xtables target goes
 * through nft's compat layer).
 *
 * The delay grows from 0 to DELAY_MS in a straight line over RAMP_MS
 * (default 0: at once).  A delay switched on at once is a silence of
 * DELAY_MS on the link, which a peer with a shorter timeout rightly takes
 * for a death; a real path whose latency grows does it gradually.
 *
 * It prints "bound" once the queue is bound, and at the end one line:
 *
 *   held N max_queue M delay_ms D
 *
 * Bounded: it ends after SEC seconds (default 60), or at SIGTERM/SIGINT,
 * accepting every packet still held first (they would be dropped with the
 * queue otherwise).  The queue fails open: when full, the kernel accepts
 * packets instead of dropping them.  Exit status: 0, 1 on netlink errors,
 * 2 on usage errors. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ND_RING 65536 /* packets held at most; more fail open in the kernel */
#define ND_RCVBUF (8 << 20)
#define ND_MSG 8192 /* one request */
#define ND_READ 65536 /* one read of notifications */

struct nd_pkt {
	uint32_t id;
	uint64_t due_ns;
};

struct nd {
	struct mnl_socket *nl;
	uint16_t queue;
	uint64_t delay_ns, ramp_ns, start_ns, last_due_ns;
	struct nd_pkt ring[ND_RING];
	unsigned head, len, max_len;
	unsigned long held;
	char buf[ND_READ];
};

static volatile sig_atomic_t nd_stop;

static void on_term(int sig)
{
	(void)sig;
	nd_stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct nlmsghdr *nd_msg(struct nd *d, char *buf, int type)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *g;

	nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | type;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = AF_UNSPEC;
	g->version = NFNETLINK_V0;
	g->res_id = htons(d->queue);
	return nlh;
}

/* Sends a request and waits for its acknowledgement. */
static int nd_request(struct nd *d, struct nlmsghdr *nlh)
{
	int n;

	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = (uint32_t)time(NULL);
	if (mnl_socket_sendto(d->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	n = (int)mnl_socket_recvfrom(d->nl, d->buf, sizeof(d->buf));
	if (n < 0)
		return -errno;
	n = mnl_cb_run(d->buf, (size_t)n, nlh->nlmsg_seq, mnl_socket_get_portid(d->nl), NULL, NULL);
	return n < 0 ? -errno : 0;
}

static int nd_bind(struct nd *d)
{
	char buf[ND_MSG];
	struct nfqnl_msg_config_cmd cmd = { .command = NFQNL_CFG_CMD_BIND };
	struct nfqnl_msg_config_params params = { .copy_range = 0, .copy_mode = NFQNL_COPY_META };
	struct nlmsghdr *nlh;
	int ret, sz = ND_RCVBUF;

	setsockopt(mnl_socket_get_fd(d->nl), SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	nlh = nd_msg(d, buf, NFQNL_MSG_CONFIG);
	mnl_attr_put(nlh, NFQA_CFG_CMD, sizeof(cmd), &cmd);
	ret = nd_request(d, nlh);
	if (ret)
		return ret;
	nlh = nd_msg(d, buf, NFQNL_MSG_CONFIG);
	mnl_attr_put(nlh, NFQA_CFG_PARAMS, sizeof(params), &params);
	mnl_attr_put_u32(nlh, NFQA_CFG_QUEUE_MAXLEN, htonl(ND_RING));
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_FAIL_OPEN));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_FAIL_OPEN));
	return nd_request(d, nlh);
}

/* Accepts every held packet up to and including ID (ids grow). */
static int nd_accept_upto(struct nd *d, uint32_t id)
{
	char buf[ND_MSG];
	struct nfqnl_msg_verdict_hdr vh = { .verdict = htonl(NF_ACCEPT), .id = htonl(id) };
	struct nlmsghdr *nlh = nd_msg(d, buf, NFQNL_MSG_VERDICT_BATCH);

	mnl_attr_put(nlh, NFQA_VERDICT_HDR, sizeof(vh), &vh);
	return mnl_socket_sendto(d->nl, nlh, nlh->nlmsg_len) < 0 ? -errno : 0;
}

static uint64_t nd_delay_at(const struct nd *d, uint64_t now)
{
	uint64_t t = now - d->start_ns;

	if (!d->ramp_ns || t >= d->ramp_ns)
		return d->delay_ns;
	return (uint64_t)((double)d->delay_ns * (double)t / (double)d->ramp_ns);
}

/* Accepts the packets due by NOW (all of them with ALL). */
static int nd_release(struct nd *d, uint64_t now, int all)
{
	uint32_t last = 0;
	int any = 0;

	while (d->len && (all || d->ring[d->head].due_ns <= now)) {
		last = d->ring[d->head].id;
		d->head = (d->head + 1) % ND_RING;
		d->len--;
		any = 1;
	}
	return any ? nd_accept_upto(d, last) : 0;
}

static int nd_on_attr(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);

	if (type == NFQA_PACKET_HDR &&
	    mnl_attr_validate2(a, MNL_TYPE_UNSPEC, sizeof(struct nfqnl_msg_packet_hdr)) >= 0)
		tb[type] = a;
	return MNL_CB_OK;
}

static int nd_on_packet(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[NFQA_MAX + 1] = { 0 };
	const struct nfqnl_msg_packet_hdr *ph;
	struct nd *d = data;
	uint64_t now = now_ns(), due;

	if ((nlh->nlmsg_type & 0xff) != NFQNL_MSG_PACKET)
		return MNL_CB_OK;
	mnl_attr_parse(nlh, sizeof(struct nfgenmsg), nd_on_attr, tb);
	if (!tb[NFQA_PACKET_HDR])
		return MNL_CB_OK;
	ph = mnl_attr_get_payload(tb[NFQA_PACKET_HDR]);
	if (d->len == ND_RING && nd_release(d, now, 1) < 0)
		return MNL_CB_ERROR;
	due = now + nd_delay_at(d, now);
	if (due < d->last_due_ns)
		due = d->last_due_ns; /* never reorder */
	d->last_due_ns = due;
	d->ring[(d->head + d->len) % ND_RING] = (struct nd_pkt){ ntohl(ph->packet_id), due };
	d->len++;
	d->held++;
	if (d->len > d->max_len)
		d->max_len = d->len;
	return MNL_CB_OK;
}

static int nd_benign(int err)
{
	return err == EINTR || err == EAGAIN || err == ENOBUFS || err == ENOENT;
}

static int nd_read(struct nd *d)
{
	ssize_t n = mnl_socket_recvfrom(d->nl, d->buf, sizeof(d->buf));

	/* A notification lost to an overrun (ENOBUFS) costs nothing: the
	 * next batch verdict accepts its packet with the rest.  A verdict the
	 * kernel no longer knows (ENOENT) is no reason to stop either. */
	if (n < 0)
		return nd_benign(errno) ? 0 : -errno;
	if (mnl_cb_run(d->buf, (size_t)n, 0, 0, nd_on_packet, d) < 0 && !nd_benign(errno))
		return -errno;
	return 0;
}

static int nd_run(struct nd *d, uint64_t end_ns)
{
	struct pollfd p = { .fd = mnl_socket_get_fd(d->nl), .events = POLLIN };
	int ret = 0;

	while (!nd_stop && !ret) {
		uint64_t now = now_ns(), next = end_ns;
		int ms;

		if (now >= end_ns)
			break;
		if (d->len && d->ring[d->head].due_ns < next)
			next = d->ring[d->head].due_ns;
		ms = (int)((next - now + 999999) / 1000000);
		if (poll(&p, 1, ms) > 0)
			ret = nd_read(d);
		if (!ret)
			ret = nd_release(d, now_ns(), 0);
	}
	if (!ret)
		ret = nd_release(d, now_ns(), 1);
	return ret;
}

static int usage(void)
{
	fprintf(stderr, "usage: nfqdelay [-q QUEUE] [-d DELAY_MS] [-r RAMP_MS] [-T SEC]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static struct nd d;
	unsigned long delay_ms = 50, ramp_ms = 0, sec = 60, q = 0;
	struct sigaction sa = { .sa_handler = on_term };
	int c, ret;
	char *end;

	while ((c = getopt(argc, argv, "q:d:r:T:")) != -1) {
		unsigned long *v = c == 'q'   ? &q
				   : c == 'd' ? &delay_ms
				   : c == 'r' ? &ramp_ms
					      : &sec;

		if (c == '?')
			return usage();
		errno = 0;
		*v = strtoul(optarg, &end, 10);
		if (errno || *end || !*optarg || (c == 'q' && q > 65535) || *v > 3600000)
			return usage();
	}
	if (optind != argc)
		return usage();
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	d.queue = (uint16_t)q;
	d.delay_ns = delay_ms * 1000000ull;
	d.ramp_ns = ramp_ms * 1000000ull;
	d.nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!d.nl || mnl_socket_bind(d.nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		perror("nfqdelay: netlink");
		return 1;
	}
	ret = nd_bind(&d);
	if (ret) {
		fprintf(stderr, "nfqdelay: cannot bind queue %lu: %s\n", q, strerror(-ret));
		mnl_socket_close(d.nl);
		return 1;
	}
	printf("bound\n");
	fflush(stdout);
	d.start_ns = now_ns();
	ret = nd_run(&d, d.start_ns + sec * 1000000000ull);
	if (ret)
		fprintf(stderr, "nfqdelay: %s\n", strerror(-ret));
	printf("held %lu max_queue %u delay_ms %lu\n", d.held, d.max_len, delay_ms);
	mnl_socket_close(d.nl);
	return ret ? 1 : 0;
}

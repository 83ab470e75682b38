/* kernel-helpers: vip.c and nlwatch.c, against the kernel of a private
 * network namespace (unshare(CLONE_NEWNET) in the group setup), driven and
 * cross-checked with ip(8). */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nlwatch.h"
#include "vip.h"

/* Every wait for a kernel event is bounded by this. */
#define EVENT_WAIT_MS 2000

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Output of a shell command, as an int (a count from grep -c, ...). */
static int sh_int(const char *cmd)
{
	char line[64] = "";
	FILE *f = popen(cmd, "r");
	int v = -1;

	if (!f)
		return -1;
	if (fgets(line, sizeof(line), f))
		v = atoi(line);
	pclose(f);
	return v;
}

static struct cfg_prefix prefix(const char *addr, unsigned len)
{
	struct cfg_prefix p = { 0 };

	p.family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	p.prefixlen = len;
	assert_int_equal(inet_pton(p.family, addr, &p.addr), 1);
	return p;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int group_setup(void **state)
{
	(void)state;
	/* The tests own this namespace: nothing outside sees their links. */
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return -1;
	}
	if (sh("ip link add kv0 type veth peer name kv1 && ip link set kv0 up && "
	       "ip link set kv1 up"))
		return -1;
	return 0;
}

/* ---- vip ------------------------------------------------------------------- */

static void test_vip_ipv4(void **state)
{
	struct cfg_prefix p = prefix("10.99.0.100", 24);

	(void)state;
	assert_int_equal(vip_present("kv0", &p), 0);
	assert_int_equal(vip_add("kv0", &p), 0);
	assert_int_equal(vip_present("kv0", &p), 1);
	assert_int_equal(sh("ip -4 -o addr show dev kv0 | grep -q 'inet 10.99.0.100/24 '"), 0);
	/* The address is on kv0 only. */
	assert_int_equal(vip_present("kv1", &p), 0);

	/* Adding again succeeds and changes nothing. */
	assert_int_equal(vip_add("kv0", &p), 0);
	assert_int_equal(sh_int("ip -4 -o addr show dev kv0 | grep -c 10.99.0.100"), 1);

	assert_int_equal(vip_del("kv0", &p), 0);
	assert_int_equal(vip_present("kv0", &p), 0);
	assert_int_equal(sh_int("ip -4 -o addr show dev kv0 | grep -c 10.99.0.100"), 0);
	/* Deleting an absent address is a success. */
	assert_int_equal(vip_del("kv0", &p), 0);
}

static void test_vip_ipv6_nodad(void **state)
{
	struct cfg_prefix p = prefix("fd00:99::100", 64);
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };
	int fd;

	(void)state;
	assert_int_equal(vip_present("kv0", &p), 0);
	assert_int_equal(vip_add("kv0", &p), 0);
	assert_int_equal(vip_present("kv0", &p), 1);
	assert_int_equal(sh("ip -6 -o addr show dev kv0 | grep -q 'inet6 fd00:99::100/64 '"), 0);
	/* Usable at once: not tentative, and a socket can bind it (a tentative
	 * address gives EADDRNOTAVAIL). */
	assert_int_equal(sh_int("ip -6 -o addr show dev kv0 tentative | grep -c fd00:99::100"), 0);
	sa.sin6_addr = p.addr.v6;
	fd = socket(AF_INET6, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);

	assert_int_equal(vip_add("kv0", &p), 0);
	assert_int_equal(sh_int("ip -6 -o addr show dev kv0 | grep -c fd00:99::100"), 1);
	assert_int_equal(vip_del("kv0", &p), 0);
	assert_int_equal(vip_present("kv0", &p), 0);
	assert_int_equal(sh_int("ip -6 -o addr show dev kv0 | grep -c fd00:99::100"), 0);
	assert_int_equal(vip_del("kv0", &p), 0);
}

/* The address, not the prefix length, is what the node answers ARP for. */
static void test_vip_other_prefixlen(void **state)
{
	struct cfg_prefix p = prefix("10.99.0.101", 24);
	struct cfg_prefix p6 = prefix("fd00:99::101", 64);

	(void)state;
	assert_int_equal(sh("ip addr add 10.99.0.101/32 dev kv0"), 0);
	assert_int_equal(vip_present("kv0", &p), 1);
	assert_int_equal(vip_add("kv0", &p), 0);
	assert_int_equal(sh_int("ip -4 -o addr show dev kv0 | grep -c 10.99.0.101/"), 1);
	assert_int_equal(sh("ip -4 -o addr show dev kv0 | grep -q 10.99.0.101/32"), 0);
	/* IPv4 allows the same address twice with different lengths; vip_del
	 * withdraws both. */
	assert_int_equal(sh("ip addr add 10.99.0.101/24 dev kv0"), 0);
	assert_int_equal(sh_int("ip -4 -o addr show dev kv0 | grep -c 10.99.0.101/"), 2);
	assert_int_equal(vip_del("kv0", &p), 0);
	assert_int_equal(sh_int("ip -4 -o addr show dev kv0 | grep -c 10.99.0.101/"), 0);

	assert_int_equal(sh("ip -6 addr add fd00:99::101/128 dev kv0 nodad"), 0);
	assert_int_equal(vip_present("kv0", &p6), 1);
	assert_int_equal(vip_del("kv0", &p6), 0);
	assert_int_equal(vip_present("kv0", &p6), 0);
	assert_int_equal(sh_int("ip -6 -o addr show dev kv0 | grep -c fd00:99::101"), 0);
}

static void test_vip_bad_input(void **state)
{
	struct cfg_prefix p = prefix("10.99.0.102", 24), bad;

	(void)state;
	assert_int_equal(vip_add("nosuch0", &p), -ENODEV);
	assert_int_equal(vip_del("nosuch0", &p), -ENODEV);
	assert_int_equal(vip_present("nosuch0", &p), -ENODEV);
	assert_int_equal(vip_add("a-name-far-too-long-for-linux", &p), -ENODEV);
	assert_int_equal(vip_add(NULL, &p), -EINVAL);
	assert_int_equal(vip_add("", &p), -EINVAL);
	assert_int_equal(vip_add_index(0, &p), -ENODEV);
	assert_int_equal(vip_add_index(987654, &p), -ENODEV);
	assert_int_equal(vip_present_index(987654, &p), -ENODEV);
	assert_int_equal(vip_del_index(987654, &p), -ENODEV);

	assert_int_equal(vip_add("kv0", NULL), -EINVAL);
	bad = p;
	bad.prefixlen = 33;
	assert_int_equal(vip_add("kv0", &bad), -EINVAL);
	bad = prefix("fd00::1", 64);
	bad.prefixlen = 129;
	assert_int_equal(vip_present("kv0", &bad), -EINVAL);
	bad = p;
	bad.family = AF_UNIX;
	assert_int_equal(vip_del("kv0", &bad), -EINVAL);
	assert_int_equal(sh_int("ip -4 -o addr show dev kv0 | grep -c 10.99.0.102"), 0);

	/* The kernel's refusal comes back as its errno. */
	assert_int_equal(sh("sysctl -qw net.ipv6.conf.kv1.disable_ipv6=1"), 0);
	bad = prefix("fd00:99::102", 64);
	assert_int_equal(vip_add("kv1", &bad), -EACCES);
	assert_int_equal(vip_present("kv1", &bad), 0);
	assert_int_equal(sh("sysctl -qw net.ipv6.conf.kv1.disable_ipv6=0"), 0);

	/* The index form works on a real index. */
	assert_int_equal(vip_add_index(if_nametoindex("kv0"), &p), 0);
	assert_int_equal(vip_present("kv0", &p), 1);
	assert_int_equal(vip_del_index(if_nametoindex("kv0"), &p), 0);
	assert_int_equal(vip_present_index(if_nametoindex("kv0"), &p), 0);
}

/* Builds an address message as the kernel would. */
static struct nlmsghdr *addr_msg(char *buf, uint16_t type, int family, unsigned plen,
				 unsigned char flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa;

	nlh->nlmsg_type = type;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (unsigned char)family;
	ifa->ifa_prefixlen = (unsigned char)plen;
	ifa->ifa_flags = flags;
	ifa->ifa_index = 7;
	return nlh;
}

static void test_vip_ifaddr_parse(void **state)
{
	char buf[512];
	struct cfg_prefix p, want = prefix("10.1.2.3", 16), peer = prefix("10.9.9.9", 32);
	struct cfg_prefix want6 = prefix("fd00::5", 64);
	struct nlmsghdr *nlh;
	unsigned idx = 0;
	uint32_t flags = 0;

	(void)state;
	/* IFA_LOCAL wins over IFA_ADDRESS (the peer on point-to-point). */
	nlh = addr_msg(buf, RTM_NEWADDR, AF_INET, 16, 0x80);
	mnl_attr_put(nlh, IFA_ADDRESS, 4, &peer.addr.v4);
	mnl_attr_put(nlh, IFA_LOCAL, 4, &want.addr.v4);
	assert_int_equal(vip_ifaddr_parse(nlh, &idx, &p, &flags), 0);
	assert_int_equal(idx, 7);
	assert_int_equal(p.family, AF_INET);
	assert_int_equal(p.prefixlen, 16);
	assert_memory_equal(&p.addr.v4, &want.addr.v4, 4);
	assert_int_equal(flags, 0x80);

	/* IFA_FLAGS, when present, carries the 32-bit flags. */
	nlh = addr_msg(buf, RTM_DELADDR, AF_INET6, 64, 0);
	mnl_attr_put(nlh, IFA_ADDRESS, 16, &want6.addr.v6);
	mnl_attr_put_u32(nlh, IFA_FLAGS, 0x12345);
	assert_int_equal(vip_ifaddr_parse(nlh, &idx, &p, &flags), 0);
	assert_int_equal(p.family, AF_INET6);
	assert_memory_equal(&p.addr.v6, &want6.addr.v6, 16);
	assert_int_equal(flags, 0x12345);

	/* Malformed: an IPv6-sized address in an IPv4 message. */
	nlh = addr_msg(buf, RTM_NEWADDR, AF_INET, 16, 0);
	mnl_attr_put(nlh, IFA_ADDRESS, 16, &want6.addr.v6);
	assert_int_equal(vip_ifaddr_parse(nlh, &idx, &p, NULL), -EINVAL);
	/* No address at all. */
	nlh = addr_msg(buf, RTM_NEWADDR, AF_INET, 16, 0);
	assert_int_equal(vip_ifaddr_parse(nlh, &idx, &p, NULL), -EINVAL);
	/* Prefix length beyond the family. */
	nlh = addr_msg(buf, RTM_NEWADDR, AF_INET, 33, 0);
	mnl_attr_put(nlh, IFA_ADDRESS, 4, &want.addr.v4);
	assert_int_equal(vip_ifaddr_parse(nlh, &idx, &p, NULL), -EINVAL);
	/* Another family. */
	nlh = addr_msg(buf, RTM_NEWADDR, AF_PACKET, 0, 0);
	assert_int_equal(vip_ifaddr_parse(nlh, &idx, &p, NULL), -EAFNOSUPPORT);
	/* Not an address message, and a message shorter than its header. */
	nlh = addr_msg(buf, RTM_NEWLINK, AF_INET, 16, 0);
	assert_int_equal(vip_ifaddr_parse(nlh, &idx, &p, NULL), -EINVAL);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWADDR;
	assert_int_equal(vip_ifaddr_parse(nlh, &idx, &p, NULL), -EINVAL);
	assert_int_equal(vip_ifaddr_parse(NULL, &idx, &p, NULL), -EINVAL);
}

/* ---- nlwatch --------------------------------------------------------------- */

#define MAX_EV 512

struct ev {
	bool is_link;
	struct nlw_link link;
	char name[IF_NAMESIZE];
	struct nlw_addr addr;
};

struct rec {
	struct ev ev[MAX_EV];
	int n;
	int overruns;
};

static void rec_link(void *arg, const struct nlw_link *l)
{
	struct rec *r = arg;
	struct ev *e;

	if (r->n == MAX_EV)
		return;
	e = &r->ev[r->n++];
	e->is_link = true;
	e->link = *l;
	snprintf(e->name, sizeof(e->name), "%s", l->name);
	e->link.name = NULL; /* valid only during the callback */
}

static void rec_addr(void *arg, const struct nlw_addr *a)
{
	struct rec *r = arg;

	if (r->n == MAX_EV)
		return;
	r->ev[r->n].is_link = false;
	r->ev[r->n++].addr = *a;
}

static void rec_overrun(void *arg)
{
	((struct rec *)arg)->overruns++;
}

typedef bool (*match_fn)(const struct ev *e, const void *want);

/* Processes events until one matches, for at most EVENT_WAIT_MS. */
static bool wait_event(struct nlw *w, struct rec *r, match_fn match, const void *want)
{
	long long deadline = now_ms() + EVENT_WAIT_MS;
	int seen = 0;

	for (;;) {
		for (; seen < r->n; seen++) {
			if (match(&r->ev[seen], want))
				return true;
		}
		long long left = deadline - now_ms();
		struct pollfd pfd = { .fd = nlw_fd(w), .events = POLLIN };

		if (left <= 0)
			return false;
		if (poll(&pfd, 1, (int)left) > 0)
			assert_true(nlw_process(w) >= 0);
	}
}

struct want_link {
	const char *name;
	bool up;
	bool deleted;
	unsigned flags_set; /* must all be set in the event */
};

static bool match_link(const struct ev *e, const void *arg)
{
	const struct want_link *w = arg;

	return e->is_link && !strcmp(e->name, w->name) && e->link.up == w->up &&
	       e->link.deleted == w->deleted && (e->link.flags & w->flags_set) == w->flags_set;
}

struct want_addr {
	unsigned ifindex;
	struct cfg_prefix p;
	bool added;
};

static bool match_addr(const struct ev *e, const void *arg)
{
	const struct want_addr *w = arg;

	return !e->is_link && e->addr.ifindex == w->ifindex && e->addr.added == w->added &&
	       e->addr.prefix.family == w->p.family && e->addr.prefix.prefixlen == w->p.prefixlen &&
	       !memcmp(&e->addr.prefix.addr, &w->p.addr, w->p.family == AF_INET ? 4 : 16);
}

static struct nlw *open_rec(struct rec *r)
{
	struct nlw_callbacks cb = {
		.on_link = rec_link, .on_addr = rec_addr, .on_overrun = rec_overrun, .arg = r
	};
	struct nlw *w = NULL;

	memset(r, 0, sizeof(*r));
	assert_int_equal(nlw_open(&w, &cb), 0);
	assert_non_null(w);
	assert_true(nlw_fd(w) >= 0);
	return w;
}

static void test_nlw_link(void **state)
{
	struct rec *r = calloc(1, sizeof(*r));
	struct nlw *w = open_rec(r);
	unsigned idx;

	(void)state;
	/* Nothing pending on a fresh socket: process returns at once. */
	assert_int_equal(nlw_process(w), 0);

	assert_int_equal(sh("ip link add kw0 type veth peer name kw1"), 0);
	idx = if_nametoindex("kw0");
	assert_true(wait_event(w, r, match_link, &(struct want_link){ "kw0", false, false, 0 }));

	assert_int_equal(sh("ip link set kw0 up && ip link set kw1 up"), 0);
	assert_true(wait_event(w, r, match_link,
			       &(struct want_link){ "kw0", true, false, IFF_UP | IFF_LOWER_UP }));

	/* The peer going down takes kw0's carrier: kw0 stays admin up but is
	 * reported down. */
	r->n = 0;
	assert_int_equal(sh("ip link set kw1 down"), 0);
	assert_true(
		wait_event(w, r, match_link, &(struct want_link){ "kw0", false, false, IFF_UP }));
	assert_int_equal(nlw_link_up("kw0"), 0);
	assert_int_equal(sh("ip link set kw1 up"), 0);
	assert_true(
		wait_event(w, r, match_link, &(struct want_link){ "kw0", true, false, IFF_UP }));

	assert_int_equal(nlw_link_up("kw0"), 1);
	assert_int_equal(nlw_link_up("kw1"), 1);

	r->n = 0;
	assert_int_equal(sh("ip link set kw0 down"), 0);
	assert_true(wait_event(w, r, match_link, &(struct want_link){ "kw0", false, false, 0 }));

	r->n = 0;
	assert_int_equal(sh("ip link del kw0"), 0);
	assert_true(wait_event(w, r, match_link, &(struct want_link){ "kw0", false, true, 0 }));
	for (int i = 0; i < r->n; i++) {
		if (r->ev[i].is_link && r->ev[i].link.deleted && !strcmp(r->ev[i].name, "kw0"))
			assert_int_equal(r->ev[i].link.ifindex, idx);
	}
	assert_int_equal(r->overruns, 0);
	nlw_close(w);
	free(r);
}

static void test_nlw_addr(void **state)
{
	struct rec *r = calloc(1, sizeof(*r));
	struct nlw *w = open_rec(r);
	struct want_addr want = { .ifindex = if_nametoindex("kv1") };

	(void)state;
	assert_true(want.ifindex > 0);
	assert_int_equal(sh("ip addr add 10.99.7.1/24 dev kv1"), 0);
	want.p = prefix("10.99.7.1", 24);
	want.added = true;
	assert_true(wait_event(w, r, match_addr, &want));
	assert_int_equal(sh("ip addr del 10.99.7.1/24 dev kv1"), 0);
	want.added = false;
	assert_true(wait_event(w, r, match_addr, &want));

	assert_int_equal(sh("ip -6 addr add fd00:7::1/64 dev kv1 nodad"), 0);
	want.p = prefix("fd00:7::1", 64);
	want.added = true;
	assert_true(wait_event(w, r, match_addr, &want));
	assert_int_equal(sh("ip -6 addr del fd00:7::1/64 dev kv1"), 0);
	want.added = false;
	assert_true(wait_event(w, r, match_addr, &want));

	/* The VIP helpers' own changes are seen too. */
	want.p = prefix("10.99.7.2", 32);
	want.added = true;
	assert_int_equal(vip_add("kv1", &want.p), 0);
	assert_true(wait_event(w, r, match_addr, &want));
	assert_int_equal(vip_del("kv1", &want.p), 0);
	want.added = false;
	assert_true(wait_event(w, r, match_addr, &want));
	assert_int_equal(r->overruns, 0);
	nlw_close(w);
	free(r);
}

/* A receive buffer too small for a burst: the kernel drops notifications
 * and the caller hears of it. */
static void test_nlw_overrun(void **state)
{
	struct rec *r = calloc(1, sizeof(*r));
	struct nlw *w = open_rec(r);
	struct want_addr want = { .ifindex = if_nametoindex("kv1"), .added = true };
	int small = 1, rc;
	FILE *batch;

	(void)state;
	assert_int_equal(setsockopt(nlw_fd(w), SOL_SOCKET, SO_RCVBUFFORCE, &small, sizeof(small)),
			 0);
	batch = popen("ip -batch -", "w");
	assert_non_null(batch);
	for (int i = 1; i <= 200; i++)
		fprintf(batch, "addr add 10.99.8.%d/32 dev kv1\n", i);
	rc = pclose(batch);
	assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);

	rc = nlw_process(w);
	assert_true(rc > 0);
	assert_true(r->overruns >= 1);
	/* Fewer address events than changes arrived. */
	assert_true(r->n < 200);

	/* Reading goes on after an overrun. */
	while (nlw_process(w) > 0)
		;
	want.p = prefix("10.99.8.250", 32);
	assert_int_equal(sh("ip addr add 10.99.8.250/32 dev kv1"), 0);
	assert_true(wait_event(w, r, match_addr, &want));
	assert_int_equal(sh("ip -4 addr flush dev kv1"), 0);
	nlw_close(w);
	free(r);
}

/* A unicast from another process to the watcher's port is not the kernel
 * speaking, and must not be reported. */
static void test_nlw_ignores_forged(void **state)
{
	struct rec *r = calloc(1, sizeof(*r));
	struct nlw *w = open_rec(r);
	struct sockaddr_nl self = { 0 }, to = { .nl_family = AF_NETLINK };
	socklen_t sl = sizeof(self);
	char buf[256];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	struct pollfd pfd;
	int fd;

	(void)state;
	assert_int_equal(getsockname(nlw_fd(w), (struct sockaddr *)&self, &sl), 0);
	fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	assert_true(fd >= 0);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_NEWLINK;
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_index = (int)if_nametoindex("kv0");
	mnl_attr_put_strz(nlh, IFLA_IFNAME, "kv0");
	to.nl_pid = self.nl_pid;
	assert_int_equal(sendto(fd, nlh, nlh->nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)),
			 (ssize_t)nlh->nlmsg_len);
	close(fd);
	pfd = (struct pollfd){ .fd = nlw_fd(w), .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, EVENT_WAIT_MS), 1);
	assert_int_equal(nlw_process(w), 0);
	assert_int_equal(r->n, 0);
	nlw_close(w);
	free(r);
}

static void test_nlw_bad_input(void **state)
{
	struct nlw *w = NULL;

	(void)state;
	assert_int_equal(nlw_open(NULL, NULL), -EINVAL);
	assert_int_equal(nlw_fd(NULL), -EINVAL);
	assert_int_equal(nlw_process(NULL), -EINVAL);
	assert_int_equal(nlw_link_up("nosuch0"), -ENODEV);
	assert_int_equal(nlw_link_up("a-name-far-too-long-for-linux"), -ENODEV);
	assert_int_equal(nlw_link_up(NULL), -EINVAL);
	assert_int_equal(nlw_link_up("lo"), 0); /* never brought up here */
	nlw_close(NULL);
	/* No callbacks at all: events are read and counted, nothing called. */
	assert_int_equal(nlw_open(&w, NULL), 0);
	assert_int_equal(sh("ip addr add 10.99.9.1/32 dev kv1"), 0);
	struct pollfd pfd = { .fd = nlw_fd(w), .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, EVENT_WAIT_MS), 1);
	assert_true(nlw_process(w) >= 1);
	assert_int_equal(sh("ip addr del 10.99.9.1/32 dev kv1"), 0);
	nlw_close(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vip_ipv4),
		cmocka_unit_test(test_vip_ipv6_nodad),
		cmocka_unit_test(test_vip_other_prefixlen),
		cmocka_unit_test(test_vip_bad_input),
		cmocka_unit_test(test_vip_ifaddr_parse),
		cmocka_unit_test(test_nlw_link),
		cmocka_unit_test(test_nlw_addr),
		cmocka_unit_test(test_nlw_overrun),
		cmocka_unit_test(test_nlw_ignores_forged),
		cmocka_unit_test(test_nlw_bad_input),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}

/* kernel-helpers: garp.c.  Frame builders against bytes computed by hand
 * (and checksums recomputed here a different way), then the real thing on
 * veth pairs in a private network namespace: frames captured on the peer,
 * the peer kernel learning the announced address, and probes answered by a
 * holder living in a second namespace of its own. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "garp.h"

static const uint8_t mac_a[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a };
static const uint8_t mac_b[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x0b };
static const uint8_t mac_h[6] = { 0x02, 0x00, 0x00, 0x00, 0x01, 0x02 };

/* The namespace holding the VIP for the probe tests (a child process). */
static pid_t holder = -1;
static int holder_pipe = -1;

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

/* ICMPv6 checksum, written independently of garp.c: 32-bit big-endian words
 * over a copy of the pseudo-header and message.  Returns the folded sum,
 * 0xffff when the checksum in the message is right. */
static uint16_t verify_icmp6(const uint8_t *ip6)
{
	uint8_t tmp[40 + 256] = { 0 };
	size_t plen = (size_t)ip6[4] << 8 | ip6[5], n;
	uint64_t sum = 0;

	assert_true(plen <= 256);
	memcpy(tmp, ip6 + 8, 32);
	tmp[32] = (uint8_t)(plen >> 24);
	tmp[33] = (uint8_t)(plen >> 16);
	tmp[34] = (uint8_t)(plen >> 8);
	tmp[35] = (uint8_t)plen;
	tmp[39] = 58;
	memcpy(tmp + 40, ip6 + 40, plen);
	n = (40 + plen + 3) / 4 * 4;
	for (size_t i = 0; i < n; i += 4)
		sum += (uint32_t)tmp[i] << 24 | (uint32_t)tmp[i + 1] << 16 |
		       (uint32_t)tmp[i + 2] << 8 | tmp[i + 3];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static int group_setup(void **state)
{
	(void)state;
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return -1;
	}
	/* ga0 -> ga1: announcements; gd0: a link that stays down. */
	if (sh("ip link add ga0 address 02:00:00:00:00:0a type veth peer name ga1 "
	       "address 02:00:00:00:00:0b && ip link set ga0 up && ip link set ga1 up && "
	       "ip link add gd0 type veth peer name gd1"))
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (holder > 0) {
		kill(holder, SIGKILL);
		waitpid(holder, NULL, 0);
	}
	if (holder_pipe >= 0)
		close(holder_pipe);
	return 0;
}

/* ---- frame builders ------------------------------------------------------ */

static void test_build_garp_v4(void **state)
{
	/* clang-format off */
	static const uint8_t want[42] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff,		/* eth: broadcast */
		0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x08, 0x06,	/* from mac_a, ARP */
		0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,	/* Ethernet, IPv4, request */
		0x02, 0x00, 0x00, 0x00, 0x00, 0x0a,		/* sender mac_a */
		0x0a, 0x63, 0x00, 0x64,				/* sender 10.99.0.100 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00,		/* target MAC zero */
		0x0a, 0x63, 0x00, 0x64,				/* target 10.99.0.100 */
	};
	/* clang-format on */
	struct cfg_prefix vip = prefix("10.99.0.100", 24);
	uint8_t buf[GARP_FRAME_MAX];

	(void)state;
	assert_int_equal(garp_build(mac_a, &vip, buf, sizeof(buf)), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
}

static void test_build_probe_v4(void **state)
{
	/* clang-format off */
	static const uint8_t want[42] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff,		/* eth: broadcast */
		0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x08, 0x06,	/* from mac_a, ARP */
		0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,	/* Ethernet, IPv4, request */
		0x02, 0x00, 0x00, 0x00, 0x00, 0x0a,		/* sender mac_a */
		0x00, 0x00, 0x00, 0x00,				/* sender 0.0.0.0 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00,		/* target MAC zero */
		0x0a, 0x63, 0x00, 0x64,				/* target 10.99.0.100 */
	};
	/* clang-format on */
	struct cfg_prefix vip = prefix("10.99.0.100", 24);
	uint8_t buf[GARP_FRAME_MAX];

	(void)state;
	assert_int_equal(garp_build_probe(mac_a, &vip, buf, sizeof(buf)), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
}

static void test_build_na(void **state)
{
	/* clang-format off */
	static const uint8_t want[86] = {
		0x33, 0x33, 0x00, 0x00, 0x00, 0x01,		/* eth: to 33:33:00:00:00:01 */
		0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x86, 0xdd,	/* from mac_a, IPv6 */
		0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff,	/* ip6: 32 bytes, ICMPv6, 255 */
		0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,	/* src fd00:99::100 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
		0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,	/* dst ff02::1 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
		0x88, 0x00, 0x57, 0x62, 0x20, 0x00, 0x00, 0x00,	/* NA, checksum, O flag */
		0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,	/* target fd00:99::100 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
		0x02, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a,	/* target link-layer: mac_a */
	};
	/* clang-format on */
	struct cfg_prefix vip = prefix("fd00:99::100", 64);
	uint8_t buf[GARP_FRAME_MAX];

	(void)state;
	assert_int_equal(garp_build(mac_a, &vip, buf, sizeof(buf)), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(verify_icmp6(buf + 14), 0xffff);
	/* A wrong checksum does not pass the check. */
	buf[14 + 40 + 3] ^= 1;
	assert_int_not_equal(verify_icmp6(buf + 14), 0xffff);
}

static void test_build_ns_probe(void **state)
{
	/* clang-format off */
	static const uint8_t want[78] = {
		0x33, 0x33, 0xff, 0x00, 0x01, 0x00,		/* eth: to 33:33:ff:00:01:00 */
		0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x86, 0xdd,	/* from mac_a, IPv6 */
		0x60, 0x00, 0x00, 0x00, 0x00, 0x18, 0x3a, 0xff,	/* ip6: 24 bytes, ICMPv6, 255 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,	/* src :: */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,	/* dst ff02::1:ff00:100 */
		0x00, 0x00, 0x00, 0x01, 0xff, 0x00, 0x01, 0x00,
		0x87, 0x00, 0x7b, 0x0e, 0x00, 0x00, 0x00, 0x00,	/* NS, checksum, reserved */
		0xfd, 0x00, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00,	/* target fd00:99::100 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
	};
	/* clang-format on */
	struct cfg_prefix vip = prefix("fd00:99::100", 64);
	uint8_t buf[GARP_FRAME_MAX];

	(void)state;
	assert_int_equal(garp_build_probe(mac_a, &vip, buf, sizeof(buf)), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(verify_icmp6(buf + 14), 0xffff);
}

/* The checksum for other addresses and MACs too, not only the vector above. */
static void test_build_checksums(void **state)
{
	static const char *const addrs[] = { "::1", "fe80::1", "2001:db8:ffff:ffff::ffff",
					     "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe" };
	uint8_t buf[GARP_FRAME_MAX], mac[6];

	(void)state;
	for (unsigned i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		struct cfg_prefix vip = prefix(addrs[i], 128);

		memset(mac, 0x11 * (int)(i + 1), sizeof(mac));
		assert_true(garp_build(mac, &vip, buf, sizeof(buf)) > 0);
		assert_int_equal(verify_icmp6(buf + 14), 0xffff);
		assert_memory_equal(buf + 14 + 8, &vip.addr.v6, 16);
		assert_true(garp_build_probe(mac, &vip, buf, sizeof(buf)) > 0);
		assert_int_equal(verify_icmp6(buf + 14), 0xffff);
	}
}

static void test_build_bad_input(void **state)
{
	struct cfg_prefix v4 = prefix("10.0.0.1", 32), v6 = prefix("fd00::1", 64), bad = v4;
	uint8_t buf[GARP_FRAME_MAX];

	(void)state;
	assert_int_equal(garp_build(mac_a, &v4, buf, 41), -ENOSPC);
	assert_int_equal(garp_build(mac_a, &v6, buf, 85), -ENOSPC);
	assert_int_equal(garp_build_probe(mac_a, &v6, buf, 77), -ENOSPC);
	assert_int_equal(garp_build(mac_a, &v4, buf, 42), 42);
	assert_int_equal(garp_build(NULL, &v4, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(garp_build(mac_a, NULL, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(garp_build(mac_a, &v4, NULL, sizeof(buf)), -EINVAL);
	bad.family = AF_UNIX;
	assert_int_equal(garp_build(mac_a, &bad, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(garp_build_probe(mac_a, &bad, buf, sizeof(buf)), -EINVAL);
}

/* ---- on the wire ----------------------------------------------------------- */

static void test_if_mac(void **state)
{
	uint8_t mac[6];

	(void)state;
	assert_int_equal(if_mac("ga0", mac), 0);
	assert_memory_equal(mac, mac_a, 6);
	assert_int_equal(if_mac("ga1", mac), 0);
	assert_memory_equal(mac, mac_b, 6);
	assert_int_equal(if_mac("lo", mac), -EOPNOTSUPP);
	assert_int_equal(if_mac("nosuch0", mac), -ENODEV);
	assert_int_equal(if_mac("a-name-far-too-long-for-linux", mac), -ENODEV);
	assert_int_equal(if_mac(NULL, mac), -EINVAL);
	assert_int_equal(if_mac("ga0", NULL), -EINVAL);
}

/* A socket that sees every frame arriving on IFNAME. */
static int capture(const char *ifname)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	assert_true(sll.sll_ifindex > 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sll, sizeof(sll)), 0);
	return fd;
}

/* Counts captured frames equal to WANT within WAIT_MS; other traffic (the
 * kernel's own IPv6 housekeeping) is skipped. */
static int count_frames(int fd, const uint8_t *want, size_t len, int wait_ms)
{
	long long deadline = now_ms() + wait_ms;
	uint8_t f[2048];
	int count = 0;
	ssize_t n;

	for (;;) {
		long long left = deadline - now_ms();
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		n = recv(fd, f, sizeof(f), MSG_DONTWAIT);
		if (n == (ssize_t)len && !memcmp(f, want, len))
			count++;
	}
	return count;
}

static void test_garp_send_v4(void **state)
{
	struct cfg_prefix vip = prefix("10.99.0.100", 24);
	uint8_t want[GARP_FRAME_MAX];
	int fd, len;

	(void)state;
	/* The peer, a host of the VIP's subnet, learns addresses from
	 * gratuitous ARP when told to. */
	assert_int_equal(sh("ip addr add 10.99.0.1/24 dev ga1 && "
			    "sysctl -qw net.ipv4.conf.ga1.arp_accept=1"),
			 0);
	fd = capture("ga1");
	assert_int_equal(garp_send("ga0", &vip, 3), 0);
	len = garp_build(mac_a, &vip, want, sizeof(want));
	assert_int_equal(len, 42);
	/* Fields read here, not through the builder. */
	assert_memory_equal(want, "\xff\xff\xff\xff\xff\xff", 6);
	assert_memory_equal(want + 6, mac_a, 6);
	assert_int_equal(want[12] << 8 | want[13], ETH_P_ARP);
	assert_int_equal(want[20] << 8 | want[21], 1);
	assert_memory_equal(want + 28, &vip.addr.v4, 4);
	assert_memory_equal(want + 38, &vip.addr.v4, 4);
	assert_int_equal(count_frames(fd, want, (size_t)len, 300), 3);
	close(fd);
	/* The peer kernel took it as a valid gratuitous ARP. */
	assert_int_equal(sh("ip neigh show dev ga1 10.99.0.100 | grep -q 02:00:00:00:00:0a"), 0);

	/* COUNT 0: a valid call that sends nothing. */
	fd = capture("ga1");
	assert_int_equal(garp_send("ga0", &vip, 0), 0);
	assert_int_equal(count_frames(fd, want, (size_t)len, 100), 0);
	close(fd);
}

static void test_garp_send_v6(void **state)
{
	struct cfg_prefix vip = prefix("fd00:99::100", 64);
	uint8_t want[GARP_FRAME_MAX];
	int fd, len;

	(void)state;
	/* Unsolicited NAs create neighbour entries only on a router that
	 * asks for them (RFC 9131). */
	assert_int_equal(sh("sysctl -qw net.ipv6.conf.ga1.forwarding=1 "
			    "net.ipv6.conf.ga1.accept_untracked_na=1"),
			 0);
	fd = capture("ga1");
	assert_int_equal(garp_send("ga0", &vip, 2), 0);
	len = garp_build(mac_a, &vip, want, sizeof(want));
	assert_int_equal(len, 86);
	assert_int_equal(want[12] << 8 | want[13], ETH_P_IPV6);
	assert_int_equal(want[14 + 40], 136);
	assert_int_equal(want[14 + 40 + 4] & 0x20, 0x20);
	assert_int_equal(verify_icmp6(want + 14), 0xffff);
	assert_int_equal(count_frames(fd, want, (size_t)len, 300), 2);
	close(fd);
	/* The peer kernel validated it (checksum, hop limit, options) and
	 * learnt the VIP's new home. */
	assert_int_equal(sh("ip -6 neigh show dev ga1 fd00:99::100 | grep -q 02:00:00:00:00:0a"),
			 0);
}

static void test_garp_send_bad(void **state)
{
	struct cfg_prefix vip = prefix("10.99.0.100", 24), bad = vip;

	(void)state;
	assert_int_equal(garp_send("nosuch0", &vip, 1), -ENODEV);
	assert_int_equal(garp_send(NULL, &vip, 1), -EINVAL);
	assert_int_equal(garp_send("ga0", NULL, 1), -EINVAL);
	bad.family = AF_UNIX;
	assert_int_equal(garp_send("ga0", &bad, 1), -EINVAL);
	assert_int_equal(garp_send("lo", &vip, 1), -EOPNOTSUPP);
	assert_int_equal(garp_send("gd0", &vip, 1), -ENETDOWN);
}

/* A child process in a network namespace of its own, holding
 * 10.99.0.200 and fd00:99::200 on gp1, the peer of gp0. */
static void start_holder(void)
{
	int ready[2], hold[2];
	char c;

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(hold), 0);
	holder = fork();
	assert_true(holder >= 0);
	if (holder == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(ready[0]);
		close(hold[1]);
		if (unshare(CLONE_NEWNET) < 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		/* Lives until the test closes its end (or dies). */
		while (read(hold[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	holder_pipe = hold[1];
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	assert_int_equal(sh("ip link add gp0 type veth peer name gp1 address 02:00:00:00:01:02 && "
			    "ip link set gp1 netns %d && ip link set gp0 up",
			    (int)holder),
			 0);
	assert_int_equal(sh("nsenter --net=/proc/%d/ns/net sh -c 'ip link set gp1 up && "
			    "ip addr add 10.99.0.200/24 dev gp1 && "
			    "ip -6 addr add fd00:99::200/64 dev gp1 nodad'",
			    (int)holder),
			 0);
}

static void test_arp_probe_holder(void **state)
{
	struct cfg_prefix v4 = prefix("10.99.0.200", 24), v6 = prefix("fd00:99::200", 64);
	uint8_t mac[6];
	long long t0;

	(void)state;
	start_holder();

	memset(mac, 0, sizeof(mac));
	t0 = now_ms();
	assert_int_equal(arp_probe("gp0", &v4, 1000, mac), 1);
	/* The answer ends the wait. */
	assert_true(now_ms() - t0 < 900);
	assert_memory_equal(mac, mac_h, 6);

	memset(mac, 0, sizeof(mac));
	t0 = now_ms();
	assert_int_equal(arp_probe("gp0", &v6, 1000, mac), 1);
	assert_true(now_ms() - t0 < 900);
	assert_memory_equal(mac, mac_h, 6);

	/* MAC_OUT is optional. */
	assert_int_equal(arp_probe("gp0", &v4, 1000, NULL), 1);
}

static void test_arp_probe_nobody(void **state)
{
	struct cfg_prefix v4 = prefix("10.99.0.201", 24), v6 = prefix("fd00:99::201", 64);
	uint8_t mac[6] = { 0 };
	long long t0, dt;

	(void)state;
	if (holder <= 0)
		start_holder(); /* the same link, someone on it, but not the holder */

	t0 = now_ms();
	assert_int_equal(arp_probe("gp0", &v4, 200, mac), 0);
	dt = now_ms() - t0;
	assert_true(dt >= 199 && dt < 200 + 150);

	t0 = now_ms();
	assert_int_equal(arp_probe("gp0", &v6, 200, mac), 0);
	dt = now_ms() - t0;
	assert_true(dt >= 199 && dt < 200 + 150);
}

/* ---- what counts as an answer ------------------------------------------------ */

static const uint8_t mac_s[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x5e };
static const uint8_t mac_t[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x5f };

static size_t arp_frame(uint8_t *f, uint16_t op, const uint8_t *sha, const char *spa,
			const uint8_t *tha, const char *tpa)
{
	memset(f, 0xff, 6);
	memcpy(f + 6, sha, 6);
	f[12] = 0x08, f[13] = 0x06;
	f[14] = 0, f[15] = 1, f[16] = 0x08, f[17] = 0, f[18] = 6, f[19] = 4;
	f[20] = 0, f[21] = (uint8_t)op;
	memcpy(f + 22, sha, 6);
	assert_int_equal(inet_pton(AF_INET, spa, f + 28), 1);
	memcpy(f + 32, tha, 6);
	assert_int_equal(inet_pton(AF_INET, tpa, f + 38), 1);
	return 42;
}

/* An IPv6 ND message (TYPE 135 or 136) for TARGET from SRC_MAC, with a
 * target link-layer option naming TLLA when not NULL. */
static size_t nd_frame(uint8_t *f, uint8_t type, const uint8_t *src_mac, const uint8_t *tlla,
		       const char *target, uint8_t hops, bool good_csum)
{
	uint8_t *ip6 = f + 14, *icmp = f + 54;
	size_t plen = tlla ? 32 : 24;
	uint16_t c;

	memset(f, 0, 14 + 40 + plen);
	memcpy(f, "\x33\x33\x00\x00\x00\x01", 6);
	memcpy(f + 6, src_mac, 6);
	f[12] = 0x86, f[13] = 0xdd;
	ip6[0] = 0x60;
	ip6[5] = (uint8_t)plen;
	ip6[6] = 58;
	ip6[7] = hops;
	assert_int_equal(inet_pton(AF_INET6, "fe80::5e", ip6 + 8), 1);
	assert_int_equal(inet_pton(AF_INET6, "ff02::1", ip6 + 24), 1);
	icmp[0] = type;
	icmp[4] = 0x20;
	assert_int_equal(inet_pton(AF_INET6, target, icmp + 8), 1);
	if (tlla) {
		icmp[24] = 2;
		icmp[25] = 1;
		memcpy(icmp + 26, tlla, 6);
	}
	c = (uint16_t)~verify_icmp6(ip6);
	if (!good_csum)
		c ^= 0x0100;
	icmp[2] = (uint8_t)(c >> 8);
	icmp[3] = (uint8_t)c;
	return 14 + 40 + plen;
}

/* Probes VIP on ga0 for 250 ms while a child sends FRAME from ga1 every
 * 10 ms (from before the probe listens until after it gives up). */
static int probe_while_sent(const char *vip, const uint8_t *frame, size_t len, uint8_t *mac)
{
	struct cfg_prefix p = prefix(vip, strchr(vip, ':') ? 64 : 24);
	int st, rc;
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_halen = 6 };
		int fd = socket(AF_PACKET, SOCK_RAW, 0);

		sll.sll_ifindex = (int)if_nametoindex("ga1");
		if (fd < 0)
			_exit(1);
		for (int i = 0; i < 40; i++) {
			if (sendto(fd, frame, len, 0, (struct sockaddr *)&sll, sizeof(sll)) < 0)
				_exit(1);
			usleep(10000);
		}
		_exit(0);
	}
	memset(mac, 0, 6);
	rc = arp_probe("ga0", &p, 250, mac);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return rc;
}

static void test_arp_probe_what_counts(void **state)
{
	static const uint8_t zero[6];
	uint8_t f[128], mac[6];
	size_t n;

	(void)state;
	/* The holder resolving another address: not an answer. */
	n = arp_frame(f, 1, mac_s, "10.99.0.210", zero, "10.99.0.1");
	assert_int_equal(probe_while_sent("10.99.0.210", f, n, mac), 0);
	/* The holder announcing the address. */
	n = arp_frame(f, 1, mac_s, "10.99.0.210", zero, "10.99.0.210");
	assert_int_equal(probe_while_sent("10.99.0.210", f, n, mac), 1);
	assert_memory_equal(mac, mac_s, 6);
	/* A reply, as to an RFC 5227 probe. */
	n = arp_frame(f, 2, mac_s, "10.99.0.210", mac_a, "0.0.0.0");
	assert_int_equal(probe_while_sent("10.99.0.210", f, n, mac), 1);
	assert_memory_equal(mac, mac_s, 6);
	/* A reply carrying our own MAC (a reflection), or another address. */
	n = arp_frame(f, 2, mac_a, "10.99.0.210", mac_a, "0.0.0.0");
	assert_int_equal(probe_while_sent("10.99.0.210", f, n, mac), 0);
	n = arp_frame(f, 2, mac_s, "10.99.0.211", mac_a, "0.0.0.0");
	assert_int_equal(probe_while_sent("10.99.0.210", f, n, mac), 0);

	/* IPv6: an NA names the holder in its target link-layer option... */
	n = nd_frame(f, 136, mac_s, mac_t, "fd00:99::210", 255, true);
	assert_int_equal(probe_while_sent("fd00:99::210", f, n, mac), 1);
	assert_memory_equal(mac, mac_t, 6);
	/* ...or, without one, by the frame's source. */
	n = nd_frame(f, 136, mac_s, NULL, "fd00:99::210", 255, true);
	assert_int_equal(probe_while_sent("fd00:99::210", f, n, mac), 1);
	assert_memory_equal(mac, mac_s, 6);
	/* Invalid NDs (RFC 4861 §7.1.2) and solicitations are no answer. */
	n = nd_frame(f, 136, mac_s, mac_t, "fd00:99::210", 255, false);
	assert_int_equal(probe_while_sent("fd00:99::210", f, n, mac), 0);
	n = nd_frame(f, 136, mac_s, mac_t, "fd00:99::210", 64, true);
	assert_int_equal(probe_while_sent("fd00:99::210", f, n, mac), 0);
	n = nd_frame(f, 135, mac_s, NULL, "fd00:99::210", 255, true);
	assert_int_equal(probe_while_sent("fd00:99::210", f, n, mac), 0);
	n = nd_frame(f, 136, mac_s, mac_t, "fd00:99::211", 255, true);
	assert_int_equal(probe_while_sent("fd00:99::210", f, n, mac), 0);
}

/* The kept-open context: the same answers as the one-shot calls, again and
 * again on the same sockets, and frames heard before a probe are no answer. */
static void test_garp_ctx(void **state)
{
	struct cfg_prefix held = prefix("10.99.0.200", 24), free_ip = prefix("10.99.0.201", 24);
	struct garp_ctx g, h;
	uint8_t mac[6], want[GARP_FRAME_MAX];
	long long t0, dt;
	int fd, len;

	(void)state;
	if (holder <= 0)
		start_holder();
	assert_int_equal(garp_ctx_open(&g, "gp0", &held), 0);
	for (int i = 0; i < 2; i++) {
		memset(mac, 0, sizeof(mac));
		assert_int_equal(garp_ctx_probe(&g, 1000, mac), 1);
		assert_memory_equal(mac, mac_h, 6);
	}
	assert_int_equal(garp_ctx_open(&h, "gp0", &free_ip), 0);
	for (int i = 0; i < 2; i++) {
		t0 = now_ms();
		assert_int_equal(garp_ctx_probe(&h, 200, mac), 0);
		dt = now_ms() - t0;
		assert_true(dt >= 199 && dt < 200 + 150);
	}
	/* The probe that does not wait: sent, then polled later. */
	memset(mac, 0, sizeof(mac));
	assert_int_equal(garp_ctx_probe_send(&g, true), 0);
	t0 = now_ms();
	while (garp_ctx_probe_poll(&g, mac) == 0 && now_ms() - t0 < 1000)
		usleep(1000);
	assert_memory_equal(mac, mac_h, 6);
	assert_int_equal(garp_ctx_probe_send(&h, true), 0);
	usleep(100000);
	assert_int_equal(garp_ctx_probe_poll(&h, mac), 0); /* nobody holds it */
	garp_ctx_close(&g);
	garp_ctx_close(&h);
	garp_ctx_close(&h); /* idempotent */

	/* Announcements through a context reach the link like garp_send's. */
	struct cfg_prefix vip = prefix("10.99.0.100", 24);

	assert_int_equal(garp_ctx_open(&g, "ga0", &vip), 0);
	fd = capture("ga1");
	assert_int_equal(garp_ctx_send(&g, 2), 0);
	len = garp_build(mac_a, &vip, want, sizeof(want));
	assert_int_equal(count_frames(fd, want, (size_t)len, 300), 2);
	close(fd);
	garp_ctx_close(&g);
	assert_int_equal(garp_ctx_open(&g, "no-such-if", &held), -ENODEV);
}

static void test_arp_probe_bad(void **state)
{
	struct cfg_prefix vip = prefix("10.99.0.200", 24), bad = vip;
	uint8_t mac[6];

	(void)state;
	assert_int_equal(arp_probe("nosuch0", &vip, 100, mac), -ENODEV);
	assert_int_equal(arp_probe(NULL, &vip, 100, mac), -EINVAL);
	assert_int_equal(arp_probe("ga0", NULL, 100, mac), -EINVAL);
	bad.family = AF_UNIX;
	assert_int_equal(arp_probe("ga0", &bad, 100, mac), -EINVAL);
	assert_int_equal(arp_probe("lo", &vip, 100, mac), -EOPNOTSUPP);
	assert_int_equal(arp_probe("gd0", &vip, 100, mac), -ENETDOWN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_garp_v4),
		cmocka_unit_test(test_build_probe_v4),
		cmocka_unit_test(test_build_na),
		cmocka_unit_test(test_build_ns_probe),
		cmocka_unit_test(test_build_checksums),
		cmocka_unit_test(test_build_bad_input),
		cmocka_unit_test(test_if_mac),
		cmocka_unit_test(test_garp_send_v4),
		cmocka_unit_test(test_garp_send_v6),
		cmocka_unit_test(test_garp_send_bad),
		cmocka_unit_test(test_arp_probe_holder),
		cmocka_unit_test(test_arp_probe_nobody),
		cmocka_unit_test(test_arp_probe_what_counts),
		cmocka_unit_test(test_garp_ctx),
		cmocka_unit_test(test_arp_probe_bad),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/* haforge: an attacker on the HA link who has read docs/HA-PROTOCOL.md.
 *
 *   haforge [-s SRC_IP] [-i NODE_ID] [-e EPOCH] [-n] [-a] HOST:PORT
 *
 * Connects to a node's [ha] listen (from SRC_IP when given), says HELLO as
 * NODE_ID (default "b") claiming state active and EPOCH (default 1000000),
 * with a nonce (-n, as a node with a key would) and then an AUTH of 32
 * random bytes (-a: it has no key).  Then it waits up to 2 s for the node to
 * close the connection and prints one line:
 *
 *   closed after=MS bytes=N goodbye=CODE      (CODE 0: none)
 *   open                                      (still open after 2 s)
 *
 * Exit 0 when the node closed the connection, 1 when it kept it open, 2 on
 * usage or network errors.  One connection, bounded in time. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ha/journal.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int parse(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *c = strrchr(s, ':');

	if (!c || (size_t)(c - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(c - s));
	host[c - s] = '\0';
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(c + 1));
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct jr_hello h = { .proto_major = JR_VERSION, .state = JR_STATE_ACTIVE };
	struct sockaddr_in dst = { 0 }, src = { .sin_family = AF_INET };
	const char *id = "b", *srcip = NULL;
	unsigned long long epoch = 1000000;
	bool nonce = false, auth = false;
	uint8_t buf[4096];
	struct jr_buf b;
	size_t got = 0;
	int opt, fd, goodbye = 0;
	uint64_t t0;

	while ((opt = getopt(argc, argv, "s:i:e:na")) != -1) {
		switch (opt) {
		case 's':
			srcip = optarg;
			break;
		case 'i':
			id = optarg;
			break;
		case 'e':
			epoch = strtoull(optarg, NULL, 10);
			break;
		case 'n':
			nonce = true;
			break;
		case 'a':
			auth = true;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1 || parse(argv[optind], &dst) || strlen(id) > JR_NODE_ID_MAX)
		goto usage;
	snprintf(h.node_id, sizeof(h.node_id), "%s", id);
	h.epoch = epoch;
	h.instance = 0xbadbad;
	h.has_nonce = nonce;
	if (nonce && getrandom(h.nonce, sizeof(h.nonce), 0) != (ssize_t)sizeof(h.nonce))
		return 2;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 ||
	    (srcip && (inet_pton(AF_INET, srcip, &src.sin_addr) != 1 ||
		       bind(fd, (struct sockaddr *)&src, sizeof(src)))) ||
	    connect(fd, (struct sockaddr *)&dst, sizeof(dst))) {
		perror("haforge: connect");
		return 2;
	}
	jr_buf_init(&b);
	if (jr_hello_encode(&b, &h))
		return 2;
	if (auth) {
		uint8_t mac[32];

		if (getrandom(mac, sizeof(mac), 0) != (ssize_t)sizeof(mac) ||
		    jr_frame_begin(&b, JR_T_AUTH, 0) || jr_put_bytes(&b, JR_AUTH_MAC, mac, 32) ||
		    jr_frame_end(&b))
			return 2;
	}
	if (send(fd, b.data, b.len, MSG_NOSIGNAL) != (ssize_t)b.len) {
		perror("haforge: send");
		return 2;
	}
	jr_buf_free(&b);
	t0 = now_ms();
	while (now_ms() - t0 < 2000) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(fd, buf + got, sizeof(buf) - got, 0);
		if (n <= 0) {
			/* A GOODBYE among what it sent?  Frames: type at offset 3. */
			for (size_t off = 0; off + JR_HDR_LEN <= got;) {
				size_t len =
					JR_HDR_LEN + ((size_t)buf[off + 4] << 24 |
						      (size_t)buf[off + 5] << 16 |
						      (size_t)buf[off + 6] << 8 | buf[off + 7]);

				if (buf[off + 3] == JR_T_GOODBYE && off + len <= got && len >= 24)
					goodbye = buf[off + JR_HDR_LEN + 6] << 8 |
						  buf[off + JR_HDR_LEN + 7];
				off += len;
			}
			printf("closed after=%llu bytes=%zu goodbye=%d\n",
			       (unsigned long long)(now_ms() - t0), got, goodbye);
			close(fd);
			return 0;
		}
		got += (size_t)n;
		if (got == sizeof(buf))
			got = 0;
	}
	printf("open\n");
	close(fd);
	return 1;
usage:
	fprintf(stderr, "usage: haforge [-s SRC_IP] [-i NODE_ID] [-e EPOCH] [-n] [-a] HOST:PORT\n");
	return 2;
}

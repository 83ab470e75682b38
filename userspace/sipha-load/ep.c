/* UDP endpoints of sipha-load: batched sends and receives. */
#include "sipha-load/load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

uint64_t ld_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t ld_real_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int ld_format_host(const struct sockaddr_storage *ss, char *out, size_t cap)
{
	char a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(out, cap, "[%s]:%u", a, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(out, cap, "%s:%u", a, ntohs(s4->sin_port));
	}
	return 0;
}

/* Opens a UDP socket bound to IP:PORT; without IP, to the address the
 * kernel would use towards TOWARDS (so that Via and Contact name a real
 * one), or to the loopback. */
int ld_ep_open(struct ld_ep **out, const char *ip, unsigned port,
	       const struct sockaddr_storage *towards)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	struct ld_ep *ep;
	int fd = -1, err, one = 1, buf = 4 << 20;

	*out = NULL;
	if (ip) {
		struct sockaddr_in *s4 = (void *)&ss;
		struct sockaddr_in6 *s6 = (void *)&ss;

		if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			s4->sin_port = htons((uint16_t)port);
		} else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons((uint16_t)port);
		} else {
			return -EINVAL;
		}
	} else if (towards) {
		fd = socket(towards->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		sl = towards->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
						    : sizeof(struct sockaddr_in);
		if (connect(fd, (const void *)towards, sl) || getsockname(fd, (void *)&ss, &sl)) {
			err = -errno;
			close(fd);
			return err;
		}
		close(fd);
		fd = -1;
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
	} else {
		struct sockaddr_in *s4 = (void *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s4->sin_port = htons((uint16_t)port);
	}
	sl = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	if (bind(fd, (void *)&ss, sl) || getsockname(fd, (void *)&ss, &sl)) {
		err = -errno;
		close(fd);
		return err;
	}
	ep = calloc(1, sizeof(*ep));
	if (!ep) {
		close(fd);
		return -ENOMEM;
	}
	ep->fd = fd;
	ld_format_host(&ss, ep->host, sizeof(ep->host));
	for (unsigned i = 0; i < LD_QLEN; i++) {
		ep->riov[i].iov_base = ep->rbuf[i];
		ep->riov[i].iov_len = sizeof(ep->rbuf[i]);
		ep->r[i].msg_hdr.msg_iov = &ep->riov[i];
		ep->r[i].msg_hdr.msg_iovlen = 1;
		ep->q[i].msg_hdr.msg_iov = &ep->qiov[i];
		ep->q[i].msg_hdr.msg_iovlen = 1;
		ep->q[i].msg_hdr.msg_name = &ep->qdst[i];
		ep->qiov[i].iov_base = ep->qbuf[i];
	}
	*out = ep;
	return 0;
}

void ld_ep_close(struct ld_ep *ep)
{
	if (!ep)
		return;
	if (ep->fd >= 0)
		close(ep->fd);
	free(ep);
}

char *ld_ep_next(struct load *ld, struct ld_ep *ep)
{
	if (ep->nq == LD_QLEN)
		ld_ep_flush(ld, ep);
	return ep->qbuf[ep->nq];
}

void ld_ep_commit(struct ld_ep *ep, size_t len, const struct sockaddr *dst, socklen_t dlen,
		  uint64_t tag)
{
	unsigned i = ep->nq++;

	memcpy(&ep->qdst[i], dst, dlen);
	ep->q[i].msg_hdr.msg_namelen = dlen;
	ep->qiov[i].iov_len = len;
	ep->qtag[i] = tag;
}

/* A datagram the kernel refuses is a transport error of its call; a full
 * socket buffer (EAGAIN, ENOBUFS) loses the datagram as a network would,
 * and the retransmission timers deal with it. */
void ld_ep_flush(struct load *ld, struct ld_ep *ep)
{
	unsigned done = 0;

	while (done < ep->nq) {
		int n = sendmmsg(ep->fd, ep->q + done, ep->nq - done, 0);

		if (n > 0) {
			done += (unsigned)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
			done++;
			continue;
		}
		uac_send_failed(ld, ep->qtag[done], n < 0 ? -errno : -EIO);
		done++;
	}
	ep->nq = 0;
}

/* The monotonic time the kernel received datagram I (its timestamp is
 * CLOCK_REALTIME; OFF is realtime - monotonic now), or NOW without one. */
static uint64_t rx_time(struct ld_ep *ep, unsigned i, uint64_t off, uint64_t now)
{
	struct msghdr *mh = &ep->r[i].msg_hdr;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
			struct timespec ts;
			uint64_t rt;

			memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
			rt = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
			return rt > off && rt - off < now ? rt - off : now;
		}
	return now;
}

unsigned ld_ep_drain(struct load *ld, struct ld_ep *ep)
{
	unsigned total = 0;

	for (int round = 0; round < 4; round++) {
		uint64_t now, off;
		int n;

		for (unsigned i = 0; i < LD_QLEN; i++) {
			ep->r[i].msg_hdr.msg_name = &ep->rsrc[i];
			ep->r[i].msg_hdr.msg_namelen = sizeof(ep->rsrc[i]);
			ep->r[i].msg_hdr.msg_control = ep->rctl[i];
			ep->r[i].msg_hdr.msg_controllen = sizeof(ep->rctl[i]);
			ep->r[i].msg_hdr.msg_flags = 0;
		}
		n = recvmmsg(ep->fd, ep->r, LD_QLEN, MSG_DONTWAIT, NULL);
		if (n <= 0)
			break;
		now = ld_mono_us();
		off = ld_real_us() - now;
		for (int i = 0; i < n; i++) {
			if (ep->r[i].msg_hdr.msg_flags & MSG_TRUNC) {
				ld->st.junk++;
				continue;
			}
			ld->now_us = rx_time(ep, (unsigned)i, off, now);
			ld_rx(ld, ep, NULL, ep->rbuf[i], ep->r[i].msg_len, &ep->rsrc[i]);
		}
		ld->now_us = now;
		total += (unsigned)n;
		if (n < LD_QLEN)
			break;
	}
	return total;
}

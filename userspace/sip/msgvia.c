/* The top Via of a received request, amended with where the request really
 * came from (RFC 3261 §18.2.1, RFC 3581 §4).  Every response copies the
 * request's Vias, so amending the parsed request once, where it arrives, is
 * enough for stateless answers and transactions alike. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sip/msg.h"

/* SRC's address as RFC 3261 writes a received= value (IPv6 without
 * brackets; an IPv4-mapped IPv6 source as plain IPv4) and its port. */
static int src_text(const struct sockaddr *src, char *ip, size_t n, uint16_t *port,
		    struct in6_addr *bin, int *family)
{
	if (src->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)src;

		memcpy(bin, &s->sin_addr, sizeof(s->sin_addr));
		*family = AF_INET;
		*port = ntohs(s->sin_port);
	} else if (src->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)src;

		*port = ntohs(s->sin6_port);
		if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr)) {
			memcpy(bin, &s->sin6_addr.s6_addr[12], 4);
			*family = AF_INET;
		} else {
			*bin = s->sin6_addr;
			*family = AF_INET6;
		}
	} else {
		return -EAFNOSUPPORT;
	}
	return inet_ntop(*family, bin, ip, (socklen_t)n) ? 0 : -EINVAL;
}

/* True when sent-by HOST is the literal address BIN: a domain name never
 * is (§18.2.1 adds received= for a name whatever it resolves to). */
static bool host_is(const char *host, int family, const struct in6_addr *bin)
{
	char buf[INET6_ADDRSTRLEN + 2];
	struct in6_addr a;
	size_t n = strlen(host);

	if (n >= sizeof(buf))
		return false;
	if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
	} else {
		memcpy(buf, host, n + 1);
	}
	if (inet_pton(family, buf, &a) != 1)
		return false;
	return !memcmp(&a, bin, family == AF_INET ? 4 : 16);
}

/* Sets parameter NAME of V to VALUE, replacing a value it has. */
static int via_param_set(osip_via_t *v, const char *name, const char *value)
{
	osip_generic_param_t *p = NULL;
	char *val = osip_strdup(value), *nm;

	if (!val)
		return -ENOMEM;
	if (!osip_via_param_get_byname(v, (char *)name, &p) && p) {
		osip_free(p->gvalue);
		p->gvalue = val;
		return 0;
	}
	nm = osip_strdup(name);
	if (!nm || osip_via_param_add(v, nm, val)) {
		osip_free(nm);
		osip_free(val);
		return -ENOMEM;
	}
	return 0;
}

int sipmsg_via_received(osip_message_t *req, const struct sockaddr *src)
{
	osip_generic_param_t *rport = NULL;
	char ip[INET6_ADDRSTRLEN], port_s[8];
	struct in6_addr bin;
	osip_via_t *via;
	uint16_t port;
	int family, err;

	if (!req || !src)
		return -EINVAL;
	via = osip_list_get(&req->vias, 0);
	if (!via || !via->host)
		return -ENOENT;
	err = src_text(src, ip, sizeof(ip), &port, &bin, &family);
	if (err)
		return err;
	/* An rport the client left empty asks for the source port, and for
	 * received= even when sent-by is right (RFC 3581 §4).  One that
	 * already has a value was not ours to fill. */
	if (!osip_via_param_get_byname(via, "rport", &rport) && rport &&
	    (!rport->gvalue || !*rport->gvalue)) {
		snprintf(port_s, sizeof(port_s), "%u", port);
		osip_free(rport->gvalue);
		rport->gvalue = osip_strdup(port_s);
		if (!rport->gvalue)
			return -ENOMEM;
	} else if (host_is(via->host, family, &bin)) {
		return 0;
	}
	return via_param_set(via, "received", ip);
}

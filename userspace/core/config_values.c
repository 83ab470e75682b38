/* The syntax of one configuration value, whatever key it belongs to: whole
 * numbers, names, domains, SIP URIs, and the address and prefix parsers that
 * config.h shares with the CLI.  Nothing here knows the file or its lines;
 * the callers say what was wrong and where. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include "core/config.h"
#include "core/config_int.h"

/* Whole decimal number: digits only (no sign, no space, no junk), so that
 * "5 ; c", "-1" and "0x10" are refused instead of read as something else. */
int cfg_parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long long v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v <= max)
			v = v * 10 + (unsigned)(*s - '0');
	}
	if (v > max)
		return -ERANGE;
	*out = (unsigned long)v;
	return 0;
}

/* ASCII only, whatever the locale */
static bool is_alnum(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool cfg_all_chars(const char *s, const char *extra, size_t maxlen)
{
	size_t n = 0;

	for (; *s; s++, n++) {
		if (!is_alnum(*s) && !strchr(extra, *s))
			return false;
	}
	return n >= 1 && n <= maxlen;
}

/* As the kernel's dev_valid_name(). */
bool cfg_ifname_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n >= IF_NAMESIZE || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++) {
		if (*s == '/' || *s == ':' || isspace((unsigned char)*s))
			return false;
	}
	return true;
}

bool cfg_domain_valid(const char *s)
{
	struct in6_addr a6;
	char tmp[INET6_ADDRSTRLEN];
	size_t n = strlen(s);

	if (s[0] == '[') {
		if (n < 3 || n - 2 >= sizeof(tmp) || s[n - 1] != ']')
			return false;
		memcpy(tmp, s + 1, n - 2);
		tmp[n - 2] = '\0';
		return inet_pton(AF_INET6, tmp, &a6) == 1;
	}
	return cfg_all_chars(s, ".-_", 253);
}

bool cfg_uri_valid(const char *v)
{
	const char *rest, *host, *s;

	if (!strncmp(v, "sip:", 4))
		rest = v + 4;
	else if (!strncmp(v, "sips:", 5))
		rest = v + 5;
	else
		return false;
	for (s = rest; *s; s++) {
		if (isspace((unsigned char)*s) || strchr("<>\"", *s))
			return false;
	}
	host = strchr(rest, '@');
	host = host ? host + 1 : rest;
	return is_alnum(*host) || *host == '[';
}

static int parse_port(const char *s, in_port_t *out)
{
	unsigned long v;

	if (strlen(s) > 5 || cfg_parse_ulong(s, 65535, &v) || v == 0)
		return -EINVAL;
	*out = htons((uint16_t)v);
	return 0;
}

int cfg_parse_sockaddr(const char *s, struct cfg_sockaddr *out)
{
	char host[INET6_ADDRSTRLEN];
	struct cfg_sockaddr a;
	const char *end, *port;
	size_t n;

	if (!s || !out)
		return -EINVAL;
	memset(&a, 0, sizeof(a));
	if (s[0] == '[') {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.ss;

		end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		n = (size_t)(end - s - 1);
		port = end + 2;
		if (n == 0 || n >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, n);
		host[n] = '\0';
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1 ||
		    parse_port(port, &sin6->sin6_port))
			return -EINVAL;
		sin6->sin6_family = AF_INET6;
		a.len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&a.ss;

		/* exactly one ':' : a bare IPv6 address is ambiguous with its port */
		end = strchr(s, ':');
		if (!end || strchr(end + 1, ':'))
			return -EINVAL;
		n = (size_t)(end - s);
		port = end + 1;
		if (n == 0 || n >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, n);
		host[n] = '\0';
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1 ||
		    parse_port(port, &sin->sin_port))
			return -EINVAL;
		sin->sin_family = AF_INET;
		a.len = sizeof(*sin);
	}
	*out = a;
	return 0;
}

int cfg_parse_prefix(const char *s, struct cfg_prefix *out)
{
	char host[INET6_ADDRSTRLEN];
	struct cfg_prefix pfx;
	const char *slash;
	unsigned long len;
	size_t n;

	if (!s || !out)
		return -EINVAL;
	memset(&pfx, 0, sizeof(pfx));
	slash = strchr(s, '/');
	if (!slash)
		return -EINVAL;
	n = (size_t)(slash - s);
	if (n == 0 || n >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	pfx.family = strchr(host, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(pfx.family, host, &pfx.addr) != 1)
		return -EINVAL;
	if (strlen(slash + 1) > 3 ||
	    cfg_parse_ulong(slash + 1, pfx.family == AF_INET ? 32 : 128, &len))
		return -EINVAL;
	pfx.prefixlen = (unsigned)len;
	*out = pfx;
	return 0;
}

const char *cfg_sockaddr_str(const struct cfg_sockaddr *a, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (!buf || !len)
		return buf;
	if (a && a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;

		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
	} else if (a && a->ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;

		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, len, "(none)");
	}
	return buf;
}

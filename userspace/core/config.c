/* The configuration file (DESIGN.md §4): INI through inih, made strict.
 *
 * inih is used for what it is good at (walking the file and calling us once
 * per key), but three of its habits clash with the contract, so we feed it
 * through our own reader:
 *  - it has no line numbers for the handler in Debian's build
 *    (INI_HANDLER_LINENO is 0 in the shipped ABI, so defining it here would
 *    make the library call a 4-argument handler with 5 arguments expected);
 *    the reader hands inih one line at a time and counts them, and inih calls
 *    the handler before it asks for the next line, so p->lineno is exact;
 *  - Debian's build strips inline "; comments" and joins indented lines into
 *    multi-line values; we switch both off through the runtime switches
 *    Debian's libinih exports, and, so that a changed switch can never make a
 *    value silently shorter, take the key and value from our own copy of the
 *    raw line rather than from what inih passes the handler;
 *  - it ignores text after "[section]" and never reports empty sections; the
 *    reader checks section headers itself.
 * The switches are process-wide, so cfg_load() is not thread-safe; it runs
 * once at start-up. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "core/config.h"
#include "core/log.h"

#define CFG_MAX_LINE 4095 /* characters of one line, without the newline */
#define CFG_MAX_FILE (1 << 20)
#define CFG_ID_MAX 32
#define CFG_DN_MAX 32

enum sec {
	SEC_NONE = -1,
	SEC_NODE,
	SEC_SIP,
	SEC_VIP,
	SEC_HA,
	SEC_XDP,
	SEC_CONTROL,
	SEC_CTI,
	SEC_ENGINE,
	SEC_AUTH,
	SEC_METRICS,
	SEC_DN,
	SEC_COUNT
};

static const struct {
	const char *name;
	bool required;
	size_t present; /* offset of its "present" flag, 0 when it has none */
} sections[SEC_COUNT] = {
	[SEC_NODE] = { "node", true, 0 },
	[SEC_SIP] = { "sip", true, 0 },
	[SEC_VIP] = { "vip", false, offsetof(struct sipha_config, vip.present) },
	[SEC_HA] = { "ha", false, offsetof(struct sipha_config, ha.present) },
	[SEC_XDP] = { "xdp", false, 0 },
	[SEC_CONTROL] = { "control", true, 0 },
	[SEC_CTI] = { "cti", false, offsetof(struct sipha_config, cti.present) },
	[SEC_ENGINE] = { "engine", false, 0 },
	[SEC_AUTH] = { "auth", false, offsetof(struct sipha_config, auth.present) },
	[SEC_METRICS] = { "metrics", false, offsetof(struct sipha_config, metrics.present) },
	[SEC_DN] = { "dn", false, 0 },
};

enum ktype {
	KT_ID,
	KT_ROLE,
	KT_REDUNDANCY,
	KT_XDP_MODE,
	KT_LOG_LEVEL,
	KT_INT,
	KT_UINT,
	KT_SOCKADDR,
	KT_PEER, /* a sockaddr that must name one host */
	KT_VIP,
	KT_IFNAME,
	KT_DOMAIN,
	KT_REALM,
	KT_PATH,
	KT_SOCKET_PATH,
	KT_DN_REF,
};

struct key_desc {
	enum sec sec;
	const char *name;
	enum ktype type;
	size_t off;
	unsigned long min, max; /* KT_INT and KT_UINT */
	bool required;
};

#define OFF(m) offsetof(struct sipha_config, m)

enum {
	K_NODE_ID,
	K_NODE_ROLE,
	K_NODE_REDUNDANCY,
	K_NODE_PRIORITY,
	K_NODE_STATE_DIR,
	K_NODE_LOG_LEVEL,
	K_SIP_LISTEN,
	K_SIP_DOMAIN,
	K_SIP_MIN_EXPIRES,
	K_SIP_MAX_EXPIRES,
	K_SIP_DEFAULT_EXPIRES,
	K_SIP_MAX_CONTACTS,
	K_SIP_MAX_REGISTRATIONS,
	K_SIP_NO_ANSWER,
	K_VIP_ADDRESS,
	K_VIP_INTERFACE,
	K_VIP_GARP_COUNT,
	K_HA_LISTEN,
	K_HA_PEER,
	K_HA_HEARTBEAT,
	K_HA_TIMEOUT,
	K_XDP_INTERFACE,
	K_XDP_MODE,
	K_XDP_INVITE_RATE,
	K_XDP_REGISTER_RATE,
	K_XDP_BURST,
	K_CONTROL_SOCKET,
	K_CTI_LISTEN,
	K_CTI_ROUTE_TIMEOUT,
	K_CTI_DEFAULT_ROUTE,
	K_ENGINE_WORKERS,
	K_AUTH_REALM,
	K_AUTH_USERS,
	K_METRICS_LISTEN,
	K_COUNT
};

static const struct key_desc keys[K_COUNT] = {
	[K_NODE_ID] = { SEC_NODE, "id", KT_ID, OFF(node.id), 0, 0, true },
	[K_NODE_ROLE] = { SEC_NODE, "role", KT_ROLE, OFF(node.role), 0, 0, false },
	[K_NODE_REDUNDANCY] = { SEC_NODE, "redundancy", KT_REDUNDANCY, OFF(node.redundancy), 0, 0,
				false },
	[K_NODE_PRIORITY] = { SEC_NODE, "priority", KT_INT, OFF(node.priority), 0, 65535, false },
	[K_NODE_STATE_DIR] = { SEC_NODE, "state_dir", KT_PATH, OFF(node.state_dir), 0, 0, false },
	[K_NODE_LOG_LEVEL] = { SEC_NODE, "log_level", KT_LOG_LEVEL, OFF(node.log_level), 0, 0,
			       false },
	[K_SIP_LISTEN] = { SEC_SIP, "listen", KT_SOCKADDR, OFF(sip.listen), 0, 0, true },
	[K_SIP_DOMAIN] = { SEC_SIP, "domain", KT_DOMAIN, OFF(sip.domain), 0, 0, true },
	[K_SIP_MIN_EXPIRES] = { SEC_SIP, "min_expires", KT_UINT, OFF(sip.min_expires), 1, 604800,
				false },
	[K_SIP_MAX_EXPIRES] = { SEC_SIP, "max_expires", KT_UINT, OFF(sip.max_expires), 1, 604800,
				false },
	[K_SIP_DEFAULT_EXPIRES] = { SEC_SIP, "default_expires", KT_UINT, OFF(sip.default_expires),
				    1, 604800, false },
	[K_SIP_MAX_CONTACTS] = { SEC_SIP, "max_contacts", KT_UINT, OFF(sip.max_contacts), 1, 1024,
				 false },
	[K_SIP_MAX_REGISTRATIONS] = { SEC_SIP, "max_registrations", KT_UINT,
				      OFF(sip.max_registrations), 1, 100000000, false },
	[K_SIP_NO_ANSWER] = { SEC_SIP, "no_answer_ms", KT_UINT, OFF(sip.no_answer_ms), 0, 3600000,
			      false },
	[K_VIP_ADDRESS] = { SEC_VIP, "address", KT_VIP, OFF(vip.address), 0, 0, true },
	[K_VIP_INTERFACE] = { SEC_VIP, "interface", KT_IFNAME, OFF(vip.interface), 0, 0, true },
	[K_VIP_GARP_COUNT] = { SEC_VIP, "garp_count", KT_UINT, OFF(vip.garp_count), 0, 100, false },
	[K_HA_LISTEN] = { SEC_HA, "listen", KT_SOCKADDR, OFF(ha.listen), 0, 0, true },
	[K_HA_PEER] = { SEC_HA, "peer", KT_PEER, OFF(ha.peer), 0, 0, true },
	[K_HA_HEARTBEAT] = { SEC_HA, "heartbeat_ms", KT_UINT, OFF(ha.heartbeat_ms), 1, 60000,
			     false },
	[K_HA_TIMEOUT] = { SEC_HA, "timeout_ms", KT_UINT, OFF(ha.timeout_ms), 1, 600000, false },
	/* required unless mode = off: checked after the file is read */
	[K_XDP_INTERFACE] = { SEC_XDP, "interface", KT_IFNAME, OFF(xdp.interface), 0, 0, false },
	[K_XDP_MODE] = { SEC_XDP, "mode", KT_XDP_MODE, OFF(xdp.mode), 0, 0, false },
	[K_XDP_INVITE_RATE] = { SEC_XDP, "invite_rate", KT_UINT, OFF(xdp.invite_rate), 0, 1000000,
				false },
	[K_XDP_REGISTER_RATE] = { SEC_XDP, "register_rate", KT_UINT, OFF(xdp.register_rate), 0,
				  1000000, false },
	[K_XDP_BURST] = { SEC_XDP, "burst", KT_UINT, OFF(xdp.burst), 0, 10000000, false },
	[K_CONTROL_SOCKET] = { SEC_CONTROL, "socket", KT_SOCKET_PATH, OFF(control.socket), 0, 0,
			       true },
	[K_CTI_LISTEN] = { SEC_CTI, "listen", KT_SOCKADDR, OFF(cti.listen), 0, 0, true },
	[K_CTI_ROUTE_TIMEOUT] = { SEC_CTI, "route_timeout_ms", KT_UINT, OFF(cti.route_timeout_ms),
				  1, 3600000, false },
	[K_CTI_DEFAULT_ROUTE] = { SEC_CTI, "default_route", KT_DN_REF, OFF(cti.default_route), 0, 0,
				  false },
	[K_ENGINE_WORKERS] = { SEC_ENGINE, "workers", KT_UINT, OFF(engine.workers), 1, 256, false },
	[K_AUTH_REALM] = { SEC_AUTH, "realm", KT_REALM, OFF(auth.realm), 0, 0, true },
	[K_AUTH_USERS] = { SEC_AUTH, "users", KT_PATH, OFF(auth.users), 0, 0, true },
	[K_METRICS_LISTEN] = { SEC_METRICS, "listen", KT_SOCKADDR, OFF(metrics.listen), 0, 0,
			       true },
};

/* Directory numbers seen so far, for duplicate detection: open addressing
 * over indices into cfg->dns, so a [dn] with 100k entries stays linear. */
struct dn_set {
	uint32_t *slot; /* index + 1, 0 = empty */
	size_t size; /* power of two */
};

struct parser {
	const char *buf, *path;
	size_t len, pos;
	unsigned lineno;
	struct sipha_config *cfg;
	char *err;
	size_t errlen;
	int rc;

	enum sec sec;
	bool kv_pending; /* the reader saw a key line the handler has not had yet */
	char *name, *value; /* into raw */
	unsigned sec_line[SEC_COUNT];
	unsigned key_line[K_COUNT];
	unsigned *dn_line; /* line of each cfg->dns[i] */
	size_t dn_cap;
	struct dn_set dn_set;
	char raw[CFG_MAX_LINE + 1];
};

static void __attribute__((format(printf, 5, 6)))
fail(struct parser *p, unsigned line, int sec, const char *name, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->rc)
		return;
	p->rc = -EINVAL;
	if (!p->err || !p->errlen)
		return;
	/* KEY is "[section] key", "[section]", or NAME as given when there is
	 * no known section to put in front of it. */
	if (sec >= 0 && name)
		n = snprintf(p->err, p->errlen, "%s:%u: [%s] %s: ", p->path, line,
			     sections[sec].name, name);
	else if (sec >= 0)
		n = snprintf(p->err, p->errlen, "%s:%u: [%s]: ", p->path, line, sections[sec].name);
	else
		n = snprintf(p->err, p->errlen, "%s:%u: %s: ", p->path, line,
			     name ? name : "(no section)");
	if (n < 0 || (size_t)n >= p->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static void fail_errno(struct parser *p, int err)
{
	if (p->rc)
		return;
	p->rc = err;
	if (p->err && p->errlen)
		snprintf(p->err, p->errlen, "%s: %s", p->path, strerror(-err));
}

static char *lskip(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

static void rstrip(char *s)
{
	size_t n = strlen(s);

	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
}

/* --- values ------------------------------------------------------------------- */

/* Whole decimal number: digits only (no sign, no space, no junk), so that
 * "5 ; c", "-1" and "0x10" are refused instead of read as something else. */
static int parse_ulong(const char *s, unsigned long max, unsigned long *out)
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

static bool all_chars(const char *s, const char *extra, size_t maxlen)
{
	size_t n = 0;

	for (; *s; s++, n++) {
		if (!is_alnum(*s) && !strchr(extra, *s))
			return false;
	}
	return n >= 1 && n <= maxlen;
}

/* As the kernel's dev_valid_name(). */
static bool ifname_valid(const char *s)
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

static bool domain_valid(const char *s)
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
	return all_chars(s, ".-_", 253);
}

static bool uri_valid(const char *v)
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

static int enum_parse(const char *v, const char *const *names, size_t n, unsigned *out)
{
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(v, names[i])) {
			*out = (unsigned)i;
			return 0;
		}
	}
	return -EINVAL;
}

static const char *const role_names[] = { "primary", "backup" };
static const char *const red_names[] = { "hot", "warm" };
/* indexed by enum cfg_xdp_mode */
static const char *const xdp_mode_names[] = { "off", "native", "generic" };

static bool inline_comment(const char *v)
{
	for (size_t i = 1; v[i]; i++) {
		if ((v[i] == '#' || v[i] == ';') && isspace((unsigned char)v[i - 1]))
			return true;
	}
	return false;
}

static bool addr_is_any(const struct cfg_sockaddr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
}

static int set_string(struct parser *p, char **dst, const char *v)
{
	*dst = strdup(v);
	if (!*dst)
		fail_errno(p, -ENOMEM);
	return p->rc;
}

static void set_key(struct parser *p, const struct key_desc *k)
{
	void *dst = (char *)p->cfg + k->off;
	const char *v = p->value;
	unsigned long n;
	unsigned e;
	enum log_level lvl;
	int err;

#define BAD(...) fail(p, p->lineno, p->sec, p->name, __VA_ARGS__)
	switch (k->type) {
	case KT_ID:
		if (!all_chars(v, "_-", CFG_ID_MAX))
			BAD("invalid node id '%s' (expected 1..%d of A-Z a-z 0-9 _ -)", v,
			    CFG_ID_MAX);
		else
			set_string(p, dst, v);
		break;
	case KT_ROLE:
		if (enum_parse(v, role_names, 2, &e))
			BAD("invalid value '%s' (expected primary|backup)", v);
		else
			*(enum cfg_role *)dst = e ? CFG_ROLE_BACKUP : CFG_ROLE_PRIMARY;
		break;
	case KT_REDUNDANCY:
		if (enum_parse(v, red_names, 2, &e))
			BAD("invalid value '%s' (expected hot|warm)", v);
		else
			*(enum cfg_redundancy *)dst = e ? CFG_RED_WARM : CFG_RED_HOT;
		break;
	case KT_XDP_MODE:
		if (enum_parse(v, xdp_mode_names, 3, &e))
			BAD("invalid value '%s' (expected native|generic|off)", v);
		else
			*(enum cfg_xdp_mode *)dst = (enum cfg_xdp_mode)e;
		break;
	case KT_LOG_LEVEL:
		if (log_level_parse(v, &lvl))
			BAD("invalid value '%s' (expected err|warn|info|debug)", v);
		else
			set_string(p, dst, v);
		break;
	case KT_INT:
	case KT_UINT:
		err = parse_ulong(v, k->max, &n);
		if (!err && n < k->min)
			err = -ERANGE;
		if (err == -EINVAL)
			BAD("invalid number '%s' (expected a whole number %lu..%lu)", v, k->min,
			    k->max);
		else if (err)
			BAD("%s out of range (%lu..%lu)", v, k->min, k->max);
		else if (k->type == KT_INT)
			*(int *)dst = (int)n;
		else
			*(unsigned *)dst = (unsigned)n;
		break;
	case KT_SOCKADDR:
	case KT_PEER:
		if (cfg_parse_sockaddr(v, dst))
			BAD("invalid address '%s' (expected IP:PORT)", v);
		else if (k->type == KT_PEER && addr_is_any(dst))
			BAD("'%s' is a wildcard address (expected the peer's IP:PORT)", v);
		break;
	case KT_VIP: {
		struct cfg_prefix *pfx = dst;

		if (cfg_parse_prefix(v, pfx))
			BAD("invalid prefix '%s' (expected IP/LEN)", v);
		else if (pfx->prefixlen == 0 ||
			 (pfx->family == AF_INET && (pfx->addr.v4.s_addr == htonl(INADDR_ANY) ||
						     IN_MULTICAST(ntohl(pfx->addr.v4.s_addr)))) ||
			 (pfx->family == AF_INET6 && (IN6_IS_ADDR_UNSPECIFIED(&pfx->addr.v6) ||
						      IN6_IS_ADDR_MULTICAST(&pfx->addr.v6))))
			BAD("'%s' cannot be a VIP (expected a unicast address, prefix length >= 1)",
			    v);
		break;
	}
	case KT_IFNAME:
		if (!ifname_valid(v))
			BAD("invalid interface name '%s' (1..%d characters, no '/', ':' or space)",
			    v, IF_NAMESIZE - 1);
		else
			memcpy(dst, v, strlen(v) + 1);
		break;
	case KT_DOMAIN:
		if (!domain_valid(v))
			BAD("invalid domain '%s' (expected a host name or IP address)", v);
		else
			set_string(p, dst, v);
		break;
	case KT_REALM:
		if (strlen(v) > 128 || strpbrk(v, "\"\\"))
			BAD("invalid realm '%s' (at most 128 characters, no '\"' or '\\')", v);
		else
			set_string(p, dst, v);
		break;
	case KT_SOCKET_PATH:
		if (strlen(v) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			BAD("path too long (at most %zu characters)",
			    sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		else
			set_string(p, dst, v);
		break;
	case KT_PATH:
	case KT_DN_REF: /* checked against [dn] once the whole file is read */
		set_string(p, dst, v);
		break;
	}
#undef BAD
}

/* --- [dn] ------------------------------------------------------------------------ */

static uint32_t dn_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Index of DN in cfg->dns, or -1; *SLOT is where it would go. */
static long dn_set_find(const struct parser *p, const char *dn, size_t *slot)
{
	const struct dn_set *set = &p->dn_set;
	size_t i = dn_hash(dn) & (set->size - 1);

	while (set->slot[i]) {
		if (!strcmp(p->cfg->dns[set->slot[i] - 1].dn, dn))
			return (long)set->slot[i] - 1;
		i = (i + 1) & (set->size - 1);
	}
	*slot = i;
	return -1;
}

static int dn_set_grow(struct parser *p)
{
	struct dn_set *set = &p->dn_set;
	size_t size = set->size ? set->size * 2 : 64, i, j;
	uint32_t *slot = calloc(size, sizeof(*slot));

	if (!slot)
		return -ENOMEM;
	for (i = 0; i < set->size; i++) {
		if (!set->slot[i])
			continue;
		j = dn_hash(p->cfg->dns[set->slot[i] - 1].dn) & (size - 1);
		while (slot[j])
			j = (j + 1) & (size - 1);
		slot[j] = set->slot[i];
	}
	free(set->slot);
	set->slot = slot;
	set->size = size;
	return 0;
}

static void dn_entry(struct parser *p)
{
	struct sipha_config *cfg = p->cfg;
	const char *v = p->value;
	struct cfg_dn d = { 0 };
	size_t slot;
	long dup;

	if (!all_chars(p->name, "_.+-", CFG_DN_MAX)) {
		fail(p, p->lineno, p->sec, p->name,
		     "invalid directory number (expected 1..%d of A-Z a-z 0-9 _ . + -)",
		     CFG_DN_MAX);
		return;
	}
	if ((cfg->n_dns + 1) * 2 > p->dn_set.size && dn_set_grow(p))
		goto nomem;
	dup = dn_set_find(p, p->name, &slot);
	if (dup >= 0) {
		fail(p, p->lineno, p->sec, p->name, "duplicate key (first at line %u)",
		     p->dn_line[dup]);
		return;
	}
	if (!strcmp(v, "extension")) {
		d.kind = CFG_DN_EXTENSION;
	} else if (!strcmp(v, "routing-point")) {
		d.kind = CFG_DN_ROUTING_POINT;
	} else if (uri_valid(v)) {
		d.kind = CFG_DN_ROUTE;
	} else {
		fail(p, p->lineno, p->sec, p->name,
		     "invalid value '%s' (expected extension|routing-point|sip:URI|sips:URI)", v);
		return;
	}
	if (cfg->n_dns == p->dn_cap) {
		size_t cap = p->dn_cap ? p->dn_cap * 2 : 16;
		struct cfg_dn *dns = reallocarray(cfg->dns, cap, sizeof(*dns));
		unsigned *lines;

		if (!dns)
			goto nomem;
		cfg->dns = dns;
		lines = reallocarray(p->dn_line, cap, sizeof(*lines));
		if (!lines)
			goto nomem;
		p->dn_line = lines;
		p->dn_cap = cap;
	}
	d.dn = strdup(p->name);
	if (d.kind == CFG_DN_ROUTE)
		d.uri = strdup(v);
	if (!d.dn || (d.kind == CFG_DN_ROUTE && !d.uri)) {
		free(d.dn);
		free(d.uri);
		goto nomem;
	}
	p->dn_line[cfg->n_dns] = p->lineno;
	cfg->dns[cfg->n_dns++] = d;
	p->dn_set.slot[slot] = (uint32_t)cfg->n_dns;
	return;
nomem:
	fail_errno(p, -ENOMEM);
}

/* --- the line reader and the inih handler ---------------------------------------- */

static const struct key_desc *key_find(enum sec sec, const char *name)
{
	for (size_t i = 0; i < K_COUNT; i++) {
		if (keys[i].sec == sec && !strcmp(keys[i].name, name))
			return &keys[i];
	}
	return NULL;
}

static void section_header(struct parser *p, char *s)
{
	char *end = strchr(s, ']');
	int i;

	if (!end) {
		fail(p, p->lineno, SEC_NONE, s, "missing ']'");
		return;
	}
	if (end[1]) {
		end[1] = '\0';
		fail(p, p->lineno, SEC_NONE, s,
		     "text after ']' (comments must be on a line of their own)");
		return;
	}
	*end = '\0';
	for (i = 0; i < SEC_COUNT; i++) {
		if (!strcmp(s + 1, sections[i].name))
			break;
	}
	*end = ']';
	if (i == SEC_COUNT) {
		fail(p, p->lineno, SEC_NONE, s, "unknown section");
		return;
	}
	if (p->sec_line[i]) {
		fail(p, p->lineno, i, NULL, "duplicate section (first at line %u)", p->sec_line[i]);
		return;
	}
	p->sec_line[i] = p->lineno;
	p->sec = i;
	if (sections[i].present)
		*(bool *)((char *)p->cfg + sections[i].present) = true;
}

/* Splits the raw line the way the contract reads it; inih then gets the same
 * text and only has to agree that it is a key line. */
static void classify(struct parser *p)
{
	char *s = lskip(p->raw), *sep;
	char sepc;

	rstrip(s);
	if (!*s || *s == '#' || *s == ';')
		return;
	if (*s == '[') {
		section_header(p, s);
		return;
	}
	sep = strpbrk(s, "=:");
	if (!sep) {
		fail(p, p->lineno, p->sec, NULL,
		     "syntax error (expected 'key = value', '[section]' or a comment)");
		return;
	}
	sepc = *sep;
	*sep = '\0';
	rstrip(s);
	if (!*s) {
		fail(p, p->lineno, p->sec, NULL, "syntax error (no key before '%c')", sepc);
		return;
	}
	if (p->sec == SEC_NONE) {
		fail(p, p->lineno, SEC_NONE, s, "key outside any section");
		return;
	}
	p->name = s;
	p->value = lskip(sep + 1);
	p->kv_pending = true;
}

static char *ini_read(char *str, int num, void *stream)
{
	struct parser *p = stream;
	const char *s, *nl;
	size_t len, max;

	if (p->rc)
		return NULL;
	if (p->kv_pending) {
		/* inih refused a line we took for a key: never expected */
		fail(p, p->lineno, p->sec, NULL, "syntax error");
		return NULL;
	}
	if (p->pos >= p->len)
		return NULL;
	s = p->buf + p->pos;
	nl = memchr(s, '\n', p->len - p->pos);
	len = nl ? (size_t)(nl - s) : p->len - p->pos;
	p->pos += len + (nl ? 1 : 0);
	p->lineno++;
	if (len && s[len - 1] == '\r')
		len--;
	if (p->lineno == 1 && len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3)) {
		s += 3;
		len -= 3;
	}
	/* room for the newline and the NUL, as fgets() would leave them */
	max = num > 2 ? (size_t)num - 2 : 0;
	if (max > CFG_MAX_LINE)
		max = CFG_MAX_LINE;
	if (len > max) {
		fail(p, p->lineno, p->sec, NULL, "line too long (at most %zu characters)", max);
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			fail(p, p->lineno, p->sec, NULL, "control character 0x%02x in line", c);
			return NULL;
		}
	}
	memcpy(p->raw, s, len);
	p->raw[len] = '\0';
	memcpy(str, s, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	classify(p);
	return p->rc ? NULL : str;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;
	const struct key_desc *k = NULL;

	(void)section;
	(void)name;
	(void)value;
	if (p->rc)
		return 0;
	if (!p->kv_pending) {
		fail(p, p->lineno, p->sec, NULL, "syntax error");
		return 0;
	}
	p->kv_pending = false;
	if (p->sec != SEC_DN) {
		k = key_find(p->sec, p->name);
		if (!k) {
			fail(p, p->lineno, p->sec, p->name, "unknown key");
			return 0;
		}
		if (p->key_line[k - keys]) {
			fail(p, p->lineno, p->sec, p->name, "duplicate key (first at line %u)",
			     p->key_line[k - keys]);
			return 0;
		}
		p->key_line[k - keys] = p->lineno;
	}
	if (!*p->value)
		fail(p, p->lineno, p->sec, p->name, "missing value");
	else if (inline_comment(p->value))
		fail(p, p->lineno, p->sec, p->name,
		     "inline comment in '%s' (comments must be on a line of their own)", p->value);
	else if (p->sec == SEC_DN)
		dn_entry(p);
	else
		set_key(p, k);
	return p->rc == 0;
}

/* --- after the last line ----------------------------------------------------------- */

static bool key_required(const struct parser *p, int k)
{
	if (k == K_XDP_INTERFACE)
		return p->cfg->xdp.mode != CFG_XDP_OFF;
	return keys[k].required;
}

static void check_required(struct parser *p)
{
	bool done[SEC_COUNT] = { false };
	int s, k;

	for (s = 0; s < SEC_COUNT; s++) {
		if (sections[s].required && !p->sec_line[s]) {
			fail(p, 0, s, NULL, "section missing");
			return;
		}
	}
	/* sections in file order, so the first error reported is the first in the file */
	for (;;) {
		int first = -1;

		for (s = 0; s < SEC_COUNT; s++) {
			if (p->sec_line[s] && !done[s] &&
			    (first < 0 || p->sec_line[s] < p->sec_line[first]))
				first = s;
		}
		if (first < 0)
			return;
		done[first] = true;
		for (k = 0; k < K_COUNT; k++) {
			if (keys[k].sec != first || !key_required(p, k) || p->key_line[k])
				continue;
			if (k == K_XDP_INTERFACE)
				fail(p, p->sec_line[first], first, keys[k].name,
				     "required key missing (mode = %s)",
				     xdp_mode_names[p->cfg->xdp.mode]);
			else
				fail(p, p->sec_line[first], first, keys[k].name,
				     "required key missing");
			return;
		}
	}
}

/* LO must be below HI (or at most HI when !strict).  Reported at HI when the
 * file sets it, else at LO: the defaults alone are always consistent. */
static void check_order(struct parser *p, int lo, int hi, bool strict)
{
	unsigned a = *(unsigned *)((char *)p->cfg + keys[lo].off);
	unsigned b = *(unsigned *)((char *)p->cfg + keys[hi].off);
	const char *rel;

	if (strict ? a < b : a <= b)
		return;
	if (p->key_line[hi]) {
		rel = strict ? "greater than" : "at least";
		fail(p, p->key_line[hi], keys[hi].sec, keys[hi].name, "must be %s %s (%u)", rel,
		     keys[lo].name, a);
	} else {
		rel = strict ? "less than" : "at most";
		fail(p, p->key_line[lo], keys[lo].sec, keys[lo].name, "must be %s %s (%u)", rel,
		     keys[hi].name, b);
	}
}

static void check_cross(struct parser *p)
{
	struct sipha_config *cfg = p->cfg;

	check_order(p, K_HA_HEARTBEAT, K_HA_TIMEOUT, true);
	check_order(p, K_SIP_MIN_EXPIRES, K_SIP_MAX_EXPIRES, false);
	check_order(p, K_SIP_MIN_EXPIRES, K_SIP_DEFAULT_EXPIRES, false);
	check_order(p, K_SIP_DEFAULT_EXPIRES, K_SIP_MAX_EXPIRES, false);
	if (cfg->ha.present && p->key_line[K_HA_PEER] &&
	    cfg->ha.peer.ss.ss_family != cfg->ha.listen.ss.ss_family)
		fail(p, p->key_line[K_HA_PEER], SEC_HA, "peer",
		     "address family differs from [ha] listen");
	if (p->key_line[K_XDP_BURST] && !cfg->xdp.burst &&
	    (cfg->xdp.invite_rate || cfg->xdp.register_rate))
		fail(p, p->key_line[K_XDP_BURST], SEC_XDP, "burst",
		     "must be at least 1 when invite_rate or register_rate is set");
	if (cfg->cti.default_route && !cfg_dn_find(cfg, cfg->cti.default_route))
		fail(p, p->key_line[K_CTI_DEFAULT_ROUTE], SEC_CTI, "default_route",
		     "unknown directory number '%s' (not in [dn])", cfg->cti.default_route);
}

static void apply_late_defaults(struct parser *p)
{
	struct sipha_config *cfg = p->cfg;
	long ncpu;

	if (p->sec_line[SEC_XDP] && !p->key_line[K_XDP_MODE])
		cfg->xdp.mode = CFG_XDP_NATIVE;
	if (!p->key_line[K_XDP_BURST])
		cfg->xdp.burst = 2 * (cfg->xdp.invite_rate > cfg->xdp.register_rate
					      ? cfg->xdp.invite_rate
					      : cfg->xdp.register_rate);
	if (!p->key_line[K_ENGINE_WORKERS]) {
		ncpu = sysconf(_SC_NPROCESSORS_ONLN);
		cfg->engine.workers = ncpu < 1 ? 1 : ncpu > 256 ? 256 : (unsigned)ncpu;
	}
}

static void apply_string_defaults(struct parser *p)
{
	struct sipha_config *cfg = p->cfg;

	if (!cfg->node.log_level)
		set_string(p, &cfg->node.log_level, "info");
	if (!cfg->node.state_dir && !p->rc &&
	    asprintf(&cfg->node.state_dir, "/var/lib/sipha/%s", cfg->node.id) < 0) {
		cfg->node.state_dir = NULL;
		fail_errno(p, -ENOMEM);
	}
}

static void set_defaults(struct sipha_config *cfg)
{
	cfg->node.role = CFG_ROLE_PRIMARY;
	cfg->node.redundancy = CFG_RED_HOT;
	cfg->node.priority = 100;
	cfg->sip.min_expires = 60;
	cfg->sip.max_expires = 3600;
	cfg->sip.default_expires = 3600;
	cfg->sip.max_contacts = 16;
	cfg->sip.max_registrations = 1000000;
	cfg->sip.no_answer_ms = 60000;
	cfg->vip.garp_count = 3;
	cfg->ha.heartbeat_ms = 50;
	cfg->ha.timeout_ms = 200;
	cfg->xdp.mode = CFG_XDP_OFF;
	cfg->cti.route_timeout_ms = 30000;
}

/* The runtime switches of Debian's libinih that decide how a line is read. */
struct ini_switches {
	bool inline_comments, multiline, no_value, use_stack, realloc;
	char *comment_prefixes;
	int max_line;
};

static void ini_switches_swap(struct ini_switches *s)
{
	struct ini_switches old = {
		ini_allow_inline_comments,
		ini_allow_multiline,
		ini_allow_no_value,
		ini_use_stack,
		ini_allow_realloc,
		ini_start_comment_prefixes,
		ini_max_line,
	};

	ini_allow_inline_comments = s->inline_comments;
	ini_allow_multiline = s->multiline;
	ini_allow_no_value = s->no_value;
	ini_use_stack = s->use_stack;
	ini_allow_realloc = s->realloc;
	ini_start_comment_prefixes = s->comment_prefixes;
	ini_max_line = s->max_line;
	*s = old;
}

static int parse(const char *buf, size_t len, const char *path, struct sipha_config *cfg, char *err,
		 size_t errlen)
{
	static char comment_prefixes[] = "#;";
	/* The contract's syntax.  The line buffer lives on the stack, sized by
	 * max_line (a VLA in Debian's build), which holds our longest line with
	 * its newline and NUL; the heap variant would re-read "partial" lines. */
	struct ini_switches sw = {
		.inline_comments = false,
		.multiline = false,
		.no_value = false,
		.use_stack = true,
		.realloc = false,
		.comment_prefixes = comment_prefixes,
		.max_line = CFG_MAX_LINE + 2,
	};
	struct parser *p;
	int rc;

	p = calloc(1, sizeof(*p));
	if (!p) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
		return -ENOMEM;
	}
	*p = (struct parser){ .buf = buf,
			      .len = len,
			      .path = path,
			      .cfg = cfg,
			      .err = err,
			      .errlen = errlen,
			      .sec = SEC_NONE };
	set_defaults(cfg);
	cfg->path = strdup(path);
	if (!cfg->path) {
		fail_errno(p, -ENOMEM);
		goto out;
	}

	ini_switches_swap(&sw);
	rc = ini_parse_stream(ini_read, p, on_key, p);
	ini_switches_swap(&sw);

	if (rc == -2)
		fail_errno(p, -ENOMEM);
	else if (rc && !p->rc)
		fail(p, rc > 0 ? (unsigned)rc : p->lineno, p->sec, NULL, "syntax error");
	else if (p->kv_pending && !p->rc)
		fail(p, p->lineno, p->sec, NULL, "syntax error");
	if (p->rc)
		goto out;
	apply_late_defaults(p); /* first: whether [xdp] needs an interface depends on its mode */
	check_required(p);
	if (p->rc)
		goto out;
	check_cross(p);
	if (!p->rc)
		apply_string_defaults(p);
out:
	rc = p->rc;
	free(p->dn_set.slot);
	free(p->dn_line);
	free(p);
	if (rc)
		cfg_free(cfg);
	return rc;
}

/* --- public ------------------------------------------------------------------------- */

int cfg_load_string(const char *text, const char *path, struct sipha_config *cfg, char *err,
		    size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	if (err && errlen)
		err[0] = '\0';
	if (!path)
		path = "(string)";
	if (!text) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(EINVAL));
		return -EINVAL;
	}
	return parse(text, strlen(text), path, cfg, err, errlen);
}

int cfg_load(const char *path, struct sipha_config *cfg, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL, *nbuf;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd, rc = 0;

	memset(cfg, 0, sizeof(*cfg));
	if (err && errlen)
		err[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (fstat(fd, &st)) {
		rc = -errno;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
		goto out;
	}
	if (S_ISREG(st.st_mode) && st.st_size > CFG_MAX_FILE) {
		rc = -EFBIG;
		goto out;
	}
	/* Read to EOF rather than trusting st_size: the file may be a pipe or
	 * change under us; a bound keeps a runaway source from eating memory. */
	for (;;) {
		if (len == cap) {
			if (cap > CFG_MAX_FILE) {
				rc = -EFBIG;
				goto out;
			}
			cap = cap ? cap * 2 : 4096;
			nbuf = realloc(buf, cap);
			if (!nbuf) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nbuf;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > CFG_MAX_FILE) {
		rc = -EFBIG;
		goto out;
	}
	close(fd);
	fd = -1;
	rc = parse(buf, len, path, cfg, err, errlen);
	free(buf);
	return rc;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
	return rc;
}

void cfg_free(struct sipha_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->node.id);
	free(cfg->node.state_dir);
	free(cfg->node.log_level);
	free(cfg->sip.domain);
	free(cfg->control.socket);
	free(cfg->cti.default_route);
	free(cfg->auth.realm);
	free(cfg->auth.users);
	for (size_t i = 0; i < cfg->n_dns; i++) {
		free(cfg->dns[i].dn);
		free(cfg->dns[i].uri);
	}
	free(cfg->dns);
	memset(cfg, 0, sizeof(*cfg));
}

/* Linear: [dn] is read once at start-up and the call path keeps its own
 * index (server/dn.c); this is for start-up checks and the CLI. */
const struct cfg_dn *cfg_dn_find(const struct sipha_config *cfg, const char *dn)
{
	if (!cfg || !dn)
		return NULL;
	for (size_t i = 0; i < cfg->n_dns; i++) {
		if (!strcmp(cfg->dns[i].dn, dn))
			return &cfg->dns[i];
	}
	return NULL;
}

static int parse_port(const char *s, in_port_t *out)
{
	unsigned long v;

	if (strlen(s) > 5 || parse_ulong(s, 65535, &v) || v == 0)
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
	if (strlen(slash + 1) > 3 || parse_ulong(slash + 1, pfx.family == AF_INET ? 32 : 128, &len))
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

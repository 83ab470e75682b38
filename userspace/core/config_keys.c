/* The schema of the configuration file (docs/ARCHITECTURE.md §5): which sections and
 * keys exist, each key's type, range and default, and the checks that can
 * only run once the whole file is read (required keys, keys that must agree).
 * Adding a key is a line in keys[], a field in struct sipha_config and, for a
 * new kind of value, a case in cfg_set_key(). */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "core/config.h"
#include "core/config_int.h"
#include "core/log.h"

#define CFG_ID_MAX 32

const struct sec_desc cfg_sections[SEC_COUNT] = {
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
	KT_PREFIX_LIST, /* IP or IP/LEN, separated by commas or spaces */
	KT_ALGORITHMS, /* digest algorithms offered, in order: sha256, md5 */
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
	[K_SIP_MAX_TRANSACTIONS] = { SEC_SIP, "max_transactions", KT_UINT,
				     OFF(sip.max_transactions), 1024, 16777216, false },
	[K_SIP_TCP_MAX_PER_SOURCE] = { SEC_SIP, "tcp_max_per_source", KT_UINT,
				       OFF(sip.tcp_max_per_source), 1, 65536, false },
	[K_SIP_TCP_SILENT_MS] = { SEC_SIP, "tcp_silent_ms", KT_UINT, OFF(sip.tcp_silent_ms), 100,
				  3600000, false },
	[K_SIP_TCP_IDLE_MS] = { SEC_SIP, "tcp_idle_ms", KT_UINT, OFF(sip.tcp_idle_ms), 0, 86400000,
				false },
	[K_SIP_MAX_CALLS] = { SEC_SIP, "max_calls", KT_UINT, OFF(sip.max_calls), 1, 100000000,
			      false },
	[K_VIP_ADDRESS] = { SEC_VIP, "address", KT_VIP, OFF(vip.address), 0, 0, true },
	[K_VIP_INTERFACE] = { SEC_VIP, "interface", KT_IFNAME, OFF(vip.interface), 0, 0, true },
	[K_VIP_GARP_COUNT] = { SEC_VIP, "garp_count", KT_UINT, OFF(vip.garp_count), 0, 100, false },
	[K_HA_LISTEN] = { SEC_HA, "listen", KT_SOCKADDR, OFF(ha.listen), 0, 0, true },
	[K_HA_PEER] = { SEC_HA, "peer", KT_PEER, OFF(ha.peer), 0, 0, true },
	[K_HA_HEARTBEAT] = { SEC_HA, "heartbeat_ms", KT_UINT, OFF(ha.heartbeat_ms), 1, 60000,
			     false },
	[K_HA_TIMEOUT] = { SEC_HA, "timeout_ms", KT_UINT, OFF(ha.timeout_ms), 1, 600000, false },
	[K_HA_PROBE] = { SEC_HA, "probe_ms", KT_UINT, OFF(ha.probe_ms), 1, 1000, false },
	[K_HA_KEY_FILE] = { SEC_HA, "key_file", KT_PATH, OFF(ha.key_file), 0, 0, false },
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
	[K_CTI_EVENT_LOG_MS] = { SEC_CTI, "event_log_ms", KT_UINT, OFF(cti.event_log_ms), 1000,
				 86400000, false },
	[K_CTI_EVENT_LOG_MAX] = { SEC_CTI, "event_log_max", KT_UINT, OFF(cti.event_log_max), 1000,
				  16777216, false },
	[K_CTI_MAX_CLIENTS] = { SEC_CTI, "max_clients", KT_UINT, OFF(cti.max_clients), 1, 65536,
				false },
	[K_CTI_CLIENT_QUEUE_MAX] = { SEC_CTI, "client_queue_max", KT_UINT,
				     OFF(cti.client_queue_max), 65536, 67108864, false },
	[K_CTI_TOKENS_FILE] = { SEC_CTI, "tokens_file", KT_PATH, OFF(cti.tokens_file), 0, 0,
				false },
	[K_ENGINE_WORKERS] = { SEC_ENGINE, "workers", KT_UINT, OFF(engine.workers), 1, 256, false },
	[K_AUTH_REALM] = { SEC_AUTH, "realm", KT_REALM, OFF(auth.realm), 0, 0, true },
	[K_AUTH_USERS] = { SEC_AUTH, "users", KT_PATH, OFF(auth.users), 0, 0, true },
	[K_AUTH_NONCE_LIFETIME] = { SEC_AUTH, "nonce_lifetime_s", KT_UINT,
				    OFF(auth.nonce_lifetime_s), 10, 86400, false },
	[K_AUTH_BAN_AFTER] = { SEC_AUTH, "ban_after", KT_UINT, OFF(auth.ban_after), 0, 1000000,
			       false },
	[K_AUTH_BAN_MS] = { SEC_AUTH, "ban_ms", KT_UINT, OFF(auth.ban_ms), 1000, 86400000, false },
	[K_AUTH_TRUSTED] = { SEC_AUTH, "trusted", KT_PREFIX_LIST, OFF(auth.trusted), 0, 0, false },
	[K_AUTH_ALGORITHMS] = { SEC_AUTH, "algorithms", KT_ALGORITHMS, OFF(auth.algorithms), 0, 0,
				false },
	[K_METRICS_LISTEN] = { SEC_METRICS, "listen", KT_SOCKADDR, OFF(metrics.listen), 0, 0,
			       true },
};

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
		cfg_fail_errno(p, -ENOMEM);
	return p->rc;
}

int cfg_key_find(enum sec sec, const char *name)
{
	for (int i = 0; i < K_COUNT; i++) {
		if (keys[i].sec == sec && !strcmp(keys[i].name, name))
			return i;
	}
	return -1;
}

void cfg_set_key(struct parser *p, int i)
{
	const struct key_desc *k = &keys[i];
	void *dst = (char *)p->cfg + k->off;
	const char *v = p->value;
	unsigned long n;
	unsigned e;
	enum log_level lvl;
	int err;

#define BAD(...) cfg_fail(p, p->lineno, p->sec, p->name, __VA_ARGS__)
	switch (k->type) {
	case KT_ID:
		if (!cfg_all_chars(v, "_-", CFG_ID_MAX))
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
		err = cfg_parse_ulong(v, k->max, &n);
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
		if (!cfg_ifname_valid(v))
			BAD("invalid interface name '%s' (1..%d characters, no '/', ':' or space)",
			    v, IF_NAMESIZE - 1);
		else
			memcpy(dst, v, strlen(v) + 1);
		break;
	case KT_DOMAIN:
		if (!cfg_domain_valid(v))
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
	case KT_ALGORITHMS: {
		struct cfg_algorithms *al = dst;
		char *copy = strdup(v), *save = NULL;

		al->n = 0;
		for (char *t = copy ? strtok_r(copy, ", \t", &save) : NULL; t;
		     t = strtok_r(NULL, ", \t", &save)) {
			unsigned a = !strcmp(t, "sha256") ? CFG_ALG_SHA256
				     : !strcmp(t, "md5")  ? CFG_ALG_MD5
							  : 99;

			if (a == 99 || al->n == 2 || (al->n && al->v[0] == a)) {
				BAD("invalid algorithms '%s' (expected sha256 and/or md5, in the "
				    "order "
				    "offered)",
				    v);
				break;
			}
			al->v[al->n++] = a;
		}
		if (!copy)
			BAD("out of memory");
		else if (!al->n)
			BAD("no algorithm in '%s'", v);
		free(copy);
		break;
	}
	case KT_PREFIX_LIST: {
		struct cfg_prefix_list *pl = dst;
		char *copy = strdup(v), *save = NULL;

		if (!copy) {
			BAD("out of memory");
			break;
		}
		for (char *t = strtok_r(copy, ", \t", &save); t;
		     t = strtok_r(NULL, ", \t", &save)) {
			struct cfg_prefix pfx;
			char one[64];

			/* A bare address is a host: /32 or /128. */
			snprintf(one, sizeof(one), "%s%s", t, strchr(t, '/') ? "" : "/128");
			if (strlen(t) >= sizeof(one) - 4 ||
			    (cfg_parse_prefix(one, &pfx) && (snprintf(one, sizeof(one), "%s/32", t),
							     cfg_parse_prefix(one, &pfx)))) {
				BAD("invalid prefix '%s' (expected IP or IP/LEN)", t);
				break;
			}
			if (pl->n == CFG_PREFIX_LIST_MAX) {
				BAD("more than %d prefixes", CFG_PREFIX_LIST_MAX);
				break;
			}
			pl->v[pl->n++] = pfx;
		}
		free(copy);
		break;
	}
	}
#undef BAD
}

void cfg_set_defaults(struct sipha_config *cfg)
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
	cfg->sip.max_transactions = 262144;
	cfg->sip.tcp_max_per_source = 256;
	cfg->sip.tcp_silent_ms = 30000;
	cfg->sip.tcp_idle_ms = 3900000;
	cfg->sip.max_calls = 1000000;
	cfg->vip.garp_count = 3;
	cfg->ha.heartbeat_ms = 50;
	cfg->ha.timeout_ms = 200;
	cfg->ha.probe_ms = 4;
	cfg->xdp.mode = CFG_XDP_OFF;
	cfg->cti.route_timeout_ms = 30000;
	cfg->auth.nonce_lifetime_s = 300;
	cfg->auth.ban_after = 10;
	cfg->auth.ban_ms = 600000;
	cfg->auth.algorithms.n = 2;
	cfg->auth.algorithms.v[0] = CFG_ALG_SHA256;
	cfg->auth.algorithms.v[1] = CFG_ALG_MD5;
	cfg->cti.event_log_ms = 120000;
	cfg->cti.event_log_max = 1048576;
	cfg->cti.max_clients = 256;
	cfg->cti.client_queue_max = 4u << 20;
}

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
		if (cfg_sections[s].required && !p->sec_line[s]) {
			cfg_fail(p, 0, s, NULL, "section missing");
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
				cfg_fail(p, p->sec_line[first], first, keys[k].name,
					 "required key missing (mode = %s)",
					 xdp_mode_names[p->cfg->xdp.mode]);
			else
				cfg_fail(p, p->sec_line[first], first, keys[k].name,
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
		cfg_fail(p, p->key_line[hi], keys[hi].sec, keys[hi].name, "must be %s %s (%u)", rel,
			 keys[lo].name, a);
	} else {
		rel = strict ? "less than" : "at most";
		cfg_fail(p, p->key_line[lo], keys[lo].sec, keys[lo].name, "must be %s %s (%u)", rel,
			 keys[hi].name, b);
	}
}

/* [ha] key_file: readable by this user only (a key others can read is no
 * secret), 16 bytes to 64 KiB of anything; the key is its SHA-256. */
static void load_ha_key(struct parser *p)
{
	struct sipha_config *cfg = p->cfg;
	unsigned line = p->key_line[K_HA_KEY_FILE];
	const char *path = cfg->ha.key_file;
	unsigned char buf[65536 + 1];
	struct stat st;
	ssize_t n;
	int fd;

	if (!cfg->ha.present || !path)
		return;
	if (sodium_init() < 0) {
		cfg_fail(p, line, SEC_HA, "key_file", "cannot initialise libsodium");
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		cfg_fail(p, line, SEC_HA, "key_file", "%s: %s", path, strerror(errno));
		return;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		cfg_fail(p, line, SEC_HA, "key_file", "%s: not a regular file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		cfg_fail(p, line, SEC_HA, "key_file",
			 "%s is open to group or others (mode %04o): chmod 600 it", path,
			 (unsigned)(st.st_mode & 07777));
		goto out;
	}
	n = read(fd, buf, sizeof(buf));
	if (n < 16 || n > 65536) {
		cfg_fail(p, line, SEC_HA, "key_file", "%s: %s", path,
			 n < 0	  ? strerror(errno)
			 : n < 16 ? "shorter than 16 bytes"
				  : "over 64 KiB");
		goto out;
	}
	crypto_hash_sha256(cfg->ha.key, buf, (unsigned long long)n);
	cfg->ha.has_key = true;
out:
	sodium_memzero(buf, sizeof(buf));
	close(fd);
}

static void check_cross(struct parser *p)
{
	struct sipha_config *cfg = p->cfg;

	load_ha_key(p);
	check_order(p, K_HA_HEARTBEAT, K_HA_TIMEOUT, true);
	check_order(p, K_SIP_MIN_EXPIRES, K_SIP_MAX_EXPIRES, false);
	check_order(p, K_SIP_MIN_EXPIRES, K_SIP_DEFAULT_EXPIRES, false);
	check_order(p, K_SIP_DEFAULT_EXPIRES, K_SIP_MAX_EXPIRES, false);
	if (cfg->ha.present && p->key_line[K_HA_PEER] &&
	    cfg->ha.peer.ss.ss_family != cfg->ha.listen.ss.ss_family)
		cfg_fail(p, p->key_line[K_HA_PEER], SEC_HA, "peer",
			 "address family differs from [ha] listen");
	if (p->key_line[K_XDP_BURST] && !cfg->xdp.burst &&
	    (cfg->xdp.invite_rate || cfg->xdp.register_rate))
		cfg_fail(p, p->key_line[K_XDP_BURST], SEC_XDP, "burst",
			 "must be at least 1 when invite_rate or register_rate is set");
	if (cfg->cti.default_route && !cfg_dn_find(cfg, cfg->cti.default_route))
		cfg_fail(p, p->key_line[K_CTI_DEFAULT_ROUTE], SEC_CTI, "default_route",
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
		cfg_fail_errno(p, -ENOMEM);
	}
}

void cfg_finish(struct parser *p)
{
	apply_late_defaults(p); /* first: whether [xdp] needs an interface depends on its mode */
	check_required(p);
	if (p->rc)
		return;
	check_cross(p);
	if (!p->rc)
		apply_string_defaults(p);
}

/* The configuration file (docs/ARCHITECTURE.md §5, contract): INI parsed with inih.
 * Whole-line comments only, unknown sections and keys are errors, and every
 * error is one line "FILE:LINE: KEY: REASON" so an operator can fix it. */
#ifndef SIPHA_CONFIG_H
#define SIPHA_CONFIG_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

enum cfg_role {
	CFG_ROLE_PRIMARY,
	CFG_ROLE_BACKUP
};
enum cfg_redundancy {
	CFG_RED_HOT,
	CFG_RED_WARM
};
enum cfg_xdp_mode {
	CFG_XDP_OFF,
	CFG_XDP_NATIVE,
	CFG_XDP_GENERIC
};
enum cfg_dn_kind {
	CFG_DN_EXTENSION,
	CFG_DN_ROUTING_POINT,
	CFG_DN_ROUTE
};

/* "IP:PORT": 10.0.0.1:5060, [::1]:5060.  Port 0 is refused. */
struct cfg_sockaddr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* "IP/PREFIXLEN" (VIP). */
struct cfg_prefix {
	int family; /* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} addr;
	unsigned prefixlen;
};

enum cfg_alg {
	CFG_ALG_MD5 = 0, /* the values of enum dg_alg */
	CFG_ALG_SHA256 = 1,
};
struct cfg_algorithms {
	unsigned v[2];
	unsigned n;
};

#define CFG_PREFIX_LIST_MAX 32
struct cfg_prefix_list {
	struct cfg_prefix v[CFG_PREFIX_LIST_MAX];
	unsigned n;
};

struct cfg_dn {
	char *dn; /* the key: digits or a name */
	enum cfg_dn_kind kind;
	char *uri; /* CFG_DN_ROUTE only: "sip:..." as written */
};

struct sipha_config {
	char *path;

	struct {
		char *id; /* required; [A-Za-z0-9_-], 1..32 chars */
		enum cfg_role role; /* default primary */
		enum cfg_redundancy redundancy; /* default hot */
		int priority; /* 0..65535, default 100 */
		char *state_dir; /* default /var/lib/sipha/<id> */
		char *log_level; /* extension: err|warn|info|debug, default info */
	} node;

	struct {
		struct cfg_sockaddr listen; /* required */
		char *domain; /* required */
		unsigned min_expires; /* extension, default 60 */
		unsigned max_expires; /* extension, default 3600 */
		unsigned default_expires; /* extension, default 3600 */
		unsigned max_contacts; /* extension, bindings per AoR, default 16 */
		unsigned max_registrations; /* extension, AoRs in all, default 1000000 */
		unsigned
			no_answer_ms; /* extension: ring time before 480, 0 = none; default 60000 */
		/* extension: live SIP transactions at most (a call being set up
		 * holds two, an answered one two for 32 s more); default 262144 */
		unsigned max_transactions;
		/* extensions: TCP connections from one address at most (default
		 * 256); how long an accepted connection may say nothing SIP at
		 * first (default 30000 ms), and nothing at all later (default
		 * 3900000 ms, 0 = for ever) */
		unsigned tcp_max_per_source;
		unsigned tcp_silent_ms;
		unsigned tcp_idle_ms;
		/* extension: calls in the table at most; an initial INVITE
		 * beyond it gets 503 with Retry-After; default 1000000 */
		unsigned max_calls;
	} sip;

	struct {
		bool present;
		struct cfg_prefix address; /* required in [vip] */
		char interface[IF_NAMESIZE]; /* required in [vip] */
		unsigned garp_count; /* default 3, 0..100 */
	} vip;

	struct {
		bool present;
		struct cfg_sockaddr listen; /* required in [ha] */
		struct cfg_sockaddr peer; /* required in [ha] */
		unsigned heartbeat_ms; /* default 50, >= 1 */
		unsigned timeout_ms; /* default 200, > heartbeat_ms */
		unsigned probe_ms; /* extension: ARP/NS probe before a takeover, default 4 */
		/* extension: the pre-shared key's file (mode 0600 or stricter, 16
		 * bytes to 64 KiB); KEY is SHA-256 of its content */
		char *key_file;
		bool has_key;
		uint8_t key[32];
	} ha;

	struct {
		enum cfg_xdp_mode mode; /* default off when [xdp] is absent, native when present */
		char interface[IF_NAMESIZE]; /* required unless mode = off */
		unsigned
			invite_rate; /* extension: initial INVITEs per source per second, 0 = no limit; default 0 */
		unsigned
			register_rate; /* extension: REGISTERs per source per second, 0 = no limit; default 0 */
		unsigned burst; /* extension: token-bucket depth, default 2 x the larger rate */
	} xdp;

	struct {
		char *socket; /* required */
	} control;

	struct {
		bool present;
		struct cfg_sockaddr listen; /* required in [cti] */
		unsigned route_timeout_ms; /* default 30000 */
		char *default_route; /* DN, optional (NULL: 480 on timeout) */
		/* extensions: the replicated event log keeps events this long
		 * (default 120000 ms) and this many at most (default 1048576) */
		unsigned event_log_ms;
		unsigned event_log_max;
		unsigned max_clients; /* extension: CTI connections at most, default 256 */
		/* extension: bytes queued to one client before it is cut off
		 * (a client that does not read), default 4 MiB */
		unsigned client_queue_max;
		/* extension: tokens clients must give in Hello (one a line, 16
		 * to 256 characters, mode 0600); none: no client authentication */
		char *tokens_file;
	} cti;

	struct {
		unsigned workers; /* default: online CPUs; 1..256 */
	} engine;

	struct {
		bool present;
		char *realm; /* required in [auth] */
		char *users; /* required in [auth]: path of the users file */
		/* extensions: a nonce's lifetime (default 300 s); failed
		 * authentications from one address before it is blocked in XDP
		 * (default 10, 0 = never) and for how long (default 600000 ms);
		 * sources never challenged (trunks, gateways) */
		unsigned nonce_lifetime_s;
		unsigned ban_after;
		unsigned ban_ms;
		struct cfg_prefix_list trusted;
		/* extension: the digest algorithms offered, in this order
		 * (default sha256 then md5, RFC 8760) */
		struct cfg_algorithms algorithms;
	} auth;

	struct {
		bool present;
		struct cfg_sockaddr listen; /* required in [metrics] */
	} metrics;

	struct cfg_dn *dns; /* in file order */
	size_t n_dns;
};

/* Loads PATH into CFG (zeroed first).  Returns 0, or -EINVAL with one line
 * "PATH:LINE: KEY: REASON" (no newline) in ERR, or -errno with
 * "PATH: strerror" when the file cannot be read.  A missing required section
 * or key is reported at the line of its section header, or at line 0 when the
 * section is absent, with KEY written "[section] key" or "[section]".
 * On error CFG holds nothing that needs freeing (cfg_free is still safe). */
int cfg_load(const char *path, struct sipha_config *cfg, char *err, size_t errlen);

/* Same, from a string; PATH is used only in messages. */
int cfg_load_string(const char *text, const char *path, struct sipha_config *cfg, char *err,
		    size_t errlen);

void cfg_free(struct sipha_config *cfg);

/* The [dn] entry for DN, or NULL. */
const struct cfg_dn *cfg_dn_find(const struct sipha_config *cfg, const char *dn);

/* Helpers shared with the CLI and tests. */
int cfg_parse_sockaddr(const char *s, struct cfg_sockaddr *out); /* 0 or -EINVAL */
int cfg_parse_prefix(const char *s, struct cfg_prefix *out); /* 0 or -EINVAL */
/* "IP:PORT" / "[IP6]:PORT" into BUF. */
const char *cfg_sockaddr_str(const struct cfg_sockaddr *a, char *buf, size_t len);

#endif

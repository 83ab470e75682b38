/* Shared by the four files of the configuration reader, and included by
 * nothing else:
 *  - config.c: the reader (lines, section headers, inih, the entry points);
 *  - config_keys.c: the schema (sections, keys, their types, ranges and
 *    defaults, and the checks that need the whole file);
 *  - config_values.c: the syntax of one value (numbers, names, addresses);
 *  - config_dn.c: the [dn] section.
 * Errors go through cfg_fail() and cfg_fail_errno(), which keep only the
 * first (p->rc): a step may fail and return, and its caller checks p->rc
 * where it has to stop. */
#ifndef SIPHA_CONFIG_INT_H
#define SIPHA_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

#define CFG_MAX_LINE 4095 /* characters of one line, without the newline */

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

struct sec_desc {
	const char *name;
	bool required;
	size_t present; /* offset of its "present" flag, 0 when it has none */
};

/* Indexed by enum sec (config_keys.c). */
extern const struct sec_desc cfg_sections[SEC_COUNT];

/* The keys of the schema outside [dn], in config_keys.c's table. */
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
	K_SIP_MAX_TRANSACTIONS,
	K_SIP_TCP_MAX_PER_SOURCE,
	K_SIP_TCP_SILENT_MS,
	K_SIP_TCP_IDLE_MS,
	K_SIP_MAX_CALLS,
	K_VIP_ADDRESS,
	K_VIP_INTERFACE,
	K_VIP_GARP_COUNT,
	K_HA_LISTEN,
	K_HA_PEER,
	K_HA_HEARTBEAT,
	K_HA_TIMEOUT,
	K_HA_PROBE,
	K_HA_KEY_FILE,
	K_XDP_INTERFACE,
	K_XDP_MODE,
	K_XDP_INVITE_RATE,
	K_XDP_REGISTER_RATE,
	K_XDP_BURST,
	K_CONTROL_SOCKET,
	K_CTI_LISTEN,
	K_CTI_ROUTE_TIMEOUT,
	K_CTI_DEFAULT_ROUTE,
	K_CTI_EVENT_LOG_MS,
	K_CTI_EVENT_LOG_MAX,
	K_CTI_MAX_CLIENTS,
	K_CTI_CLIENT_QUEUE_MAX,
	K_CTI_TOKENS_FILE,
	K_ENGINE_WORKERS,
	K_AUTH_REALM,
	K_AUTH_USERS,
	K_AUTH_NONCE_LIFETIME,
	K_AUTH_BAN_AFTER,
	K_AUTH_BAN_MS,
	K_AUTH_TRUSTED,
	K_AUTH_ALGORITHMS,
	K_METRICS_LISTEN,
	K_COUNT
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

/* The first error wins: sets p->rc and writes "PATH:LINE: KEY: REASON" to
 * p->err, KEY built from SEC and NAME as the contract spells it. */
void __attribute__((format(printf, 5, 6)))
cfg_fail(struct parser *p, unsigned line, int sec, const char *name, const char *fmt, ...);
/* The first error wins: ERR (-errno) as "PATH: strerror". */
void cfg_fail_errno(struct parser *p, int err);

/* config_values.c: a value alone, without its place in the file. */
int cfg_parse_ulong(const char *s, unsigned long max, unsigned long *out);
bool cfg_all_chars(const char *s, const char *extra, size_t maxlen);
bool cfg_ifname_valid(const char *s);
bool cfg_domain_valid(const char *s);
bool cfg_uri_valid(const char *v);

/* config_keys.c: the schema. */
/* The defaults that do not depend on other keys; the rest come in cfg_finish(). */
void cfg_set_defaults(struct sipha_config *cfg);
/* Index (enum K_*) of key NAME in SEC, or -1 when SEC has no such key. */
int cfg_key_find(enum sec sec, const char *name);
/* Checks p->value for key K and stores it in p->cfg. */
void cfg_set_key(struct parser *p, int k);
/* After the last line: late defaults, required sections and keys, keys that
 * must agree with each other. */
void cfg_finish(struct parser *p);

/* config_dn.c: one "DN = kind" line of [dn] (p->name, p->value). */
void cfg_dn_entry(struct parser *p);

#endif

/* Registrar (RFC 3261 §10): address-of-record → contact bindings, each with
 * its own expiry timer on the wheel.  sipha serves one domain, so an AoR is
 * keyed by its user part (sip:1001@sipha.test and sip:1001@<node IP> are the
 * same AoR); that key is also the extension DN calls are routed by. */
#ifndef SIPHA_REGISTRAR_H
#define SIPHA_REGISTRAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <osipparser2/osip_parser.h>

#include "core/timer.h"
#include "sip/msg.h"
#include "sip/transport.h"

struct registrar;

struct reg_limits {
	unsigned min_expires, max_expires, default_expires; /* seconds */
	unsigned max_contacts; /* per AoR */
	unsigned max_aors;
	const char *domain;
};

struct reg_binding {
	struct timer t;
	struct reg_aor *aor;
	struct reg_binding *next;
	char *contact; /* the Contact URI as given (URI parameters included) */
	char *call_id;
	uint32_t cseq;
	unsigned q; /* q-value × 1000 */
	uint64_t expires; /* absolute, ms on the wheel's clock */
	/* Where the REGISTER came from: calls reach the contact this way
	 * (its connection, or its NATed address), not by the Contact URI. */
	struct sip_peer src;
};

struct reg_aor {
	struct registrar *r;
	struct reg_aor *hnext;
	struct reg_binding *bindings;
	unsigned n;
	char user[];
};

/* Outcome of a REGISTER: CODE and REASON for the response; for 423,
 * MIN_EXPIRES goes into a Min-Expires header.  503 means one thing only:
 * a new address of record past max_aors (the server adds Retry-After). */
struct reg_result {
	int code;
	const char *reason;
	unsigned min_expires;
	const char *aor_user; /* valid until the next registrar call */
};

int reg_new(struct registrar **out, struct timer_wheel *tw, const struct reg_limits *lim);

/* FN hears of every binding stored or refreshed (GONE false) and removed,
 * expired included (GONE true): what HA replicates.  NULL: nobody. */
typedef void (*reg_notify_fn)(void *arg, const struct reg_aor *a, const struct reg_binding *b,
			      bool gone);
void reg_set_notify(struct registrar *r, reg_notify_fn fn, void *arg);
void reg_free(struct registrar *r);

/* Processes REGISTER REQ at NOW (ms): every check of RFC 3261 §10.3 first,
 * then all changes at once, so a refused request changes nothing.
 */
/* IX (may be NULL) indexes the octets REQ was parsed from: the AoR
 * and the contacts are taken from them as written, since libosip2 decodes
 * escapes (an escaped NUL would cut them short). */
void reg_register(struct registrar *r, const osip_message_t *req, const struct sipmsg_ix *ix,
		  const struct sip_peer *src, uint64_t now, struct reg_result *res);

/* Adds one Contact header per binding of USER (with ;expires=remaining) to
 * RESP.  0 or -ENOMEM. */
int reg_fill_contacts(struct registrar *r, const char *user, uint64_t now, osip_message_t *resp);
/* The same as header lines ("Contact: <uri>;expires=N" CRLF) in
 * BUF[0..CAP): the length, or -ENOSPC. */
ssize_t reg_contacts_text(struct registrar *r, const char *user, uint64_t now, char *buf,
			  size_t cap);

/* Low-level operations, also used by HA replication and tests.  EXPIRES_S 0
 * removes the binding.  0, -ENOSPC (a limit) or -ENOMEM. */
int reg_bind(struct registrar *r, const char *user, const char *contact, unsigned expires_s,
	     const char *call_id, uint32_t cseq, unsigned q, const struct sip_peer *src,
	     uint64_t now);
void reg_unbind_all(struct registrar *r, const char *user);

const struct reg_aor *reg_find(const struct registrar *r, const char *user);
size_t reg_binding_count(const struct registrar *r);
size_t reg_aor_count(const struct registrar *r);

typedef void (*reg_iter_fn)(void *arg, const struct reg_aor *aor, const struct reg_binding *b);
void reg_foreach(const struct registrar *r, reg_iter_fn fn, void *arg);

#endif

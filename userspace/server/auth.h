/* SIP digest authentication of REGISTER and of initial INVITEs from
 * extensions (RFC 3261 §22, RFC 8760: SHA-256 and MD5 offered), with a
 * built-in fail2ban: a source that fails [auth] ban_after times is put in
 * the XDP blocklist (and dropped here too) for [auth] ban_ms.
 *
 * Nonces are stateless (sip/digest.c): an HMAC under a secret derived from
 * the HA key when there is one, so a nonce issued by one node of a pair is
 * good on the other after a failover.  Every user, known or not, gets the
 * same challenge and the same refusal: the answers tell a scanner nothing
 * about which extensions exist. */
#ifndef SIPHA_AUTH_H
#define SIPHA_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "sip/msg.h"
#include "sip/transport.h"

struct server;
struct txn;
struct auth;

/* Loads [auth] users.  0, or -errno with the reason logged. */
int auth_new(struct auth **out, struct server *srv);
void auth_free(struct auth *a);

/* REQ (on ST, from FROM) may go on: true.  False when it was challenged or
 * refused (ST answered) — also when its source is banned. */
bool auth_request(struct auth *a, struct txn *st, osip_message_t *req);
/* A datagram or message from FROM before it is parsed: false when the
 * source is banned (dropped, counted). */
bool auth_source_ok(struct auth *a, const struct sip_peer *from);

struct auth_stats {
	uint64_t challenges, ok, failures, stale, bans, banned_dropped, trusted;
};
const struct auth_stats *auth_stats(const struct auth *a);
unsigned auth_banned_now(const struct auth *a);

#endif

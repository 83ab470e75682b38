/* The dialog event package (RFC 4235) over SIP events (RFC 6665): phones
 * subscribe to an extension (busy-lamp fields) and get a NOTIFY with an
 * application/dialog-info+xml body at once and on every change of its
 * device state.  sipha is the notifier; each subscription is a dialog of
 * its own, replicated to a hot standby, which goes on notifying after a
 * takeover (with the next version number, and a NOTIFY for a state that
 * changed meanwhile). */
#ifndef SIPHA_SUBSCRIBE_H
#define SIPHA_SUBSCRIBE_H

#include <stdbool.h>
#include <stdint.h>

#include "cc/cc.h"
#include "core/timer.h"
#include "sip/dialog.h"
#include "sip/txn.h"

struct server;

#define SUB_DEFAULT_EXPIRES 3600
#define SUB_MAX_EXPIRES 3600

struct sub {
	struct server *srv;
	char *dn;
	struct dialog dlg; /* sipha's side: local tag ours */
	uint64_t expires; /* absolute, ms on the server's wheel */
	struct timer t; /* expiry */
	uint32_t version; /* of the next NOTIFY body */
	enum cc_dev last; /* the state the last NOTIFY said */
	bool terminated;
	unsigned refs; /* the list's and each NOTIFY transaction's */
	struct sub *next, *prev;
};

struct sub_table;

/* A view for replication (ha/replica.c). */
struct sub_replica {
	char *dn;
	struct dialog dlg;
	uint64_t expires_ms; /* remaining */
	uint32_t version;
	enum cc_dev last;
};

int subs_new(struct sub_table **out, struct server *srv);
void subs_free(struct sub_table *t);

/* An initial SUBSCRIBE (no To tag) on its server transaction. */
void sub_on_subscribe(struct server *srv, struct txn *st, osip_message_t *req);
/* A SUBSCRIBE within a subscription's dialog (refresh, or Expires: 0):
 * false when it is none of ours. */
bool sub_on_indialog(struct server *srv, struct txn *st, osip_message_t *req);
/* The device state of DN changed (cc's device watch). */
void sub_device_changed(void *arg, const char *dn, enum cc_dev d);
/* This node became active: a NOTIFY to every subscription whose DN's state
 * is not what its last NOTIFY said (it changed while the peer died). */
void subs_take_over(struct sub_table *t);

size_t subs_count(const struct sub_table *t);
void subs_foreach(const struct sub_table *t, void (*fn)(void *arg, const struct sub *s), void *arg);
/* Standby: adds or updates a replicated subscription (takes R's strings and
 * dialog, also on error); drops one.  0 or -errno. */
int sub_upsert_replica(struct server *srv, struct sub_replica *r);
void sub_drop_replica(struct server *srv, const char *call_id, const char *local_tag);
/* Every live subscription, each held until sub_unhold() (a snapshot in
 * slices).  0 or -ENOMEM. */
int subs_hold_all(struct sub_table *t, struct sub ***out, size_t *n);
void sub_unhold(struct sub *s);
/* Forgets every subscription, quietly (a snapshot follows). */
void subs_clear(struct sub_table *t);

/* The dialog-info+xml document for ENTITY (a SIP URI) in state D, at
 * VERSION, "full".  Malloc'd, NUL-terminated; NULL on no memory. */
char *sub_dialog_info(const char *entity, const char *dn, uint32_t version, enum cc_dev d);

#endif

/* Dialogs (RFC 3261 §12): the state one side keeps about a peer, and the
 * in-dialog requests built from it.  A B2BUA call has two: the A leg where
 * sipha is the UAS, the B leg where it is the UAC.  Plain strings and
 * numbers, so the HA journal can carry them. */
#ifndef SIPHA_SIP_DIALOG_H
#define SIPHA_SIP_DIALOG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <osipparser2/osip_parser.h>

#include "sip/transport.h"

#define DLG_MAX_ROUTES 8

struct dialog {
	char *call_id;
	char *local_tag;
	char *remote_tag; /* NULL until the UAC side learns it */
	char *local_uri; /* our From (UAC) / To (UAS) URI, without tag */
	char *local_name; /* display name, or NULL */
	char *remote_uri;
	char *remote_name;
	char *remote_target; /* the peer's Contact URI */
	char *routes[DLG_MAX_ROUTES]; /* route set, in Route header order */
	unsigned nroutes;
	uint32_t local_cseq;
	uint32_t remote_cseq;
	bool remote_cseq_set;
	/* Where in-dialog requests go: the peer's connection for TCP, its
	 * address otherwise (filled by the call layer). */
	struct sip_peer peer;
};

/* UAS side (§12.1.1): from the INVITE we received and the tag we chose. */
int dlg_init_uas(struct dialog *d, const osip_message_t *req, const char *local_tag);
/* UAC side, before any response (§12.1.2 is completed by dlg_uac_confirm):
 * fields of the INVITE we are about to send. */
int dlg_init_uac(struct dialog *d, const char *call_id, const char *local_tag,
		 const char *local_uri, const char *local_name, const char *remote_uri,
		 const char *remote_target, uint32_t cseq);
/* UAC side: a 1xx with a tag or a 2xx: remote tag, remote target (Contact),
 * route set (Record-Route, reversed).  0 or -errno. */
int dlg_uac_update(struct dialog *d, const osip_message_t *resp);
/* A target refresh (re-INVITE, UPDATE or their 2xx) carries a new Contact. */
int dlg_refresh_target(struct dialog *d, const osip_message_t *m);

void dlg_free(struct dialog *d);

/* Builds an in-dialog request METHOD (§12.2.1.1): Request-URI and Route from
 * the route set (loose routing), From/To/Call-ID, CSeq (local_cseq+1, or
 * CSEQ when not 0 — ACK and CANCEL reuse the INVITE's), Max-Forwards 70, a
 * Via with VIA_HOST:VIA_PORT and BRANCH, and Contact CONTACT (may be NULL).
 * 0 with *OUT or -errno. */
int dlg_build_request(struct dialog *d, const char *method, uint32_t cseq, const char *via_host,
		      unsigned via_port, enum sip_proto proto, const char *branch,
		      const char *contact, osip_message_t **out);
/* The same request written straight into BUF[0..CAP) (no Contact: the ACK
 * and BYE sipha sends carry none), with a body of type CTYPE when BODY is
 * given.  The length, -EAGAIN when a field must go through libosip2's
 * printer (an escaped NUL), -ENOSPC. */
ssize_t dlg_write_request(struct dialog *d, const char *method, uint32_t cseq, const char *via_host,
			  unsigned via_port, enum sip_proto proto, const char *branch,
			  const char *ctype, const char *body, size_t blen, char *buf, size_t cap);

/* Checks an incoming in-dialog request's CSeq (§12.2.2): false when it is
 * lower than the last one (the caller answers 500). */
bool dlg_check_remote_cseq(struct dialog *d, const osip_message_t *req);

#endif

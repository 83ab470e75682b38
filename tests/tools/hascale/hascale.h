/* hascale — what its files share: a server core with a counting send
 * function (node.c builds the calls on one), a pass of the snapshot and the
 * frames handed on and applied (snapshot.c), for the measured phases of
 * main.c.  Private to the tool. */
#ifndef HASCALE_H
#define HASCALE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ha/journal.h"
#include "server/call.h"
#include "server/server.h"

#define HS_MSG 8192

/* One server core and what its send function saw. */
struct hs_node {
	struct sipha_config cfg;
	struct timer_wheel tw;
	struct server srv;
	bool up;
	bool keep; /* copy the messages the build needs to read back */
	uint64_t msgs, bytes, invites;
	char inv[HS_MSG]; /* the last INVITE sent, NUL-terminated */
	char to_caller[HS_MSG]; /* the last message to the caller */
};

/* One pass over the calls in state WANT, each encoded as a record.  LIMIT:
 * empty the buffer past that many bytes (as a slice of feed.c ends), 0 to
 * keep everything for the apply. */
struct hs_snap {
	struct jr_buf *jb;
	uint64_t seq;
	enum call_state want;
	size_t limit;
	size_t records, bytes;
	int err;
};

/* Where a slice's frames go: the copy the link's stream makes of them
 * (loop_stream_write). */
struct hs_queue {
	uint8_t *data;
	size_t cap;
};

/* node.c */
/* N's server core, with room for MAX_TXNS live transactions, or the
 * default limit for 0.  KEEP: copy what the call build reads back. */
int hs_node_init(struct hs_node *n, const char *id, bool keep, unsigned max_txns);
void hs_node_fini(struct hs_node *n);
/* Call I on the active, ringing or ESTABLISHED. */
int hs_build_call(struct hs_node *act, unsigned i, bool established);
/* N must hold EST established calls, RING ringing and nothing else. */
int hs_check_states(const struct hs_node *n, size_t est, size_t ring, const char *who);

/* snapshot.c */
/* A pass of S over ACT's calls, which must give WANT records. */
int hs_snap_checked(const struct hs_node *act, struct hs_snap *s, size_t want);
int hs_hand_on(struct jr_buf *jb, struct hs_queue *q, long *frames, size_t *bytes);
int hs_apply_frames(struct hs_node *sby, const struct jr_buf *jb);

#endif /* HASCALE_H */

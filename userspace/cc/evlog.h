/* The CTI event log: every event the pair has published, in sequence order,
 * kept for a while so that a client that switches node (or reconnects) asks
 * for the events after the last one it saw and gets exactly those.
 *
 * The log is node-wide (not per worker) and replicated: the active node
 * appends what it publishes, a hot standby appends what the journal brings,
 * with the same sequence numbers.  Entries are pruned by age and count; a
 * request for events older than the oldest kept is an error, never a silent
 * gap. */
#ifndef SIPHA_CC_EVLOG_H
#define SIPHA_CC_EVLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EV_DN_MAX 64 /* longest DN an event is filed under */
#define EV_DNS 3 /* DNs an event concerns at most (routing point, callee, caller) */
#define EV_CLIENT_MAX 64 /* a CTI client's name */

struct ev {
	uint64_t seq; /* the pair's event sequence, from 1 */
	uint64_t mono_ms; /* when appended on this node (pruning) */
	uint64_t jseq; /* the journal record that carried it (0: none yet) */
	char dns[EV_DNS][EV_DN_MAX + 1]; /* monitors of these DNs see it; "" unused */
	char client[EV_CLIENT_MAX + 1]; /* an answer for this client only; "" for all */
	char *line; /* the JSON object, no newline */
	size_t len;
	char *ref; /* an answer: the request's ref (malloc'd by whoever sets it), or NULL */
};

struct evlog {
	struct ev *ring;
	size_t cap, head, n; /* entries ring[head], ... ring[(head + n - 1) % cap] */
	size_t max; /* entries kept at most */
	uint64_t keep_ms; /* and no older than this */
	uint64_t last_seq; /* newest ever appended (also after pruning) */
	uint64_t pruned; /* counters */
	uint64_t appended;
};

/* MAX entries at most (>= 1), each kept KEEP_MS at least while MAX allows. */
int evlog_init(struct evlog *l, size_t max, uint64_t keep_ms);
void evlog_fini(struct evlog *l);
/* Forgets every entry (a snapshot follows); LAST_SEQ becomes SEQ. */
void evlog_reset(struct evlog *l, uint64_t seq);

/* Appends an event: SEQ must be last_seq + 1 (-EINVAL otherwise, the log
 * unchanged), or any SEQ > last_seq when the log is empty (a standby joining
 * the stream).  LINE (LEN bytes) is copied.  Entries older than keep_ms at
 * NOW_MS, or past max, are pruned first.  0, -EINVAL or -ENOMEM. */
int evlog_append(struct evlog *l, uint64_t seq, uint64_t now_ms, const char *const *dns,
		 const char *client, const char *line, size_t len);
/* Prunes what is older than keep_ms at NOW_MS. */
void evlog_prune(struct evlog *l, uint64_t now_ms);

/* The oldest sequence still held (last_seq + 1 when empty). */
uint64_t evlog_first_seq(const struct evlog *l);
/* The entry with sequence SEQ, or NULL. */
struct ev *evlog_get(const struct evlog *l, uint64_t seq);

/* Whether the events after SINCE can be replayed whole: 0 when every one
 * of (SINCE, last_seq] is held (also when there is none), -ERANGE when some
 * were pruned already (the gap is older than the log), -EINVAL when SINCE
 * is newer than anything this log has seen. */
int evlog_check_since(const struct evlog *l, uint64_t since);

/* True when the event concerns DN (any DN when DN is NULL). */
bool ev_concerns(const struct ev *e, const char *dn);

#endif

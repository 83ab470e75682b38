/* The CTI server (docs/CTI.md): TCP on [cti] listen, one JSON object a
 * line each way.  Clients connect to both nodes of a pair: the standby
 * answers Hello with its state and keeps the connection, refusing requests
 * that change state; the active one carries them out and streams the
 * events of the DNs each client monitors.  A client that does not read is
 * disconnected once its queue passes [cti] client_queue_max: it never
 * stalls the engine. */
#ifndef SIPHA_CTI_H
#define SIPHA_CTI_H

#include <stdbool.h>
#include <stdint.h>

struct cti;
struct loop;
struct server;

struct cti_stats {
	uint64_t connections; /* accepted in all */
	uint64_t refused; /* connections refused: max_clients */
	uint64_t requests;
	uint64_t errors; /* requests answered with an Error */
	uint64_t duplicates; /* requests answered from the log (sent again) */
	uint64_t events_sent; /* event lines written to clients */
	uint64_t slow_clients; /* disconnected: their queue was full */
	uint64_t auth_failures; /* a wrong or missing token, a request before it */
};

int cti_open(struct cti **out, struct loop *l, struct server *srv);
void cti_close(struct cti *c);
/* The node became active (or left the active role): every client hears a
 * NodeState event and sends Hello (with since_seq) to go on. */
void cti_node_state(struct cti *c, bool active);
const struct cti_stats *cti_stats(const struct cti *c);
unsigned cti_clients(const struct cti *c);

#endif

/* The control socket (Unix stream, [control] socket) that siphactl talks to.
 *
 * Protocol: one JSON object per line each way.  Request
 *   {"cmd": "status", "args": ["..."]}
 * answer
 *   {"ok": true, <the command's fields>}  or
 *   {"ok": false, "error": "why", "usage": false}
 * "usage": true marks a malformed command (siphactl exits 2), otherwise a
 * refused one (exit 1).  The fields are the --json contract of docs/ARCHITECTURE.md §5. */
#ifndef SIPHA_CONTROL_H
#define SIPHA_CONTROL_H

#include <jansson.h>
#include <stdbool.h>

#include "core/loop.h"

struct server;
struct control;

int ctl_open(struct control **out, struct loop *l, const char *path, struct server *srv);
void ctl_close(struct control *c);

/* Runs one request (a parsed JSON object) and returns the answer object;
 * exposed for unit tests. */
json_t *ctl_execute(struct server *srv, json_t *req);
/* The same for a client that MAY_CHANGE the node or not: switchover and
 * block are refused ("not permitted") to one that may not. */
json_t *ctl_execute_as(struct server *srv, json_t *req, bool may_change);

/* Every counter in Prometheus text format: the "text" of `metrics`, also
 * served over HTTP on [metrics] listen (server/metrics_http.c).  A string
 * to free(), or NULL when out of memory. */
char *ctl_metrics_text(struct server *srv);

#endif

/* The Prometheus endpoint ([metrics] listen): GET /metrics over HTTP gives
 * the very text `siphactl metrics` prints (ctl_metrics_text()).
 *
 * A small HTTP/1.0 and 1.1 responder on the daemon's loop, one request per
 * connection: the request line and headers (MH_MAX_REQUEST bytes at most)
 * are read, one answer is sent with Connection: close, and the connection
 * is closed.  GET and HEAD of /metrics (a query string is ignored) get 200,
 * another path 404, another method on /metrics 405, anything that is not
 * an HTTP/1.x request 400, a request too large 431.  A connection has
 * MH_TIMEOUT_MS from accept to its last byte sent; at most MH_MAX_CONNS are
 * open at once (more are closed at accept).  No authentication and no TLS:
 * bind it to a management address. */
#ifndef SIPHA_METRICS_HTTP_H
#define SIPHA_METRICS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/loop.h"

#define MH_MAX_REQUEST 4096 /* request line and headers, bytes */
#define MH_TIMEOUT_MS 5000 /* accept to the last byte of the answer */
#define MH_MAX_CONNS 64 /* connections open at once */

struct server;
struct metrics_http;

/* Listens on LISTEN and serves SRV's metrics on loop L.  0 or -errno
 * (logged). */
int mh_open(struct metrics_http **out, struct loop *l, const struct cfg_sockaddr *listen,
	    struct server *srv);
/* Closes the listener and every connection; NULL is a no-op. */
void mh_close(struct metrics_http *m);

/* What to answer to the LEN bytes received so far: 0 while the request's
 * head is incomplete (and under MH_MAX_REQUEST), else the HTTP status
 * (200, 400, 404, 405, 431).  *HEAD is set for a HEAD request.  Exposed
 * for unit tests. */
int mh_parse(const char *buf, size_t len, bool *head);

#endif

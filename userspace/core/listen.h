/* A TCP listening socket for the daemon's servers (CTI, metrics). */
#ifndef SIPHA_LISTEN_H
#define SIPHA_LISTEN_H

#include "core/config.h"

/* Listens on A with BACKLOG: non-blocking, close-on-exec, SO_REUSEADDR
 * (a restart binds at once) and IP_FREEBIND (the address may be the VIP,
 * which a standby does not hold yet).  The socket, or -errno. */
int tcp_listen(const struct cfg_sockaddr *a, int backlog);

#endif

/* Decoding of CTI requests (the CTI protocol of docs/CTI.md): one JSON
 * object a line, read with jansson, checked field by field into a plain
 * struct before anything acts on it.  Every malformed input gets a reason
 * (which the server sends back in an Error event) and nothing else; the
 * decoder holds no state and allocates nothing that outlives the call. */
#ifndef SIPHA_CC_CTIREQ_H
#define SIPHA_CC_CTIREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc/agent.h"
#include "cc/evlog.h"

#define CTI_LINE_MAX 8192 /* longest request line */
#define CTI_REF_MAX 128 /* a ref's JSON text (string or integer) */
#define CTI_TARGET_MAX 512 /* a RouteCall target: a DN or a SIP URI */
#define CTI_TOKEN_MAX 256 /* a client's token */

enum cti_req_type {
	CR_HELLO,
	CR_MONITOR,
	CR_STOP_MONITOR,
	CR_AGENT_LOGIN,
	CR_AGENT_READY,
	CR_AGENT_NOT_READY,
	CR_AGENT_LOGOUT,
	CR_ROUTE_CALL,
	CR_RELEASE_CALL,
	CR_COUNT
};

struct cti_req {
	enum cti_req_type type;
	/* The client's ref exactly as it came (a JSON string or integer, in
	 * compact JSON text), echoed in the answer; "" when absent. */
	char ref[CTI_REF_MAX + 1];
	bool has_since;
	uint64_t since_seq; /* Hello */
	char client[EV_CLIENT_MAX + 1]; /* Hello: the client's name, optional */
	char token[CTI_TOKEN_MAX + 1]; /* Hello: the client's token ([cti] tokens_file) */
	char dn[EV_DN_MAX + 1]; /* Monitor, StopMonitor, AgentLogin */
	char agent[AG_ID_MAX + 1]; /* Agent* */
	bool has_reason;
	char reason[AG_REASON_MAX + 1]; /* AgentNotReady, optional */
	uint64_t call; /* RouteCall, ReleaseCall */
	char target[CTI_TARGET_MAX + 1]; /* RouteCall */
};

/* Decodes one request line (LEN bytes, no newline).  0, or -EBADMSG with a
 * reason in WHY; R->ref is filled whenever the ref could be read, also on
 * error, so the Error can carry it. */
int cti_req_decode(const char *line, size_t len, struct cti_req *r, char *why, size_t whylen);

const char *cti_req_name(enum cti_req_type t);
/* Requests that change the pair's state: refused on a standby. */
bool cti_req_changes_state(enum cti_req_type t);

#endif

/* cticlient — a scriptable CTI client for the tests (docs/CTI.md).
 *
 *   cticlient [-c NAME] [-m DN]... [-a|--auto-route T[,T...]] [--ready AGENT:DN]
 *             [--since SEQ] [--no-read] [--rcvbuf BYTES] [-r PREFIX] [-t SEC]
 *             HOST:PORT [HOST:PORT]
 *
 * It connects to one node or to both nodes of a pair and acts as docs/CTI.md
 * says a client must across a failover. On each connection it sends its
 * Monitors and then Hello {client, since_seq?}. The Monitors go first
 * because a replay covers only the DNs monitored at the Hello. It sends
 * requests to the node whose Hello answer said "active" and remembers the
 * highest seq it has seen. On "NodeState active" it sends that node
 * Hello {since_seq: highest seen}. Once that node answers "active", the
 * client sends again every request that has had no answer, with the
 * original ref. An Error without seq that says "standby..." or "...send
 * Hello first" leaves its request unanswered, so the request goes again.
 * Any other line with the request's ref answers it. The client does not
 * reopen a closed connection.
 *
 * Output, one line each, flushed at once:
 *   N US LINE       a line received from node N (0 or 1); US is a monotonic
 *                   timestamp in microseconds
 *   - US WHAT ...   what the client did: connected N, sent N JSON, closed N
 *                   WHY, active N, retry N REF, autoroute T, SUMMARY ...
 * Commands on stdin (a FIFO the test writes to), one a line:
 *   req JSON        a request to the active node (held until a node
 *                   answers Hello as active). A "ref" is added when it has
 *                   none: PREFIX-N, where PREFIX is the pid by default, so
 *                   runs that share one client name never share a ref. A
 *                   ref already used is not awaited a second time: a
 *                   connection receives an answer once.
 *   raw N TEXT      TEXT and "\n", as they are, to node N
 *   hello N [SINCE] a Hello (since_seq SINCE) to node N
 *   monitor DN | stopmonitor DN     to every node
 *   login AGENT DN | ready AGENT | notready AGENT [REASON] | logout AGENT
 *   route CALL TARGET | release CALL          requests, as "req" sends them
 *   autoroute T[,T...] | autoroute off
 *   quit
 * Auto-route answers every RouteRequest with a RouteCall to the next
 * target of the list, in turn. "%d" in a target is replaced by a running
 * counter. Turning auto-route on also routes the calls already waiting
 * (a RouteRequest seen, but no Dialing or Released yet).
 *
 * At exit (quit, or after -t seconds, default 60, so a run is always
 * bounded) it prints:
 *   - US SUMMARY events=N first=F last=L gaps=G dups=D disorder=O
 *                answered=A unanswered=U errors=E routed=R
 * These count every line with a "seq" received on any connection:
 * dups = seqs received again; disorder = seqs lower than one received
 * before; gaps = seqs between first and last that never arrived. Dups and
 * disorder are faults by themselves. Gaps are not: a client receives only
 * the events of the DNs it monitors and its own answers. So gaps=0 means
 * "nothing lost" only for a client that monitors every DN the events of
 * the range are filed under and is the only one making requests (e.g. the
 * one monitor of a routing point whose calls go to SIP URIs).
 *
 * --no-read: it sends its Monitors and Hello, then never reads (with
 * --rcvbuf, its receive buffer is small). It still takes commands. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NODES 2
#define INBUF (1u << 20)
#define MAX_LIST 64
#define MAX_Q 4096
#define SEEN_MAX (1ull << 26)

struct conn {
	int fd; /* -1: closed */
	struct sockaddr_storage addr;
	socklen_t alen;
	char *in;
	size_t inlen;
	bool active; /* its Hello answer said active */
};

struct pend { /* a request; kept once answered (done) */
	bool done;
	char ref[160];
	char *line;
	struct pend *next;
};

static struct conn conns[NODES];
static int nconns, nmon, ntargets, rcvbuf, nqueued;
static const char *client = "cticlient", *mons[MAX_LIST], *ready_arg;
static char prefix[64], *targets[MAX_LIST];
static bool no_read;
static long long since = -1;
static unsigned long refn, routen;
static struct pend *pending;
static uint64_t queued[MAX_Q];
static uint8_t *seen;
static uint64_t seen_cap, nev, first, last, dups, disorder, answered, errors, routed;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;

	printf("- %llu ", (unsigned long long)now_us());
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static int parse_addr(const char *s, struct conn *c)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST }, *ai;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - s) - (s[0] == '[') * 2,
		 s + (s[0] == '['));
	if (getaddrinfo(host, colon + 1, &hints, &ai))
		return -1;
	memcpy(&c->addr, ai->ai_addr, ai->ai_addrlen);
	c->alen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static int dial(struct conn *c)
{
	struct timeval tv = { 1, 0 };
	int one = 1, fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* bounds connect() too */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (connect(fd, (const struct sockaddr *)&c->addr, c->alen)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void conn_close(int i, const char *why)
{
	if (conns[i].fd < 0)
		return;
	close(conns[i].fd);
	conns[i].fd = -1;
	conns[i].active = false;
	conns[i].inlen = 0;
	note("closed %d %s", i, why);
}

/* TEXT and its newline in one write (no Nagle delay between them). */
static void send_text(int i, const char *text)
{
	size_t n = strlen(text), off = 0;
	char *b;

	if (conns[i].fd < 0 || !(b = malloc(n + 1)))
		return;
	note("sent %d %s", i, text);
	memcpy(b, text, n);
	b[n++] = '\n';
	while (off < n) {
		ssize_t w = send(conns[i].fd, b + off, n - off, MSG_NOSIGNAL);

		if (w <= 0) {
			conn_close(i, "write failed");
			break;
		}
		off += (size_t)w;
	}
	free(b);
}

/* Sends O (stolen) to node I. */
static void send_obj(int i, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	if (s)
		send_text(i, s);
	free(s);
	json_decref(o);
}

static int active_node(void)
{
	for (int i = 0; i < nconns; i++)
		if (conns[i].fd >= 0 && conns[i].active)
			return i;
	return -1;
}

static void hello(int i, long long since_seq)
{
	json_t *o = json_pack("{s:s, s:s, s:s}", "req", "Hello", "client", client, "ref", "hello");

	if (since_seq >= 0)
		json_object_set_new(o, "since_seq", json_integer(since_seq));
	send_obj(i, o);
}

static char *ref_text(json_t *o)
{
	json_t *r = json_object_get(o, "ref");

	return r ? json_dumps(r, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

/* A request (stolen), with a ref added when it has none, remembered until
 * answered. Sent now to the active node, or to the next node that answers
 * Hello as active. */
static void request(json_t *o)
{
	char *line, *r, ref[96];
	int a = active_node();

	if (!json_object_get(o, "ref")) {
		snprintf(ref, sizeof(ref), "%s-%lu", prefix, ++refn);
		json_object_set_new(o, "ref", json_string(ref));
	}
	line = json_dumps(o, JSON_COMPACT);
	r = ref_text(o);
	if (line && r) {
		struct pend *p, **t = &pending;

		while (*t && strcmp((*t)->ref, r))
			t = &(*t)->next;
		if (!*t && (p = calloc(1, sizeof(*p)))) {
			snprintf(p->ref, sizeof(p->ref), "%s", r);
			p->line = strdup(line);
			*t = p;
		}
	}
	if (line && a >= 0)
		send_text(a, line);
	free(line);
	free(r);
	json_decref(o);
}

static void route(uint64_t call)
{
	const char *t = targets[routen % (unsigned long)ntargets], *d = strstr(t, "%d");
	char target[600];

	if (d)
		snprintf(target, sizeof(target), "%.*s%lu%s", (int)(d - t), t, routen, d + 2);
	else
		snprintf(target, sizeof(target), "%s", t);
	routen++;
	routed++;
	request(json_pack("{s:s, s:I, s:s}", "req", "RouteCall", "call", (json_int_t)call, "target",
			  target));
}

static void route_waiting(void)
{
	for (int k = 0; ntargets && k < nqueued; k++)
		route(queued[k]);
	if (ntargets)
		nqueued = 0;
}

static void set_targets(char *list)
{
	char *save = NULL;

	ntargets = 0;
	for (char *t = strtok_r(list, ",", &save); t && ntargets < MAX_LIST;
	     t = strtok_r(NULL, ",", &save))
		targets[ntargets++] = strdup(t);
}

static void count_seq(uint64_t seq)
{
	if (!nev++ || seq < first)
		first = seq;
	if (seq < last)
		disorder++;
	if (seq > last)
		last = seq;
	if (seq >= SEEN_MAX)
		return;
	if (seq >= seen_cap) {
		uint64_t cap = seen_cap ? seen_cap : 65536;
		uint8_t *p;

		while (cap <= seq)
			cap *= 2;
		if (!(p = realloc(seen, cap)))
			return;
		memset(p + seen_cap, 0, cap - seen_cap);
		seen = p;
		seen_cap = cap;
	}
	dups += seen[seq];
	seen[seq] = 1;
}

static void on_answer(json_t *o)
{
	const char *reason = json_string_value(json_object_get(o, "reason"));
	char *r = ref_text(o);

	for (struct pend *p = pending; r && p; p = p->next) {
		if (strcmp(p->ref, r) || p->done)
			continue;
		if (!json_object_get(o, "seq") && reason &&
		    (!strncmp(reason, "standby", 7) || strstr(reason, "send Hello first")))
			break; /* not carried out: it goes again to the active node */
		p->done = true;
		answered++;
		break;
	}
	free(r);
}

/* Node I answered Hello as active: it takes the requests from now on. */
static void became_active(int i)
{
	note("active %d", i);
	for (int k = 0; k < nconns; k++)
		conns[k].active = k == i;
	for (struct pend *p = pending; p; p = p->next)
		if (!p->done) {
			note("retry %d %s", i, p->ref);
			send_text(i, p->line);
		}
	if (ready_arg) {
		const char *dn = strchr(ready_arg, ':');
		char agent[128];

		snprintf(agent, sizeof(agent), "%.*s", (int)(dn - ready_arg), ready_arg);
		request(json_pack("{s:s, s:s, s:s}", "req", "AgentLogin", "agent", agent, "dn",
				  dn + 1));
		request(json_pack("{s:s, s:s}", "req", "AgentReady", "agent", agent));
		ready_arg = NULL;
	}
	route_waiting();
}

static void on_line(int i, char *line)
{
	json_t *o = json_loads(line, 0, NULL), *seq;
	const char *ev, *state, *call_s;
	uint64_t call;

	printf("%d %llu %s\n", i, (unsigned long long)now_us(), line);
	if (!json_is_object(o)) {
		json_decref(o);
		return;
	}
	ev = json_string_value(json_object_get(o, "event"));
	state = json_string_value(json_object_get(o, "state"));
	call_s = json_string_value(json_object_get(o, "call"));
	call = call_s ? strtoull(call_s, NULL, 10) : 0;
	if (json_is_integer(seq = json_object_get(o, "seq")))
		count_seq((uint64_t)json_integer_value(seq));
	errors += ev && !strcmp(ev, "Error");
	if (json_object_get(o, "ref"))
		on_answer(o);
	if (!ev && state && json_object_get(o, "last_seq")) { /* a Hello answer */
		conns[i].active = false;
		if (!strcmp(state, "active"))
			became_active(i);
	} else if (ev && !strcmp(ev, "NodeState") && state) {
		conns[i].active = false;
		if (!strcmp(state, "active"))
			hello(i, (long long)last); /* the retries follow its answer */
	} else if (ev && !strcmp(ev, "RouteRequest") && call) {
		if (ntargets)
			route(call);
		else if (nqueued < MAX_Q)
			queued[nqueued++] = call;
	} else if (ev && call && (!strcmp(ev, "Dialing") || !strcmp(ev, "Released"))) {
		for (int k = 0; k < nqueued; k++)
			if (queued[k] == call)
				queued[k--] = queued[--nqueued];
	}
	json_decref(o);
}

static void conn_read(int i)
{
	struct conn *c = &conns[i];
	ssize_t n = recv(c->fd, c->in + c->inlen, INBUF - c->inlen, 0);
	char *nl, *p = c->in;

	if (n <= 0) {
		conn_close(i, n ? strerror(errno) : "EOF");
		return;
	}
	c->inlen += (size_t)n;
	while ((nl = memchr(p, '\n', c->inlen - (size_t)(p - c->in)))) {
		*nl = '\0';
		on_line(i, p);
		p = nl + 1;
	}
	c->inlen -= (size_t)(p - c->in);
	memmove(c->in, p, c->inlen);
	if (c->inlen == INBUF)
		conn_close(i, "line too long");
}

/* One command from stdin; false: quit. */
static bool command(char *line)
{
	char *arg = line + strcspn(line, " "), *a2;
	int node;
	json_t *o;

	if (*arg)
		*arg++ = '\0';
	a2 = arg + strcspn(arg, " ");
	a2 = *a2 ? a2 + 1 : NULL; /* the rest of the line */
	node = atoi(arg);
	if (!strcmp(line, "quit"))
		return false;
	if (!strcmp(line, "req")) {
		if (json_is_object(o = json_loads(arg, 0, NULL)))
			request(o);
		else
			note("error bad JSON: %s", arg), json_decref(o);
	} else if (!strcmp(line, "raw") && a2 && node >= 0 && node < nconns) {
		send_text(node, a2);
	} else if (!strcmp(line, "hello") && node >= 0 && node < nconns) {
		hello(node, a2 ? atoll(a2) : -1);
	} else if ((!strcmp(line, "monitor") || !strcmp(line, "stopmonitor")) && *arg) {
		for (int i = 0; i < nconns; i++)
			send_obj(i,
				 json_pack("{s:s, s:s}", "req",
					   line[0] == 'm' ? "Monitor" : "StopMonitor", "dn", arg));
	} else if (!strcmp(line, "login") && a2) {
		*strchrnul(arg, ' ') = '\0';
		request(json_pack("{s:s, s:s, s:s}", "req", "AgentLogin", "agent", arg, "dn", a2));
	} else if (!strcmp(line, "notready") && *arg) {
		o = json_pack("{s:s, s:s}", "req", "AgentNotReady", "agent", strtok(arg, " "));
		if (a2)
			json_object_set_new(o, "reason", json_string(a2));
		request(o);
	} else if ((!strcmp(line, "ready") || !strcmp(line, "logout")) && *arg) {
		request(json_pack("{s:s, s:s}", "req",
				  line[0] == 'r' ? "AgentReady" : "AgentLogout", "agent", arg));
	} else if (!strcmp(line, "route") && a2) {
		*strchrnul(arg, ' ') = '\0';
		request(json_pack("{s:s, s:s, s:s}", "req", "RouteCall", "call", arg, "target",
				  a2));
	} else if (!strcmp(line, "release") && *arg) {
		request(json_pack("{s:s, s:s}", "req", "ReleaseCall", "call", arg));
	} else if (!strcmp(line, "autoroute") && *arg) {
		note("autoroute %s", arg);
		if (strcmp(arg, "off"))
			set_targets(arg);
		else
			ntargets = 0;
		route_waiting();
	} else if (*line) {
		note("error unknown command: %s", line);
	}
	return true;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "auto-route", 1, 0, 'a' }, { "ready", 1, 0, 'y' },  { "since", 1, 0, 's' },
		{ "no-read", 0, 0, 'n' },    { "rcvbuf", 1, 0, 'b' }, { 0, 0, 0, 0 },
	};
	int opt;
	double secs = 60;
	uint64_t deadline, distinct = 0, unanswered = 0;
	bool in_open = true, run = true;
	char cmd[16384];
	size_t cmdlen = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	snprintf(prefix, sizeof(prefix), "%d", (int)getpid());
	while ((opt = getopt_long(argc, argv, "c:m:t:r:a:", lo, NULL)) != -1) {
		if (opt == 'c')
			client = optarg;
		else if (opt == 'm' && nmon < MAX_LIST)
			mons[nmon++] = optarg;
		else if (opt == 't')
			secs = atof(optarg);
		else if (opt == 'r')
			snprintf(prefix, sizeof(prefix), "%s", optarg);
		else if (opt == 'a')
			set_targets(optarg);
		else if (opt == 'y')
			ready_arg = strchr(optarg, ':') ? optarg : NULL;
		else if (opt == 's')
			since = atoll(optarg);
		else if (opt == 'n')
			no_read = true;
		else if (opt == 'b')
			rcvbuf = atoi(optarg);
		else if (opt != 'm')
			return 2;
	}
	if (optind >= argc || argc - optind > NODES || secs <= 0) {
		fprintf(stderr, "usage: see the comment at the top of tests/tools/cticlient.c\n");
		return 2;
	}
	deadline = now_us() + (uint64_t)(secs * 1e6);
	for (; optind < argc; optind++, nconns++) {
		conns[nconns].fd = -1;
		conns[nconns].in = malloc(INBUF);
		if (!conns[nconns].in || parse_addr(argv[optind], &conns[nconns])) {
			fprintf(stderr, "cticlient: bad address %s\n", argv[optind]);
			return 2;
		}
	}
	for (int i = 0; i < nconns; i++) {
		if ((conns[i].fd = dial(&conns[i])) < 0) {
			note("closed %d connect: %s", i, strerror(errno));
			continue;
		}
		note("connected %d", i);
		for (int k = 0; k < nmon; k++)
			send_obj(i, json_pack("{s:s, s:s}", "req", "Monitor", "dn", mons[k]));
		hello(i, since);
	}
	while (run && now_us() < deadline) {
		struct pollfd p[NODES + 1] = { { in_open ? 0 : -1, POLLIN, 0 } };
		ssize_t n;
		char *nl, *s = cmd;

		for (int i = 0; i < nconns; i++)
			p[i + 1] = (struct pollfd){ no_read ? -1 : conns[i].fd, POLLIN, 0 };
		if (poll(p, (nfds_t)nconns + 1, (int)((deadline - now_us()) / 1000) + 1) < 0 &&
		    errno != EINTR)
			break;
		for (int i = 0; i < nconns; i++)
			if (p[i + 1].revents && conns[i].fd >= 0)
				conn_read(i);
		if (!p[0].revents)
			continue;
		if ((n = read(0, cmd + cmdlen, sizeof(cmd) - 1 - cmdlen)) <= 0) {
			in_open = false; /* no more commands; -t ends the run */
			continue;
		}
		cmdlen += (size_t)n;
		while (run && (nl = memchr(s, '\n', cmdlen - (size_t)(s - cmd)))) {
			*nl = '\0';
			run = command(s);
			s = nl + 1;
		}
		cmdlen -= (size_t)(s - cmd);
		memmove(cmd, s, cmdlen);
		if (cmdlen == sizeof(cmd) - 1)
			cmdlen = 0; /* a command that long is none */
	}
	for (uint64_t s = first; nev && s <= last && s < seen_cap; s++)
		distinct += seen[s];
	for (struct pend *p = pending; p; p = p->next)
		unanswered += !p->done;
	note("SUMMARY events=%llu first=%llu last=%llu gaps=%llu dups=%llu disorder=%llu "
	     "answered=%llu unanswered=%llu errors=%llu routed=%llu",
	     (unsigned long long)nev, (unsigned long long)first, (unsigned long long)last,
	     (unsigned long long)(nev ? last - first + 1 - distinct : 0), (unsigned long long)dups,
	     (unsigned long long)disorder, (unsigned long long)answered,
	     (unsigned long long)unanswered, (unsigned long long)errors,
	     (unsigned long long)routed);
	return 0;
}

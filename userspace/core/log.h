/* One logging layer for the whole daemon: pr_err/pr_warn/pr_info/pr_debug over
 * one printf-checked function; libbpf's messages are routed through it too. */
#ifndef SIPHA_LOG_H
#define SIPHA_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level {
	LOG_ERR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG
};

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* Parses "err", "warn", "info" or "debug"; returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
void log_set_ident(const char *ident);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A warning that a flood would repeat thousands of times a second (a limit
 * reached, a connection refused): said at most once a second per struct
 * log_rl (one for each limit), the first time at once, with how many were
 * held back since the last one said.  NOW_MS is the caller's clock (the
 * timer wheel's, the loop's).  True when it was said. */
struct log_rl {
	uint64_t next_ms; /* said again from then on */
	uint64_t held; /* held back since the last one said */
};
bool log_warn_rl(struct log_rl *rl, uint64_t now_ms, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define pr_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define pr_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define pr_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define pr_debug(...)                                    \
	do {                                             \
		if (log_get_level() >= LOG_DEBUG)        \
			log_msg(LOG_DEBUG, __VA_ARGS__); \
	} while (0)

#endif

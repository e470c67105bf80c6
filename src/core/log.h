/*
 * log - one line per event on stderr, "LEVEL: text", in a form admins grep.
 * log_fatal is for start-up and configuration only.
 */
#ifndef COEX_LOG_H
#define COEX_LOG_H

#define LOG_FMT __attribute__((format(printf, 1, 2)))

/* log_set_prefix - program name put before every line (borrowed, must outlive logging) */
void log_set_prefix(const char *prefix);
void log_info(const char *fmt, ...) LOG_FMT;
void log_warn(const char *fmt, ...) LOG_FMT;
void log_error(const char *fmt, ...) LOG_FMT;
/* log_fatal - log and exit(1); start-up and configuration only */
void log_fatal(const char *fmt, ...) LOG_FMT __attribute__((noreturn));

#endif

/*
 * log - stderr logging with a program prefix.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const char *log_prefix = "coex";

/* log_set_prefix - name printed before each line */
void log_set_prefix(const char *prefix)
{
    log_prefix = prefix;
}

static void log_vline(const char *level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void log_vline(const char *level, const char *fmt, va_list ap)
{
    char line[2048];
    vsnprintf(line, sizeof(line), fmt, ap);
    fprintf(stderr, "%s: %s%s\n", log_prefix, level, line);
}

void log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vline("", fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vline("warning: ", fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vline("error: ", fmt, ap);
    va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vline("fatal: ", fmt, ap);
    va_end(ap);
    exit(1);
}

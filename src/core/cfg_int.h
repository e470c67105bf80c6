/*
 * cfg_int - what cfg.c (the file, global keys, [connector] sections, the
 * whole-file checks) and cfg_route.c ([route] sections) share. Only
 * src/core/cfg*.c include it.
 */
#ifndef COEX_CFG_INT_H
#define COEX_CFG_INT_H

#include <stddef.h>

#include "cfg.h"

#define LIMIT_CFG_LIST 256

struct cfg_parser {
    struct coex_config *cfg; /* being filled; borrowed */
    const char *file;        /* for messages; borrowed */
    unsigned long line;
    char *err; /* "FILE:LINE: reason"; caller's buffer */
    size_t errlen;
    struct cfg_connector *connector; /* current section, or NULL */
    struct cfg_route *route;
};

/* cfg_fail - "FILE:LINE: reason" into p->err; returns -1 */
int cfg_fail(struct cfg_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* cfg_strip - trim blanks in place; returns a pointer into s */
char *cfg_strip(char *s);
/* cfg_set_str - replace *slot (caller owns) with a copy of value (borrowed) */
void cfg_set_str(char **slot, const char *value);
/* cfg_parse_long - a number in [min, max]; duration: s/m/h/d units, else k/M */
int cfg_parse_long(struct cfg_parser *p, const char *key, const char *value, long min, long max,
                   int duration, long *out);
/* cfg_parse_bool - yes/no and the usual synonyms */
int cfg_parse_bool(struct cfg_parser *p, const char *key, const char *value, int *out);
/* cfg_split_list - split value in place at commas and blanks into items[0..max); count or -1 */
int cfg_split_list(struct cfg_parser *p, char *value, char **items, size_t max);
/* cfg_parse_hostport - "127.0.0.1:2525", "[::1]:2525"; *host is the caller's; 0 or -1 */
int cfg_parse_hostport(const char *value, char **host, int *port);
/* cfg_route_key - one key of a [route] section (cfg_route.c) */
int cfg_route_key(struct cfg_parser *p, struct cfg_route *r, const char *key, char *value);
/* cfg_route_cleanup - free what cfg_route_key allocated (cfg_route.c) */
void cfg_route_cleanup(struct cfg_route *r);

#endif

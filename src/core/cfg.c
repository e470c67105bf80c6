/*
 * cfg - configuration file parser: global keys, [connector NAME] sections,
 * then whole-file checks; [route NAME] keys are in cfg_route.c. See
 * docs/configuration.md.
 */
#include "cfg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cfg_int.h"
#include "util.h"

#define LIMIT_CFG_LINE 4096

/*
 * The embedded default: one connector on 127.0.0.1:2525 for the loopback
 * network, rewriting to-source into .eml files in var/outbox.
 */
static const char cfg_embedded[] = "# embedded default\n"
                                   "hostname = coex.localhost\n"
                                   "directory = var/coex.db\n"
                                   "spool = var/spool\n"
                                   "subaddress_separators = +\n"
                                   "[connector local]\n"
                                   "listen = 127.0.0.1:2525\n"
                                   "networks = 127.0.0.0/8, ::1/128\n"
                                   "route = outbound\n"
                                   "[route outbound]\n"
                                   "direction = to-source\n"
                                   "next_hop = file:var/outbox\n";

int cfg_fail(struct cfg_parser *p, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "%s:%lu: %s", p->file, p->line, msg);
    return -1;
}

/* cfg_strip - trim blanks in place */
char *cfg_strip(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len &&
           (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' || s[len - 1] == '\n'))
        s[--len] = '\0';
    return s;
}

void cfg_set_str(char **slot, const char *value)
{
    free(*slot);
    *slot = xstrdup(value);
}

/* cfg_parse_long - a whole number in [min, max], with an optional unit for durations */
int cfg_parse_long(struct cfg_parser *p, const char *key, const char *value, long min, long max,
                   int duration, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (end == value || errno)
        return cfg_fail(p, "'%s' needs a number, not '%s'", key, value);
    if (duration && *end) {
        long unit = 0;
        if (strcmp(end, "s") == 0)
            unit = 1;
        else if (strcmp(end, "m") == 0)
            unit = 60;
        else if (strcmp(end, "h") == 0)
            unit = 3600;
        else if (strcmp(end, "d") == 0)
            unit = 86400;
        if (unit == 0 || v > LONG_MAX / unit)
            return cfg_fail(p, "'%s': unknown unit in '%s' (use s, m, h or d)", key, value);
        v *= unit;
        end += strlen(end);
    } else if (!duration) {
        long unit = 1;
        if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0)
            unit = 1024;
        else if (strcmp(end, "M") == 0)
            unit = 1024L * 1024;
        else if (*end)
            unit = 0;
        if (unit == 0 || v > LONG_MAX / unit)
            return cfg_fail(p, "'%s' needs a number, not '%s'", key, value);
        v *= unit;
        end += strlen(end);
    }
    if (*end || v < min || v > max)
        return cfg_fail(p, "'%s' must be between %ld and %ld, not '%s'", key, min, max, value);
    *out = v;
    return 0;
}

int cfg_parse_bool(struct cfg_parser *p, const char *key, const char *value, int *out)
{
    int v = util_parse_bool(value, strlen(value));
    if (v < 0)
        return cfg_fail(p, "'%s' must be yes or no, not '%s'", key, value);
    *out = v;
    return 0;
}

/* cfg_split_list - split "a, b c" at commas and blanks; returns count or -1 */
int cfg_split_list(struct cfg_parser *p, char *value, char **items, size_t max)
{
    size_t n = 0;
    for (char *s = value; *s;) {
        while (*s == ',' || *s == ' ' || *s == '\t')
            s++;
        if (*s == '\0')
            break;
        char *start = s;
        while (*s && *s != ',' && *s != ' ' && *s != '\t')
            s++;
        if (*s)
            *s++ = '\0';
        if (n == max)
            return cfg_fail(p, "more than %zu items in a list", max);
        items[n++] = start;
    }
    return (int)n;
}

/* cfg_parse_network - CIDR or a single address */
int cfg_parse_network(const char *text, struct cfg_network *out)
{
    char addr[INET6_ADDRSTRLEN + 8];
    const char *slash = strchr(text, '/');
    size_t len = slash ? (size_t)(slash - text) : strlen(text);
    if (len >= sizeof(addr))
        return -1;
    memcpy(addr, text, len);
    addr[len] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, addr, out->addr) == 1) {
        out->family = AF_INET;
        out->prefix = 32;
    } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
        out->family = AF_INET6;
        out->prefix = 128;
    } else
        return -1;
    if (slash) {
        char *end;
        long prefix = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || prefix < 0 || prefix > out->prefix)
            return -1;
        out->prefix = (int)prefix;
    }
    /* host bits must be zero: "10.0.0.1/8" is a typo more often than not */
    int bytes = out->family == AF_INET ? 4 : 16;
    for (int bit = out->prefix; bit < bytes * 8; bit++)
        if (out->addr[bit / 8] & (0x80 >> (bit % 8)))
            return -1;
    return 0;
}

/* cfg_network_match - prefix comparison; IPv4-mapped IPv6 clients match IPv4 networks */
int cfg_network_match(const struct cfg_network *net, int family, const unsigned char *addr)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET6 && net->family == AF_INET && memcmp(addr, mapped, 12) == 0) {
        family = AF_INET;
        addr += 12;
    }
    if (family != net->family)
        return 0;
    int full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(addr, net->addr, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (addr[full] & mask) == (net->addr[full] & mask);
}

/* cfg_parse_hostport - "127.0.0.1:2525", "[::1]:2525" */
int cfg_parse_hostport(const char *value, char **host, int *port)
{
    const char *colon;
    size_t hlen;
    const char *h = value;
    if (*value == '[') {
        const char *close = strchr(value, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        h = value + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(value, ':');
        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - value);
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (hlen == 0 || end == colon + 1 || *end || p < 1 || p > 65535)
        return -1;
    *host = xstrndup(h, hlen);
    *port = (int)p;
    return 0;
}

/* cfg_connector_key - one key of a [connector] section */
static int cfg_connector_key(struct cfg_parser *p, struct cfg_connector *c, const char *key,
                             char *value)
{
    char *items[LIMIT_CFG_LIST];
    int n;
    if (strcmp(key, "listen") == 0) {
        free(c->listen_host);
        c->listen_host = NULL;
        if (cfg_parse_hostport(value, &c->listen_host, &c->listen_port) < 0)
            return cfg_fail(p, "listen must be ADDRESS:PORT or [IPV6]:PORT, not '%s'", value);
        struct cfg_network probe;
        if (cfg_parse_network(c->listen_host, &probe) < 0)
            return cfg_fail(p, "listen needs a numeric address, not '%s'", c->listen_host);
        return 0;
    }
    if (strcmp(key, "networks") == 0) {
        if ((n = cfg_split_list(p, value, items, LIMIT_CFG_LIST)) < 0)
            return -1;
        free(c->networks);
        c->networks = xcalloc((size_t)n + 1, sizeof(*c->networks));
        c->network_count = 0;
        for (int i = 0; i < n; i++)
            if (cfg_parse_network(items[i], &c->networks[c->network_count++]) < 0)
                return cfg_fail(p, "bad network '%s' (want ADDRESS/PREFIX with host bits zero)",
                                items[i]);
        return 0;
    }
    if (strcmp(key, "starttls") == 0) {
        if (strcmp(value, "off") == 0)
            c->starttls = CFG_STARTTLS_OFF;
        else if (strcmp(value, "offer") == 0)
            c->starttls = CFG_STARTTLS_OFFER;
        else if (strcmp(value, "require") == 0)
            c->starttls = CFG_STARTTLS_REQUIRE;
        else
            return cfg_fail(p, "starttls must be off, offer or require, not '%s'", value);
        return 0;
    }
    if (strcmp(key, "tls_cert") == 0)
        return cfg_set_str(&c->tls_cert, value), 0;
    if (strcmp(key, "tls_key") == 0)
        return cfg_set_str(&c->tls_key, value), 0;
    if (strcmp(key, "tls_ca") == 0)
        return cfg_set_str(&c->tls_ca, value), 0;
    if (strcmp(key, "client_cert_names") == 0) {
        if ((n = cfg_split_list(p, value, items, LIMIT_CFG_LIST)) < 0)
            return -1;
        for (size_t i = 0; i < c->client_cert_name_count; i++)
            free(c->client_cert_names[i]);
        free(c->client_cert_names);
        c->client_cert_names = xcalloc((size_t)n + 1, sizeof(char *));
        c->client_cert_name_count = (size_t)n;
        for (int i = 0; i < n; i++)
            c->client_cert_names[i] = xstrdup(items[i]);
        return 0;
    }
    if (strcmp(key, "route") == 0)
        return cfg_set_str(&c->route_name, value), 0;
    return cfg_fail(p, "unknown key '%s' in [connector %s]", key, c->name);
}

static const struct {
    const char *key;
    size_t off;
    long min, max;
    int duration;
} cfg_long_keys[] = {
#define L(k, lo, hi, d)                                                                            \
    {                                                                                              \
#k, offsetof(struct coex_config, k), lo, hi, d                                             \
    }
    L(directory_poll, 1, 3600, 1),
    L(max_connections, 1, 1000000, 0),
    L(max_connections_per_ip, 1, 1000000, 0),
    L(message_size_limit, 1024, 2147483647L, 0),
    L(max_recipients, 1, 100000, 0),
    L(header_size_limit, 1024, 64L << 20, 0),
    L(command_timeout, 1, 86400, 1),
    L(data_timeout, 1, 86400, 1),
    L(hop_limit, 1, 1000, 0),
    L(shutdown_timeout, 0, 3600, 1),
    L(dkim_workers, 1, CFG_MAX_DKIM_WORKERS, 0),
    L(dns_timeout, 1, 60, 1),
#undef L
};

/* cfg_global_key - a key before the first section */
static int cfg_global_key(struct cfg_parser *p, const char *key, const char *value)
{
    struct coex_config *cfg = p->cfg;
    char **str = NULL;
    if (strcmp(key, "hostname") == 0)
        str = &cfg->hostname;
    else if (strcmp(key, "directory") == 0)
        str = &cfg->directory;
    else if (strcmp(key, "spool") == 0)
        str = &cfg->spool;
    else if (strcmp(key, "subaddress_separators") == 0)
        str = &cfg->subaddress_separators;
    else if (strcmp(key, "admin_listen") == 0)
        str = &cfg->admin_listen;
    else if (strcmp(key, "dns_resolver") == 0)
        str = &cfg->dns_resolver;
    else if (strcmp(key, "authserv_id") == 0)
        str = &cfg->authserv_id; /* checked by signpool_keys_load, with the rule arc_seal applies */
    if (str) {
        cfg_set_str(str, value);
        return 0;
    }
    for (size_t i = 0; i < ARRAY_LEN(cfg_long_keys); i++)
        if (strcmp(key, cfg_long_keys[i].key) == 0)
            return cfg_parse_long(p, key, value, cfg_long_keys[i].min, cfg_long_keys[i].max,
                                  cfg_long_keys[i].duration,
                                  (long *)((char *)cfg + cfg_long_keys[i].off));
    return cfg_fail(p, "unknown key '%s'", key);
}

/* cfg_section - "[connector NAME]" or "[route NAME]" */
static int cfg_section(struct cfg_parser *p, char *s)
{
    struct coex_config *cfg = p->cfg;
    size_t len = strlen(s);
    if (s[len - 1] != ']')
        return cfg_fail(p, "section header must end with ']'");
    s[len - 1] = '\0';
    char *kind = cfg_strip(s + 1);
    char *name = kind + strcspn(kind, " \t");
    if (*name)
        *name++ = '\0';
    name = cfg_strip(name);
    if (*name == '\0' || strpbrk(name, " \t"))
        return cfg_fail(p, "section needs one name: [connector NAME] or [route NAME]");
    p->connector = NULL;
    p->route = NULL;
    if (strcmp(kind, "connector") == 0) {
        for (size_t i = 0; i < cfg->connector_count; i++)
            if (strcmp(cfg->connectors[i].name, name) == 0)
                return cfg_fail(p, "connector '%s' is defined twice", name);
        cfg->connectors =
            xrealloc(cfg->connectors, (cfg->connector_count + 1) * sizeof(*cfg->connectors));
        struct cfg_connector *c = &cfg->connectors[cfg->connector_count++];
        memset(c, 0, sizeof(*c));
        c->name = xstrdup(name);
        c->line = p->line;
        c->starttls = CFG_STARTTLS_OFF;
        p->connector = c;
        return 0;
    }
    if (strcmp(kind, "route") == 0) {
        if (cfg_find_route(cfg, name))
            return cfg_fail(p, "route '%s' is defined twice", name);
        cfg->routes = xrealloc(cfg->routes, (cfg->route_count + 1) * sizeof(*cfg->routes));
        struct cfg_route *r = &cfg->routes[cfg->route_count++];
        memset(r, 0, sizeof(*r));
        r->name = xstrdup(name);
        r->line = p->line;
        r->direction = CFG_TO_SOURCE;
        r->rewrite_rcpt = -1;
        r->dkim_verify = -1;
        r->tls_required = 1;
        r->tls_verify = 1;
        r->queue_lifetime = 5L * 86400;
        r->max_concurrency = 20;
        p->route = r;
        return 0;
    }
    return cfg_fail(p, "unknown section '[%s %s]' (connector or route)", kind, name);
}

/* cfg_parse - every line */
static int cfg_parse(struct cfg_parser *p, FILE *fp)
{
    char line[LIMIT_CFG_LINE];
    while (fgets(line, sizeof(line), fp)) {
        p->line++;
        if (strchr(line, '\n') == NULL && !feof(fp))
            return cfg_fail(p, "line longer than %d bytes", LIMIT_CFG_LINE - 2);
        char *s = cfg_strip(line);
        if (*s == '\0' || *s == '#')
            continue;
        if (*s == '[') {
            if (cfg_section(p, s) < 0)
                return -1;
            continue;
        }
        char *eq = strchr(s, '=');
        if (eq == NULL)
            return cfg_fail(p, "expected 'key = value'");
        *eq = '\0';
        char *key = cfg_strip(s), *value = cfg_strip(eq + 1);
        if (*value == '\0' && strcmp(key, "subaddress_separators") != 0)
            return cfg_fail(p, "'%s' needs a value", key);
        int rc = p->connector ? cfg_connector_key(p, p->connector, key, value)
                 : p->route   ? cfg_route_key(p, p->route, key, value)
                              : cfg_global_key(p, key, value);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int cfg_fail_at(struct cfg_parser *p, unsigned long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cfg_fail_at(struct cfg_parser *p, unsigned long line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    p->line = line;
    return cfg_fail(p, "%s", msg);
}

/* cfg_check - whole-file rules, reported at the section's line */
static int cfg_check(struct cfg_parser *p)
{
    struct coex_config *cfg = p->cfg;
    for (size_t i = 0; i < cfg->route_count; i++) {
        struct cfg_route *r = &cfg->routes[i];
        if (r->rewrite_rcpt < 0)
            r->rewrite_rcpt = r->direction == CFG_TO_TARGET;
        if (r->dkim_verify < 0)
            r->dkim_verify = r->arc_key.domain != NULL;
        else if (r->arc_key.domain && !r->dkim_verify)
            return cfg_fail_at(p, r->line,
                               "[route %s] arc_key needs dkim_verify: ARC seals what was verified",
                               r->name);
        if (r->next_hop == NULL)
            return cfg_fail_at(p, r->line, "[route %s] needs next_hop", r->name);
        if ((r->tls_cert == NULL) != (r->tls_key == NULL))
            return cfg_fail_at(p, r->line, "[route %s] needs both tls_cert and tls_key", r->name);
        if (r->retry_count == 0) {
            static const unsigned dflt[] = {60, 300, 900, 1800, 3600};
            r->retry = xcalloc(ARRAY_LEN(dflt), sizeof(*r->retry));
            memcpy(r->retry, dflt, sizeof(dflt));
            r->retry_count = ARRAY_LEN(dflt);
        }
    }
    for (size_t i = 0; i < cfg->connector_count; i++) {
        struct cfg_connector *c = &cfg->connectors[i];
        if (c->listen_host == NULL)
            return cfg_fail_at(p, c->line, "[connector %s] needs listen", c->name);
        if (c->network_count == 0)
            return cfg_fail_at(p, c->line, "[connector %s] needs networks (who may send)", c->name);
        if (c->route_name == NULL)
            return cfg_fail_at(p, c->line, "[connector %s] needs route", c->name);
        c->route = cfg_find_route(cfg, c->route_name);
        if (c->route == NULL)
            return cfg_fail_at(p, c->line, "[connector %s] names route '%s', which is not defined",
                               c->name, c->route_name);
        if (c->starttls != CFG_STARTTLS_OFF && (c->tls_cert == NULL || c->tls_key == NULL))
            return cfg_fail_at(p, c->line,
                               "[connector %s] offers STARTTLS: set tls_cert and tls_key", c->name);
        if (c->client_cert_name_count && c->starttls != CFG_STARTTLS_REQUIRE)
            return cfg_fail_at(
                p, c->line, "[connector %s] requires client certificates: set starttls = require",
                c->name);
        if (c->client_cert_name_count && c->tls_ca == NULL)
            return cfg_fail_at(p, c->line,
                               "[connector %s] requires client certificates: set tls_ca", c->name);
        for (size_t k = 0; k < i; k++)
            if (strcmp(cfg->connectors[k].listen_host, c->listen_host) == 0 &&
                cfg->connectors[k].listen_port == c->listen_port)
                return cfg_fail_at(p, c->line, "[connector %s] listens where another one does",
                                   c->name);
    }
    return 0;
}

/* cfg_defaults - values before the file is read */
static void cfg_defaults(struct coex_config *cfg)
{
    cfg->directory_poll = 2;
    cfg->max_connections = 1000;
    cfg->max_connections_per_ip = 100;
    cfg->message_size_limit = 35L << 20; /* Exchange Online's default */
    cfg->max_recipients = 500;
    cfg->header_size_limit = 1L << 20;
    cfg->command_timeout = 300; /* RFC 5321 §4.5.3.2: 5 minutes */
    cfg->data_timeout = 600;    /* 10 minutes for the terminating dot */
    cfg->hop_limit = 50;
    cfg->shutdown_timeout = 30;
    cfg->dkim_workers = 2;
    cfg->dns_timeout = 5;
}

/* cfg_load - file, default file or embedded default */
int cfg_load(const char *path, struct coex_config *cfg, char *err, size_t errlen)
{
    FILE *fp;
    memset(cfg, 0, sizeof(*cfg));
    cfg_defaults(cfg);
    if (path == NULL && access(CFG_DEFAULT_PATH, F_OK) == 0)
        path = CFG_DEFAULT_PATH;
    if (path == NULL) {
        fp = fmemopen((void *)cfg_embedded, sizeof(cfg_embedded) - 1, "r");
        cfg->source = xstrdup("(embedded default)");
    } else {
        fp = fopen(path, "r");
        cfg->source = xstrdup(path);
    }
    if (fp == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", cfg->source, strerror(errno));
        goto fail;
    }
    struct cfg_parser p = {cfg, cfg->source, 0, err, errlen, NULL, NULL};
    int rc = cfg_parse(&p, fp);
    fclose(fp);
    if (rc < 0 || cfg_check(&p) < 0)
        goto fail;
    if (cfg->hostname == NULL) {
        char host[256];
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        cfg->hostname = xstrdup(host);
    }
    if (cfg->authserv_id == NULL)
        cfg->authserv_id = xstrdup(cfg->hostname);
    if (cfg->directory == NULL)
        cfg->directory = xstrdup("var/coex.db");
    if (cfg->spool == NULL)
        cfg->spool = xstrdup("var/spool");
    if (cfg->subaddress_separators == NULL)
        cfg->subaddress_separators = xstrdup("+");
    return 0;
fail:
    cfg_cleanup(cfg);
    return -1;
}

struct cfg_route *cfg_find_route(const struct coex_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->route_count; i++)
        if (strcmp(cfg->routes[i].name, name) == 0)
            return &cfg->routes[i];
    return NULL;
}

/* cfg_cleanup - free everything */
void cfg_cleanup(struct coex_config *cfg)
{
    for (size_t i = 0; i < cfg->connector_count; i++) {
        struct cfg_connector *c = &cfg->connectors[i];
        free(c->name);
        free(c->listen_host);
        free(c->networks);
        free(c->tls_cert);
        free(c->tls_key);
        free(c->tls_ca);
        for (size_t k = 0; k < c->client_cert_name_count; k++)
            free(c->client_cert_names[k]);
        free(c->client_cert_names);
        free(c->route_name);
    }
    for (size_t i = 0; i < cfg->route_count; i++)
        cfg_route_cleanup(&cfg->routes[i]);
    free(cfg->connectors);
    free(cfg->routes);
    free(cfg->source);
    free(cfg->hostname);
    free(cfg->directory);
    free(cfg->spool);
    free(cfg->subaddress_separators);
    free(cfg->admin_listen);
    free(cfg->dns_resolver);
    free(cfg->authserv_id);
    memset(cfg, 0, sizeof(*cfg));
}

/*
 * cfg_route - the keys of a [route NAME] section: direction, next hop, TLS to
 * the next hop, retries, and DKIM signing (dkim_key, dkim_canon,
 * dkim_expire, dkim_remove_target_signatures). Key files are only named
 * here; signpool_keys_load reads and checks them. See docs/configuration.md.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg_int.h"
#include "util.h"

#define LIMIT_CFG_DKIM_NAME 255
#define CFG_DKIM_NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."

/* cfg_parse_next_hop - file:DIR, smtp:[host]:port, smtp:host, mx:DOMAIN */
static int cfg_parse_next_hop(struct cfg_parser *p, struct cfg_route *r, const char *value)
{
    free(r->hop_host);
    free(r->hop_dir);
    r->hop_host = r->hop_dir = NULL;
    cfg_set_str(&r->next_hop, value);
    if (strncmp(value, "file:", 5) == 0 && value[5]) {
        r->hop_kind = CFG_HOP_FILE;
        r->hop_dir = xstrdup(value + 5);
        return 0;
    }
    if (strncmp(value, "mx:", 3) == 0 && value[3]) {
        r->hop_kind = CFG_HOP_MX;
        r->hop_host = xstrdup(value + 3);
        r->hop_port = 25;
        return 0;
    }
    if (strncmp(value, "smtp:", 5) == 0 && value[5]) {
        const char *hp = value + 5;
        r->hop_kind = CFG_HOP_SMTP;
        r->hop_port = 25;
        if (strchr(hp, ':') && cfg_parse_hostport(hp, &r->hop_host, &r->hop_port) == 0)
            return 0;
        if (*hp == '[' && hp[strlen(hp) - 1] == ']') {
            r->hop_host = xstrndup(hp + 1, strlen(hp) - 2);
            return 0;
        }
        if (strchr(hp, ':') == NULL && strchr(hp, '[') == NULL) {
            r->hop_host = xstrdup(hp);
            return 0;
        }
    }
    return cfg_fail(p, "next_hop must be file:DIR, smtp:[HOST]:PORT or mx:DOMAIN, not '%s'", value);
}

static int cfg_parse_retry(struct cfg_parser *p, struct cfg_route *r, char *value)
{
    char *items[LIMIT_CFG_LIST];
    int n = cfg_split_list(p, value, items, LIMIT_CFG_LIST);
    if (n <= 0)
        return n < 0 ? -1 : cfg_fail(p, "retry_schedule needs at least one delay");
    free(r->retry);
    r->retry = xcalloc((size_t)n, sizeof(*r->retry));
    r->retry_count = 0;
    for (int i = 0; i < n; i++) {
        long v;
        if (cfg_parse_long(p, "retry_schedule", items[i], 1, 7L * 86400, 1, &v) < 0)
            return -1;
        r->retry[r->retry_count++] = (unsigned)v;
    }
    return 0;
}

/* cfg_dkim_name - 0 for a domain or selector of letters, digits, '-', '_', '.' */
static int cfg_dkim_name(const char *s)
{
    size_t len = strlen(s);
    int ok = len && len <= LIMIT_CFG_DKIM_NAME && s[0] != '.' && s[len - 1] != '.' &&
             strspn(s, CFG_DKIM_NAME_CHARS) == len;
    return ok ? 0 : -1;
}

/* cfg_canon - "relaxed" or "simple"; -1 for anything else */
static int cfg_canon(const char *s)
{
    return strcmp(s, "relaxed") == 0  ? CFG_CANON_RELAXED
           : strcmp(s, "simple") == 0 ? CFG_CANON_SIMPLE
                                      : -1;
}

/* cfg_lower - ASCII lower case in place */
static char *cfg_lower(char *s)
{
    for (char *c = s; *c; c++)
        *c = (char)util_lower((unsigned char)*c);
    return s;
}

/*
 * cfg_split_key_line - "DOMAIN SELECTOR FILE" (the file name may hold
 * blanks) into its parts, in place; the domain lower-cased
 */
static int cfg_split_key_line(struct cfg_parser *p, const char *key, char *value, char **domain,
                              char **selector, char **file)
{
    *domain = value;
    *selector = value + strcspn(value, " \t");
    if (**selector)
        *(*selector)++ = '\0';
    *selector = cfg_strip(*selector);
    *file = *selector + strcspn(*selector, " \t");
    if (**file)
        *(*file)++ = '\0';
    *file = cfg_strip(*file);
    if (**selector == '\0' || **file == '\0')
        return cfg_fail(p, "%s must be DOMAIN SELECTOR FILE", key);
    if (cfg_dkim_name(*domain) < 0 || cfg_dkim_name(*selector) < 0)
        return cfg_fail(p, "%s: bad domain or selector '%s %s'", key, *domain, *selector);
    cfg_lower(*domain);
    return 0;
}

/* cfg_set_key_line - fill k (empty) from the parts */
static void cfg_set_key_line(struct cfg_parser *p, struct cfg_dkim_key *k, const char *domain,
                             const char *selector, const char *file)
{
    k->domain = xstrdup(domain);
    k->selector = xstrdup(selector);
    k->file = xstrdup(file);
    k->line = p->line;
}

/* cfg_parse_dkim_key - one more signing key */
static int cfg_parse_dkim_key(struct cfg_parser *p, struct cfg_route *r, char *value)
{
    char *domain, *selector, *file;
    if (cfg_split_key_line(p, "dkim_key", value, &domain, &selector, &file) < 0)
        return -1;
    for (size_t i = 0; i < r->dkim_key_count; i++)
        if (strcmp(r->dkim_keys[i].domain, domain) == 0 &&
            strcasecmp(r->dkim_keys[i].selector, selector) == 0)
            return cfg_fail(p, "dkim_key: %s %s is configured twice", domain, selector);
    r->dkim_keys = xrealloc(r->dkim_keys, (r->dkim_key_count + 1) * sizeof(*r->dkim_keys));
    cfg_set_key_line(p, &r->dkim_keys[r->dkim_key_count++], domain, selector, file);
    return 0;
}

/* cfg_parse_arc_key - the one ARC sealing key of a route (RFC 8617: one seal per hop) */
static int cfg_parse_arc_key(struct cfg_parser *p, struct cfg_route *r, char *value)
{
    char *domain, *selector, *file;
    if (r->arc_key.domain)
        return cfg_fail(p, "arc_key is set twice in [route %s]: a hop adds one ARC set", r->name);
    if (cfg_split_key_line(p, "arc_key", value, &domain, &selector, &file) < 0)
        return -1;
    cfg_set_key_line(p, &r->arc_key, domain, selector, file);
    return 0;
}

/* cfg_route_dkim_key - the dkim_* keys of a [route] section */
static int cfg_route_dkim_key(struct cfg_parser *p, struct cfg_route *r, const char *key,
                              char *value)
{
    char *items[LIMIT_CFG_LIST];
    int n;
    if (strcmp(key, "dkim_key") == 0)
        return cfg_parse_dkim_key(p, r, value);
    if (strcmp(key, "dkim_verify") == 0)
        return cfg_parse_bool(p, key, value, &r->dkim_verify);
    if (strcmp(key, "dkim_canon") == 0) {
        /* "relaxed", "simple" or HEADER/BODY */
        char *body = strchr(value, '/');
        if (body)
            *body++ = '\0';
        int header_canon = cfg_canon(value), body_canon = cfg_canon(body ? body : value);
        if (header_canon < 0 || body_canon < 0)
            return cfg_fail(p, "dkim_canon must be relaxed, simple or HEADER/BODY of those");
        r->dkim_header_canon = (enum cfg_canon)header_canon;
        r->dkim_body_canon = (enum cfg_canon)body_canon;
        return 0;
    }
    if (strcmp(key, "dkim_expire") == 0)
        return cfg_parse_long(p, key, value, 60, 366L * 86400, 1, &r->dkim_expire);
    if (strcmp(key, "dkim_remove_target_signatures") == 0) {
        if ((n = cfg_split_list(p, value, items, LIMIT_CFG_LIST)) < 0)
            return -1;
        for (size_t i = 0; i < r->dkim_remove_count; i++)
            free(r->dkim_remove_domains[i]);
        free(r->dkim_remove_domains);
        r->dkim_remove_domains = xcalloc((size_t)n + 1, sizeof(char *));
        r->dkim_remove_count = (size_t)n;
        for (int i = 0; i < n; i++) {
            if (cfg_dkim_name(items[i]) < 0)
                return cfg_fail(p, "dkim_remove_target_signatures: bad domain '%s'", items[i]);
            r->dkim_remove_domains[i] = cfg_lower(xstrdup(items[i]));
        }
        return 0;
    }
    return cfg_fail(p, "unknown key '%s' in [route %s]", key, r->name);
}

/* cfg_route_key - one key of a [route] section */
int cfg_route_key(struct cfg_parser *p, struct cfg_route *r, const char *key, char *value)
{
    long v;
    if (strcmp(key, "direction") == 0) {
        if (strcmp(value, "to-source") == 0)
            r->direction = CFG_TO_SOURCE;
        else if (strcmp(value, "to-target") == 0)
            r->direction = CFG_TO_TARGET;
        else
            return cfg_fail(p, "direction must be to-source or to-target, not '%s'", value);
        if (r->rewrite_rcpt < 0)
            r->rewrite_rcpt = r->direction == CFG_TO_TARGET;
        return 0;
    }
    if (strcmp(key, "rewrite_rcpt") == 0)
        return cfg_parse_bool(p, key, value, &r->rewrite_rcpt);
    if (strcmp(key, "arc_key") == 0)
        return cfg_parse_arc_key(p, r, value);
    if (strncmp(key, "dkim_", 5) == 0)
        return cfg_route_dkim_key(p, r, key, value);
    if (strcmp(key, "next_hop") == 0)
        return cfg_parse_next_hop(p, r, value);
    if (strcmp(key, "tls_required") == 0)
        return cfg_parse_bool(p, key, value, &r->tls_required);
    if (strcmp(key, "tls_verify") == 0)
        return cfg_parse_bool(p, key, value, &r->tls_verify);
    if (strcmp(key, "tls_ca") == 0)
        return cfg_set_str(&r->tls_ca, value), 0;
    if (strcmp(key, "tls_cert") == 0)
        return cfg_set_str(&r->tls_cert, value), 0;
    if (strcmp(key, "tls_key") == 0)
        return cfg_set_str(&r->tls_key, value), 0;
    if (strcmp(key, "tls_verify_name") == 0)
        return cfg_set_str(&r->tls_verify_name, value), 0;
    if (strcmp(key, "retry_schedule") == 0)
        return cfg_parse_retry(p, r, value);
    if (strcmp(key, "queue_lifetime") == 0) {
        if (cfg_parse_long(p, key, value, 1, 60L * 86400, 1, &v) < 0)
            return -1;
        r->queue_lifetime = v;
        return 0;
    }
    if (strcmp(key, "max_concurrency") == 0) {
        if (cfg_parse_long(p, key, value, 1, 1000, 0, &v) < 0)
            return -1;
        r->max_concurrency = (int)v;
        return 0;
    }
    return cfg_fail(p, "unknown key '%s' in [route %s]", key, r->name);
}

/* cfg_route_cleanup - everything a route section allocated */
void cfg_route_cleanup(struct cfg_route *r)
{
    free(r->name);
    free(r->next_hop);
    free(r->hop_host);
    free(r->hop_dir);
    free(r->tls_ca);
    free(r->tls_cert);
    free(r->tls_key);
    free(r->tls_verify_name);
    free(r->retry);
    for (size_t k = 0; k < r->dkim_key_count; k++) {
        free(r->dkim_keys[k].domain);
        free(r->dkim_keys[k].selector);
        free(r->dkim_keys[k].file);
    }
    free(r->dkim_keys);
    free(r->arc_key.domain);
    free(r->arc_key.selector);
    free(r->arc_key.file);
    for (size_t k = 0; k < r->dkim_remove_count; k++)
        free(r->dkim_remove_domains[k]);
    free(r->dkim_remove_domains);
}

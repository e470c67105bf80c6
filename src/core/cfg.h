/*
 * cfg - the coex configuration file.
 *
 * Format: "key = value" lines, "#" comment lines, and sections
 * "[connector NAME]" / "[route NAME]" whose keys follow them. Global keys
 * come before the first section. Every key is documented in
 * docs/configuration.md. Errors name the file and line ("FILE:LINE: reason");
 * cfg_load also checks the whole (routes exist, TLS files are set where
 * needed, listeners are unique).
 *
 * Does not: open listeners, read certificates or touch the directory.
 */
#ifndef COEX_CFG_H
#define COEX_CFG_H

#include <stddef.h>

/* used when no file is given and it exists; else the embedded default */
#define CFG_DEFAULT_PATH "etc/coex.conf"
/* most DKIM signing threads (dkim_workers) */
#define CFG_MAX_DKIM_WORKERS 16

enum cfg_direction {
    CFG_TO_SOURCE,
    CFG_TO_TARGET,
};

enum cfg_starttls {
    CFG_STARTTLS_OFF,     /* not offered */
    CFG_STARTTLS_OFFER,   /* offered, plain text allowed */
    CFG_STARTTLS_REQUIRE, /* MAIL refused before STARTTLS */
};

enum cfg_hop_kind {
    CFG_HOP_FILE, /* file:DIR */
    CFG_HOP_SMTP, /* smtp:[host]:port or smtp:host:port */
    CFG_HOP_MX,   /* mx:DOMAIN */
};

/* header/body canonicalisation of DKIM signatures (RFC 6376 §3.4) */
enum cfg_canon {
    CFG_CANON_RELAXED,
    CFG_CANON_SIMPLE,
};

/* one "dkim_key = DOMAIN SELECTOR FILE" line; the file is read by signpool_keys_load */
struct cfg_dkim_key {
    char *domain;   /* signing domain (d=), lower case */
    char *selector; /* s= */
    char *file;     /* PEM private key */
    unsigned long line;
};

/* a route's loaded DKIM keys (src/smtp/signpool.h); opaque here */
struct signpool_route;

/* an allowed client network (CIDR) */
struct cfg_network {
    int family;             /* AF_INET or AF_INET6 */
    unsigned char addr[16]; /* network address, host bits zero */
    int prefix;             /* prefix length */
};

struct cfg_route {
    char *name;
    unsigned long line; /* where the section starts, for messages */
    enum cfg_direction direction;
    int rewrite_rcpt; /* envelope recipients rewritten */
    char *next_hop;   /* as written */
    enum cfg_hop_kind hop_kind;
    char *hop_host;           /* smtp: host or address; mx: the domain */
    int hop_port;             /* smtp: port (default 25) */
    char *hop_dir;            /* file: directory */
    int tls_required;         /* smtp/mx: STARTTLS required (default yes) */
    int tls_verify;           /* verify the next hop's certificate and name (default yes) */
    char *tls_ca;             /* CA bundle for verification; NULL: system default */
    char *tls_cert, *tls_key; /* client certificate presented to the next hop */
    char *tls_verify_name;    /* name to verify instead of the host */
    unsigned *retry;          /* retry delays in seconds; the last repeats */
    size_t retry_count;
    long queue_lifetime;            /* seconds before a deferred message bounces */
    int max_concurrency;            /* connections to the next hop at once */
    struct cfg_dkim_key *dkim_keys; /* signing keys, by the domain of the rewritten From */
    size_t dkim_key_count;
    /*
     * verify the DKIM signatures and the ARC chain that arrived (keys from
     * DNS, before rewriting); default: on when arc_key is set
     */
    int dkim_verify;
    struct cfg_dkim_key arc_key; /* the ARC sealing key; domain NULL when not set */
    enum cfg_canon dkim_header_canon, dkim_body_canon; /* default relaxed/relaxed */
    long dkim_expire;           /* x= is t= plus this many seconds; 0: no x= */
    char **dkim_remove_domains; /* DKIM-Signature fields with these d= are removed */
    size_t dkim_remove_count;
    /*
     * the keys loaded from dkim_keys: set by signpool_keys_load and freed by
     * signpool_keys_free (coexd), not by cfg_cleanup; NULL without keys
     */
    struct signpool_route *dkim;
};

struct cfg_connector {
    char *name;
    unsigned long line;
    char *listen_host; /* numeric address */
    int listen_port;
    struct cfg_network *networks;
    size_t network_count;
    enum cfg_starttls starttls;
    char *tls_cert, *tls_key; /* server certificate */
    char *tls_ca;             /* CA for client certificates */
    char **client_cert_names; /* required client certificate names; may use "*." */
    size_t client_cert_name_count;
    char *route_name;
    struct cfg_route *route; /* resolved by cfg_load; borrowed */
};

struct coex_config {
    char *source;                /* where it came from: a path or "(embedded default)" */
    char *hostname;              /* name in the greeting, EHLO and Received */
    char *directory;             /* SQLite directory file */
    char *spool;                 /* spool directory */
    char *subaddress_separators; /* characters that start a sub-address tag */
    char *admin_listen;          /* reserved for the admin API; may be NULL */
    long directory_poll;         /* seconds between directory change checks */
    long max_connections;
    long max_connections_per_ip;
    long message_size_limit; /* bytes */
    long max_recipients;
    long header_size_limit; /* bytes */
    long command_timeout;   /* seconds */
    long data_timeout;      /* seconds */
    long hop_limit;         /* Received fields before 554 5.4.6 */
    long shutdown_timeout;  /* seconds SIGTERM waits for sessions */
    long dkim_workers;      /* DKIM signing threads (read at start only) */
    char *dns_resolver;     /* "ADDR[:PORT]" for DKIM/ARC key lookups; NULL: resolv.conf */
    long dns_timeout;       /* seconds a key lookup may take (read at start only) */
    char *authserv_id;      /* in ARC-Authentication-Results; default: hostname */
    struct cfg_connector *connectors;
    size_t connector_count;
    struct cfg_route *routes;
    size_t route_count;
};

/*
 * cfg_load - read path (NULL: CFG_DEFAULT_PATH when it exists, else the
 * embedded default) into cfg (caller owns; cfg_cleanup). -1 with
 * "FILE:LINE: reason" in err.
 */
int cfg_load(const char *path, struct coex_config *cfg, char *err, size_t errlen);
/* cfg_cleanup - free what cfg_load allocated; the struct may be loaded again */
void cfg_cleanup(struct coex_config *cfg);
/* cfg_find_route - the route with this name, or NULL; borrowed */
struct cfg_route *cfg_find_route(const struct coex_config *cfg, const char *name);
/* cfg_network_match - 1 when the address (family, 4 or 16 bytes) is inside net */
int cfg_network_match(const struct cfg_network *net, int family, const unsigned char *addr);
/* cfg_parse_network - "10.0.0.0/8", "::1", "2001:db8::/32" into out; 0 or -1 */
int cfg_parse_network(const char *text, struct cfg_network *out);

#endif

/*
 * coexd - the relay daemon: configuration, the event loop, listeners, the
 * directory watch, signals. The work is in src/smtp, src/queue, src/dir.
 *
 *   coexd [-c FILE]        run in the foreground, logging to stderr
 *   coexd [-c FILE] -t     check the configuration and exit (0 ok, 1 with FILE:LINE: reason)
 *
 * DKIM keys (dkim_key in a [route]) are read and checked with the
 * configuration, -t included; signing runs on a pool of dkim_workers threads
 * (src/smtp/signpool.h).
 *
 * SIGHUP reloads the configuration (DKIM keys included) and the directory
 * without dropping sessions; SIGTERM/SIGINT stop accepting, let sessions finish (bounded by
 * shutdown_timeout), flush the spool and exit. Directory changes made with
 * coexctl are picked up within directory_poll seconds, no signal needed.
 */
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/ssl.h>

#include "cfg.h"
#include "dirstore.h"
#include "log.h"
#include "qmgr.h"
#include "dnstxt.h"
#include "keyfetch.h"
#include "signpool.h"
#include "smtpd.h"
#include "spool.h"
#include "tls.h"

#define COEXD_MAX_LISTENERS 64
#define COEXD_DNS_ATTEMPTS 2      /* dns_timeout is split between them */
#define COEXD_DNS_CACHE 10000     /* key records kept */
#define COEXD_DNS_MIN_TTL 60      /* seconds a key record is kept at least */
#define COEXD_DNS_MAX_TTL 86400   /* and at most */
#define COEXD_DNS_NEG_TTL 300     /* a missing key is remembered this long */

struct coexd {
    const char *config_path;
    struct coex_config *cfg;       /* current */
    struct coex_config **old_cfgs; /* replaced configs: sessions may still point into them */
    size_t old_cfg_count;
    struct event_base *base;
    struct evdns_base *dns;
    struct dirstore *store;
    struct spool *spool;
    struct qmgr *qmgr;
    struct signpool *signpool; /* DKIM signing threads; NULL until the loop exists */
    struct dnstxt *dnstxt;     /* DKIM/ARC key lookups; NULL until a route verifies */
    struct smtpd_env env;
    struct smtpd_server *servers[COEXD_MAX_LISTENERS];
    SSL_CTX *ssl_ctx[COEXD_MAX_LISTENERS];
    size_t server_count;
    struct event *dir_timer, *stop_timer;
    time_t stop_deadline;
};

/* coexd_mkdirs - create a directory and its parents (mode 0750) */
static int coexd_mkdirs(const char *path)
{
    char partial[4096];
    size_t len = strlen(path);
    if (len >= sizeof(partial))
        return -1;
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        memcpy(partial, path, i);
        partial[i] = '\0';
        if (mkdir(partial, 0750) < 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

static int coexd_mkparent(const char *file)
{
    char *copy = xstrdup(file);
    int rc = coexd_mkdirs(dirname(copy));
    free(copy);
    return rc;
}

/* coexd_free_config - a configuration and its DKIM keys */
static void coexd_free_config(struct coex_config *cfg)
{
    if (cfg == NULL)
        return;
    signpool_keys_free(cfg);
    cfg_cleanup(cfg);
    free(cfg);
}

/*
 * coexd_load_config - read and check, DKIM keys included (signed on pool,
 * which may be NULL until it exists); NULL after logging the reason
 */
static struct coex_config *coexd_load_config(const char *path, struct signpool *pool)
{
    struct coex_config *cfg = xcalloc(1, sizeof(*cfg));
    char err[600];
    if (cfg_load(path, cfg, err, sizeof(err)) < 0) {
        log_error("%s", err);
        free(cfg);
        return NULL;
    }
    if (signpool_keys_load(cfg, pool, err, sizeof(err)) < 0) {
        log_error("%s", err);
        coexd_free_config(cfg);
        return NULL;
    }
    if (cfg->connector_count == 0) {
        log_error("%s: no [connector] section: coexd would accept nothing", cfg->source);
        coexd_free_config(cfg);
        return NULL;
    }
    if (cfg->connector_count > COEXD_MAX_LISTENERS) {
        log_error("%s: more than %d connectors", cfg->source, COEXD_MAX_LISTENERS);
        coexd_free_config(cfg);
        return NULL;
    }
    return cfg;
}

/* coexd_tls_contexts - one server context per connector that offers STARTTLS */
static int coexd_tls_contexts(const struct coex_config *cfg, SSL_CTX **out)
{
    char err[600];
    for (size_t i = 0; i < cfg->connector_count; i++) {
        const struct cfg_connector *c = &cfg->connectors[i];
        out[i] = NULL;
        if (c->starttls == CFG_STARTTLS_OFF)
            continue;
        out[i] = tls_server_ctx(c->tls_cert, c->tls_key, c->tls_ca, err, sizeof(err));
        if (out[i] == NULL) {
            log_error("connector %s: %s", c->name, err);
            while (i-- > 0)
                SSL_CTX_free(out[i]);
            return -1;
        }
    }
    return 0;
}

/* coexd_check_routes - client TLS settings of every route load */
static int coexd_check_routes(const struct coex_config *cfg)
{
    char err[600];
    for (size_t i = 0; i < cfg->route_count; i++) {
        const struct cfg_route *r = &cfg->routes[i];
        if (r->hop_kind == CFG_HOP_FILE)
            continue;
        SSL_CTX *ctx =
            tls_client_ctx(r->tls_ca, r->tls_cert, r->tls_key, r->tls_verify, err, sizeof(err));
        if (ctx == NULL) {
            log_error("route %s: %s", r->name, err);
            return -1;
        }
        SSL_CTX_free(ctx);
    }
    return 0;
}

/* coexd_reload_directory - a new snapshot when the store changed (or always) */
static void coexd_reload_directory(struct coexd *d, int force)
{
    char err[600];
    long long gen = dirstore_generation(d->store);
    if (gen < 0) {
        log_warn("directory %s: cannot read the change counter; keeping the loaded snapshot",
                 d->cfg->directory);
        return;
    }
    if (!force && d->env.dir && gen == dir_generation(d->env.dir))
        return;
    struct dir_snapshot *snap = dirstore_load(d->store, err, sizeof(err));
    if (snap == NULL) {
        log_error("%s; keeping the loaded snapshot", err);
        return;
    }
    struct dir_snapshot *old = d->env.dir;
    d->env.dir = snap;
    log_info("directory %s: generation %lld, %zu mailbox pairs, coexistence %s", d->cfg->directory,
             dir_generation(snap), dir_pair_count(snap), dir_coexistence(snap) ? "on" : "off");
    dir_snapshot_unref(old); /* sessions in a transaction hold their own reference */
}

static void coexd_dir_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    coexd_reload_directory(arg, 0);
}

/* coexd_open_listeners - one listener per connector */
static int coexd_open_listeners(struct coexd *d)
{
    char err[600];
    for (size_t i = 0; i < d->cfg->connector_count; i++) {
        const struct cfg_connector *c = &d->cfg->connectors[i];
        d->servers[i] = smtpd_listener_new(&d->env, c, d->ssl_ctx[i], err, sizeof(err));
        if (d->servers[i] == NULL) {
            log_error("%s", err);
            return -1;
        }
        log_info("connector %s: listening on %s:%d, route %s (%s, next hop %s)", c->name,
                 c->listen_host, c->listen_port, c->route->name,
                 c->route->direction == CFG_TO_SOURCE ? "to-source" : "to-target",
                 c->route->next_hop);
    }
    d->server_count = d->cfg->connector_count;
    return 0;
}

/* coexd_needs_dns - 1 when a route verifies arrived signatures (keys from DNS) */
static int coexd_needs_dns(const struct coex_config *cfg)
{
    for (size_t i = 0; i < cfg->route_count; i++)
        if (cfg->routes[i].dkim_verify)
            return 1;
    return 0;
}

/*
 * coexd_start_dns - the key resolver, when cfg needs one and there is none
 * yet (dns_resolver and dns_timeout are read then only). 0 or -1 (logged).
 */
static int coexd_start_dns(struct coexd *d, const struct coex_config *cfg)
{
    char err[300];
    if (d->dnstxt || !coexd_needs_dns(cfg))
        return 0;
    struct dnstxt_opts o = {
        .server = cfg->dns_resolver,
        .timeout_ms = (int)(cfg->dns_timeout * 1000 / COEXD_DNS_ATTEMPTS),
        .attempts = COEXD_DNS_ATTEMPTS,
        .cache_max = COEXD_DNS_CACHE,
        .min_ttl = COEXD_DNS_MIN_TTL,
        .max_ttl = COEXD_DNS_MAX_TTL,
        .neg_ttl = COEXD_DNS_NEG_TTL,
    };
    d->dnstxt = dnstxt_new(d->base, &o, err, sizeof(err));
    if (d->dnstxt == NULL) {
        log_error("%s: dns_resolver: %s", cfg->source, err);
        return -1;
    }
    d->env.dnstxt = d->dnstxt;
    log_info("DKIM/ARC key lookups through %s", cfg->dns_resolver ? cfg->dns_resolver
                                                                 : "the resolv.conf name server");
    return 0;
}

/* coexd_reload - SIGHUP: new config where possible, directory always */
static void coexd_reload(struct coexd *d)
{
    log_info("SIGHUP: reloading %s", d->config_path ? d->config_path : "the configuration");
    struct coex_config *cfg = coexd_load_config(d->config_path, d->signpool);
    SSL_CTX *ctx[COEXD_MAX_LISTENERS] = {0};
    if (cfg == NULL || coexd_check_routes(cfg) < 0 || coexd_tls_contexts(cfg, ctx) < 0 ||
        coexd_start_dns(d, cfg) < 0) {
        log_error("reload failed: keeping the running configuration");
        coexd_free_config(cfg);
        return;
    }
    /* listeners must stay where they are: moving them needs a restart */
    int same = cfg->connector_count == d->server_count;
    for (size_t i = 0; same && i < cfg->connector_count; i++)
        same = strcmp(cfg->connectors[i].listen_host, d->cfg->connectors[i].listen_host) == 0 &&
               cfg->connectors[i].listen_port == d->cfg->connectors[i].listen_port;
    if (!same) {
        log_error("reload: connectors or listen addresses changed; restart coexd for that. "
                  "Keeping the running configuration");
        for (size_t i = 0; i < cfg->connector_count; i++)
            SSL_CTX_free(ctx[i]);
        coexd_free_config(cfg);
        return;
    }
    if ((cfg->dns_resolver == NULL) != (d->cfg->dns_resolver == NULL) ||
        (cfg->dns_resolver && strcmp(cfg->dns_resolver, d->cfg->dns_resolver) != 0) ||
        cfg->dns_timeout != d->cfg->dns_timeout)
        log_warn("reload: dns_resolver and dns_timeout change at the next restart");
    if (cfg->dkim_workers != d->cfg->dkim_workers)
        log_warn("reload: dkim_workers changes at the next restart; keeping %ld signing threads",
                 d->cfg->dkim_workers);
    for (size_t i = 0; i < d->server_count; i++) {
        smtpd_listener_set(d->servers[i], &cfg->connectors[i], ctx[i]);
        /* the old context stays alive in sessions that use it (SSL holds a reference) */
        SSL_CTX_free(d->ssl_ctx[i]);
        d->ssl_ctx[i] = ctx[i];
    }
    qmgr_set_config(d->qmgr, cfg);
    d->old_cfgs = xrealloc(d->old_cfgs, (d->old_cfg_count + 1) * sizeof(*d->old_cfgs));
    d->old_cfgs[d->old_cfg_count++] = d->cfg;
    d->cfg = cfg;
    d->env.cfg = cfg;
    coexd_reload_directory(d, 1);
    log_info("reload done");
}

static void coexd_stop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct coexd *d = arg;
    (void)fd;
    (void)what;
    if (d->env.sessions > 0 && time(NULL) < d->stop_deadline)
        return;
    if (d->env.sessions > 0) {
        log_warn("shutdown: closing %lu session(s) still open", d->env.sessions);
        smtpd_close_all(&d->env);
    }
    struct timeval flush = {0, 200000}; /* let the 421 replies go out */
    event_base_loopexit(d->base, &flush);
    event_del(d->stop_timer);
}

static void coexd_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct coexd *d = arg;
    (void)what;
    if (sig == SIGHUP) {
        coexd_reload(d);
        return;
    }
    if (d->env.stopping)
        return;
    log_info("%s: stopping: no new connections; waiting up to %lds for %lu session(s)",
             sig == SIGTERM ? "SIGTERM" : "SIGINT", d->cfg->shutdown_timeout, d->env.sessions);
    d->env.stopping = 1;
    for (size_t i = 0; i < d->server_count; i++)
        smtpd_listener_disable(d->servers[i]);
    d->stop_deadline = time(NULL) + d->cfg->shutdown_timeout;
    struct timeval tick = {0, 100000};
    d->stop_timer = event_new(d->base, -1, EV_PERSIST, coexd_stop_timer_cb, d);
    event_add(d->stop_timer, &tick);
}

struct coexd_recover {
    struct qmgr *qmgr;
};

static void coexd_recovered(void *arg, const struct spool_msg *m)
{
    struct coexd_recover *r = arg;
    qmgr_add(r->qmgr, m);
}

static int usage(void)
{
    fprintf(stderr, "usage: coexd [-c FILE] [-t]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct coexd d = {0};
    int check_only = 0, opt, rc = 1;
    char err[600];

    log_set_prefix("coexd");
    while ((opt = getopt(argc, argv, "c:th")) != -1) {
        if (opt == 'c')
            d.config_path = optarg;
        else if (opt == 't')
            check_only = 1;
        else
            return usage();
    }
    if (optind != argc)
        return usage();
    signal(SIGPIPE, SIG_IGN);

    d.cfg = coexd_load_config(d.config_path, NULL);
    if (d.cfg == NULL)
        return 1;
    if (coexd_check_routes(d.cfg) < 0 || coexd_tls_contexts(d.cfg, d.ssl_ctx) < 0)
        goto done;
    if (check_only) {
        /* dns_resolver is checked by making the resolver (no query is sent) */
        if (coexd_needs_dns(d.cfg) &&
            ((d.base = event_base_new()) == NULL || coexd_start_dns(&d, d.cfg) < 0))
            goto done;
        printf("%s: configuration ok (%zu connector(s), %zu route(s))\n", d.cfg->source,
               d.cfg->connector_count, d.cfg->route_count);
        rc = 0;
        goto done;
    }
    if (evthread_use_pthreads() < 0 || (d.base = event_base_new()) == NULL) {
        log_error("cannot start the event loop");
        goto done;
    }
    d.signpool = signpool_new(d.base, (int)d.cfg->dkim_workers, err, sizeof(err));
    if (d.signpool == NULL) {
        log_error("%s", err);
        goto done;
    }
    signpool_keys_attach(d.cfg, d.signpool);
    if (coexd_start_dns(&d, d.cfg) < 0)
        goto done;
    d.dns = evdns_base_new(d.base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (d.dns == NULL)
        log_warn("no DNS resolver (/etc/resolv.conf): mx: next hops will be deferred");
    if (coexd_mkparent(d.cfg->directory) < 0 || coexd_mkdirs(d.cfg->spool) < 0) {
        log_error("cannot create %s or %s: %s", d.cfg->directory, d.cfg->spool, strerror(errno));
        goto done;
    }
    for (size_t i = 0; i < d.cfg->route_count; i++)
        if (d.cfg->routes[i].hop_kind == CFG_HOP_FILE &&
            coexd_mkdirs(d.cfg->routes[i].hop_dir) < 0) {
            log_error("route %s: cannot create %s: %s", d.cfg->routes[i].name,
                      d.cfg->routes[i].hop_dir, strerror(errno));
            goto done;
        }
    d.store = dirstore_open(d.cfg->directory, err, sizeof(err));
    if (d.store == NULL) {
        log_error("%s", err);
        goto done;
    }
    d.env.base = d.base;
    d.env.cfg = d.cfg;
    coexd_reload_directory(&d, 1);
    if (d.env.dir == NULL)
        goto done;
    d.spool = spool_open(d.cfg->spool, d.base, err, sizeof(err));
    if (d.spool == NULL) {
        log_error("%s", err);
        goto done;
    }
    d.qmgr = qmgr_new(d.base, d.dns, d.cfg, d.spool);
    d.env.spool = d.spool;
    d.env.qmgr = d.qmgr;
    struct coexd_recover rec = {d.qmgr};
    long live = spool_recover(d.spool, coexd_recovered, &rec);
    if (live < 0) {
        log_error("%s: spool recovery failed", d.cfg->spool);
        goto done;
    }
    log_info("spool %s: %ld message(s) to deliver after recovery", d.cfg->spool, live);
    if (coexd_open_listeners(&d) < 0)
        goto done;

    struct timeval poll = {d.cfg->directory_poll, 0};
    d.dir_timer = event_new(d.base, -1, EV_PERSIST, coexd_dir_timer_cb, &d);
    event_add(d.dir_timer, &poll);
    struct event *sig_term = evsignal_new(d.base, SIGTERM, coexd_signal_cb, &d);
    struct event *sig_int = evsignal_new(d.base, SIGINT, coexd_signal_cb, &d);
    struct event *sig_hup = evsignal_new(d.base, SIGHUP, coexd_signal_cb, &d);
    event_add(sig_term, NULL);
    event_add(sig_int, NULL);
    event_add(sig_hup, NULL);
    log_info("coexd started: hostname %s, config %s", d.cfg->hostname, d.cfg->source);

    /*
     * Logs are block-buffered and written once per loop pass: one write(2)
     * for all the lines a pass produces instead of one per line (about nine
     * per message), which also keeps a slow log reader from stalling sessions.
     */
    static char log_buffer[1 << 16];
    fflush(stderr);
    setvbuf(stderr, log_buffer, _IOFBF, sizeof(log_buffer));
    while (event_base_loop(d.base, EVLOOP_ONCE) == 0 && !event_base_got_exit(d.base) &&
           !event_base_got_break(d.base))
        fflush(stderr);
    fflush(stderr);

    log_info("coexd stopping: flushing the spool");
    event_free(sig_term);
    event_free(sig_int);
    event_free(sig_hup);
    rc = 0;
done:
    for (size_t i = 0; i < d.server_count; i++)
        smtpd_listener_free(d.servers[i]);
    signpool_free(d.signpool); /* before the keys its workers use, and before the spool */
    dnstxt_free(d.dnstxt);
    keyfetch_cache_clear();
    qmgr_free(d.qmgr);
    spool_close(d.spool);
    if (d.dir_timer)
        event_free(d.dir_timer);
    if (d.stop_timer)
        event_free(d.stop_timer);
    dir_snapshot_unref(d.env.dir);
    dirstore_close(d.store);
    for (size_t i = 0; i < COEXD_MAX_LISTENERS; i++)
        SSL_CTX_free(d.ssl_ctx[i]);
    if (d.dns)
        evdns_base_free(d.dns, 0);
    if (d.base)
        event_base_free(d.base);
    for (size_t i = 0; i < d.old_cfg_count; i++)
        coexd_free_config(d.old_cfgs[i]);
    free(d.old_cfgs);
    coexd_free_config(d.cfg);
    if (rc == 0 && !check_only)
        log_info("coexd stopped");
    return rc;
}

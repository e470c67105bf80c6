/*
 * smtpc_int - what smtpc.c (connection: resolve, connect, TLS, callbacks) and
 * smtpc_tx.c (replies, session commands, transactions, the message body)
 * share. Not a contract: only smtpc_*.c include it.
 */
#ifndef COEX_SMTPC_INT_H
#define COEX_SMTPC_INT_H

#include <sys/socket.h>

#include "smtpc.h"
#include "smtpreply.h"

struct bufferevent;
struct event;

enum smtpc_state {
    SMTPC_S_RESOLVE, /* MX or address lookup */
    SMTPC_S_CONNECT,
    SMTPC_S_GREETING,
    SMTPC_S_EHLO,
    SMTPC_S_HELO,
    SMTPC_S_STARTTLS,
    SMTPC_S_HANDSHAKE,
    SMTPC_S_EHLO_TLS,
    SMTPC_S_READY,
    SMTPC_S_TX,   /* replies to MAIL, RCPT, DATA */
    SMTPC_S_BODY, /* sending the message */
    SMTPC_S_DOT,  /* the reply to "." */
    SMTPC_S_RSET,
    SMTPC_S_QUIT,
    SMTPC_S_DEAD,
};

/* pending callbacks */
#define SMTPC_N_DONE 0x1
#define SMTPC_N_READY 0x2
#define SMTPC_N_CLOSED 0x4

struct smtpc_gai;

struct smtpc {
    struct event_base *base;
    struct evdns_base *dns;
    enum smtpc_hop hop;
    char *host;
    int port;
    char *helo_name;
    SSL_CTX *tls;
    int tls_required, tls_verify;
    char *verify_name;
    smtpc_fn *cb;
    void *arg;

    enum smtpc_state state;
    char *hosts[SMTPC_MAX_MX]; /* MX hosts, or the host */
    size_t host_count, host_next;
    const char *cur_host; /* hosts[host_next - 1] */
    struct smtpc_mx *mx;
    struct smtpc_gai *gai;
    struct sockaddr_storage addrs[SMTPC_MAX_ADDRS];
    socklen_t addr_lens[SMTPC_MAX_ADDRS];
    size_t addr_count, addr_next;
    struct bufferevent *bev; /* plain, or the TLS filter over it */
    char relay[SMTPC_RELAY_SIZE];
    char tls_desc[128];
    int tls_on;
    unsigned ext; /* SMTPREPLY_EXT_* of the last EHLO reply */
    unsigned long size_max;
    int was_ready;

    struct smtpreply reply; /* the reply being read; reset for every connection */

    /* the transaction */
    const struct smtpc_tx *tx;
    struct smtpc_reply *results;
    unsigned char *accepted, *final;
    size_t results_cap;
    size_t steps, step_sent, step_replied; /* MAIL, RCPT..., DATA */
    int mail_ok, pipelined, discard_dot;
    size_t rcpt_ok;
    size_t data_off;
    int at_line_start;

    struct smtpc_reply session;
    struct event *notify_ev;
    unsigned pending;
    int in_callback, free_requested;
};

/* smtpc.c */
void smtpc_notify(struct smtpc *c, unsigned what);
void smtpc_setup_failed(struct smtpc *c);
void smtpc_close(struct smtpc *c);
void smtpc_abort(struct smtpc *c, const struct smtpc_reply *why);
void smtpc_timeouts(struct smtpc *c, int read_seconds, int write_seconds);
int smtpc_start_tls(struct smtpc *c);

/* smtpc_tx.c */
void smtpc_read(struct smtpc *c);
void smtpc_write(struct smtpc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void smtpc_lost_tx(struct smtpc *c, const struct smtpc_reply *why);
void smtpc_pump(struct smtpc *c);
void smtpc_ready(struct smtpc *c);

#endif

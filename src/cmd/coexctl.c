/*
 * coexctl - the admin command line: directory management and offline
 * rewriting. Argument parsing only; the work is in src/dir and src/mail.
 * See docs/coexctl.md.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "cfg.h"
#include "dirstore.h"
#include "hdr.h"
#include "rewrite.h"
#include "coexctl_dkim.h"
#include "coexctl_arc.h"

/* a message larger than this is refused by `coexctl rewrite` */
#define LIMIT_MESSAGE ((size_t)64 << 20)
#define LIMIT_HEADER_BLOCK ((size_t)1 << 20)
#define LIMIT_ADDRESS_FILE ((size_t)256 << 20)

struct ctl {
    const char *db_path;
    struct coex_config cfg;
    struct dirstore *ds;
};

static const char usage_text[] =
    "usage: coexctl [--config FILE] [--db FILE] COMMAND ...\n"
    "  mailbox import FILE.csv          header: source,target[,enabled]\n"
    "  mailbox list [--enabled|--disabled] [--match TEXT]\n"
    "  mailbox enable|disable ADDRESS...|--all|--file FILE\n"
    "  mailbox remove ADDRESS...\n"
    "  domain add|remove TARGET_DOMAIN SOURCE_DOMAIN\n"
    "  exception add|remove ADDRESS_OR_DOMAIN\n"
    "  coexistence on|off|status\n"
    "  rewrite --direction to-source|to-target [--mail-from ADDR] [--rcpt ADDR]...\n"
    "          [--rewrite-rcpt yes|no] [--trace] < in.eml > out.eml\n"
    "  dkim keygen|dns|sign|verify|bench ...   (coexctl dkim --help)\n"
    "  arc seal|verify ...                     (coexctl arc --help)\n";

static int usage(void)
{
    fputs(usage_text, stderr);
    return 2;
}

/* ctl_mkdir_parent - create the directory that will hold the database file */
static void ctl_mkdir_parent(const char *path)
{
    char *copy = xstrdup(path);
    char *dir = dirname(copy);
    char partial[4096];
    size_t len = strlen(dir);
    if (len < sizeof(partial)) {
        for (size_t i = 1; i <= len; i++) {
            if (dir[i] == '/' || dir[i] == '\0') {
                memcpy(partial, dir, i);
                partial[i] = '\0';
                mkdir(partial, 0750);
            }
        }
    }
    free(copy);
}

/* ctl_open - open the directory store named by --db or the config */
static int ctl_open(struct ctl *c)
{
    char err[512];
    ctl_mkdir_parent(c->db_path);
    c->ds = dirstore_open(c->db_path, err, sizeof(err));
    if (c->ds == NULL) {
        fprintf(stderr, "coexctl: %s\n", err);
        return -1;
    }
    return 0;
}

static int cmd_import(struct ctl *c, int argc, char **argv)
{
    struct dirstore_import_stats st;
    if (argc != 1)
        return usage();
    if (ctl_open(c) < 0)
        return 1;
    if (dirstore_import_csv(c->ds, argv[0], stderr, &st) < 0)
        return 1;
    printf("imported %s: %lu rows, %lu added, %lu updated, %lu unchanged\n", argv[0], st.rows,
           st.added, st.updated, st.rows - st.added - st.updated);
    return 0;
}

static int list_row(const struct dirstore_row *row, void *arg)
{
    char when[32] = "-";
    time_t t = (time_t)row->updated;
    struct tm tm;
    (void)arg;
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%s,%s,%s,%s\n", row->source, row->target, row->enabled ? "true" : "false", when);
    return 0;
}

static int cmd_list(struct ctl *c, int argc, char **argv)
{
    int filter = -1;
    const char *match = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--enabled") == 0)
            filter = 1;
        else if (strcmp(argv[i], "--disabled") == 0)
            filter = 0;
        else if (strcmp(argv[i], "--match") == 0 && i + 1 < argc)
            match = argv[++i];
        else
            return usage();
    }
    if (ctl_open(c) < 0)
        return 1;
    printf("source,target,enabled,updated\n");
    return dirstore_list(c->ds, filter, match, list_row, NULL, stderr) < 0 ? 1 : 0;
}

/* read_address_file - one address per line; "#" comments and blank lines skipped */
static int read_address_file(const char *path, char ***addrs, char ***where, size_t *count)
{
    FILE *fp = fopen(path, "r");
    char line[LIMIT_ADDRESS + 2];
    unsigned long lineno = 0;
    size_t cap = 0;
    if (fp == NULL) {
        fprintf(stderr, "coexctl: %s: cannot read: %s\n", path, strerror(errno));
        return -1;
    }
    *addrs = NULL;
    *where = NULL;
    *count = 0;
    while (fgets(line, sizeof(line), fp)) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(fp)) {
            fprintf(stderr, "coexctl: %s:%lu: line too long\n", path, lineno);
            fclose(fp);
            return -1;
        }
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        size_t len = strcspn(s, "\r\n");
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        s[len] = '\0';
        if (len == 0 || *s == '#')
            continue;
        if (*count == cap) {
            cap = cap ? cap * 2 : 64;
            *addrs = xrealloc(*addrs, cap * sizeof(**addrs));
            *where = xrealloc(*where, cap * sizeof(**where));
        }
        char loc[4200];
        snprintf(loc, sizeof(loc), "%s:%lu", path, lineno);
        (*addrs)[*count] = xstrdup(s);
        (*where)[*count] = xstrdup(loc);
        (*count)++;
    }
    fclose(fp);
    return 0;
}

static int cmd_enable(struct ctl *c, int enabled, int argc, char **argv)
{
    long changed;
    if (argc == 0)
        return usage();
    if (ctl_open(c) < 0)
        return 1;
    if (strcmp(argv[0], "--all") == 0) {
        if (argc != 1)
            return usage();
        changed = dirstore_set_enabled_all(c->ds, enabled, stderr);
    } else if (strcmp(argv[0], "--file") == 0) {
        char **addrs, **where;
        size_t count;
        if (argc != 2)
            return usage();
        if (read_address_file(argv[1], &addrs, &where, &count) < 0)
            return 1;
        changed = dirstore_set_enabled(c->ds, (const char *const *)addrs,
                                       (const char *const *)where, count, enabled, stderr);
        for (size_t i = 0; i < count; i++) {
            free(addrs[i]);
            free(where[i]);
        }
        free(addrs);
        free(where);
    } else {
        changed = dirstore_set_enabled(c->ds, (const char *const *)argv, NULL, (size_t)argc,
                                       enabled, stderr);
    }
    if (changed < 0)
        return 1;
    printf("address rewrite %s for %ld mailbox pair(s)\n", enabled ? "enabled" : "disabled",
           changed);
    return 0;
}

static int cmd_remove(struct ctl *c, int argc, char **argv)
{
    if (argc == 0)
        return usage();
    if (ctl_open(c) < 0)
        return 1;
    long n = dirstore_remove_pairs(c->ds, (const char *const *)argv, (size_t)argc, stderr);
    if (n < 0)
        return 1;
    printf("removed %ld mailbox pair(s)\n", n);
    return 0;
}

static int cmd_mailbox(struct ctl *c, int argc, char **argv)
{
    if (argc < 1)
        return usage();
    if (strcmp(argv[0], "import") == 0)
        return cmd_import(c, argc - 1, argv + 1);
    if (strcmp(argv[0], "list") == 0)
        return cmd_list(c, argc - 1, argv + 1);
    if (strcmp(argv[0], "enable") == 0)
        return cmd_enable(c, 1, argc - 1, argv + 1);
    if (strcmp(argv[0], "disable") == 0)
        return cmd_enable(c, 0, argc - 1, argv + 1);
    if (strcmp(argv[0], "remove") == 0)
        return cmd_remove(c, argc - 1, argv + 1);
    return usage();
}

static int cmd_domain(struct ctl *c, int argc, char **argv)
{
    int add;
    if (argc != 3)
        return usage();
    if (strcmp(argv[0], "add") == 0)
        add = 1;
    else if (strcmp(argv[0], "remove") == 0)
        add = 0;
    else
        return usage();
    if (ctl_open(c) < 0)
        return 1;
    FILE *e = stderr;
    int rc = add ? dirstore_domain_add(c->ds, argv[1], argv[2], e)
                 : dirstore_domain_remove(c->ds, argv[1], argv[2], e);
    if (rc < 0)
        return 1;
    printf("domain pair %s: %s (target) <-> %s (source)\n", add ? "added" : "removed", argv[1],
           argv[2]);
    return 0;
}

static int cmd_exception(struct ctl *c, int argc, char **argv)
{
    int add;
    if (argc != 2)
        return usage();
    if (strcmp(argv[0], "add") == 0)
        add = 1;
    else if (strcmp(argv[0], "remove") == 0)
        add = 0;
    else
        return usage();
    if (ctl_open(c) < 0)
        return 1;
    int rc = add ? dirstore_exception_add(c->ds, argv[1], stderr)
                 : dirstore_exception_remove(c->ds, argv[1], stderr);
    if (rc < 0)
        return 1;
    printf("exception %s: %s\n", add ? "added" : "removed", argv[1]);
    return 0;
}

static int cmd_coexistence(struct ctl *c, int argc, char **argv)
{
    if (argc != 1)
        return usage();
    if (ctl_open(c) < 0)
        return 1;
    if (strcmp(argv[0], "on") == 0 || strcmp(argv[0], "off") == 0) {
        if (dirstore_set_coexistence(c->ds, strcmp(argv[0], "on") == 0, stderr) < 0)
            return 1;
        printf("coexistence %s\n", argv[0]);
        return 0;
    }
    if (strcmp(argv[0], "status") != 0)
        return usage();
    long long total, enabled;
    int on = dirstore_get_coexistence(c->ds);
    if (on < 0 || dirstore_counts(c->ds, &total, &enabled) < 0) {
        fprintf(stderr, "coexctl: %s: cannot read the directory\n", c->db_path);
        return 1;
    }
    printf("coexistence %s\nmailbox pairs %lld, address rewrite enabled for %lld\n"
           "directory %s (generation %lld)\n",
           on ? "on" : "off", total, enabled, c->db_path, dirstore_generation(c->ds));
    return 0;
}

/* read_stdin - the whole message, or -1 with a message */
static int read_stdin(struct buf *msg)
{
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
        if (buf_append(msg, chunk, n) < 0) {
            fprintf(stderr, "coexctl: rewrite: message larger than %zu bytes\n", msg->limit);
            return -1;
        }
    if (ferror(stdin)) {
        fprintf(stderr, "coexctl: rewrite: cannot read standard input: %s\n", strerror(errno));
        return -1;
    }
    if (msg->len == 0) {
        fprintf(stderr, "coexctl: rewrite: no message on standard input\n");
        return -1;
    }
    return 0;
}

static void print_trace(const struct rewrite_trace *t)
{
    if (t->coexistence_off)
        fprintf(stderr, "trace: coexistence is off: message passed through unchanged\n");
    for (size_t i = 0; i < t->count; i++) {
        const struct rewrite_change *ch = &t->changes[i];
        switch (ch->event) {
        case EVENT_REWRITTEN:
            fprintf(stderr, "trace: %s: %s -> %s (%s%s)\n", ch->field, ch->old_addr,
                    ch->new_addr, rewrite_rule_name(ch->rule),
                    ch->display_name ? ", display name" : "");
            break;
        case EVENT_UNPARSEABLE:
            fprintf(stderr, "trace: %s: unparseable mailbox left untouched: %s\n", ch->field,
                    ch->old_addr);
            break;
        case EVENT_DISABLED:
            fprintf(stderr, "trace: %s: %s left untouched: address rewrite is off for it\n",
                    ch->field, ch->old_addr);
            break;
        case EVENT_EXCEPTION:
            fprintf(stderr, "trace: %s: %s left untouched: on the exception list\n", ch->field,
                    ch->old_addr);
            break;
        }
    }
}

/* envelope_one - rewrite and report one envelope address */
static int envelope_one(const struct dir_snapshot *d, const struct rewrite_opts *o,
                        const char *field, const char *label, const char *addr, int apply,
                        struct rewrite_trace *trace)
{
    char out[LIMIT_ADDRESS];
    const char *a = addr;
    size_t len = strlen(a);
    if (len >= 2 && a[0] == '<' && a[len - 1] == '>') {
        a++;
        len -= 2;
    }
    if (!apply) {
        fprintf(stderr, "envelope: %s=<%.*s> (not rewritten by this route)\n", label, (int)len,
                a);
        return 0;
    }
    int rc = rewrite_envelope(d, o, field, a, len, out, sizeof(out), trace);
    if (rc < 0) {
        fprintf(stderr, "coexctl: rewrite: bad %s address '%s'\n", label, addr);
        return -1;
    }
    if (rc == 1)
        fprintf(stderr, "envelope: %s=<%s> (was <%.*s>)\n", label, out, (int)len, a);
    else
        fprintf(stderr, "envelope: %s=<%s> (unchanged)\n", label, out);
    return 0;
}

static int cmd_rewrite(struct ctl *c, int argc, char **argv)
{
    struct rewrite_opts o = {REWRITE_TO_SOURCE, c->cfg.subaddress_separators};
    const char *mail_from = NULL;
    const char **rcpts = xcalloc((size_t)argc + 1, sizeof(*rcpts));
    size_t nrcpt = 0;
    int have_direction = 0, want_trace = 0, rewrite_rcpt = -1, rc = 1;
    struct dir_snapshot *d = NULL;
    struct rewrite_trace trace;
    struct buf msg, out;
    char err[512];

    rewrite_trace_init(&trace);
    buf_init(&msg, LIMIT_MESSAGE);
    buf_init(&out, LIMIT_MESSAGE + LIMIT_HEADER_BLOCK);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--direction") == 0 && i + 1 < argc) {
            if (rewrite_direction_parse(argv[++i], &o.direction) < 0) {
                fprintf(stderr, "coexctl: rewrite: direction must be to-source or to-target\n");
                goto done;
            }
            have_direction = 1;
        } else if (strcmp(a, "--mail-from") == 0 && i + 1 < argc)
            mail_from = argv[++i];
        else if (strcmp(a, "--rcpt") == 0 && i + 1 < argc)
            rcpts[nrcpt++] = argv[++i];
        else if (strcmp(a, "--rewrite-rcpt") == 0 && i + 1 < argc) {
            rewrite_rcpt = util_parse_bool(argv[i + 1], strlen(argv[i + 1]));
            i++;
            if (rewrite_rcpt < 0) {
                fprintf(stderr, "coexctl: rewrite: --rewrite-rcpt takes yes or no\n");
                goto done;
            }
        } else if (strcmp(a, "--trace") == 0)
            want_trace = 1;
        else {
            rc = usage();
            goto done;
        }
    }
    if (!have_direction) {
        fprintf(stderr, "coexctl: rewrite: --direction to-source|to-target is required\n");
        rc = 2;
        goto done;
    }
    if (rewrite_rcpt < 0)
        rewrite_rcpt = o.direction == REWRITE_TO_TARGET;
    if (read_stdin(&msg) < 0)
        goto done;
    if (ctl_open(c) < 0)
        goto done;
    if ((d = dirstore_load(c->ds, err, sizeof(err))) == NULL) {
        fprintf(stderr, "coexctl: %s\n", err);
        goto done;
    }

    struct hdr_iter it;
    struct hdr_field first;
    hdr_iter_init(&it, msg.data, msg.len);
    if (!hdr_iter_next(&it, &first) || first.name_len == 0) {
        fprintf(stderr, "coexctl: rewrite: standard input is not a message: line 1 is not a "
                        "header field\n");
        goto done;
    }
    size_t header_end, body_off;
    hdr_split(msg.data, msg.len, &header_end, &body_off);
    if (header_end > LIMIT_HEADER_BLOCK) {
        fprintf(stderr, "coexctl: rewrite: header block larger than %zu bytes\n",
                LIMIT_HEADER_BLOCK);
        goto done;
    }
    if (rewrite_header(d, &o, msg.data, header_end, &out, &trace, err, sizeof(err)) < 0 ||
        buf_append(&out, msg.data + header_end, msg.len - header_end) < 0) {
        fprintf(stderr, "coexctl: rewrite: %s\n", err);
        goto done;
    }
    if (mail_from && envelope_one(d, &o, "MAIL FROM", "mail-from", mail_from, 1, &trace) < 0)
        goto done;
    for (size_t i = 0; i < nrcpt; i++)
        if (envelope_one(d, &o, "RCPT TO", "rcpt", rcpts[i], rewrite_rcpt, &trace) < 0)
            goto done;
    if (want_trace)
        print_trace(&trace);
    if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
        fprintf(stderr, "coexctl: rewrite: cannot write standard output: %s\n", strerror(errno));
        goto done;
    }
    rc = 0;
done:
    dir_snapshot_unref(d);
    rewrite_trace_cleanup(&trace);
    buf_cleanup(&msg);
    buf_cleanup(&out);
    free(rcpts);
    return rc;
}

int main(int argc, char **argv)
{
    struct ctl c = {0};
    const char *config_path = NULL;
    char err[512];
    int i = 1, rc;

    for (; i < argc; i++) {
        if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
            c.db_path = argv[++i];
        else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config_path = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_text, stdout);
            return 0;
        } else
            break;
    }
    if (i >= argc)
        return usage();
    if (cfg_load(config_path, &c.cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "coexctl: %s\n", err);
        return 1;
    }
    if (c.db_path == NULL)
        c.db_path = c.cfg.directory;

    const char *cmd = argv[i];
    int sub_argc = argc - i - 1;
    char **sub_argv = argv + i + 1;
    if (strcmp(cmd, "mailbox") == 0)
        rc = cmd_mailbox(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "domain") == 0)
        rc = cmd_domain(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "exception") == 0)
        rc = cmd_exception(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "coexistence") == 0)
        rc = cmd_coexistence(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "rewrite") == 0)
        rc = cmd_rewrite(&c, sub_argc, sub_argv);
    else if (strcmp(cmd, "dkim") == 0)
        rc = coexctl_dkim_main(&c.cfg, sub_argc, sub_argv);
    else if (strcmp(cmd, "arc") == 0)
        rc = coexctl_arc_main(sub_argc, sub_argv);
    else
        rc = usage();
    dirstore_close(c.ds);
    cfg_cleanup(&c.cfg);
    return rc;
}

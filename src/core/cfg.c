/*
 * cfg - configuration file parser ("key = value", "#" comments, blank lines).
 */
#include "cfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static const char cfg_embedded[] = "# embedded default\n"
                                   "directory = var/coex.db\n"
                                   "subaddress_separators = +\n";

/* cfg_strip - trim blanks in place */
static char *cfg_strip(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' ||
                   s[len - 1] == '\n'))
        s[--len] = '\0';
    return s;
}

/* cfg_set - store one key */
static int cfg_set(struct coex_config *cfg, const char *key, const char *value)
{
    char **slot = NULL;
    if (strcmp(key, "directory") == 0)
        slot = &cfg->directory;
    else if (strcmp(key, "subaddress_separators") == 0)
        slot = &cfg->subaddress_separators;
    if (slot == NULL)
        return -1;
    free(*slot);
    *slot = xstrdup(value);
    return 0;
}

/* cfg_parse - parse text line by line */
static int cfg_parse(struct coex_config *cfg, const char *name, FILE *fp, char *err,
                     size_t errlen)
{
    char line[4096];
    unsigned long lineno = 0;
    while (fgets(line, sizeof(line), fp)) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(fp)) {
            snprintf(err, errlen, "%s:%lu: line longer than %zu bytes", name, lineno,
                     sizeof(line) - 2);
            return -1;
        }
        char *s = cfg_strip(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "%s:%lu: expected 'key = value'", name, lineno);
            return -1;
        }
        *eq = '\0';
        char *key = cfg_strip(s), *value = cfg_strip(eq + 1);
        if (*value == '\0' && strcmp(key, "subaddress_separators") != 0) {
            snprintf(err, errlen, "%s:%lu: '%s' needs a value", name, lineno, key);
            return -1;
        }
        if (cfg_set(cfg, key, value) < 0) {
            snprintf(err, errlen, "%s:%lu: unknown key '%s'", name, lineno, key);
            return -1;
        }
    }
    return 0;
}

/* cfg_load - file, default file or embedded default */
int cfg_load(const char *path, struct coex_config *cfg, char *err, size_t errlen)
{
    FILE *fp;
    memset(cfg, 0, sizeof(*cfg));
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
    int rc = cfg_parse(cfg, cfg->source, fp, err, errlen);
    fclose(fp);
    if (rc < 0)
        goto fail;
    if (cfg->directory == NULL)
        cfg->directory = xstrdup("var/coex.db");
    if (cfg->subaddress_separators == NULL)
        cfg->subaddress_separators = xstrdup("+");
    return 0;
fail:
    cfg_cleanup(cfg);
    return -1;
}

/* cfg_cleanup - free strings */
void cfg_cleanup(struct coex_config *cfg)
{
    free(cfg->source);
    free(cfg->directory);
    free(cfg->subaddress_separators);
    memset(cfg, 0, sizeof(*cfg));
}

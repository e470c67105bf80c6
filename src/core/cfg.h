/*
 * cfg - the coex configuration file: "key = value" lines, "#" comments.
 *
 * This first version carries what the directory tools need; the relay's
 * connectors and routes join it with coexd. Every key is documented in
 * docs/configuration.md. Errors name the file and line.
 */
#ifndef COEX_CFG_H
#define COEX_CFG_H

#include <stddef.h>

/* the embedded default, used when no file is given and etc/coex.conf does not exist */
#define CFG_DEFAULT_PATH "etc/coex.conf"

struct coex_config {
    char *source;                /* where it came from: a path or "(embedded default)"; owned */
    char *directory;             /* SQLite directory file; owned */
    char *subaddress_separators; /* characters that start a sub-address tag; owned */
};

/*
 * cfg_load - read path (NULL: CFG_DEFAULT_PATH when it exists, else the
 * embedded default) into cfg (caller owns; cfg_cleanup). -1 with
 * "file:line: reason" in err.
 */
int cfg_load(const char *path, struct coex_config *cfg, char *err, size_t errlen);
/* cfg_cleanup - free what cfg_load allocated */
void cfg_cleanup(struct coex_config *cfg);

#endif

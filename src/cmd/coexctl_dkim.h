/*
 * coexctl_dkim - the `coexctl dkim` subcommands: keygen, dns, sign, verify,
 * bench. See docs/dkim.md.
 */
#ifndef COEX_COEXCTL_DKIM_H
#define COEX_COEXCTL_DKIM_H

/*
 * coexctl_dkim_main - run `coexctl dkim ARGS...`; argv[0] is the subcommand
 * (argv borrowed). Returns the exit status: 0 done (verify: every signature
 * passed), 1 failed, 2 usage.
 */
struct coex_config;
/* cfg (borrowed) supplies the configured keys for `dkim dns --domain D` without --key */
int coexctl_dkim_main(const struct coex_config *cfg, int argc, char **argv);

#endif

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
int coexctl_dkim_main(int argc, char **argv);

#endif

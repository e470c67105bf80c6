/*
 * coexctl_arc - the `coexctl arc` subcommands: seal, verify (RFC 8617
 * offline). See docs/arc.md.
 */
#ifndef COEX_COEXCTL_ARC_H
#define COEX_COEXCTL_ARC_H

/*
 * coexctl_arc_main - run `coexctl arc ARGS...`; argv[0] is the subcommand
 * (argv borrowed). Returns the exit status: 0 done (verify: the chain
 * passed), 1 failed, 2 usage.
 */
int coexctl_arc_main(int argc, char **argv);

#endif

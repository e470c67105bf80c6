/*
 * qmgr_file - the file:DIR next hop (demo and tests): each message becomes
 * DIR/ID.eml holding its bytes exactly as queued, and DIR/ID.env holding the
 * envelope, one "from <addr>" line then one "rcpt <addr>" line per recipient
 * of this delivery.
 *
 * Both files appear atomically: written to DIR/.ID.env.tmp and DIR/.ID.tmp,
 * fsync'ed, renamed (the .env first, so whoever sees ID.eml finds ID.env),
 * then DIR itself is fsync'ed so the names survive a crash. A delivery that
 * cannot be written is deferred like a 4xx.
 *
 * Does not: run off the event loop: the writes and fsyncs block it, which is
 * fine for demos and tests and the reason production routes use smtp: or mx:.
 */
#include "qmgr_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define QMGR_LIMIT_ENVELOPE ((size_t)1 << 20)

/* qmgr_file_put - write all of data to path, fsync, close; 0 or -1 with errno */
static int qmgr_file_put(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail;
        done += (size_t)n;
    }
    if (fsync(fd) < 0)
        goto fail;
    return close(fd);
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* qmgr_file_atomic - data to dir/name through dir/tmpname; 0 or -1 with errno */
static int qmgr_file_atomic(const char *dir, const char *tmpname, const char *name,
                            const char *data, size_t len)
{
    char tmp[PATH_MAX], final[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s/%s", dir, tmpname) >= sizeof(tmp) ||
        (size_t)snprintf(final, sizeof(final), "%s/%s", dir, name) >= sizeof(final)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (qmgr_file_put(tmp, data, len) < 0 || rename(tmp, final) < 0) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    return 0;
}

/* qmgr_file_envelope - the .env text for this delivery; 0 or -1 */
static int qmgr_file_envelope(const struct qmgr_msg *qm, struct buf *env)
{
    if (buf_printf(env, "from <%s>\n", qm->m->mail_from) < 0)
        return -1;
    for (size_t j = 0; j < qm->attempt_count; j++)
        if (buf_printf(env, "rcpt <%s>\n", qm->m->rcpts[qm->idx[j]].addr) < 0)
            return -1;
    return 0;
}

/* qmgr_file_write - both files and the directory sync; 0 or -1 with a reason */
static int qmgr_file_write(struct qmgr_msg *qm, const char *dir, char *err, size_t errlen)
{
    char name[SPOOL_ID_SIZE + 16], tmpname[SPOOL_ID_SIZE + 16];
    struct buf env;
    int rc = -1, dir_fd = -1;
    buf_init(&env, QMGR_LIMIT_ENVELOPE);
    if (qmgr_file_envelope(qm, &env) < 0) {
        snprintf(err, errlen, "envelope too large");
        goto fail;
    }
    snprintf(tmpname, sizeof(tmpname), ".%s.env.tmp", qm->id);
    snprintf(name, sizeof(name), "%s.env", qm->id);
    if (qmgr_file_atomic(dir, tmpname, name, env.data, env.len) < 0) {
        snprintf(err, errlen, "cannot write %s/%s: %s", dir, name, strerror(errno));
        goto fail;
    }
    snprintf(tmpname, sizeof(tmpname), ".%s.tmp", qm->id);
    snprintf(name, sizeof(name), "%s.eml", qm->id);
    if (qmgr_file_atomic(dir, tmpname, name, qm->data.data ? qm->data.data : "", qm->data.len) <
        0) {
        snprintf(err, errlen, "cannot write %s/%s: %s", dir, name, strerror(errno));
        goto fail;
    }
    dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0 || fsync(dir_fd) < 0) {
        snprintf(err, errlen, "cannot sync %s: %s", dir, strerror(errno));
        goto fail;
    }
    rc = 0;
fail:
    if (dir_fd >= 0)
        close(dir_fd);
    buf_cleanup(&env);
    return rc;
}

/* qmgr_file_deliver - one attempt to a file: next hop */
void qmgr_file_deliver(struct qmgr_msg *qm, const struct cfg_route *route)
{
    char relay[PATH_MAX + 8], err[PATH_MAX + 128];
    struct smtpc_reply reply;
    snprintf(relay, sizeof(relay), "file:%s", route->hop_dir);
    int rc = qmgr_msg_attempt(qm);
    if (rc == 1) {
        qm->state = QMGR_MSG_IDLE;
        qmgr_msg_finish(qm);
        return;
    }
    if (rc < 0)
        smtpc_local(&reply, "4.3.0", "cannot read the message from the queue");
    else if (qmgr_file_write(qm, route->hop_dir, err, sizeof(err)) < 0)
        smtpc_local(&reply, "4.3.0", "%s", err);
    else {
        smtpc_local(&reply, "2.0.0", "250 2.0.0 written as %s/%s.eml", route->hop_dir, qm->id);
        reply.code = 250;
    }
    if (reply.code == 0)
        log_warn("%s: file delivery failed: %s", qm->id, reply.text);
    qmgr_outcome_all(qm, relay, &reply);
}

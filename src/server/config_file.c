/*
 * Reading configuration files: zinx_config_load_file() and the lookup
 * Zinx does, zinx_config_load_default().
 */
#if !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/array.h"
#include "server/config_internal.h"
#include "zinx/error.h"

/* Zinx reads the whole file at once; anything this big is not a config. */
#define FILE_LIMIT (1024u * 1024u)

#define DEFAULT_PATH "./conf/zinx.json"

/*
 * Writes a description of errno value e. strerror() may share one buffer
 * between threads, and strerror_r() has two incompatible signatures, so
 * the GNU one is picked when glibc exposes it.
 */
static void describe_errno(int e, char *buf, size_t len)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    const char *s = strerror_r(e, buf, len);
    if (s != buf)
        zinx__config_msg(buf, len, "%s", s);
#else
    if (strerror_r(e, buf, len) != 0)
        zinx__config_msg(buf, len, "error %d", e);
#endif
}

/*
 * Reads fd to its end into a new buffer (not NUL-terminated: the length
 * goes with it). hint is the size fstat() reported; room for one byte
 * more lets the read that sees EOF succeed without growing the buffer. A
 * file that grows past FILE_LIMIT while it is read is refused all the
 * same.
 */
static int read_all(int fd, size_t hint, char **text, size_t *len, char *why,
                    size_t why_len)
{
    char *buf = NULL;
    size_t got = 0;
    size_t cap = 0;
    for (;;) {
        if (got > FILE_LIMIT) {
            zinx__config_msg(why, why_len, "larger than 1 MiB");
            free(buf);
            return ZINX_ECONFIG;
        }
        size_t need = (got > hint ? got : hint) + 1;
        if (ZINX__ARRAY_RESERVE(buf, cap, need) != 0)
            break;
        /* Never read more than one byte past the limit. */
        size_t end = cap < FILE_LIMIT + 1 ? cap : FILE_LIMIT + 1;
        ssize_t n = read(fd, buf + got, end - got);
        if (n == 0) {
            *text = buf;
            *len = got;
            return 0;
        }
        if (n > 0) {
            got += (size_t)n;
        } else if (errno != EINTR) {
            char e[ZINX__CONFIG_WHY_LEN];
            describe_errno(errno, e, sizeof(e));
            zinx__config_msg(why, why_len, "cannot read: %s", e);
            free(buf);
            return ZINX_ECONFIG;
        }
    }
    free(buf);
    zinx__config_msg(why, why_len, "out of memory");
    return ZINX_ENOMEM;
}

/* Returned by read_file() for a path that does not exist. */
#define FILE_MISSING 1

static int read_file(const char *path, char **text, size_t *len, char *why,
                     size_t why_len)
{
    char e[ZINX__CONFIG_WHY_LEN];
    /* O_NONBLOCK keeps a FIFO from blocking the open; it is refused
     * below as not a regular file anyway. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return FILE_MISSING;
        describe_errno(errno, e, sizeof(e));
        zinx__config_msg(why, why_len, "cannot open: %s", e);
        return ZINX_ECONFIG;
    }
    struct stat st;
    int rc = ZINX_ECONFIG;
    if (fstat(fd, &st) != 0) {
        describe_errno(errno, e, sizeof(e));
        zinx__config_msg(why, why_len, "cannot stat: %s", e);
    } else if (S_ISDIR(st.st_mode)) {
        describe_errno(EISDIR, e, sizeof(e));
        zinx__config_msg(why, why_len, "cannot read: %s", e);
    } else if (!S_ISREG(st.st_mode)) {
        zinx__config_msg(why, why_len, "not a regular file");
    } else if (st.st_size > (off_t)FILE_LIMIT) {
        zinx__config_msg(why, why_len, "larger than 1 MiB");
    } else {
        rc = read_all(fd, (size_t)st.st_size, text, len, why, why_len);
    }
    close(fd);
    return rc;
}

/*
 * Loads path as zinx_config_load_file() does, except that a missing file
 * is an error when env names the variable that gave the path: someone
 * asked for that file, and running on defaults instead would hide the
 * mistake. Without env (the path is a default) it means "use defaults".
 */
static int load_path(zinx_config_t *cfg, const char *path, const char *env,
                     const zinx__config_ctx_t *c)
{
    char why[ZINX__CONFIG_WHY_LEN];
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len, why, sizeof(why));
    if (rc == FILE_MISSING && env != NULL) {
        zinx__config_msg(c->err, c->err_len,
                         "%s names %s, which does not exist", env, path);
        return ZINX_ECONFIG;
    }
    if (rc == FILE_MISSING) {
        if (c->warn != NULL) {
            char msg[ZINX_CONFIG_PATH_MAX + 64];
            zinx__config_msg(msg, sizeof(msg), "%s: not found, using defaults",
                             path);
            c->warn(ZINX_LOG_INFO, msg, c->warn_udata);
        }
        return 0;
    }
    if (rc != 0) {
        zinx__config_msg(c->err, c->err_len, "%s: %s", path, why);
        return rc;
    }
    rc = zinx_config_load_json(cfg, text, len, path, c->err, c->err_len,
                               c->warn, c->warn_udata);
    free(text);
    return rc;
}

int zinx_config_load_file(zinx_config_t *cfg, const char *path, char *err,
                          size_t err_len, zinx_log_fn warn, void *warn_udata)
{
    zinx__config_ctx_t c = {path, err, err_len, warn, warn_udata, 0};
    zinx__config_msg(err, err_len, "%s", "");
    if (cfg == NULL || path == NULL) {
        zinx__config_msg(err, err_len, "invalid argument");
        return ZINX_EINVAL;
    }
    /* Checked before the file, so that a missing file (which changes
     * nothing and returns 0) does not hide the mistake. */
    int rc = zinx__config_check_size(cfg->struct_size, err, err_len);
    if (rc != 0)
        return rc;
    return load_path(cfg, path, NULL, &c);
}

int zinx_config_load_default(zinx_config_t *cfg, char *err, size_t err_len,
                             zinx_log_fn warn, void *warn_udata)
{
    static const char env[] = "ZINX_CONFIG_FILE_PATH";
    const char *path = getenv(env);
    if (path == NULL || path[0] == '\0')
        return zinx_config_load_file(cfg, DEFAULT_PATH, err, err_len, warn,
                                     warn_udata);
    zinx__config_ctx_t c = {path, err, err_len, warn, warn_udata, 0};
    zinx__config_msg(err, err_len, "%s", "");
    if (cfg == NULL) {
        zinx__config_msg(err, err_len, "invalid argument");
        return ZINX_EINVAL;
    }
    int rc = zinx__config_check_size(cfg->struct_size, err, err_len);
    if (rc != 0)
        return rc;
    return load_path(cfg, path, env, &c);
}
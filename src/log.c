/* The per-server logger: level filter, default fd sink, replaceable sink. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* Long enough for any record the library writes; longer ones are cut. */
#define LOG_LINE_MAX 1024

const char *zinx_log_level_name(zinx_log_level_t level)
{
    switch (level) {
    case ZINX_LOG_DEBUG:
        return "DEBUG";
    case ZINX_LOG_INFO:
        return "INFO";
    case ZINX_LOG_WARN:
        return "WARN";
    case ZINX_LOG_ERROR:
        return "ERROR";
    }
    return "UNKNOWN";
}

zinx_log_level_t zinx_log_min_level(int isolation_level)
{
    if (isolation_level <= 0)
        return ZINX_LOG_DEBUG;
    if (isolation_level >= 3)
        return ZINX_LOG_ERROR;
    return (zinx_log_level_t)isolation_level;
}

void zinx__logger_init(zinx__logger_t *lg)
{
    memset(lg, 0, sizeof(*lg));
    lg->fd = STDERR_FILENO;
    lg->min_level = ZINX_LOG_DEBUG;
}

static int make_dir(const char *dir)
{
    if (mkdir(dir, 0755) == 0 || errno == EEXIST)
        return 0;
    return -errno;
}

int zinx__logger_open(zinx__logger_t *lg, const zinx_config_t *cfg)
{
    lg->min_level = zinx_log_min_level(cfg->log_isolation_level);
    snprintf(lg->name, sizeof(lg->name), "%s", cfg->name);
    if (cfg->log_file[0] == '\0')
        return 0;
    int rc = make_dir(cfg->log_dir);
    if (rc != 0)
        return rc;
    char path[ZINX_CONFIG_PATH_MAX + ZINX_CONFIG_NAME_MAX + 2];
    snprintf(path, sizeof(path), "%s/%s", cfg->log_dir, cfg->log_file);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    lg->fd = fd;
    lg->owns_fd = true;
    return 0;
}

void zinx__logger_close(zinx__logger_t *lg)
{
    if (lg->owns_fd)
        close(lg->fd);
    lg->fd = STDERR_FILENO;
    lg->owns_fd = false;
}

static size_t format_time(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(out + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000L);
    return n + (m > 0 ? (size_t)m : 0);
}

void zinx__logger_vlog(zinx__logger_t *lg, zinx_log_level_t level,
                       const char *fmt, va_list ap)
{
    if (level < lg->min_level)
        return;
    char msg[LOG_LINE_MAX];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (lg->sink != NULL) {
        lg->sink(level, msg, lg->udata);
        return;
    }
    /* One write per record keeps concurrent records from interleaving. */
    char line[LOG_LINE_MAX + 128];
    size_t n = format_time(line, sizeof(line));
    int m = snprintf(line + n, sizeof(line) - n, " [%s] %s: %s\n",
                     zinx_log_level_name(level), lg->name, msg);
    if (m < 0)
        return;
    n += (size_t)m;
    if (n >= sizeof(line)) {
        n = sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    ssize_t w = write(lg->fd, line, n);
    ZINX__UNUSED(w); /* nowhere left to report a failed log write */
}

zinx_log_level_t zinx__log_level_of(const zinx_server_t *server)
{
    return server->log.min_level;
}

void zinx__log(zinx_server_t *server, zinx_log_level_t level, const char *fmt,
               ...)
{
    va_list ap;
    va_start(ap, fmt);
    zinx__logger_vlog(&server->log, level, fmt, ap);
    va_end(ap);
}

void zinx_server_log(zinx_server_t *server, zinx_log_level_t level,
                     const char *fmt, ...)
{
    if (server == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    zinx__logger_vlog(&server->log, level, fmt, ap);
    va_end(ap);
}

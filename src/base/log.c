/*
 * The per-server logger: level filter, default fd sink, replaceable sink,
 * rate limits for repeated kinds, and the log file's reopen, rotation and
 * retention (Zinx's LogFileSize, LogSaveDays and LogCons).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* Long enough for any record the library writes; longer ones are cut. */
#define LOG_LINE_MAX 1024

/* Zinx's log writer defaults, used when the key is 0. */
#define DEFAULT_FILE_SIZE (64ull * 1024 * 1024)
#define DEFAULT_SAVE_DAYS 31

/* LogDir/LogFile, and room for a rotation suffix after it. */
#define PATH_CAP (ZINX_CONFIG_PATH_MAX + ZINX_CONFIG_NAME_MAX + 2)
#define ROTATED_CAP (PATH_CAP + 32)

/* "YYYYmmdd-HHMMSS", the UTC time a rotated file's name carries. */
#define STAMP_LEN 15

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
    pthread_mutex_init(&lg->lock, NULL);
    lg->fd = STDERR_FILENO;
    lg->min_level = ZINX_LOG_DEBUG;
    for (int k = 0; k < ZINX__LOGK_COUNT; k++) {
        atomic_init(&lg->limits[k].last_ms, 0);
        atomic_init(&lg->limits[k].suppressed, 0);
        atomic_init(&lg->limits[k].level, ZINX_LOG_DEBUG);
    }
}

/* ---- writing without SIGPIPE -------------------------------------------- */

/*
 * Writes buf to fd; a failure drops the record, as there is nowhere left
 * to report it. A closed pipe (a log shipper that went away, `| head`)
 * must not kill the process, yet a library may not change the process's
 * SIGPIPE disposition: the signal is blocked on this thread only for the
 * write, and the one the write raised is taken back before the mask is
 * restored. A SIGPIPE that was pending already is not ours and stays.
 */
static ssize_t write_quietly(int fd, const char *buf, size_t n)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    bool was_pending =
        sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    ssize_t w;
    do {
        w = write(fd, buf, n);
    } while (w < 0 && errno == EINTR);
    if (w < 0 && errno == EPIPE && !was_pending) {
        const struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return w;
}

/* ---- the log file: open, reopen, rotate, retention ---------------------- */

static int make_dir(const char *dir)
{
    if (mkdir(dir, 0755) == 0 || errno == EEXIST)
        return 0;
    return -errno;
}

static void file_path(const zinx__logger_t *lg, char out[PATH_CAP])
{
    snprintf(out, PATH_CAP, "%s/%s", lg->dir, lg->file);
}

/* Lock held (or before any other thread exists): replaces the file
   descriptor with a fresh open of the path. */
static int open_file_locked(zinx__logger_t *lg)
{
    char path[PATH_CAP];
    file_path(lg, path);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    struct stat st;
    uint64_t size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (lg->owns_fd)
        close(lg->fd);
    lg->fd = fd;
    lg->owns_fd = true;
    lg->size = size;
    return 0;
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return n > 0;
}

/* Is name "<LogFile>.YYYYmmdd-HHMMSS" or that plus ".N"? Other files in
   LogDir, including another server's logs, are never touched. */
static bool is_rotated_name(const zinx__logger_t *lg, const char *name)
{
    size_t flen = strlen(lg->file);
    if (strncmp(name, lg->file, flen) != 0 || name[flen] != '.')
        return false;
    const char *t = name + flen + 1;
    if (strlen(t) < STAMP_LEN || !all_digits(t, 8) || t[8] != '-' ||
        !all_digits(t + 9, 6))
        return false;
    const char *rest = t + STAMP_LEN;
    return *rest == '\0' ||
           (*rest == '.' && all_digits(rest + 1, strlen(rest + 1)));
}

/* Deletes this log's rotated files last modified over LogSaveDays ago. */
static void sweep_old_files(const zinx__logger_t *lg)
{
    DIR *d = opendir(lg->dir);
    if (d == NULL)
        return;
    time_t limit = time(NULL) - (time_t)lg->save_days * 86400;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (!is_rotated_name(lg, e->d_name) ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode) || st.st_mtime >= limit)
            continue;
        unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

/* The first free name "<path>.<UTC stamp>[.N]" for the current file. */
static bool rotated_name(const char *path, char out[ROTATED_CAP])
{
    struct tm tm;
    time_t now = time(NULL);
    char stamp[STAMP_LEN + 1];
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
    snprintf(out, ROTATED_CAP, "%s.%s", path, stamp);
    struct stat st;
    for (int i = 1; lstat(out, &st) == 0; i++) {
        if (i > 9999)
            return false;
        snprintf(out, ROTATED_CAP, "%s.%s.%d", path, stamp, i);
    }
    return errno == ENOENT;
}

/* Lock held: moves the full file aside and starts a new one. When that
   fails the old file is kept and written on; size restarts so that the
   next attempt comes one LogFileSize later, not at every record. */
static void rotate_locked(zinx__logger_t *lg)
{
    char path[PATH_CAP], dst[ROTATED_CAP];
    file_path(lg, path);
    if (!rotated_name(path, dst) || rename(path, dst) != 0 ||
        open_file_locked(lg) != 0) {
        lg->size = 0;
        return;
    }
    sweep_old_files(lg);
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
    snprintf(lg->dir, sizeof(lg->dir), "%s", cfg->log_dir);
    snprintf(lg->file, sizeof(lg->file), "%s", cfg->log_file);
    lg->max_size = cfg->log_file_size ? cfg->log_file_size : DEFAULT_FILE_SIZE;
    lg->save_days = cfg->log_save_days ? cfg->log_save_days : DEFAULT_SAVE_DAYS;
    lg->cons = cfg->log_cons != 0;
    pthread_mutex_lock(&lg->lock);
    rc = open_file_locked(lg);
    pthread_mutex_unlock(&lg->lock);
    if (rc == 0)
        sweep_old_files(lg);
    return rc;
}

int zinx__logger_reopen(zinx__logger_t *lg)
{
    pthread_mutex_lock(&lg->lock);
    int rc = lg->owns_fd ? open_file_locked(lg) : 0;
    bool reopened = lg->owns_fd && rc == 0;
    pthread_mutex_unlock(&lg->lock);
    return reopened ? 1 : rc;
}

/* ---- records -------------------------------------------------------------
 */

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

/* One write per record keeps concurrent records from interleaving; the
   lock keeps the descriptor and the size in step with rotations. */
static void write_record(zinx__logger_t *lg, const char *line, size_t n)
{
    pthread_mutex_lock(&lg->lock);
    if (lg->owns_fd && lg->size > 0 && lg->size + n > lg->max_size)
        rotate_locked(lg);
    ssize_t w = write_quietly(lg->fd, line, n);
    if (w > 0)
        lg->size += (uint64_t)w;
    if (lg->owns_fd && lg->cons)
        write_quietly(STDERR_FILENO, line, n);
    pthread_mutex_unlock(&lg->lock);
}

static void emit(zinx__logger_t *lg, zinx_log_level_t level, const char *msg)
{
    if (lg->sink != NULL) {
        lg->sink(level, msg, lg->udata);
        return;
    }
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
    write_record(lg, line, n);
}

void zinx__logger_vlog(zinx__logger_t *lg, zinx_log_level_t level,
                       const char *fmt, va_list ap)
{
    if (level < lg->min_level)
        return;
    char msg[LOG_LINE_MAX];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    emit(lg, level, msg);
}

void zinx__logger_logf(zinx__logger_t *lg, zinx_log_level_t level,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    zinx__logger_vlog(lg, level, fmt, ap);
    va_end(ap);
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

/* ---- rate limits ---------------------------------------------------------
 */

static const char *kind_name(zinx__log_kind_t kind)
{
    static const char *const names[ZINX__LOGK_COUNT] = {
        [ZINX__LOGK_OOM] = "out-of-memory",
        [ZINX__LOGK_SLOW_READER] = "slow-reader",
        [ZINX__LOGK_OVERSIZE] = "oversize-frame",
        [ZINX__LOGK_TIMEOUT] = "timeout",
        [ZINX__LOGK_DEAD_PEER] = "dead-peer",
        [ZINX__LOGK_UNKNOWN_MSGS] = "unknown-messages",
        [ZINX__LOGK_REFUSED] = "refused-connection",
        [ZINX__LOGK_CLUSTER_SLOW] = "cluster-slow-consumer",
    };
    return (unsigned)kind < ZINX__LOGK_COUNT ? names[kind] : "unknown";
}

/*
 * Claims the right to emit a record of this kind now. Exactly one caller
 * wins per interval (the compare-and-swap); every loser is counted, so
 * the winner of the next interval can report them. *since receives when
 * the previous record was emitted.
 */
static bool claim_slot(zinx__log_limit_t *lim, zinx_log_level_t level,
                       uint64_t now, uint64_t *since)
{
    uint64_t last = atomic_load(&lim->last_ms);
    if ((last == 0 || now - last >= ZINX__LOG_LIMIT_MS) &&
        atomic_compare_exchange_strong(&lim->last_ms, &last, now)) {
        *since = last;
        return true;
    }
    atomic_store_explicit(&lim->level, (int)level, memory_order_relaxed);
    atomic_fetch_add(&lim->suppressed, 1);
    return false;
}

void zinx__log_limited(zinx_server_t *server, zinx__log_kind_t kind,
                       zinx_log_level_t level, const char *fmt, ...)
{
    zinx__logger_t *lg = &server->log;
    if (level < lg->min_level || (unsigned)kind >= ZINX__LOGK_COUNT)
        return;
    zinx__log_limit_t *lim = &lg->limits[kind];
    uint64_t now = zinx__now_ms();
    now = now != 0 ? now : 1; /* 0 means "never emitted" */
    uint64_t since;
    if (!claim_slot(lim, level, now, &since))
        return;
    char msg[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    uint64_t dropped = atomic_exchange(&lim->suppressed, 0);
    if (dropped > 0 && n >= 0 && (size_t)n < sizeof(msg))
        snprintf(msg + n, sizeof(msg) - (size_t)n,
                 " (%llu more like this suppressed in the last %llu ms)",
                 (unsigned long long)dropped,
                 (unsigned long long)(now - since));
    emit(lg, level, msg);
}

/* The counts no later record will report, so that totals add up. */
static void report_suppressed(zinx__logger_t *lg)
{
    for (int k = 0; k < ZINX__LOGK_COUNT; k++) {
        uint64_t dropped = atomic_exchange(&lg->limits[k].suppressed, 0);
        if (dropped == 0)
            continue;
        char msg[128];
        snprintf(msg, sizeof(msg), "%llu more %s record(s) suppressed",
                 (unsigned long long)dropped, kind_name((zinx__log_kind_t)k));
        emit(lg, (zinx_log_level_t)atomic_load(&lg->limits[k].level), msg);
    }
}

void zinx__logger_close(zinx__logger_t *lg)
{
    report_suppressed(lg);
    if (lg->owns_fd)
        close(lg->fd);
    lg->fd = STDERR_FILENO;
    lg->owns_fd = false;
    pthread_mutex_destroy(&lg->lock);
}

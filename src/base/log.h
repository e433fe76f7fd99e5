/*
 * The per-server logger and its rate limits.
 */
#ifndef ZINX_BASE_LOG_H
#define ZINX_BASE_LOG_H

#include <stdarg.h>
#include <stdatomic.h>

#include "base/base.h"

/* Records below the configured level cost one comparison, no formatting. */
#define ZINX__LOG(server, level, ...)                  \
    do {                                               \
        if ((level) >= zinx__log_level_of(server))     \
            zinx__log((server), (level), __VA_ARGS__); \
    } while (0)

/* ---- log.c ------------------------------------------------------------ */

/*
 * Kinds of records that can repeat without bound (one per connection
 * closed, per failed allocation, ...). Each kind is rate-limited on its
 * own by ZINX__LOG_LIMITED(), so a storm of one kind cannot hide another.
 */
typedef enum zinx__log_kind {
    ZINX__LOGK_OOM,          /* out of memory */
    ZINX__LOGK_SLOW_READER,  /* closed for not reading its output */
    ZINX__LOGK_OVERSIZE,     /* closed for a frame over MaxPacketSize */
    ZINX__LOGK_TIMEOUT,      /* closed by the frame or idle timeout */
    ZINX__LOGK_DEAD_PEER,    /* closed by the heartbeat */
    ZINX__LOGK_UNKNOWN_MSGS, /* closed for too many unrouted frames */
    ZINX__LOGK_REFUSED,      /* a new connection refused at accept */
    ZINX__LOGK_BAD_FRAME,    /* a frame its codec refused */
    ZINX__LOGK_HANDSHAKE,    /* a PROXY, TLS or WebSocket handshake failed */
    ZINX__LOGK_CLUSTER_SLOW, /* NATS dropped cluster messages for us */
    ZINX__LOGK_COUNT
} zinx__log_kind_t;

/* At most one record of a kind per this many milliseconds. */
#define ZINX__LOG_LIMIT_MS 1000u

/* Rate-limit state of one kind; lock-free, shared by every thread. */
typedef struct zinx__log_limit {
    atomic_uint_least64_t last_ms;    /* monotonic; 0: never emitted */
    atomic_uint_least64_t suppressed; /* records dropped since then */
    atomic_int level;                 /* level of the last dropped one */
} zinx__log_limit_t;

typedef struct zinx__logger {
    zinx_log_fn sink; /* NULL: write to fd */
    void *udata;
    zinx_log_level_t min_level; /* set before start, then read-only */
    char name[ZINX_CONFIG_NAME_MAX];
    /* lock guards the file below: the descriptor is swapped by a reopen
       (SIGHUP, zinx_server_reopen_log) or a rotation while other threads
       write, and size must match what was written. */
    pthread_mutex_t lock;
    int fd; /* stderr or the opened LogFile */
    bool owns_fd;
    bool cons;         /* LogCons: copy file records to stderr */
    uint64_t size;     /* bytes in the current file */
    uint64_t max_size; /* LogFileSize: rotate beyond this */
    int save_days;     /* LogSaveDays: keep rotated files this long */
    char dir[ZINX_CONFIG_PATH_MAX];
    char file[ZINX_CONFIG_NAME_MAX];
    zinx__log_limit_t limits[ZINX__LOGK_COUNT];
} zinx__logger_t;

void zinx__logger_init(zinx__logger_t *lg);
/* Opens LogDir/LogFile when set, and removes rotated files older than
   LogSaveDays. Returns 0 or a negated errno. Thread: the one starting. */
int zinx__logger_open(zinx__logger_t *lg, const zinx_config_t *cfg);
/* Opens LogDir/LogFile again and swaps it in (after an external rename).
   Returns 1 when it did, 0 without a log file, or a negated errno (the
   old file is kept). Thread: any. */
int zinx__logger_reopen(zinx__logger_t *lg);
/* Reports what the rate limits still hold, closes the file and releases
   the logger. Thread: the one freeing the server, once. */
void zinx__logger_close(zinx__logger_t *lg);
void zinx__logger_vlog(zinx__logger_t *lg, zinx_log_level_t level,
                       const char *fmt, va_list ap);
void zinx__logger_logf(zinx__logger_t *lg, zinx_log_level_t level,
                       const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
zinx_log_level_t zinx__log_level_of(const zinx_server_t *server);
void zinx__log(zinx_server_t *server, zinx_log_level_t level, const char *fmt,
               ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/*
 * Logs a record of a kind that can repeat without bound: at most one
 * record per kind per ZINX__LOG_LIMIT_MS. Dropped records are counted;
 * the next record of the kind that passes ends with
 * " (N more like this suppressed in the last T ms)", and
 * zinx__logger_close() reports counts still pending, so the totals are
 * never lost. A dropped record costs a clock read and two atomic
 * operations, no formatting and no lock. Thread: any.
 */
void zinx__log_limited(zinx_server_t *server, zinx__log_kind_t kind,
                       zinx_log_level_t level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* zinx__log_limited() behind the one comparison of ZINX__LOG. */
#define ZINX__LOG_LIMITED(server, kind, level, ...)                    \
    do {                                                               \
        if ((level) >= zinx__log_level_of(server))                     \
            zinx__log_limited((server), (kind), (level), __VA_ARGS__); \
    } while (0)

#endif /* ZINX_BASE_LOG_H */

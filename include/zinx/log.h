/*
 * Logging.
 *
 * The library writes nothing to stdout or stderr except through a log
 * sink. Each server owns its own logger (there is no process-wide one):
 * by default it writes one line per record to stderr, or appends to
 * LogDir/LogFile when the configuration names a file, and drops records
 * below the configured LogIsolationLevel. zinx_server_set_log_sink()
 * replaces the destination. A log file is rotated by LogFileSize, its
 * rotated files are kept for LogSaveDays, and zinx_server_reopen_log()
 * (SIGHUP under zinx_server_serve()) reopens it. A record that cannot be
 * written is dropped; writing one never raises SIGPIPE.
 */
#ifndef ZINX_LOG_H
#define ZINX_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility: what is declared here is
   its exported API. */
#pragma GCC visibility push(default)

typedef enum zinx_log_level {
    ZINX_LOG_DEBUG = 0,
    ZINX_LOG_INFO = 1,
    ZINX_LOG_WARN = 2,
    ZINX_LOG_ERROR = 3
} zinx_log_level_t;

/*
 * A log sink receives one formatted record without a trailing newline.
 * message is valid only during the call. Sinks are called from any
 * framework thread, possibly from several at once, so a sink must be
 * thread-safe; it must not call back into the server that logs.
 */
typedef void (*zinx_log_fn)(zinx_log_level_t level, const char *message,
                            void *udata);

/* Returns "DEBUG", "INFO", "WARN" or "ERROR". Thread: any. */
const char *zinx_log_level_name(zinx_log_level_t level);

/*
 * Returns the lowest level that passes Zinx's LogIsolationLevel: 0 lets
 * everything through, 1 drops debug, 2 drops debug and info, 3 keeps only
 * errors. Values outside 0..3 are clamped. Thread: any.
 */
zinx_log_level_t zinx_log_min_level(int isolation_level);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* ZINX_LOG_H */

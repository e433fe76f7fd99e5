/*
 * What the configuration files share. Never installed.
 *
 *   config.c        defaults, and the struct_size rule
 *   config_keys.c   the key table: every key's name, field, type, range
 *   config_msg.c    messages: formatting, quoting user text
 *   config_check.c  checking values and zinx_config_validate()
 *   config_json.c   applying JSON text: zinx_config_load_json()
 *   config_file.c   reading files: zinx_config_load_file(), _default()
 *
 * Nothing here keeps state between calls, so any thread may load or
 * validate a configuration of its own.
 */
#ifndef ZINX_SERVER_CONFIG_INTERNAL_H
#define ZINX_SERVER_CONFIG_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "zinx/config.h"

/* Room for one problem description, before origin and key are added. */
#define ZINX__CONFIG_WHY_LEN 192

/* Room for a user-supplied name or value quoted back in a message. */
#define ZINX__CONFIG_QUOTE_LEN 72

#if defined(__GNUC__)
#define ZINX__CONFIG_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define ZINX__CONFIG_PRINTF(f, a)
#endif

/* Where the messages of one load go. */
typedef struct zinx__config_ctx {
    const char *origin; /* names the source in messages */
    char *err;
    size_t err_len;
    zinx_log_fn warn; /* may be NULL */
    void *warn_udata;
    size_t struct_size; /* of the caller's zinx_config_t */
} zinx__config_ctx_t;

/* ---- config.c ---------------------------------------------------------- */

/*
 * Checks a caller's struct_size (see zinx/config.h). Returns 0, or
 * ZINX_EINVAL with the problem in why.
 */
int zinx__config_check_size(uint32_t size, char *why, size_t why_len);

/*
 * Makes *full, a whole zinx_config_t of this library, from the caller's
 * cfg: its first cfg->struct_size bytes, defaults for the fields beyond
 * them. Reads no byte of cfg past struct_size. NULL cfg gives the
 * defaults. full->struct_size is sizeof(zinx_config_t). Returns 0, or
 * ZINX_EINVAL (struct_size refused) with the problem in why and *full
 * holding the defaults.
 */
int zinx__config_import(zinx_config_t *full, const zinx_config_t *cfg,
                        char *why, size_t why_len);

/*
 * Copies the first cfg->struct_size bytes of *full back into the
 * caller's cfg (struct_size itself kept); the reverse of
 * zinx__config_import() for a cfg it accepted.
 */
void zinx__config_export(zinx_config_t *cfg, const zinx_config_t *full);

/* ---- config_keys.c ------------------------------------------------------ */

typedef enum zinx__key_type {
    ZINX__KEY_STRING, /* char array; max is the longest length */
    ZINX__KEY_HOST,   /* ZINX__KEY_STRING that must also pass the host
                         checks */
    ZINX__KEY_INT,    /* int */
    ZINX__KEY_U32,    /* uint32_t */
    ZINX__KEY_U64,    /* uint64_t */
    ZINX__KEY_BOOL,   /* int, 0 or 1, written as true or false */
    ZINX__KEY_FORMAT, /* zinx_packet_format_t, written as a format name */
    ZINX__KEY_MODE,   /* uint32_t permission bits, written as an octal
                         string or a number */
    ZINX__KEY_NAMED   /* uint32_t enumeration, written as one of its
                         names (see zinx__key_names_t) */
} zinx__key_type_t;

/* One spelling of a ZINX__KEY_NAMED value. */
typedef struct zinx__key_name {
    const char *name; /* matched in any letter case */
    uint32_t value;
} zinx__key_name_t;

/* The names of a ZINX__KEY_NAMED key. A value may have several
   spellings; the first one listed is the one messages show. */
typedef struct zinx__key_names {
    const char *what;     /* the kind of value, for messages: "I/O backend" */
    const char *expected; /* the names to suggest: "epoll or io_uring" */
    const zinx__key_name_t *names;
    size_t count;
} zinx__key_names_t;

typedef struct zinx__key_spec {
    const char *name; /* canonical spelling: Zinx's Go field name */
    zinx__key_type_t type;
    size_t offset; /* of the field in zinx_config_t */
    long long min;
    long long max;
    const zinx__key_names_t *names; /* ZINX__KEY_NAMED only, else NULL */
} zinx__key_spec_t;

/* Every key, in the order of the documentation's table. */
extern const zinx__key_spec_t zinx__config_keys[];
extern const size_t zinx__config_key_count;

/*
 * ASCII-only case-insensitive comparison, as Go's decoder matches keys
 * for Zinx; the result does not depend on the C locale. Returns <0, 0 or
 * >0 as strcmp() does.
 */
int zinx__config_compare_folded(const char *a, const char *b);

/* The key spelled `name` in any letter case, or NULL. */
const zinx__key_spec_t *zinx__config_find_key(const char *name);

/*
 * Whether k's field lies wholly within the first struct_size bytes of a
 * zinx_config_t, that is, whether a program whose struct is that long
 * has the key.
 */
int zinx__config_key_fits(const zinx__key_spec_t *k, size_t struct_size);

/* The value named `name` (any letter case) among n; returns 0, or -1
   for another name. */
int zinx__key_names_parse(const zinx__key_names_t *n, const char *name,
                          uint32_t *out);
/* The first name of value v among n, or NULL for an unknown value. */
const char *zinx__key_names_find(const zinx__key_names_t *n, uint32_t v);

/* IOBackend's names ("epoll", "io_uring"), for ZINX_IO_BACKEND. */
extern const zinx__key_names_t zinx__io_backend_names;

/* Zinx's spelling of a Zinx key this library ignores, or NULL. */
const char *zinx__config_find_unused(const char *name);

/*
 * The spelling of name for a message: the canonical one for a known or
 * ignored key, else name quoted into out.
 */
const char *zinx__config_display_name(const char *name,
                                      char out[ZINX__CONFIG_QUOTE_LEN]);

/* ---- config_msg.c ------------------------------------------------------- */

/* Formats into buf[0..len), always NUL-terminated when len > 0; nothing
   when buf is NULL or len is 0. */
void zinx__config_msg(char *buf, size_t len, const char *fmt, ...)
    ZINX__CONFIG_PRINTF(3, 4);

/*
 * Copies user text into out for quoting in a message: cut to a readable
 * length, control characters and quotes replaced. Returns out.
 */
const char *zinx__config_quote(const char *s, char out[ZINX__CONFIG_QUOTE_LEN]);

/* ---- config_check.c ----------------------------------------------------- */

/*
 * Checks a text value against k: its length, or for Host the rules of
 * its kind (network host or "unix:" path).
 * Returns 0, or -1 with the problem in why.
 */
/*
 * Splits MetricsAddr-style text "HOST:PORT" ("[v6]:PORT" for an IPv6
 * literal, ":PORT" for every interface) into host (at most host_len - 1
 * bytes) and *port (0..65535; 0 asks for a free one). The host is
 * checked as Host is, but "unix:" is refused. Returns 0, or -1 with why
 * filled.
 */
int zinx__config_split_hostport(const char *s, char *host, size_t host_len,
                                int *port, char *why, size_t why_len);

int zinx__config_check_text(const zinx__key_spec_t *k, const char *s, char *why,
                            size_t why_len);

/* Checks v against k's range. Returns 0, or -1 with the problem in why. */
int zinx__config_check_range(const zinx__key_spec_t *k, long long v, char *why,
                             size_t why_len);

#endif /* ZINX_SERVER_CONFIG_INTERNAL_H */

/*
 * Configuration: defaults, validation, and loading of zinx.json.
 *
 * One table, keys[], names every key together with its field, type and
 * range. The JSON loader and zinx_config_validate() both read it, so a key
 * cannot be checked one way when it comes from a file and another way when
 * it is set in code. zinx_config_default() is the only place that knows
 * the defaults.
 *
 * Nothing here keeps state between calls, so any thread may load or
 * validate a configuration of its own.
 */
#if !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "zinx/config.h"
#include "zinx/error.h"

/* Zinx reads the whole file at once; anything this big is not a config. */
#define FILE_LIMIT (1024u * 1024u)

/* Room for one problem description, before origin and key are added. */
#define WHY_LEN 192

/* Room for a user-supplied name or value quoted back in a message. */
#define QUOTE_LEN 72

#define DEFAULT_PATH "./conf/zinx.json"

enum key_type {
    KEY_STRING, /* char array; max is the longest length */
    KEY_HOST,   /* KEY_STRING that must also pass check_host() */
    KEY_INT,    /* int */
    KEY_U32,    /* uint32_t */
    KEY_U64,    /* uint64_t */
    KEY_BOOL,   /* int, 0 or 1, written as true or false */
    KEY_FORMAT  /* zinx_packet_format_t, written as a format name */
};

struct key_spec {
    const char *name; /* canonical spelling: Zinx's Go field name */
    enum key_type type;
    size_t offset;
    long long min;
    long long max;
};

#define MEMBER_SIZE(f) sizeof(((zinx_config_t *)0)->f)

/*
 * offsetof(zinx_config_t, f), refused at compile time when the field is
 * not as wide as the type the table will store through.
 */
#define CHECKED_OFFSET(f, T)      \
    (offsetof(zinx_config_t, f) + \
     0 * sizeof(char[MEMBER_SIZE(f) == sizeof(T) ? 1 : -1]))

/* The offset, 0 and the longest length of a char array field. */
#define TEXT_FIELD(f) \
    offsetof(zinx_config_t, f), 0, (long long)MEMBER_SIZE(f) - 1

static const struct key_spec keys[] = {
    {"Name", KEY_STRING, TEXT_FIELD(name)},
    {"Host", KEY_HOST, TEXT_FIELD(host)},
    {"TCPPort", KEY_INT, CHECKED_OFFSET(tcp_port, int), 0, 65535},
    {"MaxConn", KEY_INT, CHECKED_OFFSET(max_conn, int), 1, 1000000},
    {"MaxPacketSize", KEY_U32, CHECKED_OFFSET(max_packet_size, uint32_t), 1,
     1073741824},
    {"WorkerPoolSize", KEY_U32, CHECKED_OFFSET(worker_pool_size, uint32_t), 0,
     1024},
    {"MaxWorkerTaskLen", KEY_U32, CHECKED_OFFSET(max_worker_task_len, uint32_t),
     1, 16777216},
    {"MaxMsgChanLen", KEY_U32, CHECKED_OFFSET(max_msg_chan_len, uint32_t), 1,
     16777216},
    {"IOReadBuffSize", KEY_U32, CHECKED_OFFSET(io_read_buff_size, uint32_t), 1,
     67108864},
    {"LogDir", KEY_STRING, TEXT_FIELD(log_dir)},
    {"LogFile", KEY_STRING, TEXT_FIELD(log_file)},
    {"LogIsolationLevel", KEY_INT, CHECKED_OFFSET(log_isolation_level, int), 0,
     3},
    {"LogFileSize", KEY_U64, CHECKED_OFFSET(log_file_size, uint64_t), 0,
     1LL << 40},
    {"LogSaveDays", KEY_INT, CHECKED_OFFSET(log_save_days, int), 0, 36500},
    {"LogCons", KEY_BOOL, CHECKED_OFFSET(log_cons, int), 0, 1},
    {"HeartbeatMax", KEY_INT, CHECKED_OFFSET(heartbeat_max, int), 1, 86400},
    {"IOThreads", KEY_U32, CHECKED_OFFSET(io_threads, uint32_t), 0, 256},
    {"PacketFormat", KEY_FORMAT,
     CHECKED_OFFSET(packet_format, zinx_packet_format_t), 0, 0},
    {"OutputHighWater", KEY_U32, CHECKED_OFFSET(output_high_water, uint32_t),
     1024, 1073741824},
    {"DrainTimeoutMs", KEY_U32, CHECKED_OFFSET(drain_timeout_ms, uint32_t), 0,
     3600000},
    {"HeartbeatIntervalMs", KEY_U32,
     CHECKED_OFFSET(heartbeat_interval_ms, uint32_t), 0, 86400000},
    {"HeartbeatMsgID", KEY_U32, CHECKED_OFFSET(heartbeat_msg_id, uint32_t), 0,
     4294967295LL},
    {"HeartbeatCountAcks", KEY_BOOL, CHECKED_OFFSET(heartbeat_count_acks, int),
     0, 1},
    {"FrameTimeoutMs", KEY_U32, CHECKED_OFFSET(frame_timeout_ms, uint32_t), 0,
     3600000},
    {"IdleTimeoutMs", KEY_U32, CHECKED_OFFSET(idle_timeout_ms, uint32_t), 0,
     86400000},
    {"OutputSoftLimit", KEY_U32, CHECKED_OFFSET(output_soft_limit, uint32_t), 0,
     1073741824},
    {"OutputSoftTimeoutMs", KEY_U32,
     CHECKED_OFFSET(output_soft_timeout_ms, uint32_t), 0, 3600000},
    {"OutputHardLimit", KEY_U32, CHECKED_OFFSET(output_hard_limit, uint32_t), 0,
     1073741824},
    {"MaxUnknownMsgs", KEY_U32, CHECKED_OFFSET(max_unknown_msgs, uint32_t), 0,
     4294967295LL},
    {"CloseNoticeMsgID", KEY_U32, CHECKED_OFFSET(close_notice_msg_id, uint32_t),
     0, 4294967295LL},
};

#define KEY_COUNT (sizeof(keys) / sizeof(keys[0]))

/*
 * Keys Zinx reads that mean nothing here yet. They are named apart from
 * plain unknown keys so that a Zinx user learns the setting was seen but
 * has no effect, rather than suspecting a typo.
 */
/* One per line, which clang-format would pack into a grid: each key is
   then its own line in a diff when keys come and go. */
/* clang-format off */
static const char *const unused_keys[] = {
    "WsPort",
    "WsPath",
    "KcpPort",
    "Mode",
    "Version",
    "WorkerMode",
    "RouterSlicesMode",
    "RequestPoolMode",
    "CertFile",
    "PrivateKeyFile",
    "KcpACKNoDelay",
    "KcpStreamMode",
    "KcpNoDelay",
    "KcpInterval",
    "KcpResend",
    "KcpNc",
    "KcpSendWindow",
    "KcpRecvWindow",
    "KcpFecDataShards",
    "KcpFecParityShards",
};
/* clang-format on */

#define UNUSED_COUNT (sizeof(unused_keys) / sizeof(unused_keys[0]))

/* Where messages of one load go. */
struct load_ctx {
    const char *origin;
    char *err;
    size_t err_len;
    zinx_log_fn warn;
    void *warn_udata;
};

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

/* Formats into buf[0..len), always NUL-terminated when len > 0. */
static void put_msg(char *buf, size_t len, const char *fmt, ...)
    PRINTF_LIKE(3, 4);

static void put_msg(char *buf, size_t len, const char *fmt, ...)
{
    if (buf == NULL || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(buf, len, fmt, ap) < 0)
        buf[0] = '\0';
    va_end(ap);
}

/*
 * Key matching follows Go's decoder, which Zinx relies on, but only for
 * ASCII: the result must not depend on the C locale.
 */
static int fold(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static int compare_folded(const char *a, const char *b)
{
    const unsigned char *p = (const unsigned char *)a;
    const unsigned char *q = (const unsigned char *)b;
    while (*p != '\0' && fold(*p) == fold(*q)) {
        p++;
        q++;
    }
    return fold(*p) - fold(*q);
}

static const struct key_spec *find_key(const char *name)
{
    for (size_t i = 0; i < KEY_COUNT; i++) {
        if (compare_folded(name, keys[i].name) == 0)
            return &keys[i];
    }
    return NULL;
}

static const char *find_unused(const char *name)
{
    for (size_t i = 0; i < UNUSED_COUNT; i++) {
        if (compare_folded(name, unused_keys[i]) == 0)
            return unused_keys[i];
    }
    return NULL;
}

/*
 * Copies user text for quoting in a message: cut to a readable length,
 * and with control characters and quotes replaced, so that a hostile file
 * cannot forge extra log lines or break the quoting.
 */
static const char *quote(const char *s, char out[QUOTE_LEN])
{
    size_t n = 0;
    for (; s[n] != '\0' && n < QUOTE_LEN - 4; n++) {
        unsigned char c = (unsigned char)s[n];
        out[n] =
            (c < 0x20 || c == 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    if (s[n] != '\0') {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

/* The spelling used in messages: canonical when the key is known. */
static const char *display_name(const char *name, char out[QUOTE_LEN])
{
    const struct key_spec *k = find_key(name);
    if (k != NULL)
        return k->name;
    const char *unused = find_unused(name);
    return unused != NULL ? unused : quote(name, out);
}

/* An IPv6 literal, with or without a %zone suffix ("fe80::1%eth0"). */
static int is_ipv6_literal(const char *s)
{
    char head[ZINX_CONFIG_HOST_MAX];
    unsigned char addr[16];
    size_t n = strcspn(s, "%");
    if (n >= sizeof(head) || (s[n] == '%' && s[n + 1] == '\0'))
        return 0;
    memcpy(head, s, n);
    head[n] = '\0';
    return inet_pton(AF_INET6, head, addr) == 1;
}

static int is_dotted_digits(const char *s)
{
    return s[0] != '\0' && s[strspn(s, "0123456789.")] == '\0';
}

/*
 * Host is a host name, an IP literal or "" (all interfaces), resolved
 * only when the server starts. What is refused here is text that no
 * resolver could take as meant: blanks and control characters (no name
 * or address contains them), brackets and "address:port" (the port goes
 * in TCPPort), and digits-and-dots that are not an IPv4 address, which
 * would otherwise go to DNS as a name. Returns NULL or the problem.
 */
static const char *host_problem(const char *s)
{
    unsigned char addr[4];
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p <= 0x20 || *p == 0x7f)
            return "contains a blank or a control character";
    }
    if (strncmp(s, "unix:", 5) == 0)
        return s[5] == '\0' ? "names no Unix socket path" : NULL;
    if (strpbrk(s, "[]") != NULL)
        return "has brackets (write an IPv6 address without them)";
    if (strchr(s, ':') != NULL && !is_ipv6_literal(s))
        return "is not an IPv6 address (the port goes in TCPPort)";
    if (is_dotted_digits(s) && inet_pton(AF_INET, s, addr) != 1)
        return "is not an IPv4 address";
    return NULL;
}

/* Returns 0, or -1 with why filled. */
static int check_host(const char *s, char *why, size_t why_len)
{
    char q[QUOTE_LEN];
    const char *problem = host_problem(s);
    if (problem == NULL)
        return 0;
    put_msg(why, why_len, "\"%s\" %s", quote(s, q), problem);
    return -1;
}

/* Checks a text value against k. Returns 0, or -1 with why filled. */
static int check_text(const struct key_spec *k, const char *s, char *why,
                      size_t why_len)
{
    if ((long long)strlen(s) > k->max) {
        put_msg(why, why_len, "longer than %lld bytes", k->max);
        return -1;
    }
    if (k->type == KEY_HOST)
        return check_host(s, why, why_len);
    return 0;
}

static int check_range(const struct key_spec *k, long long v, char *why,
                       size_t why_len)
{
    if (v >= k->min && v <= k->max)
        return 0;
    put_msg(why, why_len, "%lld is out of range %lld..%lld", v, k->min, k->max);
    return -1;
}

/* Above LLONG_MAX a uint64_t would read as negative in check_range(). */
static int check_u64(const struct key_spec *k, uint64_t v, char *why,
                     size_t why_len)
{
    if (v <= (uint64_t)k->max)
        return check_range(k, (long long)v, why, why_len);
    put_msg(why, why_len, "%llu is out of range %lld..%lld",
            (unsigned long long)v, k->min, k->max);
    return -1;
}

/*
 * Checks a format through pack.c's own name table, so that this file does
 * not keep a second list of the formats that exist.
 */
static int format_known(zinx_packet_format_t f)
{
    zinx_packet_format_t back;
    return zinx_packet_format_parse(zinx_packet_format_name(f), &back) == 0 &&
           back == f;
}

static void *field_at(zinx_config_t *cfg, const struct key_spec *k)
{
    return (char *)cfg + k->offset;
}

static const void *cfield_at(const zinx_config_t *cfg, const struct key_spec *k)
{
    return (const char *)cfg + k->offset;
}

/* Checks one field of a configuration built in code. */
static int check_field(const zinx_config_t *cfg, const struct key_spec *k,
                       char *why, size_t why_len)
{
    const void *p = cfield_at(cfg, k);
    switch (k->type) {
    case KEY_STRING:
    case KEY_HOST:
        if (memchr(p, '\0', (size_t)k->max + 1) == NULL) {
            put_msg(why, why_len, "not NUL-terminated");
            return -1;
        }
        return check_text(k, p, why, why_len);
    case KEY_INT:
        return check_range(k, *(const int *)p, why, why_len);
    case KEY_U32:
        return check_range(k, *(const uint32_t *)p, why, why_len);
    case KEY_U64:
        return check_u64(k, *(const uint64_t *)p, why, why_len);
    case KEY_BOOL:
        if (*(const int *)p == 0 || *(const int *)p == 1)
            return 0;
        put_msg(why, why_len, "%d is not 0 (false) or 1 (true)",
                *(const int *)p);
        return -1;
    case KEY_FORMAT:
        if (format_known(*(const zinx_packet_format_t *)p))
            return 0;
        put_msg(why, why_len, "unknown packet format %d",
                (int)*(const zinx_packet_format_t *)p);
        return -1;
    }
    put_msg(why, why_len, "unknown key type");
    return -1;
}

static const char *kind_of(const cJSON *item)
{
    if (cJSON_IsString(item))
        return "a string";
    if (cJSON_IsNumber(item))
        return "a number";
    if (cJSON_IsBool(item))
        return "a boolean";
    if (cJSON_IsNull(item))
        return "null";
    if (cJSON_IsArray(item))
        return "an array";
    return "an object";
}

static int apply_text(const struct key_spec *k, const cJSON *item,
                      zinx_config_t *cfg, char *why, size_t why_len)
{
    if (!cJSON_IsString(item)) {
        put_msg(why, why_len, "expected a string, got %s", kind_of(item));
        return -1;
    }
    if (check_text(k, item->valuestring, why, why_len) != 0)
        return -1;
    /* Clear the whole array so no byte of the old value survives. */
    char *dst = field_at(cfg, k);
    memset(dst, 0, (size_t)k->max + 1);
    memcpy(dst, item->valuestring, strlen(item->valuestring));
    return 0;
}

static int apply_format(const struct key_spec *k, const cJSON *item,
                        zinx_config_t *cfg, char *why, size_t why_len)
{
    char q[QUOTE_LEN];
    zinx_packet_format_t f;
    if (!cJSON_IsString(item)) {
        put_msg(why, why_len, "expected a string, got %s", kind_of(item));
        return -1;
    }
    if (zinx_packet_format_parse(item->valuestring, &f) != 0) {
        put_msg(why, why_len,
                "unknown packet format \"%s\" (expected tlv or ltv_le)",
                quote(item->valuestring, q));
        return -1;
    }
    *(zinx_packet_format_t *)field_at(cfg, k) = f;
    return 0;
}

/*
 * JSON has only doubles. Every range in the table is far inside the span
 * where a double holds integers exactly, so a value beyond +-1e18 is out
 * of range whatever it is, and the rest convert to long long without loss.
 */
static int to_integer(const struct key_spec *k, double d, long long *out,
                      char *why, size_t why_len)
{
    if (!(d >= -1e18 && d <= 1e18)) {
        put_msg(why, why_len, "%g is out of range %lld..%lld", d, k->min,
                k->max);
        return -1;
    }
    long long v = (long long)d;
    if ((double)v != d) {
        put_msg(why, why_len, "expected an integer, got %.15g", d);
        return -1;
    }
    *out = v;
    return 0;
}

static int apply_number(const struct key_spec *k, const cJSON *item,
                        zinx_config_t *cfg, char *why, size_t why_len)
{
    long long v;
    if (!cJSON_IsNumber(item)) {
        put_msg(why, why_len, "expected an integer, got %s", kind_of(item));
        return -1;
    }
    if (to_integer(k, item->valuedouble, &v, why, why_len) != 0 ||
        check_range(k, v, why, why_len) != 0)
        return -1;
    if (k->type == KEY_INT)
        *(int *)field_at(cfg, k) = (int)v;
    else if (k->type == KEY_U64)
        *(uint64_t *)field_at(cfg, k) = (uint64_t)v;
    else
        *(uint32_t *)field_at(cfg, k) = (uint32_t)v;
    return 0;
}

/* Only JSON true and false: 0, 1 or "true" are more likely mistakes. */
static int apply_bool(const struct key_spec *k, const cJSON *item,
                      zinx_config_t *cfg, char *why, size_t why_len)
{
    if (!cJSON_IsBool(item)) {
        put_msg(why, why_len, "expected true or false, got %s", kind_of(item));
        return -1;
    }
    *(int *)field_at(cfg, k) = cJSON_IsTrue(item) ? 1 : 0;
    return 0;
}

static int apply_item(const struct key_spec *k, const cJSON *item,
                      zinx_config_t *cfg, char *why, size_t why_len)
{
    switch (k->type) {
    case KEY_STRING:
    case KEY_HOST:
        return apply_text(k, item, cfg, why, why_len);
    case KEY_FORMAT:
        return apply_format(k, item, cfg, why, why_len);
    case KEY_INT:
    case KEY_U32:
    case KEY_U64:
        return apply_number(k, item, cfg, why, why_len);
    case KEY_BOOL:
        return apply_bool(k, item, cfg, why, why_len);
    }
    put_msg(why, why_len, "unknown key type");
    return -1;
}

static int is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_space(const char *s, size_t len, size_t i)
{
    while (i < len && is_json_space(s[i]))
        i++;
    return i;
}

/* Reports a syntax problem at byte offset pos, as a 1-based line:column. */
static void report_at(const struct load_ctx *c, const char *json, size_t pos,
                      const char *problem)
{
    unsigned long line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < pos; i++) {
        if (json[i] == '\n') {
            line++;
            line_start = i + 1;
        }
    }
    put_msg(c->err, c->err_len, "%s: %s at line %lu, column %lu", c->origin,
            problem, line, (unsigned long)(pos - line_start + 1));
}

/*
 * cJSON ends a string at an escaped NUL and drops the rest without a word,
 * so "127.0.0.1\u0000junk" would pass as a host. Such escapes are found
 * on the raw text, which the parser has already accepted as well formed.
 * Returns the offset of the first one, or len.
 */
static size_t find_nul_escape(const char *json, size_t len)
{
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        if (json[i] == '"') {
            in_string = !in_string;
        } else if (in_string && json[i] == '\\' && i + 1 < len) {
            if (len - i >= 6 && memcmp(json + i + 1, "u0000", 5) == 0)
                return i;
            i++; /* the escaped character cannot end the string */
        }
    }
    return len;
}

/*
 * Parses json[0..len) into an object. The error position comes from the
 * parse-end pointer of this call, not from cJSON_GetErrorPtr(), which
 * reads state shared by every thread.
 */
static int parse_root(const struct load_ctx *c, const char *json, size_t len,
                      cJSON **out)
{
    if (skip_space(json, len, 0) == len) {
        put_msg(c->err, c->err_len,
                "%s: empty document, expected a JSON object", c->origin);
        return ZINX_ECONFIG;
    }
    const char *end = json;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (root == NULL) {
        size_t pos = end != NULL ? (size_t)(end - json) : 0;
        report_at(c, json, pos < len ? pos : len, "invalid JSON");
        return ZINX_ECONFIG;
    }
    size_t rest = skip_space(json, len, (size_t)(end - json));
    if (rest < len) {
        cJSON_Delete(root);
        report_at(c, json, rest, "unexpected text after the JSON value");
        return ZINX_ECONFIG;
    }
    size_t nul = find_nul_escape(json, len);
    if (nul < len) {
        cJSON_Delete(root);
        report_at(c, json, nul, "\\u0000 is not allowed in a string");
        return ZINX_ECONFIG;
    }
    if (!cJSON_IsObject(root)) {
        put_msg(c->err, c->err_len,
                "%s: the top level is %s, expected a JSON object", c->origin,
                kind_of(root));
        cJSON_Delete(root);
        return ZINX_ECONFIG;
    }
    *out = root;
    return 0;
}

/* A member of the root object and its position in the document. */
struct member {
    const cJSON *item;
    size_t index;
};

static int compare_members(const void *a, const void *b)
{
    const struct member *x = a;
    const struct member *y = b;
    int r = compare_folded(x->item->string, y->item->string);
    if (r != 0)
        return r;
    return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * Go's decoder keeps the last of two equal keys without a word; a file
 * that sets a key twice is more likely a mistake than a wish. Sorting
 * keeps this O(n log n) for however many keys a file holds, and the
 * index tie-break makes the first spelling in the file the one named.
 */
static int reject_duplicates(const struct load_ctx *c, const cJSON *root)
{
    int n = cJSON_GetArraySize(root);
    if (n < 2)
        return 0;
    struct member *m = malloc((size_t)n * sizeof(*m));
    if (m == NULL) {
        put_msg(c->err, c->err_len, "%s: out of memory", c->origin);
        return ZINX_ENOMEM;
    }
    size_t count = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        m[count].item = item;
        m[count].index = count;
        count++;
    }
    qsort(m, count, sizeof(*m), compare_members);
    int rc = 0;
    for (size_t i = 1; i < count && rc == 0; i++) {
        const char *first = m[i - 1].item->string;
        if (compare_folded(first, m[i].item->string) == 0) {
            char q[QUOTE_LEN];
            put_msg(c->err, c->err_len, "%s: %s: given more than once",
                    c->origin, display_name(first, q));
            rc = ZINX_ECONFIG;
        }
    }
    free(m);
    return rc;
}

static void warn_ignored(const struct load_ctx *c, const char *name)
{
    if (c->warn == NULL)
        return;
    char msg[ZINX_CONFIG_PATH_MAX + 256];
    char q[QUOTE_LEN];
    const char *unused = find_unused(name);
    if (unused != NULL)
        put_msg(msg, sizeof(msg),
                "%s: key \"%s\" is a Zinx setting this library does not "
                "use yet; ignored",
                c->origin, unused);
    else
        put_msg(msg, sizeof(msg), "%s: unknown key \"%s\" ignored", c->origin,
                quote(name, q));
    c->warn(ZINX_LOG_WARN, msg, c->warn_udata);
}

static int apply_object(const struct load_ctx *c, const cJSON *root,
                        zinx_config_t *cfg)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        const struct key_spec *k = find_key(item->string);
        if (k == NULL) {
            warn_ignored(c, item->string);
            continue;
        }
        char why[WHY_LEN];
        if (apply_item(k, item, cfg, why, sizeof(why)) != 0) {
            put_msg(c->err, c->err_len, "%s: %s: %s", c->origin, k->name, why);
            return ZINX_ECONFIG;
        }
    }
    return 0;
}

void zinx_config_default(zinx_config_t *cfg)
{
    if (cfg == NULL)
        return;
    /* Zeroed first so that unused bytes of every text field are NUL. */
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->name, sizeof(cfg->name), "%s", "ZinxServerApp");
    snprintf(cfg->host, sizeof(cfg->host), "%s", "0.0.0.0");
    cfg->tcp_port = 8999;
    cfg->max_conn = 12000;
    cfg->max_packet_size = 4096;
    cfg->worker_pool_size = 10;
    cfg->max_worker_task_len = 1024;
    cfg->max_msg_chan_len = 1024;
    cfg->io_read_buff_size = 1024;
    snprintf(cfg->log_dir, sizeof(cfg->log_dir), "%s", "./log");
    cfg->log_file[0] = '\0';
    cfg->log_isolation_level = 0;
    cfg->log_file_size = 0; /* Zinx's writer default, 64 MiB */
    cfg->log_save_days = 0; /* Zinx's writer default, 31 days */
    cfg->log_cons = 0;
    cfg->heartbeat_max = 10;
    cfg->io_threads = 0;
    cfg->packet_format = ZINX_FORMAT_TLV;
    cfg->output_high_water = 262144;
    cfg->drain_timeout_ms = 5000;
    cfg->heartbeat_interval_ms = 0;
    cfg->heartbeat_msg_id = 99999;
    cfg->heartbeat_count_acks = 0;
    cfg->frame_timeout_ms = 10000;
    cfg->idle_timeout_ms = 0;
    cfg->output_soft_limit = 1048576;
    cfg->output_soft_timeout_ms = 10000;
    cfg->output_hard_limit = 4194304;
    cfg->max_unknown_msgs = 0;
    cfg->close_notice_msg_id = 0;
    cfg->unix_mode = 0660;
}

/*
 * The most unsent output a peer that reads its replies can leave on its
 * connection. Reading, and the handing of requests to handlers, pause
 * while the unsent output is above OutputHighWater, and at most one more
 * frame's reply can then be in flight; the largest frame is
 * MaxPacketSize plus its header. 64-bit: each term may be up to 1 GiB.
 */
static uint64_t reader_peak(const zinx_config_t *cfg)
{
    return (uint64_t)cfg->output_high_water + cfg->max_packet_size +
           ZINX_HEADER_LEN;
}

/* A nonzero output limit must lie above reader_peak(). */
static int check_limit_floor(const char *key, uint32_t limit, uint64_t peak,
                             char *err, size_t err_len)
{
    if (limit == 0 || limit >= peak)
        return 0;
    put_msg(err, err_len,
            "%s (%lu) must be at least OutputHighWater + MaxPacketSize + %u "
            "(%llu)",
            key, (unsigned long)limit, (unsigned)ZINX_HEADER_LEN,
            (unsigned long long)peak);
    return ZINX_ECONFIG;
}

/*
 * Rules between keys, checked once every key is in range. The output
 * limits exist to cut off peers that do not read (and server push that
 * outruns a peer); if they were at or below what a reading peer may
 * legitimately hold, well-behaved peers would be closed too.
 */
static int check_output_limits(const zinx_config_t *cfg, char *err,
                               size_t err_len)
{
    uint64_t peak = reader_peak(cfg);
    int rc = check_limit_floor("OutputHardLimit", cfg->output_hard_limit, peak,
                               err, err_len);
    if (rc == 0)
        rc = check_limit_floor("OutputSoftLimit", cfg->output_soft_limit, peak,
                               err, err_len);
    if (rc == 0 && cfg->output_soft_limit != 0 && cfg->output_hard_limit != 0 &&
        cfg->output_soft_limit > cfg->output_hard_limit) {
        put_msg(err, err_len,
                "OutputSoftLimit (%lu) must not be above OutputHardLimit (%lu)",
                (unsigned long)cfg->output_soft_limit,
                (unsigned long)cfg->output_hard_limit);
        rc = ZINX_ECONFIG;
    }
    return rc;
}

int zinx_config_validate(const zinx_config_t *cfg, char *err, size_t err_len)
{
    put_msg(err, err_len, "%s", "");
    if (cfg == NULL) {
        put_msg(err, err_len, "configuration is NULL");
        return ZINX_EINVAL;
    }
    for (size_t i = 0; i < KEY_COUNT; i++) {
        char why[WHY_LEN];
        if (check_field(cfg, &keys[i], why, sizeof(why)) != 0) {
            put_msg(err, err_len, "%s: %s", keys[i].name, why);
            return ZINX_ECONFIG;
        }
    }
    return check_output_limits(cfg, err, err_len);
}

int zinx_config_load_json(zinx_config_t *cfg, const char *json, size_t len,
                          const char *origin, char *err, size_t err_len,
                          zinx_log_fn warn, void *warn_udata)
{
    struct load_ctx c = {origin != NULL ? origin : "<json>", err, err_len, warn,
                         warn_udata};
    put_msg(err, err_len, "%s", "");
    if (cfg == NULL || (json == NULL && len > 0)) {
        put_msg(err, err_len, "%s: invalid argument", c.origin);
        return ZINX_EINVAL;
    }
    cJSON *root = NULL;
    int rc = parse_root(&c, json != NULL ? json : "", len, &root);
    if (rc != 0)
        return rc;
    /* Work on a copy: a bad key late in the file must not leave the
     * keys before it applied. */
    zinx_config_t next = *cfg;
    rc = reject_duplicates(&c, root);
    if (rc == 0)
        rc = apply_object(&c, root, &next);
    cJSON_Delete(root);
    if (rc == 0)
        *cfg = next;
    return rc;
}

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
        put_msg(buf, len, "%s", s);
#else
    if (strerror_r(e, buf, len) != 0)
        put_msg(buf, len, "error %d", e);
#endif
}

/* Reads fd to its end into a new NUL-terminated buffer. */
static int read_all(int fd, size_t hint, char **text, size_t *len, char *why,
                    size_t why_len)
{
    /* One byte over the expected size lets EOF show without regrowing. */
    size_t cap = hint + 1;
    size_t got = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (got == cap) {
            if (cap > FILE_LIMIT) {
                put_msg(why, why_len, "larger than 1 MiB");
                free(buf);
                return ZINX_ECONFIG;
            }
            cap = cap * 2 > FILE_LIMIT + 1 ? FILE_LIMIT + 1 : cap * 2;
            char *bigger = realloc(buf, cap);
            if (bigger == NULL)
                break;
            buf = bigger;
        }
        ssize_t n = read(fd, buf + got, cap - got);
        if (n == 0) {
            *text = buf;
            *len = got;
            return 0;
        }
        if (n > 0) {
            got += (size_t)n;
        } else if (errno != EINTR) {
            char e[WHY_LEN];
            describe_errno(errno, e, sizeof(e));
            put_msg(why, why_len, "cannot read: %s", e);
            free(buf);
            return ZINX_ECONFIG;
        }
    }
    free(buf);
    put_msg(why, why_len, "out of memory");
    return ZINX_ENOMEM;
}

/* Returned by read_file() for a path that does not exist. */
#define FILE_MISSING 1

static int read_file(const char *path, char **text, size_t *len, char *why,
                     size_t why_len)
{
    char e[WHY_LEN];
    /* O_NONBLOCK keeps a FIFO from blocking the open; it is refused
     * below as not a regular file anyway. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return FILE_MISSING;
        describe_errno(errno, e, sizeof(e));
        put_msg(why, why_len, "cannot open: %s", e);
        return ZINX_ECONFIG;
    }
    struct stat st;
    int rc = ZINX_ECONFIG;
    if (fstat(fd, &st) != 0) {
        describe_errno(errno, e, sizeof(e));
        put_msg(why, why_len, "cannot stat: %s", e);
    } else if (S_ISDIR(st.st_mode)) {
        describe_errno(EISDIR, e, sizeof(e));
        put_msg(why, why_len, "cannot read: %s", e);
    } else if (!S_ISREG(st.st_mode)) {
        put_msg(why, why_len, "not a regular file");
    } else if (st.st_size > (off_t)FILE_LIMIT) {
        put_msg(why, why_len, "larger than 1 MiB");
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
                     const struct load_ctx *c)
{
    char why[WHY_LEN];
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len, why, sizeof(why));
    if (rc == FILE_MISSING && env != NULL) {
        put_msg(c->err, c->err_len, "%s names %s, which does not exist", env,
                path);
        return ZINX_ECONFIG;
    }
    if (rc == FILE_MISSING) {
        if (c->warn != NULL) {
            char msg[ZINX_CONFIG_PATH_MAX + 64];
            put_msg(msg, sizeof(msg), "%s: not found, using defaults", path);
            c->warn(ZINX_LOG_INFO, msg, c->warn_udata);
        }
        return 0;
    }
    if (rc != 0) {
        put_msg(c->err, c->err_len, "%s: %s", path, why);
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
    struct load_ctx c = {path, err, err_len, warn, warn_udata};
    put_msg(err, err_len, "%s", "");
    if (cfg == NULL || path == NULL) {
        put_msg(err, err_len, "invalid argument");
        return ZINX_EINVAL;
    }
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
    struct load_ctx c = {path, err, err_len, warn, warn_udata};
    put_msg(err, err_len, "%s", "");
    if (cfg == NULL) {
        put_msg(err, err_len, "invalid argument");
        return ZINX_EINVAL;
    }
    return load_path(cfg, path, env, &c);
}

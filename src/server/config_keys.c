/*
 * The key table: every key of zinx.json this library reads, with its
 * field, type and range, and the Zinx keys it knows of but ignores.
 *
 * The JSON loader and zinx_config_validate() both read zinx__config_keys[], so
 * a key cannot be checked one way when it comes from a file and another way
 * when it is set in code.
 */
#include "server/config_internal.h"

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

const zinx__key_spec_t zinx__config_keys[] = {
    {"Name", ZINX__KEY_STRING, TEXT_FIELD(name)},
    {"Host", ZINX__KEY_HOST, TEXT_FIELD(host)},
    {"TCPPort", ZINX__KEY_INT, CHECKED_OFFSET(tcp_port, int), 0, 65535},
    {"MaxConn", ZINX__KEY_INT, CHECKED_OFFSET(max_conn, int), 1, 1000000},
    {"MaxPacketSize", ZINX__KEY_U32, CHECKED_OFFSET(max_packet_size, uint32_t),
     1, 1073741824},
    {"WorkerPoolSize", ZINX__KEY_U32,
     CHECKED_OFFSET(worker_pool_size, uint32_t), 0, 1024},
    {"MaxWorkerTaskLen", ZINX__KEY_U32,
     CHECKED_OFFSET(max_worker_task_len, uint32_t), 1, 16777216},
    {"MaxMsgChanLen", ZINX__KEY_U32, CHECKED_OFFSET(max_msg_chan_len, uint32_t),
     1, 16777216},
    {"IOReadBuffSize", ZINX__KEY_U32,
     CHECKED_OFFSET(io_read_buff_size, uint32_t), 1, 67108864},
    {"LogDir", ZINX__KEY_STRING, TEXT_FIELD(log_dir)},
    {"LogFile", ZINX__KEY_STRING, TEXT_FIELD(log_file)},
    {"LogIsolationLevel", ZINX__KEY_INT,
     CHECKED_OFFSET(log_isolation_level, int), 0, 3},
    {"LogFileSize", ZINX__KEY_U64, CHECKED_OFFSET(log_file_size, uint64_t), 0,
     1LL << 40},
    {"LogSaveDays", ZINX__KEY_INT, CHECKED_OFFSET(log_save_days, int), 0,
     36500},
    {"LogCons", ZINX__KEY_BOOL, CHECKED_OFFSET(log_cons, int), 0, 1},
    {"HeartbeatMax", ZINX__KEY_INT, CHECKED_OFFSET(heartbeat_max, int), 1,
     86400},
    {"IOThreads", ZINX__KEY_U32, CHECKED_OFFSET(io_threads, uint32_t), 0, 256},
    {"PacketFormat", ZINX__KEY_FORMAT,
     CHECKED_OFFSET(packet_format, zinx_packet_format_t), 0, 0},
    {"OutputHighWater", ZINX__KEY_U32,
     CHECKED_OFFSET(output_high_water, uint32_t), 1024, 1073741824},
    {"DrainTimeoutMs", ZINX__KEY_U32,
     CHECKED_OFFSET(drain_timeout_ms, uint32_t), 0, 3600000},
    {"HeartbeatIntervalMs", ZINX__KEY_U32,
     CHECKED_OFFSET(heartbeat_interval_ms, uint32_t), 0, 86400000},
    {"HeartbeatMsgID", ZINX__KEY_U32,
     CHECKED_OFFSET(heartbeat_msg_id, uint32_t), 0, 4294967295LL},
    {"HeartbeatCountAcks", ZINX__KEY_BOOL,
     CHECKED_OFFSET(heartbeat_count_acks, int), 0, 1},
    {"FrameTimeoutMs", ZINX__KEY_U32,
     CHECKED_OFFSET(frame_timeout_ms, uint32_t), 0, 3600000},
    {"IdleTimeoutMs", ZINX__KEY_U32, CHECKED_OFFSET(idle_timeout_ms, uint32_t),
     0, 86400000},
    {"OutputSoftLimit", ZINX__KEY_U32,
     CHECKED_OFFSET(output_soft_limit, uint32_t), 0, 1073741824},
    {"OutputSoftTimeoutMs", ZINX__KEY_U32,
     CHECKED_OFFSET(output_soft_timeout_ms, uint32_t), 0, 3600000},
    {"OutputHardLimit", ZINX__KEY_U32,
     CHECKED_OFFSET(output_hard_limit, uint32_t), 0, 1073741824},
    {"MaxUnknownMsgs", ZINX__KEY_U32,
     CHECKED_OFFSET(max_unknown_msgs, uint32_t), 0, 4294967295LL},
    {"CloseNoticeMsgID", ZINX__KEY_U32,
     CHECKED_OFFSET(close_notice_msg_id, uint32_t), 0, 4294967295LL},
    {"UnixMode", ZINX__KEY_MODE, CHECKED_OFFSET(unix_mode, uint32_t), 0, 0777},
    {"IOBackend", ZINX__KEY_BACKEND, CHECKED_OFFSET(io_backend, uint32_t), 0,
     1},
};

const size_t zinx__config_key_count =
    sizeof(zinx__config_keys) / sizeof(zinx__config_keys[0]);

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

static int fold(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

int zinx__config_compare_folded(const char *a, const char *b)
{
    const unsigned char *p = (const unsigned char *)a;
    const unsigned char *q = (const unsigned char *)b;
    while (*p != '\0' && fold(*p) == fold(*q)) {
        p++;
        q++;
    }
    return fold(*p) - fold(*q);
}

const zinx__key_spec_t *zinx__config_find_key(const char *name)
{
    for (size_t i = 0; i < zinx__config_key_count; i++) {
        if (zinx__config_compare_folded(name, zinx__config_keys[i].name) == 0)
            return &zinx__config_keys[i];
    }
    return NULL;
}

const char *zinx__config_find_unused(const char *name)
{
    for (size_t i = 0; i < UNUSED_COUNT; i++) {
        if (zinx__config_compare_folded(name, unused_keys[i]) == 0)
            return unused_keys[i];
    }
    return NULL;
}

const char *zinx__config_display_name(const char *name,
                                      char out[ZINX__CONFIG_QUOTE_LEN])
{
    const zinx__key_spec_t *k = zinx__config_find_key(name);
    if (k != NULL)
        return k->name;
    const char *unused = zinx__config_find_unused(name);
    return unused != NULL ? unused : zinx__config_quote(name, out);
}

/* The IOBackend names, indexed by zinx_io_backend_t. */
static const char *const backend_names[] = {"epoll", "io_uring"};

#define BACKEND_COUNT (sizeof(backend_names) / sizeof(backend_names[0]))

int zinx__io_backend_parse(const char *name, uint32_t *out)
{
    for (size_t i = 0; i < BACKEND_COUNT; i++) {
        if (zinx__config_compare_folded(name, backend_names[i]) == 0) {
            *out = (uint32_t)i;
            return 0;
        }
    }
    return -1;
}

const char *zinx__io_backend_name(uint32_t backend)
{
    return backend < BACKEND_COUNT ? backend_names[backend] : NULL;
}

/* Bytes the field of k takes in zinx_config_t. */
static size_t key_width(const zinx__key_spec_t *k)
{
    switch (k->type) {
    case ZINX__KEY_STRING:
    case ZINX__KEY_HOST:
        return (size_t)k->max + 1;
    case ZINX__KEY_INT:
    case ZINX__KEY_BOOL:
        return sizeof(int);
    case ZINX__KEY_U32:
    case ZINX__KEY_MODE:
    case ZINX__KEY_BACKEND:
        return sizeof(uint32_t);
    case ZINX__KEY_U64:
        return sizeof(uint64_t);
    case ZINX__KEY_FORMAT:
        return sizeof(zinx_packet_format_t);
    }
    return SIZE_MAX;
}

int zinx__config_key_fits(const zinx__key_spec_t *k, size_t struct_size)
{
    return k->offset + key_width(k) <= struct_size;
}

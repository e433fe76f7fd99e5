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

#define NAMES(list) list, sizeof(list) / sizeof(list[0])

static const zinx__key_name_t backend_list[] = {{"epoll", ZINX_IO_EPOLL},
                                                {"io_uring", ZINX_IO_URING}};
const zinx__key_names_t zinx__io_backend_names = {
    "I/O backend", "epoll or io_uring", NAMES(backend_list)};

static const zinx__key_name_t worker_mode_list[] = {
    {"Hash", ZINX_WORKER_HASH},
    {"", ZINX_WORKER_HASH},
    {"Bind", ZINX_WORKER_BIND},
    {"DynamicBind", ZINX_WORKER_DYNAMIC_BIND}};
static const zinx__key_names_t worker_mode_names = {
    "worker mode", "\"\", Hash, Bind or DynamicBind", NAMES(worker_mode_list)};

static const zinx__key_name_t decoder_list[] = {
    {"packet_format", ZINX_DECODER_PACKET_FORMAT},
    {"length_field", ZINX_DECODER_LENGTH_FIELD},
    {"htlv_crc", ZINX_DECODER_HTLV_CRC}};
static const zinx__key_names_t decoder_names = {
    "frame decoder", "packet_format, length_field or htlv_crc",
    NAMES(decoder_list)};

static const zinx__key_name_t order_list[] = {
    {"big_endian", ZINX_BIG_ENDIAN}, {"little_endian", ZINX_LITTLE_ENDIAN}};
static const zinx__key_names_t order_names = {
    "byte order", "big_endian or little_endian", NAMES(order_list)};

static const zinx__key_name_t policy_list[] = {{"drop", ZINX_BAD_FRAME_DROP},
                                               {"close", ZINX_BAD_FRAME_CLOSE}};
static const zinx__key_names_t policy_names = {
    "bad frame policy", "drop or close", NAMES(policy_list)};

/* Zinx reads any other Mode as "TCP and WebSocket"; a typo here would
   so open a port nobody asked for, so only "" says that. */
static const zinx__key_name_t mode_list[] = {{"tcp", ZINX_MODE_TCP},
                                             {"websocket", ZINX_MODE_WEBSOCKET},
                                             {"", ZINX_MODE_TCP_WS},
                                             {"kcp", ZINX_MODE_KCP}};
static const zinx__key_names_t mode_names = {
    "mode", "tcp, websocket, kcp or \"\" (tcp and websocket)",
    NAMES(mode_list)};

static const zinx__key_name_t proxy_list[] = {{"off", ZINX_PROXY_OFF},
                                              {"v1", ZINX_PROXY_V1},
                                              {"v2", ZINX_PROXY_V2},
                                              {"either", ZINX_PROXY_EITHER}};
static const zinx__key_names_t proxy_names = {
    "PROXY protocol", "off, v1, v2 or either", NAMES(proxy_list)};

static const zinx__key_name_t reuse_list[] = {
    {"off", ZINX_REUSE_PORT_OFF},
    {"process", ZINX_REUSE_PORT_PROCESS},
    {"loops", ZINX_REUSE_PORT_LOOPS}};
static const zinx__key_names_t reuse_names = {
    "ReusePort", "off, process or loops", NAMES(reuse_list)};

const zinx__key_spec_t zinx__config_keys[] = {
    {"Name", ZINX__KEY_STRING, TEXT_FIELD(name), NULL},
    {"Host", ZINX__KEY_HOST, TEXT_FIELD(host), NULL},
    {"TCPPort", ZINX__KEY_INT, CHECKED_OFFSET(tcp_port, int), 0, 65535, NULL},
    {"MaxConn", ZINX__KEY_INT, CHECKED_OFFSET(max_conn, int), 1, 1000000, NULL},
    {"MaxPacketSize", ZINX__KEY_U32, CHECKED_OFFSET(max_packet_size, uint32_t),
     1, 1073741824, NULL},
    {"WorkerPoolSize", ZINX__KEY_U32,
     CHECKED_OFFSET(worker_pool_size, uint32_t), 0, 1024, NULL},
    {"MaxWorkerTaskLen", ZINX__KEY_U32,
     CHECKED_OFFSET(max_worker_task_len, uint32_t), 1, 16777216, NULL},
    {"MaxMsgChanLen", ZINX__KEY_U32, CHECKED_OFFSET(max_msg_chan_len, uint32_t),
     1, 16777216, NULL},
    {"IOReadBuffSize", ZINX__KEY_U32,
     CHECKED_OFFSET(io_read_buff_size, uint32_t), 1, 67108864, NULL},
    {"LogDir", ZINX__KEY_STRING, TEXT_FIELD(log_dir), NULL},
    {"LogFile", ZINX__KEY_STRING, TEXT_FIELD(log_file), NULL},
    {"LogIsolationLevel", ZINX__KEY_INT,
     CHECKED_OFFSET(log_isolation_level, int), 0, 3, NULL},
    {"LogFileSize", ZINX__KEY_U64, CHECKED_OFFSET(log_file_size, uint64_t), 0,
     1LL << 40, NULL},
    {"LogSaveDays", ZINX__KEY_INT, CHECKED_OFFSET(log_save_days, int), 0, 36500,
     NULL},
    {"LogCons", ZINX__KEY_BOOL, CHECKED_OFFSET(log_cons, int), 0, 1, NULL},
    {"HeartbeatMax", ZINX__KEY_INT, CHECKED_OFFSET(heartbeat_max, int), 1,
     86400, NULL},
    {"IOThreads", ZINX__KEY_U32, CHECKED_OFFSET(io_threads, uint32_t), 0, 256,
     NULL},
    {"PacketFormat", ZINX__KEY_FORMAT,
     CHECKED_OFFSET(packet_format, zinx_packet_format_t), 0, 0, NULL},
    {"OutputHighWater", ZINX__KEY_U32,
     CHECKED_OFFSET(output_high_water, uint32_t), 1024, 1073741824, NULL},
    {"DrainTimeoutMs", ZINX__KEY_U32,
     CHECKED_OFFSET(drain_timeout_ms, uint32_t), 0, 3600000, NULL},
    {"HeartbeatIntervalMs", ZINX__KEY_U32,
     CHECKED_OFFSET(heartbeat_interval_ms, uint32_t), 0, 86400000, NULL},
    {"HeartbeatMsgID", ZINX__KEY_U32,
     CHECKED_OFFSET(heartbeat_msg_id, uint32_t), 0, 4294967295LL, NULL},
    {"HeartbeatCountAcks", ZINX__KEY_BOOL,
     CHECKED_OFFSET(heartbeat_count_acks, int), 0, 1, NULL},
    {"FrameTimeoutMs", ZINX__KEY_U32,
     CHECKED_OFFSET(frame_timeout_ms, uint32_t), 0, 3600000, NULL},
    {"IdleTimeoutMs", ZINX__KEY_U32, CHECKED_OFFSET(idle_timeout_ms, uint32_t),
     0, 86400000, NULL},
    {"OutputSoftLimit", ZINX__KEY_U32,
     CHECKED_OFFSET(output_soft_limit, uint32_t), 0, 1073741824, NULL},
    {"OutputSoftTimeoutMs", ZINX__KEY_U32,
     CHECKED_OFFSET(output_soft_timeout_ms, uint32_t), 0, 3600000, NULL},
    {"OutputHardLimit", ZINX__KEY_U32,
     CHECKED_OFFSET(output_hard_limit, uint32_t), 0, 1073741824, NULL},
    {"MaxUnknownMsgs", ZINX__KEY_U32,
     CHECKED_OFFSET(max_unknown_msgs, uint32_t), 0, 4294967295LL, NULL},
    {"CloseNoticeMsgID", ZINX__KEY_U32,
     CHECKED_OFFSET(close_notice_msg_id, uint32_t), 0, 4294967295LL, NULL},
    {"UnixMode", ZINX__KEY_MODE, CHECKED_OFFSET(unix_mode, uint32_t), 0, 0777,
     NULL},
    {"IOBackend", ZINX__KEY_NAMED, CHECKED_OFFSET(io_backend, uint32_t), 0, 0,
     &zinx__io_backend_names},
    {"WorkerMode", ZINX__KEY_NAMED, CHECKED_OFFSET(worker_mode, uint32_t), 0, 0,
     &worker_mode_names},
    {"RouterSlicesMode", ZINX__KEY_BOOL,
     CHECKED_OFFSET(router_slices_mode, int), 0, 1, NULL},
    {"FrameDecoder", ZINX__KEY_NAMED, CHECKED_OFFSET(frame_decoder, uint32_t),
     0, 0, &decoder_names},
    {"LengthFieldOrder", ZINX__KEY_NAMED,
     CHECKED_OFFSET(length_field_order, uint32_t), 0, 0, &order_names},
    {"LengthFieldMaxFrameLength", ZINX__KEY_U64,
     CHECKED_OFFSET(length_field_max_frame_length, uint64_t), 0, 4294967295LL,
     NULL},
    {"LengthFieldOffset", ZINX__KEY_U32,
     CHECKED_OFFSET(length_field_offset, uint32_t), 0, 65535, NULL},
    {"LengthFieldLength", ZINX__KEY_U32,
     CHECKED_OFFSET(length_field_length, uint32_t), 1, 8, NULL},
    {"LengthFieldAdjustment", ZINX__KEY_INT,
     CHECKED_OFFSET(length_field_adjustment, int), -65536, 65536, NULL},
    {"LengthFieldInitialBytesToStrip", ZINX__KEY_U32,
     CHECKED_OFFSET(length_field_strip, uint32_t), 0, 65535, NULL},
    {"BadFramePolicy", ZINX__KEY_NAMED,
     CHECKED_OFFSET(bad_frame_policy, uint32_t), 0, 0, &policy_names},
    {"Mode", ZINX__KEY_NAMED, CHECKED_OFFSET(mode, uint32_t), 0, 0,
     &mode_names},
    {"WsPort", ZINX__KEY_INT, CHECKED_OFFSET(ws_port, int), 0, 65535, NULL},
    {"WsPath", ZINX__KEY_STRING, TEXT_FIELD(ws_path), NULL},
    {"WsMaxMessageSize", ZINX__KEY_U32,
     CHECKED_OFFSET(ws_max_message_size, uint32_t), 125, 1073741824, NULL},
    {"CertFile", ZINX__KEY_STRING, TEXT_FIELD(cert_file), NULL},
    {"PrivateKeyFile", ZINX__KEY_STRING, TEXT_FIELD(private_key_file), NULL},
    {"TlsClientCAFile", ZINX__KEY_STRING, TEXT_FIELD(tls_client_ca_file), NULL},
    {"HandshakeTimeoutMs", ZINX__KEY_U32,
     CHECKED_OFFSET(handshake_timeout_ms, uint32_t), 0, 3600000, NULL},
    {"ProxyProtocol", ZINX__KEY_NAMED, CHECKED_OFFSET(proxy_protocol, uint32_t),
     0, 0, &proxy_names},
    {"ProxyProtocolFrom", ZINX__KEY_STRING, TEXT_FIELD(proxy_protocol_from),
     NULL},
    {"ReusePort", ZINX__KEY_NAMED, CHECKED_OFFSET(reuse_port, uint32_t), 0, 0,
     &reuse_names},
    {"ClusterNode", ZINX__KEY_U32, CHECKED_OFFSET(cluster_node, uint32_t), 0,
     65535, NULL},
    {"MetricsAddr", ZINX__KEY_STRING, TEXT_FIELD(metrics_addr), NULL},
    {"ClusterName", ZINX__KEY_STRING, TEXT_FIELD(cluster_name), NULL},
    {"ClusterNatsUrl", ZINX__KEY_STRING, TEXT_FIELD(cluster_nats_url), NULL},
    {"ClusterHeartbeatMs", ZINX__KEY_U32,
     CHECKED_OFFSET(cluster_heartbeat_ms, uint32_t), 50, 60000, NULL},
    {"ClusterDeadAfter", ZINX__KEY_U32,
     CHECKED_OFFSET(cluster_dead_after, uint32_t), 2, 100, NULL},
    {"ClusterMaxPending", ZINX__KEY_U32,
     CHECKED_OFFSET(cluster_max_pending, uint32_t), 1048576, 1073741824, NULL},
    {"KcpPort", ZINX__KEY_INT, CHECKED_OFFSET(kcp_port, int), 0, 65535, NULL},
    {"KcpACKNoDelay", ZINX__KEY_BOOL, CHECKED_OFFSET(kcp_ack_nodelay, int), 0,
     1, NULL},
    {"KcpStreamMode", ZINX__KEY_BOOL, CHECKED_OFFSET(kcp_stream_mode, int), 0,
     1, NULL},
    {"KcpNoDelay", ZINX__KEY_INT, CHECKED_OFFSET(kcp_nodelay, int), 0, 1, NULL},
    {"KcpInterval", ZINX__KEY_U32, CHECKED_OFFSET(kcp_interval, uint32_t), 10,
     5000, NULL},
    {"KcpResend", ZINX__KEY_U32, CHECKED_OFFSET(kcp_resend, uint32_t), 0, 100,
     NULL},
    {"KcpNc", ZINX__KEY_INT, CHECKED_OFFSET(kcp_nc, int), 0, 1, NULL},
    {"KcpSendWindow", ZINX__KEY_U32, CHECKED_OFFSET(kcp_send_window, uint32_t),
     1, 65535, NULL},
    {"KcpRecvWindow", ZINX__KEY_U32, CHECKED_OFFSET(kcp_recv_window, uint32_t),
     1, 65535, NULL},
    {"KcpFecDataShards", ZINX__KEY_U32,
     CHECKED_OFFSET(kcp_fec_data_shards, uint32_t), 0, 255, NULL},
    {"KcpFecParityShards", ZINX__KEY_U32,
     CHECKED_OFFSET(kcp_fec_parity_shards, uint32_t), 0, 255, NULL},
    {"KcpMtu", ZINX__KEY_U32, CHECKED_OFFSET(kcp_mtu, uint32_t), 50, 65507,
     NULL},
    {"KcpIdleTimeoutMs", ZINX__KEY_U32,
     CHECKED_OFFSET(kcp_idle_timeout_ms, uint32_t), 0, 86400000, NULL},
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
    "Version",
    "RequestPoolMode",
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

int zinx__key_names_parse(const zinx__key_names_t *n, const char *name,
                          uint32_t *out)
{
    for (size_t i = 0; i < n->count; i++) {
        if (zinx__config_compare_folded(name, n->names[i].name) == 0) {
            *out = n->names[i].value;
            return 0;
        }
    }
    return -1;
}

const char *zinx__key_names_find(const zinx__key_names_t *n, uint32_t v)
{
    for (size_t i = 0; i < n->count; i++) {
        if (n->names[i].value == v)
            return n->names[i].name;
    }
    return NULL;
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
    case ZINX__KEY_NAMED:
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

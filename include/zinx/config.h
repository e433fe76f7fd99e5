/*
 * Server configuration: Zinx's zinx.json keys and defaults, plus ours.
 *
 * A zinx_config_t is a plain value: fill it with zinx_config_default(),
 * then either load a file over it or set fields in code, then pass it to
 * zinx_server_new(), which copies it. Key names are matched
 * case-insensitively, as Go's JSON decoder does for Zinx.
 *
 * Growing without breaking programs. New keys are appended to
 * zinx_config_t, so a program built against an older zinx/config.h has a
 * shorter struct than the library it runs with. Its first member,
 * struct_size, says how long: zinx_config_default() sets it to
 * sizeof(zinx_config_t) as the program was compiled. Every call that
 * takes a configuration reads (and the loaders write) only the first
 * struct_size bytes; the fields beyond take their defaults. So:
 *
 *   - always start from zinx_config_default(); never set struct_size
 *     yourself, and copy configurations whole (a = b, or memcpy of
 *     sizeof);
 *   - a configuration is refused with ZINX_EINVAL when struct_size is
 *     0 (a zero-filled struct or a {0} literal that never went through
 *     zinx_config_default(): several keys have no valid zero, so such a
 *     struct was never usable, and the refusal names the real mistake),
 *     smaller than layout 1 below, not a multiple of the struct's
 *     alignment, or larger than the library's zinx_config_t (a program
 *     built against a newer zinx: the library cannot honour keys it does
 *     not know, and will not drop them silently);
 *   - a key of the file that lies beyond the program's struct_size is
 *     ignored with a warning, as an unknown key is.
 *
 * Layouts, each a prefix of the next (fields are only ever appended):
 *
 *   1: struct_size .. close_notice_msg_id: the keys zinx 0.1.0 had;
 *   2: adds unix_mode (UnixMode), and pad_2;
 *   3: adds io_backend (IOBackend), and pad_3;
 *   4: adds worker_mode (WorkerMode), router_slices_mode
 *      (RouterSlicesMode), frame_decoder (FrameDecoder), the LengthField*
 *      keys, bad_frame_policy (BadFramePolicy), and pad_4;
 *   5: adds the transports: mode (Mode), ws_port (WsPort), ws_path
 *      (WsPath), ws_max_message_size (WsMaxMessageSize), cert_file
 *      (CertFile), private_key_file (PrivateKeyFile), tls_client_ca_file
 *      (TlsClientCAFile), handshake_timeout_ms (HandshakeTimeoutMs),
 *      proxy_protocol (ProxyProtocol), proxy_protocol_from
 *      (ProxyProtocolFrom), and pad_5;
 *   6: adds scale-out: reuse_port (ReusePort), metrics_addr
 *      (MetricsAddr), cluster_name (ClusterName), cluster_nats_url
 *      (ClusterNatsUrl), cluster_node (ClusterNode), cluster_heartbeat_ms
 *      (ClusterHeartbeatMs), cluster_dead_after (ClusterDeadAfter),
 *      cluster_max_pending (ClusterMaxPending);
 *   7: adds KCP: kcp_port (KcpPort), kcp_ack_nodelay (KcpACKNoDelay),
 *      kcp_stream_mode (KcpStreamMode), kcp_nodelay (KcpNoDelay),
 *      kcp_interval (KcpInterval), kcp_resend (KcpResend), kcp_nc
 *      (KcpNc), kcp_send_window (KcpSendWindow), kcp_recv_window
 *      (KcpRecvWindow), kcp_fec_data_shards (KcpFecDataShards),
 *      kcp_fec_parity_shards (KcpFecParityShards), kcp_mtu (KcpMtu),
 *      kcp_idle_timeout_ms (KcpIdleTimeoutMs), and pad_7.
 *
 * Every layout ends exactly at its last member, with no padding after
 * it: otherwise a field added later could fall into bytes an older
 * program never set yet counts in its struct_size. A member that would
 * leave such padding is followed by a padN member, which is not a
 * setting and is never reused. The library checks this at compile time.
 *
 * | key               | field               | default         |
 * |-------------------|---------------------|-----------------|
 * | Name              | name                | "ZinxServerApp" |
 * | Host              | host                | "0.0.0.0"       |
 * | TCPPort           | tcp_port            | 8999            |
 * | MaxConn           | max_conn            | 12000           |
 * | MaxPacketSize     | max_packet_size     | 4096            |
 * | WorkerPoolSize    | worker_pool_size    | 10              |
 * | MaxWorkerTaskLen  | max_worker_task_len | 1024            |
 * | MaxMsgChanLen     | max_msg_chan_len    | 1024            |
 * | IOReadBuffSize    | io_read_buff_size   | 1024            |
 * | LogDir            | log_dir             | "./log"         |
 * | LogFile           | log_file            | "" (stderr)     |
 * | LogIsolationLevel | log_isolation_level | 0               |
 * | LogFileSize       | log_file_size       | 0 (64 MiB)      |
 * | LogSaveDays       | log_save_days       | 0 (31 days)     |
 * | LogCons           | log_cons            | false (0)       |
 * | HeartbeatMax      | heartbeat_max       | 10              |
 * | IOThreads         | io_threads          | 0 (one per CPU) |
 * | PacketFormat      | packet_format       | "tlv"           |
 * | OutputHighWater   | output_high_water   | 262144          |
 * | DrainTimeoutMs    | drain_timeout_ms    | 5000            |
 * | HeartbeatIntervalMs | heartbeat_interval_ms | 0 (off)       |
 * | HeartbeatMsgID    | heartbeat_msg_id    | 99999           |
 * | HeartbeatCountAcks | heartbeat_count_acks | false (0)      |
 * | FrameTimeoutMs    | frame_timeout_ms    | 10000           |
 * | IdleTimeoutMs     | idle_timeout_ms     | 0 (off)         |
 * | OutputSoftLimit   | output_soft_limit   | 1048576         |
 * | OutputSoftTimeoutMs | output_soft_timeout_ms | 10000      |
 * | OutputHardLimit   | output_hard_limit   | 4194304         |
 * | MaxUnknownMsgs    | max_unknown_msgs    | 0 (off)         |
 * | CloseNoticeMsgID  | close_notice_msg_id | 0 (off)         |
 * | UnixMode          | unix_mode           | 0660            |
 * | IOBackend         | io_backend          | "epoll"         |
 * | WorkerMode        | worker_mode         | "" (Hash)       |
 * | RouterSlicesMode  | router_slices_mode  | false (0)       |
 * | FrameDecoder      | frame_decoder       | "packet_format" |
 * | LengthFieldOrder  | length_field_order  | "big_endian"    |
 * | LengthFieldMaxFrameLength | length_field_max_frame_length | 0 |
 * | LengthFieldOffset | length_field_offset | 4               |
 * | LengthFieldLength | length_field_length | 4               |
 * | LengthFieldAdjustment | length_field_adjustment | 0         |
 * | LengthFieldInitialBytesToStrip | length_field_strip | 0     |
 * | BadFramePolicy    | bad_frame_policy    | "drop"          |
 * | Mode              | mode                | "tcp"           |
 * | WsPort            | ws_port             | 9000            |
 * | WsPath            | ws_path             | "/"             |
 * | WsMaxMessageSize  | ws_max_message_size | 1048576         |
 * | CertFile          | cert_file           | "" (no TLS)     |
 * | PrivateKeyFile    | private_key_file    | ""              |
 * | TlsClientCAFile   | tls_client_ca_file  | "" (none asked) |
 * | HandshakeTimeoutMs | handshake_timeout_ms | 10000         |
 * | ProxyProtocol     | proxy_protocol      | "off"           |
 * | ProxyProtocolFrom | proxy_protocol_from | ""              |
 * | ReusePort         | reuse_port          | "off"           |
 * | MetricsAddr       | metrics_addr        | "" (off)        |
 * | ClusterName       | cluster_name        | "" (no cluster) |
 * | ClusterNatsUrl    | cluster_nats_url    | "nats://127.0.0.1:4222" |
 * | ClusterNode       | cluster_node        | 0 (none)        |
 * | ClusterHeartbeatMs | cluster_heartbeat_ms | 1000          |
 * | ClusterDeadAfter  | cluster_dead_after  | 3               |
 * | ClusterMaxPending | cluster_max_pending | 67108864        |
 * | KcpPort           | kcp_port            | 9001            |
 * | KcpACKNoDelay     | kcp_ack_nodelay     | false (0)       |
 * | KcpStreamMode     | kcp_stream_mode     | true (1)        |
 * | KcpNoDelay        | kcp_nodelay         | 1               |
 * | KcpInterval       | kcp_interval        | 10              |
 * | KcpResend         | kcp_resend          | 2               |
 * | KcpNc             | kcp_nc              | 1               |
 * | KcpSendWindow     | kcp_send_window     | 32              |
 * | KcpRecvWindow     | kcp_recv_window     | 32              |
 * | KcpFecDataShards  | kcp_fec_data_shards | 0 (only)        |
 * | KcpFecParityShards | kcp_fec_parity_shards | 0 (only)      |
 * | KcpMtu            | kcp_mtu             | 1400            |
 * | KcpIdleTimeoutMs  | kcp_idle_timeout_ms | 30000           |
 *
 * Scale-out (docs/scale-out.md). ReusePort "process" binds the listener
 * with SO_REUSEPORT, so that several processes share the port and the
 * kernel spreads connections among them (and a new process can take
 * over from an old one that drains); "loops" gives every I/O loop its
 * own such listener. MetricsAddr "HOST:PORT" ("127.0.0.1:9100"; an IPv6
 * host in brackets; port 0 picks a free one) serves the counters at
 * /metrics in Prometheus's text format. ClusterName joins the NATS
 * cluster of that name (letters, digits, '-' and '_', at most 63 bytes)
 * at ClusterNatsUrl (one or more nats:// URLs, "," apart) as node
 * ClusterNode (1..65535, unique in the cluster: connection IDs carry it
 * in their top 16 bits); a node silent for ClusterDeadAfter heartbeats of
 * ClusterHeartbeatMs counts as gone; ClusterMaxPending bytes of cluster
 * traffic may wait unread before more is dropped and counted.
 *
 * Host is a host name ("localhost"), an IPv4 or IPv6 literal (an IPv6
 * one may carry a %zone), or "" for every interface; it is resolved when
 * the server starts. Refused at once: blanks and control characters,
 * brackets, a ':' that is not part of an IPv6 literal ("1.2.3.4:80", the
 * port goes in TCPPort), and digits and dots that are not an IPv4
 * address ("1.2.3", "256.0.0.1"). Such a host is at most 63 bytes.
 *
 * Host may instead be "unix:" followed by a socket path, absolute
 * ("unix:/run/zinx.sock") or relative to the working directory
 * ("unix:zinx.sock"), to listen on a Unix domain socket; TCPPort is then
 * ignored. The path must not be empty, must fit sockaddr_un.sun_path
 * with its NUL (at most 107 bytes on Linux) and must not contain control
 * characters. The prefix is matched in lower case only.
 *
 * UnixMode is the permission bits given to that socket file, at most
 * 0777; it is ignored for a network Host. In JSON it is best written as
 * an octal string ("0660", or "660"); a JSON number is the plain value,
 * so 432 means 0660, and 660 or 644 written as numbers are refused as out
 * of range.
 *
 * HeartbeatCountAcks is a JSON true or false. By default a peer counts as
 * alive only if it sent something (any byte: a heartbeat reply or any
 * message) within HeartbeatMax seconds, as in Zinx; when true, a peer
 * whose TCP stack acknowledged our data within HeartbeatMax also counts
 * as alive, for receive-only clients that never send.
 *
 * IOBackend picks what the event loops wait with: "epoll" (the default)
 * or "io_uring" (multishot accept and receive into a ring of provided
 * buffers, sends batched into one submission per loop iteration). The
 * environment variable ZINX_IO_BACKEND, when set and not empty, overrides
 * it ("epoll" or "io_uring"; anything else makes zinx_server_start() fail with
 * ZINX_ECONFIG).
 * A kernel that refuses io_uring (too old, or forbidden by a seccomp
 * policy or RLIMIT_MEMLOCK) gets epoll instead, with one warning.
 *
 * WorkerMode says how connections map to workers (WorkerPoolSize > 0):
 * "" or "Hash" (connID % WorkerPoolSize, Zinx's default), "Bind" or
 * "DynamicBind"; see docs/configuration.md for what each guarantees.
 * RouterSlicesMode is accepted for Zinx's files and selects nothing:
 * classic routers and handler chains work side by side.
 *
 * FrameDecoder picks how incoming frames are cut: "packet_format" (the
 * default: PacketFormat's 8-byte header), "length_field" (Zinx's
 * LengthField decoder, set by the LengthField* keys; the defaults are
 * Zinx's TLV preset) or "htlv_crc" (Zinx's HTLV+CRC16 device frame).
 * Replies are always written in PacketFormat's layout, except with
 * "htlv_crc", whose replies are HTLV+CRC16 frames. LengthFieldOrder is
 * "big_endian" or "little_endian"; LengthFieldLength is 1, 2, 3, 4 or 8
 * bytes; LengthFieldMaxFrameLength 0 means MaxPacketSize +
 * LengthFieldOffset + LengthFieldLength. BadFramePolicy says what a
 * connection does with a frame its decoder refuses but can skip (a bad
 * CRC, a length-field frame above LengthFieldMaxFrameLength): "drop" it
 * (counted, logged at most once per second) or "close" the connection.
 * docs/codecs.md describes each decoder.
 *
 * Mode is "tcp" (TCPPort), "websocket" (WsPort) or "" for both on one
 * server, sharing routers, hooks, connections and heartbeat (Zinx reads
 * any unknown Mode as "both"; here it is refused). A WebSocket client
 * upgrades with a GET of WsPath; every binary message carries frames of
 * the server's codec. CertFile and PrivateKeyFile, both set, put TLS
 * under every listener (wss for WebSocket); TlsClientCAFile then asks
 * every client for a certificate signed by one of its CAs. ProxyProtocol
 * requires a PROXY protocol header on each accepted connection, from a
 * peer whose address lies in ProxyProtocolFrom ("10.0.0.0/8,::1/128";
 * required when ProxyProtocol is not "off"). HandshakeTimeoutMs bounds
 * the whole of a connection's handshakes (PROXY header, TLS, WebSocket
 * upgrade); 0 means none. docs/transports.md says what each guarantees.
 *
 * Mode "kcp" serves KCP (reliable UDP, as kcp-go speaks it with no
 * encryption and no FEC) on KcpPort instead, as Zinx does: the same
 * frames as a byte stream, with Zinx's Kcp* keys on every conversation.
 * KcpFecDataShards and KcpFecParityShards must be 0: FEC is not
 * implemented, and a non-zero value is refused rather than ignored, as
 * a peer using it could not be understood. KcpMtu (kcp-go's default
 * 1400) and KcpIdleTimeoutMs (a session whose peer sends nothing for
 * that long ends with ZINX_ETIMEDOUT: UDP has no FIN) are this
 * library's own.
 *
 * The README's configuration table says what each one does.
 */
#ifndef ZINX_CONFIG_H
#define ZINX_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "zinx/log.h"
#include "zinx/pack.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility: what is declared here is
   its exported API. */
#pragma GCC visibility push(default)

#define ZINX_CONFIG_NAME_MAX 256
/* Room for "unix:", the longest socket path and its NUL (113 bytes on
   Linux), rounded up. */
#define ZINX_CONFIG_HOST_MAX 128
#define ZINX_CONFIG_PATH_MAX 1024

/* The values of zinx_config_t.io_backend (the IOBackend key). */
typedef enum zinx_io_backend {
    ZINX_IO_EPOLL = 0, /* "epoll" */
    ZINX_IO_URING = 1  /* "io_uring" */
} zinx_io_backend_t;

/* The values of zinx_config_t.worker_mode (the WorkerMode key). */
typedef enum zinx_worker_mode {
    ZINX_WORKER_HASH = 0,        /* "" or "Hash": connID % WorkerPoolSize */
    ZINX_WORKER_BIND = 1,        /* "Bind": one worker per connection */
    ZINX_WORKER_DYNAMIC_BIND = 2 /* "DynamicBind": extra workers on demand */
} zinx_worker_mode_t;

/* The values of zinx_config_t.frame_decoder (the FrameDecoder key). */
typedef enum zinx_frame_decoder {
    ZINX_DECODER_PACKET_FORMAT = 0, /* "packet_format": PacketFormat's */
    ZINX_DECODER_LENGTH_FIELD = 1,  /* "length_field": LengthField* keys */
    ZINX_DECODER_HTLV_CRC = 2       /* "htlv_crc": HTLV+CRC16 (Modbus) */
} zinx_frame_decoder_t;

/* The values of zinx_config_t.length_field_order. */
typedef enum zinx_byte_order {
    ZINX_BIG_ENDIAN = 0,   /* "big_endian" */
    ZINX_LITTLE_ENDIAN = 1 /* "little_endian" */
} zinx_byte_order_t;

/* The values of zinx_config_t.bad_frame_policy (BadFramePolicy). */
typedef enum zinx_bad_frame_policy {
    ZINX_BAD_FRAME_DROP = 0, /* "drop": skip the frame, keep the connection */
    ZINX_BAD_FRAME_CLOSE = 1 /* "close": close the connection */
} zinx_bad_frame_policy_t;

/* The values of zinx_config_t.mode (the Mode key). */
typedef enum zinx_mode {
    ZINX_MODE_TCP = 0,       /* "tcp": TCPPort only (the default) */
    ZINX_MODE_WEBSOCKET = 1, /* "websocket": WsPort only */
    ZINX_MODE_TCP_WS = 2,    /* "": TCPPort and WsPort, one server */
    ZINX_MODE_KCP = 3        /* "kcp": KcpPort only (UDP) */
} zinx_mode_t;

/* The values of zinx_config_t.proxy_protocol (the ProxyProtocol key). */
typedef enum zinx_proxy_protocol {
    ZINX_PROXY_OFF = 0,   /* "off": no header expected (the default) */
    ZINX_PROXY_V1 = 1,    /* "v1": the text header, required */
    ZINX_PROXY_V2 = 2,    /* "v2": the binary header, required */
    ZINX_PROXY_EITHER = 3 /* "either": v1 or v2, required */
} zinx_proxy_protocol_t;

/* The values of zinx_config_t.reuse_port (the ReusePort key). */
typedef enum zinx_reuse_port {
    ZINX_REUSE_PORT_OFF = 0,     /* "off": one listener, port exclusive */
    ZINX_REUSE_PORT_PROCESS = 1, /* "process": one SO_REUSEPORT listener */
    ZINX_REUSE_PORT_LOOPS = 2    /* "loops": one per I/O loop */
} zinx_reuse_port_t;

/* The cluster's name: it becomes part of NATS subjects. */
#define ZINX_CONFIG_CLUSTER_NAME_MAX 64

typedef struct zinx_config {
    /* Layout 1. struct_size: the size of this struct as the program was
       compiled, set by zinx_config_default(); see above. Always first. */
    uint32_t struct_size;
    char name[ZINX_CONFIG_NAME_MAX]; /* server name, shown in logs */
    char host[ZINX_CONFIG_HOST_MAX]; /* name, IP literal, "" = all, or
                                        "unix:PATH"; see above */
    int tcp_port;                    /* 0..65535; 0 picks a free port */
    int max_conn;                    /* 1..1000000 open connections */
    uint32_t max_packet_size;        /* 1..1 GiB payload bytes per frame */
    uint32_t worker_pool_size;       /* 0..1024; 0 = handlers on I/O thread */
    uint32_t max_worker_task_len;    /* 1..16777216 messages per worker queue */
    uint32_t max_msg_chan_len;       /* 1..16777216, see README */
    uint32_t io_read_buff_size;      /* 1..64 MiB, lower bound of a read */
    char log_dir[ZINX_CONFIG_PATH_MAX];
    char log_file[ZINX_CONFIG_NAME_MAX]; /* "" logs to stderr */
    uint64_t log_file_size;              /* rotate beyond; 0: 64 MiB */
    int log_isolation_level;             /* 0..3, see zinx_log_min_level() */
    int log_save_days;                   /* 0..36500; 0: 31 days */
    int log_cons;                        /* 0/1: copy records to stderr */
    int heartbeat_max;                   /* 1..86400 seconds */
    uint32_t io_threads;                 /* 0..256; 0 = one per online CPU */
    zinx_packet_format_t packet_format;
    uint32_t output_high_water; /* 1 KiB..1 GiB unsent bytes */
    uint32_t drain_timeout_ms;  /* 0..3600000 */
    /* Protections against broken and hostile peers (0 turns one off). */
    uint32_t heartbeat_interval_ms; /* 0..86400000; 0: no heartbeat */
    uint32_t heartbeat_msg_id;      /* any ID */
    int heartbeat_count_acks;       /* 0 or 1: acks count as life signs */
    uint32_t frame_timeout_ms;      /* 0..3600000: a started frame's deadline */
    uint32_t idle_timeout_ms;       /* 0..86400000: silence before close */
    uint32_t output_soft_limit;     /* 0..1 GiB unsent bytes ... */
    uint32_t output_soft_timeout_ms; /* 0..3600000 ... held this long: close */
    uint32_t output_hard_limit;      /* 0..1 GiB unsent bytes: close at once */
    uint32_t max_unknown_msgs;       /* unrouted frames tolerated per conn */
    uint32_t close_notice_msg_id;    /* 0: none; else sent before a protocol
                                        error closes the connection */
    /* Layout 2. */
    uint32_t unix_mode; /* 0..0777: mode of a "unix:" Host's socket file */
    uint32_t pad_2;     /* not a setting: ends layout 2 on its alignment */
    /* Layout 3. */
    uint32_t io_backend; /* a zinx_io_backend_t: ZINX_IO_EPOLL or _URING */
    uint32_t pad_3;      /* not a setting: ends layout 3 on its alignment */
    /* Layout 4. */
    uint32_t worker_mode;                   /* a zinx_worker_mode_t */
    int router_slices_mode;                 /* 0/1: accepted, selects nothing */
    uint32_t frame_decoder;                 /* a zinx_frame_decoder_t */
    uint32_t length_field_order;            /* a zinx_byte_order_t */
    uint64_t length_field_max_frame_length; /* 0..4294967295 bytes; 0: see
                                               above */
    uint32_t length_field_offset;           /* 0..65535 */
    uint32_t length_field_length;           /* 1, 2, 3, 4 or 8 */
    int length_field_adjustment;            /* -65536..65536 */
    uint32_t length_field_strip;            /* 0..65535 */
    uint32_t bad_frame_policy;              /* a zinx_bad_frame_policy_t */
    uint32_t pad_4; /* not a setting: ends layout 4 on its alignment */
    /* Layout 5: transports (docs/transports.md). */
    uint32_t mode;                      /* a zinx_mode_t */
    int ws_port;                        /* 0..65535; 0 picks a free port */
    char ws_path[ZINX_CONFIG_PATH_MAX]; /* "/...": the upgrade's path */
    uint32_t ws_max_message_size; /* 125..1 GiB: larger closes with 1009 */
    char cert_file[ZINX_CONFIG_PATH_MAX]; /* PEM chain; with the key: TLS */
    char private_key_file[ZINX_CONFIG_PATH_MAX];   /* PEM key of cert_file */
    char tls_client_ca_file[ZINX_CONFIG_PATH_MAX]; /* "": no client certs;
                                                      else required and
                                                      verified with it */
    uint32_t handshake_timeout_ms; /* 0..3600000: PROXY + TLS + upgrade */
    uint32_t proxy_protocol;       /* a zinx_proxy_protocol_t */
    char proxy_protocol_from[ZINX_CONFIG_PATH_MAX]; /* CIDRs, "," apart */
    uint32_t pad_5; /* not a setting: ends layout 5 on its alignment */
    /* Layout 6: scale-out (docs/scale-out.md). */
    uint32_t reuse_port;                     /* a zinx_reuse_port_t */
    uint32_t cluster_node;                   /* 0..65535; 0: no cluster */
    char metrics_addr[ZINX_CONFIG_HOST_MAX]; /* "": off; "HOST:PORT" */
    char cluster_name[ZINX_CONFIG_CLUSTER_NAME_MAX]; /* "": no cluster */
    char cluster_nats_url[ZINX_CONFIG_PATH_MAX]; /* nats:// URLs, "," apart */
    uint32_t cluster_heartbeat_ms;               /* 50..60000 */
    uint32_t cluster_dead_after;                 /* 2..100 missed heartbeats */
    uint32_t cluster_max_pending; /* 1 MiB..1 GiB unread cluster bytes */
    uint32_t pad_6; /* not a setting: ends layout 6 on its alignment */
    /* Layout 7: KCP (docs/transports.md). */
    int kcp_port;                   /* 0..65535; 0 picks a free port */
    int kcp_ack_nodelay;            /* 0/1: ACKs leave at once */
    int kcp_stream_mode;            /* 0/1: byte stream (1) or messages */
    int kcp_nodelay;                /* 0/1: KCP's nodelay mode */
    uint32_t kcp_interval;          /* 10..5000 ms between flushes */
    uint32_t kcp_resend;            /* 0..100: fast retransmit after N */
    int kcp_nc;                     /* 0/1: no congestion window */
    uint32_t kcp_send_window;       /* 1..65535 segments */
    uint32_t kcp_recv_window;       /* 1..65535 segments */
    uint32_t kcp_fec_data_shards;   /* 0 only: no FEC (refused otherwise) */
    uint32_t kcp_fec_parity_shards; /* 0 only */
    uint32_t kcp_mtu;               /* 50..65507 bytes per datagram */
    uint32_t kcp_idle_timeout_ms;   /* 0..86400000: silence that ends a
                                       session; 0: never */
    uint32_t pad_7; /* not a setting: ends layout 7 on its alignment */
} zinx_config_t;

/*
 * Fills the first `size` bytes of *cfg with the defaults of the table
 * above and sets cfg->struct_size to size. Programs call it through
 * zinx_config_default(), which passes their own sizeof(zinx_config_t);
 * call it directly only from a binding that lays the struct out itself,
 * with the size of the layout it implements. The library writes no byte
 * at or beyond size, so an older program's shorter struct is safe. A
 * size the other calls would refuse is stored all the same, for them to
 * report; a size too small to hold struct_size writes nothing. NULL is a
 * no-op. Thread: any.
 */
void zinx_config_default_sized(zinx_config_t *cfg, size_t size);

/* Fills *cfg with the defaults of the table above, struct_size included.
   NULL is a no-op. Thread: any. */
static inline void zinx_config_default(zinx_config_t *cfg)
{
    zinx_config_default_sized(cfg, sizeof(zinx_config_t));
}

/*
 * Checks every field's range, then the rules between the output limits:
 * with P = OutputHighWater + MaxPacketSize + 8 (computed in 64 bits),
 *
 *   - a nonzero OutputHardLimit must be at least P;
 *   - a nonzero OutputSoftLimit must be at least P;
 *   - when both are nonzero, OutputSoftLimit must not be above
 *     OutputHardLimit.
 *
 * Why: reading, and the handing of requests to handlers, pause while a
 * connection's unsent output is above OutputHighWater, and at most one
 * more frame's reply (MaxPacketSize + the 8-byte header) can be in
 * flight, so a peer that reads its replies never holds more than P unsent
 * bytes. The limits must lie above that, so that only peers that do not
 * read (or server push that outruns a peer) reach them. The defaults
 * satisfy the rules.
 *
 * Returns 0, ZINX_EINVAL for a NULL cfg or a refused struct_size (see
 * the top of this file; err says which), or ZINX_ECONFIG with a message
 * written to err (NUL-terminated, cut to err_len; err may be NULL when
 * err_len is 0): "<key>: <problem>" for a field out of range, or one
 * naming the keys and values of a broken rule, such as
 * "OutputHardLimit (4194304) must be at least OutputHighWater +
 * MaxPacketSize + 8 (8650760)". Thread: any.
 */
int zinx_config_validate(const zinx_config_t *cfg, char *err, size_t err_len);

/*
 * Applies the JSON object text json[0..len) over *cfg: keys present
 * overwrite fields, keys absent keep them. `origin` names the source in
 * messages (a file name, or NULL for "<json>").
 *
 * Returns 0, ZINX_ECONFIG, ZINX_EINVAL (NULL cfg, a refused struct_size,
 * or NULL json with len > 0) or ZINX_ENOMEM. On ZINX_ECONFIG *cfg is
 * unchanged and err receives "<origin>: <key>: <problem>" (malformed
 * JSON, a root that is not an object, a wrong type, an out-of-range
 * value, a key given twice). Only the first cfg->struct_size bytes are
 * read and written; a key whose field lies beyond them (a key newer than
 * the program) is reported as a warning and otherwise ignored. Each
 * key is checked on its own: the rules between keys (see
 * zinx_config_validate()) are not, because the result may be one layer
 * of several (another file, fields set in code) and is complete only when
 * the program says so; call zinx_config_validate() after the last one. Each
 * unknown key, and each Zinx key this library does not use, is reported
 * as a warning to `warn` (may be NULL) and otherwise ignored.
 * Thread: any; warn is called on the calling thread. (cJSON records the
 * position of a parse error in one process-wide variable; this function
 * never reads it, but two threads parsing malformed JSON at the same
 * moment still write it concurrently.)
 */
int zinx_config_load_json(zinx_config_t *cfg, const char *json, size_t len,
                          const char *origin, char *err, size_t err_len,
                          zinx_log_fn warn, void *warn_udata);

/*
 * Reads the file at path and applies it as zinx_config_load_json() does.
 * A file that does not exist leaves *cfg unchanged, reports an info
 * record to `warn` and returns 0, as Zinx does. Any other read failure is
 * ZINX_ECONFIG with the reason in err. A refused struct_size is
 * ZINX_EINVAL, found before the file is read. Thread: any.
 */
int zinx_config_load_file(zinx_config_t *cfg, const char *path, char *err,
                          size_t err_len, zinx_log_fn warn, void *warn_udata);

/*
 * Loads the file Zinx would: $ZINX_CONFIG_FILE_PATH when set and not
 * empty, else ./conf/zinx.json. Same results as zinx_config_load_file(),
 * with one difference: when the variable names a file that does not
 * exist, the call returns ZINX_ECONFIG, leaves *cfg unchanged and writes
 * "ZINX_CONFIG_FILE_PATH names <path>, which does not exist" to err; the
 * file was asked for, so running on defaults would hide the mistake. A
 * missing ./conf/zinx.json with the variable unset or empty still means
 * the defaults (an info record to `warn`, return 0), as in Zinx.
 * Thread: any, as long as no thread changes the environment meanwhile.
 */
int zinx_config_load_default(zinx_config_t *cfg, char *err, size_t err_len,
                             zinx_log_fn warn, void *warn_udata);

/*
 * Writes *cfg as a zinx.json object: every key this library reads, with
 * its value, in the spelling and form zinx_config_load_json() takes
 * (names for named values, "0660" for UnixMode), so that loading the
 * text over the defaults gives *cfg back. For printing the configuration
 * a program runs with, and for bindings that show it.
 *
 * As snprintf(): writes at most len - 1 bytes and a NUL into buf (buf
 * may be NULL when len is 0) and returns the length of the whole text
 * without the NUL, so a return >= len means it was cut; call again with
 * a buffer one byte longer. Returns ZINX_EINVAL for a NULL cfg, a
 * refused struct_size or a field holding a value no name stands for, or
 * ZINX_ENOMEM. The text is at most a few KiB. Thread: any.
 */
int zinx_config_to_json(const zinx_config_t *cfg, char *buf, size_t len);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif /* ZINX_CONFIG_H */

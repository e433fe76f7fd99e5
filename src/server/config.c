/*
 * Defaults, and the struct_size rule that lets zinx_config_t grow: see
 * "Growing without breaking programs" in zinx/config.h.
 *
 * fill_defaults() is the only place that knows the defaults. Every entry
 * point that takes a configuration turns the caller's struct_size bytes
 * into a full zinx_config_t with zinx__config_import(), works on that,
 * and (the loaders) hands back only those bytes with
 * zinx__config_export().
 */
#include <stdio.h>
#include <string.h>

#include "server/config_internal.h"
#include "zinx/error.h"

/* The end of layout 1, the smallest struct_size accepted. */
#define LAYOUT_1_SIZE offsetof(zinx_config_t, unix_mode)

#define CONFIG_ALIGN _Alignof(zinx_config_t)

/*
 * Checked here, on every ABI the library is built for, rather than
 * trusted to whoever appends the next field: struct_size must stay where
 * every version finds it, and no layout may end in padding (a field
 * added later would fall into bytes an older program never set). A new
 * layout adds a line asserting that the previous one ends on the
 * alignment, and names its own last member in the last assertion.
 */
_Static_assert(offsetof(zinx_config_t, struct_size) == 0,
               "struct_size must be the first member");
_Static_assert(LAYOUT_1_SIZE % CONFIG_ALIGN == 0,
               "layout 1 must end on the struct's alignment");
_Static_assert((offsetof(zinx_config_t, pad_2) + sizeof(uint32_t)) %
                       CONFIG_ALIGN ==
                   0,
               "layout 2 must end on the struct's alignment");
_Static_assert((offsetof(zinx_config_t, pad_3) + sizeof(uint32_t)) %
                       CONFIG_ALIGN ==
                   0,
               "layout 3 must end on the struct's alignment");
_Static_assert((offsetof(zinx_config_t, pad_4) + sizeof(uint32_t)) %
                       CONFIG_ALIGN ==
                   0,
               "layout 4 must end on the struct's alignment");
_Static_assert((offsetof(zinx_config_t, pad_5) + sizeof(uint32_t)) %
                       CONFIG_ALIGN ==
                   0,
               "layout 5 must end on the struct's alignment");
_Static_assert((offsetof(zinx_config_t, pad_6) + sizeof(uint32_t)) %
                       CONFIG_ALIGN ==
                   0,
               "layout 6 must end on the struct's alignment");
_Static_assert(offsetof(zinx_config_t, pad_7) + sizeof(uint32_t) ==
                   sizeof(zinx_config_t),
               "the last member must end the struct: follow it by a pad");

static void fill_defaults(zinx_config_t *cfg)
{
    /* Zeroed first so that unused bytes of every text field are NUL. */
    memset(cfg, 0, sizeof(*cfg));
    cfg->struct_size = (uint32_t)sizeof(*cfg);
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
    cfg->io_backend = ZINX_IO_EPOLL;
    cfg->worker_mode = ZINX_WORKER_HASH;
    cfg->router_slices_mode = 0;
    cfg->frame_decoder = ZINX_DECODER_PACKET_FORMAT;
    /* Zinx's TLV preset: the length is the u32 after the ID. */
    cfg->length_field_order = ZINX_BIG_ENDIAN;
    cfg->length_field_max_frame_length = 0;
    cfg->length_field_offset = 4;
    cfg->length_field_length = 4;
    cfg->length_field_adjustment = 0;
    cfg->length_field_strip = 0;
    cfg->bad_frame_policy = ZINX_BAD_FRAME_DROP;
    cfg->mode = ZINX_MODE_TCP;
    cfg->ws_port = 9000;
    snprintf(cfg->ws_path, sizeof(cfg->ws_path), "%s", "/");
    cfg->ws_max_message_size = 1048576;
    cfg->handshake_timeout_ms = 10000;
    cfg->proxy_protocol = ZINX_PROXY_OFF;
    cfg->reuse_port = ZINX_REUSE_PORT_OFF;
    snprintf(cfg->cluster_nats_url, sizeof(cfg->cluster_nats_url), "%s",
             "nats://127.0.0.1:4222");
    cfg->cluster_heartbeat_ms = 1000;
    cfg->cluster_dead_after = 3;
    cfg->cluster_max_pending = 64u << 20;
    /* Zinx's KCP defaults ("turbo" nodelay settings, stream mode). */
    cfg->kcp_port = 9001;
    cfg->kcp_ack_nodelay = 0;
    cfg->kcp_stream_mode = 1;
    cfg->kcp_nodelay = 1;
    cfg->kcp_interval = 10;
    cfg->kcp_resend = 2;
    cfg->kcp_nc = 1;
    cfg->kcp_send_window = 32;
    cfg->kcp_recv_window = 32;
    cfg->kcp_mtu = 1400;
    cfg->kcp_idle_timeout_ms = 30000;
}

void zinx_config_default_sized(zinx_config_t *cfg, size_t size)
{
    if (cfg == NULL || size < sizeof(cfg->struct_size))
        return;
    zinx_config_t full;
    fill_defaults(&full);
    memcpy(cfg, &full, size < sizeof(full) ? size : sizeof(full));
    cfg->struct_size = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
}

int zinx__config_check_size(uint32_t size, char *why, size_t why_len)
{
    if (size == 0) {
        zinx__config_msg(why, why_len,
                         "struct_size is 0: start the configuration with "
                         "zinx_config_default()");
        return ZINX_EINVAL;
    }
    if (size < LAYOUT_1_SIZE) {
        zinx__config_msg(why, why_len,
                         "struct_size %lu is smaller than the first "
                         "zinx_config_t layout (%zu bytes)",
                         (unsigned long)size, LAYOUT_1_SIZE);
        return ZINX_EINVAL;
    }
    if (size % CONFIG_ALIGN != 0) {
        zinx__config_msg(why, why_len,
                         "struct_size %lu is not a multiple of %zu, the "
                         "alignment of zinx_config_t",
                         (unsigned long)size, CONFIG_ALIGN);
        return ZINX_EINVAL;
    }
    if (size > sizeof(zinx_config_t)) {
        zinx__config_msg(why, why_len,
                         "struct_size %lu is larger than this library's "
                         "zinx_config_t (%zu bytes): the program was built "
                         "against a newer zinx",
                         (unsigned long)size, sizeof(zinx_config_t));
        return ZINX_EINVAL;
    }
    return 0;
}

int zinx__config_import(zinx_config_t *full, const zinx_config_t *cfg,
                        char *why, size_t why_len)
{
    fill_defaults(full);
    if (cfg == NULL)
        return 0;
    int rc = zinx__config_check_size(cfg->struct_size, why, why_len);
    if (rc != 0)
        return rc;
    memcpy(full, cfg, cfg->struct_size);
    full->struct_size = (uint32_t)sizeof(*full);
    return 0;
}

void zinx__config_export(zinx_config_t *cfg, const zinx_config_t *full)
{
    uint32_t size = cfg->struct_size;
    memcpy(cfg, full, size);
    cfg->struct_size = size;
}

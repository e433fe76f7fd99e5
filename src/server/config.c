/*
 * Defaults: zinx_config_default() is the only place that knows them.
 */
#include <stdio.h>
#include <string.h>

#include "server/config_internal.h"

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

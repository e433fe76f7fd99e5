/*
 * Tests of the configuration module: defaults, every key, every way a
 * value can be wrong, warnings, files and the environment variable.
 *
 * The expected ranges and key names below are written out from the
 * header's documentation rather than taken from src/config.c, so that a
 * change in the implementation's table shows up here as a failure.
 */
#if !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#include "zinx/config.h"
#include "zinx/error.h"
#include "zinx/client.h"
#include "zinx/server.h"

#define ORIGIN "test-origin.json"
#define ERR_LEN 2048
#define MAX_WARN 32

/* ---- helpers ---------------------------------------------------------- */

#define assert_contains(hay, needle)                                        \
    do {                                                                    \
        const char *hay_ = (hay);                                           \
        const char *needle_ = (needle);                                     \
        if (strstr(hay_, needle_) == NULL) {                                \
            print_error("\"%s\" does not contain \"%s\"\n", hay_, needle_); \
            fail();                                                         \
        }                                                                   \
    } while (0)

struct warn_log {
    int count;
    zinx_log_level_t level[MAX_WARN];
    char text[MAX_WARN][1024];
};

static void record_warn(zinx_log_level_t level, const char *message,
                        void *udata)
{
    struct warn_log *w = udata;
    if (w->count < MAX_WARN) {
        w->level[w->count] = level;
        snprintf(w->text[w->count], sizeof(w->text[0]), "%s", message);
    }
    w->count++;
}

static void data_path(const char *name, char *out, size_t len)
{
    const char *dir = getenv("ZINX_TEST_DATA_DIR");
    if (dir != NULL && dir[0] != '\0') {
        snprintf(out, len, "%s/config/%s", dir, name);
        return;
    }
    /* Without ctest, the data sits beside this source file. */
    const char *slash = strrchr(__FILE__, '/');
    if (slash == NULL)
        snprintf(out, len, "data/config/%s", name);
    else
        snprintf(out, len, "%.*s/data/config/%s", (int)(slash - __FILE__),
                 __FILE__, name);
}

/* A configuration that differs from the defaults, to see what a load keeps. */
static void start_config(zinx_config_t *cfg)
{
    zinx_config_default(cfg);
    snprintf(cfg->name, sizeof(cfg->name), "%s", "before-load");
    cfg->max_conn = 77;
}

static int load_text(zinx_config_t *cfg, const char *json, char *err,
                     struct warn_log *w)
{
    return zinx_config_load_json(cfg, json, strlen(json), ORIGIN, err, ERR_LEN,
                                 record_warn, w);
}

/*
 * Checks the whole contract of a rejection: the code, an untouched
 * configuration, and a message naming the origin and (when given) the key
 * in its canonical spelling, plus an optional further fragment.
 */
static void check_rejected_len(const char *json, size_t len, const char *key,
                               const char *fragment)
{
    zinx_config_t cfg;
    zinx_config_t before;
    struct warn_log w = {0};
    char err[ERR_LEN];
    start_config(&cfg);
    memcpy(&before, &cfg, sizeof(cfg));
    int rc = zinx_config_load_json(&cfg, json, len, ORIGIN, err, sizeof(err),
                                   record_warn, &w);
    if (rc != ZINX_ECONFIG)
        print_error("input: %.*s\n", (int)len, json);
    assert_int_equal(rc, ZINX_ECONFIG);
    assert_memory_equal(&cfg, &before, sizeof(cfg));
    assert_contains(err, ORIGIN ": ");
    if (key != NULL) {
        char prefix[256];
        snprintf(prefix, sizeof(prefix), "%s: %s: ", ORIGIN, key);
        assert_contains(err, prefix);
    }
    if (fragment != NULL)
        assert_contains(err, fragment);
}

static void check_rejected(const char *json, const char *key,
                           const char *fragment)
{
    check_rejected_len(json, strlen(json), key, fragment);
}

static void check_loads(const char *json, zinx_config_t *cfg)
{
    char err[ERR_LEN];
    struct warn_log w = {0};
    int rc = load_text(cfg, json, err, &w);
    if (rc != 0)
        print_error("input: %s\nerror: %s\n", json, err);
    assert_int_equal(rc, 0);
    assert_string_equal(err, "");
    assert_int_equal(w.count, 0);
}

/* Numeric keys with the ranges the header documents. */
struct num_field {
    const char *key;
    size_t offset;
    int is_u32;
    long long min;
    long long max;
};

static const struct num_field num_fields[] = {
    {"TCPPort", offsetof(zinx_config_t, tcp_port), 0, 0, 65535},
    {"MaxConn", offsetof(zinx_config_t, max_conn), 0, 1, 1000000},
    {"MaxPacketSize", offsetof(zinx_config_t, max_packet_size), 1, 1,
     1073741824},
    {"WorkerPoolSize", offsetof(zinx_config_t, worker_pool_size), 1, 0, 1024},
    {"MaxWorkerTaskLen", offsetof(zinx_config_t, max_worker_task_len), 1, 1,
     16777216},
    {"MaxMsgChanLen", offsetof(zinx_config_t, max_msg_chan_len), 1, 1,
     16777216},
    {"IOReadBuffSize", offsetof(zinx_config_t, io_read_buff_size), 1, 1,
     67108864},
    {"LogIsolationLevel", offsetof(zinx_config_t, log_isolation_level), 0, 0,
     3},
    {"LogSaveDays", offsetof(zinx_config_t, log_save_days), 0, 0, 36500},
    {"HeartbeatMax", offsetof(zinx_config_t, heartbeat_max), 0, 1, 86400},
    {"IOThreads", offsetof(zinx_config_t, io_threads), 1, 0, 256},
    {"OutputHighWater", offsetof(zinx_config_t, output_high_water), 1, 1024,
     1073741824},
    {"DrainTimeoutMs", offsetof(zinx_config_t, drain_timeout_ms), 1, 0,
     3600000},
    {"HeartbeatIntervalMs", offsetof(zinx_config_t, heartbeat_interval_ms), 1,
     0, 86400000},
    {"HeartbeatMsgID", offsetof(zinx_config_t, heartbeat_msg_id), 1, 0,
     4294967295LL},
    {"FrameTimeoutMs", offsetof(zinx_config_t, frame_timeout_ms), 1, 0,
     3600000},
    {"IdleTimeoutMs", offsetof(zinx_config_t, idle_timeout_ms), 1, 0, 86400000},
    {"OutputSoftLimit", offsetof(zinx_config_t, output_soft_limit), 1, 0,
     1073741824},
    {"OutputSoftTimeoutMs", offsetof(zinx_config_t, output_soft_timeout_ms), 1,
     0, 3600000},
    {"OutputHardLimit", offsetof(zinx_config_t, output_hard_limit), 1, 0,
     1073741824},
    {"MaxUnknownMsgs", offsetof(zinx_config_t, max_unknown_msgs), 1, 0,
     4294967295LL},
    {"CloseNoticeMsgID", offsetof(zinx_config_t, close_notice_msg_id), 1, 0,
     4294967295LL},
    {"LengthFieldOffset", offsetof(zinx_config_t, length_field_offset), 1, 0,
     65535},
    {"LengthFieldAdjustment", offsetof(zinx_config_t, length_field_adjustment),
     0, -65536, 65536},
    {"LengthFieldInitialBytesToStrip",
     offsetof(zinx_config_t, length_field_strip), 1, 0, 65535},
};

#define NUM_COUNT (sizeof(num_fields) / sizeof(num_fields[0]))

static long long get_num(const zinx_config_t *cfg, const struct num_field *f)
{
    const char *p = (const char *)cfg + f->offset;
    if (f->is_u32)
        return *(const uint32_t *)(const void *)p;
    return *(const int *)(const void *)p;
}

static void set_num(zinx_config_t *cfg, const struct num_field *f, long long v)
{
    char *p = (char *)cfg + f->offset;
    if (f->is_u32)
        *(uint32_t *)(void *)p = (uint32_t)v;
    else
        *(int *)(void *)p = (int)v;
}

/* Zinx keys the library knows of but does not use. */
static const char *const unused_keys[] = {
    "Version",
    "RequestPoolMode",
};

/* A private temporary directory, so parallel runs never collide. */
static void make_temp_dir(char *out, size_t len)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(out, len, "%s/zinx-test-config-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    assert_non_null(mkdtemp(out));
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* ---- defaults --------------------------------------------------------- */

static void test_defaults_match_zinx(void **state)
{
    (void)state;
    zinx_config_t cfg;
    memset(&cfg, 0x5a, sizeof(cfg));
    zinx_config_default(&cfg);
    assert_string_equal(cfg.name, "ZinxServerApp");
    assert_string_equal(cfg.host, "0.0.0.0");
    assert_int_equal(cfg.tcp_port, 8999);
    assert_int_equal(cfg.max_conn, 12000);
    assert_int_equal(cfg.max_packet_size, 4096);
    assert_int_equal(cfg.worker_pool_size, 10);
    assert_int_equal(cfg.max_worker_task_len, 1024);
    assert_int_equal(cfg.max_msg_chan_len, 1024);
    assert_int_equal(cfg.io_read_buff_size, 1024);
    assert_string_equal(cfg.log_dir, "./log");
    assert_string_equal(cfg.log_file, "");
    assert_int_equal(cfg.log_isolation_level, 0);
    assert_int_equal(cfg.log_file_size, 0);
    assert_int_equal(cfg.log_save_days, 0);
    assert_int_equal(cfg.log_cons, 0);
    assert_int_equal(cfg.heartbeat_max, 10);
    assert_int_equal(cfg.io_threads, 0);
    assert_int_equal(cfg.packet_format, ZINX_FORMAT_TLV);
    assert_int_equal(cfg.output_high_water, 262144);
    assert_int_equal(cfg.drain_timeout_ms, 5000);
    assert_int_equal(cfg.heartbeat_interval_ms, 0);
    assert_int_equal(cfg.heartbeat_msg_id, 99999);
    assert_int_equal(cfg.heartbeat_count_acks, 0);
    assert_int_equal(cfg.frame_timeout_ms, 10000);
    assert_int_equal(cfg.idle_timeout_ms, 0);
    assert_int_equal(cfg.output_soft_limit, 1048576);
    assert_int_equal(cfg.output_soft_timeout_ms, 10000);
    assert_int_equal(cfg.output_hard_limit, 4194304);
    assert_int_equal(cfg.max_unknown_msgs, 0);
    assert_int_equal(cfg.close_notice_msg_id, 0);
    assert_int_equal(cfg.worker_mode, ZINX_WORKER_HASH);
    assert_int_equal(cfg.router_slices_mode, 0);
    assert_int_equal(cfg.frame_decoder, ZINX_DECODER_PACKET_FORMAT);
    /* Zinx's TLV preset. */
    assert_int_equal(cfg.length_field_order, ZINX_BIG_ENDIAN);
    assert_int_equal(cfg.length_field_max_frame_length, 0);
    assert_int_equal(cfg.length_field_offset, 4);
    assert_int_equal(cfg.length_field_length, 4);
    assert_int_equal(cfg.length_field_adjustment, 0);
    assert_int_equal(cfg.length_field_strip, 0);
    assert_int_equal(cfg.bad_frame_policy, ZINX_BAD_FRAME_DROP);
}

static void test_defaults_are_valid(void **state)
{
    (void)state;
    zinx_config_t cfg;
    char err[ERR_LEN] = "stale text";
    zinx_config_default(&cfg);
    assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)), 0);
    assert_string_equal(err, "");
}

/* ---- loading good JSON ------------------------------------------------ */

static void test_every_key_from_json(void **state)
{
    (void)state;
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    check_loads("{\"Name\": \"every key\", \"Host\": \"::1\","
                " \"TCPPort\": 12345, \"MaxConn\": 500,"
                " \"MaxPacketSize\": 100000, \"WorkerPoolSize\": 0,"
                " \"MaxWorkerTaskLen\": 64, \"MaxMsgChanLen\": 32,"
                " \"IOReadBuffSize\": 4096, \"LogDir\": \"/tmp/logs\","
                " \"LogFile\": \"z.log\", \"LogIsolationLevel\": 3,"
                " \"HeartbeatMax\": 60, \"IOThreads\": 8,"
                " \"PacketFormat\": \"ltv_le\", \"OutputHighWater\": 2048,"
                " \"DrainTimeoutMs\": 0}",
                &cfg);
    assert_string_equal(cfg.name, "every key");
    assert_string_equal(cfg.host, "::1");
    assert_int_equal(cfg.tcp_port, 12345);
    assert_int_equal(cfg.max_conn, 500);
    assert_int_equal(cfg.max_packet_size, 100000);
    assert_int_equal(cfg.worker_pool_size, 0);
    assert_int_equal(cfg.max_worker_task_len, 64);
    assert_int_equal(cfg.max_msg_chan_len, 32);
    assert_int_equal(cfg.io_read_buff_size, 4096);
    assert_string_equal(cfg.log_dir, "/tmp/logs");
    assert_string_equal(cfg.log_file, "z.log");
    assert_int_equal(cfg.log_isolation_level, 3);
    assert_int_equal(cfg.heartbeat_max, 60);
    assert_int_equal(cfg.io_threads, 8);
    assert_int_equal(cfg.packet_format, ZINX_FORMAT_LTV_LE);
    assert_int_equal(cfg.output_high_water, 2048);
    assert_int_equal(cfg.drain_timeout_ms, 0);
}

/* The keys of the message pipeline, layout 4: every spelling of each
   named value, and Zinx's "" for the hash mode. */
static void test_pipeline_keys_from_json(void **state)
{
    (void)state;
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    check_loads("{\"WorkerMode\": \"DynamicBind\", \"RouterSlicesMode\": true,"
                " \"FrameDecoder\": \"length_field\","
                " \"LengthFieldOrder\": \"LITTLE_endian\","
                " \"LengthFieldMaxFrameLength\": 4294967295,"
                " \"LengthFieldOffset\": 2, \"LengthFieldLength\": 8,"
                " \"LengthFieldAdjustment\": -3,"
                " \"LengthFieldInitialBytesToStrip\": 10,"
                " \"BadFramePolicy\": \"close\"}",
                &cfg);
    assert_int_equal(cfg.worker_mode, ZINX_WORKER_DYNAMIC_BIND);
    assert_int_equal(cfg.router_slices_mode, 1);
    assert_int_equal(cfg.frame_decoder, ZINX_DECODER_LENGTH_FIELD);
    assert_int_equal(cfg.length_field_order, ZINX_LITTLE_ENDIAN);
    assert_true(cfg.length_field_max_frame_length == 4294967295ULL);
    assert_int_equal(cfg.length_field_offset, 2);
    assert_int_equal(cfg.length_field_length, 8);
    assert_int_equal(cfg.length_field_adjustment, -3);
    assert_int_equal(cfg.length_field_strip, 10);
    assert_int_equal(cfg.bad_frame_policy, ZINX_BAD_FRAME_CLOSE);
    check_loads("{\"WorkerMode\": \"\", \"FrameDecoder\": \"htlv_crc\"}", &cfg);
    assert_int_equal(cfg.worker_mode, ZINX_WORKER_HASH);
    assert_int_equal(cfg.frame_decoder, ZINX_DECODER_HTLV_CRC);
    check_loads("{\"WorkerMode\": \"bind\"}", &cfg);
    assert_int_equal(cfg.worker_mode, ZINX_WORKER_BIND);
    check_loads("{\"WorkerMode\": \"hash\"}", &cfg);
    assert_int_equal(cfg.worker_mode, ZINX_WORKER_HASH);
}

/* A named value outside its list, in a file and in code, and the
   length-field sizes Zinx refuses. */
static void test_pipeline_keys_refused(void **state)
{
    (void)state;
    zinx_config_t cfg;
    char err[ERR_LEN];
    zinx_config_default(&cfg);
    const char *bad = "{\"WorkerMode\": \"RoundRobin\"}";
    assert_int_equal(zinx_config_load_json(&cfg, bad, strlen(bad), "f.json",
                                           err, sizeof(err), NULL, NULL),
                     ZINX_ECONFIG);
    assert_string_equal(err, "f.json: WorkerMode: unknown worker mode "
                             "\"RoundRobin\" (expected \"\", Hash, Bind or "
                             "DynamicBind)");
    bad = "{\"FrameDecoder\": 1}";
    assert_int_equal(zinx_config_load_json(&cfg, bad, strlen(bad), "f.json",
                                           err, sizeof(err), NULL, NULL),
                     ZINX_ECONFIG);
    assert_non_null(strstr(err, "FrameDecoder: expected a string"));
    bad = "{\"LengthFieldMaxFrameLength\": 4294967296}";
    assert_int_equal(zinx_config_load_json(&cfg, bad, strlen(bad), "f.json",
                                           err, sizeof(err), NULL, NULL),
                     ZINX_ECONFIG);
    cfg.bad_frame_policy = 2;
    assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)),
                     ZINX_ECONFIG);
    assert_string_equal(err, "BadFramePolicy: unknown bad frame policy 2 "
                             "(expected drop or close)");
    zinx_config_default(&cfg);
    for (uint32_t n = 0; n <= 9; n++) {
        cfg.length_field_length = n;
        int ok = n == 1 || n == 2 || n == 3 || n == 4 || n == 8;
        assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)),
                         ok ? 0 : ZINX_ECONFIG);
        if (!ok)
            assert_non_null(strstr(err, "LengthFieldLength"));
    }
}

static void test_absent_keys_keep_values(void **state)
{
    (void)state;
    zinx_config_t cfg;
    zinx_config_t expect;
    start_config(&cfg);
    memcpy(&expect, &cfg, sizeof(cfg));
    expect.heartbeat_max = 42;
    check_loads("{\"HeartbeatMax\": 42}", &cfg);
    assert_memory_equal(&cfg, &expect, sizeof(cfg));
    check_loads("{}", &cfg);
    check_loads(" \r\n\t{ } \n", &cfg);
    assert_memory_equal(&cfg, &expect, sizeof(cfg));
}

static void test_keys_are_case_insensitive(void **state)
{
    (void)state;
    static const char *const spellings[] = {"TCPPort", "TcpPort", "tcpport",
                                            "TCPPORT", "tCpPoRt"};
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        zinx_config_t cfg;
        char json[128];
        zinx_config_default(&cfg);
        snprintf(json, sizeof(json), "{\"%s\": %zu}", spellings[i], 100 + i);
        check_loads(json, &cfg);
        assert_int_equal(cfg.tcp_port, 100 + i);
    }
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    check_loads("{\"NAME\": \"upper\", \"host\": \"10.1.2.3\","
                " \"packetformat\": \"LTV_LE\", \"ioreadbuffsize\": 7,"
                " \"Draintimeoutms\": 9}",
                &cfg);
    assert_string_equal(cfg.name, "upper");
    assert_string_equal(cfg.host, "10.1.2.3");
    assert_int_equal(cfg.packet_format, ZINX_FORMAT_LTV_LE);
    assert_int_equal(cfg.io_read_buff_size, 7);
    assert_int_equal(cfg.drain_timeout_ms, 9);
}

static void test_numeric_bounds_accepted(void **state)
{
    (void)state;
    for (size_t i = 0; i < NUM_COUNT; i++) {
        const struct num_field *f = &num_fields[i];
        long long ends[2] = {f->min, f->max};
        for (int e = 0; e < 2; e++) {
            zinx_config_t cfg;
            char json[128];
            zinx_config_default(&cfg);
            snprintf(json, sizeof(json), "{\"%s\": %lld}", f->key, ends[e]);
            check_loads(json, &cfg);
            assert_int_equal(get_num(&cfg, f), ends[e]);
        }
    }
}

static void test_integral_number_spellings(void **state)
{
    (void)state;
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    check_loads("{\"MaxConn\": 1e3, \"TCPPort\": -0,"
                " \"HeartbeatMax\": 20.0, \"MaxPacketSize\": 2E+4}",
                &cfg);
    assert_int_equal(cfg.max_conn, 1000);
    assert_int_equal(cfg.tcp_port, 0);
    assert_int_equal(cfg.heartbeat_max, 20);
    assert_int_equal(cfg.max_packet_size, 20000);
}

static void test_good_hosts(void **state)
{
    (void)state;
    /* Names and "" are resolved at server start, not here. */
    static const char *const hosts[] = {"127.0.0.1",
                                        "0.0.0.0",
                                        "::",
                                        "::1",
                                        "fe80::1",
                                        "fe80::1%lo",
                                        "::ffff:10.0.0.1",
                                        "2001:db8:0:0:0:0:0:1",
                                        "localhost",
                                        "",
                                        "no-such-host.invalid",
                                        "zinx-1.example.com."};
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        zinx_config_t cfg;
        char json[128];
        zinx_config_default(&cfg);
        snprintf(json, sizeof(json), "{\"Host\": \"%s\"}", hosts[i]);
        check_loads(json, &cfg);
        assert_string_equal(cfg.host, hosts[i]);
        char err[ERR_LEN];
        assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)), 0);
    }
}

static void test_heartbeat_count_acks(void **state)
{
    (void)state;
    zinx_config_t cfg;
    char err[ERR_LEN];
    zinx_config_default(&cfg);
    check_loads("{\"HeartbeatCountAcks\": true}", &cfg);
    assert_int_equal(cfg.heartbeat_count_acks, 1);
    assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)), 0);
    check_loads("{\"heartbeatcountacks\": false}", &cfg);
    assert_int_equal(cfg.heartbeat_count_acks, 0);
    assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)), 0);

    static const char *const wrong[] = {"1", "0", "\"true\"", "null", "[]"};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        char json[128];
        snprintf(json, sizeof(json), "{\"HeartbeatCountAcks\": %s}", wrong[i]);
        check_rejected(json, "HeartbeatCountAcks", "expected true or false");
    }

    /* In code the field is an int; only 0 and 1 are meaningful. */
    cfg.heartbeat_count_acks = 2;
    assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)),
                     ZINX_ECONFIG);
    assert_string_equal(err,
                        "HeartbeatCountAcks: 2 is not 0 (false) or 1 (true)");
}

static void test_packet_format_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        zinx_packet_format_t format;
    } cases[] = {
        {"tlv", ZINX_FORMAT_TLV},
        {"ltv_le", ZINX_FORMAT_LTV_LE},
        {"TLV", ZINX_FORMAT_TLV},
        {"Ltv_Le", ZINX_FORMAT_LTV_LE},
        {"zinx_pack_tlv_big_endian", ZINX_FORMAT_TLV},
        {"zinx_pack_ltv_little_endian", ZINX_FORMAT_LTV_LE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        zinx_config_t cfg;
        char json[128];
        zinx_config_default(&cfg);
        /* Start from the other format so that every case changes it. */
        cfg.packet_format = cases[i].format == ZINX_FORMAT_TLV
                                ? ZINX_FORMAT_LTV_LE
                                : ZINX_FORMAT_TLV;
        snprintf(json, sizeof(json), "{\"PacketFormat\": \"%s\"}",
                 cases[i].name);
        check_loads(json, &cfg);
        assert_int_equal(cfg.packet_format, cases[i].format);
    }
}

static void test_longest_strings_accepted(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        size_t offset;
        size_t longest;
    } cases[] = {
        {"Name", offsetof(zinx_config_t, name), 255},
        {"LogFile", offsetof(zinx_config_t, log_file), 255},
        {"LogDir", offsetof(zinx_config_t, log_dir), 1023},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char value[1100];
        char json[1200];
        zinx_config_t cfg;
        memset(value, 'a' + (int)i, cases[i].longest);
        value[cases[i].longest] = '\0';
        snprintf(json, sizeof(json), "{\"%s\": \"%s\"}", cases[i].key, value);
        zinx_config_default(&cfg);
        check_loads(json, &cfg);
        assert_string_equal((const char *)&cfg + cases[i].offset, value);
    }
}

static void test_string_escapes(void **state)
{
    (void)state;
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    /* A backslash before "u0000" is text, not a NUL escape. */
    check_loads("{\"Name\": \"a\\\"b\\\\u0000\\u00e9\"}", &cfg);
    assert_string_equal(cfg.name, "a\"b\\u0000\xc3\xa9");
    /* A shorter value leaves no byte of the longer one behind. */
    check_loads("{\"Name\": \"x\"}", &cfg);
    assert_string_equal(cfg.name, "x");
    for (size_t i = 1; i < sizeof(cfg.name); i++)
        assert_int_equal(cfg.name[i], 0);
}

static void test_null_origin_is_json(void **state)
{
    (void)state;
    zinx_config_t cfg;
    char err[ERR_LEN];
    const char *json = "{\"TCPPort\": -1}";
    zinx_config_default(&cfg);
    assert_int_equal(zinx_config_load_json(&cfg, json, strlen(json), NULL, err,
                                           sizeof(err), NULL, NULL),
                     ZINX_ECONFIG);
    assert_contains(err, "<json>: TCPPort: ");
}

static void test_length_bounds_the_text(void **state)
{
    (void)state;
    zinx_config_t cfg;
    char err[ERR_LEN];
    /* Only the first 16 bytes are the document; the rest must be unread. */
    const char *json = "{\"TCPPort\": 11}{\"TCPPort\": 12}";
    zinx_config_default(&cfg);
    assert_int_equal(zinx_config_load_json(&cfg, json, 15, ORIGIN, err,
                                           sizeof(err), NULL, NULL),
                     0);
    assert_int_equal(cfg.tcp_port, 11);
    /* The same text with its full length has a second value. */
    check_rejected(json, NULL, "line 1, column 16");
}

/* ---- rejections ------------------------------------------------------- */

static void test_malformed_json(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "{",
        "{\"Name\":}",
        "{\"Name\": \"x\",}",
        "{\"Name\" \"x\"}",
        "{\"Name\": \"unterminated}",
        "{Name: \"x\"}",
        "{\"TCPPort\": 01x}",
        "{} x",
        "{}{}",
        "",
        "   \n ",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_rejected(cases[i], NULL, NULL);
    check_rejected("{\n  \"Name\": \"x\",\n  \"TCPPort\": ,\n}", NULL,
                   "invalid JSON at line 3, column 14");
    check_rejected("{} x", NULL, "line 1, column 4");
    check_rejected("", NULL, "empty");
    /* The length given, not a NUL, ends the text. */
    check_rejected_len("{}\0", 3, NULL, "line 1, column 3");
}

static void test_root_must_be_object(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "[]", "[{\"Name\": \"x\"}]", "42", "\"text\"", "null", "true"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_rejected(cases[i], NULL, "expected a JSON object");
}

static void test_wrong_types(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *key;
        const char *fragment;
    } cases[] = {
        {"{\"TCPPort\": \"8999\"}", "TCPPort", "expected an integer"},
        {"{\"TCPPort\": 1.5}", "TCPPort", "expected an integer"},
        {"{\"TCPPort\": true}", "TCPPort", "expected an integer"},
        {"{\"TCPPort\": null}", "TCPPort", "expected an integer"},
        {"{\"MaxConn\": [1]}", "MaxConn", "expected an integer"},
        {"{\"MaxPacketSize\": \"4096\"}", "MaxPacketSize",
         "expected an integer"},
        {"{\"MaxPacketSize\": 4096.5}", "MaxPacketSize", "expected an integer"},
        {"{\"WorkerPoolSize\": false}", "WorkerPoolSize",
         "expected an integer"},
        {"{\"IOThreads\": {}}", "IOThreads", "expected an integer"},
        {"{\"Name\": 5}", "Name", "expected a string"},
        {"{\"Name\": true}", "Name", "expected a string"},
        {"{\"Host\": 127}", "Host", "expected a string"},
        {"{\"LogDir\": null}", "LogDir", "expected a string"},
        {"{\"LogFile\": [\"a\"]}", "LogFile", "expected a string"},
        {"{\"PacketFormat\": 0}", "PacketFormat", "expected a string"},
        {"{\"PacketFormat\": {}}", "PacketFormat", "expected a string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_rejected(cases[i].json, cases[i].key, cases[i].fragment);
    /* The key is named in its canonical spelling, however it was given. */
    check_rejected("{\"tcpPORT\": \"1\"}", "TCPPort", "expected an integer");
}

static void test_out_of_range(void **state)
{
    (void)state;
    for (size_t i = 0; i < NUM_COUNT; i++) {
        const struct num_field *f = &num_fields[i];
        char range[64];
        char json[128];
        snprintf(range, sizeof(range), "%lld..%lld", f->min, f->max);
        snprintf(json, sizeof(json), "{\"%s\": %lld}", f->key, f->min - 1);
        check_rejected(json, f->key, range);
        snprintf(json, sizeof(json), "{\"%s\": %lld}", f->key, f->max + 1);
        check_rejected(json, f->key, range);
        /* Past every integer type: neither wraps nor saturates. */
        snprintf(json, sizeof(json), "{\"%s\": 1e300}", f->key);
        check_rejected(json, f->key, range);
        snprintf(json, sizeof(json), "{\"%s\": -4294967296}", f->key);
        check_rejected(json, f->key, range);
        snprintf(json, sizeof(json), "{\"%s\": 4294967296}", f->key);
        check_rejected(json, f->key, range);
    }
}

static void test_overlong_strings(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        size_t len;
    } cases[] = {
        {"Name", 256}, {"LogFile", 256}, {"LogDir", 1024},
        {"Host", 64},  {"Name", 5000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char value[5001];
        char json[5100];
        memset(value, '1', cases[i].len);
        value[cases[i].len] = '\0';
        snprintf(json, sizeof(json), "{\"%s\": \"%s\"}", cases[i].key, value);
        check_rejected(json, cases[i].key, "longer than");
    }
}

static void test_bad_hosts(void **state)
{
    (void)state;
    static const struct {
        const char *host; /* as written inside the JSON string */
        const char *fragment;
    } cases[] = {
        {" 127.0.0.1", "blank or a control character"},
        {"127.0.0.1 ", "blank or a control character"},
        {"local host", "blank or a control character"},
        {"a\\tb", "blank or a control character"},
        {"a\\u007fb", "blank or a control character"},
        {"[::1]", "brackets"},
        {"::g", "is not an IPv6 address"},
        {"1.2.3.4:80", "the port goes in TCPPort"},
        {"localhost:8999", "the port goes in TCPPort"},
        {"fe80::1%", "is not an IPv6 address"},
        {"1.2.3", "is not an IPv4 address"},
        {"256.0.0.1", "is not an IPv4 address"},
        {"1.2.3.4.5", "is not an IPv4 address"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char json[128];
        snprintf(json, sizeof(json), "{\"Host\": \"%s\"}", cases[i].host);
        check_rejected(json, "Host", cases[i].fragment);
    }
}

static void test_bad_packet_formats(void **state)
{
    (void)state;
    static const char *const names[] = {"xml", "", "tlv ", "ltv",
                                        "zinx_pack_tlv"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char json[128];
        snprintf(json, sizeof(json), "{\"PacketFormat\": \"%s\"}", names[i]);
        check_rejected(json, "PacketFormat", "unknown packet format");
    }
}

static void test_nul_escape_rejected(void **state)
{
    (void)state;
    /* Otherwise the value would be cut at the NUL and pass as a host. */
    check_rejected("{\"Host\": \"127.0.0.1\\u0000junk\"}", NULL,
                   "line 1, column 20");
    check_rejected("{\"Name\\u0000\": \"x\"}", NULL, "\\u0000");
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    check_rejected("{\"TCPPort\": 1, \"tcpport\": 2}", "TCPPort",
                   "more than once");
    check_rejected("{\"Name\": \"a\", \"MaxConn\": 3, \"Name\": \"a\"}", "Name",
                   "more than once");
    check_rejected("{\"wsport\": 1, \"WSPORT\": 1}", "WsPort",
                   "more than once");
    check_rejected("{\"Foo\": 1, \"Bar\": 2, \"FOO\": 3}", "Foo",
                   "more than once");
}

static void test_load_is_transactional(void **state)
{
    (void)state;
    /* Good keys before and after the bad one must not be applied. */
    check_rejected("{\"Name\": \"changed\", \"MaxConn\": 5, \"Host\": \"::1\","
                   " \"TCPPort\": 70000, \"HeartbeatMax\": 3}",
                   "TCPPort", "out of range");
    check_rejected("{\"Name\": \"changed\", \"Bogus\": 1, \"PacketFormat\":"
                   " \"ltv_le\", \"LogDir\": 7}",
                   "LogDir", NULL);
}

/* ---- warnings --------------------------------------------------------- */

static void test_unknown_key_warns(void **state)
{
    (void)state;
    zinx_config_t cfg;
    char err[ERR_LEN];
    struct warn_log w = {0};
    zinx_config_default(&cfg);
    assert_int_equal(load_text(&cfg,
                               "{\"Foo\": [1, {\"x\": 2}],"
                               " \"Name\": \"kept\","
                               " \"PrometheusMetricsEnable\": true}",
                               err, &w),
                     0);
    assert_string_equal(cfg.name, "kept");
    assert_int_equal(w.count, 2);
    assert_int_equal(w.level[0], ZINX_LOG_WARN);
    assert_string_equal(w.text[0], ORIGIN ": unknown key \"Foo\" ignored");
    assert_int_equal(w.level[1], ZINX_LOG_WARN);
    assert_contains(w.text[1], "\"PrometheusMetricsEnable\"");
}

static void test_unknown_key_is_quoted_safely(void **state)
{
    (void)state;
    zinx_config_t cfg;
    char err[ERR_LEN];
    struct warn_log w = {0};
    char json[600];
    char longkey[401];
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    snprintf(json, sizeof(json), "{\"a\\nb\\\"c\": 1, \"%s\": 2}", longkey);
    zinx_config_default(&cfg);
    assert_int_equal(load_text(&cfg, json, err, &w), 0);
    assert_int_equal(w.count, 2);
    /* A control character in a key cannot start a forged log line. */
    assert_null(strchr(w.text[0], '\n'));
    assert_contains(w.text[0], "unknown key");
    assert_true(strlen(w.text[1]) < 200);
    assert_contains(w.text[1], "...");
}

static void test_unused_zinx_keys_warn(void **state)
{
    (void)state;
    size_t n = sizeof(unused_keys) / sizeof(unused_keys[0]);
    for (size_t i = 0; i < n; i++) {
        zinx_config_t cfg;
        zinx_config_t before;
        char err[ERR_LEN];
        char json[128];
        char lower[64];
        struct warn_log w = {0};
        /* Given in lower case; the warning uses Zinx's spelling. */
        size_t len = strlen(unused_keys[i]);
        for (size_t j = 0; j <= len; j++)
            lower[j] =
                (char)(unused_keys[i][j] >= 'A' && unused_keys[i][j] <= 'Z'
                           ? unused_keys[i][j] - 'A' + 'a'
                           : unused_keys[i][j]);
        snprintf(json, sizeof(json), "{\"%s\": 1}", lower);
        zinx_config_default(&cfg);
        memcpy(&before, &cfg, sizeof(cfg));
        assert_int_equal(load_text(&cfg, json, err, &w), 0);
        assert_memory_equal(&cfg, &before, sizeof(cfg));
        assert_int_equal(w.count, 1);
        assert_int_equal(w.level[0], ZINX_LOG_WARN);
        char quoted[80];
        snprintf(quoted, sizeof(quoted), "\"%s\"", unused_keys[i]);
        assert_contains(w.text[0], ORIGIN ": ");
        assert_contains(w.text[0], quoted);
        assert_contains(w.text[0],
                        "is a Zinx setting this library does not use yet");
    }
}

static void test_null_warn_callback(void **state)
{
    (void)state;
    zinx_config_t cfg;
    char err[ERR_LEN];
    const char *json = "{\"Foo\": 1, \"KcpPort\": 1, \"MaxConn\": 9}";
    zinx_config_default(&cfg);
    assert_int_equal(zinx_config_load_json(&cfg, json, strlen(json), ORIGIN,
                                           err, sizeof(err), NULL, NULL),
                     0);
    assert_int_equal(cfg.max_conn, 9);
}

/* ---- the err buffer --------------------------------------------------- */

static void test_err_buffer_contract(void **state)
{
    (void)state;
    zinx_config_t cfg;
    const char *bad = "{\"TCPPort\": 70000}";
    char err[8];
    zinx_config_default(&cfg);
    memset(err, 'x', sizeof(err));
    assert_int_equal(zinx_config_load_json(&cfg, bad, strlen(bad), ORIGIN, err,
                                           sizeof(err), NULL, NULL),
                     ZINX_ECONFIG);
    assert_int_equal(strlen(err), sizeof(err) - 1);
    assert_memory_equal(err, ORIGIN, sizeof(err) - 1);
    memset(err, 'x', sizeof(err));
    assert_int_equal(zinx_config_load_json(&cfg, bad, strlen(bad), ORIGIN, err,
                                           1, NULL, NULL),
                     ZINX_ECONFIG);
    assert_int_equal(err[0], '\0');
    assert_int_equal(err[1], 'x');
    assert_int_equal(zinx_config_load_json(&cfg, bad, strlen(bad), ORIGIN, NULL,
                                           0, NULL, NULL),
                     ZINX_ECONFIG);
    /* Success clears what an earlier failure left. */
    char big[ERR_LEN] = "stale";
    assert_int_equal(zinx_config_load_json(&cfg, "{}", 2, ORIGIN, big,
                                           sizeof(big), NULL, NULL),
                     0);
    assert_string_equal(big, "");
}

static void test_bad_arguments(void **state)
{
    (void)state;
    zinx_config_t cfg;
    char err[ERR_LEN];
    zinx_config_default(&cfg);
    assert_int_equal(zinx_config_load_json(NULL, "{}", 2, NULL, err,
                                           sizeof(err), NULL, NULL),
                     ZINX_EINVAL);
    assert_int_equal(zinx_config_load_json(&cfg, NULL, 2, NULL, err,
                                           sizeof(err), NULL, NULL),
                     ZINX_EINVAL);
    assert_int_equal(
        zinx_config_load_file(&cfg, NULL, err, sizeof(err), NULL, NULL),
        ZINX_EINVAL);
    assert_int_equal(
        zinx_config_load_file(NULL, "x.json", err, sizeof(err), NULL, NULL),
        ZINX_EINVAL);
    assert_int_equal(zinx_config_validate(NULL, err, sizeof(err)), ZINX_EINVAL);
    zinx_config_default(NULL);
}

/* ---- validate --------------------------------------------------------- */

static void check_invalid(const zinx_config_t *cfg, const char *key,
                          const char *fragment)
{
    char err[ERR_LEN];
    char prefix[128];
    assert_int_equal(zinx_config_validate(cfg, err, sizeof(err)), ZINX_ECONFIG);
    snprintf(prefix, sizeof(prefix), "%s: ", key);
    assert_contains(err, prefix);
    if (fragment != NULL)
        assert_contains(err, fragment);
}

static void test_validate_ranges(void **state)
{
    (void)state;
    for (size_t i = 0; i < NUM_COUNT; i++) {
        const struct num_field *f = &num_fields[i];
        zinx_config_t cfg;
        char err[ERR_LEN];
        char range[64];
        snprintf(range, sizeof(range), "%lld..%lld", f->min, f->max);
        /* Output limits off, so that each field's whole range is legal
           and only the range check can object (the rules between keys
           have tests of their own below). */
        zinx_config_default(&cfg);
        cfg.output_soft_limit = 0;
        cfg.output_hard_limit = 0;
        set_num(&cfg, f, f->min);
        assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)), 0);
        set_num(&cfg, f, f->max);
        assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)), 0);
        /* A field that spans all of uint32_t has no invalid value. */
        if (f->is_u32 && f->min == 0 && f->max == (long long)UINT32_MAX)
            continue;
        set_num(&cfg, f, f->max + 1);
        check_invalid(&cfg, f->key, range);
        /* A uint32_t field below 0 wraps to its top, still invalid. */
        set_num(&cfg, f, f->min - 1);
        check_invalid(&cfg, f->key, range);
        set_num(&cfg, f,
                f->is_u32 ? (long long)UINT32_MAX : (long long)INT_MIN);
        check_invalid(&cfg, f->key, range);
    }
}

/* Checks the whole message of a broken rule between keys. */
static void check_rule_broken(const zinx_config_t *cfg, const char *message)
{
    char err[ERR_LEN];
    assert_int_equal(zinx_config_validate(cfg, err, sizeof(err)), ZINX_ECONFIG);
    assert_string_equal(err, message);
}

static void check_valid(const zinx_config_t *cfg)
{
    char err[ERR_LEN];
    int rc = zinx_config_validate(cfg, err, sizeof(err));
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
}

/* The case: a big MaxPacketSize with the default limits. */
static void test_limits_below_reader_peak(void **state)
{
    (void)state;
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    cfg.max_packet_size = 8u << 20;
    check_rule_broken(&cfg, "OutputHardLimit (4194304) must be at least "
                            "OutputHighWater + MaxPacketSize + 8 (8650760)");
    cfg.output_hard_limit = 0;
    check_rule_broken(&cfg, "OutputSoftLimit (1048576) must be at least "
                            "OutputHighWater + MaxPacketSize + 8 (8650760)");
    cfg.output_soft_limit = 0;
    check_valid(&cfg);
}

/* Each limit is legal from exactly HighWater + MaxPacketSize + 8 up. */
static void test_limit_floor_is_exact(void **state)
{
    (void)state;
    zinx_config_t cfg;
    const uint32_t peak = 262144 + 4096 + 8;
    zinx_config_default(&cfg);
    cfg.output_soft_limit = peak;
    cfg.output_hard_limit = peak;
    check_valid(&cfg);
    cfg.output_hard_limit = peak - 1;
    check_rule_broken(&cfg, "OutputHardLimit (266247) must be at least "
                            "OutputHighWater + MaxPacketSize + 8 (266248)");
    cfg.output_hard_limit = 0;
    check_valid(&cfg);
    cfg.output_soft_limit = peak - 1;
    check_rule_broken(&cfg, "OutputSoftLimit (266247) must be at least "
                            "OutputHighWater + MaxPacketSize + 8 (266248)");
    /* The high-water mark counts as much as the frame size. */
    cfg.output_soft_limit = peak;
    cfg.output_high_water += 1;
    check_rule_broken(&cfg, "OutputSoftLimit (266248) must be at least "
                            "OutputHighWater + MaxPacketSize + 8 (266249)");
}

static void test_soft_limit_not_above_hard(void **state)
{
    (void)state;
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    cfg.output_soft_limit = 4194305;
    check_rule_broken(&cfg, "OutputSoftLimit (4194305) must not be above "
                            "OutputHardLimit (4194304)");
    cfg.output_soft_limit = cfg.output_hard_limit;
    check_valid(&cfg);
    /* Either limit off lifts the order rule. */
    cfg.output_soft_limit = 1u << 30;
    cfg.output_hard_limit = 0;
    check_valid(&cfg);
}

/* The sum would not fit in 31 bits; it must not wrap either. */
static void test_limit_rule_in_64_bits(void **state)
{
    (void)state;
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    cfg.max_packet_size = 1u << 30;
    cfg.output_high_water = 1u << 30;
    cfg.output_soft_limit = 0;
    cfg.output_hard_limit = 1u << 30;
    check_rule_broken(&cfg, "OutputHardLimit (1073741824) must be at least "
                            "OutputHighWater + MaxPacketSize + 8 (2147483656)");
    cfg.output_hard_limit = 0;
    check_valid(&cfg);
}

/*
 * A file is checked key by key when loaded, and the rules between keys
 * when the result is validated, as zinx-echo and zinx_server_start() do.
 */
static void test_loaded_limits_fail_validation(void **state)
{
    (void)state;
    char tmp[PATH_MAX];
    char path[PATH_MAX + 16];
    char err[ERR_LEN];
    const char *json = "{\"MaxPacketSize\": 8388608}";
    zinx_config_t cfg;
    make_temp_dir(tmp, sizeof(tmp));
    snprintf(path, sizeof(path), "%s/big.json", tmp);
    write_file(path, json, strlen(json));
    zinx_config_default(&cfg);
    assert_int_equal(
        zinx_config_load_file(&cfg, path, err, sizeof(err), NULL, NULL), 0);
    assert_int_equal(cfg.max_packet_size, 8388608);
    check_rule_broken(&cfg, "OutputHardLimit (4194304) must be at least "
                            "OutputHighWater + MaxPacketSize + 8 (8650760)");
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(tmp), 0);
}

static void test_validate_strings(void **state)
{
    (void)state;
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    memset(cfg.name, 'n', sizeof(cfg.name));
    check_invalid(&cfg, "Name", "NUL");

    zinx_config_default(&cfg);
    memset(cfg.log_dir, 'd', sizeof(cfg.log_dir));
    check_invalid(&cfg, "LogDir", "NUL");

    zinx_config_default(&cfg);
    memset(cfg.log_file, 'f', sizeof(cfg.log_file));
    check_invalid(&cfg, "LogFile", "NUL");

    zinx_config_default(&cfg);
    memset(cfg.host, '1', sizeof(cfg.host));
    check_invalid(&cfg, "Host", "NUL");

    static const struct {
        const char *host;
        const char *fragment;
    } hosts[] = {
        {"local\nhost", "\"local?host\" contains a blank or a control"},
        {"[::1]", "brackets"},
        {"1.2.3", "is not an IPv4 address"},
    };
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        zinx_config_default(&cfg);
        snprintf(cfg.host, sizeof(cfg.host), "%s", hosts[i].host);
        check_invalid(&cfg, "Host", hosts[i].fragment);
    }
}

static void test_validate_packet_format(void **state)
{
    (void)state;
    zinx_config_t cfg;
    char err[ERR_LEN];
    zinx_config_default(&cfg);
    cfg.packet_format = ZINX_FORMAT_LTV_LE;
    assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)), 0);
    cfg.packet_format = (zinx_packet_format_t)7;
    check_invalid(&cfg, "PacketFormat", "unknown packet format");
}

/* ---- files ------------------------------------------------------------ */

static void test_load_file_every_key(void **state)
{
    (void)state;
    zinx_config_t cfg;
    char path[PATH_MAX];
    char err[ERR_LEN];
    struct warn_log w = {0};
    data_path("all_keys.json", path, sizeof(path));
    zinx_config_default(&cfg);
    int rc =
        zinx_config_load_file(&cfg, path, err, sizeof(err), record_warn, &w);
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(w.count, 0);
    assert_string_equal(cfg.name, "file-server");
    assert_string_equal(cfg.host, "127.0.0.1");
    assert_int_equal(cfg.tcp_port, 7777);
    assert_int_equal(cfg.max_conn, 300);
    assert_int_equal(cfg.max_packet_size, 65536);
    assert_int_equal(cfg.worker_pool_size, 4);
    assert_int_equal(cfg.max_worker_task_len, 2048);
    assert_int_equal(cfg.max_msg_chan_len, 512);
    assert_int_equal(cfg.io_read_buff_size, 8192);
    assert_string_equal(cfg.log_dir, "/var/log/zinx-test");
    assert_string_equal(cfg.log_file, "server.log");
    assert_int_equal(cfg.log_isolation_level, 2);
    assert_int_equal(cfg.heartbeat_max, 30);
    assert_int_equal(cfg.io_threads, 2);
    assert_int_equal(cfg.packet_format, ZINX_FORMAT_LTV_LE);
    assert_int_equal(cfg.output_high_water, 1048576);
    assert_int_equal(cfg.drain_timeout_ms, 250);
}

static void test_load_file_zinx_style(void **state)
{
    (void)state;
    zinx_config_t cfg;
    char path[PATH_MAX];
    char err[ERR_LEN];
    struct warn_log w = {0};
    data_path("zinx_style.json", path, sizeof(path));
    zinx_config_default(&cfg);
    assert_int_equal(
        zinx_config_load_file(&cfg, path, err, sizeof(err), record_warn, &w),
        0);
    assert_string_equal(cfg.name, "demo server");
    assert_int_equal(cfg.tcp_port, 8999);
    assert_int_equal(cfg.max_conn, 3000);
    assert_string_equal(cfg.log_dir, "./mylog");
    assert_string_equal(cfg.log_file, "app.log");
    /* Zinx's log keys are read, not ignored. */
    assert_int_equal(cfg.log_save_days, 15);
    assert_int_equal(cfg.log_cons, 1);
    assert_int_equal(w.count, 0);
}

/* LogFileSize is 64-bit and LogCons a JSON boolean, outside num_fields. */
static void test_log_file_keys(void **state)
{
    (void)state;
    zinx_config_t cfg;
    char err[ERR_LEN];
    zinx_config_default(&cfg);
    check_loads("{\"LogFileSize\": 1099511627776, \"LogCons\": true}", &cfg);
    assert_true(cfg.log_file_size == 1099511627776ull);
    assert_int_equal(cfg.log_cons, 1);
    check_loads("{\"logfilesize\": 0, \"LOGCONS\": false}", &cfg);
    assert_true(cfg.log_file_size == 0);
    assert_int_equal(cfg.log_cons, 0);
    check_rejected("{\"LogFileSize\": 1099511627777}", "LogFileSize",
                   "0..1099511627776");
    check_rejected("{\"LogFileSize\": -1}", "LogFileSize", "out of range");
    check_rejected("{\"LogCons\": 1}", "LogCons", "expected true or false");
    check_rejected("{\"LogCons\": \"true\"}", "LogCons",
                   "expected true or false");
    zinx_config_default(&cfg);
    cfg.log_file_size = UINT64_MAX;
    assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)),
                     ZINX_ECONFIG);
    assert_contains(err, "LogFileSize: ");
    zinx_config_default(&cfg);
    cfg.log_cons = 2;
    assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)),
                     ZINX_ECONFIG);
    assert_contains(err, "LogCons: ");
}

/* The transport keys: Zinx's spellings and values, the rules between
   them, and the refusals a typo must get rather than a port nobody
   asked for. */
static void test_transport_keys(void **state)
{
    (void)state;
    zinx_config_t cfg;
    char err[ERR_LEN];
    struct warn_log w = {0};
    zinx_config_default(&cfg);
    assert_int_equal(cfg.mode, ZINX_MODE_TCP);
    assert_int_equal(cfg.ws_port, 9000);
    assert_string_equal(cfg.ws_path, "/");
    assert_int_equal(cfg.handshake_timeout_ms, 10000);
    assert_int_equal(cfg.proxy_protocol, ZINX_PROXY_OFF);
    const char *json =
        "{\"Mode\": \"\", \"WsPort\": 0, \"WsPath\": \"/game\", "
        "\"CertFile\": \"c.pem\", \"PrivateKeyFile\": \"k.pem\", "
        "\"ProxyProtocol\": \"either\", "
        "\"ProxyProtocolFrom\": \"10.0.0.0/8, ::1\", "
        "\"HandshakeTimeoutMs\": 250, \"WsMaxMessageSize\": 4096}";
    assert_int_equal(load_text(&cfg, json, err, &w), 0);
    assert_int_equal(w.count, 0);
    assert_int_equal(cfg.mode, ZINX_MODE_TCP_WS);
    assert_int_equal(cfg.ws_port, 0);
    assert_string_equal(cfg.ws_path, "/game");
    assert_string_equal(cfg.cert_file, "c.pem");
    assert_int_equal(cfg.proxy_protocol, ZINX_PROXY_EITHER);
    assert_int_equal(cfg.handshake_timeout_ms, 250);
    assert_int_equal(cfg.ws_max_message_size, 4096);
    assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)), 0);

    /* KCP is Zinx's third mode, on its own port. */
    zinx_config_default(&cfg);
    assert_int_equal(load_text(&cfg, "{\"Mode\": \"kcp\"}", err, &w), 0);
    assert_int_equal(cfg.mode, ZINX_MODE_KCP);
    assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)), 0);
    /* A misspelt Mode is still refused, with the names it may take. */
    zinx_config_default(&cfg);
    assert_int_equal(load_text(&cfg, "{\"Mode\": \"kcpp\"}", err, &w),
                     ZINX_ECONFIG);
    assert_contains(err, "Mode");
    assert_contains(err, "kcp");
    assert_int_equal(load_text(&cfg, "{\"ProxyProtocol\": \"v3\"}", err, &w),
                     ZINX_ECONFIG);
    assert_contains(err, "off, v1, v2 or either");

    static const struct {
        const char *json;
        const char *fragment;
    } rules[] = {
        {"{\"CertFile\": \"c.pem\"}", "PrivateKeyFile is empty"},
        {"{\"PrivateKeyFile\": \"k.pem\"}", "CertFile is empty"},
        {"{\"TlsClientCAFile\": \"ca.pem\"}", "TlsClientCAFile needs"},
        {"{\"WsPath\": \"game\"}", "does not start with /"},
        {"{\"Mode\": \"\", \"TCPPort\": 7000, \"WsPort\": 7000}",
         "TCPPort and WsPort are both 7000"},
        {"{\"Mode\": \"\", \"Host\": \"unix:/tmp/z.sock\"}", "needs two ports"},
        {"{\"Mode\": \"kcp\", \"Host\": \"unix:/tmp/z.sock\"}",
         "KCP runs over UDP"},
        {"{\"KcpFecDataShards\": 10, \"KcpFecParityShards\": 3}",
         "FEC is not supported"},
        {"{\"ProxyProtocol\": \"v1\"}", "ProxyProtocolFrom is empty"},
        {"{\"ProxyProtocol\": \"v2\", \"ProxyProtocolFrom\": \"::/0\", "
         "\"Host\": \"unix:/tmp/z.sock\"}",
         "ProxyProtocol needs a network Host"},
        {"{\"ProxyProtocolFrom\": \"10.0.0.0/33\"}", "\"10.0.0.0/33\""},
        {"{\"ProxyProtocolFrom\": \"10.0.0.1,,::1\"}", "\"\" is not"},
        {"{\"ProxyProtocolFrom\": \"example.com\"}", "\"example.com\""},
    };
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        zinx_config_default(&cfg);
        assert_int_equal(load_text(&cfg, rules[i].json, err, &w), 0);
        assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)),
                         ZINX_ECONFIG);
        assert_contains(err, rules[i].fragment);
    }
}

/* The scale-out keys of layout 6: defaults, a full file, and each rule
   between them named in the refusal. */
static void test_scale_out_keys(void **state)
{
    (void)state;
    zinx_config_t cfg;
    char err[ERR_LEN];
    struct warn_log w = {0};
    zinx_config_default(&cfg);
    assert_int_equal(cfg.reuse_port, ZINX_REUSE_PORT_OFF);
    assert_string_equal(cfg.metrics_addr, "");
    assert_string_equal(cfg.cluster_name, "");
    assert_string_equal(cfg.cluster_nats_url, "nats://127.0.0.1:4222");
    assert_int_equal(cfg.cluster_node, 0);
    assert_int_equal(cfg.cluster_heartbeat_ms, 1000);
    assert_int_equal(cfg.cluster_dead_after, 3);
    assert_int_equal(cfg.cluster_max_pending, 64u << 20);
    const char *json =
        "{\"ReusePort\": \"loops\", \"MetricsAddr\": \"[::1]:0\", "
        "\"ClusterName\": \"game-eu_1\", \"ClusterNode\": 65535, "
        "\"ClusterNatsUrl\": \"nats://a:4222,nats://b:4222\", "
        "\"ClusterHeartbeatMs\": 50, \"ClusterDeadAfter\": 2, "
        "\"ClusterMaxPending\": 1048576}";
    assert_int_equal(load_text(&cfg, json, err, &w), 0);
    assert_int_equal(w.count, 0);
    assert_int_equal(cfg.reuse_port, ZINX_REUSE_PORT_LOOPS);
    assert_string_equal(cfg.metrics_addr, "[::1]:0");
    assert_string_equal(cfg.cluster_name, "game-eu_1");
    assert_int_equal(cfg.cluster_node, 65535);
    assert_string_equal(cfg.cluster_nats_url, "nats://a:4222,nats://b:4222");
    assert_int_equal(cfg.cluster_heartbeat_ms, 50);
    assert_int_equal(cfg.cluster_dead_after, 2);
    assert_int_equal(cfg.cluster_max_pending, 1048576);
    assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)), 0);

    static const struct {
        const char *json;
        int load_rc; /* refused by the key itself, or only by validate */
        const char *fragment;
    } rules[] = {
        {"{\"ReusePort\": \"yes\"}", ZINX_ECONFIG, "off, process or loops"},
        {"{\"ClusterNode\": 65536}", ZINX_ECONFIG, "ClusterNode"},
        {"{\"ClusterHeartbeatMs\": 49}", ZINX_ECONFIG, "ClusterHeartbeatMs"},
        {"{\"ClusterDeadAfter\": 1}", ZINX_ECONFIG, "ClusterDeadAfter"},
        {"{\"ClusterMaxPending\": 1000}", ZINX_ECONFIG, "ClusterMaxPending"},
        {"{\"ReusePort\": \"process\", \"Host\": \"unix:/tmp/z.sock\"}", 0,
         "ReusePort needs a network Host"},
        {"{\"MetricsAddr\": \"9100\"}", 0, "is not HOST:PORT"},
        {"{\"MetricsAddr\": \"127.0.0.1:65536\"}", 0, "is not HOST:PORT"},
        {"{\"MetricsAddr\": \"127.0.0.1:\"}", 0, "is not HOST:PORT"},
        {"{\"MetricsAddr\": \"::1:9100\"}", 0, "in brackets"},
        {"{\"MetricsAddr\": \"unix:/tmp/m:1\"}", 0, "unix: is not served"},
        {"{\"MetricsAddr\": \"1.2.3:9100\"}", 0, "not an IPv4 address"},
        {"{\"ClusterNode\": 3}", 0, "ClusterNode (3) needs ClusterName"},
        {"{\"ClusterName\": \"a\"}", 0, "ClusterNode is 0"},
        {"{\"ClusterName\": \"a.b\", \"ClusterNode\": 1}", 0,
         "may hold only letters"},
        {"{\"ClusterName\": \"a\", \"ClusterNode\": 1, "
         "\"ClusterNatsUrl\": \"\"}",
         0, "ClusterNatsUrl"},
    };
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        zinx_config_default(&cfg);
        int rc = load_text(&cfg, rules[i].json, err, &w);
        assert_int_equal(rc, rules[i].load_rc);
        if (rc == 0)
            assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)),
                             ZINX_ECONFIG);
        assert_contains(err, rules[i].fragment);
    }
    zinx_config_default(&cfg);
    assert_int_equal(load_text(&cfg, "{\"MetricsAddr\": \":9100\"}", err, &w),
                     0);
    assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)), 0);
}

static void test_load_file_warnings(void **state)
{
    (void)state;
    zinx_config_t cfg;
    char path[PATH_MAX];
    char err[ERR_LEN];
    struct warn_log w = {0};
    data_path("unknown_keys.json", path, sizeof(path));
    zinx_config_default(&cfg);
    assert_int_equal(
        zinx_config_load_file(&cfg, path, err, sizeof(err), record_warn, &w),
        0);
    assert_string_equal(cfg.name, "with extras");
    assert_int_equal(w.count, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(w.level[i], ZINX_LOG_WARN);
        assert_contains(w.text[i], path);
    }
    assert_contains(w.text[0], "unknown key \"PrometheusMetricsEnable\"");
    assert_contains(w.text[1], "\"Version\" is a Zinx setting");
    assert_contains(w.text[2], "\"RequestPoolMode\" is a Zinx setting");
    assert_int_equal(cfg.kcp_port, 9001); /* served: no warning */
}

static void test_load_file_rejections(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        const char *key;
        const char *fragment;
    } cases[] = {
        {"bad_syntax.json", NULL, "line 3, column 14"},
        {"bad_range.json", "TCPPort", "0..65535"},
        {"bad_type.json", "MaxConn", "expected an integer"},
        {"not_object.json", NULL, "expected a JSON object"},
        {"duplicate.json", "TCPPort", "more than once"},
        {"empty.json", NULL, "empty"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        zinx_config_t cfg;
        zinx_config_t before;
        char path[PATH_MAX];
        char err[ERR_LEN];
        char prefix[PATH_MAX + 64];
        data_path(cases[i].file, path, sizeof(path));
        start_config(&cfg);
        memcpy(&before, &cfg, sizeof(cfg));
        assert_int_equal(
            zinx_config_load_file(&cfg, path, err, sizeof(err), NULL, NULL),
            ZINX_ECONFIG);
        assert_memory_equal(&cfg, &before, sizeof(cfg));
        if (cases[i].key != NULL)
            snprintf(prefix, sizeof(prefix), "%s: %s: ", path, cases[i].key);
        else
            snprintf(prefix, sizeof(prefix), "%s: ", path);
        assert_contains(err, prefix);
        assert_contains(err, cases[i].fragment);
    }
}

static void test_load_file_missing(void **state)
{
    (void)state;
    char path[PATH_MAX];
    char missing[3][PATH_MAX + 32];
    data_path("does-not-exist.json", path, sizeof(path));
    snprintf(missing[0], sizeof(missing[0]), "%s", path);
    data_path("no-such-dir/zinx.json", missing[1], sizeof(missing[1]));
    snprintf(missing[2], sizeof(missing[2]), "%s", "");
    for (int i = 0; i < 3; i++) {
        zinx_config_t cfg;
        zinx_config_t before;
        char err[ERR_LEN] = "stale";
        struct warn_log w = {0};
        start_config(&cfg);
        memcpy(&before, &cfg, sizeof(cfg));
        assert_int_equal(zinx_config_load_file(&cfg, missing[i], err,
                                               sizeof(err), record_warn, &w),
                         0);
        assert_memory_equal(&cfg, &before, sizeof(cfg));
        assert_string_equal(err, "");
        assert_int_equal(w.count, 1);
        assert_int_equal(w.level[0], ZINX_LOG_INFO);
        assert_contains(w.text[0], missing[i]);
        assert_contains(w.text[0], "not found, using defaults");
    }
}

static void check_file_rejected(const char *path, const char *fragment)
{
    zinx_config_t cfg;
    zinx_config_t before;
    char err[ERR_LEN];
    struct warn_log w = {0};
    start_config(&cfg);
    memcpy(&before, &cfg, sizeof(cfg));
    assert_int_equal(
        zinx_config_load_file(&cfg, path, err, sizeof(err), record_warn, &w),
        ZINX_ECONFIG);
    assert_memory_equal(&cfg, &before, sizeof(cfg));
    assert_int_equal(w.count, 0);
    assert_contains(err, path);
    assert_contains(err, fragment);
}

static void test_load_file_not_a_file(void **state)
{
    (void)state;
    char path[PATH_MAX];
    char dir[PATH_MAX];
    char below[PATH_MAX + 16];
    data_path("", dir, sizeof(dir));
    check_file_rejected(dir, "directory");
    /* ENOTDIR is a broken path, not a missing file. */
    data_path("all_keys.json", path, sizeof(path));
    snprintf(below, sizeof(below), "%s/x.json", path);
    check_file_rejected(below, "cannot open");

    char tmp[PATH_MAX];
    char fifo[PATH_MAX + 16];
    make_temp_dir(tmp, sizeof(tmp));
    snprintf(fifo, sizeof(fifo), "%s/fifo.json", tmp);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    /* Must fail at once instead of waiting for a writer. */
    check_file_rejected(fifo, "not a regular file");
    assert_int_equal(unlink(fifo), 0);
    assert_int_equal(rmdir(tmp), 0);
}

static void test_load_file_size_limit(void **state)
{
    (void)state;
    const size_t limit = 1024 * 1024;
    char tmp[PATH_MAX];
    char path[PATH_MAX + 16];
    char *text = malloc(limit + 1);
    assert_non_null(text);
    make_temp_dir(tmp, sizeof(tmp));
    snprintf(path, sizeof(path), "%s/big.json", tmp);

    /* Exactly 1 MiB is accepted. */
    memset(text, ' ', limit + 1);
    memcpy(text, "{\"MaxConn\": 4}", 14);
    write_file(path, text, limit);
    zinx_config_t cfg;
    char err[ERR_LEN];
    zinx_config_default(&cfg);
    int rc = zinx_config_load_file(&cfg, path, err, sizeof(err), NULL, NULL);
    if (rc != 0)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(cfg.max_conn, 4);

    /* One byte more is not. */
    write_file(path, text, limit + 1);
    check_file_rejected(path, "larger than 1 MiB");

    free(text);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(tmp), 0);
}

/*
 * A file whose size fstat() reports as 0 while it has content (as files
 * in /proc do) is read to its end all the same: the buffer grows as the
 * reads go. The text is not JSON, which shows that it was read.
 */
static void test_load_file_without_size(void **state)
{
    (void)state;
    const char *path = "/proc/self/status";
    struct stat st;
    if (stat(path, &st) != 0 || st.st_size != 0)
        skip();
    check_file_rejected(path, "invalid JSON at line 1, column 1");
}

static void test_load_file_unreadable(void **state)
{
    (void)state;
    if (geteuid() == 0)
        skip(); /* root reads any file; the case cannot arise */
    char tmp[PATH_MAX];
    char path[PATH_MAX + 16];
    make_temp_dir(tmp, sizeof(tmp));
    snprintf(path, sizeof(path), "%s/locked.json", tmp);
    write_file(path, "{}", 2);
    assert_int_equal(chmod(path, 0), 0);
    check_file_rejected(path, "ermission denied");
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(tmp), 0);
}

/* ---- ZINX_CONFIG_FILE_PATH and the default path ------------------------ */

static void test_load_default_env(void **state)
{
    (void)state;
    char path[PATH_MAX];
    char err[ERR_LEN];
    zinx_config_t cfg;
    struct warn_log w = {0};
    data_path("all_keys.json", path, sizeof(path));
    assert_int_equal(setenv("ZINX_CONFIG_FILE_PATH", path, 1), 0);
    zinx_config_default(&cfg);
    assert_int_equal(
        zinx_config_load_default(&cfg, err, sizeof(err), record_warn, &w), 0);
    assert_int_equal(cfg.tcp_port, 7777);
    assert_string_equal(cfg.name, "file-server");
    assert_int_equal(w.count, 0);

    data_path("bad_range.json", path, sizeof(path));
    assert_int_equal(setenv("ZINX_CONFIG_FILE_PATH", path, 1), 0);
    assert_int_equal(
        zinx_config_load_default(&cfg, err, sizeof(err), NULL, NULL),
        ZINX_ECONFIG);
    assert_contains(err, path);

    assert_int_equal(unsetenv("ZINX_CONFIG_FILE_PATH"), 0);
}

/* A file asked for by name must exist; defaults would hide the typo. */
static void test_load_default_env_missing_file(void **state)
{
    (void)state;
    char path[PATH_MAX];
    char expect[PATH_MAX + 64];
    char err[ERR_LEN];
    zinx_config_t cfg;
    zinx_config_t before;
    struct warn_log w = {0};
    data_path("not-there.json", path, sizeof(path));
    snprintf(expect, sizeof(expect),
             "ZINX_CONFIG_FILE_PATH names %s, which does not exist", path);
    assert_int_equal(setenv("ZINX_CONFIG_FILE_PATH", path, 1), 0);
    start_config(&cfg);
    memcpy(&before, &cfg, sizeof(cfg));
    assert_int_equal(
        zinx_config_load_default(&cfg, err, sizeof(err), record_warn, &w),
        ZINX_ECONFIG);
    assert_string_equal(err, expect);
    assert_memory_equal(&cfg, &before, sizeof(cfg));
    assert_int_equal(w.count, 0);
    /* Naming the file directly keeps zinx_config_load_file()'s rule. */
    assert_int_equal(
        zinx_config_load_file(&cfg, path, err, sizeof(err), record_warn, &w),
        0);
    assert_int_equal(w.count, 1);
    assert_int_equal(unsetenv("ZINX_CONFIG_FILE_PATH"), 0);
}

static void test_load_default_path(void **state)
{
    (void)state;
    char old_cwd[PATH_MAX];
    char tmp[PATH_MAX];
    char err[ERR_LEN];
    zinx_config_t cfg;
    assert_non_null(getcwd(old_cwd, sizeof(old_cwd)));
    make_temp_dir(tmp, sizeof(tmp));
    assert_int_equal(chdir(tmp), 0);
    assert_int_equal(unsetenv("ZINX_CONFIG_FILE_PATH"), 0);

    struct warn_log w = {0};
    zinx_config_default(&cfg);
    assert_int_equal(
        zinx_config_load_default(&cfg, err, sizeof(err), record_warn, &w), 0);
    assert_int_equal(w.count, 1);
    assert_contains(w.text[0], "./conf/zinx.json: not found");

    assert_int_equal(mkdir("conf", 0700), 0);
    write_file("conf/zinx.json", "{\"TCPPort\": 1234}", 17);
    assert_int_equal(
        zinx_config_load_default(&cfg, err, sizeof(err), NULL, NULL), 0);
    assert_int_equal(cfg.tcp_port, 1234);

    /* An empty variable counts as unset. */
    assert_int_equal(setenv("ZINX_CONFIG_FILE_PATH", "", 1), 0);
    zinx_config_default(&cfg);
    assert_int_equal(
        zinx_config_load_default(&cfg, err, sizeof(err), NULL, NULL), 0);
    assert_int_equal(cfg.tcp_port, 1234);

    assert_int_equal(unsetenv("ZINX_CONFIG_FILE_PATH"), 0);
    assert_int_equal(unlink("conf/zinx.json"), 0);
    assert_int_equal(rmdir("conf"), 0);
    assert_int_equal(chdir(old_cwd), 0);
    assert_int_equal(rmdir(tmp), 0);
}

/* ---- Unix domain sockets ---------------------------------------------- */

/* The longest socket path: sun_path holds it and its NUL. */
#define UNIX_PATH_LONGEST (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* "unix:" followed by n bytes of path. */
static void make_unix_host(char *out, size_t n)
{
    memcpy(out, "unix:/", 6);
    memset(out + 6, 's', n - 1);
    out[5 + n] = '\0';
}

static void test_unix_hosts_accepted(void **state)
{
    (void)state;
    char longest[8 + UNIX_PATH_LONGEST];
    make_unix_host(longest, UNIX_PATH_LONGEST);
    const char *hosts[] = {"unix:/tmp/zinx.sock", "unix:zinx.sock",
                           "unix:./run dir/zinx.sock", "unix:/", longest};
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        zinx_config_t cfg;
        char json[256];
        char err[ERR_LEN];
        zinx_config_default(&cfg);
        snprintf(json, sizeof(json), "{\"Host\": \"%s\", \"TCPPort\": 0}",
                 hosts[i]);
        check_loads(json, &cfg);
        assert_string_equal(cfg.host, hosts[i]);
        assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)), 0);
        /* The same in code. */
        zinx_config_default(&cfg);
        snprintf(cfg.host, sizeof(cfg.host), "%s", hosts[i]);
        assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)), 0);
    }
}

static void test_unix_hosts_refused(void **state)
{
    (void)state;
    char too_long[8 + UNIX_PATH_LONGEST];
    char longest_msg[64];
    make_unix_host(too_long, UNIX_PATH_LONGEST + 1);
    snprintf(longest_msg, sizeof(longest_msg),
             "socket path longer than %zu bytes", UNIX_PATH_LONGEST);
    static const struct {
        const char *json_host; /* as written inside the JSON string */
        const char *code_host; /* the same, as a C string */
        const char *fragment;
    } cases[] = {
        {"unix:", "unix:", "\"unix:\" needs a socket path after it"},
        {"unix:/tmp/a\\nb", "unix:/tmp/a\nb",
         "socket path \"/tmp/a?b\" contains a control character"},
        {"unix:\\u007f", "unix:\x7f", "contains a control character"},
        /* The prefix is lower case only; this is a network host. */
        {"UNIX:/tmp/x", "UNIX:/tmp/x", "is not an IPv6 address"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char json[256];
        zinx_config_t cfg;
        snprintf(json, sizeof(json), "{\"Host\": \"%s\"}", cases[i].json_host);
        check_rejected(json, "Host", cases[i].fragment);
        zinx_config_default(&cfg);
        snprintf(cfg.host, sizeof(cfg.host), "%s", cases[i].code_host);
        check_invalid(&cfg, "Host", cases[i].fragment);
    }
    char json[256];
    zinx_config_t cfg;
    snprintf(json, sizeof(json), "{\"Host\": \"%s\"}", too_long);
    check_rejected(json, "Host", longest_msg);
    zinx_config_default(&cfg);
    snprintf(cfg.host, sizeof(cfg.host), "%s", too_long);
    check_invalid(&cfg, "Host", longest_msg);
}

/* The room for socket paths does not lengthen network hosts. */
static void test_network_host_limit(void **state)
{
    (void)state;
    char name[65];
    char json[128];
    zinx_config_t cfg;
    memset(name, 'h', 63);
    name[63] = '\0';
    snprintf(json, sizeof(json), "{\"Host\": \"%s\"}", name);
    zinx_config_default(&cfg);
    check_loads(json, &cfg);
    assert_string_equal(cfg.host, name);
    memset(name, 'h', 64);
    name[64] = '\0';
    snprintf(json, sizeof(json), "{\"Host\": \"%s\"}", name);
    check_rejected(json, "Host", "longer than 63 bytes");
    zinx_config_default(&cfg);
    snprintf(cfg.host, sizeof(cfg.host), "%s", name);
    check_invalid(&cfg, "Host", "longer than 63 bytes");
}

static void test_unix_mode_default(void **state)
{
    (void)state;
    zinx_config_t cfg;
    memset(&cfg, 0x5a, sizeof(cfg));
    zinx_config_default(&cfg);
    assert_int_equal(cfg.unix_mode, 0660);
}

static void test_unix_mode_accepted(void **state)
{
    (void)state;
    static const struct {
        const char *json; /* the value as written in the file */
        uint32_t mode;
    } cases[] = {
        {"\"0660\"", 0660},
        {"\"660\"", 0660},
        {"\"0\"", 0},
        {"\"0777\"", 0777},
        {"\"000600\"", 0600},
        {"\"00000000000000000000644\"", 0644},
        /* A number is the plain value. */
        {"432", 0660},
        {"0", 0},
        {"511", 0777},
        {"384.0", 0600},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        zinx_config_t cfg;
        char json[128];
        char err[ERR_LEN];
        zinx_config_default(&cfg);
        cfg.unix_mode = 0123;
        snprintf(json, sizeof(json), "{\"unixmode\": %s}", cases[i].json);
        check_loads(json, &cfg);
        assert_int_equal(cfg.unix_mode, cases[i].mode);
        assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)), 0);
    }
}

static void test_unix_mode_refused(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *fragment;
    } cases[] = {
        {"\"0778\"", "\"0778\" is not an octal mode such as \"0660\""},
        {"\"8\"", "is not an octal mode"},
        {"\"\"", "is not an octal mode"},
        {"\"-1\"", "is not an octal mode"},
        {"\"+660\"", "is not an octal mode"},
        {"\" 660\"", "is not an octal mode"},
        {"\"660 \"", "is not an octal mode"},
        {"\"0x1ff\"", "is not an octal mode"},
        {"\"0o660\"", "is not an octal mode"},
        {"\"01000\"", "\"01000\" is out of range 0..0777"},
        {"\"77777777777777777777777777\"", "is out of range 0..0777"},
        {"512", "512 is out of range 0..511 (0777)"},
        {"660", "write an octal mode as a string, such as \"0660\""},
        {"-1", "-1 is out of range 0..511"},
        {"1e300", "out of range"},
        {"1.5", "expected an integer, got 1.5"},
        {"true", "expected an octal string or an integer, got a boolean"},
        {"null", "expected an octal string or an integer, got null"},
        {"[\"0660\"]", "expected an octal string or an integer"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char json[128];
        snprintf(json, sizeof(json), "{\"UnixMode\": %s}", cases[i].json);
        check_rejected(json, "UnixMode", cases[i].fragment);
    }
}

static void test_unix_mode_validated(void **state)
{
    (void)state;
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    cfg.unix_mode = 0777;
    check_valid(&cfg);
    cfg.unix_mode = 0;
    check_valid(&cfg);
    cfg.unix_mode = 01000;
    check_invalid(&cfg, "UnixMode", "01000 is out of range 0..0777");
    cfg.unix_mode = UINT32_MAX;
    check_invalid(&cfg, "UnixMode", "037777777777 is out of range 0..0777");
}

/* ---- struct_size: the growable layout ---------------------------------- */

/* Layout 1 as the header describes it: struct_size .. close_notice_msg_id. */
#define LAYOUT_1 \
    (offsetof(zinx_config_t, close_notice_msg_id) + sizeof(uint32_t))

static void test_struct_size_set_by_default(void **state)
{
    (void)state;
    zinx_config_t cfg;
    memset(&cfg, 0x5a, sizeof(cfg));
    zinx_config_default(&cfg);
    assert_int_equal(cfg.struct_size, sizeof(zinx_config_t));
    /* A size too small to hold struct_size writes nothing. */
    memset(&cfg, 0x5a, sizeof(cfg));
    zinx_config_default_sized(&cfg, sizeof(cfg.struct_size) - 1);
    assert_int_equal(cfg.struct_size, 0x5a5a5a5a);
    zinx_config_default_sized(NULL, sizeof(cfg));
}

/*
 * A program built against layout 1 has a struct that ends before
 * unix_mode. Its configuration sits here in memory of exactly that size
 * (ASan reports any byte read or written past it) or in a bigger buffer
 * whose bytes past it hold garbage (which must not be read as UnixMode).
 */
static void check_layout_1(zinx_config_t *old)
{
    char err[ERR_LEN];
    struct warn_log w = {0};
    assert_int_equal(old->struct_size, LAYOUT_1);
    assert_string_equal(old->name, "ZinxServerApp");
    assert_int_equal(old->close_notice_msg_id, 0);
    assert_int_equal(zinx_config_validate(old, err, sizeof(err)), 0);

    /* UnixMode is newer than this program: warned about, not written. */
    const char *json = "{\"MaxConn\": 5, \"UnixMode\": \"0600\"}";
    assert_int_equal(zinx_config_load_json(old, json, strlen(json), ORIGIN, err,
                                           sizeof(err), record_warn, &w),
                     0);
    assert_int_equal(old->max_conn, 5);
    assert_int_equal(old->struct_size, LAYOUT_1);
    assert_int_equal(w.count, 1);
    assert_int_equal(w.level[0], ZINX_LOG_WARN);
    assert_contains(w.text[0], ORIGIN ": key \"UnixMode\" is newer than the "
                                      "program's zinx_config_t");

    /* The server completes it with the defaults of the later fields. */
    zinx_server_t *s = zinx_server_new(old);
    assert_non_null(s);
    const zinx_config_t *got = zinx_server_config(s);
    assert_int_equal(got->struct_size, sizeof(zinx_config_t));
    assert_int_equal(got->max_conn, 5);
    assert_int_equal(got->unix_mode, 0660);
    zinx_server_free(s);
}

static void test_struct_size_smaller_layout(void **state)
{
    (void)state;
    zinx_config_t *old = malloc(LAYOUT_1);
    assert_non_null(old);
    memset(old, 0x5a, LAYOUT_1);
    zinx_config_default_sized(old, LAYOUT_1);
    check_layout_1(old);
    free(old);

    zinx_config_t big;
    memset(&big, 0xff, sizeof(big));
    zinx_config_default_sized(&big, LAYOUT_1);
    assert_int_equal(big.unix_mode, 0xffffffffu); /* untouched */
    check_layout_1(&big);
}

/* A whole zinx_config_t and room past it, for sizes above the library's. */
typedef union bigger_config {
    zinx_config_t cfg;
    unsigned char bytes[sizeof(zinx_config_t) + 64];
} bigger_config_t;

static void check_size_refused(uint32_t size, const char *fragment)
{
    bigger_config_t u;
    bigger_config_t before;
    char err[ERR_LEN];
    char missing[PATH_MAX];
    memset(&u, 0, sizeof(u));
    zinx_config_default(&u.cfg);
    u.cfg.struct_size = size;
    memcpy(&before, &u, sizeof(u));

    assert_int_equal(zinx_config_validate(&u.cfg, err, sizeof(err)),
                     ZINX_EINVAL);
    assert_contains(err, fragment);

    const char *json = "{\"MaxConn\": 5}";
    assert_int_equal(zinx_config_load_json(&u.cfg, json, strlen(json), ORIGIN,
                                           err, sizeof(err), NULL, NULL),
                     ZINX_EINVAL);
    assert_contains(err, ORIGIN ": struct_size ");
    assert_contains(err, fragment);
    assert_memory_equal(&u, &before, sizeof(u));

    /* Refused even when the file is missing, which would change nothing. */
    data_path("does-not-exist.json", missing, sizeof(missing));
    assert_int_equal(
        zinx_config_load_file(&u.cfg, missing, err, sizeof(err), NULL, NULL),
        ZINX_EINVAL);
    assert_contains(err, fragment);
    assert_int_equal(unsetenv("ZINX_CONFIG_FILE_PATH"), 0);
    assert_int_equal(
        zinx_config_load_default(&u.cfg, err, sizeof(err), NULL, NULL),
        ZINX_EINVAL);
    assert_contains(err, fragment);
    assert_memory_equal(&u, &before, sizeof(u));

    errno = 0;
    assert_null(zinx_server_new(&u.cfg));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(zinx_client_new(&u.cfg));
    assert_int_equal(errno, EINVAL);
}

static void test_struct_size_refused(void **state)
{
    (void)state;
    const size_t align = _Alignof(zinx_config_t);
    char fragment[128];
    check_size_refused(0, "struct_size is 0: start the configuration with "
                          "zinx_config_default()");
    snprintf(fragment, sizeof(fragment),
             "struct_size %zu is smaller than the first zinx_config_t "
             "layout (%zu bytes)",
             LAYOUT_1 - align, LAYOUT_1);
    check_size_refused((uint32_t)(LAYOUT_1 - align), fragment);
    check_size_refused(4, "is smaller than the first zinx_config_t layout");
    snprintf(fragment, sizeof(fragment),
             "struct_size %zu is not a multiple of %zu", LAYOUT_1 + 1, align);
    check_size_refused((uint32_t)(LAYOUT_1 + 1), fragment);
    snprintf(fragment, sizeof(fragment),
             "struct_size %zu is larger than this library's zinx_config_t "
             "(%zu bytes)",
             sizeof(zinx_config_t) + align, sizeof(zinx_config_t));
    check_size_refused((uint32_t)(sizeof(zinx_config_t) + align), fragment);
    check_size_refused(UINT32_MAX, "is not a multiple of");
}

/* A zero-initialised literal never went through zinx_config_default(). */
static void test_zero_literal_refused(void **state)
{
    (void)state;
    zinx_config_t cfg = {0};
    char err[ERR_LEN];
    assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)), ZINX_EINVAL);
    assert_string_equal(err, "struct_size is 0: start the configuration "
                             "with zinx_config_default()");
    /* Setting it by hand is all it lacked: the rest is then checked. */
    cfg.struct_size = sizeof(cfg);
    assert_int_equal(zinx_config_validate(&cfg, err, sizeof(err)),
                     ZINX_ECONFIG);
    assert_string_equal(err, "MaxConn: 0 is out of range 1..1000000");
}

/* The loaders write back only the caller's bytes, struct_size kept. */
static void test_struct_size_kept_by_loads(void **state)
{
    (void)state;
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    check_loads("{\"Name\": \"kept\", \"UnixMode\": 384}", &cfg);
    assert_int_equal(cfg.struct_size, sizeof(zinx_config_t));
    assert_string_equal(cfg.name, "kept");
    assert_int_equal(cfg.unix_mode, 0600);
}

/* ---- threads ---------------------------------------------------------- */

struct loader {
    pthread_t thread;
    int port;
    int failures;
};

static void *load_many(void *arg)
{
    struct loader *l = arg;
    char json[128];
    snprintf(json, sizeof(json),
             "{\"TCPPort\": %d, \"Name\": \"t%d\", \"Extra\": 1}", l->port,
             l->port);
    for (int i = 0; i < 300; i++) {
        zinx_config_t cfg;
        char err[256];
        struct warn_log w = {0};
        zinx_config_default(&cfg);
        if (zinx_config_load_json(&cfg, json, strlen(json), NULL, err,
                                  sizeof(err), record_warn, &w) != 0 ||
            cfg.tcp_port != l->port || w.count != 1 ||
            zinx_config_validate(&cfg, err, sizeof(err)) != 0)
            l->failures++;
    }
    return NULL;
}

static void test_concurrent_loads(void **state)
{
    (void)state;
    struct loader loaders[4];
    for (int i = 0; i < 4; i++) {
        loaders[i].port = 1000 + i;
        loaders[i].failures = 0;
        assert_int_equal(
            pthread_create(&loaders[i].thread, NULL, load_many, &loaders[i]),
            0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(loaders[i].thread, NULL), 0);
        assert_int_equal(loaders[i].failures, 0);
    }
}

/* ---- zinx_config_to_json ------------------------------------------------ */

static char *dump_config(const zinx_config_t *cfg)
{
    int n = zinx_config_to_json(cfg, NULL, 0);
    assert_true(n > 2);
    char *text = malloc((size_t)n + 1);
    assert_non_null(text);
    assert_int_equal(zinx_config_to_json(cfg, text, (size_t)n + 1), n);
    assert_int_equal(strlen(text), (size_t)n);
    return text;
}

static void test_to_json_defaults(void **state)
{
    (void)state;
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    char *text = dump_config(&cfg);
    assert_contains(text, "\"Name\":\"ZinxServerApp\"");
    assert_contains(text, "\"TCPPort\":8999");
    assert_contains(text, "\"MaxConn\":12000");
    assert_contains(text, "\"PacketFormat\":\"tlv\"");
    assert_contains(text, "\"UnixMode\":\"0660\"");
    assert_contains(text, "\"WorkerMode\":\"Hash\"");
    assert_contains(text, "\"LogCons\":false");
    assert_contains(text, "\"IOBackend\":\"epoll\"");
    assert_contains(text, "\"ClusterMaxPending\":67108864");
    free(text);
}

/* Every key written comes back as it was, and none is unknown. */
static void test_to_json_round_trip(void **state)
{
    (void)state;
    static const char changed[] =
        "{\"Name\":\"round \\\"trip\\\"\",\"Host\":\"::1\",\"TCPPort\":0,"
        "\"PacketFormat\":\"ltv_le\",\"WorkerPoolSize\":0,"
        "\"WorkerMode\":\"DynamicBind\",\"LogCons\":true,"
        "\"UnixMode\":\"0600\",\"LogFileSize\":1099511627776,"
        "\"LengthFieldAdjustment\":-12,\"HeartbeatMsgID\":4294967295,"
        "\"IOBackend\":\"io_uring\",\"Mode\":\"\",\"ReusePort\":\"loops\"}";
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    char err[ERR_LEN];
    struct warn_log log = {0};
    assert_int_equal(zinx_config_load_json(&cfg, changed, strlen(changed),
                                           ORIGIN, err, sizeof(err),
                                           record_warn, &log),
                     0);
    char *text = dump_config(&cfg);
    zinx_config_t back;
    zinx_config_default(&back);
    assert_int_equal(zinx_config_load_json(&back, text, strlen(text), ORIGIN,
                                           err, sizeof(err), record_warn, &log),
                     0);
    assert_int_equal(log.count, 0);
    assert_memory_equal(&back, &cfg, sizeof(cfg));
    assert_contains(text, "\"Mode\":\"\"");
    assert_contains(text, "\"WorkerMode\":\"DynamicBind\"");
    free(text);
}

static void test_to_json_cut_and_refused(void **state)
{
    (void)state;
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    int n = zinx_config_to_json(&cfg, NULL, 0);
    char small[8];
    memset(small, 'x', sizeof(small));
    assert_int_equal(zinx_config_to_json(&cfg, small, sizeof(small)), n);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_memory_equal(small, "{\"Name\"", sizeof(small) - 1);
    assert_int_equal(zinx_config_to_json(NULL, small, sizeof(small)),
                     ZINX_EINVAL);
    assert_int_equal(zinx_config_to_json(&cfg, NULL, 4), ZINX_EINVAL);
    cfg.io_backend = 77; /* no name stands for it */
    assert_int_equal(zinx_config_to_json(&cfg, small, sizeof(small)),
                     ZINX_EINVAL);
    zinx_config_default(&cfg);
    cfg.struct_size = 3;
    assert_int_equal(zinx_config_to_json(&cfg, small, sizeof(small)),
                     ZINX_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_match_zinx),
        cmocka_unit_test(test_defaults_are_valid),
        cmocka_unit_test(test_every_key_from_json),
        cmocka_unit_test(test_pipeline_keys_from_json),
        cmocka_unit_test(test_pipeline_keys_refused),
        cmocka_unit_test(test_absent_keys_keep_values),
        cmocka_unit_test(test_keys_are_case_insensitive),
        cmocka_unit_test(test_numeric_bounds_accepted),
        cmocka_unit_test(test_integral_number_spellings),
        cmocka_unit_test(test_good_hosts),
        cmocka_unit_test(test_heartbeat_count_acks),
        cmocka_unit_test(test_packet_format_names),
        cmocka_unit_test(test_longest_strings_accepted),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_null_origin_is_json),
        cmocka_unit_test(test_length_bounds_the_text),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_root_must_be_object),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_overlong_strings),
        cmocka_unit_test(test_bad_hosts),
        cmocka_unit_test(test_bad_packet_formats),
        cmocka_unit_test(test_nul_escape_rejected),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_load_is_transactional),
        cmocka_unit_test(test_unknown_key_warns),
        cmocka_unit_test(test_unknown_key_is_quoted_safely),
        cmocka_unit_test(test_unused_zinx_keys_warn),
        cmocka_unit_test(test_null_warn_callback),
        cmocka_unit_test(test_err_buffer_contract),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_validate_ranges),
        cmocka_unit_test(test_limits_below_reader_peak),
        cmocka_unit_test(test_limit_floor_is_exact),
        cmocka_unit_test(test_soft_limit_not_above_hard),
        cmocka_unit_test(test_limit_rule_in_64_bits),
        cmocka_unit_test(test_loaded_limits_fail_validation),
        cmocka_unit_test(test_validate_strings),
        cmocka_unit_test(test_validate_packet_format),
        cmocka_unit_test(test_load_file_every_key),
        cmocka_unit_test(test_load_file_zinx_style),
        cmocka_unit_test(test_transport_keys),
        cmocka_unit_test(test_scale_out_keys),
        cmocka_unit_test(test_load_file_warnings),
        cmocka_unit_test(test_load_file_rejections),
        cmocka_unit_test(test_load_file_missing),
        cmocka_unit_test(test_load_file_not_a_file),
        cmocka_unit_test(test_load_file_size_limit),
        cmocka_unit_test(test_load_file_unreadable),
        cmocka_unit_test(test_load_file_without_size),
        cmocka_unit_test(test_load_default_env),
        cmocka_unit_test(test_load_default_env_missing_file),
        cmocka_unit_test(test_load_default_path),
        cmocka_unit_test(test_concurrent_loads),
        cmocka_unit_test(test_log_file_keys),
        cmocka_unit_test(test_unix_hosts_accepted),
        cmocka_unit_test(test_unix_hosts_refused),
        cmocka_unit_test(test_network_host_limit),
        cmocka_unit_test(test_unix_mode_default),
        cmocka_unit_test(test_unix_mode_accepted),
        cmocka_unit_test(test_unix_mode_refused),
        cmocka_unit_test(test_unix_mode_validated),
        cmocka_unit_test(test_struct_size_set_by_default),
        cmocka_unit_test(test_struct_size_smaller_layout),
        cmocka_unit_test(test_struct_size_refused),
        cmocka_unit_test(test_zero_literal_refused),
        cmocka_unit_test(test_struct_size_kept_by_loads),
        cmocka_unit_test(test_to_json_defaults),
        cmocka_unit_test(test_to_json_round_trip),
        cmocka_unit_test(test_to_json_cut_and_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * zinx-bench: load generator for servers that speak the Zinx protocol and
 * echo every frame.
 *
 *   zinx-bench --port 8999 --connections 100 --payload 1024 --depth 1
 *   zinx-bench --port 8999 --mode connrate --threads 2 --duration 5
 *   zinx-bench --port 8999 --mode hold --connections 9000 --pid 1234 \
 *              --echo-once --json
 *
 * Every echoed frame is checked (ID, length, payload with its connection
 * and sequence stamps); the first difference ends the run with a message
 * and exit status 1. Connection errors are counted and also make the exit
 * status 1. Run `zinx-bench --help` for the options.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define MAX_PAYLOAD (64u * 1024u * 1024u)
#define MAX_CONNECTIONS 1000000u
#define MAX_THREADS 256u
#define MAX_DEPTH 4096u

static void usage(FILE *to)
{
    fputs("usage: " BENCH_PROG " [options]\n"
          "  --mode pingpong|connrate|hold   (pingpong)\n"
          "  --host HOST          server address (127.0.0.1)\n"
          "  --port PORT          server port (8999)\n"
          "  --connections N      connections (100)\n"
          "  --threads T          client threads, each with its own epoll\n"
          "                       loop (1)\n"
          "  --payload BYTES      payload of every frame (64)\n"
          "  --depth D            frames in flight per connection (1)\n"
          "  --duration SECONDS   measured time (5; hold: time to keep the\n"
          "                       connections open, 0)\n"
          "  --count MESSAGES     stop after this many echoes (pingpong) or\n"
          "                       cycles (connrate) instead of by time\n"
          "  --warmup SECONDS     load before measuring, not counted (1)\n"
          "  --msg-id ID          message ID of every frame (1)\n"
          "  --format tlv|ltv_le  frame layout (tlv)\n"
          "  --pid PID            server process: report its CPU and context\n"
          "                       switches (pingpong, connrate) or its RSS\n"
          "                       per connection (hold)\n"
          "  --echo-once          hold: one echo on each connection, and the\n"
          "                       RSS after it\n"
          "  --json               one JSON object instead of text\n"
          "  --proxy-header       pingpong: each connection first sends a\n"
          "                       PROXY protocol v1 header, as HAProxy's\n"
          "                       send-proxy does (for a server with\n"
          "                       ProxyProtocol on)\n",
          to);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;

    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_seconds(const char *s, double *out)
{
    char *end;

    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= 0) || v > 86400)
        return -1;
    *out = v;
    return 0;
}

static int parse_mode(const char *s, bench_mode_t *out)
{
    if (strcmp(s, "pingpong") == 0)
        *out = BENCH_PINGPONG;
    else if (strcmp(s, "connrate") == 0)
        *out = BENCH_CONNRATE;
    else if (strcmp(s, "hold") == 0)
        *out = BENCH_HOLD;
    else
        return -1;
    return 0;
}

enum {
    OPT_MODE = 256,
    OPT_HOST,
    OPT_PORT,
    OPT_CONNECTIONS,
    OPT_THREADS,
    OPT_PAYLOAD,
    OPT_DEPTH,
    OPT_DURATION,
    OPT_COUNT,
    OPT_WARMUP,
    OPT_MSG_ID,
    OPT_FORMAT,
    OPT_PID,
    OPT_ECHO_ONCE,
    OPT_JSON,
    OPT_PROXY_HEADER,
    OPT_HELP
};

static const struct option long_opts[] = {
    {"mode", required_argument, NULL, OPT_MODE},
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"connections", required_argument, NULL, OPT_CONNECTIONS},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"payload", required_argument, NULL, OPT_PAYLOAD},
    {"depth", required_argument, NULL, OPT_DEPTH},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"count", required_argument, NULL, OPT_COUNT},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"msg-id", required_argument, NULL, OPT_MSG_ID},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"pid", required_argument, NULL, OPT_PID},
    {"echo-once", no_argument, NULL, OPT_ECHO_ONCE},
    {"json", no_argument, NULL, OPT_JSON},
    {"proxy-header", no_argument, NULL, OPT_PROXY_HEADER},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Applies one option; returns 0, or -1 for a bad value. */
static int apply_opt(bench_opts_t *o, int c, const char *arg)
{
    uint64_t v = 0;

    switch (c) {
    case OPT_MODE:
        return parse_mode(arg, &o->mode);
    case OPT_HOST:
        o->host = arg;
        return 0;
    case OPT_PORT:
        o->port = arg;
        return parse_u64(arg, 65535, &v) == 0 && v > 0 ? 0 : -1;
    case OPT_CONNECTIONS:
        if (parse_u64(arg, MAX_CONNECTIONS, &v) != 0 || v == 0)
            return -1;
        o->connections = (unsigned)v;
        return 0;
    case OPT_THREADS:
        if (parse_u64(arg, MAX_THREADS, &v) != 0 || v == 0)
            return -1;
        o->threads = (unsigned)v;
        return 0;
    case OPT_PAYLOAD:
        if (parse_u64(arg, MAX_PAYLOAD, &v) != 0)
            return -1;
        o->payload = (uint32_t)v;
        return 0;
    case OPT_DEPTH:
        if (parse_u64(arg, MAX_DEPTH, &v) != 0 || v == 0)
            return -1;
        o->depth = (unsigned)v;
        return 0;
    case OPT_DURATION:
        return parse_seconds(arg, &o->duration);
    case OPT_COUNT:
        return parse_u64(arg, UINT64_MAX / 2, &o->count) == 0 && o->count > 0
                   ? 0
                   : -1;
    case OPT_WARMUP:
        return parse_seconds(arg, &o->warmup);
    case OPT_MSG_ID:
        if (parse_u64(arg, UINT32_MAX, &v) != 0)
            return -1;
        o->msg_id = (uint32_t)v;
        return 0;
    case OPT_FORMAT:
        return zinx_packet_format_parse(arg, &o->format) == 0 ? 0 : -1;
    case OPT_PID:
        if (parse_u64(arg, INT_MAX, &v) != 0 || v == 0)
            return -1;
        o->pid = (pid_t)v;
        return 0;
    case OPT_ECHO_ONCE:
        o->echo_once = true;
        return 0;
    case OPT_JSON:
        o->json = true;
        return 0;
    case OPT_PROXY_HEADER:
        o->proxy_header = true;
        return 0;
    default:
        return -1;
    }
}

/* Returns 0 to run, 1 after --help, -1 for a usage error. */
static int parse_args(int argc, char **argv, bench_opts_t *o)
{
    int c;

    *o = (bench_opts_t){
        .mode = BENCH_PINGPONG,
        .host = "127.0.0.1",
        .port = "8999",
        .connections = 100,
        .threads = 1,
        .payload = 64,
        .depth = 1,
        .duration = -1,
        .warmup = 1,
        .msg_id = 1,
        .format = ZINX_FORMAT_TLV,
    };
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            usage(stdout);
            return 1;
        }
        if (c == '?' || apply_opt(o, c, optarg) != 0) {
            if (c != '?')
                fprintf(stderr, BENCH_PROG ": bad value for --%s: %s\n",
                        long_opts[c - OPT_MODE].name, optarg);
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, BENCH_PROG ": unexpected argument %s\n", argv[optind]);
        return -1;
    }
    if (o->duration < 0)
        o->duration = o->mode == BENCH_HOLD || o->count > 0 ? 0 : 5;
    if (o->mode != BENCH_HOLD && o->count == 0 && o->duration <= 0) {
        fprintf(stderr, BENCH_PROG ": --duration must be above 0\n");
        return -1;
    }
    return 0;
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static void print_json(const bench_opts_t *o, const bench_frame_t *f,
                       const bench_result_t *r)
{
    double rate = r->elapsed_s > 0 ? (double)r->frames / r->elapsed_s : 0;
    const bench_hist_t *h = &r->lat;
    double mean = h->count ? (double)h->sum / (double)h->count : 0;

    printf("{\"mode\":\"%s\",\"host\":\"%s\",\"port\":\"%s\","
           "\"format\":\"%s\",\"msg_id\":%u,\"connections\":%u,"
           "\"threads\":%u,\"payload\":%u,\"depth\":%u,",
           o->mode == BENCH_CONNRATE ? "connrate" : "pingpong", o->host,
           o->port, zinx_packet_format_name(o->format), o->msg_id,
           o->connections, o->threads, o->payload, o->depth);
    printf("\"frames\":%llu,\"elapsed_s\":%.3f,\"frames_per_s\":%.0f,"
           "\"mb_per_s\":%.2f,",
           (unsigned long long)r->frames, r->elapsed_s, rate,
           rate * (double)f->size / 1e6);
    if (o->mode == BENCH_CONNRATE)
        printf("\"connections_per_s\":%.0f,", rate);
    printf("\"latency_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
           "\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f},",
           us(bench_hist_quantile(h, 0.5)), us(bench_hist_quantile(h, 0.9)),
           us(bench_hist_quantile(h, 0.99)), us(bench_hist_quantile(h, 0.999)),
           us(h->max), mean / 1000.0);
    if (r->server_known && r->frames > 0)
        printf("\"server_cpu_us_per_frame\":%.3f,\"server_cpu_pct\":%.1f,"
               "\"server_ctxsw_per_frame\":%.4f,"
               "\"server_minflt_per_frame\":%.4f,\"server_rss_kib\":%ld,",
               r->server_delta.cpu_s * 1e6 / (double)r->frames,
               100.0 * r->server_delta.cpu_s / r->elapsed_s,
               (double)r->server_delta.ctxsw / (double)r->frames,
               (double)r->server_delta.minflt / (double)r->frames,
               r->server_delta.rss_kib);
    printf("\"client_cpu_pct\":%.1f,\"errors\":%llu}\n",
           r->elapsed_s > 0 ? 100.0 * r->client_cpu_s / r->elapsed_s : 0,
           (unsigned long long)r->errors);
}

static void print_text(const bench_opts_t *o, const bench_frame_t *f,
                       const bench_result_t *r)
{
    double rate = r->elapsed_s > 0 ? (double)r->frames / r->elapsed_s : 0;
    const bench_hist_t *h = &r->lat;
    bool cr = o->mode == BENCH_CONNRATE;

    if (cr)
        printf("connrate    %s:%s (%s), %u threads, %u B payload\n", o->host,
               o->port, zinx_packet_format_name(o->format), o->threads,
               o->payload);
    else
        printf("pingpong    %s:%s (%s, id %u), %u connections, %u threads, "
               "%u B payload, depth %u\n",
               o->host, o->port, zinx_packet_format_name(o->format), o->msg_id,
               o->connections, o->threads, o->payload, o->depth);
    printf("%-11s %llu in %.2f s: %.0f %s/s, %.2f MB/s\n",
           cr ? "cycles" : "frames", (unsigned long long)r->frames,
           r->elapsed_s, rate, cr ? "connections" : "frames",
           rate * (double)f->size / 1e6);
    printf("latency     p50 %.1f us, p90 %.1f us, p99 %.1f us, p99.9 %.1f us, "
           "max %.1f us\n",
           us(bench_hist_quantile(h, 0.5)), us(bench_hist_quantile(h, 0.9)),
           us(bench_hist_quantile(h, 0.99)), us(bench_hist_quantile(h, 0.999)),
           us(h->max));
    if (r->server_known && r->frames > 0) {
        double n = (double)r->frames;
        printf("server      %.3f us CPU per %s (%.0f %% of a core), RSS %ld "
               "KiB\n",
               r->server_delta.cpu_s * 1e6 / n, cr ? "cycle" : "frame",
               100.0 * r->server_delta.cpu_s / r->elapsed_s,
               r->server_delta.rss_kib);
        printf("            %.4f context switches, %.4f minor faults per "
               "%s\n",
               (double)r->server_delta.ctxsw / n,
               (double)r->server_delta.minflt / n, cr ? "cycle" : "frame");
    }
    printf("client      %.0f %% of a core\n",
           r->elapsed_s > 0 ? 100.0 * r->client_cpu_s / r->elapsed_s : 0);
    printf("errors      %llu\n", (unsigned long long)r->errors);
}

static int run(const bench_opts_t *o, const bench_addr_t *a,
               const bench_frame_t *f)
{
    bench_result_t r;

    if (o->mode == BENCH_HOLD)
        return bench_hold(o, a, f) == 0 ? 0 : 1;
    memset(&r, 0, sizeof r);
    bench_hist_init(&r.lat);
    int rc = o->mode == BENCH_CONNRATE ? bench_connrate(o, a, f, &r)
                                       : bench_pingpong(o, a, f, &r);
    if (rc != 0)
        return 1;
    if (o->json)
        print_json(o, f, &r);
    else
        print_text(o, f, &r);
    if (r.errors > 0 || r.frames == 0) {
        fflush(stdout);
        fprintf(stderr, BENCH_PROG ": FAILED: %s\n",
                r.errors > 0 ? "errors during the run" : "no echo received");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    bench_opts_t o;
    bench_addr_t a;
    bench_frame_t f;

    int prc = parse_args(argc, argv, &o);
    if (prc != 0)
        return prc > 0 ? 0 : 2;
    bench_raise_nofile();
    if (bench_resolve(o.host, o.port, &a) != 0)
        return 1;
    if (bench_frame_init(&f, &o) != 0) {
        fprintf(stderr, BENCH_PROG ": out of memory\n");
        return 1;
    }
    int status = run(&o, &a, &f);
    bench_frame_free(&f);
    return status;
}

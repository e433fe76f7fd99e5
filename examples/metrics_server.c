/*
 * Metrics: an echo server whose statistics Prometheus can scrape.
 *
 * MetricsAddr makes the server serve /metrics on a thread of its own;
 * the same rows are readable in C with a visitor, which this example
 * uses to print a few of them.
 *
 * How to run:
 *   ./bin/zinx-metrics             echo on 0.0.0.0:8999, metrics on
 *                                  127.0.0.1:9100/metrics, until Ctrl-C
 *                                  (curl -s 127.0.0.1:9100/metrics)
 *   ./bin/zinx-metrics --selftest  free loopback ports: echo a few
 *                                  messages on ID 1, then check through
 *                                  the C API that they were counted under
 *                                  id="1" and print the series
 */
#include <stdio.h>
#include <string.h>

#include <zinx.h>

#define ECHO_ID 1u
#define CALLS 5

static void echo(zinx_request_t *req, void *udata)
{
    (void)udata;
    zinx_conn_send_msg(zinx_request_conn(req), zinx_request_msg_id(req),
                       zinx_request_data(req), zinx_request_data_len(req));
}

typedef struct found {
    double received_id1;
    int series;
} found_t;

/* Prints counters and gauges; keeps what the self-test checks. */
static int show(const zinx_metric_t *m, void *udata)
{
    found_t *f = udata;
    f->series++;
    if (m->type == ZINX_METRIC_HISTOGRAM) {
        printf("%-36s histogram: %llu observations, sum %.6f s\n", m->name,
               (unsigned long long)m->count, m->value);
        return 0;
    }
    const char *id = m->nlabels > 0 ? m->labels[0].value : "";
    if (strcmp(m->name, "zinx_messages_received_total") == 0 &&
        strcmp(id, "1") == 0)
        f->received_id1 = m->value;
    if (m->value == 0)
        return 0; /* the many zeros would hide the rest */
    if (m->nlabels > 0)
        printf("%s{%s=\"%s\"} %g\n", m->name, m->labels[0].name, id, m->value);
    else
        printf("%s %g\n", m->name, m->value);
    return 0;
}

static int selftest(zinx_server_t *s)
{
    zinx_sync_client_t *c;
    int rc = zinx_sync_client_connect("127.0.0.1", zinx_server_port(s),
                                      ZINX_FORMAT_TLV, 0, 5000, &c);
    if (rc != 0) {
        fprintf(stderr, "connect: %s\n", zinx_strerror(rc));
        return 1;
    }
    for (int i = 0; i < CALLS && rc == 0; i++) {
        zinx_msg_t reply;
        rc =
            zinx_sync_client_call(c, ECHO_ID, "ping", 4, ECHO_ID, 5000, &reply);
        if (rc == 0)
            zinx_sync_msg_free(&reply);
    }
    zinx_sync_client_free(c);
    if (rc != 0) {
        fprintf(stderr, "call: %s\n", zinx_strerror(rc));
        return 1;
    }
    printf("metrics on port %d\n", zinx_server_metrics_port(s));
    found_t f = {0};
    zinx_server_metrics_visit(s, show, &f);
    int ok = f.received_id1 == CALLS && zinx_server_metrics_port(s) > 0;
    printf("selftest: %s (%d series, %g messages under id=\"1\")\n",
           ok ? "ok" : "FAILED", f.series, f.received_id1);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    int self = argc > 1 && strcmp(argv[1], "--selftest") == 0;
    zinx_config_t cfg;
    zinx_config_default(&cfg);
    snprintf(cfg.metrics_addr, sizeof(cfg.metrics_addr), "127.0.0.1:9100");
    if (self) {
        snprintf(cfg.host, sizeof(cfg.host), "127.0.0.1");
        cfg.tcp_port = 0;
        snprintf(cfg.metrics_addr, sizeof(cfg.metrics_addr), "127.0.0.1:0");
    }
    zinx_server_t *s = zinx_server_new(&cfg);
    if (s == NULL)
        return 1;
    zinx_handler_t h = {echo, NULL};
    int rc = zinx_server_add_route(s, ECHO_ID, &h, 1);
    if (rc != 0) {
        fprintf(stderr, "set-up: %s\n", zinx_strerror(rc));
        zinx_server_free(s);
        return 1;
    }
    if (!self) {
        rc = zinx_server_serve(s); /* until Ctrl-C or SIGTERM */
        zinx_server_free(s);
        return rc == 0 ? 0 : 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    rc = zinx_server_start(s);
    int result = rc == 0 ? selftest(s) : 1;
    if (rc != 0)
        fprintf(stderr, "start: %s\n", zinx_strerror(rc));
    zinx_server_free(s);
    return result;
}

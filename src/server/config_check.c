/*
 * Checking values: one key at a time (shared by the JSON loader and by
 * zinx_config_validate()), then the rules between keys.
 */
#include <arpa/inet.h>
#include <string.h>
#include <sys/un.h>

#include "base/base.h"
#include "proxy/netlist.h"
#include "server/config_internal.h"
#include "stream/stream.h"
#include "zinx/error.h"

/* A network host: the limit of the first layout, where host[] was 64
   bytes. The field grew for Unix socket paths only. */
#define NET_HOST_MAX 63

#define UNIX_PREFIX "unix:"
#define UNIX_PREFIX_LEN (sizeof(UNIX_PREFIX) - 1)

/* The longest socket path bind() takes: sun_path holds it and a NUL. */
#define UNIX_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

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
    if (strpbrk(s, "[]") != NULL)
        return "has brackets (write an IPv6 address without them)";
    if (strchr(s, ':') != NULL && !is_ipv6_literal(s))
        return "is not an IPv6 address (the port goes in TCPPort)";
    if (is_dotted_digits(s) && inet_pton(AF_INET, s, addr) != 1)
        return "is not an IPv4 address";
    return NULL;
}

static int has_control_char(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return 1;
    }
    return 0;
}

/*
 * The path after "unix:". Anything but NUL is legal in a path, but a
 * control character there is a mistake (and would garble the log lines
 * that name the socket). Returns 0, or -1 with why filled.
 */
static int check_unix_path(const char *path, char *why, size_t why_len)
{
    char q[ZINX__CONFIG_QUOTE_LEN];
    if (path[0] == '\0') {
        zinx__config_msg(why, why_len,
                         "\"unix:\" needs a socket path after it");
        return -1;
    }
    if (strlen(path) > UNIX_PATH_MAX) {
        zinx__config_msg(why, why_len,
                         "socket path longer than %zu bytes (sun_path)",
                         UNIX_PATH_MAX);
        return -1;
    }
    if (has_control_char(path)) {
        zinx__config_msg(why, why_len,
                         "socket path \"%s\" contains a control character",
                         zinx__config_quote(path, q));
        return -1;
    }
    return 0;
}

/* Returns 0, or -1 with why filled. */
static int check_host(const char *s, char *why, size_t why_len)
{
    if (strncmp(s, UNIX_PREFIX, UNIX_PREFIX_LEN) == 0)
        return check_unix_path(s + UNIX_PREFIX_LEN, why, why_len);
    if (strlen(s) > NET_HOST_MAX) {
        zinx__config_msg(why, why_len, "longer than %d bytes", NET_HOST_MAX);
        return -1;
    }
    char q[ZINX__CONFIG_QUOTE_LEN];
    const char *problem = host_problem(s);
    if (problem == NULL)
        return 0;
    zinx__config_msg(why, why_len, "\"%s\" %s", zinx__config_quote(s, q),
                     problem);
    return -1;
}

/* Digits only, 0..65535; returns the port or -1. */
static int parse_port(const char *p)
{
    if (*p == '\0' || strlen(p) > 5)
        return -1;
    long v = 0;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v <= 65535 ? (int)v : -1;
}

int zinx__config_split_hostport(const char *s, char *host, size_t host_len,
                                int *port, char *why, size_t why_len)
{
    char q[ZINX__CONFIG_QUOTE_LEN];
    const char *colon = strrchr(s, ':');
    const char *h = s;
    size_t hn = colon != NULL ? (size_t)(colon - s) : 0;
    if (hn >= 2 && s[0] == '[' && s[hn - 1] == ']') {
        h = s + 1; /* "[::1]:9100": the brackets only delimit */
        hn -= 2;
    }
    if (colon == NULL || hn >= host_len || parse_port(colon + 1) < 0) {
        zinx__config_msg(why, why_len, "\"%s\" is not HOST:PORT",
                         zinx__config_quote(s, q));
        return -1;
    }
    memcpy(host, h, hn);
    host[hn] = '\0';
    if (strncmp(host, UNIX_PREFIX, UNIX_PREFIX_LEN) == 0 ||
        (h == s && strchr(host, ':') != NULL)) {
        zinx__config_msg(why, why_len,
                         "\"%s\" is not HOST:PORT (an IPv6 host goes "
                         "in brackets; unix: is not served)",
                         zinx__config_quote(s, q));
        return -1;
    }
    if (check_host(host, why, why_len) != 0)
        return -1;
    *port = parse_port(colon + 1);
    return 0;
}

int zinx__config_check_text(const zinx__key_spec_t *k, const char *s, char *why,
                            size_t why_len)
{
    if ((long long)strlen(s) > k->max) {
        zinx__config_msg(why, why_len, "longer than %lld bytes", k->max);
        return -1;
    }
    if (k->type == ZINX__KEY_HOST)
        return check_host(s, why, why_len);
    return 0;
}

int zinx__config_check_range(const zinx__key_spec_t *k, long long v, char *why,
                             size_t why_len)
{
    if (v >= k->min && v <= k->max)
        return 0;
    zinx__config_msg(why, why_len, "%lld is out of range %lld..%lld", v, k->min,
                     k->max);
    return -1;
}

/* Permission bits, named in octal as they are everywhere else. */
static int check_mode(const zinx__key_spec_t *k, uint32_t v, char *why,
                      size_t why_len)
{
    if (v >= k->min && v <= k->max)
        return 0;
    zinx__config_msg(why, why_len, "0%lo is out of range 0..0%llo",
                     (unsigned long)v, (unsigned long long)k->max);
    return -1;
}

/* Above LLONG_MAX a uint64_t would read as negative in check_range(). */
static int check_u64(const zinx__key_spec_t *k, uint64_t v, char *why,
                     size_t why_len)
{
    if (v <= (uint64_t)k->max)
        return zinx__config_check_range(k, (long long)v, why, why_len);
    zinx__config_msg(why, why_len, "%llu is out of range %lld..%lld",
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

/* A char array field must hold its NUL before it is read as a string. */
static int check_array_text(const zinx__key_spec_t *k, const char *p, char *why,
                            size_t why_len)
{
    if (memchr(p, '\0', (size_t)k->max + 1) == NULL) {
        zinx__config_msg(why, why_len, "not NUL-terminated");
        return -1;
    }
    return zinx__config_check_text(k, p, why, why_len);
}

static int check_bool(int v, char *why, size_t why_len)
{
    if (v == 0 || v == 1)
        return 0;
    zinx__config_msg(why, why_len, "%d is not 0 (false) or 1 (true)", v);
    return -1;
}

static int check_format(zinx_packet_format_t f, char *why, size_t why_len)
{
    if (format_known(f))
        return 0;
    zinx__config_msg(why, why_len, "unknown packet format %d", (int)f);
    return -1;
}

static int check_named(const zinx__key_spec_t *k, uint32_t v, char *why,
                       size_t why_len)
{
    if (zinx__key_names_find(k->names, v) != NULL)
        return 0;
    zinx__config_msg(why, why_len, "unknown %s %lu (expected %s)",
                     k->names->what, (unsigned long)v, k->names->expected);
    return -1;
}

/* Checks one field of a configuration built in code. */
static int check_field(const zinx_config_t *cfg, const zinx__key_spec_t *k,
                       char *why, size_t why_len)
{
    const void *p = (const char *)cfg + k->offset;
    switch (k->type) {
    case ZINX__KEY_STRING:
    case ZINX__KEY_HOST:
        return check_array_text(k, p, why, why_len);
    case ZINX__KEY_INT:
        return zinx__config_check_range(k, *(const int *)p, why, why_len);
    case ZINX__KEY_U32:
        return zinx__config_check_range(k, *(const uint32_t *)p, why, why_len);
    case ZINX__KEY_U64:
        return check_u64(k, *(const uint64_t *)p, why, why_len);
    case ZINX__KEY_BOOL:
        return check_bool(*(const int *)p, why, why_len);
    case ZINX__KEY_FORMAT:
        return check_format(*(const zinx_packet_format_t *)p, why, why_len);
    case ZINX__KEY_MODE:
        return check_mode(k, *(const uint32_t *)p, why, why_len);
    case ZINX__KEY_NAMED:
        return check_named(k, *(const uint32_t *)p, why, why_len);
    }
    zinx__config_msg(why, why_len, "unknown key type");
    return -1;
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
    zinx__config_msg(err, err_len,
                     "%s (%lu) must be at least OutputHighWater + "
                     "MaxPacketSize + %u (%llu)",
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
        zinx__config_msg(
            err, err_len,
            "OutputSoftLimit (%lu) must not be above OutputHardLimit (%lu)",
            (unsigned long)cfg->output_soft_limit,
            (unsigned long)cfg->output_hard_limit);
        rc = ZINX_ECONFIG;
    }
    return rc;
}

/* Zinx's frame decoder reads a length field of 1, 2, 3, 4 or 8 bytes;
   the range of the key lets 5 to 7 through. */
static int check_length_field(const zinx_config_t *cfg, char *err,
                              size_t err_len)
{
    uint32_t n = cfg->length_field_length;
    if (n >= 1 && n <= 4)
        return 0;
    if (n == 8)
        return 0;
    zinx__config_msg(err, err_len,
                     "LengthFieldLength: %lu is not 1, 2, 3, 4 or 8",
                     (unsigned long)n);
    return ZINX_ECONFIG;
}

/* TLS needs both files; the listeners their own ports; a PROXY header
   a list of who may send it. */
static int check_transports(const zinx_config_t *c, char *err, size_t err_len)
{
    bool cert = c->cert_file[0] != '\0', key = c->private_key_file[0] != '\0';
    if (cert != key) {
        zinx__config_msg(err, err_len,
                         "CertFile and PrivateKeyFile must be set together "
                         "(%s is empty)",
                         cert ? "PrivateKeyFile" : "CertFile");
        return ZINX_ECONFIG;
    }
    if (c->tls_client_ca_file[0] != '\0' && !cert) {
        zinx__config_msg(err, err_len,
                         "TlsClientCAFile needs CertFile and PrivateKeyFile");
        return ZINX_ECONFIG;
    }
    if (c->ws_path[0] != '/') {
        zinx__config_msg(err, err_len, "WsPath: \"%s\" does not start with /",
                         c->ws_path);
        return ZINX_ECONFIG;
    }
    if (c->mode == ZINX_MODE_TCP_WS && zinx__addr_is_unix(c->host)) {
        zinx__config_msg(err, err_len,
                         "Mode \"\" needs two ports; a unix: Host has one "
                         "socket (use Mode tcp or websocket)");
        return ZINX_ECONFIG;
    }
    if (c->mode == ZINX_MODE_TCP_WS && c->tcp_port != 0 &&
        c->tcp_port == c->ws_port) {
        zinx__config_msg(err, err_len,
                         "TCPPort and WsPort are both %d: Mode \"\" listens "
                         "on each",
                         c->tcp_port);
        return ZINX_ECONFIG;
    }
    zinx__netlist_t nets;
    char why[ZINX__CONFIG_WHY_LEN];
    if (zinx__netlist_parse(c->proxy_protocol_from, &nets, why, sizeof(why)) !=
        0) {
        zinx__config_msg(err, err_len, "ProxyProtocolFrom: %s", why);
        return ZINX_ECONFIG;
    }
    if (c->proxy_protocol != ZINX_PROXY_OFF && zinx__addr_is_unix(c->host)) {
        zinx__config_msg(err, err_len,
                         "ProxyProtocol needs a network Host: a unix: "
                         "socket's peers have no address ProxyProtocolFrom "
                         "could match");
        return ZINX_ECONFIG;
    }
    if (c->proxy_protocol != ZINX_PROXY_OFF && nets.n == 0) {
        zinx__config_msg(err, err_len,
                         "ProxyProtocol is on and ProxyProtocolFrom is empty: "
                         "name the proxies' networks (\"0.0.0.0/0,::/0\" "
                         "for any)");
        return ZINX_ECONFIG;
    }
    return 0;
}

/* A NATS subject token: what a cluster name may hold. */
static int check_cluster(const zinx_config_t *c, char *err, size_t err_len)
{
    char q[ZINX__CONFIG_QUOTE_LEN];
    if (c->cluster_name[0] == '\0') {
        if (c->cluster_node == 0)
            return 0;
        zinx__config_msg(err, err_len, "ClusterNode (%lu) needs ClusterName",
                         (unsigned long)c->cluster_node);
        return ZINX_ECONFIG;
    }
    if (!zinx__is_token(c->cluster_name, sizeof(c->cluster_name) - 1)) {
        zinx__config_msg(err, err_len,
                         "ClusterName: \"%s\" may hold only letters, "
                         "digits, '-' and '_'",
                         zinx__config_quote(c->cluster_name, q));
        return ZINX_ECONFIG;
    }
    if (c->cluster_node == 0) {
        zinx__config_msg(err, err_len,
                         "ClusterName is set and ClusterNode is 0: give "
                         "each node its own number, 1..65535");
        return ZINX_ECONFIG;
    }
    if (c->cluster_nats_url[0] == '\0' ||
        has_control_char(c->cluster_nats_url) ||
        strchr(c->cluster_nats_url, ' ') != NULL) {
        zinx__config_msg(err, err_len,
                         "ClusterNatsUrl: \"%s\" is not a list of NATS URLs",
                         zinx__config_quote(c->cluster_nats_url, q));
        return ZINX_ECONFIG;
    }
    return 0;
}

/* ReusePort shares a network port; MetricsAddr names one. */
static int check_scale_out(const zinx_config_t *c, char *err, size_t err_len)
{
    if (c->kcp_fec_data_shards != 0 || c->kcp_fec_parity_shards != 0) {
        zinx__config_msg(err, err_len,
                         "KcpFecDataShards %u, KcpFecParityShards %u: FEC "
                         "is not supported (both must be 0); a kcp-go peer "
                         "with FEC on would not be understood",
                         c->kcp_fec_data_shards, c->kcp_fec_parity_shards);
        return ZINX_ECONFIG;
    }
    if (c->mode == ZINX_MODE_KCP && zinx__addr_is_unix(c->host)) {
        zinx__config_msg(err, err_len,
                         "Mode kcp needs a network Host: KCP runs over UDP");
        return ZINX_ECONFIG;
    }
    if (c->reuse_port != ZINX_REUSE_PORT_OFF && zinx__addr_is_unix(c->host)) {
        zinx__config_msg(err, err_len,
                         "ReusePort needs a network Host: a unix: socket "
                         "path has one listener");
        return ZINX_ECONFIG;
    }
    if (c->metrics_addr[0] != '\0') {
        char host[ZINX_CONFIG_HOST_MAX], why[ZINX__CONFIG_WHY_LEN];
        int port;
        if (zinx__config_split_hostport(c->metrics_addr, host, sizeof(host),
                                        &port, why, sizeof(why)) != 0) {
            zinx__config_msg(err, err_len, "MetricsAddr: %s", why);
            return ZINX_ECONFIG;
        }
    }
    return check_cluster(c, err, err_len);
}

int zinx_config_validate(const zinx_config_t *cfg, char *err, size_t err_len)
{
    zinx__config_msg(err, err_len, "%s", "");
    if (cfg == NULL) {
        zinx__config_msg(err, err_len, "configuration is NULL");
        return ZINX_EINVAL;
    }
    /* Fields beyond the caller's struct_size are checked as defaults. */
    zinx_config_t full;
    int rc = zinx__config_import(&full, cfg, err, err_len);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < zinx__config_key_count; i++) {
        const zinx__key_spec_t *k = &zinx__config_keys[i];
        char why[ZINX__CONFIG_WHY_LEN];
        if (check_field(&full, k, why, sizeof(why)) != 0) {
            zinx__config_msg(err, err_len, "%s: %s", k->name, why);
            return ZINX_ECONFIG;
        }
    }
    rc = check_length_field(&full, err, err_len);
    if (rc == 0)
        rc = check_output_limits(&full, err, err_len);
    if (rc == 0)
        rc = check_transports(&full, err, err_len);
    if (rc == 0)
        rc = check_scale_out(&full, err, err_len);
    return rc;
}

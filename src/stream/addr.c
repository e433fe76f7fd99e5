/* Socket addresses: Unix socket paths in Host values, and address text. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "stream/stream.h"

bool zinx__addr_is_unix(const char *host)
{
    return host != NULL &&
           strncmp(host, ZINX__UNIX_PREFIX, strlen(ZINX__UNIX_PREFIX)) == 0;
}

int zinx__addr_unix(const char *host, struct sockaddr_storage *ss,
                    socklen_t *len)
{
    const char *path = host + strlen(ZINX__UNIX_PREFIX);
    struct sockaddr_un *un = (struct sockaddr_un *)ss;
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(un->sun_path))
        return ZINX_EINVAL;
    memset(ss, 0, sizeof(*ss));
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, n + 1);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

/* A path too long for the text keeps its tail, the part that tells
   sockets apart. */
static void format_path(const struct sockaddr_un *un, socklen_t len, char *out)
{
    size_t max = len > offsetof(struct sockaddr_un, sun_path)
                     ? len - offsetof(struct sockaddr_un, sun_path)
                     : 0;
    size_t n = strnlen(un->sun_path, max);
    if (n == 0) {
        snprintf(out, ZINX__ADDR_TEXT_MAX, "?"); /* unnamed */
        return;
    }
    if (n < ZINX__ADDR_TEXT_MAX) {
        memcpy(out, un->sun_path, n);
        out[n] = '\0';
        return;
    }
    size_t keep = ZINX__ADDR_TEXT_MAX - 4;
    memcpy(out, "...", 3);
    memcpy(out + 3, un->sun_path + n - keep, keep);
    out[3 + keep] = '\0';
}

void zinx__addr_format(const struct sockaddr_storage *ss, socklen_t len,
                       char *out)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        snprintf(out, ZINX__ADDR_TEXT_MAX, "%s:%u", ip, ntohs(a->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        snprintf(out, ZINX__ADDR_TEXT_MAX, "[%s]:%u", ip, ntohs(a->sin6_port));
    } else if (ss->ss_family == AF_UNIX) {
        format_path((const struct sockaddr_un *)ss, len, out);
    } else {
        snprintf(out, ZINX__ADDR_TEXT_MAX, "?");
    }
}

/* A tiny HTTP/1.1 client for tests (see test_http.h). */
#include "test_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long th_exchange(int port, const char *req, size_t len, char *out, size_t cap,
                 int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
        int e = errno;
        close(fd);
        return -e;
    }
    long end = now_ms() + timeout_ms, got = 0;
    for (;;) {
        long left = end - now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
            close(fd);
            return -ETIMEDOUT;
        }
        ssize_t n = recv(fd, out + got, cap - 1 - (size_t)got, 0);
        if (n < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (n == 0 || (size_t)got + (size_t)n == cap - 1) {
            got += n;
            break;
        }
        got += n;
    }
    out[got] = '\0';
    close(fd);
    return got;
}

long th_get(int port, const char *path, char *out, size_t cap, int timeout_ms)
{
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Connection: close\r\n\r\n",
                     path, port);
    return th_exchange(port, req, (size_t)n, out, cap, timeout_ms);
}

int th_status(const char *resp)
{
    int code;
    if (sscanf(resp, "HTTP/1.%*[01] %d", &code) != 1)
        return -1;
    return code;
}

int th_header(const char *resp, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *end = strstr(resp, "\r\n\r\n");
    for (const char *p = strstr(resp, "\r\n"); p != NULL && p < end;
         p = strstr(p + 2, "\r\n")) {
        const char *h = p + 2;
        if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            const char *v = h + nl + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t vl = (size_t)(e - v);
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 0;
        }
    }
    return -1;
}

const char *th_body(const char *resp)
{
    const char *p = strstr(resp, "\r\n\r\n");
    return p != NULL ? p + 4 : NULL;
}

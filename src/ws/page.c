/*
 * Static pages on the WebSocket port: what a Go Zinx program gets from
 * net/http beside its WebSocket handler (a live map's page, say), kept
 * to the one thing such a page needs. Each page's whole response (the
 * 200 head and the body) is made once when it is added and shared
 * read-only by every connection that asks for it, so serving costs no
 * allocation and no copy; the layer writes it (layer.c) and the
 * connection ends there, never opening.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "ws/ws.h"

/* Whether text holds a control byte (CR, LF, NUL's kin) or DEL. */
static bool has_control(const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return true;
    return false;
}

/* A path the request line can carry and the parser can match: the
   query is cut off before matching, so a '?' could never be found. */
static bool path_ok(const char *path, const char *ws_path)
{
    size_t n = strlen(path);
    return path[0] == '/' && n < ZINX_CONFIG_PATH_MAX && !has_control(path) &&
           strpbrk(path, " ?") == NULL && strcmp(path, ws_path) != 0;
}

static const zinx__ws_page_t *find(const zinx__ws_page_t *pages,
                                   const char *path)
{
    for (const zinx__ws_page_t *p = pages; p != NULL; p = p->next)
        if (strcmp(p->path, path) == 0)
            return p;
    return NULL;
}

/* The page with its response made: the head's text, then the body. */
static zinx__ws_page_t *page_new(const char *path, const char *type,
                                 const void *body, size_t len)
{
    static const char fmt[] = "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
                              "Content-Length: %zu\r\n"
                              "Cache-Control: no-cache\r\n"
                              "Connection: close\r\n\r\n";
    int head = snprintf(NULL, 0, fmt, type, len);
    zinx__ws_page_t *p = calloc(1, sizeof(*p));
    if (p == NULL || head < 0 || (p->path = strdup(path)) == NULL ||
        (p->response = malloc((size_t)head + 1 + len)) == NULL) {
        if (p != NULL)
            free(p->path);
        free(p);
        return NULL;
    }
    snprintf((char *)p->response, (size_t)head + 1, fmt, type, len);
    if (len > 0)
        memcpy(p->response + head, body, len);
    p->head_len = (size_t)head;
    p->body_len = len;
    return p;
}

int zinx_server_add_http_page(zinx_server_t *s, const char *path,
                              const char *content_type, const void *body,
                              size_t len)
{
    if (s == NULL || path == NULL || content_type == NULL ||
        (body == NULL && len > 0))
        return ZINX_EINVAL;
    if (!zinx__server_is_new(s))
        return ZINX_ESTATE;
    if (!path_ok(path, s->cfg.ws_path) || content_type[0] == '\0' ||
        has_control(content_type) || len > ZINX_HTTP_PAGE_MAX)
        return ZINX_EINVAL;
    if (find(s->ws_pages, path) != NULL)
        return ZINX_EEXIST;
    zinx__ws_page_t *p = page_new(path, content_type, body, len);
    if (p == NULL)
        return ZINX_ENOMEM;
    p->next = s->ws_pages;
    s->ws_pages = p;
    return 0;
}

const zinx__ws_page_t *zinx__ws_page_match(const zinx__ws_page_t *pages,
                                           const char *upgrade_path,
                                           const zinx__ws_http_t *req, int st,
                                           size_t *len)
{
    /* 404: a GET of another path than WsPath; 405: a HEAD (or another
       method) of any path. Both come with the whole head parsed. */
    if (pages == NULL || (st != 404 && st != 405) || req->path == NULL ||
        req->method == NULL || strcmp(req->path, upgrade_path) == 0 ||
        zinx__ws_http_header(req, "Upgrade") != NULL)
        return NULL;
    bool head_only = strcmp(req->method, "HEAD") == 0;
    if (!head_only && strcmp(req->method, "GET") != 0)
        return NULL;
    const zinx__ws_page_t *p = find(pages, req->path);
    if (p != NULL)
        *len = p->head_len + (head_only ? 0 : p->body_len);
    return p;
}

void zinx__ws_pages_free(zinx__ws_page_t *pages)
{
    while (pages != NULL) {
        zinx__ws_page_t *next = pages->next;
        free(pages->path);
        free(pages->response);
        free(pages);
        pages = next;
    }
}

/*
 * The live map's page (web/map.html), embedded at build time by
 * web/embed.cmake so that zinx-mmo serves it without any file beside it.
 */
#ifndef MMO_MAP_PAGE_H
#define MMO_MAP_PAGE_H

#include <stddef.h>

/* The page's bytes (static, never freed; NUL after the last) and their
   count in *len. Thread: any. */
const unsigned char *mmo_map_page(size_t *len);

#endif /* MMO_MAP_PAGE_H */

# Turns the live map's page into C at build time (no xxd):
#   cmake -DIN=web/map.html -DOUT=map_page.c -P embed.cmake
# The result defines mmo_map_page() of map_page.h: the page's bytes,
# as they are in the file, in a static array.
if(NOT IN OR NOT OUT)
    message(FATAL_ERROR "embed.cmake: set IN and OUT")
endif()
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR len "${hex_len} / 2")
# Two hex digits a byte, sixteen bytes a line.
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n    " bytes
       "${bytes}")
file(WRITE "${OUT}"
"/* Generated from ${IN} by embed.cmake: do not edit. */
#include \"map_page.h\"

static const unsigned char page[${len} + 1] = {
    ${bytes}0x00};

const unsigned char *mmo_map_page(size_t *len)
{
    *len = ${len};
    return page;
}
")

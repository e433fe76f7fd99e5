/*
 * Fuzz target: the MMO demo's checks of what players send
 * (examples/mmo/checks.c): a Move's Position and a Talk's Content, from
 * protobuf-c's decoder through the demo's judgement.
 *
 * Input layout: byte 0 bit 0 picks the message (0: Position, 1: Talk);
 * the rest is its payload.
 *
 * Checked: an accepted move lies inside the world with finite
 * coordinates and survives a re-encode unchanged; an accepted chat is
 * 1..MMO_CHAT_MAX bytes, survives a re-encode unchanged, and is UTF-8 by
 * a second, table-driven validator (RFC 3629's table of well-formed byte
 * sequences), which must also agree with mmo_valid_utf8() on the raw
 * payload.
 */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "checks.h"
#include "fuzz.h"
#include "msg.pb-c.h"

/* RFC 3629, section 4: each row is a lead range and the ranges of the
   bytes that may follow it. */
typedef struct utf8_row {
    uint8_t lo, hi, n;
    uint8_t next[3][2];
} utf8_row_t;

static const utf8_row_t rows[] = {
    {0xC2, 0xDF, 1, {{0x80, 0xBF}}},
    {0xE0, 0xE0, 2, {{0xA0, 0xBF}, {0x80, 0xBF}}},
    {0xE1, 0xEC, 2, {{0x80, 0xBF}, {0x80, 0xBF}}},
    {0xED, 0xED, 2, {{0x80, 0x9F}, {0x80, 0xBF}}},
    {0xEE, 0xEF, 2, {{0x80, 0xBF}, {0x80, 0xBF}}},
    {0xF0, 0xF0, 3, {{0x90, 0xBF}, {0x80, 0xBF}, {0x80, 0xBF}}},
    {0xF1, 0xF3, 3, {{0x80, 0xBF}, {0x80, 0xBF}, {0x80, 0xBF}}},
    {0xF4, 0xF4, 3, {{0x80, 0x8F}, {0x80, 0xBF}, {0x80, 0xBF}}},
};

static bool table_utf8(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        const utf8_row_t *row = NULL;
        for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++)
            if (s[i] >= rows[r].lo && s[i] <= rows[r].hi)
                row = &rows[r];
        if (row == NULL || len - i < (size_t)row->n + 1)
            return false;
        for (int k = 0; k < row->n; k++)
            if (s[i + 1 + k] < row->next[k][0] ||
                s[i + 1 + k] > row->next[k][1])
                return false;
        i += 1 + row->n;
    }
    return true;
}

static void fuzz_move(const uint8_t *data, size_t size)
{
    mmo_aoi_t aoi;
    mmo_aoi_init_zinx(&aoi);
    mmo_pos_t m;
    if (mmo_check_move(&aoi, data, size, &m) != MMO_OK)
        return;
    FUZZ_CHECK(mmo_aoi_inside(&aoi, m.x, m.z), "accepted outside the world");
    FUZZ_CHECK(isfinite(m.y) && isfinite(m.v), "accepted a non-finite Y/V");
    Pb__Position p = PB__POSITION__INIT;
    p.x = m.x;
    p.y = m.y;
    p.z = m.z;
    p.v = m.v;
    uint8_t buf[64];
    size_t len = pb__position__pack(&p, buf);
    mmo_pos_t again;
    FUZZ_CHECK(mmo_check_move(&aoi, buf, len, &again) == MMO_OK,
               "a re-encoded move refused");
    /* By value, not by bytes: proto3 leaves out a -0.0 as it does 0.0,
       so the sign of a zero does not survive, and need not. */
    FUZZ_CHECK(again.x == m.x && again.y == m.y && again.z == m.z &&
                   again.v == m.v,
               "a move changed");
}

static void fuzz_talk(const uint8_t *data, size_t size)
{
    FUZZ_CHECK(mmo_valid_utf8(data, size) == table_utf8(data, size),
               "the two UTF-8 validators disagree");
    char text[MMO_CHAT_MAX + 1];
    if (mmo_check_talk(data, size, text) != MMO_OK)
        return;
    size_t n = strlen(text);
    FUZZ_CHECK(n >= 1 && n <= MMO_CHAT_MAX, "chat of %zu bytes accepted", n);
    FUZZ_CHECK(table_utf8((const uint8_t *)text, n), "chat not UTF-8");
    Pb__Talk t = PB__TALK__INIT;
    t.content = text;
    uint8_t buf[MMO_CHAT_MAX + 8];
    size_t len = pb__talk__pack(&t, buf);
    char again[MMO_CHAT_MAX + 1];
    FUZZ_CHECK(mmo_check_talk(buf, len, again) == MMO_OK,
               "a re-encoded chat refused");
    FUZZ_CHECK(strcmp(again, text) == 0, "a chat changed");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        fuzz_talk(data + 1, size - 1);
    else
        fuzz_move(data + 1, size - 1);
    return 0;
}

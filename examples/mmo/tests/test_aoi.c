/*
 * The AOI grid: Zinx's integer cell arithmetic, the clamping of the
 * world's last strip and of positions outside it, and the nine-cell
 * neighbourhood in corners, on edges and inside.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "aoi.h"

static mmo_aoi_t zinx_grid(void)
{
    mmo_aoi_t a;
    mmo_aoi_init_zinx(&a);
    return a;
}

static void cell_size_is_truncated(void **state)
{
    (void)state;
    mmo_aoi_t a = zinx_grid();
    assert_int_equal(a.cell_w, 32); /* 325 / 10 */
    assert_int_equal(a.cell_h, 16); /* 325 / 20 */
    assert_int_equal(mmo_aoi_cells(&a), 200);
    mmo_aoi_t b;
    assert_false(mmo_aoi_init(&b, 0, 5, 10, 0, 100, 10));
    assert_false(mmo_aoi_init(&b, 0, 100, 0, 0, 100, 10));
    assert_true(mmo_aoi_init(&b, 0, 100, 10, 0, 100, 10));
}

static void positions_truncate_before_dividing(void **state)
{
    (void)state;
    mmo_aoi_t a = zinx_grid();
    assert_int_equal(mmo_aoi_cell_of(&a, 85, 75), 0);
    /* int(116.9) - 85 = 31 -> column 0; 117 -> column 1. */
    assert_int_equal(mmo_aoi_cell_of(&a, 116.9f, 75), 0);
    assert_int_equal(mmo_aoi_cell_of(&a, 117, 75), 1);
    /* int(90.99) - 75 = 15 -> row 0; 91 -> row 1. */
    assert_int_equal(mmo_aoi_cell_of(&a, 85, 90.99f), 0);
    assert_int_equal(mmo_aoi_cell_of(&a, 85, 91), 10);
    /* Zinx's spawn area, X 160..209, Z 134..183. */
    assert_int_equal(mmo_aoi_cell_of(&a, 160, 134), 3 * 10 + 2);
    assert_int_equal(mmo_aoi_cell_of(&a, 209, 183), 6 * 10 + 3);
    assert_int_equal(mmo_aoi_cell_of(&a, 404.99f, 394.99f), 199);
}

static void last_strip_and_outside_are_clamped(void **state)
{
    (void)state;
    mmo_aoi_t a = zinx_grid();
    /* (405 - 85) / 32 = 10 and (395 - 75) / 16 = 20: past the grid in
       Zinx's arithmetic; the nearest edge cell here. */
    assert_int_equal(mmo_aoi_cell_of(&a, 405, 75), 9);
    assert_int_equal(mmo_aoi_cell_of(&a, 410, 400), 199);
    assert_int_equal(mmo_aoi_cell_of(&a, 85, 395), 190);
    assert_int_equal(mmo_aoi_cell_of(&a, 0, 0), 0);
    assert_int_equal(mmo_aoi_cell_of(&a, -1e30f, 1e30f), 190);
    assert_int_equal(mmo_aoi_cell_of(&a, 1e30f, -5), 9);
    assert_int_equal(mmo_aoi_cell_of(&a, NAN, NAN), 0);
    assert_int_equal(mmo_aoi_cell_of(&a, INFINITY, INFINITY), 199);
    assert_int_equal(mmo_aoi_cell_of(&a, -INFINITY, 200), 7 * 10);
}

static void inside_is_finite_and_inclusive(void **state)
{
    (void)state;
    mmo_aoi_t a = zinx_grid();
    assert_true(mmo_aoi_inside(&a, 85, 75));
    assert_true(mmo_aoi_inside(&a, 410, 400));
    assert_false(mmo_aoi_inside(&a, 84.99f, 200));
    assert_false(mmo_aoi_inside(&a, 200, 400.01f));
    assert_false(mmo_aoi_inside(&a, NAN, 200));
    assert_false(mmo_aoi_inside(&a, 200, INFINITY));
}

static void expect_around(const mmo_aoi_t *a, int cell, const int *want, int n)
{
    int got[9];
    assert_int_equal(mmo_aoi_around(a, cell, got), n);
    for (int i = 0; i < n; i++)
        assert_int_equal(got[i], want[i]);
}

static void corners_have_four(void **state)
{
    (void)state;
    mmo_aoi_t a = zinx_grid();
    expect_around(&a, 0, (int[]){0, 1, 10, 11}, 4);
    expect_around(&a, 9, (int[]){8, 9, 18, 19}, 4);
    expect_around(&a, 190, (int[]){180, 181, 190, 191}, 4);
    expect_around(&a, 199, (int[]){188, 189, 198, 199}, 4);
}

static void edges_have_six(void **state)
{
    (void)state;
    mmo_aoi_t a = zinx_grid();
    expect_around(&a, 5, (int[]){4, 5, 6, 14, 15, 16}, 6);
    expect_around(&a, 10, (int[]){0, 1, 10, 11, 20, 21}, 6);
    expect_around(&a, 19, (int[]){8, 9, 18, 19, 28, 29}, 6);
    expect_around(&a, 195, (int[]){184, 185, 186, 194, 195, 196}, 6);
}

static void inside_has_nine(void **state)
{
    (void)state;
    mmo_aoi_t a = zinx_grid();
    expect_around(&a, 55, (int[]){44, 45, 46, 54, 55, 56, 64, 65, 66}, 9);
    int out[9];
    assert_int_equal(mmo_aoi_around(&a, -1, out), 0);
    assert_int_equal(mmo_aoi_around(&a, 200, out), 0);
}

static void near_does_not_wrap_rows(void **state)
{
    (void)state;
    mmo_aoi_t a = zinx_grid();
    assert_true(mmo_aoi_near(&a, 55, 44));
    assert_true(mmo_aoi_near(&a, 55, 66));
    assert_true(mmo_aoi_near(&a, 55, 55));
    assert_false(mmo_aoi_near(&a, 55, 57));
    assert_false(mmo_aoi_near(&a, 55, 75));
    /* Column 9 of row 0 and column 0 of row 1 are 1 apart as numbers
       but on opposite sides of the world. */
    assert_false(mmo_aoi_near(&a, 9, 10));
    assert_false(mmo_aoi_near(&a, 19, 20));
    assert_false(mmo_aoi_near(&a, 0, 200));
    /* near agrees with around everywhere. */
    for (int c = 0; c < 200; c++) {
        int cells[9], n = mmo_aoi_around(&a, c, cells);
        int hits = 0;
        for (int d = 0; d < 200; d++)
            hits += mmo_aoi_near(&a, c, d);
        assert_int_equal(hits, n);
        for (int i = 0; i < n; i++)
            assert_true(mmo_aoi_near(&a, c, cells[i]));
    }
}

static void moves_across_cells(void **state)
{
    (void)state;
    mmo_aoi_t a = zinx_grid();
    /* One step right across a column boundary: 148.9 -> column 1,
       149 -> column 2; the old cell stays in the new view. */
    int from = mmo_aoi_cell_of(&a, 148.9f, 100);
    int to = mmo_aoi_cell_of(&a, 149, 100);
    assert_int_equal(from, 11);
    assert_int_equal(to, 12);
    assert_true(mmo_aoi_near(&a, from, to));
    /* A jump across the world leaves the old view entirely. */
    assert_false(mmo_aoi_near(&a, mmo_aoi_cell_of(&a, 100, 100),
                              mmo_aoi_cell_of(&a, 400, 390)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cell_size_is_truncated),
        cmocka_unit_test(positions_truncate_before_dividing),
        cmocka_unit_test(last_strip_and_outside_are_clamped),
        cmocka_unit_test(inside_is_finite_and_inclusive),
        cmocka_unit_test(corners_have_four),
        cmocka_unit_test(edges_have_six),
        cmocka_unit_test(inside_has_nine),
        cmocka_unit_test(near_does_not_wrap_rows),
        cmocka_unit_test(moves_across_cells),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The AOI grid: see aoi.h. */
#include "aoi.h"

#include <math.h>
#include <stdlib.h>

bool mmo_aoi_init(mmo_aoi_t *aoi, int min_x, int max_x, int cols, int min_z,
                  int max_z, int rows)
{
    if (cols < 1 || rows < 1 || max_x - min_x < cols || max_z - min_z < rows)
        return false;
    *aoi = (mmo_aoi_t){
        .min_x = min_x,
        .max_x = max_x,
        .cols = cols,
        .min_z = min_z,
        .max_z = max_z,
        .rows = rows,
        .cell_w = (max_x - min_x) / cols,
        .cell_h = (max_z - min_z) / rows,
    };
    return true;
}

void mmo_aoi_init_zinx(mmo_aoi_t *aoi)
{
    (void)mmo_aoi_init(aoi, MMO_AOI_MIN_X, MMO_AOI_MAX_X, MMO_AOI_COLS,
                       MMO_AOI_MIN_Z, MMO_AOI_MAX_Z, MMO_AOI_ROWS);
}

int mmo_aoi_cells(const mmo_aoi_t *aoi)
{
    return aoi->cols * aoi->rows;
}

/* One axis: Zinx truncates the coordinate to an integer, then divides;
   the float is bounded first so the conversion is always defined. */
static int index_of(float v, int min, int max, int step, int count)
{
    if (!(v >= (float)min)) /* below, or NaN */
        return 0;
    if (v > (float)max)
        v = (float)max;
    int i = ((int)v - min) / step;
    return i < count ? i : count - 1;
}

int mmo_aoi_cell_of(const mmo_aoi_t *aoi, float x, float z)
{
    int col = index_of(x, aoi->min_x, aoi->max_x, aoi->cell_w, aoi->cols);
    int row = index_of(z, aoi->min_z, aoi->max_z, aoi->cell_h, aoi->rows);
    return row * aoi->cols + col;
}

bool mmo_aoi_inside(const mmo_aoi_t *aoi, float x, float z)
{
    return isfinite(x) && isfinite(z) && x >= (float)aoi->min_x &&
           x <= (float)aoi->max_x && z >= (float)aoi->min_z &&
           z <= (float)aoi->max_z;
}

int mmo_aoi_around(const mmo_aoi_t *aoi, int cell, int out[9])
{
    if (cell < 0 || cell >= mmo_aoi_cells(aoi))
        return 0;
    int row = cell / aoi->cols, col = cell % aoi->cols, n = 0;
    for (int r = row - 1; r <= row + 1; r++) {
        if (r < 0 || r >= aoi->rows)
            continue;
        for (int c = col - 1; c <= col + 1; c++)
            if (c >= 0 && c < aoi->cols)
                out[n++] = r * aoi->cols + c;
    }
    return n;
}

bool mmo_aoi_near(const mmo_aoi_t *aoi, int a, int b)
{
    int cells = mmo_aoi_cells(aoi);
    if (a < 0 || b < 0 || a >= cells || b >= cells)
        return false;
    return abs(a / aoi->cols - b / aoi->cols) <= 1 &&
           abs(a % aoi->cols - b % aoi->cols) <= 1;
}

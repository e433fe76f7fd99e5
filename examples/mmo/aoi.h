/*
 * The area-of-interest grid of the MMO demo: the world's X/Z plane cut
 * into columns and rows, and each cell's nine-cell neighbourhood.
 *
 * It computes as Zinx's mmo_game does, in integers, so players see the
 * same neighbours as on Zinx's server: the cell width is
 * (max_x - min_x) / cols and its height (max_z - min_z) / rows, both
 * truncated, and a position is truncated to an integer before it is
 * divided. Zinx's world: X 85..410 in 10 columns (width 32), Z 75..400 in
 * 20 rows (height 16).
 *
 * Where Zinx's arithmetic leaves the grid it is clamped here: because the
 * width and height are truncated, the last strip of the world (X from 405,
 * Z from 395) computes to column 10 or row 20, which does not exist. Zinx
 * then finds a wrong cell (the next row's first) or none; this grid puts
 * such positions, and any outside the world, in the nearest edge cell.
 *
 * Pure functions of an immutable value: any thread.
 */
#ifndef MMO_AOI_H
#define MMO_AOI_H

#include <stdbool.h>

typedef struct mmo_aoi {
    int min_x, max_x, cols; /* X range and columns */
    int min_z, max_z, rows; /* Z range and rows */
    int cell_w, cell_h;     /* (max - min) / count, truncated */
} mmo_aoi_t;

/* A position: X and Z on the grid, Y the height, V the heading, as
   Zinx's Position message carries them. */
typedef struct mmo_pos {
    float x, y, z, v;
} mmo_pos_t;

/* Zinx's world. */
#define MMO_AOI_MIN_X 85
#define MMO_AOI_MAX_X 410
#define MMO_AOI_COLS 10
#define MMO_AOI_MIN_Z 75
#define MMO_AOI_MAX_Z 400
#define MMO_AOI_ROWS 20

/* Fills *aoi for the given bounds; returns false when they make no grid
   (a count below 1, or a range smaller than its count). */
bool mmo_aoi_init(mmo_aoi_t *aoi, int min_x, int max_x, int cols, int min_z,
                  int max_z, int rows);

/* Zinx's world: mmo_aoi_init with the MMO_AOI_* bounds. */
void mmo_aoi_init_zinx(mmo_aoi_t *aoi);

/* The number of cells, cols * rows. */
int mmo_aoi_cells(const mmo_aoi_t *aoi);

/* The cell of a position: row * cols + column, clamped into the grid
   (see above); a NaN coordinate counts as the world's minimum. */
int mmo_aoi_cell_of(const mmo_aoi_t *aoi, float x, float z);

/* Whether (x, z) lies inside the world's bounds, edges included, with
   both coordinates finite. */
bool mmo_aoi_inside(const mmo_aoi_t *aoi, float x, float z);

/* Writes the cells around cell (itself included: up to 9, fewer on an
   edge or in a corner) into out[9] in row-major order and returns how
   many; 0 for a cell outside the grid. */
int mmo_aoi_around(const mmo_aoi_t *aoi, int cell, int out[9]);

/* Whether cell b is within the nine-cell neighbourhood of cell a. */
bool mmo_aoi_near(const mmo_aoi_t *aoi, int a, int b);

#endif /* MMO_AOI_H */

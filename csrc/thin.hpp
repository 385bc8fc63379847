// Morphological thinning identical to MATLAB bwmorph(BW, 'thin', n): the
// two-subiteration algorithm of Guo and Hall (1989) as given by Lam, Lee and
// Suen (1992, p. 879), applied through 256-entry lookup tables, pixels outside
// the image counting as background.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgesdk {

// Thins the h x w row-major map `bw` in place (nonzero = foreground; the result
// holds 0/1), with no copy of it: beyond the map it needs 4 bytes per pixel that a
// deletion touches. Runs at most `max_iter` iterations of both subiterations, or
// until nothing changes when max_iter < 0. Returns the iterations that changed
// the image. h * w must be below 2^31.
int thin(std::uint8_t* bw, std::ptrdiff_t h, std::ptrdiff_t w, int max_iter);

// thin() of a map that holds only 0 and 1 and whose set pixels are exactly `pixels` (any order):
// the same result, with work in proportion to those pixels instead of the whole map.
int thin_listed(std::uint8_t* bw, std::ptrdiff_t h, std::ptrdiff_t w, const std::ptrdiff_t* pixels,
                std::size_t n_pixels, int max_iter);

}  // namespace edgesdk

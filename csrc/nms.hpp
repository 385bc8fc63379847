// Edge non-maximum suppression as the edge-detection field runs it before the
// BSDS benchmark: Dollar's structured-edge toolbox (convTri, gradient2,
// edgesNmsMex) as wrapped by the HED/RCF `edge_nms.m` script.
//
// All images are row-major float32, h rows by w columns. Arithmetic is single
// precision, as in the MATLAB original. `threads` splits the work by rows
// (0 = all cores); results do not depend on it.
#pragma once

#include <cstddef>
#include <functional>

namespace edgesdk {

// Separable triangle filter with symmetric ("mirror, edge repeated") padding,
// Dollar's convTri. For 0 < r <= 1 the filter is [1 p 1] / (2 + p) with
// p = 12 / r / (r + 2) - 2; for integer r > 1 it is [1 2 .. r+1 .. 2 1] / (r+1)^2.
// `in` and `out` may not alias.
void conv_tri(const float* in, float* out, std::ptrdiff_t h, std::ptrdiff_t w, float r,
              int threads = 1);

// Edge orientation in [0, pi) from second derivatives of convTri(E, 4):
// O = mod(atan(Oyy * sign(-Oxy) / (Oxx + 1e-5)), pi).
void edge_orientation(const float* E, float* O, std::ptrdiff_t h, std::ptrdiff_t w, int threads = 1);

struct NmsParams {
  int r = 2;      // suppression radius along the edge normal
  int s = 5;      // width of the band at the image border that is faded out
  float m = 1.01f;  // a pixel survives unless a neighbour exceeds m times its value
};

// edgesNmsMex: zero every pixel of E that is weaker (times m) than a bilinearly
// interpolated neighbour at distance 1..r along the normal O, then fade out a
// border band of width s.
void suppress_nonmax(const float* E, const float* O, float* out, std::ptrdiff_t h,
                     std::ptrdiff_t w, const NmsParams& p, int threads = 1);

// The whole pipeline of edge_nms.m: E1 = convTri(E, 1); O = orientation(E1);
// out = suppress_nonmax(E1, O). The normal comes from tan O directly, which
// agrees with the original's cos/sin of O up to float rounding.
// Images above 4 Mpixel are processed in bands of rows (nms_band_rows), so its scratch
// memory stays bounded; the result does not depend on it.
void edge_nms(const float* E, float* out, std::ptrdiff_t h, std::ptrdiff_t w, const NmsParams& p,
              int threads = 1);

// Rows per band for an h x w image: h (one band) up to 4 Mpixel.
std::ptrdiff_t nms_band_rows(std::ptrdiff_t h, std::ptrdiff_t w);

// edge_nms band by band, without a full-size output: calls sink(y0, y1, rows) for consecutive
// bands covering [0, h), `rows` holding rows y0 .. y1 - 1 of edge_nms(E), bit-identical to
// it for any band_rows (each band is computed with a margin of the rows it depends on).
// band_rows <= 0: nms_band_rows(h, w).
void edge_nms_bands(const float* E, std::ptrdiff_t h, std::ptrdiff_t w, const NmsParams& p, int threads,
                    std::ptrdiff_t band_rows,
                    const std::function<void(std::ptrdiff_t, std::ptrdiff_t, const float*)>& sink);

}  // namespace edgesdk

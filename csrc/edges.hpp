// The binary edges of an edge probability map, as a detector reports them: edge NMS,
// hysteresis thresholds, thinning. Computed without a full-size float map beyond the input:
// NMS runs in bands of rows whose results are classified at once into the one-byte output,
// where hysteresis and thinning then work in place. Peak memory is the input (4 bytes a
// pixel), the output (1) and a bounded band, plus 4 bytes per pixel that hysteresis or
// thinning touches.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nms.hpp"

namespace edgesdk {

struct EdgeTimings {
  double nms = 0;        // seconds: NMS and classification
  double threshold = 0;  // hysteresis
  double thin = 0;       // thinning
};

// E: h x w probabilities; out: h x w, 1 on edges. nms: the NMS parameters, or nullptr to
// threshold E as it is. Pixels >= high are edges, pixels >= low connected to them too
// (low >= high: a plain threshold). thin: thin the result to one pixel (bwmorph 'thin' Inf).
// band_rows: NMS band height (<= 0: automatic); the result does not depend on it nor on
// `threads`.
EdgeTimings edge_map(const float* E, std::uint8_t* out, std::ptrdiff_t h, std::ptrdiff_t w,
                     const NmsParams* nms, float low, float high, bool thin, int threads,
                     std::ptrdiff_t band_rows);

}  // namespace edgesdk

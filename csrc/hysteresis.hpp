// Hysteresis thresholding (Canny 1986): keep the pixels >= low that are
// 8-connected to a pixel >= high.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgesdk {

// E: h x w row-major float map; out: h x w, set to 1 for kept pixels, else 0.
void hysteresis(const float* E, std::uint8_t* out, std::ptrdiff_t h, std::ptrdiff_t w, float low,
                float high);

}  // namespace edgesdk

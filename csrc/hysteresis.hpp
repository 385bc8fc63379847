// Hysteresis thresholding (Canny 1986): keep the pixels >= low that are
// 8-connected to a pixel >= high.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgesdk {

// E: h x w row-major float map; out: h x w, set to 1 for kept pixels, else 0.
void hysteresis(const float* E, std::uint8_t* out, std::ptrdiff_t h, std::ptrdiff_t w, float low,
                float high);

// The classes hysteresis works on, for n pixels: 2 where E >= high, 1 where low <= E < high,
// else 0; with low >= high (a plain threshold) directly the result, 1 where E >= high.
void classify(const float* E, std::uint8_t* out, std::ptrdiff_t n, float low, float high);

// In place: a map of classes (0, 1, 2) -> 1 for the pixels of class 1 or 2 that are
// 8-connected to a pixel of class 2 through such pixels, else 0. h * w must be below 2^31.
void hysteresis_classes(std::uint8_t* c, std::ptrdiff_t h, std::ptrdiff_t w);

}  // namespace edgesdk

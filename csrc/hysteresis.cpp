#include "hysteresis.hpp"

#include <vector>

namespace edgesdk {

void classify(const float* E, std::uint8_t* out, std::ptrdiff_t n, float low, float high) {
  if (low >= high) {  // one threshold: the classes are the result
    for (std::ptrdiff_t p = 0; p < n; ++p) out[p] = E[p] >= high;
    return;
  }
  for (std::ptrdiff_t p = 0; p < n; ++p) out[p] = E[p] >= high ? 2 : (E[p] >= low ? 1 : 0);
}

void hysteresis_classes(std::uint8_t* c, std::ptrdiff_t h, std::ptrdiff_t w) {
  using Index = std::ptrdiff_t;
  constexpr std::uint8_t kKept = 3;
  std::vector<std::int32_t> stack;  // maps stay below 2^31 pixels (the bindings check it)
  for (Index p = 0; p < h * w; ++p) {
    if (c[p] != 2) continue;
    // Flood the weak region this strong pixel belongs to.
    c[p] = kKept;
    stack.push_back(static_cast<std::int32_t>(p));
    while (!stack.empty()) {
      const Index q = stack.back();
      stack.pop_back();
      const Index y = q / w, x = q % w;
      for (Index dy = -1; dy <= 1; ++dy) {
        for (Index dx = -1; dx <= 1; ++dx) {
          const Index yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
          const Index r = yy * w + xx;
          if (c[r] == 1 || c[r] == 2) {
            c[r] = kKept;
            stack.push_back(static_cast<std::int32_t>(r));
          }
        }
      }
    }
  }
  for (Index p = 0; p < h * w; ++p) c[p] = c[p] == kKept;
}

void hysteresis(const float* E, std::uint8_t* out, std::ptrdiff_t h, std::ptrdiff_t w, float low,
                float high) {
  classify(E, out, h * w, low, high);
  if (low < high) hysteresis_classes(out, h, w);
}

}  // namespace edgesdk

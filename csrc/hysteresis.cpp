#include "hysteresis.hpp"

#include <algorithm>
#include <vector>

namespace edgesdk {

void hysteresis(const float* E, std::uint8_t* out, std::ptrdiff_t h, std::ptrdiff_t w, float low,
                float high) {
  using Index = std::ptrdiff_t;
  std::fill(out, out + h * w, std::uint8_t{0});
  std::vector<Index> stack;
  for (Index p = 0; p < h * w; ++p) {
    if (E[p] < high || out[p]) continue;
    // Flood the weak region this strong pixel belongs to.
    out[p] = 1;
    stack.push_back(p);
    while (!stack.empty()) {
      const Index q = stack.back();
      stack.pop_back();
      const Index y = q / w, x = q % w;
      for (Index dy = -1; dy <= 1; ++dy) {
        for (Index dx = -1; dx <= 1; ++dx) {
          const Index yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
          const Index r = yy * w + xx;
          if (!out[r] && E[r] >= low) {
            out[r] = 1;
            stack.push_back(r);
          }
        }
      }
    }
  }
}

}  // namespace edgesdk

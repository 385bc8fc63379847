#include "edges.hpp"

#include <chrono>

#include "hysteresis.hpp"
#include "thin.hpp"

namespace edgesdk {

EdgeTimings edge_map(const float* E, std::uint8_t* out, std::ptrdiff_t h, std::ptrdiff_t w,
                     const NmsParams* nms, float low, float high, bool thin, int threads,
                     std::ptrdiff_t band_rows) {
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  };
  EdgeTimings t;
  const auto t0 = Clock::now();
  if (nms != nullptr) {
    edge_nms_bands(E, h, w, *nms, threads, band_rows,
                   [&](std::ptrdiff_t y0, std::ptrdiff_t y1, const float* rows) {
                     classify(rows, out + y0 * w, (y1 - y0) * w, low, high);
                   });
  } else {
    classify(E, out, h * w, low, high);
  }
  const auto t1 = Clock::now();
  if (low < high) hysteresis_classes(out, h, w);
  const auto t2 = Clock::now();
  if (thin) edgesdk::thin(out, h, w, -1);
  const auto t3 = Clock::now();
  t.nms = seconds(t0, t1);
  t.threshold = seconds(t1, t2);
  t.thin = seconds(t2, t3);
  return t;
}

}  // namespace edgesdk

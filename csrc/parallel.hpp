// Splitting row loops across threads. Each row's result depends only on the
// inputs, never on the split, so results are identical for any thread count.
#pragma once

#include <algorithm>
#include <cstddef>
#include <thread>
#include <vector>

namespace edgesdk {

// Threads to use for `rows` rows of `cols` pixels: `requested` if > 0, else
// all cores; never more than one per ~64k pixels (a thread costs ~20 us).
inline int thread_count(int requested, std::ptrdiff_t rows, std::ptrdiff_t cols) {
  int n = requested > 0 ? requested : static_cast<int>(std::thread::hardware_concurrency());
  const std::ptrdiff_t by_size = std::max<std::ptrdiff_t>(1, rows * cols / 65536);
  n = static_cast<int>(std::min<std::ptrdiff_t>({static_cast<std::ptrdiff_t>(std::max(n, 1)), by_size, rows}));
  return std::max(n, 1);
}

// Calls fn(y0, y1) on contiguous row ranges covering [0, rows).
template <typename Fn>
void parallel_rows(std::ptrdiff_t rows, int threads, Fn fn) {
  if (threads <= 1 || rows <= 1) {
    fn(std::ptrdiff_t{0}, rows);
    return;
  }
  std::vector<std::thread> pool;
  const std::ptrdiff_t chunk = (rows + threads - 1) / threads;
  for (std::ptrdiff_t y0 = chunk; y0 < rows; y0 += chunk)
    pool.emplace_back([=] { fn(y0, std::min(rows, y0 + chunk)); });
  fn(std::ptrdiff_t{0}, std::min(rows, chunk));
  for (auto& t : pool) t.join();
}

}  // namespace edgesdk

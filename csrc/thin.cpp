#include "thin.hpp"

#include <array>
#include <vector>

namespace edgesdk {
namespace {

using Index = std::ptrdiff_t;
using Lut = std::array<std::uint8_t, 256>;

// Neighbours x1..x8 of Guo and Hall, counter-clockwise from east (north is the
// row above); bit i-1 of a LUT index holds x_i.
constexpr bool bit(int index, int i) { return ((index >> ((i - 1) & 7)) & 1) != 0; }

// deletes[index] == 1 when the centre pixel is removed in subiteration `sub`.
constexpr Lut make_lut(int sub) {
  Lut lut{};
  for (int n = 0; n < 256; ++n) {
    // G1: the crossing number X_H(p) is 1.
    int crossings = 0;
    for (int i = 1; i <= 4; ++i)
      crossings += !bit(n, 2 * i - 1) && (bit(n, 2 * i) || bit(n, 2 * i + 1));
    // G2: 2 <= min(n1, n2) <= 3.
    int n1 = 0, n2 = 0;
    for (int k = 1; k <= 4; ++k) {
      n1 += bit(n, 2 * k - 1) || bit(n, 2 * k);
      n2 += bit(n, 2 * k) || bit(n, 2 * k + 1);
    }
    const int m = n1 < n2 ? n1 : n2;
    // G3 (first subiteration): (x2 | x3 | !x8) & x1 == 0;
    // G3' (second subiteration): (x6 | x7 | !x4) & x5 == 0.
    const bool g3 = sub == 0 ? !((bit(n, 2) || bit(n, 3) || !bit(n, 8)) && bit(n, 1))
                             : !((bit(n, 6) || bit(n, 7) || !bit(n, 4)) && bit(n, 5));
    lut[n] = crossings == 1 && m >= 2 && m <= 3 && g3;
  }
  return lut;
}

}  // namespace

int thin(std::uint8_t* bw, Index h, Index w, int max_iter) {
  static constexpr Lut kDeletes[2] = {make_lut(0), make_lut(1)};
  // Work on a copy with a one-pixel background frame so no neighbour read
  // needs a bounds check.
  const Index pw = w + 2;
  std::vector<std::uint8_t> img(static_cast<size_t>((h + 2) * pw), 0);
  // A pixel's fate in a subiteration depends only on its 3x3 neighbourhood,
  // so after the first pass a subiteration only needs to revisit pixels next
  // to a deletion made since it last ran: pending[sub] lists them, and bit
  // `sub` of queued[p] says p is in pending[sub].
  std::vector<std::uint8_t> queued(img.size(), 0);
  std::vector<Index> pending[2];
  for (Index y = 0; y < h; ++y)
    for (Index x = 0; x < w; ++x)
      if (bw[y * w + x]) {
        const Index p = (y + 1) * pw + x + 1;
        img[p] = 1;
        queued[p] = 3;
        pending[0].push_back(p);
      }
  pending[1] = pending[0];
  // Offsets of x1..x8.
  const Index nb[8] = {1, -pw + 1, -pw, -pw - 1, -1, pw - 1, pw, pw + 1};
  std::vector<Index> doomed, visit;
  int iterations = 0;
  while (max_iter < 0 || iterations < max_iter) {
    bool changed = false;
    for (int sub = 0; sub < 2; ++sub) {
      // Decide every deletion of a subiteration on the image as it was before
      // it (parallel thinning), then apply them.
      visit.swap(pending[sub]);
      pending[sub].clear();
      doomed.clear();
      const std::uint8_t bit = static_cast<std::uint8_t>(1u << sub);
      for (const Index p : visit) {
        queued[p] &= static_cast<std::uint8_t>(~bit);
        if (!img[p]) continue;
        int n = 0;
        for (int i = 0; i < 8; ++i) n |= img[p + nb[i]] << i;
        if (kDeletes[sub][n]) doomed.push_back(p);
      }
      for (const Index p : doomed) img[p] = 0;
      for (const Index p : doomed) {
        for (int i = 0; i < 8; ++i) {
          const Index q = p + nb[i];
          if (!img[q]) continue;
          for (int s = 0; s < 2; ++s) {
            if (queued[q] & (1u << s)) continue;
            queued[q] |= static_cast<std::uint8_t>(1u << s);
            pending[s].push_back(q);
          }
        }
      }
      changed = changed || !doomed.empty();
    }
    if (!changed) break;
    ++iterations;
  }
  for (Index y = 0; y < h; ++y)
    for (Index x = 0; x < w; ++x) bw[y * w + x] = img[(y + 1) * pw + x + 1];
  return iterations;
}

}  // namespace edgesdk

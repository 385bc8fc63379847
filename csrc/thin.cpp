#include "thin.hpp"

#include <array>
#include <cstdint>
#include <cstring>
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

// thin() and thin_listed(): `listed` (n_listed pixels) null means every pixel may be set.
int thin_map(std::uint8_t* bw, Index h, Index w, int max_iter, const Index* listed, size_t n_listed) {
  static constexpr Lut kDeletes[2] = {make_lut(0), make_lut(1)};
  // Everything lives in the map itself, one byte a pixel, so thinning a large map costs no
  // copy of it: bit 0 is the pixel, bits 1 and 2 say it waits in pending[0] / pending[1],
  // bit 4 that it lies on the image border (its neighbours outside count as background).
  constexpr std::uint8_t kOn = 1, kBorder = 16;
  using Pixel = std::int32_t;  // callers keep maps below 2^31 pixels (the bindings check it)
  const Index n = h * w;
  if (!listed)
    for (Index p = 0; p < n; ++p) bw[p] = bw[p] != 0;
  for (Index x = 0; x < w; ++x) {
    bw[x] |= kBorder;
    bw[(h - 1) * w + x] |= kBorder;
  }
  for (Index y = 0; y < h; ++y) {
    bw[y * w] |= kBorder;
    bw[y * w + w - 1] |= kBorder;
  }
  // Neighbours x1..x8, counter-clockwise from east (north is the row above).
  const Index dy[8] = {0, -1, -1, -1, 0, 1, 1, 1}, dx[8] = {1, 1, 0, -1, -1, -1, 0, 1};
  const Index nb[8] = {1, -w + 1, -w, -w - 1, -1, w - 1, w, w + 1};
  auto code = [&](Index p) {
    int n = 0;
    if (!(bw[p] & kBorder)) {
      for (int i = 0; i < 8; ++i) n |= (bw[p + nb[i]] & kOn) << i;
      return n;
    }
    const Index y = p / w, x = p % w;
    for (int i = 0; i < 8; ++i) {
      const Index yy = y + dy[i], xx = x + dx[i];
      if (yy >= 0 && yy < h && xx >= 0 && xx < w) n |= (bw[yy * w + xx] & kOn) << i;
    }
    return n;
  };
  // Calls fn(q) for each neighbour q of p inside the image.
  auto for_neighbours = [&](Index p, auto fn) {
    if (!(bw[p] & kBorder)) {
      for (int i = 0; i < 8; ++i) fn(p + nb[i]);
      return;
    }
    const Index y = p / w, x = p % w;
    for (int i = 0; i < 8; ++i) {
      const Index yy = y + dy[i], xx = x + dx[i];
      if (yy >= 0 && yy < h && xx >= 0 && xx < w) fn(yy * w + xx);
    }
  };
  // A pixel's fate in a subiteration depends only on its 3x3 neighbourhood, so after the
  // first iteration (which looks at every pixel) a subiteration only revisits the pixels next
  // to a deletion made since it last ran: pending[sub] lists them.
  std::vector<Pixel> pending[2], doomed, visit;
  bool first = true;
  int iterations = 0;
  while (max_iter < 0 || iterations < max_iter) {
    bool changed = false;
    for (int sub = 0; sub < 2; ++sub) {
      // Decide every deletion of a subiteration on the image as it was before it (parallel
      // thinning), then apply them.
      doomed.clear();
      const std::uint8_t queued = static_cast<std::uint8_t>(2u << sub);
      if (first && listed) {
        for (size_t k = 0; k < n_listed; ++k)
          if ((bw[listed[k]] & kOn) && kDeletes[sub][code(listed[k])]) doomed.push_back(static_cast<Pixel>(listed[k]));
      } else if (first) {
        for (Index p = 0; p < n;) {
          // Eight pixels at a time while they are all background (bit 0 of each byte clear).
          std::uint64_t word;
          if (p + 8 <= n && (std::memcpy(&word, bw + p, 8), (word & 0x0101010101010101ULL) == 0)) {
            p += 8;
            continue;
          }
          if ((bw[p] & kOn) && kDeletes[sub][code(p)]) doomed.push_back(static_cast<Pixel>(p));
          ++p;
        }
      } else {
        visit.swap(pending[sub]);
        pending[sub].clear();
        for (const Pixel p : visit) {
          bw[p] &= static_cast<std::uint8_t>(~queued);
          if ((bw[p] & kOn) && kDeletes[sub][code(p)]) doomed.push_back(p);
        }
      }
      for (const Pixel p : doomed) bw[p] &= kBorder;
      for (const Pixel p : doomed) {
        for_neighbours(p, [&](Index q) {
          if (!(bw[q] & kOn)) return;
          for (int s = 0; s < 2; ++s) {
            // In the first iteration the second subiteration looks at every pixel anyway.
            if (first && sub == 0 && s == 1) continue;
            const std::uint8_t bit = static_cast<std::uint8_t>(2u << s);
            if (bw[q] & bit) continue;
            bw[q] |= bit;
            pending[s].push_back(static_cast<Pixel>(q));
          }
        });
      }
      changed = changed || !doomed.empty();
    }
    first = false;
    if (!changed) break;
    ++iterations;
  }
  if (listed) {
    // Flags live on the listed pixels (set or deleted) and the border alone.
    for (size_t k = 0; k < n_listed; ++k) bw[listed[k]] &= kOn;
    for (Index x = 0; x < w; ++x) {
      bw[x] &= kOn;
      bw[(h - 1) * w + x] &= kOn;
    }
    for (Index y = 0; y < h; ++y) {
      bw[y * w] &= kOn;
      bw[y * w + w - 1] &= kOn;
    }
  } else {
    for (Index p = 0; p < n; ++p) bw[p] &= kOn;
  }
  return iterations;
}

}  // namespace

int thin(std::uint8_t* bw, Index h, Index w, int max_iter) { return thin_map(bw, h, w, max_iter, nullptr, 0); }

int thin_listed(std::uint8_t* bw, Index h, Index w, const Index* pixels, size_t n_pixels, int max_iter) {
  return thin_map(bw, h, w, max_iter, pixels, n_pixels);
}

}  // namespace edgesdk

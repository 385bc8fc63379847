#include "nms.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "parallel.hpp"

namespace edgesdk {
namespace {

using Index = std::ptrdiff_t;

constexpr float kPi = 3.14159265358979323846f;

// Uninitialised scratch image (first touch is the only write to most of them).
std::unique_ptr<float[]> scratch(Index h, Index w) {
  return std::unique_ptr<float[]>(new float[static_cast<size_t>(h * w)]);
}

// Index into [0, n) of position i under MATLAB padarray(..., 'symmetric') (numpy
// mode="symmetric"): the border pixel is repeated, and a pad wider than the image
// keeps mirroring with period 2n.
inline Index reflect(Index i, Index n) {
  const Index period = 2 * n;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - 1 - i;
}

// Taps of convTri's filter and its radius.
std::vector<float> triangle_taps(float r, int* radius) {
  if (r <= 1.0f) {
    const float p = 12.0f / r / (r + 2.0f) - 2.0f;
    *radius = 1;
    return {1.0f / (2.0f + p), p / (2.0f + p), 1.0f / (2.0f + p)};
  }
  const int ri = static_cast<int>(r);
  const float norm = static_cast<float>((ri + 1) * (ri + 1));
  std::vector<float> taps;
  for (int k = 1; k <= ri + 1; ++k) taps.push_back(static_cast<float>(k) / norm);
  for (int k = ri; k >= 1; --k) taps.push_back(static_cast<float>(k) / norm);
  *radius = ri;
  return taps;
}

// Rows of an image computed on demand into a ring of `slots` rows: row j lives
// in slot j % slots. Callers ask for rows inside a sliding window no longer
// than `slots`, so a row is computed about once and never evicted while in use.
class RowRing {
 public:
  RowRing(Index slots, Index w) : w_(w), rows_(static_cast<size_t>(slots * w)), held_(static_cast<size_t>(slots), -1) {}

  template <typename Fill>
  const float* get(Index j, Fill fill) {
    const Index slot = j % static_cast<Index>(held_.size());
    float* row = rows_.data() + slot * w_;
    if (held_[slot] != j) {
      fill(j, row);
      held_[slot] = j;
    }
    return row;
  }

 private:
  Index w_;
  std::vector<float> rows_;
  std::vector<Index> held_;
};

void conv_tri_impl(const float* in, float* out, Index h, Index w, float r, int threads) {
  int rad = 0;
  const std::vector<float> f = triangle_taps(r, &rad);
  const int taps = 2 * rad + 1;
  const Index lo = std::min<Index>(rad, w), hi = std::max<Index>(lo, w - rad);
  // Horizontal pass of input row j. Every output sums its taps in the same
  // order (k = 0 .. 2 rad) whether it sits at the border or inside.
  auto horizontal = [&](Index j, float* dst) {
    const float* src = in + j * w;
    for (Index x = lo; x < hi; ++x) dst[x] = f[0] * src[x - rad];
    for (int k = 1; k < taps; ++k) {
      const float fk = f[k];
      const float* s = src + (k - rad);
      for (Index x = lo; x < hi; ++x) dst[x] += fk * s[x];
    }
    for (Index x = 0; x < w; ++x) {
      if (x >= lo && x < hi) continue;
      float acc = 0.0f;
      for (int k = 0; k < taps; ++k) acc += f[k] * src[reflect(x + k - rad, w)];
      dst[x] = acc;
    }
  };
  // Vertical pass, a whole row at a time, over the 2 rad + 1 horizontally
  // filtered rows it needs (mirrored rows near the border are among them).
  parallel_rows(h, threads, [&](Index y0, Index y1) {
    RowRing ring(taps, w);
    for (Index y = y0; y < y1; ++y) {
      float* dst = out + y * w;
      std::fill(dst, dst + w, 0.0f);
      for (int k = 0; k < taps; ++k) {
        const float* src = ring.get(reflect(y + k - rad, h), horizontal);
        const float fk = f[k];
        for (Index x = 0; x < w; ++x) dst[x] += fk * src[x];
      }
    }
  });
}

// MATLAB gradient along x of one row: central differences inside, one-sided
// at the borders, zero along a dimension of size 1.
inline void gradient_x_row(const float* a, float* g, Index w) {
  if (w == 1) {
    g[0] = 0.0f;
    return;
  }
  g[0] = a[1] - a[0];
  for (Index x = 1; x < w - 1; ++x) g[x] = (a[x + 1] - a[x - 1]) * 0.5f;
  g[w - 1] = a[w - 1] - a[w - 2];
}

// MATLAB gradient along y at row y of A.
inline void gradient_y_row(const float* A, float* g, Index h, Index w, Index y) {
  if (h == 1) {
    std::fill(g, g + w, 0.0f);
    return;
  }
  const float* lo = A + (y == 0 ? 0 : y - 1) * w;
  const float* hi = A + (y == h - 1 ? h - 1 : y + 1) * w;
  const float scale = (y == 0 || y == h - 1) ? 1.0f : 0.5f;
  for (Index x = 0; x < w; ++x) g[x] = (hi[x] - lo[x]) * scale;
}

// The orientation formula of edgesDetect.m, evaluated row by row:
// t = tan O = Oyy * sign(-Oxy) / (Oxx + 1e-5) with [Ox, Oy] = gradient(convTri(E, 4)),
// [Oxx, ~] = gradient(Ox), [Oxy, Oyy] = gradient(Oy). t may be +-inf, or NaN
// for 0/0. Each thread calls make_emit() once and hands every row of its
// band to the result: emit(y, t_row).
template <typename MakeEmit>
void normal_tangent_rows(const float* E, Index h, Index w, int threads, MakeEmit make_emit) {
  auto E4 = scratch(h, w);
  conv_tri_impl(E, E4.get(), h, w, 4.0f, threads);
  const float* e4 = E4.get();
  auto oy_row = [&](Index j, float* dst) { gradient_y_row(e4, dst, h, w, j); };
  parallel_rows(h, threads, [&](Index y0, Index y1) {
    std::vector<float> ox(static_cast<size_t>(w)), oxx(static_cast<size_t>(w)),
        oxy(static_cast<size_t>(w)), oyy(static_cast<size_t>(w)), t(static_cast<size_t>(w));
    RowRing oy(3, w);  // Oy rows y - 1, y, y + 1
    auto emit = make_emit();
    for (Index y = y0; y < y1; ++y) {
      gradient_x_row(e4 + y * w, ox.data(), w);
      gradient_x_row(ox.data(), oxx.data(), w);
      gradient_x_row(oy.get(y, oy_row), oxy.data(), w);
      // gradient along y of Oy at row y, from its neighbouring rows.
      if (h == 1) {
        std::fill(oyy.begin(), oyy.end(), 0.0f);
      } else {
        const Index a = y == 0 ? 0 : y - 1, b = y == h - 1 ? h - 1 : y + 1;
        const float scale = (y == 0 || y == h - 1) ? 1.0f : 0.5f;
        const float* lo = oy.get(a, oy_row);
        const float* hi = oy.get(b, oy_row);
        for (Index x = 0; x < w; ++x) oyy[x] = (hi[x] - lo[x]) * scale;
      }
      for (Index x = 0; x < w; ++x) {
        const float sgn = -oxy[x] > 0 ? 1.0f : (-oxy[x] < 0 ? -1.0f : 0.0f);
        t[x] = oyy[x] * sgn / (oxx[x] + 1e-5f);
      }
      emit(y, t.data());
    }
  });
}

// Bilinear interpolation of I at (x, y), clamped as edgesNmsMex clamps it.
// The bounds are taken in float: for a float x, x > float(w - 1.001) and
// x > double(w - 1.001) clamp to the same value.
inline float interp(const float* I, Index h, Index w, float xmax, float ymax, float x, float y) {
  x = std::min(std::max(x, 0.0f), xmax);
  y = std::min(std::max(y, 0.0f), ymax);
  const Index x0 = static_cast<Index>(x), y0 = static_cast<Index>(y);
  // The original reads x0 + 1 unconditionally; that is in range for w >= 2,
  // and the clamp keeps a one-pixel-wide image in range too.
  const Index x1 = std::min(x0 + 1, w - 1), y1 = std::min(y0 + 1, h - 1);
  const float dx0 = x - static_cast<float>(x0), dy0 = y - static_cast<float>(y0);
  const float dx1 = 1 - dx0, dy1 = 1 - dy0;
  return I[y0 * w + x0] * dx1 * dy1 + I[y0 * w + x1] * dx0 * dy1 + I[y1 * w + x0] * dx1 * dy0 +
         I[y1 * w + x1] * dx0 * dy0;
}

// interp() for a point at least one pixel inside the image, where neither
// clamp can act: same arithmetic, fewer instructions.
inline float interp_inside(const float* I, Index w, float x, float y) {
  const Index x0 = static_cast<Index>(x), y0 = static_cast<Index>(y);
  const float dx0 = x - static_cast<float>(x0), dy0 = y - static_cast<float>(y0);
  const float dx1 = 1 - dx0, dy1 = 1 - dy0;
  const float* r0 = I + y0 * w + x0;
  const float* r1 = r0 + w;
  return r0[0] * dx1 * dy1 + r0[1] * dx0 * dy1 + r1[0] * dx1 * dy0 + r1[1] * dx0 * dy0;
}

// The suppression of edgesNmsMex for row y, given the unit normal (co, si)
// of each pixel of the row.
void suppress_row(const float* E, float* out, Index h, Index w, const NmsParams& p, Index y,
                  const float* co, const float* si) {
  const float xmax = static_cast<float>(static_cast<double>(w) - 1.001);
  const float ymax = static_cast<float>(static_cast<double>(h) - 1.001);
  const float fy = static_cast<float>(y);
  // Pixels whose whole search segment (within r of the pixel, |co|, |si| <= 1)
  // lies at least one pixel inside the image.
  const Index margin = p.r + 1;
  const bool row_inside = y >= margin && y < h - margin;
  const Index x_lo = row_inside ? std::min(margin, w) : w;
  const Index x_hi = row_inside ? std::max(x_lo, w - margin) : w;
  for (Index x = 0; x < w; ++x) {
    const float e = E[y * w + x];
    out[y * w + x] = e;
    if (e == 0.0f) continue;
    const float em = e * p.m;
    const float fx = static_cast<float>(x);
    const bool inside = x >= x_lo && x < x_hi;
    // Any stronger neighbour suppresses, so the order of the tests is free:
    // the nearest first, as they decide most pixels. x - k*co is
    // bit-identical to the original's x + (-k)*co.
    for (int k = 1; k <= p.r; ++k) {
      const float dk = static_cast<float>(k);
      const float ax = fx - dk * co[x], ay = fy - dk * si[x];
      const float bx = fx + dk * co[x], by = fy + dk * si[x];
      const bool stronger =
          inside ? (em < interp_inside(E, w, ax, ay) || em < interp_inside(E, w, bx, by))
                 : (em < interp(E, h, w, xmax, ymax, ax, ay) || em < interp(E, h, w, xmax, ymax, bx, by));
      if (stronger) {
        out[y * w + x] = 0.0f;
        break;
      }
    }
  }
}

// Fade out a band of width s at the border, where the estimates are noisy.
void fade_border(float* out, Index h, Index w, int s_param) {
  Index s = s_param;
  s = std::min<Index>(s, w / 2);
  s = std::min<Index>(s, h / 2);
  for (Index x = 0; x < s; ++x) {
    const float f = static_cast<float>(x) / static_cast<float>(s);
    for (Index y = 0; y < h; ++y) {
      out[y * w + x] *= f;
      out[y * w + (w - 1 - x)] *= f;
    }
  }
  for (Index y = 0; y < s; ++y) {
    const float f = static_cast<float>(y) / static_cast<float>(s);
    for (Index x = 0; x < w; ++x) {
      out[y * w + x] *= f;
      out[(h - 1 - y) * w + x] *= f;
    }
  }
}

}  // namespace

void conv_tri(const float* in, float* out, Index h, Index w, float r, int threads) {
  conv_tri_impl(in, out, h, w, r, thread_count(threads, h, w));
}

void edge_orientation(const float* E, float* O, Index h, Index w, int threads) {
  normal_tangent_rows(E, h, w, thread_count(threads, h, w), [&] {
    return [&](Index y, const float* t) {
      for (Index x = 0; x < w; ++x) {
        float o = std::atan(t[x]);
        // 0/0 (only when Oxx == -1e-5 exactly and Oyy * sign(-Oxy) == 0) would
        // make the original index memory with NaN coordinates; call it horizontal.
        if (std::isnan(o)) o = 0.0f;
        if (o < 0) o += kPi;  // mod(o, pi) for o in (-pi/2, pi/2]
        O[y * w + x] = o;
      }
    };
  });
}

void suppress_nonmax(const float* E, const float* O, float* out, Index h, Index w,
                     const NmsParams& p, int threads) {
  parallel_rows(h, thread_count(threads, h, w), [&](Index y0, Index y1) {
    std::vector<float> co(static_cast<size_t>(w)), si(static_cast<size_t>(w));
    for (Index y = y0; y < y1; ++y) {
      for (Index x = 0; x < w; ++x) {
        co[x] = std::cos(O[y * w + x]);
        si[x] = std::sin(O[y * w + x]);
      }
      suppress_row(E, out, h, w, p, y, co.data(), si.data());
    }
  });
  fade_border(out, h, w, p.s);
}

void edge_nms(const float* E, float* out, Index h, Index w, const NmsParams& p, int threads) {
  const int nt = thread_count(threads, h, w);
  auto E1 = scratch(h, w);
  conv_tri_impl(E, E1.get(), h, w, 1.0f, nt);
  // Each row is suppressed as soon as its orientation is known (suppression
  // reads only E1 and the row's own normals).
  // The unit normal (cos O, sin O) comes straight from t = tan O, without the
  // atan, cos and sin of the original, which cost more than the rest of NMS
  // together. It equals the original's up to float rounding; reversing it
  // (mod pi) changes nothing since the search runs along both directions.
  // Written branch-free so that the loop vectorises.
  const float* e1 = E1.get();
  normal_tangent_rows(e1, h, w, nt, [&] {
    return [&, co = std::vector<float>(static_cast<size_t>(w)),
            si = std::vector<float>(static_cast<size_t>(w))](Index y, const float* t) mutable {
      for (Index x = 0; x < w; ++x) {
        const float ti = t[x];
        const float inv = 1.0f / std::sqrt(1.0f + ti * ti);  // 0 for +-inf, NaN for NaN
        const bool nan = ti != ti;
        co[x] = nan ? 1.0f : inv;
        // +-inf: the normal is vertical (ti * inv would be inf * 0).
        si[x] = nan ? 0.0f : (ti > 1e18f ? 1.0f : (ti < -1e18f ? -1.0f : ti * inv));
      }
      suppress_row(e1, out, h, w, p, y, co.data(), si.data());
    };
  });
  fade_border(out, h, w, p.s);
}

}  // namespace edgesdk

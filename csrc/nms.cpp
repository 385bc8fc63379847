#include "nms.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
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

// Rows of an image held from row `row0` on (a band, or the whole image with row0 = 0):
// coordinates stay those of the whole image, whose float rounding the suppression depends on.
struct Rows {
  const float* data;
  Index row0;
  const float* row(Index y) const { return data + (y - row0) * w; }
  Index w;
};

// Bilinear interpolation of I at (x, y), clamped as edgesNmsMex clamps it.
// The bounds are taken in float: for a float x, x > float(w - 1.001) and
// x > double(w - 1.001) clamp to the same value.
inline float interp(const Rows& I, Index h, Index w, float xmax, float ymax, float x, float y) {
  x = std::min(std::max(x, 0.0f), xmax);
  y = std::min(std::max(y, 0.0f), ymax);
  const Index x0 = static_cast<Index>(x), y0 = static_cast<Index>(y);
  // The original reads x0 + 1 unconditionally; that is in range for w >= 2,
  // and the clamp keeps a one-pixel-wide image in range too.
  const Index x1 = std::min(x0 + 1, w - 1), y1 = std::min(y0 + 1, h - 1);
  const float dx0 = x - static_cast<float>(x0), dy0 = y - static_cast<float>(y0);
  const float dx1 = 1 - dx0, dy1 = 1 - dy0;
  const float* r0 = I.row(y0);
  const float* r1 = I.row(y1);
  return r0[x0] * dx1 * dy1 + r0[x1] * dx0 * dy1 + r1[x0] * dx1 * dy0 + r1[x1] * dx0 * dy0;
}

// interp() for a point at least one pixel inside the image, where neither
// clamp can act: same arithmetic, fewer instructions.
inline float interp_inside(const Rows& I, float x, float y) {
  const Index x0 = static_cast<Index>(x), y0 = static_cast<Index>(y);
  const float dx0 = x - static_cast<float>(x0), dy0 = y - static_cast<float>(y0);
  const float dx1 = 1 - dx0, dy1 = 1 - dy0;
  const float* r0 = I.row(y0) + x0;
  const float* r1 = r0 + I.w;
  return r0[0] * dx1 * dy1 + r0[1] * dx0 * dy1 + r1[0] * dx1 * dy0 + r1[1] * dx0 * dy0;
}

// The suppression of edgesNmsMex for row y of an image of h rows, given the unit
// normal (co, si) of each pixel of the row; E holds rows y - r - 1 .. y + r + 1 (those
// inside the image) and `out` is written at its row y, both from row E.row0 on.
void suppress_row(const Rows& E, float* out, Index h, Index w, const NmsParams& p, Index y,
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
  const float* e_row = E.row(y);
  float* o_row = out + (y - E.row0) * w;
  for (Index x = 0; x < w; ++x) {
    const float e = e_row[x];
    o_row[x] = e;
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
          inside ? (em < interp_inside(E, ax, ay) || em < interp_inside(E, bx, by))
                 : (em < interp(E, h, w, xmax, ymax, ax, ay) || em < interp(E, h, w, xmax, ymax, bx, by));
      if (stronger) {
        o_row[x] = 0.0f;
        break;
      }
    }
  }
}

// edge_nms without the border fade, for rows [keep0, keep1) of an image of h rows: E holds
// rows [row0, row0 + hb) of it, enough around the kept ones (see edge_nms_bands), and `out`
// receives the kept rows at the same offsets (out[(y - row0) * w]).
void edge_nms_core(const float* E, float* out, Index hb, Index w, const NmsParams& p, int nt, Index row0,
                   Index h, Index keep0, Index keep1) {
  auto E1 = scratch(hb, w);
  conv_tri_impl(E, E1.get(), hb, w, 1.0f, nt);
  // Each row is suppressed as soon as its orientation is known (suppression
  // reads only E1 and the row's own normals).
  // The unit normal (cos O, sin O) comes straight from t = tan O, without the
  // atan, cos and sin of the original, which cost more than the rest of NMS
  // together. It equals the original's up to float rounding; reversing it
  // (mod pi) changes nothing since the search runs along both directions.
  // Written branch-free so that the loop vectorises.
  const Rows e1{E1.get(), row0, w};
  normal_tangent_rows(E1.get(), hb, w, nt, [&] {
    return [&, co = std::vector<float>(static_cast<size_t>(w)),
            si = std::vector<float>(static_cast<size_t>(w))](Index yb, const float* t) mutable {
      const Index y = yb + row0;
      if (y < keep0 || y >= keep1) return;  // a margin row: only there for its neighbours
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
}

// fade_border for rows [y0, y1) of an image of h rows, held in `rows`: the same products in
// the same order per pixel (the column factor, then the row factor), so a band is faded
// bit-identically to the whole image.
void fade_rows(float* rows, Index y0, Index y1, Index h, Index w, int s_param) {
  Index s = s_param;
  s = std::min<Index>(s, w / 2);
  s = std::min<Index>(s, h / 2);
  if (s <= 0) return;
  for (Index y = y0; y < y1; ++y) {
    float* row = rows + (y - y0) * w;
    for (Index x = 0; x < s; ++x) {
      const float f = static_cast<float>(x) / static_cast<float>(s);
      row[x] *= f;
      row[w - 1 - x] *= f;
    }
    const Index from_edge = std::min(y, h - 1 - y);
    if (from_edge < s) {
      const float f = static_cast<float>(from_edge) / static_cast<float>(s);
      for (Index x = 0; x < w; ++x) row[x] *= f;
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
      suppress_row(Rows{E, 0, w}, out, h, w, p, y, co.data(), si.data());
    }
  });
  fade_rows(out, 0, h, h, w, p.s);
}


Index nms_band_rows(Index h, Index w) {
  // Whole images up to 4 Mpixel (scratch: two float maps); larger ones in bands of about
  // 4 Mpixel, and at least 256 rows, so the margins recomputed per band cost little.
  constexpr Index kBandPixels = Index{1} << 22;
  if (h * w <= kBandPixels) return h;
  return std::max<Index>(256, kBandPixels / std::max<Index>(w, 1));
}

void edge_nms_bands(const float* E, Index h, Index w, const NmsParams& p, int threads, Index band_rows,
                    const std::function<void(Index, Index, const float*)>& sink) {
  const int nt = thread_count(threads, h, w);
  if (band_rows <= 0) band_rows = nms_band_rows(h, w);
  // Rows a band needs beyond its own: orientation reads convTri(E1, 4) two rows away and E1
  // reads E one row away (7 rows); suppression reads E1 r + 1 rows away (r + 2 of E). The
  // border reflection of each convolution only acts inside them; suppression runs in the
  // whole image's coordinates (its float rounding depends on them) and its clamps at the
  // whole image's borders, so every kept row is what the whole image gives.
  const Index margin = std::max<Index>(7, static_cast<Index>(p.r) + 2) + 1;
  const Index band = std::min(band_rows, h);
  std::vector<float> out(static_cast<size_t>((band + 2 * margin) * w));
  for (Index y0 = 0; y0 < h; y0 += band) {
    const Index y1 = std::min(h, y0 + band);
    const Index a = std::max<Index>(0, y0 - margin), b = std::min(h, y1 + margin);
    edge_nms_core(E + a * w, out.data(), b - a, w, p, nt, a, h, y0, y1);
    float* rows = out.data() + (y0 - a) * w;
    fade_rows(rows, y0, y1, h, w, p.s);
    sink(y0, y1, rows);
  }
}

void edge_nms(const float* E, float* out, Index h, Index w, const NmsParams& p, int threads) {
  const Index band = nms_band_rows(h, w);
  if (band >= h) {  // one band: straight into the output
    edge_nms_core(E, out, h, w, p, thread_count(threads, h, w), 0, h, 0, h);
    fade_rows(out, 0, h, h, w, p.s);
    return;
  }
  edge_nms_bands(E, h, w, p, threads, band, [&](Index y0, Index y1, const float* rows) {
    std::copy(rows, rows + (y1 - y0) * w, out + y0 * w);
  });
}

}  // namespace edgesdk

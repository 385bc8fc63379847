// pybind11 glue for the kernels: every array is validated (ndim, dtype,
// byte order, contiguity, alignment, emptiness, finiteness) before any kernel
// touches its memory, and every kernel runs with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

#include "correspond.hpp"
#include "edges.hpp"
#include "hysteresis.hpp"
#include "nms.hpp"
#include "thin.hpp"

namespace py = pybind11;

namespace {

using Index = std::ptrdiff_t;

// Limits the Python side reads from here (edgesdk.cpus.MAX_THREADS, NmsParams, the shape
// checks made before any copy), so each is decided once.
constexpr int kMaxThreads = 1024;
constexpr int kMaxNmsRadius = 1000;
constexpr Index kMaxMapPixels = INT_MAX / 4;

enum class Kind { kFloat32, kBinary };

struct Map2D {
  Index h, w;
  const void* data;
};

std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
  s << (a.ndim() == 1 ? ",)" : ")");
  return s.str();
}

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// Checks `a` is a usable 2-D map of the given kind and returns its geometry.
// `where` is "function: argument" for the messages.
Map2D check_map(const py::array& a, const char* where, Kind kind) {
  if (a.ndim() != 2)
    throw py::value_error(std::string(where) + " must be a 2-D array, got shape " + shape_str(a));
  const py::dtype dt = a.dtype();
  if (kind == Kind::kFloat32) {
    if (!dt.equal(py::dtype::of<float>()))
      throw py::type_error(std::string(where) + " must be float32 in native byte order, got " +
                           dtype_str(a));
  } else if (!dt.equal(py::dtype::of<bool>()) && !dt.equal(py::dtype::of<std::uint8_t>())) {
    throw py::type_error(std::string(where) + " must be bool or uint8, got " + dtype_str(a));
  }
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(where) +
                          " must be C-contiguous (use numpy.ascontiguousarray)");
  if (reinterpret_cast<std::uintptr_t>(a.data()) % static_cast<std::uintptr_t>(dt.itemsize()) != 0)
    throw py::value_error(std::string(where) + " is not aligned in memory (copy it first)");
  if (a.size() == 0)
    throw py::value_error(std::string(where) + " is empty, shape " + shape_str(a));
  if (a.size() > kMaxMapPixels)
    throw py::value_error(std::string(where) + " is too large, shape " + shape_str(a));
  return {static_cast<Index>(a.shape(0)), static_cast<Index>(a.shape(1)), a.data()};
}

void check_finite(const Map2D& m, const char* where) {
  const float* p = static_cast<const float*>(m.data);
  Index bad = -1;
  {
    py::gil_scoped_release release;
    for (Index i = 0; i < m.h * m.w; ++i)
      if (!std::isfinite(p[i])) {
        bad = i;
        break;
      }
  }
  if (bad >= 0) {
    std::ostringstream s;
    s << where << " contains NaN or infinite values (first at row " << bad / m.w << ", column "
      << bad % m.w << ")";
    throw py::value_error(s.str());
  }
}

Map2D check_float_map(const py::array& a, const char* where) {
  const Map2D m = check_map(a, where, Kind::kFloat32);
  check_finite(m, where);
  return m;
}

void check_finite_param(double v, const char* where) {
  if (!std::isfinite(v)) throw py::value_error(std::string(where) + " must be finite");
}

template <typename T>
py::array_t<T> new_map(const Map2D& m) {
  return py::array_t<T>({static_cast<py::ssize_t>(m.h), static_cast<py::ssize_t>(m.w)});
}

int check_threads(int threads, const char* fn) {
  if (threads < 0 || threads > kMaxThreads)
    throw py::value_error(std::string(fn) + ": threads must be in [0, " + std::to_string(kMaxThreads) +
                          "] (0 = all cores)");
  return threads;
}

py::array_t<float> conv_tri(const py::array& image, double r, int threads) {
  const Map2D m = check_float_map(image, "conv_tri: image");
  check_finite_param(r, "conv_tri: r");
  if (r <= 0) throw py::value_error("conv_tri: r must be > 0");
  if (r > 1 && r != std::floor(r))
    throw py::value_error("conv_tri: r must be in (0, 1] or an integer above 1");
  if (r > 10000) throw py::value_error("conv_tri: r must be at most 10000");
  if (r <= 1) {
    // The filter's weights are computed in float32, as convTri does: below ~3.5e-38,
    // 12 / r overflows and every output would be NaN.
    const float rf = static_cast<float>(r);
    const float p = 12.0f / rf / (rf + 2.0f) - 2.0f;
    if (!std::isfinite(p)) throw py::value_error("conv_tri: r must be at least 1e-37 (below it float32 overflows)");
  }
  check_threads(threads, "conv_tri");
  auto out = new_map<float>(m);
  float* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    edgesdk::conv_tri(static_cast<const float*>(m.data), o, m.h, m.w, static_cast<float>(r), threads);
  }
  return out;
}

py::array_t<float> edge_orientation(const py::array& edge, int threads) {
  const Map2D m = check_float_map(edge, "edge_orientation: edge");
  check_threads(threads, "edge_orientation");
  auto out = new_map<float>(m);
  float* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    edgesdk::edge_orientation(static_cast<const float*>(m.data), o, m.h, m.w, threads);
  }
  return out;
}

edgesdk::NmsParams nms_params(int r, int s, double mult, const char* fn) {
  if (r < 0 || r > kMaxNmsRadius)
    throw py::value_error(std::string(fn) + ": r must be in [0, " + std::to_string(kMaxNmsRadius) + "]");
  if (s < 0) throw py::value_error(std::string(fn) + ": s must be >= 0");
  if (!std::isfinite(mult) || mult <= 0)
    throw py::value_error(std::string(fn) + ": m must be finite and > 0");
  edgesdk::NmsParams p;
  p.r = r;
  p.s = s;
  p.m = static_cast<float>(mult);
  return p;
}

py::array_t<float> nms(const py::array& edge, int r, int s, double mult, int threads) {
  const Map2D m = check_float_map(edge, "nms: edge");
  check_threads(threads, "nms");
  const edgesdk::NmsParams p = nms_params(r, s, mult, "nms");
  auto out = new_map<float>(m);
  float* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    edgesdk::edge_nms(static_cast<const float*>(m.data), o, m.h, m.w, p, threads);
  }
  return out;
}

py::array_t<float> suppress_nonmax(const py::array& edge, const py::array& orientation, int r,
                                   int s, double mult, int threads) {
  const Map2D e = check_float_map(edge, "suppress_nonmax: edge");
  check_threads(threads, "suppress_nonmax");
  const Map2D o = check_float_map(orientation, "suppress_nonmax: orientation");
  if (e.h != o.h || e.w != o.w)
    throw py::value_error("suppress_nonmax: edge has shape " + shape_str(edge) +
                          " but orientation has shape " + shape_str(orientation));
  const edgesdk::NmsParams p = nms_params(r, s, mult, "suppress_nonmax");
  auto out = new_map<float>(e);
  float* dst = out.mutable_data();
  {
    py::gil_scoped_release release;
    edgesdk::suppress_nonmax(static_cast<const float*>(e.data), static_cast<const float*>(o.data),
                             dst, e.h, e.w, p, threads);
  }
  return out;
}

py::array_t<bool> thin(const py::array& bw, int max_iter) {
  const Map2D m = check_map(bw, "thin: image", Kind::kBinary);
  auto out = new_map<bool>(m);
  // numpy bool is one byte holding 0/1, so the kernel can work in the output.
  static_assert(sizeof(bool) == 1, "bool must be one byte");
  std::uint8_t* o = reinterpret_cast<std::uint8_t*>(out.mutable_data());
  {
    py::gil_scoped_release release;
    const std::uint8_t* src = static_cast<const std::uint8_t*>(m.data);
    for (Index i = 0; i < m.h * m.w; ++i) o[i] = src[i] != 0;
    edgesdk::thin(o, m.h, m.w, max_iter);
  }
  return out;
}

py::tuple correspond_pixels(const py::array& bmap1, const py::array& bmap2, double max_dist,
                            double outlier_cost) {
  const Map2D a = check_map(bmap1, "correspond_pixels: bmap1", Kind::kBinary);
  const Map2D b = check_map(bmap2, "correspond_pixels: bmap2", Kind::kBinary);
  if (a.h != b.h || a.w != b.w)
    throw py::value_error("correspond_pixels: bmap1 has shape " + shape_str(bmap1) +
                          " but bmap2 has shape " + shape_str(bmap2));
  check_finite_param(max_dist, "correspond_pixels: max_dist");
  check_finite_param(outlier_cost, "correspond_pixels: outlier_cost");
  if (max_dist < 0 || max_dist > 1)
    throw py::value_error("correspond_pixels: max_dist must be in [0, 1] (a fraction of the diagonal)");
  if (outlier_cost <= max_dist)
    throw py::value_error("correspond_pixels: outlier_cost must exceed max_dist");
  if (outlier_cost > 1e6) throw py::value_error("correspond_pixels: outlier_cost must be <= 1e6");
  auto m1 = new_map<std::int64_t>(a);
  auto m2 = new_map<std::int64_t>(a);
  std::int64_t* p1 = m1.mutable_data();
  std::int64_t* p2 = m2.mutable_data();
  edgesdk::MatchStats stats;
  {
    py::gil_scoped_release release;
    stats = edgesdk::correspond_pixels(static_cast<const std::uint8_t*>(a.data),
                                       static_cast<const std::uint8_t*>(b.data), a.h, a.w,
                                       max_dist, outlier_cost, p1, p2);
  }
  return py::make_tuple(m1, m2, stats.cost);
}

constexpr Index kMaxThresholds = 100000;
constexpr Index kMaxAnnotators = 1000;

py::tuple boundary_counts(const py::array& pb, const py::list& gts, const py::array& thresholds, bool thin_maps,
                          double max_dist, double outlier_cost) {
  if (pb.ndim() != 2 || !pb.dtype().equal(py::dtype::of<double>()))
    throw py::type_error("boundary_counts: pb must be a 2-D float64 array, got " + dtype_str(pb) + " " +
                         shape_str(pb));
  if (!(pb.flags() & py::array::c_style))
    throw py::value_error("boundary_counts: pb must be C-contiguous (use numpy.ascontiguousarray)");
  if (reinterpret_cast<std::uintptr_t>(pb.data()) % sizeof(double) != 0)
    throw py::value_error("boundary_counts: pb is not aligned in memory (copy it first)");
  if (pb.size() == 0) throw py::value_error("boundary_counts: pb is empty, shape " + shape_str(pb));
  if (pb.size() > kMaxMapPixels) throw py::value_error("boundary_counts: pb is too large, shape " + shape_str(pb));
  const Index h = static_cast<Index>(pb.shape(0)), w = static_cast<Index>(pb.shape(1));
  const double* p = static_cast<const double*>(pb.data());
  for (Index i = 0; i < h * w; ++i)
    if (!std::isfinite(p[i])) throw py::value_error("boundary_counts: pb contains NaN or infinite values");
  if (gts.empty()) throw py::value_error("boundary_counts: at least one ground-truth map is needed");
  if (static_cast<Index>(gts.size()) > kMaxAnnotators)
    throw py::value_error("boundary_counts: at most " + std::to_string(kMaxAnnotators) + " ground-truth maps");
  std::vector<py::array> held;  // keeps each map alive (and its view valid) while the GIL is released
  std::vector<const std::uint8_t*> maps;
  for (const py::handle g : gts) {
    if (!py::isinstance<py::array>(g)) throw py::type_error("boundary_counts: each ground truth must be an array");
    const py::array a = py::reinterpret_borrow<py::array>(g);
    const Map2D m = check_map(a, "boundary_counts: ground truth", Kind::kBinary);
    if (m.h != h || m.w != w)
      throw py::value_error("boundary_counts: a ground-truth map has shape " + shape_str(a) + " but pb has " +
                            shape_str(pb));
    held.push_back(a);
    maps.push_back(static_cast<const std::uint8_t*>(m.data));
  }
  if (thresholds.ndim() != 1 || !thresholds.dtype().equal(py::dtype::of<double>()))
    throw py::type_error("boundary_counts: thresholds must be a 1-D float64 array");
  if (thresholds.size() == 0 || thresholds.size() > kMaxThresholds)
    throw py::value_error("boundary_counts: between 1 and " + std::to_string(kMaxThresholds) + " thresholds");
  std::vector<double> ts(static_cast<size_t>(thresholds.size()));
  {
    const auto t = thresholds.unchecked<double, 1>();
    for (py::ssize_t i = 0; i < thresholds.size(); ++i) {
      ts[static_cast<size_t>(i)] = t(i);
      if (!std::isfinite(t(i))) throw py::value_error("boundary_counts: thresholds must be finite");
    }
  }
  check_finite_param(max_dist, "boundary_counts: max_dist");
  check_finite_param(outlier_cost, "boundary_counts: outlier_cost");
  if (max_dist < 0 || max_dist > 1)
    throw py::value_error("boundary_counts: max_dist must be in [0, 1] (a fraction of the diagonal)");
  if (outlier_cost <= max_dist) throw py::value_error("boundary_counts: outlier_cost must exceed max_dist");
  if (outlier_cost > 1e6) throw py::value_error("boundary_counts: outlier_cost must be <= 1e6");
  const py::ssize_t n = static_cast<py::ssize_t>(ts.size());
  py::array_t<std::int64_t> cnt_r(n), sum_r(n), cnt_p(n), sum_p(n);
  std::int64_t *cr = cnt_r.mutable_data(), *sr = sum_r.mutable_data(), *cp = cnt_p.mutable_data(),
               *sp = sum_p.mutable_data();
  {
    py::gil_scoped_release release;
    edgesdk::boundary_counts(p, maps, h, w, ts, thin_maps, max_dist, outlier_cost, cr, sr, cp, sp);
  }
  return py::make_tuple(cnt_r, sum_r, cnt_p, sum_p);
}

py::tuple edges(const py::array& edge, bool use_nms, int r, int s, double mult, double low, double high,
                bool thin_edges, int threads, Index band_rows) {
  const Map2D m = check_float_map(edge, "edges: probability");
  check_threads(threads, "edges");
  check_finite_param(low, "edges: low");
  check_finite_param(high, "edges: high");
  if (low > high) throw py::value_error("edges: low must be <= high");
  edgesdk::NmsParams p;
  if (use_nms) p = nms_params(r, s, mult, "edges");
  auto out = new_map<bool>(m);
  std::uint8_t* o = reinterpret_cast<std::uint8_t*>(out.mutable_data());
  edgesdk::EdgeTimings t;
  {
    py::gil_scoped_release release;
    t = edgesdk::edge_map(static_cast<const float*>(m.data), o, m.h, m.w, use_nms ? &p : nullptr,
                          static_cast<float>(low), static_cast<float>(high), thin_edges, threads, band_rows);
  }
  return py::make_tuple(out, py::make_tuple(t.nms, t.threshold, t.thin));
}

py::array_t<bool> hysteresis(const py::array& edge, double low, double high) {
  const Map2D m = check_float_map(edge, "hysteresis: edge");
  check_finite_param(low, "hysteresis: low");
  check_finite_param(high, "hysteresis: high");
  if (low > high) throw py::value_error("hysteresis: low must be <= high");
  auto out = new_map<bool>(m);
  std::uint8_t* o = reinterpret_cast<std::uint8_t*>(out.mutable_data());
  {
    py::gil_scoped_release release;
    edgesdk::hysteresis(static_cast<const float*>(m.data), o, m.h, m.w, static_cast<float>(low),
                        static_cast<float>(high));
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_native, mod) {
  mod.doc() = "edgesdk C++ kernels; use edgesdk.postprocess, which documents them.";
  mod.def("conv_tri", &conv_tri, py::arg("image"), py::arg("r"), py::arg("threads"));
  mod.def("edge_orientation", &edge_orientation, py::arg("edge"), py::arg("threads"));
  mod.def("suppress_nonmax", &suppress_nonmax, py::arg("edge"), py::arg("orientation"),
          py::arg("r"), py::arg("s"), py::arg("m"), py::arg("threads"));
  mod.def("nms", &nms, py::arg("edge"), py::arg("r"), py::arg("s"), py::arg("m"),
          py::arg("threads"));
  mod.def("thin", &thin, py::arg("image"), py::arg("max_iter"));
  mod.def("correspond_pixels", &correspond_pixels, py::arg("bmap1"), py::arg("bmap2"),
          py::arg("max_dist"), py::arg("outlier_cost"));
  mod.def("boundary_counts", &boundary_counts, py::arg("pb"), py::arg("gts"), py::arg("thresholds"),
          py::arg("thin"), py::arg("max_dist"), py::arg("outlier_cost"));
  mod.def("hysteresis", &hysteresis, py::arg("edge"), py::arg("low"), py::arg("high"));
  mod.def("edges", &edges, py::arg("probability"), py::arg("use_nms"), py::arg("r"), py::arg("s"),
          py::arg("m"), py::arg("low"), py::arg("high"), py::arg("thin"), py::arg("threads"),
          py::arg("band_rows"));
  mod.attr("MAX_THREADS") = kMaxThreads;
  mod.attr("MAX_NMS_RADIUS") = kMaxNmsRadius;
  mod.attr("MAX_MAP_PIXELS") = kMaxMapPixels;
  mod.attr("MAX_MATCH_PAIRS") = edgesdk::kMaxMatchPairs;
}

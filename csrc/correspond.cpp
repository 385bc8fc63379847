#include "correspond.hpp"

#include "thin.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace edgesdk {
namespace {

using Index = std::ptrdiff_t;
using Cost = std::int64_t;

// match.cc turns distances into integers for CSA with this multiplier; the
// rounding decides ties between near-equal distances, so it is kept.
constexpr double kMultiplier = 100.0;
constexpr Cost kInf = std::numeric_limits<Cost>::max() / 4;

struct Offset {
  Index dy, dx;
  Cost cost;
};

// A sparse graph in compressed rows: the edges of node i are
// edges[start[i], start[i + 1]). Edge costs fit 32 bits: displacements are bounded
// (kMaxMatchOffsets), so a cost is at most 102300 (see RowOrder).
struct Edge {
  int target;
  std::int32_t cost;
};
struct Csr {
  std::vector<int> start;
  std::vector<Edge> edges;
};

int find_root(std::vector<int>& parent, int i) {
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

// Minimum-cost assignment of every row of a sparse rectangular problem in which
// row r may also take its private outlier column at cost `outlier`.
// Shortest augmenting paths, one row at a time: Dijkstra over reduced costs
// cost - row_pot - col_pot, which stay >= 0 (dual feasibility) throughout, so
// each augmentation keeps the partial assignment optimal. Columns are settled in
// order of (distance, column id), the first free one ends the search. Buffers are
// kept between calls; each call only touches what its searches reach.
//
// Columns keep the ids the caller gives them (only their order matters), so a component
// of a larger graph is solved in place. Row r's outlier column comes after every real
// column, and after the outlier columns of the rows before r.
//
// Outlier columns stay out of the heap. Row r's is reachable from row r alone,
// and a row other than the search's start is reached through its matched column only;
// so a row matched to its outlier column is never reached again, and every outlier
// column a search meets is free, never settled before (potential 0), and would end the
// search when popped. The search therefore keeps just the cheapest of them, by the same
// (distance, id) order (its ids exceed every real column's), and pops it when no real
// column comes first: the same path as with them in the heap.
class RowAssignment {
 public:
  // Makes room for column ids below n.
  void reserve_columns(size_t n) {
    if (cols_.size() < n) cols_.resize(n);
  }

  // Row k (in order of assignment) has the edges of node rows[k] of g, whose targets are
  // column ids (below the size reserve_columns was given); cols lists every column they
  // reach. Fills row_match (size of rows) with a column id, or kOutlier.
  static constexpr int kOutlier = -1;
  void solve(const std::vector<int>& rows, const std::vector<int>& cols, const Csr& g, Cost outlier,
             std::vector<int>& row_match) {
    const int nr = static_cast<int>(rows.size());
    row_pot_.assign(static_cast<size_t>(nr), 0);
    row_dist_.assign(static_cast<size_t>(nr), 0);
    row_match.assign(static_cast<size_t>(nr), kOutlier);
    rows_ = rows.data();

    for (int s = 0; s < nr; ++s) {
      if (take_cheapest_if_free(s, g, outlier, row_match)) continue;
      heap_.clear();
      touched_.clear();
      rows_seen_.clear();
      out_dist_ = kInf;
      out_row_ = -1;
      row_dist_[s] = 0;
      rows_seen_.push_back(s);
      relax(s, 0, g, outlier);
      int end;
      Cost reach;
      for (;;) {
        // The row's own outlier column is free, so a path always exists.
        if (heap_.empty() || heap_[0].dist > out_dist_) {
          end = kOutlier;
          reach = out_dist_;
          break;
        }
        const int c = heap_[0].col;
        const Cost d = heap_[0].dist;
        pop();
        Column& col = cols_[c];
        col.done = 1;
        if (col.match < 0) {
          end = c;
          reach = d;
          break;
        }
        const int r = col.match;  // the matched edge is tight: same distance
        row_dist_[r] = d;
        rows_seen_.push_back(r);
        relax(r, d, g, outlier);
      }
      // Potentials: shift what the search settled so that reduced costs stay
      // non-negative and the new path's edges become tight (an outlier column
      // ending it keeps its potential: its distance is the reach).
      for (const int r : rows_seen_) row_pot_[r] += reach - row_dist_[r];
      for (const int c : touched_) {
        Column& col = cols_[c];
        if (col.done) col.pot -= reach - col.dist;
      }
      int c = end;
      if (end == kOutlier) {
        const int r = out_row_;
        c = r == s ? -1 : row_match[r];
        row_match[r] = kOutlier;
      }
      while (c >= 0) {
        const int r = cols_[c].pred;
        const int previous = row_match[r];
        row_match[r] = c;
        cols_[c].match = r;
        c = r == s ? -1 : previous;
      }
      for (const Entry& e : heap_) cols_[e.col].heap_pos = -1;
      heap_.clear();
      for (const int t : touched_) {
        cols_[t].dist = kInf;
        cols_[t].done = 0;
      }
    }
    for (const int c : cols) cols_[c] = Column{};  // as reserve_columns left them
  }

 private:
  struct Column {
    Cost pot = 0;
    Cost dist = kInf;
    int match = -1;
    int pred = -1;
    int heap_pos = -1;
    int done = 0;
  };
  struct Entry {
    Cost dist;
    int col;
  };

  // Every path from row s starts with one of its edges and reduced costs are
  // >= 0, so when the cheapest edge (lowest column on ties, as the heap would
  // pop it) ends at a free column, that edge alone is a shortest augmenting
  // path: assign it without a search. Most rows end here.
  bool take_cheapest_if_free(int s, const Csr& g, Cost outlier, std::vector<int>& row_match) {
    // Row s has not been searched from yet: its potential is 0, and so is its outlier column's.
    constexpr int kOutlierId = std::numeric_limits<int>::max();  // after every real column
    int best = kOutlierId;
    Cost best_cost = outlier;
    const int node = rows_[s];
    const Column* cols = cols_.data();
    const Edge* const end = g.edges.data() + g.start[node + 1];
    for (const Edge* e = g.edges.data() + g.start[node]; e != end; ++e) {
      const int c = e->target;
      const Cost rc = e->cost - cols[c].pot;
      if (rc < best_cost || (rc == best_cost && c < best)) {
        best = c;
        best_cost = rc;
      }
    }
    if (best != kOutlierId) {
      if (cols_[best].match >= 0) return false;
      cols_[best].match = s;
    }
    // The search would settle s at 0 and `best` at best_cost; the potential
    // update keeps the new edge tight.
    row_pot_[s] += best_cost;
    row_match[s] = best == kOutlierId ? kOutlier : best;
    return true;
  }

  void relax(int r, Cost dr, const Csr& g, Cost outlier) {
    const Cost base = dr - row_pot_[r];
    const int node = rows_[r];
    // Raw pointers: the compiler cannot tell that the pushes below leave the graph and the columns alone.
    Column* const cols = cols_.data();
    const Edge* const end = g.edges.data() + g.start[node + 1];
    for (const Edge* e = g.edges.data() + g.start[node]; e != end; ++e) {
      const int c = e->target;
      Column& col = cols[c];
      // A settled column has a distance no larger than dr, and reduced costs are >= 0: no need to test it.
      const Cost nd = base + e->cost - col.pot;
      if (nd < col.dist) {
        const bool fresh = col.dist == kInf;
        col.dist = nd;
        col.pred = r;
        if (fresh) {
          touched_.push_back(c);
          push(c, nd);
        } else {
          decrease(c, nd);
        }
      }
    }
    const Cost nd = base + outlier;
    if (nd < out_dist_ || (nd == out_dist_ && r < out_row_)) {
      out_dist_ = nd;
      out_row_ = r;
    }
  }

  // An indexed 4-ary min-heap of columns keyed by (distance, column): each column is in it at
  // most once and its key only decreases. It pops columns in exactly the order a heap of
  // (distance, column) entries with stale ones skipped would, with fewer entries to move.
  static bool before(const Entry& a, const Entry& b) {
    return a.dist < b.dist || (a.dist == b.dist && a.col < b.col);
  }

  void push(int c, Cost d) {
    heap_.push_back({d, c});
    sift_up(heap_.size() - 1, {d, c});
  }

  void decrease(int c, Cost d) { sift_up(static_cast<size_t>(cols_[c].heap_pos), {d, c}); }

  void sift_up(size_t i, const Entry e) {
    Entry* const heap = heap_.data();
    Column* const cols = cols_.data();
    while (i > 0) {
      const size_t up = (i - 1) / 4;
      if (!before(e, heap[up])) break;
      heap[i] = heap[up];
      cols[heap[i].col].heap_pos = static_cast<int>(i);
      i = up;
    }
    heap[i] = e;
    cols[e.col].heap_pos = static_cast<int>(i);
  }

  void pop() {
    Column* const cols = cols_.data();
    cols[heap_[0].col].heap_pos = -1;
    const Entry last = heap_.back();
    heap_.pop_back();
    const size_t n = heap_.size();
    if (n == 0) return;
    Entry* const heap = heap_.data();
    size_t i = 0;
    for (;;) {
      const size_t first = 4 * i + 1;
      if (first >= n) break;
      size_t best = first;
      for (size_t k = first + 1; k < std::min(first + 4, n); ++k)
        if (before(heap[k], heap[best])) best = k;
      if (!before(heap[best], last)) break;
      heap[i] = heap[best];
      cols[heap[i].col].heap_pos = static_cast<int>(i);
      i = best;
    }
    heap[i] = last;
    cols[last.col].heap_pos = static_cast<int>(i);
  }

  std::vector<Cost> row_pot_, row_dist_;
  std::vector<Column> cols_;
  std::vector<int> touched_, rows_seen_;
  std::vector<Entry> heap_;
  const int* rows_ = nullptr;  // the solve's rows
  Cost out_dist_ = kInf;  // the cheapest outlier column met by the search: its distance and row
  int out_row_ = -1;
};

// near[p] = 1 when the (2 r + 1)^2 box around p holds a nonzero pixel of b:
// running counts along rows, then along columns.
std::vector<std::uint8_t> box_any(const std::uint8_t* b, Index h, Index w, Index r) {
  std::vector<std::int32_t> rows(static_cast<size_t>(h * w));
  for (Index y = 0; y < h; ++y) {
    const std::uint8_t* src = b + y * w;
    std::int32_t* dst = rows.data() + y * w;
    std::int32_t run = 0;
    for (Index x = 0; x < std::min(r, w); ++x) run += src[x] != 0;
    for (Index x = 0; x < w; ++x) {
      if (x + r < w) run += src[x + r] != 0;
      dst[x] = run;
      if (x - r >= 0) run -= src[x - r] != 0;
    }
  }
  std::vector<std::uint8_t> near(static_cast<size_t>(h * w));
  std::vector<std::int32_t> run(static_cast<size_t>(w), 0);
  for (Index y = 0; y < std::min(r, h); ++y)
    for (Index x = 0; x < w; ++x) run[x] += rows[y * w + x];
  for (Index y = 0; y < h; ++y) {
    if (y + r < h)
      for (Index x = 0; x < w; ++x) run[x] += rows[(y + r) * w + x];
    for (Index x = 0; x < w; ++x) near[y * w + x] = run[x] > 0;
    if (y - r >= 0)
      for (Index x = 0; x < w; ++x) run[x] -= rows[(y - r) * w + x];
  }
  return near;
}

// The displacements within max_dist of an h x w image, cheapest first, and the costs of
// correspondPixels.cc (both distances relative to the image diagonal).
struct MatchGeometry {
  std::vector<Offset> offsets;
  Index radius = 0;
  Cost outlier = 0;
  double outlier_px = 0;
};

MatchGeometry match_geometry(Index h, Index w, double max_dist, double outlier_cost) {
  MatchGeometry g;
  const double diag = std::sqrt(static_cast<double>(h) * h + static_cast<double>(w) * w);
  const double max_px = max_dist * diag;
  g.outlier_px = outlier_cost * diag;
  g.outlier = static_cast<Cost>(std::ceil(g.outlier_px * kMultiplier));
  g.radius = static_cast<Index>(std::ceil(max_px));
  if ((2 * g.radius + 1) * (2 * g.radius + 1) > kMaxMatchOffsets)
    throw std::invalid_argument("max_dist reaches " + std::to_string(g.radius) +
                                " pixels on this image, too far to match (at most " +
                                std::to_string(kMaxMatchOffsets) + " displacements)");
  for (Index dy = -g.radius; dy <= g.radius; ++dy) {
    for (Index dx = -g.radius; dx <= g.radius; ++dx) {
      const double d2 = static_cast<double>(dx * dx + dy * dy);
      if (d2 > max_px * max_px) continue;
      g.offsets.push_back({dy, dx, static_cast<Cost>(std::llrint(std::sqrt(d2) * kMultiplier))});
    }
  }
  std::sort(g.offsets.begin(), g.offsets.end(), [](const Offset& a, const Offset& b) {
    return std::tie(a.cost, a.dy, a.dx) < std::tie(b.cost, b.dy, b.dx);
  });
  return g;
}

[[noreturn]] void too_many_pairs() {
  throw std::invalid_argument(
      "the maps have more than " + std::to_string(kMaxMatchPairs) +
      " pixel pairs within max_dist of each other, too many to match in bounded memory "
      "(thin them, or lower max_dist)");
}

// Matches boundary maps against one fixed map (an annotator's).
//
// The graph, its components and their assignments are exactly those of the original
// correspond_pixels: left nodes (the other map's pixels) in raster order, right nodes (the
// fixed map's) in order of first sight, edges in order of displacement. A component is
// determined by its left pixels (a pixel's candidates, the fixed map's pixels within max_dist,
// depend on the pixel alone), and its node order and assignment depend on its own nodes only.
// A threshold sweep matches a slowly changing map against the same annotator, so two things
// carry over from one step to the next:
//  * each pixel's candidates, cheapest first;
//  * the components and their matches. A component none of whose left pixels left the map,
//    and none of whose right pixels is a candidate of a pixel that joined it, is a component
//    of the new map too, with the same matches; only the other components are rebuilt and solved.
class FixedMapMatcher {
 public:
  FixedMapMatcher(const std::uint8_t* fixed, Index h, Index w, const MatchGeometry& geo)
      : fixed_(fixed), h_(h), w_(w), geo_(&geo), near_(box_any(fixed, h, w, geo.radius)) {}

  // Matches `pixels` (raster order) against the fixed map. pool_of[p] is pixel p's id in the
  // caller's pool of pixels (pool_size ids), under which its candidates are kept. `id` is a
  // caller's buffer of h * w entries, all -1, left so. Calls pair(p, q) for every matched
  // pair; returns how many there are.
  template <typename Pair>
  std::int64_t match(const std::vector<Index>& pixels, const std::vector<int>& pool_of, int pool_size,
                     std::vector<int>& id, Pair pair) {
    bound_pairs(pixels, pool_of, pool_size, 0);
    build(pixels, pool_of, id);
    return solve_components(pair, nullptr);
  }

  // One step of a sweep: the map is now `present` (h * w, nonzero = boundary pixel), whose
  // pixels are `pixels` (raster order), `added` (raster order) those the previous step's map
  // lacked. pool_of, pool_size and id as in match(); `mark` is a caller's buffer of h * w
  // entries, none of them stamp or stamp + 1. Calls cover(p, -1) for each match of the
  // previous step that is not kept, then cover(p, +1) for each new one (p: the map's pixel).
  template <typename Cover>
  void step(const std::uint8_t* present, const std::vector<Index>& pixels, const std::vector<Index>& added,
            const std::vector<int>& pool_of, int pool_size, std::vector<int>& id,
            std::vector<std::uint32_t>& mark, std::uint32_t stamp, Cover cover) {
    // Right pixels that a new pixel reaches. Computed here, not taken from the candidate cache:
    // bound_pairs must see this step's pixels before the cache grows by theirs.
    bool marked = false;
    if (kept_.size() > 0)
      for (const Index p : added)
        if (near_[p])
          each_candidate(p, [&](Index q, Cost) {
            mark[q] = stamp;
            marked = true;
          });
    next_.clear();
    redo_.clear();
    std::int64_t kept_edges = 0;
    for (size_t c = 0; c < kept_.size(); ++c) {
      bool changed = false;
      for (size_t k = kept_.left_start(c); k < kept_.left_end[c] && !changed; ++k) changed = !present[kept_.lefts[k]];
      for (size_t k = kept_.right_start(c); k < kept_.right_end[c] && marked && !changed; ++k)
        changed = mark[kept_.rights[k]] == stamp;
      if (!changed) {
        next_.copy(kept_, c);
        kept_edges += kept_.edges[c];
        continue;
      }
      for (size_t k = kept_.matched_start(c); k < kept_.matched_end[c]; ++k) cover(kept_.matched[k], -1);
      for (size_t k = kept_.left_start(c); k < kept_.left_end[c]; ++k)
        if (present[kept_.lefts[k]]) redo_.push_back(kept_.lefts[k]);
    }
    // The pixels to match again, in raster order: those of the changed components and the new ones.
    const std::uint32_t again = stamp + 1;
    for (const Index p : redo_) mark[p] = again;
    for (const Index p : added) mark[p] = again;
    redo_.clear();
    for (const Index p : pixels)
      if (mark[p] == again) redo_.push_back(p);
    if (!redo_.empty()) {
      bound_pairs(redo_, pool_of, pool_size, kept_edges);
      build(redo_, pool_of, id);
      solve_components([&cover](Index p, Index) { cover(p, +1); }, &next_);
    }
    std::swap(kept_, next_);
  }

  // Pairs matched by the last step: one matched left pixel each.
  std::int64_t matches() const { return static_cast<std::int64_t>(kept_.matched.size()); }

 private:
  struct Span {
    std::int64_t start = -1;  // -1: not computed yet
    std::int64_t len = 0;
  };

  // Components as pixel lists, one after another: component c holds lefts
  // [left_end[c - 1], left_end[c]) (raster order), likewise its right pixels and its matched
  // left pixels, and edges[c] candidate pairs.
  struct Components {
    std::vector<Index> lefts, rights, matched;
    std::vector<size_t> left_end, right_end, matched_end;
    std::vector<std::int64_t> edges;
    size_t size() const { return edges.size(); }
    size_t left_start(size_t c) const { return c ? left_end[c - 1] : 0; }
    size_t right_start(size_t c) const { return c ? right_end[c - 1] : 0; }
    size_t matched_start(size_t c) const { return c ? matched_end[c - 1] : 0; }
    void clear() {
      lefts.clear();
      rights.clear();
      matched.clear();
      left_end.clear();
      right_end.clear();
      matched_end.clear();
      edges.clear();
    }
    void close(std::int64_t n_edges) {
      left_end.push_back(lefts.size());
      right_end.push_back(rights.size());
      matched_end.push_back(matched.size());
      edges.push_back(n_edges);
    }
    void copy(const Components& from, size_t c) {
      lefts.insert(lefts.end(), from.lefts.begin() + from.left_start(c), from.lefts.begin() + from.left_end[c]);
      rights.insert(rights.end(), from.rights.begin() + from.right_start(c), from.rights.begin() + from.right_end[c]);
      matched.insert(matched.end(), from.matched.begin() + from.matched_start(c),
                     from.matched.begin() + from.matched_end[c]);
      close(from.edges[c]);
    }
  };

  // Refuses a graph that would pass kMaxMatchPairs (`base` pairs kept, plus those of `pixels`)
  // before building any of it, as the original did, and keeps the candidate cache within that
  // bound too: when the candidates of `pixels` might not fit beside it, the cache is dropped
  // (and refilled as needed).
  void bound_pairs(const std::vector<Index>& pixels, const std::vector<int>& pool_of, int pool_size,
                   std::int64_t base) {
    if (static_cast<int>(spans_.size()) < pool_size) spans_.resize(static_cast<size_t>(pool_size));
    const std::int64_t n_offsets = static_cast<std::int64_t>(geo_->offsets.size());
    std::int64_t known = base, unknown = 0;
    for (const Index p : pixels) {
      if (!near_[p]) continue;
      const Span& c = spans_[pool_of[p]];
      if (c.start >= 0)
        known += c.len;
      else
        ++unknown;
    }
    if (known + unknown * n_offsets > kMaxMatchPairs) {
      std::int64_t pairs = known;
      for (size_t i = 0; i < pixels.size() && pairs <= kMaxMatchPairs; ++i)
        if (near_[pixels[i]] && spans_[pool_of[pixels[i]]].start < 0) pairs += count_candidates(pixels[i]);
      if (pairs > kMaxMatchPairs) too_many_pairs();
    }
    if (static_cast<std::int64_t>(cand_q_.size()) + unknown * n_offsets > kMaxMatchPairs) {
      std::fill(spans_.begin(), spans_.end(), Span{});
      cand_q_.clear();
      cand_cost_.clear();
    }
  }

  template <typename Visit>
  void each_candidate(Index p, Visit visit) const {
    const Index y = p / w_, x = p % w_, r = geo_->radius;
    const bool inner = y >= r && y < h_ - r && x >= r && x < w_ - r;
    for (const Offset& o : geo_->offsets) {
      if (!inner) {
        const Index yy = y + o.dy, xx = x + o.dx;
        if (yy < 0 || yy >= h_ || xx < 0 || xx >= w_) continue;
      }
      const Index q = p + o.dy * w_ + o.dx;
      if (fixed_[q]) visit(q, o.cost);
    }
  }

  std::int64_t count_candidates(Index p) const {
    std::int64_t n = 0;
    each_candidate(p, [&n](Index, Cost) { ++n; });
    return n;
  }

  Span candidates(Index p, int pool_id) {
    Span& c = spans_[pool_id];
    if (c.start < 0) {
      c.start = static_cast<std::int64_t>(cand_q_.size());
      each_candidate(p, [this](Index q, Cost cost) {
        cand_q_.push_back(q);
        cand_cost_.push_back(cost);
      });
      c.len = static_cast<std::int64_t>(cand_q_.size()) - c.start;
    }
    return c;
  }

  // The graph of `pixels`: left nodes, the pixels with at least one candidate; right nodes in
  // order of first sight.
  void build(const std::vector<Index>& pixels, const std::vector<int>& pool_of, std::vector<int>& id) {
    pix1_.clear();
    pix2_.clear();
    left_.start.assign(1, 0);
    left_.edges.clear();
    for (const Index p : pixels) {
      if (!near_[p]) continue;
      const Span c = candidates(p, pool_of[p]);
      if (c.len == 0) continue;
      pix1_.push_back(p);
      const Index* const qs = cand_q_.data() + c.start;
      const Cost* const costs = cand_cost_.data() + c.start;
      for (std::int64_t k = 0; k < c.len; ++k) {
        int& right = id[static_cast<size_t>(qs[k])];
        if (right < 0) {
          right = static_cast<int>(pix2_.size());
          pix2_.push_back(qs[k]);
        }
        left_.edges.push_back({right, static_cast<std::int32_t>(costs[k])});
      }
      left_.start.push_back(static_cast<int>(left_.edges.size()));
    }
    for (const Index q : pix2_) id[q] = -1;
  }

  // Solves each component of the graph build() made; calls pair(p, q) for every matched pair,
  // appends the components to *out when given, and returns how many pairs there are.
  template <typename Pair>
  std::int64_t solve_components(Pair pair, Components* out) {
    const int n1 = static_cast<int>(pix1_.size()), n2 = static_cast<int>(pix2_.size());
    const size_t n = static_cast<size_t>(n1 + n2);
    // Connected components (right node j is n1 + j), in order of their first node.
    parent_.resize(n);
    std::iota(parent_.begin(), parent_.end(), 0);
    for (int i = 0; i < n1; ++i) {
      int a = find_root(parent_, i);  // each root is the smallest node of its set
      for (int e = left_.start[i]; e < left_.start[i + 1]; ++e) {
        const int b = find_root(parent_, n1 + left_.edges[e].target);
        if (a < b) {
          parent_[b] = a;
        } else if (b < a) {
          parent_[a] = b;
          a = b;
        }
      }
    }
    // Roots are the smallest node of their component: label them in node order.
    comp_of_.resize(n);
    int n_comp = 0;
    for (size_t v = 0; v < n; ++v) {
      const int root = find_root(parent_, static_cast<int>(v));
      comp_of_[v] = root == static_cast<int>(v) ? n_comp++ : comp_of_[static_cast<size_t>(root)];
    }
    // Members of each component, grouped (counting sort keeps node order).
    comp_start_.assign(static_cast<size_t>(n_comp) + 1, 0);
    for (const int c : comp_of_) ++comp_start_[static_cast<size_t>(c) + 1];
    std::partial_sum(comp_start_.begin(), comp_start_.end(), comp_start_.begin());
    members_.resize(n);
    fill_.assign(comp_start_.begin(), comp_start_.end() - 1);
    for (size_t v = 0; v < n; ++v) members_[static_cast<size_t>(fill_[comp_of_[v]]++)] = static_cast<int>(v);

    match1_.assign(static_cast<size_t>(n1), -1);  // left -> right node
    solver_.reserve_columns(static_cast<size_t>(std::max(n1, n2)));
    local_.resize(static_cast<size_t>(n2));
    for (int c = 0; c < n_comp; ++c) {
      lefts_.clear();
      rights_.clear();
      for (int k = comp_start_[c]; k < comp_start_[c + 1]; ++k) {
        const int v = members_[k];
        if (v < n1)
          lefts_.push_back(v);
        else
          rights_.push_back(v - n1);
      }
      // The smaller side makes the rows: fewer rows end up unmatched, and an
      // unmatched row is the one search that may sweep its whole component. Columns keep
      // their node ids, whose order is the component's node order.
      const bool rows_left = lefts_.size() <= rights_.size();
      const std::vector<int>& cols = rows_left ? rights_ : lefts_;
      // Right rows' edges: the graph transposed, each row's in order of its left nodes;
      // row k is rights_[k].
      const Csr* g = &left_;
      if (!rows_left) {
        Csr& t = transposed_;
        t.start.assign(rights_.size() + 1, 0);
        for (size_t k = 0; k < rights_.size(); ++k) local_[rights_[k]] = static_cast<int>(k);
        for (const int l : lefts_)
          for (int e = left_.start[l]; e < left_.start[l + 1]; ++e)
            ++t.start[static_cast<size_t>(local_[left_.edges[e].target]) + 1];
        std::partial_sum(t.start.begin(), t.start.end(), t.start.begin());
        t.edges.resize(static_cast<size_t>(t.start.back()));
        fill_.assign(t.start.begin(), t.start.end() - 1);
        for (const int l : lefts_)
          for (int e = left_.start[l]; e < left_.start[l + 1]; ++e)
            t.edges[static_cast<size_t>(fill_[local_[left_.edges[e].target]]++)] = {l, left_.edges[e].cost};
        g = &t;
      }
      // Any row order gives the optimum; this one keeps the searches short
      // (measured on BSDS maps: 5-6x fewer settled nodes than raster order).
      // Rows with many candidates go first, the ones whose first (for a left
      // row, cheapest) candidate is dearer first among equals, then in node order.
      // One integer per row says all three (RowOrder).
      const size_t nr = rows_left ? lefts_.size() : rights_.size();
      order_.resize(nr);
      for (size_t k = 0; k < nr; ++k) {
        const int node = rows_left ? lefts_[k] : static_cast<int>(k);
        order_[k] = RowOrder::key(g->start[node + 1] - g->start[node], g->edges[static_cast<size_t>(g->start[node])].cost,
                                  node);
      }
      std::sort(order_.begin(), order_.end());
      rows_.resize(nr);
      for (size_t k = 0; k < nr; ++k) rows_[k] = RowOrder::node(order_[k]);
      solver_.solve(rows_, cols, *g, geo_->outlier, row_match_);
      std::int64_t edges = 0;
      for (size_t k = 0; k < nr; ++k) {
        const int node = rows_[k];
        edges += g->start[node + 1] - g->start[node];
        const int col = row_match_[k];
        if (col == RowAssignment::kOutlier) continue;
        if (rows_left)
          match1_[node] = col;
        else
          match1_[col] = rights_[node];
      }
      if (out) {
        for (const int l : lefts_) {
          out->lefts.push_back(pix1_[l]);
          if (match1_[l] >= 0) out->matched.push_back(pix1_[l]);
        }
        for (const int r : rights_) out->rights.push_back(pix2_[r]);
        out->close(edges);
      }
    }
    std::int64_t matches = 0;
    for (int i = 0; i < n1; ++i) {
      if (match1_[i] < 0) continue;
      pair(pix1_[i], pix2_[match1_[i]]);
      ++matches;
    }
    return matches;
  }

  // A row's place in the order of assignment as one integer, smallest first: descending
  // degree, descending cost of the first edge, ascending node id, in fields wide enough for
  // any graph the bounds allow.
  struct RowOrder {
    static constexpr int kNodeBits = 24, kCostBits = 18, kDegreeBits = 22;
    static_assert(kMaxMatchPairs <= (std::int64_t{1} << kNodeBits), "a node id is below the pairs bound");
    // A degree is at most the number of displacements, fewer than kMaxMatchOffsets (the disc misses the
    // corners of its square).
    static_assert(kMaxMatchOffsets <= (std::int64_t{1} << kDegreeBits), "a degree fits its field");
    // Displacements fit a (2 r + 1)^2 square of kMaxMatchOffsets, so r <= 1023 and a cost (hundredths of
    // a pixel) is at most 102300.
    static_assert(102300 < (1 << kCostBits), "a cost fits its field");
    static std::uint64_t key(int degree, std::int32_t first_cost, int node) {
      constexpr std::uint64_t kDegreeMax = (std::uint64_t{1} << kDegreeBits) - 1;
      constexpr std::uint64_t kCostMax = (std::uint64_t{1} << kCostBits) - 1;
      return ((kDegreeMax - static_cast<std::uint64_t>(degree)) << (kCostBits + kNodeBits)) |
             ((kCostMax - static_cast<std::uint64_t>(first_cost)) << kNodeBits) | static_cast<std::uint64_t>(node);
    }
    static int node(std::uint64_t key) { return static_cast<int>(key & ((std::uint64_t{1} << kNodeBits) - 1)); }
  };

  const std::uint8_t* fixed_;
  Index h_, w_;
  const MatchGeometry* geo_;
  std::vector<std::uint8_t> near_;
  std::vector<Span> spans_;  // by pool id
  std::vector<Index> cand_q_;
  std::vector<Cost> cand_cost_;
  std::vector<Index> pix1_, pix2_;
  Csr left_;
  RowAssignment solver_;
  // solve_components' buffers, kept between calls.
  std::vector<int> parent_, comp_of_, comp_start_, members_, fill_, match1_, local_, lefts_, rights_, rows_,
      row_match_;
  std::vector<std::uint64_t> order_;
  Csr transposed_;
  Components kept_, next_;  // the last step's components; the next step's, while it is made
  std::vector<Index> redo_;
};

std::vector<Index> raster_pixels(const std::uint8_t* b, Index n) {
  std::vector<Index> out;
  for (Index p = 0; p < n; ++p)
    if (b[p]) out.push_back(p);
  return out;
}

}  // namespace

MatchStats correspond_pixels(const std::uint8_t* bmap1, const std::uint8_t* bmap2, Index h, Index w,
                             double max_dist, double outlier_cost, std::int64_t* m1,
                             std::int64_t* m2) {
  std::fill(m1, m1 + h * w, 0);
  std::fill(m2, m2 + h * w, 0);
  const MatchGeometry geo = match_geometry(h, w, max_dist, outlier_cost);
  FixedMapMatcher matcher(bmap2, h, w, geo);
  std::vector<int> id(static_cast<size_t>(h * w), -1);
  const std::vector<Index> pixels = raster_pixels(bmap1, h * w);
  std::vector<int> pool_of(static_cast<size_t>(h * w), -1);
  for (size_t i = 0; i < pixels.size(); ++i) pool_of[pixels[i]] = static_cast<int>(i);
  double matched_length = 0;
  MatchStats stats;
  stats.matches = matcher.match(pixels, pool_of, static_cast<int>(pixels.size()), id, [&](Index p, Index q) {
    m1[p] = q + 1;
    m2[q] = p + 1;
    const double dy = static_cast<double>(p / w - q / w), dx = static_cast<double>(p % w - q % w);
    matched_length += std::sqrt(dx * dx + dy * dy);
  });
  const std::int64_t count1 = static_cast<std::int64_t>(pixels.size());
  const std::int64_t count2 = std::count_if(bmap2, bmap2 + h * w, [](std::uint8_t v) { return v != 0; });
  // Each matched pair adds its length (half from each side in match.cc),
  // each unmatched pixel of either map the outlier cost.
  stats.cost = matched_length +
               geo.outlier_px * static_cast<double>(count1 + count2 - 2 * stats.matches);
  return stats;
}

void boundary_counts(const double* pb, const std::vector<const std::uint8_t*>& gts, Index h, Index w,
                     const std::vector<double>& thresholds, bool thin_maps, double max_dist,
                     double outlier_cost, std::int64_t* cnt_r, std::int64_t* sum_r, std::int64_t* cnt_p,
                     std::int64_t* sum_p) {
  const MatchGeometry geo = match_geometry(h, w, max_dist, outlier_cost);
  // What does not change with the threshold: each annotator's neighbourhood map and size.
  std::vector<FixedMapMatcher> matchers;
  matchers.reserve(gts.size());
  std::int64_t gt_pixels = 0;
  for (const std::uint8_t* g : gts) {
    matchers.emplace_back(g, h, w, geo);
    gt_pixels += std::count_if(g, g + h * w, [](std::uint8_t v) { return v != 0; });
  }
  const size_t n = static_cast<size_t>(h * w);
  std::vector<std::uint8_t> bmap(n), before(n, 0);  // this threshold's map, the previous one's
  std::vector<int> id(n, -1);
  std::vector<std::uint32_t> mark(n, 0);
  std::uint32_t stamp = 1;
  // Pool ids: every pixel gets one the first time a thresholded map holds it, the same for
  // every annotator and threshold, under which the matchers keep its candidates.
  std::vector<int> pool_of(n, -1);
  int pool_size = 0;
  // cover[p]: annotators matching pixel p of the current map; covered: pixels with cover > 0.
  std::vector<int> cover(n, 0);
  std::int64_t covered = 0;
  const auto count_cover = [&cover, &covered](Index p, int change) {
    int& c = cover[static_cast<size_t>(p)];
    if (change > 0 && c++ == 0) ++covered;
    if (change < 0 && --c == 0) --covered;
  };
  // above = (pb >= t), above_pixels its pixels in raster order. A higher threshold than the
  // last one only clears pixels, so the usual ascending sweep visits the full map once.
  std::vector<std::uint8_t> above(n);
  std::vector<Index> above_pixels, pixels, added;
  double last = std::numeric_limits<double>::infinity();
  for (size_t k = 0; k < thresholds.size(); ++k) {
    const double t = thresholds[k];
    if (t >= last) {
      size_t kept = 0;
      for (const Index p : above_pixels) {
        if (pb[p] >= t)
          above_pixels[kept++] = p;
        else
          above[static_cast<size_t>(p)] = 0;
      }
      above_pixels.resize(kept);
    } else {
      for (Index i = 0; i < h * w; ++i) above[static_cast<size_t>(i)] = pb[i] >= t;
      above_pixels = raster_pixels(above.data(), h * w);
    }
    last = t;
    std::copy(above.begin(), above.end(), bmap.begin());
    pixels.clear();
    if (thin_maps) {
      thin_listed(bmap.data(), h, w, above_pixels.data(), above_pixels.size(), -1);  // removes pixels only
      for (const Index p : above_pixels)
        if (bmap[static_cast<size_t>(p)]) pixels.push_back(p);
    } else {
      pixels = above_pixels;
    }
    added.clear();
    for (const Index p : pixels) {
      int& id_of = pool_of[p];
      if (id_of < 0) id_of = pool_size++;
      if (!before[p]) added.push_back(p);
    }
    std::int64_t recalled = 0;
    for (FixedMapMatcher& m : matchers) {
      m.step(bmap.data(), pixels, added, pool_of, pool_size, id, mark, stamp, count_cover);
      stamp += 2;
      recalled += m.matches();
    }
    cnt_r[k] = recalled;
    sum_r[k] = gt_pixels;
    cnt_p[k] = covered;
    sum_p[k] = static_cast<std::int64_t>(pixels.size());
    std::swap(bmap, before);
  }
}

}  // namespace edgesdk

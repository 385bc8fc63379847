#include "correspond.hpp"

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
// [start[i], start[i + 1]) of (target, cost).
struct Csr {
  std::vector<int> start;
  std::vector<int> target;
  std::vector<Cost> cost;
};

Csr transpose(const Csr& g, int n_targets) {
  Csr t;
  t.start.assign(static_cast<size_t>(n_targets) + 1, 0);
  for (const int j : g.target) ++t.start[static_cast<size_t>(j) + 1];
  std::partial_sum(t.start.begin(), t.start.end(), t.start.begin());
  t.target.resize(g.target.size());
  t.cost.resize(g.cost.size());
  std::vector<int> fill(t.start.begin(), t.start.end() - 1);
  const int n = static_cast<int>(g.start.size()) - 1;
  for (int i = 0; i < n; ++i) {
    for (int e = g.start[i]; e < g.start[i + 1]; ++e) {
      const int slot = fill[g.target[e]]++;
      t.target[slot] = i;
      t.cost[slot] = g.cost[e];
    }
  }
  return t;
}

int find_root(std::vector<int>& parent, int i) {
  while (parent[i] != i) {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

// Minimum-cost assignment of every row of a sparse rectangular problem in which
// row r may also take its private outlier column (nc + r) at cost `outlier`.
// Shortest augmenting paths, one row at a time: Dijkstra over reduced costs
// cost - row_pot - col_pot, which stay >= 0 (dual feasibility) throughout, so
// each augmentation keeps the partial assignment optimal. Buffers are kept
// between calls; each call only touches what its searches reach.
class RowAssignment {
 public:
  // Rows' edges: local column ids in g.target. Fills row_match (size nr) with a
  // column id, >= nc meaning the outlier column.
  void solve(int nr, int nc, const Csr& g, Cost outlier, std::vector<int>& row_match) {
    const size_t ncols = static_cast<size_t>(nc) + static_cast<size_t>(nr);
    row_pot_.assign(static_cast<size_t>(nr), 0);
    row_dist_.assign(static_cast<size_t>(nr), 0);
    col_pot_.assign(ncols, 0);
    col_match_.assign(ncols, -1);
    col_dist_.assign(ncols, kInf);
    col_pred_.assign(ncols, -1);
    col_done_.assign(ncols, 0);
    row_match.assign(static_cast<size_t>(nr), -1);

    for (int s = 0; s < nr; ++s) {
      if (take_cheapest_if_free(s, nc, g, outlier, row_match)) continue;
      heap_.clear();
      touched_.clear();
      rows_seen_.clear();
      row_dist_[s] = 0;
      rows_seen_.push_back(s);
      relax(s, 0, nc, g, outlier);
      int end = -1;
      Cost reach = 0;
      while (!heap_.empty()) {
        std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
        const auto [d, c] = heap_.back();
        heap_.pop_back();
        if (col_done_[c] || d > col_dist_[c]) continue;
        col_done_[c] = 1;
        if (col_match_[c] < 0) {
          end = c;
          reach = d;
          break;
        }
        const int r = col_match_[c];  // the matched edge is tight: same distance
        row_dist_[r] = d;
        rows_seen_.push_back(r);
        relax(r, d, nc, g, outlier);
      }
      // The row's own outlier column is free, so a path always exists.
      // Potentials: shift what the search settled so that reduced costs stay
      // non-negative and the new path's edges become tight.
      for (const int r : rows_seen_) row_pot_[r] += reach - row_dist_[r];
      for (const int c : touched_)
        if (col_done_[c]) col_pot_[c] -= reach - col_dist_[c];
      for (int c = end;;) {
        const int r = col_pred_[c];
        const int previous = row_match[r];
        row_match[r] = c;
        col_match_[c] = r;
        if (r == s) break;
        c = previous;
      }
      for (const int c : touched_) {
        col_dist_[c] = kInf;
        col_done_[c] = 0;
      }
    }
  }

 private:
  // Every path from row s starts with one of its edges and reduced costs are
  // >= 0, so when the cheapest edge (lowest column on ties, as the heap would
  // pop it) ends at a free column, that edge alone is a shortest augmenting
  // path: assign it without a search. Most rows end here.
  bool take_cheapest_if_free(int s, int nc, const Csr& g, Cost outlier,
                             std::vector<int>& row_match) {
    int best = nc + s;
    Cost best_cost = outlier - row_pot_[s] - col_pot_[best];
    for (int e = g.start[s]; e < g.start[s + 1]; ++e) {
      const int c = g.target[e];
      const Cost rc = g.cost[e] - row_pot_[s] - col_pot_[c];
      if (rc < best_cost || (rc == best_cost && c < best)) {
        best = c;
        best_cost = rc;
      }
    }
    if (col_match_[best] >= 0) return false;
    // The search would settle s at 0 and `best` at best_cost; the potential
    // update keeps the new edge tight.
    row_pot_[s] += best_cost;
    row_match[s] = best;
    col_match_[best] = s;
    return true;
  }

  void relax(int r, Cost dr, int nc, const Csr& g, Cost outlier) {
    for (int e = g.start[r]; e < g.start[r + 1]; ++e) consider(r, g.target[e], g.cost[e], dr);
    consider(r, nc + r, outlier, dr);
  }

  void consider(int r, int c, Cost cost, Cost dr) {
    if (col_done_[c]) return;
    const Cost nd = dr + cost - row_pot_[r] - col_pot_[c];
    if (nd < col_dist_[c]) {
      if (col_dist_[c] == kInf) touched_.push_back(c);
      col_dist_[c] = nd;
      col_pred_[c] = r;
      heap_.emplace_back(nd, c);
      std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
    }
  }

  std::vector<Cost> row_pot_, row_dist_, col_pot_, col_dist_;
  std::vector<int> col_match_, col_pred_, touched_, rows_seen_;
  std::vector<std::uint8_t> col_done_;
  std::vector<std::pair<Cost, int>> heap_;
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

}  // namespace

MatchStats correspond_pixels(const std::uint8_t* bmap1, const std::uint8_t* bmap2, Index h, Index w,
                             double max_dist, double outlier_cost, std::int64_t* m1,
                             std::int64_t* m2) {
  std::fill(m1, m1 + h * w, 0);
  std::fill(m2, m2 + h * w, 0);
  // correspondPixels.cc: both distances are relative to the image diagonal.
  const double diag = std::sqrt(static_cast<double>(h) * h + static_cast<double>(w) * w);
  const double max_px = max_dist * diag;
  const double outlier_px = outlier_cost * diag;
  const Cost outlier = static_cast<Cost>(std::ceil(outlier_px * kMultiplier));

  // Every displacement within max_px, cheapest first.
  const Index radius = static_cast<Index>(std::ceil(max_px));
  if ((2 * radius + 1) * (2 * radius + 1) > kMaxMatchOffsets)
    throw std::invalid_argument("max_dist reaches " + std::to_string(radius) +
                                " pixels on this image, too far to match (at most " +
                                std::to_string(kMaxMatchOffsets) + " displacements)");
  std::vector<Offset> offsets;
  for (Index dy = -radius; dy <= radius; ++dy) {
    for (Index dx = -radius; dx <= radius; ++dx) {
      const double d2 = static_cast<double>(dx * dx + dy * dy);
      if (d2 > max_px * max_px) continue;
      offsets.push_back({dy, dx, static_cast<Cost>(std::llrint(std::sqrt(d2) * kMultiplier))});
    }
  }
  std::sort(offsets.begin(), offsets.end(), [](const Offset& a, const Offset& b) {
    return std::tie(a.cost, a.dy, a.dx) < std::tie(b.cost, b.dy, b.dx);
  });

  // Nodes: the pixels of each map with a partner within reach (others can only
  // be outliers). Left = bmap1 in raster order, right = bmap2 in order of first
  // sight; edges of each left node in `left`. Only bmap1 pixels with a bmap2
  // pixel in their (2 radius + 1)^2 box are scanned: at low thresholds most
  // predicted pixels are far from any ground truth.
  const std::vector<std::uint8_t> near2 = box_any(bmap2, h, w, radius);
  // The graph takes ~36 bytes a candidate pair (edge, its transpose, a component's copy):
  // bound it before building it. Pixels near the other map times the displacements bound
  // the pairs from above; only when that bound is too large are they counted.
  {
    std::int64_t near1 = 0;
    for (Index p = 0; p < h * w; ++p) near1 += bmap1[p] && near2[p];
    if (near1 * static_cast<std::int64_t>(offsets.size()) > kMaxMatchPairs) {
      std::int64_t pairs = 0;
      for (Index y = 0; y < h && pairs <= kMaxMatchPairs; ++y)
        for (Index x = 0; x < w; ++x) {
          if (!bmap1[y * w + x] || !near2[y * w + x]) continue;
          for (const Offset& o : offsets) {
            const Index yy = y + o.dy, xx = x + o.dx;
            if (yy >= 0 && yy < h && xx >= 0 && xx < w && bmap2[yy * w + xx]) ++pairs;
          }
        }
      if (pairs > kMaxMatchPairs)
        throw std::invalid_argument(
            "the maps have more than " + std::to_string(kMaxMatchPairs) +
            " pixel pairs within max_dist of each other, too many to match in bounded memory "
            "(thin them, or lower max_dist)");
    }
  }
  std::vector<Index> pix1, pix2;
  std::vector<int> id2(static_cast<size_t>(h * w), -1);
  Csr left;
  left.start.push_back(0);
  std::int64_t count1 = 0;
  for (Index y = 0; y < h; ++y) {
    const bool inner_y = y >= radius && y < h - radius;
    for (Index x = 0; x < w; ++x) {
      const Index p = y * w + x;
      if (!bmap1[p]) continue;
      ++count1;
      if (!near2[p]) continue;
      const size_t before = left.target.size();
      const bool inner = inner_y && x >= radius && x < w - radius;
      for (const Offset& o : offsets) {
        if (!inner) {
          const Index yy = y + o.dy, xx = x + o.dx;
          if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
        }
        const Index q = p + o.dy * w + o.dx;
        if (!bmap2[q]) continue;
        if (id2[q] < 0) {
          id2[q] = static_cast<int>(pix2.size());
          pix2.push_back(q);
        }
        left.target.push_back(id2[q]);
        left.cost.push_back(o.cost);
      }
      if (left.target.size() > before) {
        pix1.push_back(p);
        left.start.push_back(static_cast<int>(left.target.size()));
      }
    }
  }
  const int n1 = static_cast<int>(pix1.size()), n2 = static_cast<int>(pix2.size());
  const Csr right = transpose(left, n2);

  // Connected components (right node j is n1 + j), in order of their first node.
  std::vector<int> parent(static_cast<size_t>(n1 + n2));
  std::iota(parent.begin(), parent.end(), 0);
  for (int i = 0; i < n1; ++i)
    for (int e = left.start[i]; e < left.start[i + 1]; ++e) {
      const int a = find_root(parent, i), b = find_root(parent, n1 + left.target[e]);
      if (a != b) parent[std::max(a, b)] = std::min(a, b);
    }
  std::vector<int> comp_of(static_cast<size_t>(n1 + n2)), comp_start;
  int n_comp = 0;
  {
    std::vector<int> label(static_cast<size_t>(n1 + n2), -1);
    for (int v = 0; v < n1 + n2; ++v) {
      const int root = find_root(parent, v);
      if (label[root] < 0) label[root] = n_comp++;
      comp_of[v] = label[root];
    }
  }
  // Members of each component, grouped (counting sort keeps node order).
  comp_start.assign(static_cast<size_t>(n_comp) + 1, 0);
  for (const int c : comp_of) ++comp_start[static_cast<size_t>(c) + 1];
  std::partial_sum(comp_start.begin(), comp_start.end(), comp_start.begin());
  std::vector<int> members(static_cast<size_t>(n1 + n2));
  {
    std::vector<int> fill(comp_start.begin(), comp_start.end() - 1);
    for (int v = 0; v < n1 + n2; ++v) members[fill[comp_of[v]]++] = v;
  }

  std::vector<int> match1(static_cast<size_t>(n1), -1);  // left -> right node
  std::vector<int> local(static_cast<size_t>(std::max(n1, n2)), -1);
  std::vector<int> rows, cols, row_match;
  Csr sub;
  RowAssignment solver;
  for (int c = 0; c < n_comp; ++c) {
    std::vector<int> lefts, rights;
    for (int k = comp_start[c]; k < comp_start[c + 1]; ++k) {
      const int v = members[k];
      if (v < n1)
        lefts.push_back(v);
      else
        rights.push_back(v - n1);
    }
    // The smaller side makes the rows: fewer rows end up unmatched, and an
    // unmatched row is the one search that may sweep its whole component.
    const bool rows_left = lefts.size() <= rights.size();
    rows = rows_left ? lefts : rights;
    cols = rows_left ? rights : lefts;
    const Csr& g = rows_left ? left : right;
    // Any row order gives the optimum; this one keeps the searches short
    // (measured on BSDS maps: 5-6x fewer settled nodes than raster order).
    // Rows with many candidates go first, the ones whose cheapest candidate
    // is dearer first among equals (edge lists are sorted by cost).
    std::stable_sort(rows.begin(), rows.end(), [&g](int a, int b) {
      const int da = g.start[a + 1] - g.start[a], db = g.start[b + 1] - g.start[b];
      const Cost ca = g.cost[g.start[a]], cb = g.cost[g.start[b]];
      return std::tie(db, cb) < std::tie(da, ca);
    });
    for (size_t k = 0; k < cols.size(); ++k) local[cols[k]] = static_cast<int>(k);
    sub.start.assign(1, 0);
    sub.target.clear();
    sub.cost.clear();
    for (const int r : rows) {
      for (int e = g.start[r]; e < g.start[r + 1]; ++e) {
        sub.target.push_back(local[g.target[e]]);
        sub.cost.push_back(g.cost[e]);
      }
      sub.start.push_back(static_cast<int>(sub.target.size()));
    }
    solver.solve(static_cast<int>(rows.size()), static_cast<int>(cols.size()), sub, outlier,
                 row_match);
    for (size_t k = 0; k < rows.size(); ++k) {
      const int col = row_match[k];
      if (col >= static_cast<int>(cols.size())) continue;  // outlier
      if (rows_left)
        match1[rows[k]] = cols[col];
      else
        match1[cols[col]] = rows[k];
    }
  }

  MatchStats stats;
  double matched_length = 0;
  for (int i = 0; i < n1; ++i) {
    if (match1[i] < 0) continue;
    const Index p = pix1[i], q = pix2[match1[i]];
    m1[p] = q + 1;
    m2[q] = p + 1;
    ++stats.matches;
    const double dy = static_cast<double>(p / w - q / w), dx = static_cast<double>(p % w - q % w);
    matched_length += std::sqrt(dx * dx + dy * dy);
  }
  const std::int64_t count2 = std::count_if(bmap2, bmap2 + h * w, [](std::uint8_t v) { return v != 0; });
  // Each matched pair adds its length (half from each side in match.cc),
  // each unmatched pixel of either map the outlier cost.
  stats.cost = matched_length +
               outlier_px * static_cast<double>(count1 + count2 - 2 * stats.matches);
  return stats;
}

}  // namespace edgesdk

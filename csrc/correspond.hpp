// One-to-one matching of boundary pixels, equivalent to the BSDS benchmark's
// correspondPixels(bmap1, bmap2, maxDist, outlierCost) (Martin, Fowlkes and
// Malik, TPAMI 2004; match.cc).
//
// The original builds a bipartite graph between the boundary pixels of the two
// maps, joining pixels closer than maxDist (cost: distance, in hundredths of a
// pixel, rounded), adds outlier nodes of cost outlierCost, and solves the
// minimum-cost perfect assignment with Goldberg's CSA. Its optimum is a
// matching M of real pixels that minimises  W(M) + ow * (n1 + n2 - |M|)
// (W: sum of the rounded costs, ow: the rounded outlier cost), i.e. it maximises
// the number of matches first and minimises their length second.
//
// This implementation solves the same objective exactly, without the random
// sparse outlier graph of the original (so it is deterministic):
//  * the graph splits into connected components that are solved independently;
//  * each component is a rectangular assignment of its smaller side ("rows"),
//    each row owning a private outlier column of cost ow, which has exactly the
//    objective above up to a constant;
//  * that assignment is solved with the shortest-augmenting-path (Hungarian)
//    method, Dijkstra on reduced costs over the sparse graph.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace edgesdk {

struct MatchStats {
  double cost = 0;            // the original's cost: matched distance + outlier cost per unmatched pixel
  std::int64_t matches = 0;   // pairs matched
};

// Memory bounds: at most this many candidate pairs (pixels of the two maps within max_dist;
// ~36 bytes each) and displacements within max_dist; beyond them correspond_pixels throws
// std::invalid_argument instead of building the graph.
constexpr std::int64_t kMaxMatchPairs = std::int64_t{1} << 24;
constexpr std::int64_t kMaxMatchOffsets = std::int64_t{1} << 22;

// bmap1, bmap2: h x w row-major maps, nonzero = boundary pixel.
// max_dist, outlier_cost: as fractions of the image diagonal (BSDS: 0.0075, 100).
// m1[p] = 1 + (row-major index of the pixel of bmap2 matched to pixel p of
// bmap1), 0 where p is unmatched or not a boundary pixel; m2 likewise.
MatchStats correspond_pixels(const std::uint8_t* bmap1, const std::uint8_t* bmap2, std::ptrdiff_t h,
                             std::ptrdiff_t w, double max_dist, double outlier_cost,
                             std::int64_t* m1, std::int64_t* m2);

// One image's BSDS counts over a threshold sweep (evaluation_bdry_image.m), without a
// dense map per call: for each threshold t, bmap = (pb >= t), thinned when thin_maps
// (bwmorph 'thin', Inf), matched against every annotator's map in gts exactly as
// correspond_pixels matches them. Per threshold k: cnt_r[k] = ground-truth pixels matched
// (summed over annotators), sum_r[k] = ground-truth pixels, cnt_p[k] = pixels of bmap
// matched by at least one annotator, sum_p[k] = pixels of bmap. What does not depend on the
// threshold (each annotator's neighbourhood map and size) is computed once, and from one
// threshold to the next only the components of the matching graph that changed are solved
// again (the others keep their matches: the ones a fresh matching gives).
void boundary_counts(const double* pb, const std::vector<const std::uint8_t*>& gts, std::ptrdiff_t h,
                     std::ptrdiff_t w, const std::vector<double>& thresholds, bool thin_maps,
                     double max_dist, double outlier_cost, std::int64_t* cnt_r, std::int64_t* sum_r,
                     std::int64_t* cnt_p, std::int64_t* sum_p);

}  // namespace edgesdk

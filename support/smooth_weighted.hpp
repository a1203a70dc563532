// Smooth weighted round-robin, nginx's (ngx_http_upstream_get_peer): over a run of picks each
// candidate is chosen in proportion to its weight, spread out rather than in bursts (weights
// 5, 1, 1 give a a b a c a a). Each candidate carries its own `current` state, starting at 0.
//
// Allocation-free and generic: `weight_of(e)` gives an element's weight (an integer, at least 1
// to be chosen fairly), `current_of(e)` a reference to its state (a signed integer), and
// `eligible(e)` says whether it may be chosen this time (skipped ones keep their state).
#pragma once

#include <functional>
#include <iterator>
#include <ranges>
#include <type_traits>

namespace budstikke::support {

struct every_candidate {
  template <typename T>
  constexpr bool operator()(const T&) const noexcept {
    return true;
  }
};

// Returns the chosen element's iterator, or end(range) when no element is eligible. Ties go to
// the first.
template <std::ranges::forward_range Range, typename WeightOf, typename CurrentOf,
          typename Eligible = every_candidate>
std::ranges::iterator_t<Range> pick_smooth_weighted(Range&& range, WeightOf weight_of, CurrentOf current_of,
                                                    Eligible eligible = {}) {
  using state = std::remove_cvref_t<std::invoke_result_t<CurrentOf&, std::ranges::range_reference_t<Range>>>;
  static_assert(std::is_signed_v<state>, "the current state goes below zero");
  auto best = std::ranges::end(range);
  state total = 0;
  for (auto it = std::ranges::begin(range); it != std::ranges::end(range); ++it) {
    if (!std::invoke(eligible, *it)) continue;
    const auto weight = static_cast<state>(std::invoke(weight_of, *it));
    std::invoke(current_of, *it) += weight;
    total += weight;
    if (best == std::ranges::end(range) || std::invoke(current_of, *it) > std::invoke(current_of, *best)) best = it;
  }
  if (best != std::ranges::end(range)) std::invoke(current_of, *best) -= total;
  return best;
}

}  // namespace budstikke::support

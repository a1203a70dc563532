#include <array>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "support/smooth_weighted.hpp"

using budstikke::support::pick_smooth_weighted;

namespace {

struct peer {
  char name;
  int weight;
  int current = 0;
  bool down = false;
};

auto weight = [](const peer& p) { return p.weight; };
auto current = [](peer& p) -> int& { return p.current; };

std::string picks(std::vector<peer>& peers, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    auto it = pick_smooth_weighted(peers, weight, current, [](const peer& p) { return !p.down; });
    out.push_back(it == peers.end() ? '-' : it->name);
  }
  return out;
}

}  // namespace

TEST_CASE("smooth weighted round-robin: nginx's sequence for weights 5, 1, 1") {
  std::vector<peer> peers{{'a', 5}, {'b', 1}, {'c', 1}};
  CHECK(picks(peers, 7) == "aabacaa");
  CHECK(picks(peers, 7) == "aabacaa");  // and again: the states are back at 0 after a cycle
  for (const auto& p : peers) CHECK(p.current == 0);
}

TEST_CASE("smooth weighted round-robin: even weights alternate, ties go to the first") {
  std::vector<peer> peers{{'a', 1}, {'b', 1}, {'c', 1}};
  CHECK(picks(peers, 6) == "abcabc");
  std::vector<peer> two{{'x', 2}, {'y', 2}};
  CHECK(picks(two, 4) == "xyxy");
}

TEST_CASE("smooth weighted round-robin: the share of each is its weight, spread out") {
  std::vector<peer> peers{{'a', 3}, {'b', 2}, {'c', 7}, {'d', 1}};
  std::map<char, int> count;
  std::map<char, int> longest_run;
  char last = 0;
  int run = 0;
  for (char c : picks(peers, 13 * 100)) {
    ++count[c];
    run = c == last ? run + 1 : 1;
    last = c;
    longest_run[c] = std::max(longest_run[c], run);
  }
  CHECK(count['a'] == 300);
  CHECK(count['b'] == 200);
  CHECK(count['c'] == 700);
  CHECK(count['d'] == 100);
  CHECK(longest_run['c'] <= 2);  // 7 of 13, never in a burst
  CHECK(longest_run['a'] == 1);
}

TEST_CASE("smooth weighted round-robin: skipped candidates are not chosen and keep their state") {
  std::vector<peer> peers{{'a', 5}, {'b', 1}, {'c', 1}};
  peers[0].down = true;
  CHECK(picks(peers, 4) == "bcbc");
  CHECK(peers[0].current == 0);
  peers[0].down = false;
  CHECK(picks(peers, 7) == "aabacaa");
  for (auto& p : peers) p.down = true;
  CHECK(picks(peers, 2) == "--");
  std::vector<peer> none;
  CHECK(picks(none, 1) == "-");
}

TEST_CASE("smooth weighted round-robin: over pointers, arrays and other state types") {
  std::vector<std::unique_ptr<peer>> owned;
  for (auto [n, w] : std::initializer_list<std::pair<char, int>>{{'a', 5}, {'b', 1}, {'c', 1}})
    owned.push_back(std::make_unique<peer>(peer{n, w}));
  std::string out;
  for (int i = 0; i < 7; ++i) {
    auto it = pick_smooth_weighted(owned, [](const auto& p) { return p->weight; },
                                   [](auto& p) -> int& { return p->current; });
    out.push_back((*it)->name);
  }
  CHECK(out == "aabacaa");

  struct relay {
    unsigned weight;
    long long current = 0;
  };
  std::array<relay, 2> relays{{{3}, {1}}};
  int first = 0;
  for (int i = 0; i < 8; ++i)
    if (pick_smooth_weighted(relays, &relay::weight, &relay::current) == relays.begin()) ++first;
  CHECK(first == 6);
}

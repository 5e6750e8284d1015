// The merge loop shared by both BPE flavours. Symbols form a doubly linked list over the input;
// a heap holds candidate adjacent pairs keyed by priority (lower = merge first: the merge rank
// for HF BPE, minus the piece score for SentencePiece BPE) with ties broken by position, leftmost
// first — the order SentencePiece's bpe_model.cc and HF tokenizers' Word::merge_all both use.
// Stale heap entries (a side already merged away or grown) are skipped when popped, which makes
// the whole loop O(n log n) instead of llama2.c's O(n^2) rescans, with identical results.
#pragma once

#include <cstdint>
#include <queue>
#include <vector>

namespace edgellm::tok {

struct BpeSymbol {
  int32_t id;      // vocabulary id, or -1 for a character that is not in the vocabulary
  uint32_t start;  // byte span in the input
  uint32_t len;    // 0 once merged into its left neighbour
  int32_t prev, next;
};

struct PairCandidate {
  double priority;
  int32_t new_id;
};

struct NoMergeHook {
  void operator()(const BpeSymbol&, const BpeSymbol&) const {}
};

// `lookup(left, right, out)` says whether adjacent symbols may merge and into what;
// `on_merge(left, right)` sees each pair just before it merges.
template <typename Lookup, typename OnMerge = NoMergeHook>
void bpe_merge(std::vector<BpeSymbol>& syms, const Lookup& lookup, const OnMerge& on_merge = {}) {
  struct Entry {
    double priority;
    int32_t left, right;
    uint32_t size;  // left.len + right.len when pushed: detects stale entries
    int32_t new_id;
    bool operator<(const Entry& o) const {  // std::priority_queue pops the "largest"
      if (priority != o.priority) return priority > o.priority;
      return left > o.left;
    }
  };
  std::priority_queue<Entry> heap;
  auto push = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    PairCandidate c;
    if (!lookup(syms[l], syms[r], c)) return;
    heap.push({c.priority, l, r, syms[l].len + syms[r].len, c.new_id});
  };
  for (size_t i = 1; i < syms.size(); ++i)
    push(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));
  while (!heap.empty()) {
    const Entry e = heap.top();
    heap.pop();
    BpeSymbol& l = syms[e.left];
    BpeSymbol& r = syms[e.right];
    // Lengths only grow, so a changed sum (or a dead side) means the entry is stale.
    if (l.len == 0 || r.len == 0 || l.next != e.right || l.len + r.len != e.size) continue;
    on_merge(l, r);
    l.len += r.len;
    l.id = e.new_id;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = e.left;
    r.len = 0;
    push(l.prev, e.left);
    push(e.left, l.next);
  }
}

}  // namespace edgellm::tok

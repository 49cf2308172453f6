#pragma once
// FlatMap: an open-addressing hash map from uint64_t keys to small values, for the
// analysis' per-event lookups (map -> open windows, g -> goid). Linear probing, tombstones
// on erase, power-of-two capacity. One key value (kEmpty) is reserved.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace gort::core::analysis {

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

template <typename V>
class BasicFlatMap {
 public:
  static constexpr uint64_t kEmpty = ~0ull;
  static constexpr uint64_t kTomb = ~0ull - 1;

  V* find(uint64_t key) {
    if (slots_.empty()) return nullptr;
    size_t mask = slots_.size() - 1;
    for (size_t i = mix64(key) & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.key == key) return &s.value;
      if (s.key == kEmpty) return nullptr;
    }
  }
  void put(uint64_t key, V value) {
    if ((used_ + 1) * 4 >= slots_.size() * 3) grow();
    size_t mask = slots_.size() - 1;
    Slot* tomb = nullptr;
    for (size_t i = mix64(key) & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.key == key) {
        s.value = value;
        return;
      }
      if (s.key == kTomb && !tomb) tomb = &s;
      if (s.key == kEmpty) {
        Slot& dst = tomb ? *tomb : s;
        if (!tomb) used_++;
        dst.key = key;
        dst.value = value;
        size_++;
        return;
      }
    }
  }
  bool erase(uint64_t key) {
    if (slots_.empty()) return false;
    size_t mask = slots_.size() - 1;
    for (size_t i = mix64(key) & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.key == key) {
        s.key = kTomb;
        size_--;
        return true;
      }
      if (s.key == kEmpty) return false;
    }
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t key = kEmpty;
    V value{};
  };
  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    // Rehash into twice the live entries (tombstones are dropped).
    size_t cap = 16;
    while (cap * 3 <= (size_ + 1) * 8) cap *= 2;
    slots_.assign(cap, Slot{});
    used_ = size_ = 0;
    for (auto& s : old)
      if (s.key != kEmpty && s.key != kTomb) put(s.key, s.value);
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;  // live entries
  size_t used_ = 0;  // live + tombstones
};

using FlatMap = BasicFlatMap<uint32_t>;

}  // namespace gort::core::analysis

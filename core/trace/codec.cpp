// Event encoding of one trace block (docs/trace-format.md, "Events").

#include "core/trace/codec.h"

#include <fmt/format.h>

namespace gort::core::trace::codec {
namespace {

std::vector<uint64_t> site_pcs(const Header& h) {
  std::vector<uint64_t> v;
  v.reserve(h.sites.size());
  for (auto& s : h.sites) v.push_back(s.pc);
  return v;
}

uint64_t hash_stack(const std::vector<uint64_t>& s) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ s.size();
  for (uint64_t pc : s) {
    h ^= pc;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  return h;
}

}  // namespace

// --- encoder ---------------------------------------------------------------------------

BlockEncoder::BlockEncoder(const Header& h) : start_ns_(h.start_ns), site_pcs_(site_pcs(h)) { reset(); }

void BlockEncoder::reset() {
  prev_time_ = start_ns_;
  cur_thread_ = UINT32_MAX;
  thread_index_.clear();
  threads_.clear();
  gs_.clear();
  maps_.clear();
  stack_index_.clear();
  stack_frames_.clear();
  stack_begin_.assign(1, 0);
  last_stack_of_site_.assign(site_pcs_.size(), UINT32_MAX);
}

uint8_t* BlockEncoder::put_table_value(uint8_t* p, ValueTable& t, uint64_t v) {
  bool added = false;
  uint32_t idx = t.find_or_add(v, added);
  p = put_uvarint(p, idx);
  return added ? put_uvarint(p, v) : p;
}

uint8_t* BlockEncoder::put_stack(uint8_t* p, const Event& e) {
  auto same = [&](uint32_t i) {
    const uint64_t* f = stack_frames_.data() + stack_begin_[i];
    size_t len = stack_begin_[i + 1] - stack_begin_[i];
    return len == e.stack.size() && std::equal(e.stack.begin(), e.stack.end(), f);
  };
  uint32_t* last = e.site < last_stack_of_site_.size() ? &last_stack_of_site_[e.site] : nullptr;
  if (last && *last != UINT32_MAX && same(*last)) return put_uvarint(p, *last);
  uint64_t h = hash_stack(e.stack);
  uint32_t n_stacks = uint32_t(stack_begin_.size() - 1);
  auto it = stack_index_.find(h);
  if (it != stack_index_.end() && same(it->second)) {
    if (last) *last = it->second;
    return put_uvarint(p, it->second);
  }
  // A new stack (or a hash collision, which simply stores the stack again). Frames are
  // zigzag deltas from the previous frame; the first from the site's pc, which it equals
  // at map sites, so that frame costs one byte.
  stack_index_[h] = n_stacks;
  p = put_uvarint(p, n_stacks);
  p = put_uvarint(p, e.stack.size());
  uint64_t prev = site_pcs_[e.site];
  for (uint64_t pc : e.stack) {
    p = put_uvarint(p, zigzag(int64_t(pc - prev)));
    prev = pc;
  }
  stack_frames_.insert(stack_frames_.end(), e.stack.begin(), e.stack.end());
  stack_begin_.push_back(uint32_t(stack_frames_.size()));
  if (last) *last = n_stacks;
  return p;
}

uint8_t* BlockEncoder::encode(const Event& e, uint8_t* p) {
  uint8_t* flags = p++;
  uint8_t f = 0;
  p = put_uvarint(p, zigzag(int64_t(e.time_ns - prev_time_)));  // wraps, as the decoder's add does
  prev_time_ = e.time_ns;
  p = put_uvarint(p, e.site);
  if (cur_thread_ == UINT32_MAX || threads_[cur_thread_].tid != e.tid) {
    f |= kFlagTid;
    auto [it, added] = thread_index_.try_emplace(e.tid, uint32_t(threads_.size()));
    p = put_uvarint(p, it->second);
    if (added) {
      p = put_uvarint(p, e.tid);
      threads_.push_back(ThreadState{e.tid});
    }
    cur_thread_ = it->second;
  }
  ThreadState& ts = threads_[cur_thread_];
  if (e.cpu != ts.cpu) {
    f |= kFlagCpu;
    p = put_uvarint(p, e.cpu);
    ts.cpu = e.cpu;
  }
  if (e.g != ts.g) {
    f |= kFlagG;
    p = put_table_value(p, gs_, e.g);
    ts.g = e.g;
  }
  if (e.map != ts.map) {
    f |= kFlagMap;
    p = put_table_value(p, maps_, e.map);
    ts.map = e.map;
  }
  if (e.goid != 0) {
    f |= kFlagGoid;
    p = put_uvarint(p, e.goid);
  }
  if (e.key) {
    f |= kFlagKey;
    p = put_uvarint(p, zigzag(int64_t(*e.key)));  // small negative int keys stay small
  }
  if (!e.stack.empty()) {
    f |= kFlagStack;
    p = put_stack(p, e);
  }
  if (e.stack_map) f |= kFlagStackMap;
  *flags = f;
  return p;
}

// --- decoder ---------------------------------------------------------------------------

BlockDecoder::BlockDecoder(const Header& h)
    : start_ns_(h.start_ns), version_(h.version), site_pcs_(site_pcs(h)) {}

void BlockDecoder::reset(const uint8_t* p, const uint8_t* end, uint64_t block_offset, uint32_t count) {
  begin_ = p_ = p;
  end_ = end;
  block_offset_ = block_offset;
  count_ = remaining_ = count;
  prev_time_ = start_ns_;
  cur_thread_ = UINT32_MAX;
  threads_.clear();
  gs_.clear();
  maps_.clear();
  stack_frames_.clear();
  stack_begin_.assign(1, 0);
  error_.clear();
}

int BlockDecoder::fail(const uint8_t* at, const char* what) {
  uint64_t off = block_offset_ + kRecordHeaderSize + uint64_t(at - begin_);
  error_ = fmt::format("offset {}: {} in event {} of the block at offset {} (the file is corrupt)", off, what,
                       count_ - remaining_, block_offset_);
  return -1;
}

int BlockDecoder::fail_trailing() {
  error_ = fmt::format("offset {}: {} bytes after the last of the {} events of the block at offset {} (the file is corrupt)",
                       block_offset_ + kRecordHeaderSize + uint64_t(p_ - begin_), end_ - p_, count_, block_offset_);
  return -1;
}

bool BlockDecoder::get_table_value(const uint8_t*& p, std::vector<uint64_t>& table, uint64_t& out) {
  uint64_t idx;
  if (!get_uvarint(p, end_, idx)) return false;
  if (idx < table.size()) {
    out = table[idx];
    return true;
  }
  if (idx != table.size() || !get_uvarint(p, end_, out)) return false;
  table.push_back(out);
  return true;
}

bool BlockDecoder::get_stack(const uint8_t*& p, Event& e) {
  uint64_t idx;
  if (!get_uvarint(p, end_, idx)) return false;
  size_t n_stacks = stack_begin_.size() - 1;
  if (idx < n_stacks) {
    const uint64_t* f = stack_frames_.data();
    e.stack.assign(f + stack_begin_[idx], f + stack_begin_[idx + 1]);
    return true;
  }
  uint64_t n;
  if (idx != n_stacks || !get_uvarint(p, end_, n) || n == 0 || n > kMaxStackFrames) return false;
  e.stack.resize(n);
  uint64_t prev = site_pcs_[e.site];
  for (uint64_t i = 0; i < n; i++) {
    uint64_t d;
    if (!get_uvarint(p, end_, d)) return false;
    prev += uint64_t(unzigzag(d));
    e.stack[i] = prev;
  }
  stack_frames_.insert(stack_frames_.end(), e.stack.begin(), e.stack.end());
  stack_begin_.push_back(uint32_t(stack_frames_.size()));
  return true;
}

int BlockDecoder::decode(Event& e) {
  const uint8_t* p = p_;
  if (p >= end_) return fail(p, "block ends before its event count");
  uint8_t f = *p++;
  if ((f & kFlagStackMap) && version_ < 2) return fail(p - 1, "event flag 0x80 in a version 1 trace");
  uint64_t v;
  if (!get_uvarint(p, end_, v)) return fail(p_, "bad varint (time)");
  prev_time_ += uint64_t(unzigzag(v));
  e.time_ns = prev_time_;
  if (!get_uvarint(p, end_, v)) return fail(p_, "bad varint (site)");
  if (v >= site_pcs_.size()) {
    error_ = fmt::format("offset {}: site index {} out of range (the header has {} sites) in event {} of the block at "
                         "offset {} (the file is corrupt)",
                         block_offset_ + kRecordHeaderSize + uint64_t(p_ - begin_), v, site_pcs_.size(),
                         count_ - remaining_, block_offset_);
    return -1;
  }
  e.site = uint32_t(v);
  if (f & kFlagTid) {
    if (!get_uvarint(p, end_, v)) return fail(p_, "bad varint (thread)");
    if (v == threads_.size()) {
      uint64_t tid;
      if (!get_uvarint(p, end_, tid) || tid > UINT32_MAX) return fail(p_, "bad thread id");
      threads_.push_back(ThreadState{uint32_t(tid)});
    } else if (v > threads_.size()) {
      return fail(p_, "thread index out of range");
    }
    cur_thread_ = uint32_t(v);
  } else if (cur_thread_ == UINT32_MAX) {
    return fail(p_, "no thread");
  }
  ThreadState& ts = threads_[cur_thread_];
  if (f & kFlagCpu) {
    if (!get_uvarint(p, end_, v) || v > UINT32_MAX) return fail(p_, "bad cpu");
    ts.cpu = uint32_t(v);
  }
  if ((f & kFlagG) && !get_table_value(p, gs_, ts.g)) return fail(p_, "bad g (varint or table index)");
  if ((f & kFlagMap) && !get_table_value(p, maps_, ts.map)) return fail(p_, "bad map (varint or table index)");
  e.tid = ts.tid;
  e.cpu = ts.cpu;
  e.g = ts.g;
  e.map = ts.map;
  e.goid = 0;
  if ((f & kFlagGoid) && !get_uvarint(p, end_, e.goid)) return fail(p_, "bad varint (goid)");
  if (f & kFlagKey) {
    if (!get_uvarint(p, end_, v)) return fail(p_, "bad varint (key)");
    e.key = uint64_t(unzigzag(v));
  } else {
    e.key.reset();
  }
  if (f & kFlagStack) {
    if (!get_stack(p, e)) return fail(p_, "bad stack (varint, table index or frame count)");
  } else {
    e.stack.clear();
  }
  e.stack_map = (f & kFlagStackMap) != 0;
  p_ = p;
  remaining_--;
  return 1;
}

}  // namespace gort::core::trace::codec

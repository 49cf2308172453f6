// perf ring draining and sample decoding on synthetic bytes: records that straddle the
// end of the ring, torn headers, and the PERF_RECORD_SAMPLE layout gort asks for.
#include "core/probes/perf_ring.h"

#include <doctest/doctest.h>
#include <linux/perf_event.h>

#include <cstring>
#include <vector>

using namespace gort::core;

namespace {
std::vector<uint8_t> record(uint32_t type, std::vector<uint64_t> words) {
  std::vector<uint8_t> r(8 + 8 * words.size());
  uint16_t size = static_cast<uint16_t>(r.size());
  std::memcpy(r.data(), &type, 4);
  std::memcpy(r.data() + 6, &size, 2);
  std::memcpy(r.data() + 8, words.data(), 8 * words.size());
  return r;
}
/// Writes REC into RING at logical position POS (wrapping); returns POS + size.
uint64_t put(std::vector<uint8_t>& ring, uint64_t pos, const std::vector<uint8_t>& rec) {
  for (size_t i = 0; i < rec.size(); i++) ring[(pos + i) % ring.size()] = rec[i];
  return pos + rec.size();
}
}  // namespace

TEST_CASE("drain_ring copies a record that straddles the end of the ring") {
  std::vector<uint8_t> ring(64, 0xee);
  std::vector<uint8_t> scratch;
  uint64_t tail = 40;  // 24 bytes before the end: the second record (32 bytes) wraps
  uint64_t head = put(ring, tail, record(PERF_RECORD_LOST, {7, 3}));
  head = put(ring, head, record(PERF_RECORD_SAMPLE, {1, 2, 3}));
  std::vector<std::pair<uint32_t, std::vector<uint64_t>>> seen;
  uint64_t t = drain_ring(ring.data(), ring.size(), tail, head, scratch, [&](uint32_t type, std::span<const uint8_t> r) {
    std::vector<uint64_t> w((r.size() - 8) / 8);
    std::memcpy(w.data(), r.data() + 8, r.size() - 8);
    seen.push_back({type, w});
  });
  CHECK(t == head);
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == std::pair<uint32_t, std::vector<uint64_t>>{PERF_RECORD_LOST, {7, 3}});
  CHECK(seen[1] == std::pair<uint32_t, std::vector<uint64_t>>{PERF_RECORD_SAMPLE, {1, 2, 3}});
}

TEST_CASE("drain_ring stops at a record longer than the data published") {
  std::vector<uint8_t> ring(64, 0);
  std::vector<uint8_t> scratch;
  auto rec = record(PERF_RECORD_SAMPLE, {1, 2, 3});
  put(ring, 0, rec);
  int calls = 0;
  uint64_t t = drain_ring(ring.data(), ring.size(), 0, 16, scratch, [&](uint32_t, std::span<const uint8_t>) { calls++; });
  CHECK(calls == 0);
  CHECK(t == 16);  // cannot resynchronise: skip to head
}

TEST_CASE("decode_probe_sample reads ids, registers in perf order and the user stack") {
  // identifier, ip, pid|tid<<32, time, cpu, abi, 17 regs (AX BX CX DX SI DI BP SP IP R8..R15),
  // stack size, 16 bytes of stack, dyn_size.
  std::vector<uint64_t> w = {42, 0x401000, 100ull | (101ull << 32), 123456789, 1, PERF_SAMPLE_REGS_ABI_64};
  for (uint64_t r = 0; r < 17; r++) w.push_back(0x1000 + r);
  w.insert(w.end(), {16, 0x4aaae5, 0xdead, 8});
  auto rec = record(PERF_RECORD_SAMPLE, w);
  ProbeSample s;
  uint64_t id = 0;
  REQUIRE(decode_probe_sample(rec, s, id));
  CHECK(id == 42);
  CHECK(s.pid == 100);
  CHECK(s.tid == 101);
  CHECK(s.regs.tid == 101);
  CHECK(s.time_ns == 123456789);
  CHECK(s.cpu == 1);
  CHECK(s.regs.rax == 0x1000);
  CHECK(s.regs.rbx == 0x1001);
  CHECK(s.regs.rsp == 0x1007);
  CHECK(s.regs.rip == 0x1008);
  CHECK(s.regs.r8 == 0x1009);
  CHECK(s.regs.r14 == 0x100f);
  CHECK(s.regs.r15 == 0x1010);
  REQUIRE(s.stack.size() == 8);  // dyn_size: only 8 of the 16 bytes were copied
  uint64_t ret;
  std::memcpy(&ret, s.stack.data(), 8);
  CHECK(ret == 0x4aaae5);
  rec.resize(rec.size() - 16);  // truncated inside the stack dump
  CHECK_FALSE(decode_probe_sample(rec, s, id));
}

TEST_CASE("decode_probe_sample reads the user call chain after the cpu, without context markers") {
  // identifier, ip, pid|tid<<32, time, cpu, nr, chain (PERF_CONTEXT_USER first), abi, regs,
  // stack size, 8 bytes, dyn_size.
  std::vector<uint64_t> w = {7, 0x401000, 100ull | (101ull << 32), 5, 0, 4, static_cast<uint64_t>(PERF_CONTEXT_USER),
                             0x401000, 0x4aaae5, 0x4bbbb0, PERF_SAMPLE_REGS_ABI_64};
  for (uint64_t r = 0; r < 17; r++) w.push_back(r);
  w.insert(w.end(), {8, 0x4aaae5, 8});
  auto rec = record(PERF_RECORD_SAMPLE, w);
  ProbeSample s;
  uint64_t id = 0;
  REQUIRE(decode_probe_sample(rec, s, id, true));
  CHECK(s.callchain == std::vector<uint64_t>{0x401000, 0x4aaae5, 0x4bbbb0});
  CHECK(s.regs.rip == 8);
  CHECK(s.stack.size() == 8);
  // A chain length beyond the record is corruption, not a read past the end.
  w[5] = 1000;
  rec = record(PERF_RECORD_SAMPLE, w);
  CHECK_FALSE(decode_probe_sample(rec, s, id, true));
}

#pragma once
// Reading a perf_event mmap ring buffer and decoding its records, kept apart from the
// syscalls so that unit tests can feed synthetic bytes (wrap-around, truncation).
// Record formats: include/uapi/linux/perf_event.h (PERF_RECORD_SAMPLE, PERF_RECORD_LOST).

#include "core/probes/perf_probes.h"

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace gort::core {

/// The sample_type gort asks for, and the user registers, in the kernel's order.
/// x86-64 perf regs: AX BX CX DX SI DI BP SP IP (bits 0-8), R8-R15 (bits 16-23). FLAGS and
/// the segment registers are left out (DS/ES/FS/GS are rejected on x86-64; fs_base is not
/// a perf register at all).
uint64_t probe_sample_type(bool callchain = false);
uint64_t probe_regs_mask();

/// Calls FN(type, record bytes incl. the 8-byte header) for every complete record between
/// TAIL and HEAD in the ring DATA (size a power of two). A record that straddles the end of
/// the ring is copied into SCRATCH first. Returns the new tail (== HEAD unless a record is
/// corrupt, in which case it skips to HEAD: the ring cannot be resynchronised).
template <typename Fn>
uint64_t drain_ring(const uint8_t* data, uint64_t size, uint64_t tail, uint64_t head, std::vector<uint8_t>& scratch,
                    Fn&& fn) {
  const uint64_t mask = size - 1;
  while (head - tail >= 8) {
    uint64_t off = tail & mask;
    uint8_t hdr[8];
    for (int i = 0; i < 8; i++) hdr[i] = data[(off + i) & mask];
    uint32_t type;
    uint16_t rsize;
    std::memcpy(&type, hdr, 4);
    std::memcpy(&rsize, hdr + 6, 2);
    if (rsize < 8 || rsize > head - tail) return head;  // corrupt or torn: give up on this batch
    const uint8_t* rec = data + off;
    if (off + rsize > size) {  // straddles the end of the ring
      scratch.resize(rsize);
      uint64_t first = size - off;
      std::memcpy(scratch.data(), data + off, first);
      std::memcpy(scratch.data() + first, data, rsize - first);
      rec = scratch.data();
    }
    fn(type, std::span<const uint8_t>(rec, rsize));
    tail += rsize;
  }
  return tail;
}

/// Decodes a PERF_RECORD_SAMPLE laid out for probe_sample_type(CALLCHAIN) /
/// probe_regs_mask(). Fills OUT (not cookie) and the event id; false if the record is too
/// short. Context markers (PERF_CONTEXT_USER...) are dropped from the call chain.
bool decode_probe_sample(std::span<const uint8_t> rec, ProbeSample& out, uint64_t& id, bool callchain = false);

}  // namespace gort::core

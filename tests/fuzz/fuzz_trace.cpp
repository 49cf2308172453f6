// libFuzzer target for the gort trace reader (core/trace: what `gort report` and
// `gort dump` read, docs/trace-format.md): Reader::open strict and --partial, then every
// event through next() and the goroutine-id resolver, the summary, notes and heap scan
// records. The reader works on a file (pread), so each input is written to a memfd and
// opened as /proc/self/fd/N.
//
// Every record carries a CRC-32, so almost every mutation of a valid trace stops at a
// checksum mismatch. Each input is therefore read twice: as it is (the framing and
// checksum paths), and with every record's checksum recomputed over the mutated bytes
// (the JSON header and summary, the block scan and the event decoder behind the check).
//
// Seeds: tests/fuzz/corpus/trace/ (written by tests/fuzz/make_seeds.py in the format of
// docs/trace-format.md: complete traces with map, sync and go-start sites, stacks, keys,
// goids, a heap scan record, an unknown record, a trace cut short, an empty one). A real
// recording adds nothing the format does not already have here, and at tens of thousands
// of events (`gort dump --write-sample` writes 20,000) it would cut the executions per
// second a hundredfold, so none is added at test time.
#include "core/trace/crc32.h"
#include "core/trace/trace.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace gort::core::trace;

namespace {
volatile uint64_t g_sink;
void use(uint64_t v) { g_sink = g_sink + v; }

int memfd() {
  static int fd = [] {
    int f = memfd_create("fuzz_trace", MFD_CLOEXEC);
    if (f < 0) abort();
    return f;
  }();
  return fd;
}

bool put_file(const uint8_t* data, size_t size) {
  int fd = memfd();
  if (ftruncate(fd, 0) != 0) return false;
  for (size_t done = 0; done < size;) {
    ssize_t n = pwrite(fd, data + done, size - done, off_t(done));
    if (n <= 0) return false;
    done += size_t(n);
  }
  return true;
}

void read_all(const std::string& path, bool partial) {
  auto r = Reader::open(path, partial);
  if (!r) return;
  const Header& h = r->header();
  use(h.sites.size() + h.command.size() + r->event_count() + r->block_count());
  for (const auto& s : r->heap_scans()) use(s.size());
  GoidResolver goids(h);
  Event e;
  for (;;) {
    auto more = r->next(e);
    if (!more || !*more) break;
    goids.apply(e);
    use(e.goid + e.stack.size());
  }
  if (r->summary()) use(r->summary()->events + r->summary()->warnings.size());
  use(r->notes().size());
}

/// Recomputes the CRC of every record whose payload lies inside the input.
std::vector<uint8_t> with_checksums(const uint8_t* data, size_t size) {
  std::vector<uint8_t> b(data, data + size);
  size_t off = 12;  // "GORTTRC\0" + u32 version
  while (off + 16 <= b.size()) {
    uint32_t len;
    std::memcpy(&len, b.data() + off + 4, 4);
    if (len > b.size() - off - 16) break;
    uint32_t crc = crc32_update(crc32_update(0, b.data() + off, 12), b.data() + off + 16, len);
    std::memcpy(b.data() + off + 12, &crc, 4);
    off += 16 + size_t(len);
  }
  return b;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = "/proc/self/fd/" + std::to_string(memfd());
  if (!put_file(data, size)) abort();
  read_all(path, false);
  read_all(path, true);
  auto fixed = with_checksums(data, size);
  if (size == 0 || std::memcmp(fixed.data(), data, size) == 0) return 0;
  if (!put_file(fixed.data(), fixed.size())) abort();
  read_all(path, false);
  read_all(path, true);
  return 0;
}

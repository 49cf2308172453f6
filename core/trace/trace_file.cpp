// The gort trace file: Writer and Reader over the framing of docs/trace-format.md.
//
//   "GORTTRC\0" | u32 version | HEAD record | EVNT record ... | SUMM record
//   record = u32 tag | u32 payload length | u32 count | u32 crc32(first 12 bytes + payload) | payload
//
// The reader walks the record headers once at open (a few bytes per 64 KiB block), so it
// knows before decoding anything whether the trace is complete, how many events it holds,
// and its summary; checksums are verified block by block as events are read.

#include "core/trace/codec.h"
#include "core/trace/crc32.h"
#include "core/trace/trace.h"
#include "core/util/scoped_fd.h"

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace gort::core::trace {

using nlohmann::json;
namespace c = codec;

// --- site kinds --------------------------------------------------------------------------

namespace {
constexpr std::pair<SiteKind, const char*> kKindNames[] = {
    {SiteKind::kEntry, "entry"},   {SiteKind::kWriteBegin, "write-begin"}, {SiteKind::kWriteEnd, "write-end"},
    {SiteKind::kReturn, "return"}, {SiteKind::kThrow, "throw"},            {SiteKind::kGoStart, "go-start"},
    {SiteKind::kGoExit, "go-exit"},
    {SiteKind::kAcquire, "acquire"}, {SiteKind::kRelease, "release"},       {SiteKind::kSyncCall, "sync-call"},
    {SiteKind::kSyncReturn, "sync-return"}, {SiteKind::kGoCreate, "go-create"}, {SiteKind::kMapRead, "map-read"},
    {SiteKind::kGcMarkTermination, "gc-mark-termination"}, {SiteKind::kConvert, "convert"},
    {SiteKind::kLost, "lost"}, {SiteKind::kMapCreate, "map-create"},
};
}  // namespace

const char* to_string(SiteKind k) {
  for (auto& [kind, name] : kKindNames)
    if (kind == k) return name;
  return "unknown";
}

std::optional<SiteKind> parse_site_kind(std::string_view name) {
  for (auto& [kind, n] : kKindNames)
    if (name == n) return kind;
  return std::nullopt;
}

// --- header and summary as JSON ------------------------------------------------------------

namespace {

/// Paths and argv may hold bytes that are not UTF-8; replace them rather than throw.
std::string dump_json(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json header_json(const Header& h) {
  json sites = json::array();
  for (auto& s : h.sites)
    sites.push_back({{"kind", to_string(s.kind)}, {"function", s.function}, {"op", s.op}, {"pc", s.pc}, {"backend", s.backend}});
  return {{"executable", h.executable}, {"build_id", h.build_id},   {"go_version", h.go_version},
          {"map_impl", h.map_impl},     {"slide", h.slide},         {"pid", h.pid},
          {"command", h.command},       {"start_ns", h.start_ns},   {"stack_depth", h.stack_depth},
          {"dangling", h.dangling},     {"sites", sites}};
}

/// Missing keys take their defaults: a later writer may add or drop fields without a
/// version bump (docs/trace-format.md, "Versioning").
Result<Header> header_from_json(const json& j, uint32_t version) {
  Header h;
  h.version = version;
  h.executable = j.value("executable", "");
  h.build_id = j.value("build_id", "");
  h.go_version = j.value("go_version", "");
  h.map_impl = j.value("map_impl", "");
  h.slide = j.value("slide", int64_t(0));
  h.pid = j.value("pid", int32_t(0));
  h.command = j.value("command", std::vector<std::string>{});
  h.start_ns = j.value("start_ns", uint64_t(0));
  h.stack_depth = j.value("stack_depth", uint32_t(0));
  for (auto& s : j.value("sites", json::array())) {
    Site site;
    std::string kind = s.value("kind", "");
    auto k = parse_site_kind(kind);
    if (!k) return make_error(ErrorKind::kBadInput, "site {}: unknown kind '{}'", h.sites.size(), kind);
    site.kind = *k;
    site.function = s.value("function", "");
    site.op = s.value("op", "");
    site.pc = s.value("pc", uint64_t(0));
    site.backend = s.value("backend", "");
    h.sites.push_back(std::move(site));
  }
  bool gc_site = std::any_of(h.sites.begin(), h.sites.end(),
                             [](const Site& s) { return s.kind == SiteKind::kGcMarkTermination; });
  h.dangling = j.value("dangling", version == 1 && gc_site);
  return h;
}

json summary_json(const Summary& s) {
  return {{"end_ns", s.end_ns},         {"events", s.events},         {"lost", s.lost},
          {"lost_unmarked", s.lost_unmarked},
          {"filtered", s.filtered},     {"end_reason", s.end_reason}, {"warnings", s.warnings}};
}

Summary summary_from_json(const json& j) {
  Summary s;
  s.end_ns = j.value("end_ns", uint64_t(0));
  s.events = j.value("events", uint64_t(0));
  s.lost = j.value("lost", uint64_t(0));
  s.lost_unmarked = j.value("lost_unmarked", s.lost);  // older traces: unknown, so all of them
  s.filtered = j.value("filtered", uint64_t(0));
  s.end_reason = j.value("end_reason", "");
  s.warnings = j.value("warnings", std::vector<std::string>{});
  return s;
}

// --- record framing ------------------------------------------------------------------------

struct RecordHeader {
  uint32_t tag = 0, length = 0, count = 0, crc = 0;
};

RecordHeader parse_record_header(const uint8_t* p) {
  RecordHeader r;
  std::memcpy(&r.tag, p, 4);
  std::memcpy(&r.length, p + 4, 4);
  std::memcpy(&r.count, p + 8, 4);
  std::memcpy(&r.crc, p + 12, 4);
  return r;
}

/// The checksum of a record: its tag, length and count, then its payload.
uint32_t record_crc(const uint8_t* header, const uint8_t* payload, size_t n) {
  return crc32_update(crc32_update(0, header, 12), payload, n);
}

/// Fills the 16-byte record header at REC[0] for the payload that follows it.
void seal_record(uint8_t* rec, uint32_t tag, uint32_t length, uint32_t count) {
  std::memcpy(rec, &tag, 4);
  std::memcpy(rec + 4, &length, 4);
  std::memcpy(rec + 8, &count, 4);
  uint32_t crc = record_crc(rec, rec + c::kRecordHeaderSize, length);
  std::memcpy(rec + 12, &crc, 4);
}

std::vector<uint8_t> make_record(uint32_t tag, const std::string& payload) {
  std::vector<uint8_t> rec(c::kRecordHeaderSize + payload.size());
  std::memcpy(rec.data() + c::kRecordHeaderSize, payload.data(), payload.size());
  seal_record(rec.data(), tag, uint32_t(payload.size()), 0);
  return rec;
}

std::string complete_blocks(size_t n) { return fmt::format("{} complete block{}", n, n == 1 ? "" : "s"); }

std::string tag_name(uint32_t tag) {
  std::string s;
  for (int i = 0; i < 4; i++) {
    char ch = char(tag >> (8 * i));
    if (ch < 0x20 || ch > 0x7e) return fmt::format("{:#010x}", tag);
    s += ch;
  }
  return "'" + s + "'";
}

}  // namespace

// --- Writer ----------------------------------------------------------------------------------

struct Writer::Impl {
  std::string path;
  ScopedFd fd;
  size_t n_sites = 0;
  c::BlockEncoder enc;
  std::vector<uint8_t> buf;            ///< record header + payload of the block being filled
  size_t used = c::kRecordHeaderSize;  ///< bytes of buf in use
  uint32_t count = 0;                  ///< events in the block being filled
  uint64_t file_bytes = 0;
  uint64_t events = 0;
  std::optional<Error> failed;  ///< the first write error; every later call returns it
  bool finished = false;

  Impl(std::string p, ScopedFd f, const Header& h)
      : path(std::move(p)), fd(std::move(f)), n_sites(h.sites.size()), enc(h), buf(2 * c::kBlockTarget) {}

  Result<void> write(const uint8_t* p, size_t n) {
    if (failed) return *failed;
    while (n > 0) {
      ssize_t w = ::write(fd.get(), p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        int e = errno;
        failed = make_error(ErrorKind::kIo, "{}: writing the trace: {}{}", path, std::strerror(e),
                            e == ENOSPC ? " (free some space or record for less time)" : "");
        return *failed;
      }
      p += w;
      n -= size_t(w);
      file_bytes += size_t(w);
    }
    return {};
  }

  Result<void> flush_block() {
    if (count == 0) return {};
    seal_record(buf.data(), c::kTagEvents, uint32_t(used - c::kRecordHeaderSize), count);
    auto r = write(buf.data(), used);
    used = c::kRecordHeaderSize;
    count = 0;
    enc.reset();
    return r;
  }
};

Writer::Writer(Impl* impl) : impl_(impl) {}
Writer::Writer(Writer&& o) noexcept : impl_(std::exchange(o.impl_, nullptr)) {}
Writer& Writer::operator=(Writer&& o) noexcept {
  if (this != &o) {
    Writer old(std::move(o));  // takes O's state; swapped, it flushes and frees ours
    std::swap(impl_, old.impl_);
  }
  return *this;
}

Writer::~Writer() {
  if (!impl_) return;
  // No finish(): keep what was added, as complete blocks, for `gort dump --partial`.
  if (!impl_->finished) (void)impl_->flush_block();
  delete impl_;
  impl_ = nullptr;
}

Result<Writer> Writer::create(const std::string& path, const Header& h) {
  for (size_t i = 0; i < h.sites.size(); i++)
    if (!parse_site_kind(to_string(h.sites[i].kind)))
      return make_error(ErrorKind::kInternal, "trace header: site {} has an unknown kind {}", i, int(h.sites[i].kind));
  ScopedFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return make_error(ErrorKind::kIo, "{}: cannot create the trace: {}", path, std::strerror(errno));
  auto* impl = new Impl(path, std::move(fd), h);
  Writer w(impl);
  std::vector<uint8_t> pre(c::kMagic, c::kMagic + sizeof c::kMagic);
  uint32_t version = kVersion;
  pre.insert(pre.end(), reinterpret_cast<uint8_t*>(&version), reinterpret_cast<uint8_t*>(&version) + 4);
  auto head = make_record(c::kTagHeader, dump_json(header_json(h)));
  pre.insert(pre.end(), head.begin(), head.end());
  GORT_TRY_VOID(impl->write(pre.data(), pre.size()));
  return w;
}

Result<void> Writer::add(const Event& e) {
  Impl& m = *impl_;
  if (m.failed) return *m.failed;
  if (m.finished) return make_error(ErrorKind::kInternal, "{}: event added after finish()", m.path);
  if (e.site >= m.n_sites)
    return make_error(ErrorKind::kInternal, "trace event: site index {} out of range (the header has {} sites)", e.site,
                      m.n_sites);
  if (e.stack.size() > c::kMaxStackFrames)
    return make_error(ErrorKind::kInternal, "trace event: {} stack frames (at most {})", e.stack.size(), c::kMaxStackFrames);
  size_t worst = c::max_encoded_size(e);
  if (m.count > 0 && m.used - c::kRecordHeaderSize + worst > c::kBlockTarget) GORT_TRY_VOID(m.flush_block());
  if (m.buf.size() < m.used + worst) m.buf.resize(m.used + worst);
  m.used = size_t(m.enc.encode(e, m.buf.data() + m.used) - m.buf.data());
  m.count++;
  m.events++;
  return {};
}

Result<void> Writer::flush() {
  if (impl_->finished) return {};
  return impl_->flush_block();
}

Result<void> Writer::add_heap_scan(const std::string& json) {
  Impl& m = *impl_;
  if (m.failed) return *m.failed;
  if (m.finished) return make_error(ErrorKind::kInternal, "{}: heap scan added after finish()", m.path);
  if (json.size() > c::kMaxRecordPayload)
    return make_error(ErrorKind::kInternal, "heap scan record of {} bytes is too large", json.size());
  GORT_TRY_VOID(m.flush_block());
  auto rec = make_record(c::kTagHeapScan, json);
  return m.write(rec.data(), rec.size());
}

Result<void> Writer::finish(const Summary& s) {
  Impl& m = *impl_;
  if (m.finished) return make_error(ErrorKind::kInternal, "{}: finish() called twice", m.path);
  GORT_TRY_VOID(m.flush_block());
  Summary out = s;
  out.events = m.events;
  auto rec = make_record(c::kTagSummary, dump_json(summary_json(out)));
  GORT_TRY_VOID(m.write(rec.data(), rec.size()));
  m.finished = true;
  if (::close(m.fd.release()) != 0)
    return make_error(ErrorKind::kIo, "{}: closing the trace: {}", m.path, std::strerror(errno));
  return {};
}

uint64_t Writer::bytes() const {
  return impl_->file_bytes + (impl_->count ? impl_->used : 0);
}
uint64_t Writer::events() const { return impl_->events; }

// --- Reader ----------------------------------------------------------------------------------

namespace {
struct BlockRef {
  uint64_t offset = 0;
  uint32_t length = 0, count = 0;
};
}  // namespace

struct Reader::Impl {
  std::string path;
  ScopedFd fd;
  uint64_t size = 0;
  bool partial = false;
  Header header;
  std::optional<Summary> summary;
  std::vector<BlockRef> blocks;
  uint64_t first_record = 0;  ///< offset of the first record after the header
  uint64_t events_total = 0;
  std::vector<std::string> notes;
  std::vector<std::string> heap_scans;
  size_t next_block = 0;
  std::vector<uint8_t> buf;
  std::optional<c::BlockDecoder> dec;
  bool in_block = false;
  std::optional<Error> failed;

  template <typename... Args>
  Error corrupt(fmt::format_string<Args...> f, Args&&... args) const {
    return Error{ErrorKind::kBadInput, path + ": " + fmt::format(f, std::forward<Args>(args)...)};
  }

  Result<void> read_at(uint64_t off, void* out, size_t n) const {
    auto* p = static_cast<uint8_t*>(out);
    while (n > 0) {
      ssize_t r = ::pread(fd.get(), p, n, off_t(off));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return make_error(ErrorKind::kIo, "{}: offset {}: read failed: {}", path, off, std::strerror(errno));
      if (r == 0) return corrupt("offset {}: the file ended early (was it truncated while being read?)", off);
      p += r;
      off += uint64_t(r);
      n -= size_t(r);
    }
    return {};
  }

  Result<void> open_file();
  Result<void> read_preamble_and_header();
  Result<uint64_t> read_summary(uint64_t off, const RecordHeader& rh);
  Result<bool> skip_unknown_record(uint64_t off, const RecordHeader& rh);
  Result<void> scan();
  Error cut_short(uint64_t off, const std::string& why) const;
  Result<bool> load_block();
};

Result<void> Reader::Impl::open_file() {
  fd = ScopedFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    int e = errno;
    if (e == ENOENT) return make_error(ErrorKind::kBadInput, "{}: no such file", path);
    if (e == EACCES) return make_error(ErrorKind::kIo, "{}: permission denied (run as a user that can read it)", path);
    return make_error(ErrorKind::kIo, "{}: cannot open: {}", path, std::strerror(e));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return make_error(ErrorKind::kIo, "{}: cannot stat: {}", path, std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return make_error(ErrorKind::kBadInput, "{}: is a directory, not a gort trace", path);
  if (!S_ISREG(st.st_mode)) return make_error(ErrorKind::kBadInput, "{}: not a regular file", path);
  size = uint64_t(st.st_size);
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  return {};
}

Result<void> Reader::Impl::read_preamble_and_header() {
  uint8_t pre[c::kPreambleSize + c::kRecordHeaderSize] = {};
  size_t have = size_t(std::min<uint64_t>(size, sizeof pre));
  GORT_TRY_VOID(read_at(0, pre, have));
  size_t magic_have = std::min(have, sizeof c::kMagic);
  if (size == 0) return corrupt("offset 0: not a gort trace (the file is empty)");
  if (std::memcmp(pre, c::kMagic, magic_have) != 0) return corrupt("offset 0: not a gort trace (no GORTTRC magic)");
  if (have < c::kPreambleSize) return corrupt("offset {}: truncated header (the file is {} bytes)", have, size);
  uint32_t version;
  std::memcpy(&version, pre + 8, 4);
  if (version == 0 || version > kVersion)
    return make_error(ErrorKind::kUnsupported,
                      "{}: offset 8: trace format version {} is not supported (this gort reads version{} {}); a newer "
                      "gort may read it",
                      path, version, kVersion > 1 ? "s 1 to" : "", kVersion);
  if (have < sizeof pre) return corrupt("offset {}: truncated header (the file is {} bytes)", have, size);
  RecordHeader rh = parse_record_header(pre + c::kPreambleSize);
  const uint64_t off = c::kPreambleSize;
  if (rh.tag != c::kTagHeader) return corrupt("offset {}: expected the header record, found tag {} (the file is corrupt)", off, tag_name(rh.tag));
  if (rh.length > c::kMaxRecordPayload) return corrupt("offset {}: header length {} is implausible (the file is corrupt)", off, rh.length);
  uint64_t payload_off = off + c::kRecordHeaderSize;
  if (payload_off + rh.length > size)
    return corrupt("offset {}: truncated header: its {} bytes run past the end of the file ({} bytes)", off, rh.length, size);
  std::string text(rh.length, '\0');
  GORT_TRY_VOID(read_at(payload_off, text.data(), text.size()));
  if (record_crc(pre + c::kPreambleSize, reinterpret_cast<const uint8_t*>(text.data()), text.size()) != rh.crc)
    return corrupt("offset {}: header checksum mismatch (the file is corrupt)", off);
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return corrupt("offset {}: the header is not a JSON object (the file is corrupt)", payload_off);
  try {
    auto h = header_from_json(j, version);
    if (!h) return corrupt("offset {}: bad header: {}", payload_off, h.error().message);
    header = std::move(*h);
  } catch (const json::exception& ex) {
    return corrupt("offset {}: bad header: {}", payload_off, ex.what());
  }
  dec.emplace(header);
  first_record = payload_off + rh.length;
  return {};
}

Error Reader::Impl::cut_short(uint64_t off, const std::string& why) const {
  return corrupt("trace cut short at offset {}: {}no summary (was gort record killed?); pass --partial to read the {}",
                 off, why, complete_blocks(blocks.size()));
}

/// Reads the summary record at OFF; returns the offset after it.
Result<uint64_t> Reader::Impl::read_summary(uint64_t off, const RecordHeader& rh) {
  std::vector<uint8_t> rec(c::kRecordHeaderSize + rh.length);
  GORT_TRY_VOID(read_at(off, rec.data(), rec.size()));
  if (record_crc(rec.data(), rec.data() + c::kRecordHeaderSize, rh.length) != rh.crc)
    return corrupt("offset {}: summary checksum mismatch (the file is corrupt)", off);
  json j = json::parse(rec.begin() + c::kRecordHeaderSize, rec.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return corrupt("offset {}: the summary is not a JSON object (the file is corrupt)", off);
  try {
    summary = summary_from_json(j);
  } catch (const json::exception& ex) {
    return corrupt("offset {}: bad summary: {}", off, ex.what());
  }
  if (summary->events != events_total)
    return corrupt("offset {}: the summary counts {} events but the blocks hold {} (the file is corrupt)", off,
                   summary->events, events_total);
  return off + rec.size();
}

/// A record this gort does not know: skipped when its checksum holds (a newer writer's
/// addition, docs/trace-format.md "Versioning"); false when it does not (corruption).
Result<bool> Reader::Impl::skip_unknown_record(uint64_t off, const RecordHeader& rh) {
  std::vector<uint8_t> rec(c::kRecordHeaderSize + rh.length);
  GORT_TRY_VOID(read_at(off, rec.data(), rec.size()));
  return record_crc(rec.data(), rec.data() + c::kRecordHeaderSize, rh.length) == rh.crc;
}

Result<void> Reader::Impl::scan() {
  uint8_t hdr[c::kRecordHeaderSize];
  uint64_t off = first_record;
  auto torn = [&](uint64_t at, const std::string& why) -> Result<void> {
    if (!partial) return cut_short(at, why);
    notes.push_back(fmt::format("trace cut short at offset {}: {}no summary; read the {}", at, why,
                                complete_blocks(blocks.size())));
    return {};
  };
  while (off < size) {
    if (size - off < c::kRecordHeaderSize)
      return torn(off, fmt::format("a block header torn after {} bytes, ", size - off));
    GORT_TRY_VOID(read_at(off, hdr, sizeof hdr));
    RecordHeader rh = parse_record_header(hdr);
    bool known = rh.tag == c::kTagEvents || rh.tag == c::kTagSummary || rh.tag == c::kTagHeapScan;
    if (rh.length > c::kMaxRecordPayload)
      return corrupt("offset {}: {} record length {} is implausible (the file is corrupt)", off, tag_name(rh.tag), rh.length);
    uint64_t end = off + c::kRecordHeaderSize + rh.length;
    if (end > size) {
      if (!known) return corrupt("offset {}: bad record tag {} (the file is corrupt)", off, tag_name(rh.tag));
      return torn(off, fmt::format("its {}-byte block runs past the end of the file ({} bytes), ", rh.length, size));
    }
    if (rh.tag == c::kTagEvents) {
      blocks.push_back(BlockRef{off, rh.length, rh.count});
      events_total += rh.count;
      off = end;
    } else if (rh.tag == c::kTagHeapScan) {
      std::vector<uint8_t> rec(c::kRecordHeaderSize + rh.length);
      GORT_TRY_VOID(read_at(off, rec.data(), rec.size()));
      if (record_crc(rec.data(), rec.data() + c::kRecordHeaderSize, rh.length) != rh.crc) {
        // The last record of a trace cut short by a crash: its pages may never have landed.
        if (partial && end == size) return torn(off, "a heap scan record with a bad checksum (torn write), ");
        return corrupt("offset {}: heap scan checksum mismatch (the file is corrupt)", off);
      }
      heap_scans.emplace_back(reinterpret_cast<const char*>(rec.data() + c::kRecordHeaderSize), rh.length);
      off = end;
    } else if (rh.tag == c::kTagSummary) {
      GORT_TRY(off, read_summary(off, rh));
      if (off != size) return corrupt("offset {}: {} bytes after the summary (the file is corrupt)", off, size - off);
      return {};
    } else {
      GORT_TRY(bool skippable, skip_unknown_record(off, rh));
      if (!skippable) return corrupt("offset {}: bad record tag {} (the file is corrupt)", off, tag_name(rh.tag));
      off = end;
    }
  }
  return torn(off, "");
}

/// Reads and checks the next block; false when it was a torn last block, dropped (--partial).
Result<bool> Reader::Impl::load_block() {
  const BlockRef& b = blocks[next_block++];
  buf.resize(c::kRecordHeaderSize + b.length);
  GORT_TRY_VOID(read_at(b.offset, buf.data(), buf.size()));
  RecordHeader rh = parse_record_header(buf.data());
  if (rh.length != b.length || rh.count != b.count)
    return corrupt("offset {}: the block header changed while reading (is the trace being rewritten?)", b.offset);
  if (record_crc(buf.data(), buf.data() + c::kRecordHeaderSize, b.length) != rh.crc) {
    // A trace cut short by a crash (not a kill) can end in a block whose pages never
    // reached the disk: with --partial, drop a bad last block instead of failing.
    if (partial && !summary && next_block == blocks.size()) {
      events_total -= b.count;
      notes.push_back(fmt::format("dropped the last block (offset {}, {} events): checksum mismatch, torn write", b.offset, b.count));
      return false;
    }
    return corrupt("offset {}: block checksum mismatch (the file is corrupt)", b.offset);
  }
  dec->reset(buf.data() + c::kRecordHeaderSize, buf.data() + buf.size(), b.offset, b.count);
  in_block = true;
  return true;
}

Reader::Reader(Impl* impl) : impl_(impl) {}
Reader::Reader(Reader&& o) noexcept : impl_(std::exchange(o.impl_, nullptr)) {}
Reader& Reader::operator=(Reader&& o) noexcept {
  if (this != &o) {
    delete impl_;
    impl_ = std::exchange(o.impl_, nullptr);
  }
  return *this;
}
Reader::~Reader() { delete impl_; }

Result<Reader> Reader::open(const std::string& path, bool partial) {
  Reader r(new Impl);
  Impl& m = *r.impl_;
  m.path = path;
  m.partial = partial;
  GORT_TRY_VOID(m.open_file());
  GORT_TRY_VOID(m.read_preamble_and_header());
  GORT_TRY_VOID(m.scan());
  return r;
}

const Header& Reader::header() const { return impl_->header; }
const std::optional<Summary>& Reader::summary() const { return impl_->summary; }
const std::vector<std::string>& Reader::heap_scans() const { return impl_->heap_scans; }
uint64_t Reader::event_count() const { return impl_->events_total; }
size_t Reader::block_count() const { return impl_->blocks.size(); }
const std::vector<std::string>& Reader::notes() const { return impl_->notes; }

Result<bool> Reader::next(Event& e) {
  Impl& m = *impl_;
  for (;;) {
    if (m.failed) return *m.failed;
    if (m.in_block) {
      int r = m.dec->next(e);
      if (r > 0) return true;
      if (r < 0) {
        m.failed = m.corrupt("{}", m.dec->error());
        continue;
      }
      m.in_block = false;
    }
    if (m.next_block == m.blocks.size()) return false;
    auto loaded = m.load_block();
    if (!loaded) m.failed = loaded.error();
  }
}

// --- goroutine ids ---------------------------------------------------------------------------

GoidResolver::GoidResolver(const Header& h) {
  for (auto& s : h.sites) kinds_.push_back(s.kind);
}

void GoidResolver::apply(Event& e) {
  SiteKind k = e.site < kinds_.size() ? kinds_[e.site] : SiteKind::kEntry;
  if (e.g == 0) return;
  if (k == SiteKind::kGoStart) {
    // The g's previous goroutine (if any) is over: this g now runs a new one.
    if (e.goid != 0) live_[e.g] = e.goid;
    else live_.erase(e.g);
    return;
  }
  auto it = live_.find(e.g);
  if (it == live_.end()) return;
  if (e.goid == 0) e.goid = it->second;
  if (k == SiteKind::kGoExit) live_.erase(it);
}

void resolve_goids(const Header& h, std::vector<Event>& events) {
  GoidResolver r(h);
  for (auto& e : events) r.apply(e);
}

}  // namespace gort::core::trace

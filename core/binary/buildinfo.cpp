// .go.buildinfo: 32-byte header "\xff Go buildinf:" + ptrSize + flags, then (flags & 2,
// Go 1.18+) two varint-prefixed strings: runtime.buildVersion and runtime.modinfo, the
// latter wrapped in 16-byte sentinels. Older (pointer) format: two pointers to Go string
// headers. Sources: cmd/link/internal/ld/data.go@go1.26.10, debug/buildinfo/buildinfo.go.

#include "core/binary/buildinfo.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstring>
#include <sstream>

namespace gort::core {

namespace {
constexpr char kMagic[] = "\xff Go buildinf:";
constexpr size_t kMagicLen = 14;
constexpr size_t kHeaderLen = 32;

// Digits at I, saturating at INT_MAX: "go1.99999999999" is an unsupported version, not
// a signed overflow.
int parse_int(std::string_view s, size_t& i) {
  int v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    int d = s[i++] - '0';
    v = v > (INT_MAX - d) / 10 ? INT_MAX : v * 10 + d;
  }
  return v;
}

bool read_varstring(Bytes b, size_t& off, std::string& out) {
  uint64_t n;
  if (!read_uvarint(b, off, n) || n > b.size() - off) return false;
  out.assign(reinterpret_cast<const char*>(b.data() + off), n);
  off += n;
  return true;
}

// Go string header {ptr, len} at ADDR in the binary.
std::optional<std::string> read_go_string(const ElfFile& elf, uint64_t hdr_addr) {
  auto h = elf.read(RemoteAddr(hdr_addr), 16);
  if (!h) return std::nullopt;
  uint64_t p = load_le<uint64_t>(h->data()), n = load_le<uint64_t>(h->data() + 8);
  if (n == 0) return std::string();
  if (n > (1u << 24)) return std::nullopt;
  auto s = elf.read(RemoteAddr(p), n);
  if (!s) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(s->data()), n);
}

void parse_modinfo(BuildInfo& bi) {
  std::string m = bi.modinfo;
  // Strip the 16-byte sentinels when present.
  if (m.size() >= 33 && m[m.size() - 17] == '\n') m = m.substr(16, m.size() - 32);
  std::istringstream in(m);
  std::string line;
  while (std::getline(in, line)) {
    auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    std::string key = line.substr(0, tab), rest = line.substr(tab + 1);
    if (key == "path") bi.path = rest;
    else if (key == "mod") bi.main_module = rest.substr(0, rest.find('\t'));
    else if (key == "build") {
      auto eq = rest.find('=');
      if (eq == std::string::npos) continue;
      std::string k = rest.substr(0, eq), v = rest.substr(eq + 1);
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);  // quoted values
      bi.settings[k] = v;
    }
  }
}
}  // namespace

std::optional<GoVersion> GoVersion::parse(std::string_view s) {
  GoVersion v;
  v.raw = std::string(s);
  size_t at = s.find("go1.");
  if (at == std::string_view::npos) return std::nullopt;
  size_t i = at + 2;
  v.major = parse_int(s, i);
  if (i >= s.size() || s[i] != '.') return std::nullopt;
  i++;
  size_t mstart = i;
  v.minor = parse_int(s, i);
  if (i == mstart) return std::nullopt;
  if (i < s.size() && s[i] == '.') { i++; v.patch = parse_int(s, i); }
  size_t x = s.find(" X:");
  if (x != std::string_view::npos) {
    std::string_view list = s.substr(x + 3);
    list = list.substr(0, list.find(' '));
    while (!list.empty()) {
      size_t c = list.find(',');
      v.experiments.emplace_back(list.substr(0, c));
      if (c == std::string_view::npos) break;
      list.remove_prefix(c + 1);
    }
  }
  return v;
}

bool GoVersion::has_experiment(std::string_view name) const {
  return std::find(experiments.begin(), experiments.end(), name) != experiments.end();
}

std::string GoVersion::short_name() const { return fmt::format("go{}.{}", major, minor); }

bool BuildInfo::race() const {
  auto it = settings.find("-race");
  return it != settings.end() && it->second == "true";
}

bool BuildInfo::checkptr() const {
  if (race()) return true;
  for (const char* k : {"-gcflags", "-asmflags"}) {
    auto it = settings.find(k);
    if (it != settings.end() && it->second.find("checkptr") != std::string::npos) return true;
  }
  return false;
}

std::vector<std::string> BuildInfo::goexperiments() const {
  std::vector<std::string> out = version.experiments;
  auto it = settings.find("GOEXPERIMENT");
  if (it != settings.end()) {
    std::string_view l = it->second;
    while (!l.empty()) {
      size_t c = l.find(',');
      std::string e(l.substr(0, c));
      if (!e.empty() && std::find(out.begin(), out.end(), e) == out.end()) out.push_back(e);
      if (c == std::string_view::npos) break;
      l.remove_prefix(c + 1);
    }
  }
  return out;
}

Result<BuildInfo> parse_buildinfo_blob(Bytes b, const ElfFile* elf) {
  if (b.size() < kHeaderLen || std::memcmp(b.data(), kMagic, kMagicLen) != 0)
    return make_error(ErrorKind::kBadInput, "no Go build info header");
  uint8_t ptr_size = b[14], flags = b[15];
  if (flags & 1) return make_error(ErrorKind::kUnsupported, "big-endian Go binary; gort supports linux/amd64");
  BuildInfo bi;
  std::string version;
  if (flags & 2) {
    size_t off = kHeaderLen;
    if (!read_varstring(b, off, version) || !read_varstring(b, off, bi.modinfo))
      return make_error(ErrorKind::kBadInput, "truncated Go build info (strings run past the end at offset {})", off);
  } else {
    // Pre-1.18 pointer format: [16] = &buildVersion, [16+ptrSize] = &modinfo.
    if (ptr_size != 8 || !elf) return make_error(ErrorKind::kUnsupported, "Go build info in the pre-1.18 pointer format");
    auto v = read_go_string(*elf, load_le<uint64_t>(b.data() + 16));
    auto m = read_go_string(*elf, load_le<uint64_t>(b.data() + 24));
    if (!v) return make_error(ErrorKind::kBadInput, "cannot read runtime.buildVersion through the build info pointer");
    version = *v;
    bi.modinfo = m.value_or("");
  }
  auto gv = GoVersion::parse(version);
  if (!gv) return make_error(ErrorKind::kBadInput, "unrecognised Go version string '{}' in build info", version);
  bi.version = *gv;
  parse_modinfo(bi);
  return bi;
}

Result<BuildInfo> read_buildinfo(const ElfFile& elf) {
  Bytes blob;
  if (const auto* s = elf.section(".go.buildinfo")) {
    GORT_TRY(blob, elf.section_data(*s));
  } else {
    // No section headers (sstrip, packers): the header is 16-byte aligned in a data segment.
    Bytes f = elf.file();
    for (size_t off = 0; off + kHeaderLen <= f.size(); off += 16) {
      if (f[off] == 0xff && std::memcmp(f.data() + off, kMagic, kMagicLen) == 0) {
        blob = f.subspan(off);
        break;
      }
    }
  }
  if (blob.empty())
    return make_error(ErrorKind::kBadInput,
                      "{}: not a Go binary (no Go build info found); gort works on programs built by Go 1.21-1.26",
                      elf.path());
  auto r = parse_buildinfo_blob(blob, &elf);
  if (!r) return r.error().with_context(elf.path());
  return r;
}

}  // namespace gort::core

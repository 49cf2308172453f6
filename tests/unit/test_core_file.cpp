// CoreFile (core/target/core_file.h) on synthetic ELF cores built here byte by byte: memory
// from PT_LOAD segments (and from the executable for segments the kernel did not dump),
// threads from NT_PRSTATUS, auxv, NT_FILE, and one-line errors with offsets for truncated
// or corrupt cores (every prefix of a valid core is tried: none may crash).

#include "core/target/core_file.h"

#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

using namespace gort::core;

namespace {

/// A tiny ELF core writer: header, program headers, one PT_NOTE segment, PT_LOAD segments.
struct CoreBuilder {
  struct Load {
    uint64_t vaddr;
    std::vector<uint8_t> bytes;
    uint64_t memsz;
  };
  struct Note {
    std::string name;
    uint32_t type;
    std::vector<uint8_t> desc;
  };
  std::vector<Load> loads;
  std::vector<Note> notes;
  uint16_t e_type = 4;

  template <typename T>
  static void put(std::vector<uint8_t>& b, size_t off, T v) {
    if (b.size() < off + sizeof v) b.resize(off + sizeof v);
    std::memcpy(b.data() + off, &v, sizeof v);
  }

  void thread(int32_t tid, uint64_t rip, uint64_t rsp, uint64_t r14, uint64_t fs_base, uint16_t sig = 0) {
    std::vector<uint8_t> d(336, 0);
    put<uint16_t>(d, 12, sig);
    put<int32_t>(d, 32, tid);
    put<uint64_t>(d, 112 + 8 * 1, r14);
    put<uint64_t>(d, 112 + 8 * 4, rsp + 0x10);  // rbp
    put<uint64_t>(d, 112 + 8 * 10, 0xaaaa);      // rax
    put<uint64_t>(d, 112 + 8 * 16, rip);
    put<uint64_t>(d, 112 + 8 * 19, rsp);
    put<uint64_t>(d, 112 + 8 * 21, fs_base);
    notes.push_back({"CORE", 1, d});
  }

  std::vector<uint8_t> build() const {
    std::vector<uint8_t> notebytes;
    for (const Note& n : notes) {
      size_t at = notebytes.size();
      put<uint32_t>(notebytes, at, static_cast<uint32_t>(n.name.size() + 1));
      put<uint32_t>(notebytes, at + 4, static_cast<uint32_t>(n.desc.size()));
      put<uint32_t>(notebytes, at + 8, n.type);
      std::vector<uint8_t> name(n.name.begin(), n.name.end());
      name.resize((n.name.size() + 1 + 3) & ~size_t(3), 0);
      notebytes.insert(notebytes.end(), name.begin(), name.end());
      std::vector<uint8_t> desc = n.desc;
      desc.resize((desc.size() + 3) & ~size_t(3), 0);
      notebytes.insert(notebytes.end(), desc.begin(), desc.end());
    }
    uint16_t phnum = static_cast<uint16_t>(1 + loads.size());
    size_t off = 64 + 56 * phnum;
    std::vector<uint8_t> f(off, 0);
    std::memcpy(f.data(), "\x7f" "ELF", 4);
    f[4] = 2;
    f[5] = 1;
    f[6] = 1;
    put<uint16_t>(f, 16, e_type);
    put<uint16_t>(f, 18, 62);
    put<uint64_t>(f, 32, 64);
    put<uint16_t>(f, 52, 64);
    put<uint16_t>(f, 54, 56);
    put<uint16_t>(f, 56, phnum);
    auto ph = [&](int i, uint32_t type, uint64_t o, uint64_t va, uint64_t filesz, uint64_t memsz) {
      size_t p = 64 + 56 * size_t(i);
      put<uint32_t>(f, p, type);
      put<uint32_t>(f, p + 4, 6);
      put<uint64_t>(f, p + 8, o);
      put<uint64_t>(f, p + 16, va);
      put<uint64_t>(f, p + 32, filesz);
      put<uint64_t>(f, p + 40, memsz);
    };
    ph(0, 4, off, 0, notebytes.size(), 0);
    f.insert(f.end(), notebytes.begin(), notebytes.end());
    for (size_t i = 0; i < loads.size(); ++i) {
      ph(static_cast<int>(i + 1), 1, f.size(), loads[i].vaddr, loads[i].bytes.size(), loads[i].memsz);
      f.insert(f.end(), loads[i].bytes.begin(), loads[i].bytes.end());
    }
    return f;
  }
};

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i);
  return b;
}

CoreBuilder sample() {
  CoreBuilder c;
  c.thread(101, 0x401000, 0xc000100000, 0xc000002000, 0x7f0000001000, 6);
  c.thread(102, 0x402000, 0xc000200000, 0xc000003000, 0x7f0000002000);
  std::vector<uint8_t> auxv;
  CoreBuilder::put<uint64_t>(auxv, 0, 9);  // AT_ENTRY
  CoreBuilder::put<uint64_t>(auxv, 8, 0x401234);
  CoreBuilder::put<uint64_t>(auxv, 16, 0);
  CoreBuilder::put<uint64_t>(auxv, 24, 0);
  c.notes.push_back({"CORE", 6, auxv});
  std::vector<uint8_t> nt;
  CoreBuilder::put<uint64_t>(nt, 0, 1);
  CoreBuilder::put<uint64_t>(nt, 8, 4096);
  CoreBuilder::put<uint64_t>(nt, 16, 0x400000);
  CoreBuilder::put<uint64_t>(nt, 24, 0x402000);
  CoreBuilder::put<uint64_t>(nt, 32, 0);
  for (char ch : std::string("/bin/prog")) nt.push_back(static_cast<uint8_t>(ch));
  nt.push_back(0);
  c.notes.push_back({"CORE", 0x46494c45, nt});
  c.loads.push_back({0xc000000000, pattern(0x1000, 1), 0x1000});
  c.loads.push_back({0xc000001000, pattern(0x1000, 7), 0x1000});  // adjacent: reads may span both
  c.loads.push_back({0x400000, {}, 0x2000});                       // a file mapping, not dumped
  return c;
}

}  // namespace

TEST_CASE("core file: threads, auxv, NT_FILE and memory from PT_LOAD") {
  auto bytes = sample().build();
  auto c = CoreFile::from_bytes(bytes, "core.test");
  REQUIRE_MESSAGE(c.ok(), c.error().message);
  auto th = (*c)->threads();
  REQUIRE(th.ok());
  REQUIRE(th->size() == 2);
  CHECK((*th)[0].tid == 101);
  CHECK((*th)[0].rip == 0x401000);
  CHECK((*th)[0].rsp == 0xc000100000);
  CHECK((*th)[0].rbp == 0xc000100010);
  CHECK((*th)[0].rax == 0xaaaa);
  CHECK((*th)[0].r14 == 0xc000002000);
  CHECK((*th)[0].fs_base == 0x7f0000001000);
  CHECK((*th)[0].stop_reason == "signal SIGABRT");
  CHECK((*th)[1].tid == 102);
  CHECK((*th)[1].stop_reason.empty());
  CHECK((*c)->signal() == 6);
  REQUIRE((*c)->auxv_entry().has_value());
  CHECK(*(*c)->auxv_entry() == 0x401234);
  REQUIRE((*c)->mapped_files().size() == 1);
  CHECK((*c)->mapped_files()[0].path == "/bin/prog");
  CHECK((*c)->mapped_files()[0].end == RemoteAddr(0x402000));

  auto v = (*c)->read_u8(RemoteAddr(0xc000000010));
  REQUIRE(v.ok());
  CHECK(*v == 0x11);
  // Across two adjacent segments.
  std::vector<uint8_t> buf(16);
  REQUIRE((*c)->read(RemoteAddr(0xc000000ff8), buf).ok());
  CHECK(buf[0] == static_cast<uint8_t>(1 + 0xff8));
  CHECK(buf[8] == 7);
  // Unmapped, and past the end of the last segment.
  auto e = (*c)->read_u64(RemoteAddr(0xd000000000));
  REQUIRE_FALSE(e.ok());
  CHECK(e.error().message.find("not in the core") != std::string::npos);
  CHECK_FALSE((*c)->read(RemoteAddr(0xc000001ffc), buf).ok());
  // Not dumped and no executable attached: the read fails and says why.
  auto nd = (*c)->read_u64(RemoteAddr(0x400100));
  REQUIRE_FALSE(nd.ok());
  CHECK(nd.error().message.find("not dumped") != std::string::npos);
}

TEST_CASE("core file: not a core, corrupt and truncated cores are one-line errors with offsets") {
  auto bytes = sample().build();
  SUBCASE("every prefix fails cleanly or parses") {
    for (size_t n = 0; n < bytes.size(); ++n) {
      auto c = CoreFile::from_bytes(std::span<const uint8_t>(bytes.data(), n), "cut");
      REQUIRE_FALSE(c.ok());  // the last PT_LOAD ends at the end of the file
      CHECK(c.error().kind == ErrorKind::kBadInput);
      CHECK(c.error().message.find('\n') == std::string::npos);
    }
  }
  SUBCASE("truncated inside a segment names the offsets") {
    auto c = CoreFile::from_bytes(std::span<const uint8_t>(bytes.data(), bytes.size() - 100), "cut");
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().message.find("truncated core") != std::string::npos);
    CHECK(c.error().message.find("0x") != std::string::npos);
  }
  SUBCASE("an executable is not a core") {
    CoreBuilder b = sample();
    b.e_type = 2;
    auto exe = b.build();
    auto c = CoreFile::from_bytes(exe, "prog");
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().message.find("not a core file (ELF type EXEC") != std::string::npos);
  }
  SUBCASE("not ELF") {
    std::vector<uint8_t> junk(200, 'x');
    auto c = CoreFile::from_bytes(junk, "junk");
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().message.find("not an ELF core file") != std::string::npos);
  }
  SUBCASE("a note that claims more than its segment") {
    auto b = bytes;
    size_t notes_at = 64 + 56 * 4;
    CoreBuilder::put<uint32_t>(b, notes_at + 4, 0x7fffffff);  // descsz of the first note
    auto c = CoreFile::from_bytes(b, "bad");
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().message.find("corrupt core") != std::string::npos);
    CHECK(c.error().message.find(fmt::format("{:#x}", notes_at)) != std::string::npos);
  }
  SUBCASE("p_filesz > p_memsz") {
    auto b = bytes;
    CoreBuilder::put<uint64_t>(b, 64 + 56 * 1 + 40, 1);
    auto c = CoreFile::from_bytes(b, "bad");
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().message.find("p_filesz") != std::string::npos);
  }
  SUBCASE("program headers past the end") {
    auto b = bytes;
    CoreBuilder::put<uint64_t>(b, 32, b.size() - 10);
    auto c = CoreFile::from_bytes(b, "bad");
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().message.find("truncated core") != std::string::npos);
  }
  SUBCASE("no threads") {
    CoreBuilder nb = sample();
    nb.notes.erase(nb.notes.begin(), nb.notes.begin() + 2);
    auto b = nb.build();
    auto c = CoreFile::from_bytes(b, "bad");
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().message.find("no NT_PRSTATUS") != std::string::npos);
  }
}

TEST_CASE("core file: random corruption never crashes") {
  auto bytes = sample().build();
  uint32_t seed = 12345;
  for (int round = 0; round < 3000; ++round) {
    auto b = bytes;
    for (int k = 0; k < 4; ++k) {
      seed = seed * 1103515245 + 12345;
      size_t at = (seed >> 8) % std::min<size_t>(b.size(), 64 + 56 * 4 + 900);
      seed = seed * 1103515245 + 12345;
      b[at] = static_cast<uint8_t>(seed >> 16);
    }
    auto c = CoreFile::from_bytes(b, "fuzz");
    if (c.ok()) {
      std::vector<uint8_t> buf(64);
      (void)(*c)->read(RemoteAddr(0xc000000000), buf);
      (void)(*c)->read(RemoteAddr(0x400000), buf);
      (void)(*c)->threads();
    } else {
      CHECK(c.error().message.find('\n') == std::string::npos);
    }
  }
}

// In-process probe trampolines (core/inproc), executed for real: a small function in an
// executable page of this process, shaped like Go code (the entry's stack check against
// g.stackguard0 in R14, a flag store), patched at its entry and at the store; each call
// must leave one published record per site with the registers, the g's thread id and the
// frame-pointer chain, and the function must compute what it did unpatched.

#include "core/disasm/decoder.h"
#include "core/inproc/trampoline.h"
#include "core/target/process.h"

#include <doctest/doctest.h>
#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace gort::core;
using namespace gort::core::inproc;

namespace {

const Decoder& decoder() {
  static Decoder d = Decoder::create().value();
  return d;
}

// entry:  cmp rsp, [r14+0x10]; jbe more      (Go's stack check)
// +6:     xor byte [rbx+0x22], 1             (set the writing flag)
// +10:    mov rax, rbx
// +13:    xor byte [rbx+0x22], 1             (clear it)
// +17:    ret
// more:   ud2                                (never: stackguard0 is 0)
const std::vector<uint8_t> kFunc = {0x49, 0x3b, 0x66, 0x10, 0x76, 0x0c, 0x80, 0x73, 0x22, 0x01,
                                    0x48, 0x89, 0xd8, 0x80, 0x73, 0x22, 0x01, 0xc3, 0x0f, 0x0b};

struct FakeM {
  uint64_t pad[8];
  uint64_t procid;  // offset 64
};
struct FakeG {
  uint64_t lo, hi, stackguard0;  // 0, 8, 16
  uint64_t pad[3];
  FakeM* m;  // 48
};
struct Frame {
  Frame* next;
  uint64_t ret;
};
/// A goroutine for the function: its g (stack bounds around a 3-frame chain), m, a map.
struct FakeGoroutine {
  FakeM m{};
  Frame frames[3];
  FakeG g{};
  uint8_t map[64] = {};
  FakeGoroutine() {
    m.procid = 4242;
    frames[0] = {&frames[1], 0x1111};
    frames[1] = {&frames[2], 0x2222};
    frames[2] = {nullptr, 0x3333};
    g.lo = reinterpret_cast<uint64_t>(&frames[0]);
    g.hi = reinterpret_cast<uint64_t>(&frames[3]);
    g.m = &m;
  }
};

uint64_t call(void* fn, FakeG* g, void* fp, void* map) {
  struct {
    void* fn;
    FakeG* g;
    void* fp;
  } args{fn, g, fp}, *ap = &args;
  uint64_t out;
  // Below the red zone: the CALL and the trampoline's pushes must not land on it.
  asm volatile(
      "mov 8(%%rdi), %%r14\n\t"
      "push %%rbp\n\t"
      "mov 16(%%rdi), %%rbp\n\t"
      "sub $256, %%rsp\n\t"
      "call *(%%rdi)\n\t"
      "add $256, %%rsp\n\t"
      "pop %%rbp\n\t"
      : "=a"(out), "+D"(ap)
      : "b"(map)
      : "r14", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "r12", "r13", "memory", "cc");
  return out;
}

struct Page {
  uint8_t* p;
  Page() {
    p = static_cast<uint8_t*>(mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    REQUIRE(p != MAP_FAILED);
    std::memset(p, 0xcc, 4096);
  }
  ~Page() { munmap(p, 4096); }
  void put(size_t off, const std::vector<uint8_t>& bytes) { std::memcpy(p + off, bytes.data(), bytes.size()); }
};

/// A ring of SLOTS records in this process's memory (page-aligned, as the program's is).
struct TestRing {
  std::vector<uint8_t> mem;
  uint64_t addr;
  uint8_t* p;
  explicit TestRing(uint64_t slots) : mem(ring::kDataOffset + slots * ring::kRecord + 4096) {
    addr = (reinterpret_cast<uint64_t>(mem.data()) + 4095) & ~uint64_t{4095};
    p = reinterpret_cast<uint8_t*>(addr);
  }
};

}  // namespace

TEST_CASE("inproc: a patched function records every call and still computes the same") {
  Page page;
  uint64_t fn = reinterpret_cast<uint64_t>(page.p);
  std::memcpy(page.p, kFunc.data(), kFunc.size());
  Bytes code(page.p, kFunc.size());

  auto entry = plan_patch(decoder(), code, RemoteAddr(fn), RemoteAddr(fn));
  REQUIRE(entry);
  CHECK(entry->before == 2);
  CHECK(entry->length == 6);  // CMP (4) + JBE rel8 (2), re-run in the trampoline first
  auto mid = plan_patch(decoder(), code, RemoteAddr(fn), RemoteAddr(fn + 6));
  REQUIRE(mid);
  CHECK(mid->before == 0);
  CHECK(mid->length == 7);  // XOR (4) + MOV (3)
  // At the RET: too few bytes after it, so the JMP starts at the store before it, which
  // runs before the record (the state at the RET), and the RET runs from the trampoline.
  auto ret = plan_patch(decoder(), code, RemoteAddr(fn), RemoteAddr(fn + 17));
  REQUIRE(ret);
  CHECK(ret->start.value() == fn + 13);
  CHECK(ret->length == 5);
  CHECK(ret->before == 1);
  CHECK(ret->flags_dead);

  constexpr uint64_t kSlots = 64;
  TestRing tr(kSlots);
  uint8_t* ring_p = tr.p;
  TrampolineParams prm;
  prm.ring = tr.addr;
  prm.slots = kSlots;
  prm.g_m = 48;
  prm.m_procid = 64;
  prm.regs = {"r14", "rbx", "rbp", "rsp"};
  uint64_t t_entry = fn + 0x400, t_mid = fn + 0x800, t_ret = fn + 0xc00;
  prm.cookie = 1;
  auto a = build_trampoline(*entry, prm, t_entry);
  prm.cookie = 2;
  auto b = build_trampoline(*mid, prm, t_mid);
  prm.cookie = 3;
  auto c = build_trampoline(*ret, prm, t_ret);
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE(c);
  CHECK(a->size() < 1024);
  page.put(0xc00, *c);
  for (const Insn& in : decoder().decode(Bytes(a->data(), a->size()), RemoteAddr(t_entry))) CHECK(!in.invalid);
  page.put(0x400, *a);
  page.put(0x800, *b);

  FakeGoroutine fg;
  FakeG& g = fg.g;
  Frame* frames = fg.frames;
  uint8_t* map = fg.map;

  CHECK(call(page.p, &g, &frames[0], map) == reinterpret_cast<uint64_t>(map));
  auto ja = jump_bytes(*entry, 0, t_entry);
  auto jb = jump_bytes(*mid, 0, t_mid);
  auto jc = jump_bytes(*ret, 0, t_ret);
  REQUIRE(ja);
  REQUIRE(jb);
  REQUIRE(jc);
  CHECK(ja->size() == 6);
  CHECK((*ja)[0] == 0xe9);
  CHECK((*ja)[5] == 0xcc);
  page.put(0, *ja);
  page.put(6, *jb);
  page.put(13, *jc);

  for (int i = 0; i < 10; i++) CHECK(call(page.p, &g, &frames[0], map) == reinterpret_cast<uint64_t>(map));
  CHECK(map[0x22] == 0);  // both flag stores ran, relocated
  auto u64 = [&](uint64_t off) {
    uint64_t v;
    std::memcpy(&v, ring_p + off, 8);
    return v;
  };
  CHECK(u64(ring::kHead) == 30);
  CHECK(u64(ring::kDrops) == 0);
  uint64_t prev_tsc = 0, first_rsp = 0;
  for (uint64_t i = 0; i < 30; i++) {
    uint64_t r = ring::kDataOffset + i * ring::kRecord;
    CHECK(u64(r + ring::kSeq) == i + 1);
    uint32_t cookie;
    std::memcpy(&cookie, ring_p + r + ring::kCookie, 4);
    CHECK(cookie == i % 3 + 1);  // the entry, the first store, the RET
    CHECK(u64(r + ring::kTid) == 4242);
    // prm.regs: r14 (kept), rbx (pushed by the trampoline: read back from its stack), rbp,
    // rsp (the site's, above the trampoline's pushes).
    CHECK(u64(r + ring::kRegs) == reinterpret_cast<uint64_t>(&g));
    CHECK(u64(r + ring::kRegs + 8) == reinterpret_cast<uint64_t>(map));
    CHECK(u64(r + ring::kRegs + 16) == reinterpret_cast<uint64_t>(&frames[0]));
    uint64_t rsp = u64(r + ring::kRegs + 24);
    if (i == 0) first_rsp = rsp;
    CHECK(rsp == first_rsp);  // the same at both sites: the function has no frame
    CHECK(u64(r + ring::kChain) == 0x1111);
    CHECK(u64(r + ring::kChain + 8) == 0x2222);
    CHECK(u64(r + ring::kChain + 16) == 0x3333);
    CHECK(u64(r + ring::kChain + 24) == 0);
    // [rsp] at the entry is the return address into call().
    uint64_t ret = u64(r + ring::kStack);
    if (cookie == 1) CHECK((ret < fn || ret > fn + 4096));
    uint64_t tsc = u64(r + ring::kTsc);
    CHECK(tsc >= prev_tsc);
    prev_tsc = tsc;
  }

  // A full ring drops and counts, never blocks: 64 slots, nobody reading.
  for (int i = 0; i < 100; i++) call(page.p, &g, &frames[0], map);
  CHECK(u64(ring::kHead) == kSlots);
  CHECK(u64(ring::kDrops) == 30 + 300 - kSlots);
  CHECK(map[0x22] == 0);
}

TEST_CASE("inproc: a map register tested against the goroutine's stack at the hit sets bit 31 of the cookie") {
  Page page;
  uint64_t fn = reinterpret_cast<uint64_t>(page.p);
  std::memcpy(page.p, kFunc.data(), kFunc.size());
  auto mid = plan_patch(decoder(), Bytes(page.p, kFunc.size()), RemoteAddr(fn), RemoteAddr(fn + 6));
  REQUIRE(mid);
  constexpr uint64_t kSlots = 64;
  TestRing tr(kSlots);
  uint8_t* ring_p = tr.p;
  TrampolineParams prm;
  prm.ring = tr.addr;
  prm.slots = kSlots;
  prm.cookie = 5;
  prm.regs = {"r14", "rbx", "rsp"};
  prm.on_stack_reg = "rbx";
  auto t = build_trampoline(*mid, prm, fn + 0x800);
  REQUIRE(t);
  page.put(0x800, *t);
  auto j = jump_bytes(*mid, 0, fn + 0x800);
  REQUIRE(j);
  page.put(6, *j);

  FakeGoroutine fg;  // on this thread's stack, above the site's rsp
  auto cookie_of = [&](uint64_t i) {
    uint32_t c;
    std::memcpy(&c, ring_p + ring::kDataOffset + i * ring::kRecord + ring::kCookie, 4);
    return c;
  };
  // The map lies past g.stack.hi (the end of the frames): not on the goroutine's stack.
  CHECK(call(page.p, &fg.g, &fg.frames[0], fg.map) == reinterpret_cast<uint64_t>(fg.map));
  CHECK(cookie_of(0) == 5);
  // A stack whose top is past the map: on it.
  fg.g.hi = reinterpret_cast<uint64_t>(fg.map + sizeof fg.map);
  call(page.p, &fg.g, &fg.frames[0], fg.map);
  CHECK(cookie_of(1) == (5u | 0x80000000u));
  // Below the site's rsp (a heap address, low): not on it, whatever hi says.
  static uint8_t low_map[64];
  call(page.p, &fg.g, &fg.frames[0], low_map);
  CHECK(cookie_of(2) == 5);
  CHECK(low_map[0x22] == 0);
  uint32_t cpu;
  std::memcpy(&cpu, ring_p + ring::kDataOffset + ring::kRecord + ring::kCpu, 4);
  CHECK(cpu != 0xffffffffu);  // the sign-extended store of the flagged cookie is overwritten
}

TEST_CASE("inproc: the status flags live at a site survive the trampoline") {
  // mov eax, 0x7fffffff; add eax, 1 (OF=1, SF=1, CF=0, ZF=0); +8: mov rcx, rbx; mov rdx, rbx
  // (the site: no flag writes); seto al; sets ah; movzx eax, ax; ret  ->  0x0101
  const std::vector<uint8_t> f = {0xb8, 0xff, 0xff, 0xff, 0x7f, 0x83, 0xc0, 0x01, 0x48, 0x89, 0xd9, 0x48, 0x89,
                                  0xda, 0x0f, 0x90, 0xc0, 0x0f, 0x98, 0xc4, 0x0f, 0xb7, 0xc0, 0xc3};
  Page page;
  uint64_t fn = reinterpret_cast<uint64_t>(page.p);
  std::memcpy(page.p, f.data(), f.size());
  auto site = plan_patch(decoder(), Bytes(page.p, f.size()), RemoteAddr(fn), RemoteAddr(fn + 8));
  REQUIRE(site);
  CHECK(!site->flags_dead);
  TestRing tr(64);
  uint64_t ring_addr = tr.addr;
  TrampolineParams prm;
  prm.ring = ring_addr;
  prm.slots = 64;
  prm.regs = {"rbx"};
  auto t = build_trampoline(*site, prm, fn + 0x400);
  REQUIRE(t);
  page.put(0x400, *t);
  FakeG g{};
  uint8_t map[64] = {};
  CHECK(call(page.p, &g, nullptr, map) == 0x0101);
  auto j = jump_bytes(*site, 0, fn + 0x400);
  REQUIRE(j);
  page.put(8, *j);
  CHECK(call(page.p, &g, nullptr, map) == 0x0101);
  uint64_t head, rbx;
  std::memcpy(&head, reinterpret_cast<uint8_t*>(ring_addr) + ring::kHead, 8);
  std::memcpy(&rbx, reinterpret_cast<uint8_t*>(ring_addr) + ring::kDataOffset + ring::kRegs, 8);
  CHECK(head == 1);
  CHECK(rbx == reinterpret_cast<uint64_t>(map));
}

TEST_CASE("inproc: an entry with a large frame's stack check is displaced whole") {
  // lea r12, [rsp-0x1000]; cmp r12, [r14+0x10]; jbe +2; nop; nop; ret; ud2
  const std::vector<uint8_t> f = {0x4c, 0x8d, 0xa4, 0x24, 0x00, 0xf0, 0xff, 0xff, 0x4d, 0x3b, 0x66,
                                  0x10, 0x76, 0x03, 0x90, 0x90, 0xc3, 0x0f, 0x0b};
  auto p = plan_patch(decoder(), Bytes(f.data(), f.size()), RemoteAddr(0x1000), RemoteAddr(0x1000));
  REQUIRE(p);
  CHECK(p->before == 3);
  CHECK(p->displaced.size() == 3);
  CHECK(p->length == 14);
  TrampolineParams prm;
  prm.ring = 0x7000000;
  prm.slots = 64;
  CHECK(build_trampoline(*p, prm, 0x2000));
}

TEST_CASE("inproc: sites that cannot be patched safely are refused with the reason") {
  // A branch back into the middle of the bytes the JMP would cover.
  //   0: xor byte [rbx+0x22], 1 ; 4: mov rax, rbx ; 7: jmp 4 ; 9: ret
  std::vector<uint8_t> loop = {0x80, 0x73, 0x22, 0x01, 0x48, 0x89, 0xd8, 0xeb, 0xfb, 0xc3};
  auto r = plan_patch(decoder(), Bytes(loop.data(), loop.size()), RemoteAddr(0x1000), RemoteAddr(0x1000));
  REQUIRE(!r);
  CHECK(r.error().message.find("lands inside") != std::string::npos);
  // An indirect jump anywhere in the function (a jump table's targets are unknown).
  std::vector<uint8_t> table = {0x80, 0x73, 0x22, 0x01, 0x48, 0x89, 0xd8, 0xff, 0xe0, 0xc3};
  r = plan_patch(decoder(), Bytes(table.data(), table.size()), RemoteAddr(0x1000), RemoteAddr(0x1000));
  REQUIRE(!r);
  CHECK(r.error().message.find("indirect jump") != std::string::npos);
  // A CALL among the displaced instructions.
  std::vector<uint8_t> calls = {0xe8, 0x00, 0x00, 0x00, 0x00, 0xc3};
  r = plan_patch(decoder(), Bytes(calls.data(), calls.size()), RemoteAddr(0x1000), RemoteAddr(0x1000));
  REQUIRE(!r);
  CHECK(r.error().message.find("CALL") != std::string::npos);
  // RIP-relative operands are re-aimed: lea rcx, [rip+0x10] moved 0x100000 bytes away
  // still addresses 0x1017.
  std::vector<uint8_t> lea = {0x48, 0x8d, 0x0d, 0x10, 0x00, 0x00, 0x00, 0xc3};
  auto p = plan_patch(decoder(), Bytes(lea.data(), lea.size()), RemoteAddr(0x1000), RemoteAddr(0x1000));
  REQUIRE(p);
  TrampolineParams prm;
  prm.ring = 0x7000000;
  prm.slots = 64;
  auto t = build_trampoline(*p, prm, 0x101000);
  REQUIRE(t);
  bool found = false;
  for (const Insn& in : decoder().decode(Bytes(t->data(), t->size()), RemoteAddr(0x101000)))
    if (in.mnem == Mnem::kLea && in.ops[1].is_mem() && in.ops[1].base == Reg::kRip) {
      CHECK(in.next().value() + static_cast<uint64_t>(in.ops[1].disp) == 0x1017);
      found = true;
    }
  CHECK(found);
}

// scripts/bench runs this (--no-skip) and reads the line it prints: the cost of one call
// of the function above, plain and with both sites patched (so two records a call), the
// ring large enough that nothing is dropped and nobody reading it.
TEST_CASE("inproc: cost per hit" * doctest::skip()) {
  Page page;
  uint64_t fn = reinterpret_cast<uint64_t>(page.p);
  std::memcpy(page.p, kFunc.data(), kFunc.size());
  Bytes code(page.p, kFunc.size());
  auto entry = plan_patch(decoder(), code, RemoteAddr(fn), RemoteAddr(fn));
  auto mid = plan_patch(decoder(), code, RemoteAddr(fn), RemoteAddr(fn + 6));
  REQUIRE(entry);
  REQUIRE(mid);
  constexpr uint64_t kCalls = 1 << 20;
  constexpr uint64_t kSlots = 8192;  // 1 MiB: read back (tail moved up) every 2048 calls
  size_t bytes = ring::kDataOffset + kSlots * ring::kRecord;
  auto* ring_p = static_cast<uint8_t*>(
      mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0));
  REQUIRE(ring_p != MAP_FAILED);
  TrampolineParams prm;
  prm.ring = reinterpret_cast<uint64_t>(ring_p);
  prm.slots = kSlots;
  prm.g_m = 48;
  prm.m_procid = 64;
  prm.regs = {"r14", "rbx"};
  auto a = build_trampoline(*entry, prm, fn + 0x400);
  auto b = build_trampoline(*mid, prm, fn + 0x800);
  REQUIRE(a);
  REQUIRE(b);
  page.put(0x400, *a);
  page.put(0x800, *b);
  FakeGoroutine fg;
  bool reading = true;
  auto time_calls = [&] {
    auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < kCalls; i++) {
      call(page.p, &fg.g, &fg.frames[0], fg.map);
      if (reading && (i & 2047) == 2047) std::memcpy(ring_p + ring::kTail, ring_p + ring::kHead, 8);
    }
    return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / kCalls;
  };
  double plain = time_calls();
  auto ja = jump_bytes(*entry, 0, fn + 0x400);
  auto jb = jump_bytes(*mid, 0, fn + 0x800);
  page.put(0, *ja);
  page.put(6, *jb);
  double patched = time_calls();
  uint64_t drops;
  std::memcpy(&drops, ring_p + ring::kDrops, 8);
  reading = false;
  (void)time_calls();                // fills the ring
  double dropping = time_calls();  // the ring is full now: every hit is a counted drop
  munmap(ring_p, bytes);
  CHECK(drops == 0);
  MESSAGE(fmt::format("inproc_cost plain_ns={:.1f} recorded_ns_per_hit={:.1f} dropped_ns_per_hit={:.1f}", plain,
                      (patched - plain) / 2, (dropping - plain) / 2));
}

// What LldbWorld (plugin/lldb_world.cpp) relies on, LLDB having no orig_rax: which system
// call a stopped thread is in, and the restart the kernel would do on resuming it.
TEST_CASE("process: system call restart emulation and the blocked call of a thread") {
  using gort::core::is_restart_code;
  using gort::core::restarted_rax;
  auto neg = [](int64_t v) { return static_cast<uint64_t>(v); };
  CHECK(restarted_rax(neg(-512), 202) == 202u);  // -ERESTARTSYS in futex: futex again
  CHECK(restarted_rax(neg(-513), 0) == 0u);      // -ERESTARTNOINTR
  CHECK(restarted_rax(neg(-514), 7) == 7u);      // -ERESTARTNOHAND, no handler runs
  CHECK(restarted_rax(neg(-516), 35) == 219u);   // -ERESTART_RESTARTBLOCK: restart_syscall
  CHECK_FALSE(restarted_rax(neg(-4), 202));      // -EINTR: the call returned
  CHECK_FALSE(restarted_rax(0, 202));
  CHECK_FALSE(restarted_rax(neg(-512), -1));     // not in a system call: rax is the program's
  CHECK(is_restart_code(neg(-516)));
  CHECK_FALSE(is_restart_code(neg(-515)));       // -ENOIOCTLCMD is no restart

  int fds[2];
  REQUIRE(pipe(fds) == 0);
  std::atomic<int> tid{0};
  std::thread reader([&] {
    tid = static_cast<int>(::syscall(SYS_gettid));
    char c;
    CHECK(::read(fds[0], &c, 1) == 1);
  });
  std::optional<int64_t> nr;
  for (int i = 0; i < 2000 && nr != SYS_read; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (tid) nr = gort::core::stopped_syscall(getpid(), tid);
  }
  CHECK(nr == SYS_read);
  CHECK(::write(fds[1], "x", 1) == 1);
  reader.join();
  CHECK_FALSE(gort::core::stopped_syscall(getpid(), 999999999));  // no such thread
  close(fds[0]);
  close(fds[1]);
}

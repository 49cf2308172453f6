// Capstone decoding and the writing-flag matcher on byte arrays copied from real Go code
// (`go tool objdump` of samples/mapwrites built with each toolchain; addresses are theirs).

#include "core/disasm/decoder.h"
#include "core/disasm/map_sites.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

using namespace gort::core;

namespace {

const Decoder& decoder() {
  static Decoder d = Decoder::create().value();
  return d;
}

std::vector<Insn> decode(const std::vector<uint8_t>& b, uint64_t addr) {
  return decoder().decode(Bytes(b.data(), b.size()), RemoteAddr(addr));
}

std::vector<Insn> concat(std::vector<Insn> a, const std::vector<Insn>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const FlagSpec kHmap = default_flag_spec(MapImpl::kHmap);
const FlagSpec kSwiss = default_flag_spec(MapImpl::kSwiss);

// go1.21.13 runtime.mapassign_fast64 (map_fast64.go:107): the set, after the hasher call.
//   0x410309 ffd1            CALL CX
//   0x41030b 4889442418      MOVQ AX, 0x18(SP)
//   0x410310 488b5c2448      MOVQ 0x48(SP), BX
//   0x410315 0fb64b08        MOVZX 0x8(BX), CX
//   0x410319 83f104          XORL $0x4, CX
//   0x41031c 884b08          MOVB CL, 0x8(BX)
//   0x41031f 48837b1000      CMPQ 0x10(BX), $0x0
const std::vector<uint8_t> kHmapSet = {0xff, 0xd1, 0x48, 0x89, 0x44, 0x24, 0x18, 0x48, 0x8b, 0x5c, 0x24, 0x48,
                                       0x0f, 0xb6, 0x4b, 0x08, 0x83, 0xf1, 0x04, 0x88, 0x4b, 0x08, 0x48, 0x83,
                                       0x7b, 0x10, 0x00};
constexpr uint64_t kHmapSetAddr = 0x410309;

// go1.21.13 runtime.mapassign_fast64 (map_fast64.go:179-180): the clear, then RET.
//   0x410561 488b5c2448      MOVQ 0x48(SP), BX
//   0x410566 0fb64b08        MOVZX 0x8(BX), CX
//   0x41056a 83e1fb          ANDL $-0x5, CX
//   0x41056d 884b08          MOVB CL, 0x8(BX)
//   0x410570 4883c430        ADDQ $0x30, SP
//   0x410574 5d              POPQ BP
//   0x410575 c3              RET
const std::vector<uint8_t> kHmapClear = {0x48, 0x8b, 0x5c, 0x24, 0x48, 0x0f, 0xb6, 0x4b, 0x08, 0x83, 0xe1,
                                         0xfb, 0x88, 0x4b, 0x08, 0x48, 0x83, 0xc4, 0x30, 0x5d, 0xc3};
constexpr uint64_t kHmapClearAddr = 0x410561;

// go1.24.4 GOEXPERIMENT=noswissmap runtime.mapclear (map_noswiss.go:1085-1086): the set is
// fused with `h.flags &^= sameSizeGrow`, two ops between load and store.
//   0x410c94 0fb64b08        MOVZX 0x8(BX), CX
//   0x410c98 83f104          XORL $0x4, CX
//   0x410c9b 83e1f7          ANDL $-0x9, CX
//   0x410c9e 884b08          MOVB CL, 0x8(BX)
const std::vector<uint8_t> kHmapFusedSet = {0x0f, 0xb6, 0x4b, 0x08, 0x83, 0xf1, 0x04,
                                            0x83, 0xe1, 0xf7, 0x88, 0x4b, 0x08};

// go1.21.13 runtime.mapclear (map.go:1027): `h.flags &^= sameSizeGrow`. Same shape and
// field, but bit 4 is untouched: not a flag site.
//   0x40e05d 0fb65308        MOVZX 0x8(BX), DX
//   0x40e061 83e2f7          ANDL $-0x9, DX
//   0x40e064 885308          MOVB DL, 0x8(BX)
const std::vector<uint8_t> kHmapSameSizeGrow = {0x0f, 0xb6, 0x53, 0x08, 0x83, 0xe2, 0xf7, 0x88, 0x53, 0x08};

// go1.26 runtime.mapassign_fast64 (runtime_fast64.go): the `writing != 0` check, fatal,
// the hasher call, then the set `m.writing ^= 1` through another register (CX, SI).
//   0x411c6d 807b2200          CMPB 0x22(BX), $0x0
//   0x411c71 7424              JE 0x411c97
//   0x411c73 488d0571750c00    LEAQ 0xc7571(IP), AX
//   0x411c7a bb15000000        MOVL $0x15, BX
//   0x411c7f 90                NOPL
//   0x411c80 e8bbac0600        CALL internal/runtime/maps.fatal(SB)
//   0x411c85 488b442470        MOVQ 0x70(SP), AX
//   0x411c8a 488b8c2480000000  MOVQ 0x80(SP), CX
//   0x411c92 488b5c2478        MOVQ 0x78(SP), BX
//   0x411c97 48894c2428        MOVQ CX, 0x28(SP)
//   0x411c9c 488b5048          MOVQ 0x48(AX), DX
//   0x411ca0 488b0a            MOVQ 0(DX), CX
//   0x411ca3 488b5b08          MOVQ 0x8(BX), BX
//   0x411ca7 488d442428        LEAQ 0x28(SP), AX
//   0x411cac ffd1              CALL CX
//   0x411cae 4889442438        MOVQ AX, 0x38(SP)
//   0x411cb3 488b4c2478        MOVQ 0x78(SP), CX
//   0x411cb8 0fb67122          MOVZX 0x22(CX), SI
//   0x411cbc 83f601            XORL $0x1, SI
//   0x411cbf 40887122          MOVB SI, 0x22(CX)
const std::vector<uint8_t> kSwissSet = {
    0x80, 0x7b, 0x22, 0x00, 0x74, 0x24, 0x48, 0x8d, 0x05, 0x71, 0x75, 0x0c, 0x00, 0xbb, 0x15, 0x00, 0x00,
    0x00, 0x90, 0xe8, 0xbb, 0xac, 0x06, 0x00, 0x48, 0x8b, 0x44, 0x24, 0x70, 0x48, 0x8b, 0x8c, 0x24, 0x80,
    0x00, 0x00, 0x00, 0x48, 0x8b, 0x5c, 0x24, 0x78, 0x48, 0x89, 0x4c, 0x24, 0x28, 0x48, 0x8b, 0x50, 0x48,
    0x48, 0x8b, 0x0a, 0x48, 0x8b, 0x5b, 0x08, 0x48, 0x8d, 0x44, 0x24, 0x28, 0xff, 0xd1, 0x48, 0x89, 0x44,
    0x24, 0x38, 0x48, 0x8b, 0x4c, 0x24, 0x78, 0x0f, 0xb6, 0x71, 0x22, 0x83, 0xf6, 0x01, 0x40, 0x88, 0x71,
    0x22};
constexpr uint64_t kSwissSetAddr = 0x411c6d;

// go1.26 runtime.mapassign_fast64, small-map return path: the `writing == 0` check, fatal,
// the clear (the same XOR), RET.
//   0x411d2b 807a2200          CMPB 0x22(DX), $0x0
//   0x411d2f 7520              JNE 0x411d51
//   0x411d31 4889442458        MOVQ AX, 0x58(SP)
//   0x411d36 488d05ae740c00    LEAQ 0xc74ae(IP), AX
//   0x411d3d bb15000000        MOVL $0x15, BX
//   0x411d42 e8f9ab0600        CALL internal/runtime/maps.fatal(SB)
//   0x411d47 488b442458        MOVQ 0x58(SP), AX
//   0x411d4c 488b542478        MOVQ 0x78(SP), DX
//   0x411d51 0fb64a22          MOVZX 0x22(DX), CX
//   0x411d55 83f101            XORL $0x1, CX
//   0x411d58 884a22            MOVB CL, 0x22(DX)
//   0x411d5b 4883c460          ADDQ $0x60, SP
//   0x411d5f 5d                POPQ BP
//   0x411d60 c3                RET
const std::vector<uint8_t> kSwissClear = {
    0x80, 0x7a, 0x22, 0x00, 0x75, 0x20, 0x48, 0x89, 0x44, 0x24, 0x58, 0x48, 0x8d, 0x05, 0xae, 0x74,
    0x0c, 0x00, 0xbb, 0x15, 0x00, 0x00, 0x00, 0xe8, 0xf9, 0xab, 0x06, 0x00, 0x48, 0x8b, 0x44, 0x24,
    0x58, 0x48, 0x8b, 0x54, 0x24, 0x78, 0x0f, 0xb6, 0x4a, 0x22, 0x83, 0xf1, 0x01, 0x88, 0x4a, 0x22,
    0x48, 0x83, 0xc4, 0x60, 0x5d, 0xc3};
constexpr uint64_t kSwissClearAddr = 0x411d2b;

}  // namespace

TEST_CASE("decoder: operands, flow and register writes of Go code") {
  auto insns = decode(kHmapSet, kHmapSetAddr);
  REQUIRE(insns.size() == 7);
  CHECK(insns[0].is_call());
  CHECK(!insns[0].target);  // CALL CX: indirect
  const Insn& movzx = insns[3];
  CHECK(movzx.addr == RemoteAddr(0x410315));
  CHECK(movzx.size == 4);
  CHECK(movzx.mnem == Mnem::kMovzx);
  CHECK(movzx.ops[0].is_reg());
  CHECK(movzx.ops[0].reg == Reg::kRcx);
  CHECK(movzx.ops[1].is_mem());
  CHECK(movzx.ops[1].base == Reg::kRbx);
  CHECK(movzx.ops[1].disp == 8);
  CHECK(movzx.ops[1].size == 1);
  CHECK(movzx.writes(Reg::kRcx));
  CHECK(!movzx.writes(Reg::kRbx));
  CHECK(insns[4].mnem == Mnem::kXor);
  CHECK(insns[4].ops[1].imm == 4);
  const Insn& store = insns[5];
  CHECK(store.mnem == Mnem::kMov);
  CHECK(store.ops[0].is_mem());
  CHECK(store.ops[1].reg == Reg::kRcx);  // CL
  CHECK(store.regs_written == 0);
  CHECK(decoder().text(Bytes(kHmapSet.data() + 16, 3), RemoteAddr(0x410319)) == "xor ecx, 4");

  auto sw = decode(kSwissSet, kSwissSetAddr);
  CHECK(sw[1].mnem == Mnem::kJcc);
  REQUIRE(sw[1].target);
  CHECK(*sw[1].target == RemoteAddr(0x411c97));
  CHECK(sw[5].is_call());
  CHECK(*sw[5].target == RemoteAddr(0x411c80 + 5 + 0x6acbb));
  CHECK(sw.back().ops[1].reg == Reg::kRsi);  // SIB (REX 0x40)
  CHECK(to_string(Reg::kR11) == std::string("r11"));
}

TEST_CASE("decoder: undecodable bytes are one-byte invalid records") {
  std::vector<uint8_t> b = {0x06, 0xc3};  // PUSH ES does not exist in 64-bit mode
  auto insns = decode(b, 0x1000);
  REQUIRE(insns.size() == 2);
  CHECK(insns[0].invalid);
  CHECK(insns[1].is_ret());
  CHECK(insns[1].addr == RemoteAddr(0x1001));
}

TEST_CASE("hmap: set (XOR $4) and clear (AND $-5) stores") {
  auto set = find_flag_sites(decode(kHmapSet, kHmapSetAddr), kHmap);
  REQUIRE(set.begin.size() == 1);
  CHECK(set.end.empty());
  CHECK(set.begin[0].addr == RemoteAddr(0x41031c));
  CHECK(set.begin[0].length == 3);
  CHECK(set.begin[0].base == Reg::kRbx);
  CHECK(set.begin[0].disp == 8);
  CHECK(set.begin[0].load == RemoteAddr(0x410315));

  auto clear_insns = decode(kHmapClear, kHmapClearAddr);
  auto clr = find_flag_sites(clear_insns, kHmap);
  CHECK(clr.begin.empty());
  REQUIRE(clr.end.size() == 1);
  CHECK(clr.end[0].addr == RemoteAddr(0x41056d));
  CHECK(find_returns(clear_insns) == std::vector<RemoteAddr>{RemoteAddr(0x410575)});
}

TEST_CASE("hmap: a set fused with another flag update is still a set") {
  auto s = find_flag_sites(decode(kHmapFusedSet, 0x410c94), kHmap);
  REQUIRE(s.begin.size() == 1);
  CHECK(s.begin[0].addr == RemoteAddr(0x410c9e));
  CHECK(s.end.empty());
}

TEST_CASE("hmap negatives: other flag bits, other fields, untracked registers") {
  // &^= sameSizeGrow leaves hashWriting alone.
  CHECK(match_flag_stores(decode(kHmapSameSizeGrow, 0x40e05d), kHmap).empty());

  // XOR $4 but stored to 0x9(BX) (hmap.B): another field.
  //   MOVZX 0x8(BX), CX ; XORL $0x4, CX ; MOVB CL, 0x9(BX)
  std::vector<uint8_t> other_field = {0x0f, 0xb6, 0x4b, 0x08, 0x83, 0xf1, 0x04, 0x88, 0x4b, 0x09};
  CHECK(match_flag_stores(decode(other_field, 0x1000), kHmap).empty());

  // MOVB CL, 0x8(BX) with CL never loaded from the flag.
  //   MOVL $0x4, CX ; MOVB CL, 0x8(BX)
  std::vector<uint8_t> not_loaded = {0xb9, 0x04, 0x00, 0x00, 0x00, 0x88, 0x4b, 0x08};
  CHECK(match_flag_stores(decode(not_loaded, 0x1000), kHmap).empty());

  // Loaded from 0x8(BX) but stored through a different base: another object.
  //   MOVZX 0x8(BX), CX ; XORL $0x4, CX ; MOVB CL, 0x8(SI)
  std::vector<uint8_t> other_base = {0x0f, 0xb6, 0x4b, 0x08, 0x83, 0xf1, 0x04, 0x88, 0x4e, 0x08};
  CHECK(match_flag_stores(decode(other_base, 0x1000), kHmap).empty());

  // The base register is overwritten between load and store.
  //   MOVZX 0x8(BX), CX ; XORL $0x4, CX ; MOVQ 0x48(SP), BX ; MOVB CL, 0x8(BX)
  std::vector<uint8_t> base_clobbered = {0x0f, 0xb6, 0x4b, 0x08, 0x83, 0xf1, 0x04, 0x48,
                                         0x8b, 0x5c, 0x24, 0x48, 0x88, 0x4b, 0x08};
  CHECK(match_flag_stores(decode(base_clobbered, 0x1000), kHmap).empty());

  // A different immediate: XOR $1 toggles hmap's iterator bit, not hashWriting.
  //   MOVZX 0x8(BX), CX ; XORL $0x1, CX ; MOVB CL, 0x8(BX)
  std::vector<uint8_t> iterator_bit = {0x0f, 0xb6, 0x4b, 0x08, 0x83, 0xf1, 0x01, 0x88, 0x4b, 0x08};
  CHECK(match_flag_stores(decode(iterator_bit, 0x1000), kHmap).empty());
  // ... and the swiss-looking toggle of the swiss offset is not an hmap flag either.
  CHECK(match_flag_stores(decode(kSwissClear, kSwissClearAddr), kHmap).empty());
}

TEST_CASE("hmap: the value is tracked through copies and interleaved instructions") {
  //   MOVZX 0x8(BX), CX ; MOVQ 0x18(SP), DX ; MOVL CX, SI ; ORL $0x4, SI ; MOVB SIB, 0x8(BX)
  std::vector<uint8_t> b = {0x0f, 0xb6, 0x4b, 0x08, 0x48, 0x8b, 0x54, 0x24, 0x18, 0x89,
                            0xce, 0x83, 0xce, 0x04, 0x40, 0x88, 0x73, 0x08};
  auto s = match_flag_stores(decode(b, 0x2000), kHmap);
  REQUIRE(s.size() == 1);
  CHECK(s[0].effect == FlagEffect::kSet);
  CHECK(s[0].addr == RemoteAddr(0x200e));
  // One-instruction forms: ANDB $-5, 0x8(AX) clears; BTR on a register clears too.
  std::vector<uint8_t> andb = {0x80, 0x60, 0x08, 0xfb};
  auto a = match_flag_stores(decode(andb, 0x3000), kHmap);
  REQUIRE(a.size() == 1);
  CHECK(a[0].effect == FlagEffect::kClear);
  CHECK(a[0].base == Reg::kRax);
  //   MOVZX 0x8(BX), CX ; BTRL $2, CX ; MOVB CL, 0x8(BX)
  std::vector<uint8_t> btr = {0x0f, 0xb6, 0x4b, 0x08, 0x0f, 0xba, 0xf1, 0x02, 0x88, 0x4b, 0x08};
  auto r = match_flag_stores(decode(btr, 0x3000), kHmap);
  REQUIRE(r.size() == 1);
  CHECK(r[0].effect == FlagEffect::kClear);
}

TEST_CASE("swiss: the first toggle after the check sets, the next one clears") {
  auto set_insns = decode(kSwissSet, kSwissSetAddr);
  auto only_set = find_flag_sites(set_insns, kSwiss);
  REQUIRE(only_set.begin.size() == 1);
  CHECK(only_set.begin[0].addr == RemoteAddr(0x411cbf));
  CHECK(only_set.begin[0].length == 4);
  CHECK(only_set.begin[0].base == Reg::kRcx);
  CHECK(only_set.begin[0].disp == 0x22);

  // Both blocks in program order: the JE/JNE targets stay inside the decoded code.
  auto both = concat(set_insns, decode(kSwissClear, kSwissClearAddr));
  auto s = find_flag_sites(both, kSwiss);
  REQUIRE(s.begin.size() == 1);
  REQUIRE(s.end.size() == 1);
  CHECK(s.ambiguous.empty());
  CHECK(s.begin[0].addr == RemoteAddr(0x411cbf));
  CHECK(s.end[0].addr == RemoteAddr(0x411d58));
  CHECK(s.end[0].base == Reg::kRdx);
  CHECK(find_returns(both) == std::vector<RemoteAddr>{RemoteAddr(0x411d60)});
  // The swiss offset is not hmap's: nothing for the hmap spec.
  CHECK(match_flag_stores(both, kHmap).empty());
}

TEST_CASE("swiss: a toggle reached with and without the flag held is ambiguous") {
  // JE skips the first toggle, so the second is reached in both states.
  //   0x00 CMPB 0x22(BX), $0x0 ; 0x04 JE 0x10 ;
  //   0x06 MOVZX 0x22(BX), CX ; 0x0a XORL $0x1, CX ; 0x0d MOVB CL, 0x22(BX) ;
  //   0x10 MOVZX 0x22(BX), CX ; 0x14 XORL $0x1, CX ; 0x17 MOVB CL, 0x22(BX) ; 0x1a RET
  std::vector<uint8_t> b = {0x80, 0x7b, 0x22, 0x00, 0x74, 0x0a, 0x0f, 0xb6, 0x4b, 0x22, 0x83, 0xf1, 0x01, 0x88,
                            0x4b, 0x22, 0x0f, 0xb6, 0x4b, 0x22, 0x83, 0xf1, 0x01, 0x88, 0x4b, 0x22, 0xc3};
  auto s = find_flag_sites(decode(b, 0), kSwiss);
  REQUIRE(s.begin.size() == 1);
  CHECK(s.begin[0].addr == RemoteAddr(0x0d));
  REQUIRE(s.ambiguous.size() == 1);
  CHECK(s.ambiguous[0].addr == RemoteAddr(0x17));
  CHECK(s.end.empty());
}

TEST_CASE("returns: C3 and C2 imm16") {
  //   RET ; INT3 ; RET $0x8
  std::vector<uint8_t> b = {0xc3, 0xcc, 0xc2, 0x08, 0x00};
  CHECK(find_returns(decode(b, 0x500)) == std::vector<RemoteAddr>{RemoteAddr(0x500), RemoteAddr(0x502)});
}

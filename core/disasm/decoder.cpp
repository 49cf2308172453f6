// Capstone (4.0.2, Debian libcapstone-dev) behind RAII: one csh per Decoder, one cs_insn
// buffer owned with it, detail mode on. Records are copied out into gort's own types so
// nothing outside this file includes <capstone/capstone.h>.
// Go's linker pads between functions with INT3 (0xcc); Go text holds no data, so a linear
// sweep over a function's [entry, end) is exact.

#include "core/disasm/decoder.h"

#include <capstone/capstone.h>

namespace gort::core {

namespace {

Reg map_reg(unsigned r) {
  switch (r) {
    case X86_REG_INVALID: return Reg::kNone;
    case X86_REG_RAX: case X86_REG_EAX: case X86_REG_AX: case X86_REG_AL: case X86_REG_AH: return Reg::kRax;
    case X86_REG_RBX: case X86_REG_EBX: case X86_REG_BX: case X86_REG_BL: case X86_REG_BH: return Reg::kRbx;
    case X86_REG_RCX: case X86_REG_ECX: case X86_REG_CX: case X86_REG_CL: case X86_REG_CH: return Reg::kRcx;
    case X86_REG_RDX: case X86_REG_EDX: case X86_REG_DX: case X86_REG_DL: case X86_REG_DH: return Reg::kRdx;
    case X86_REG_RSI: case X86_REG_ESI: case X86_REG_SI: case X86_REG_SIL: return Reg::kRsi;
    case X86_REG_RDI: case X86_REG_EDI: case X86_REG_DI: case X86_REG_DIL: return Reg::kRdi;
    case X86_REG_RBP: case X86_REG_EBP: case X86_REG_BP: case X86_REG_BPL: return Reg::kRbp;
    case X86_REG_RSP: case X86_REG_ESP: case X86_REG_SP: case X86_REG_SPL: return Reg::kRsp;
    case X86_REG_R8: case X86_REG_R8D: case X86_REG_R8W: case X86_REG_R8B: return Reg::kR8;
    case X86_REG_R9: case X86_REG_R9D: case X86_REG_R9W: case X86_REG_R9B: return Reg::kR9;
    case X86_REG_R10: case X86_REG_R10D: case X86_REG_R10W: case X86_REG_R10B: return Reg::kR10;
    case X86_REG_R11: case X86_REG_R11D: case X86_REG_R11W: case X86_REG_R11B: return Reg::kR11;
    case X86_REG_R12: case X86_REG_R12D: case X86_REG_R12W: case X86_REG_R12B: return Reg::kR12;
    case X86_REG_R13: case X86_REG_R13D: case X86_REG_R13W: case X86_REG_R13B: return Reg::kR13;
    case X86_REG_R14: case X86_REG_R14D: case X86_REG_R14W: case X86_REG_R14B: return Reg::kR14;
    case X86_REG_R15: case X86_REG_R15D: case X86_REG_R15W: case X86_REG_R15B: return Reg::kR15;
    case X86_REG_RIP: case X86_REG_EIP: return Reg::kRip;
    default: return Reg::kOther;
  }
}

Mnem map_mnem(const cs_insn& in) {
  switch (in.id) {
    case X86_INS_MOV: case X86_INS_MOVABS: return Mnem::kMov;
    case X86_INS_MOVZX: return Mnem::kMovzx;
    case X86_INS_MOVSX: case X86_INS_MOVSXD: return Mnem::kMovsx;
    case X86_INS_LEA: return Mnem::kLea;
    case X86_INS_XOR: return Mnem::kXor;
    case X86_INS_AND: return Mnem::kAnd;
    case X86_INS_OR: return Mnem::kOr;
    case X86_INS_BTS: return Mnem::kBts;
    case X86_INS_BTR: return Mnem::kBtr;
    case X86_INS_BTC: return Mnem::kBtc;
    case X86_INS_CMP: return Mnem::kCmp;
    case X86_INS_TEST: return Mnem::kTest;
    case X86_INS_RET: case X86_INS_RETF: case X86_INS_RETFQ: return Mnem::kRet;
    case X86_INS_CALL: return Mnem::kCall;
    case X86_INS_JMP: case X86_INS_LJMP: return Mnem::kJmp;
    case X86_INS_INT3: return Mnem::kInt3;
    case X86_INS_UD2: return Mnem::kUd2;
    case X86_INS_NOP: return Mnem::kNop;
    case X86_INS_CMPXCHG: return Mnem::kCmpxchg;
    case X86_INS_XADD: return Mnem::kXadd;
    case X86_INS_XCHG: return Mnem::kXchg;
    default: break;
  }
  const cs_detail* d = in.detail;
  for (uint8_t i = 0; d && i < d->groups_count; ++i)
    if (d->groups[i] == X86_GRP_JUMP) return Mnem::kJcc;  // JMP was handled above
  return Mnem::kOther;
}

}  // namespace

const char* to_string(Reg r) {
  static const char* const names[] = {"",    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8",
                                      "r9",  "r10", "r11", "r12", "r13", "r14", "r15", "rip", "other"};
  return names[static_cast<size_t>(r)];
}

struct Decoder::Handle {
  csh cs = 0;
  cs_insn* insn = nullptr;
  ~Handle() {
    if (insn) cs_free(insn, 1);
    if (cs) cs_close(&cs);
  }
};

Decoder::Decoder(std::unique_ptr<Handle> h) : h_(std::move(h)) {}
Decoder::~Decoder() = default;
Decoder::Decoder(Decoder&& o) noexcept = default;
Decoder& Decoder::operator=(Decoder&& o) noexcept = default;

Result<Decoder> Decoder::create() {
  auto h = std::make_unique<Handle>();
  if (cs_err e = cs_open(CS_ARCH_X86, CS_MODE_64, &h->cs); e != CS_ERR_OK)
    return make_error(ErrorKind::kInternal, "capstone: cs_open(x86-64) failed: {}", cs_strerror(e));
  if (cs_err e = cs_option(h->cs, CS_OPT_DETAIL, CS_OPT_ON); e != CS_ERR_OK)
    return make_error(ErrorKind::kInternal, "capstone: enabling detail mode failed: {}", cs_strerror(e));
  h->insn = cs_malloc(h->cs);
  if (!h->insn) return make_error(ErrorKind::kInternal, "capstone: cs_malloc failed");
  return Decoder(std::move(h));
}

std::vector<Insn> Decoder::decode(Bytes code, RemoteAddr addr) const {
  std::vector<Insn> out;
  out.reserve(code.size() / 4);
  const uint8_t* p = code.data();
  size_t left = code.size();
  uint64_t pc = addr.value();
  while (left > 0) {
    if (!cs_disasm_iter(h_->cs, &p, &left, &pc, h_->insn)) {
      Insn bad;
      bad.addr = RemoteAddr(pc);
      bad.size = 1;
      bad.invalid = true;
      out.push_back(bad);
      ++p, --left, ++pc;
      continue;
    }
    const cs_insn& in = *h_->insn;
    Insn r;
    r.addr = RemoteAddr(in.address);
    r.size = static_cast<uint8_t>(in.size);
    r.id = in.id;
    r.mnem = map_mnem(in);
    const cs_x86& x = in.detail->x86;
    r.lock = x.prefix[0] == X86_PREFIX_LOCK;
    r.disp_offset = x.encoding.disp_offset;
    r.disp_size = x.encoding.disp_size;
    r.op_count = static_cast<uint8_t>(std::min<size_t>(x.op_count, r.ops.size()));
    for (uint8_t i = 0; i < r.op_count; ++i) {
      const cs_x86_op& o = x.operands[i];
      Operand& d = r.ops[i];
      d.size = o.size;
      switch (o.type) {
        case X86_OP_REG: d.kind = Operand::Kind::kReg; d.reg = map_reg(o.reg); break;
        case X86_OP_IMM: d.kind = Operand::Kind::kImm; d.imm = o.imm; break;
        case X86_OP_MEM:
          d.kind = Operand::Kind::kMem;
          d.base = map_reg(o.mem.base);
          d.index = map_reg(o.mem.index);
          d.scale = static_cast<uint8_t>(o.mem.scale);
          d.disp = o.mem.disp;
          // fs:/gs: relative accesses are TLS, never a map field.
          if (o.mem.segment != X86_REG_INVALID) d.base = Reg::kOther;
          break;
        default: break;
      }
    }
    cs_regs rd, wr;
    uint8_t nrd = 0, nwr = 0;
    if (cs_regs_access(h_->cs, &in, rd, &nrd, wr, &nwr) == CS_ERR_OK)
      for (uint8_t i = 0; i < nwr; ++i) r.regs_written |= 1u << static_cast<unsigned>(map_reg(wr[i]));
    if ((r.mnem == Mnem::kCall || r.is_jump()) && r.op_count == 1 && r.ops[0].is_imm())
      r.target = RemoteAddr(static_cast<uint64_t>(r.ops[0].imm));
    out.push_back(r);
  }
  return out;
}

std::string Decoder::text(Bytes code, RemoteAddr addr) const {
  const uint8_t* p = code.data();
  size_t left = code.size();
  uint64_t pc = addr.value();
  if (!cs_disasm_iter(h_->cs, &p, &left, &pc, h_->insn)) return "(bad)";
  std::string s = h_->insn->mnemonic;
  if (h_->insn->op_str[0]) s += std::string(" ") + h_->insn->op_str;
  return s;
}

}  // namespace gort::core

// The functions that store to a global variable. See global_writers.h.

#include "core/disasm/global_writers.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <set>
#include <unordered_set>

namespace gort::core {

namespace {

constexpr size_t kRegs = static_cast<size_t>(Reg::kOther) + 1;

bool tracked(Reg r) { return r != Reg::kNone && r != Reg::kOther && r != Reg::kRip && r != Reg::kRsp; }

// An instruction whose first (Intel: destination) operand is memory and that writes it.
bool stores_to_op0(const Insn& in) {
  if (in.op_count == 0 || !in.ops[0].is_mem()) return false;
  switch (in.mnem) {
    case Mnem::kCmp: case Mnem::kTest: case Mnem::kCall: case Mnem::kJmp: case Mnem::kJcc:
    case Mnem::kNop: case Mnem::kLea: case Mnem::kRet:
      return false;
    default:
      return true;
  }
}

}  // namespace

const char* to_string(GlobalWrite::Kind k) {
  switch (k) {
    case GlobalWrite::Kind::kStore: return "store";
    case GlobalWrite::Kind::kViaLea: return "store-via-lea";
    case GlobalWrite::Kind::kAddress: return "address";
  }
  return "store";
}

bool skipped_writer(std::string_view f) {
  static constexpr std::string_view kPrefixes[] = {"runtime.", "internal/", "sync.",  "sync/atomic.", "syscall.",
                                                   "reflect.", "unsafe.",   "type:", "type..",       "go:"};
  for (auto p : kPrefixes)
    if (f.substr(0, p.size()) == p) return true;
  return false;
}

std::vector<GlobalWrite> find_global_writes(const std::vector<Insn>& insns, uint64_t lo, uint64_t hi) {
  std::vector<GlobalWrite> out;
  if (insns.empty()) return out;
  const uint64_t flo = insns.front().addr.value(), fhi = insns.back().next().value();
  std::unordered_set<uint64_t> labels;  // jump targets inside the function: where paths join
  for (const Insn& in : insns)
    if (in.is_jump() && in.target && in.target->value() >= flo && in.target->value() < fhi)
      labels.insert(in.target->value());

  struct Lea {
    uint64_t target, pc;
    bool stored = false;
  };
  std::array<std::optional<Lea>, kRegs> lea{};
  auto drop = [&](size_t r) {
    if (lea[r] && !lea[r]->stored)
      out.push_back(GlobalWrite{GlobalWrite::Kind::kAddress, RemoteAddr(lea[r]->pc), lea[r]->target, {}, {}, {}, 0});
    lea[r].reset();
  };
  auto drop_all = [&] {
    for (size_t r = 0; r < kRegs; r++) drop(r);
  };
  auto in_range = [&](uint64_t a) { return a >= lo && a < hi; };

  for (const Insn& in : insns) {
    if (labels.count(in.addr.value())) drop_all();
    const Operand& d = in.ops[0];
    if (stores_to_op0(in)) {
      if (d.base == Reg::kRip && d.index == Reg::kNone) {
        uint64_t a = in.next().value() + static_cast<uint64_t>(d.disp);
        if (in_range(a)) out.push_back(GlobalWrite{GlobalWrite::Kind::kStore, in.addr, a, {}, {}, {}, 0});
      } else if (tracked(d.base) && lea[static_cast<size_t>(d.base)]) {
        Lea& l = *lea[static_cast<size_t>(d.base)];
        uint64_t a = l.target + (d.index == Reg::kNone ? static_cast<uint64_t>(d.disp) : 0);
        out.push_back(GlobalWrite{GlobalWrite::Kind::kViaLea, in.addr, a, {}, {}, {}, 0});
        l.stored = true;
      }
    }
    if (in.mnem == Mnem::kLea && d.is_reg() && tracked(d.reg) && in.ops[1].is_mem() && in.ops[1].base == Reg::kRip &&
        in.ops[1].index == Reg::kNone) {
      uint64_t a = in.next().value() + static_cast<uint64_t>(in.ops[1].disp);
      drop(static_cast<size_t>(d.reg));
      if (in_range(a)) lea[static_cast<size_t>(d.reg)] = Lea{a, in.addr.value()};
      continue;
    }
    // A CALL may clobber every register (Go's ABI saves none); an unconditional jump or a
    // return ends the path. A conditional jump's fall-through keeps the registers.
    if (in.is_call() || in.mnem == Mnem::kJmp || in.is_ret()) {
      drop_all();
      continue;
    }
    for (size_t r = 1; r < kRegs; r++)
      if (lea[r] && in.writes(static_cast<Reg>(r))) drop(r);
  }
  drop_all();
  return out;
}

GlobalWriters::GlobalWriters(const GoBinary& bin) : bin_(&bin) {}
GlobalWriters::~GlobalWriters() = default;
GlobalWriters::GlobalWriters(GlobalWriters&&) noexcept = default;
GlobalWriters& GlobalWriters::operator=(GlobalWriters&&) noexcept = default;

void GlobalWriters::prepare() {
  prepared_ = true;
  const Pclntab& tab = bin_->pclntab();
  for (size_t i = 0, n = tab.num_funcs(); i < n; i++) {
    FuncInfo fi = tab.func(i);
    if (skipped_writer(fi.name)) continue;
    auto code = bin_->code(fi);
    if (!code || code->size() < 5) continue;
    funcs_.push_back(Func{fi.entry, *code});
  }
}

bool GlobalWriters::may_reference(const Func& f, uint64_t lo, uint64_t hi) {
  // Every RIP-relative operand is a disp32 followed by at most 4 bytes of immediate before
  // the next instruction: its target is (address of the disp32) + 4 + {0,1,2,4} + disp.
  // A superset test over every byte offset, so no store is missed.
  const uint8_t* p = f.code.data();
  const size_t n = f.code.size();
  const uint64_t base = f.entry.value() + 4;
  const uint64_t wlo = lo - 4, width = hi - wlo;
  for (size_t k = 0; k + 4 <= n; k++) {
    int32_t d;
    std::memcpy(&d, p + k, 4);
    if (base + k + static_cast<uint64_t>(static_cast<int64_t>(d)) - wlo < width) return true;
  }
  return false;
}

Result<std::vector<GlobalWrite>> GlobalWriters::writers(uint64_t lo, uint64_t hi) {
  auto t0 = std::chrono::steady_clock::now();
  if (!dec_) {
    GORT_TRY(auto d, Decoder::create());
    dec_ = std::make_unique<Decoder>(std::move(d));
  }
  if (!prepared_) prepare();
  std::vector<GlobalWrite> out;
  if (hi <= lo || lo < 4) return out;
  std::vector<SourceFrame> frames;
  for (const Func& f : funcs_) {
    stats_.bytes_scanned += f.code.size();
    if (!may_reference(f, lo, hi)) continue;
    stats_.functions_decoded++;
    for (GlobalWrite& w : find_global_writes(dec_->decode(f.code, f.entry), lo, hi)) {
      if (bin_->pclntab().symbolize_into(w.pc, frames).ok() && !frames.empty()) {
        w.function = std::string(frames.front().function);
        w.file = std::string(frames.front().file);
        w.line = frames.front().line;
        w.physical = std::string(frames.back().function);
      } else if (auto fi = bin_->pclntab().find_func(w.pc)) {
        w.function = w.physical = std::string(fi->name);
      }
      out.push_back(std::move(w));
    }
  }
  std::sort(out.begin(), out.end(), [](const GlobalWrite& a, const GlobalWrite& b) {
    return std::tie(a.function, a.physical, a.pc) < std::tie(b.function, b.physical, b.pc);
  });
  stats_.queries++;
  stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

std::vector<std::string> GlobalWriters::summarize(const std::vector<GlobalWrite>& ws) {
  struct Group {
    std::string file;
    std::set<int32_t> lines;
    bool store = false;
  };
  std::map<std::pair<std::string, std::string>, Group> groups;  // (function, physical)
  for (const GlobalWrite& w : ws) {
    Group& g = groups[{w.function, w.physical}];
    bool store = w.kind != GlobalWrite::Kind::kAddress;
    if (store && !g.store) g.lines.clear(), g.file.clear();
    if (store < g.store) continue;  // a store site already names this function
    g.store = store;
    if (g.file.empty()) g.file = w.file;
    if (w.line > 0) g.lines.insert(w.line);
  }
  std::vector<std::string> stores, addresses;
  for (auto& [key, g] : groups) {
    auto& [function, physical] = key;
    std::string where = g.file.substr(g.file.find_last_of('/') + 1);
    std::string lines;
    for (int32_t l : g.lines) lines += fmt::format("{}{}", lines.empty() ? ":" : ", ", l);
    std::string extra;
    if (!physical.empty() && physical != function) extra += ", inlined in " + physical;
    if (!g.store) extra += ", takes its address";
    std::string s = where.empty() ? fmt::format("{}{}", function, extra.empty() ? "" : " (" + extra.substr(2) + ")")
                                  : fmt::format("{} ({}{}{})", function, where, lines, extra);
    (g.store ? stores : addresses).push_back(std::move(s));
  }
  stores.insert(stores.end(), addresses.begin(), addresses.end());
  return stores;
}

}  // namespace gort::core

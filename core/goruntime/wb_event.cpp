// Decodes write-barrier probe hits (see wb_event.h). Facts used, from
// ../shared/reference/go-runtime.md:
//  * 4.2: runtime.gcWriteBarrierN (1.21+) is NOFRAME and only reserves N buffer slots;
//    at its entry [RSP] is the return address into the caller, every GPR but R11 still
//    holds the caller's value, and the caller does the real stores after the CALL.
//  * 4.3: resolve_wb_hit (core/disasm/wb_sites.h) recovers slot and new value from there.
//  * 5.2: R14 = g; goid at g + layouts.g_goid.

#include "core/goruntime/wb_event.h"

#include "core/binary/go_binary.h"

#include <fmt/format.h>

namespace gort::core {
namespace {

std::string short_barrier(std::string_view fn) {
  constexpr std::string_view kPrefix = "runtime.";
  if (fn.starts_with(kPrefix)) fn.remove_prefix(kPrefix.size());
  return std::string(fn);
}

}  // namespace

CallerCode::Fetch CallerCode::from_binary(const GoBinary& bin) {
  return [&bin](RemoteAddr link_pc) -> Result<std::pair<RemoteAddr, std::vector<uint8_t>>> {
    auto f = bin.pclntab().find_func(link_pc);
    if (!f) return make_error(ErrorKind::kNotFound, "no Go function contains {}", link_pc);
    GORT_TRY(auto code, bin.code(*f));
    return std::make_pair(f->entry, std::vector<uint8_t>(code.begin(), code.end()));
  };
}

Result<std::unique_ptr<CallerCode>> CallerCode::create(Fetch fetch) {
  GORT_TRY(auto d, Decoder::create());
  return std::unique_ptr<CallerCode>(new CallerCode(std::move(fetch), std::move(d)));
}

Result<const std::vector<Insn>*> CallerCode::function_at(RemoteAddr pc, int64_t slide) {
  const uint64_t link_pc = pc.value() - static_cast<uint64_t>(slide);
  std::lock_guard lock(mu_);
  if (auto it = entry_of_pc_.find({link_pc, slide}); it != entry_of_pc_.end()) return &by_entry_.at(it->second);
  GORT_TRY(auto fn, fetch_(RemoteAddr(link_pc)));
  const uint64_t entry = fn.first.value() + static_cast<uint64_t>(slide);
  auto it = by_entry_.find(entry);
  if (it == by_entry_.end())
    it = by_entry_.emplace(entry, decoder_.decode(Bytes(fn.second.data(), fn.second.size()), RemoteAddr(entry))).first;
  entry_of_pc_[{link_pc, slide}] = entry;
  return &it->second;
}

Result<WbEvent> decode_wb_hit(const Probe& probe, const ThreadRegs& regs, uint64_t return_addr, const DecodeContext& ctx,
                              CallerCode& code, uint64_t time_ns) {
  if (probe.role != ProbeRole::kWriteBarrier)
    return make_error(ErrorKind::kBadInput, "{} is not a write-barrier entry", probe.function);
  WbEvent e;
  e.thread = regs.tid;
  e.function = probe.function;
  e.time_ns = time_ns;
  const auto& L = ctx.layouts;
  if (regs.r14 != 0 && L.has(L.g_goid)) {
    if (auto id = ctx.mem->read_u64(RemoteAddr(regs.r14 + L.g_goid))) e.goroutine = *id;
  }
  if (return_addr == 0) {
    if (auto ra = ctx.mem->read_u64(RemoteAddr(regs.rsp))) return_addr = *ra;
  }
  if (return_addr == 0) {
    e.note = fmt::format("cannot read the return address at rsp {:#x}", regs.rsp);
    return e;
  }
  if (ctx.pclntab) {
    if (auto frames = ctx.pclntab->symbolize(RemoteAddr(return_addr - 1 - static_cast<uint64_t>(ctx.slide)))) {
      for (auto& f : *frames) e.caller.push_back({std::string(f.function), std::string(f.file), f.line});
    }
  }
  auto fn = code.function_at(RemoteAddr(return_addr - 1), ctx.slide);
  if (!fn) {
    e.note = fn.error().message;
    return e;
  }
  const Memory* mem = ctx.mem;
  ReadU64 read = [mem](RemoteAddr a) -> std::optional<uint64_t> {
    auto v = mem->read_u64(a);
    if (!v) return std::nullopt;
    return *v;
  };
  auto hit = resolve_wb_hit(**fn, RemoteAddr(return_addr), regs, read);
  if (!hit) {
    e.note = hit.error().message;
    return e;
  }
  e.writes = std::move(hit->writes);
  e.note = std::move(hit->note);
  return e;
}

nlohmann::json to_json(const WbEvent& e) {
  nlohmann::json j;
  j["goroutine"] = e.goroutine;
  j["thread"] = e.thread;
  j["op"] = "write-barrier";
  j["function"] = e.function;
  put_caller_json(j, e.caller);
  auto writes = nlohmann::json::array();
  for (auto& w : e.writes) {
    nlohmann::json v = nullptr;
    if (w.value) v = fmt::format("{:#x}", *w.value);
    writes.push_back({{"slot", fmt::format("{:#x}", w.slot.value())}, {"value", v}});
  }
  j["writes"] = std::move(writes);
  if (!e.note.empty()) j["note"] = e.note;
  j["time_ns"] = e.time_ns;
  return j;
}

std::string to_text(const WbEvent& e) {
  std::string s = fmt::format("goroutine {} thread {} write-barrier {}", e.goroutine, e.thread, short_barrier(e.function));
  if (!e.caller.empty()) {
    const auto& c = e.caller.front();
    s += fmt::format(" from {} at {}:{}", c.function, c.file, c.line);
    for (size_t i = 1; i < e.caller.size(); ++i)
      s += fmt::format(" (inlined into {} at {}:{})", e.caller[i].function, e.caller[i].file, e.caller[i].line);
  }
  if (!e.writes.empty()) {
    s += ":";
    for (size_t i = 0; i < e.writes.size(); ++i) {
      const auto& w = e.writes[i];
      s += fmt::format("{} *{:#x} = {}", i ? "," : "", w.slot.value(), w.value ? fmt::format("{:#x}", *w.value) : "?");
    }
  } else if (!e.note.empty()) {
    s += fmt::format(" (slot unknown: {})", e.note);
  }
  return s;
}

}  // namespace gort::core

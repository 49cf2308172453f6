// Synchronization sites (sync_sites.h). Facts it rests on (Go sources 1.21-1.26):
//  * sync.Mutex.Lock's fast path is CompareAndSwapInt32(&m.state, 0, mutexLocked), else
//    m.lockSlow(), which returns holding the lock. From 1.24 sync.Mutex wraps
//    internal/sync.Mutex and the same code lives there. Unlock is AddInt32(&m.state,
//    -mutexLocked) first, then unlockSlow if waiters are left.
//  * RWMutex.RLock is readerCount.Add(1), then runtime_SemacquireRWMutexR(&readerSem)
//    when a writer is pending; RUnlock is readerCount.Add(-1) first. RWMutex.Lock and
//    Unlock are never inlined (too big); they are probed at entry and RETs.
//  * Once.Do is done.Load() (inlined), doSlow stores done = 1 with an XCHG (an atomic
//    store), in doSlow itself or its deferwrap/func closure.
//  * WaitGroup.Done is Add(-1); Add and Wait are not inlined.
//  * ABIInternal: the first argument is in RAX, the second in RBX. runtime.chansend(c, ...),
//    chanrecv(c, ...), closechan(c); selectgo(cas0, order0, pc0, nsends RDI, nrecvs RSI,
//    block) returns the chosen case index in RAX (-1: none); newproc1(fn, callergp RBX, ...).
//  * runtime.mapaccess*(t, m RBX, key) in hmap builds, linknamed from
//    internal/runtime/maps.runtime_mapaccess* in swiss builds; mapiterinit(t, m RBX, it).

#include "core/disasm/sync_sites.h"

#include "core/binary/go_binary.h"
#include "core/disasm/decoder.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <string_view>

namespace gort::core {

namespace {

using trace::SiteKind;

// Inlined sync functions: (name, what the atomic there means).
enum class Inl { kLock, kUnlock, kRLock, kRUnlock, kOnceDo, kOnceSlow };

std::optional<Inl> inline_role(std::string_view fn) {
  if (fn == "sync.(*Mutex).Lock" || fn == "internal/sync.(*Mutex).Lock") return Inl::kLock;
  if (fn == "sync.(*Mutex).Unlock" || fn == "internal/sync.(*Mutex).Unlock") return Inl::kUnlock;
  if (fn == "sync.(*RWMutex).RLock") return Inl::kRLock;
  if (fn == "sync.(*RWMutex).RUnlock") return Inl::kRUnlock;
  if (fn == "sync.(*Once).Do") return Inl::kOnceDo;
  if (fn.rfind("sync.(*Once).doSlow", 0) == 0) return Inl::kOnceSlow;
  return std::nullopt;
}

/// Worth decoding: a sync function itself, or a range inlined from one, or from an atomic
/// helper that a sync function may have inlined in turn.
bool interesting_callee(std::string_view fn) {
  return inline_role(fn) || fn.rfind("sync/atomic.", 0) == 0 || fn.rfind("internal/runtime/atomic.", 0) == 0 ||
         fn.rfind("internal/sync.", 0) == 0;
}

struct EntryFunc {
  const char* name;
  SiteKind entry_kind;  ///< kSyncCall (RETs get kSyncReturn), kRelease or kGoCreate (entry only)
  const char* op;
  const char* obj_reg;
  int64_t (*obj_off)(const RuntimeLayouts&);
  const char* key_reg;  ///< at the entry
};

int64_t zero(const RuntimeLayouts&) { return 0; }
int64_t minus_reader_sem(const RuntimeLayouts& l) { return -static_cast<int64_t>(l.rwmutex_reader_sem); }

constexpr EntryFunc kEntryFuncs[] = {
    {"sync.(*Mutex).lockSlow", SiteKind::kSyncCall, "mutex.lock", "rax", zero, ""},
    {"internal/sync.(*Mutex).lockSlow", SiteKind::kSyncCall, "mutex.lock", "rax", zero, ""},
    {"sync.runtime_SemacquireRWMutexR", SiteKind::kSyncCall, "rwmutex.rlock", "rax", minus_reader_sem, ""},
    {"sync.(*RWMutex).Lock", SiteKind::kSyncCall, "rwmutex.lock", "rax", zero, ""},
    {"sync.(*RWMutex).Unlock", SiteKind::kRelease, "rwmutex.unlock", "rax", zero, ""},
    {"runtime.chansend", SiteKind::kSyncCall, "chan.send", "rax", zero, ""},
    {"runtime.chanrecv", SiteKind::kSyncCall, "chan.recv", "rax", zero, ""},
    {"runtime.closechan", SiteKind::kRelease, "chan.close", "rax", zero, ""},
    {"runtime.selectgo", SiteKind::kSyncCall, "select", "", zero, ""},
    {"sync.(*WaitGroup).Add", SiteKind::kRelease, "wg.add", "rax", zero, "rbx"},
    {"sync.(*WaitGroup).Wait", SiteKind::kSyncCall, "wg.wait", "rax", zero, ""},
    {"runtime.newproc1", SiteKind::kGoCreate, "", "", zero, ""},
};

bool is_map_read_function(std::string_view n) {
  for (std::string_view prefix : {"runtime.mapaccess", "internal/runtime/maps.runtime_mapaccess"}) {
    if (n.rfind(prefix, 0) != 0) continue;
    auto rest = n.substr(prefix.size());
    return rest == "1" || rest == "2" || rest == "1_fast32" || rest == "2_fast32" || rest == "1_fast64" ||
           rest == "2_fast64" || rest == "1_faststr" || rest == "2_faststr" || rest == "1_fat" || rest == "2_fat";
  }
  return n == "runtime.mapiterinit" || n == "internal/runtime/maps.runtime_mapiterinit";
}

bool usable_base(Reg r) { return r != Reg::kNone && r != Reg::kOther && r != Reg::kRsp; }

/// The object behind memory operand OP at instruction IN, less FIELD: a register plus
/// offset, or a link-time address for RIP-relative operands. False when it cannot be
/// expressed (index register, segment).
bool object_of(const Insn& in, const Operand& op, uint32_t field, SyncSite& s) {
  if (!op.is_mem() || op.index != Reg::kNone) return false;
  if (op.base == Reg::kRip) {
    s.obj_link = in.next().value() + static_cast<uint64_t>(op.disp) - field;
    return true;
  }
  if (!usable_base(op.base)) return false;
  s.obj_reg = to_string(op.base);
  s.obj_off = op.disp - static_cast<int64_t>(field);
  return true;
}

const Operand* mem_operand(const Insn& in) {
  for (uint8_t i = 0; i < in.op_count; i++)
    if (in.ops[i].is_mem()) return &in.ops[i];
  return nullptr;
}

}  // namespace

std::string object_text(const SyncSite& s) {
  if (s.obj_link) return fmt::format("{:#x}", *s.obj_link);
  if (s.obj_rsp_slot) return fmt::format("[rsp{:+#x}]{:+#x}", *s.obj_rsp_slot, s.obj_off);
  if (s.obj_reg.empty()) return "-";
  return fmt::format("{}{:+#x}", s.obj_reg, s.obj_off);
}

Result<SyncPlan> build_sync_plan(const GoBinary& bin, bool reads) {
  SyncPlan plan;
  const RuntimeLayouts& L = bin.layouts();
  const Pclntab& tab = bin.pclntab();
  GORT_TRY(auto dec, Decoder::create());
  for (uint32_t f : {L.mutex_state, L.rwmutex_reader_count, L.rwmutex_reader_sem, L.once_done, L.scase_c,
                     L.scase_size})
    if (!L.has(f))
      return make_error(ErrorKind::kUnsupported, "no sync object layout for {}: cannot record synchronization",
                        bin.version().raw);

  auto add_entry_and_returns = [&](const FuncInfo& fi, const EntryFunc& ef) -> Result<void> {
    GORT_TRY(auto code, bin.code(fi));
    auto insns = dec.decode(code, fi.entry);
    SyncSite s;
    s.kind = ef.entry_kind;
    s.op = ef.op;
    s.function = std::string(fi.name);
    s.addr = fi.entry;
    s.obj_reg = ef.obj_reg;
    s.obj_off = ef.obj_off(L);
    s.key_reg = ef.key_reg;
    s.ret_at_rsp = true;
    if (ef.entry_kind == SiteKind::kGoCreate) s.g_reg = "rbx";
    if (s.op == "select") s.select_entry = true;
    plan.sites.push_back(s);
    if (ef.entry_kind != SiteKind::kSyncCall) return {};
    size_t rets = 0;
    for (auto& in : insns) {
      if (!in.is_ret()) continue;
      SyncSite r;
      r.kind = SiteKind::kSyncReturn;
      r.op = ef.op;
      r.function = s.function;
      r.addr = in.addr;
      r.ret_at_rsp = true;
      if (r.op == "select") r.key_reg = "rax";
      plan.sites.push_back(r);
      rets++;
    }
    if (rets == 0)
      plan.warnings.push_back(fmt::format("{}: no RET found: its {} acquires are not recorded", fi.name, ef.op));
    return {};
  };

  std::set<std::string_view> entry_names;
  for (auto& ef : kEntryFuncs) {
    entry_names.insert(ef.name);
    if (auto fi = bin.func(ef.name)) GORT_TRY_VOID(add_entry_and_returns(*fi, ef));
  }

  // Inlined sync functions, and the physical copies of inlinable ones.
  std::map<std::string, size_t> inlined_entry_funcs;  // an entry-probed function found inlined
  const size_t n = tab.num_funcs();
  std::vector<SourceFrame> chain;
  for (size_t i = 0; i < n; i++) {
    FuncInfo fi = tab.func(i);
    bool scan = inline_role(fi.name).has_value();
    std::vector<InlinedRange> ranges;
    if (auto rs = tab.inlined_ranges(fi); rs.ok()) {
      for (auto& r : *rs) {
        if (entry_names.count(r.callee)) inlined_entry_funcs[std::string(r.callee)]++;
        if (interesting_callee(r.callee)) {
          ranges.push_back(r);
          scan = true;
        }
      }
    }
    if (!scan) continue;
    auto code = bin.code(fi);
    if (!code) continue;
    auto insns = dec.decode(*code, fi.entry);
    const bool physical = inline_role(fi.name).has_value();
    std::set<uint64_t> targets;  // direct branch targets in this function
    for (auto& in : insns)
      if (in.target) targets.insert(in.target->value());
    // Uprobes refuse LOCK-prefixed instructions (and XCHG with memory, locked implicitly):
    // a release is probed on the instruction before the atomic when that one always runs
    // right before it, else on the one after it. The one after is late: another goroutine
    // can take the lock between the atomic and the probe (a false pair seen in CI on Go
    // 1.23, whose Unlock reloads the mutex from a stack slot right before the XADD). So
    // when the instruction before loads the base register (from a stack slot, or another
    // register), the probe goes there anyway and the object is read from that source.
    auto release_at = [&](size_t k, Reg base, SyncSite& s) -> bool {
      const Insn& in = insns[k];
      if (k > 0 && !targets.count(in.addr.value())) {
        const Insn& p = insns[k - 1];
        bool plain = !p.is_jump() && !p.is_call() && !p.is_ret() && !p.lock && p.mnem != Mnem::kXchg && !p.invalid;
        if (plain && (base == Reg::kRip || !p.writes(base))) {
          s.addr = p.addr;
          return true;
        }
        if (plain && p.mnem == Mnem::kMov && p.op_count == 2 && p.ops[0].is_reg() && p.ops[0].reg == base &&
            p.ops[0].size == 8) {
          const Operand& src = p.ops[1];
          if (src.is_reg() && usable_base(src.reg) && src.size == 8) {
            s.addr = p.addr;
            s.obj_reg = to_string(src.reg);
            return true;
          }
          if (src.is_mem() && src.base == Reg::kRsp && src.index == Reg::kNone && src.size == 8 && src.disp >= 0 &&
              src.disp < 4096) {
            s.addr = p.addr;
            s.obj_rsp_slot = src.disp;
            s.obj_reg.clear();
            return true;
          }
        }
      }
      if (k + 1 < insns.size() && (base == Reg::kRip || !in.writes(base))) {
        s.addr = in.next();
        return true;
      }
      return false;
    };
    for (size_t k = 0; k < insns.size(); k++) {
      const Insn& in = insns[k];
      bool atomic = (in.mnem == Mnem::kCmpxchg && in.lock) || (in.mnem == Mnem::kXadd && in.lock) ||
                    (in.mnem == Mnem::kXchg && mem_operand(in));
      bool load = (in.mnem == Mnem::kMov || in.mnem == Mnem::kMovzx || in.mnem == Mnem::kCmp ||
                   in.mnem == Mnem::kTest) &&
                  mem_operand(in) && mem_operand(in)->size <= 4;
      if (!atomic && !load) continue;
      if (!physical) {
        bool in_range = false;
        // (a CMPXCHG a few bytes before a range: see the Go 1.21 note below)
        uint64_t slack = in.mnem == Mnem::kCmpxchg || in.mnem == Mnem::kXadd ? 16 : 0;
        for (auto& r : ranges)
          if (in.addr.value() + slack >= r.lo.value() && in.addr < r.hi) in_range = true;
        if (!in_range) continue;
      }
      std::optional<Inl> role;
      std::string_view sync_fn;
      auto role_at = [&](RemoteAddr pc) {
        if (!tab.symbolize_into(pc, chain).ok()) return;
        for (auto& fr : chain) {
          if (auto r = inline_role(fr.function)) {
            role = r;
            sync_fn = fr.function;
            return;
          }
        }
      };
      role_at(in.addr);
      // Go 1.21-1.23 give an intrinsic atomic the caller's position at times: Lock's CAS or
      // RLock's XADD then sits just before the range inlined from Lock / RLock (SETE; TEST;
      // JNE lockSlow, or TEST; JGE). Seen in samples/synced's (*table).get on Go 1.23.
      auto fits = [&](Inl r) {
        if (in.mnem == Mnem::kCmpxchg) return r == Inl::kLock;
        if (in.mnem == Mnem::kXadd) return r == Inl::kRLock || r == Inl::kRUnlock || r == Inl::kUnlock;
        return true;
      };
      if ((in.mnem == Mnem::kCmpxchg || in.mnem == Mnem::kXadd) && (!role || !fits(*role))) {
        role.reset();
        for (size_t j = k + 1; !role && j < insns.size() && j <= k + 3; j++) {
          role_at(insns[j].addr);
          if (role && !fits(*role)) role.reset();
        }
      }
      if (!role) continue;
      const Operand* mem = mem_operand(in);
      SyncSite s;
      s.function = std::string(fi.name);
      s.inlined = chain.size() > 1 && sync_fn != fi.name ? std::string(sync_fn) : "";
      bool ok = false;
      switch (*role) {
        case Inl::kLock:
          if (in.mnem != Mnem::kCmpxchg) continue;
          // The acquire is seen at the next instruction; the accumulator tells success.
          if (mem->base == Reg::kRax || k + 1 >= insns.size()) {
            plan.warnings.push_back(fmt::format("{} at {:#x}: Lock's CMPXCHG uses RAX as its base: not recorded",
                                                fi.name, in.addr.value()));
            continue;
          }
          s.kind = SiteKind::kAcquire;
          s.op = "mutex.lock";
          s.addr = in.next();
          s.acquired_if_zero = "rax";
          ok = object_of(in, *mem, L.mutex_state, s);
          break;
        case Inl::kUnlock:
          if (in.mnem != Mnem::kXadd) continue;
          s.kind = SiteKind::kRelease;
          s.op = "mutex.unlock";
          ok = object_of(in, *mem, L.mutex_state, s);
          break;
        case Inl::kRLock:
        case Inl::kRUnlock: {
          if (in.mnem != Mnem::kXadd) continue;
          bool rlock = *role == Inl::kRLock;
          // The XADD's register operand receives the old value; the base stays.
          if (rlock && (k + 1 >= insns.size() || (in.ops[1].is_reg() && in.ops[1].reg == mem->base))) continue;
          s.kind = rlock ? SiteKind::kAcquire : SiteKind::kRelease;
          s.op = rlock ? "rwmutex.rlock" : "rwmutex.runlock";
          if (rlock) s.addr = in.next();
          ok = object_of(in, *mem, L.rwmutex_reader_count, s);
          break;
        }
        case Inl::kOnceDo:
          if (!load || mem->base == Reg::kRsp) continue;
          if (k + 1 >= insns.size() || (in.op_count > 0 && in.ops[0].is_reg() && in.ops[0].reg == mem->base))
            continue;
          s.kind = SiteKind::kAcquire;
          s.op = "once.do";
          s.addr = in.next();
          ok = object_of(in, *mem, L.once_done, s);
          break;
        case Inl::kOnceSlow:
          if (in.mnem != Mnem::kXchg) continue;
          s.kind = SiteKind::kRelease;
          s.op = "once.done";
          ok = object_of(in, *mem, L.once_done, s);
          break;
      }
      if (ok && s.kind == SiteKind::kRelease && !release_at(k, mem->base, s)) {
        plan.warnings.push_back(fmt::format("{} at {:#x}: no instruction next to {}'s atomic to probe: not recorded",
                                            fi.name, in.addr.value(), sync_fn));
        continue;
      }
      if (!ok) {
        plan.warnings.push_back(fmt::format("{} at {:#x}: cannot tell the object of {}: not recorded", fi.name,
                                            in.addr.value(), sync_fn));
        continue;
      }
      if (!s.inlined.empty()) plan.inlined_sites++;
      plan.sites.push_back(std::move(s));
    }
  }
  for (auto& [fn, count] : inlined_entry_funcs)
    plan.warnings.push_back(fmt::format("{} was inlined at {} place(s): those calls are not recorded", fn, count));

  if (reads) {
    for (size_t i = 0; i < n; i++) {
      FuncInfo fi = tab.func(i);
      if (!is_map_read_function(fi.name)) continue;
      SyncSite s;
      s.kind = SiteKind::kMapRead;
      s.op = "read";
      s.function = std::string(fi.name);
      s.addr = fi.entry;
      s.obj_reg = "rbx";
      s.ret_at_rsp = true;
      plan.sites.push_back(std::move(s));
    }
  }
  // One site per (address, kind, op): an instruction reached through two inline chains
  // (or listed twice) is probed once.
  std::sort(plan.sites.begin(), plan.sites.end(), [](const SyncSite& a, const SyncSite& b) {
    return std::tie(a.addr, a.kind, a.op) < std::tie(b.addr, b.kind, b.op);
  });
  plan.sites.erase(std::unique(plan.sites.begin(), plan.sites.end(),
                               [](const SyncSite& a, const SyncSite& b) {
                                 return a.addr == b.addr && a.kind == b.kind && a.op == b.op;
                               }),
                   plan.sites.end());
  return plan;
}

}  // namespace gort::core

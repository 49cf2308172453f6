// SB -> core adapters (see lldb_target.h). A live process is read through /proc/PID/mem
// (core::ProcMemory); a core file (process plugin "elf-core") through SBProcess. The PIE
// slide is the load address of .text minus its file address, as LLDB computed it.

#include "plugin/lldb_target.h"

#include "plugin/go_setup.h"
#include "core/util/strings.h"

#include <fmt/format.h>

#include <cstring>

namespace gort::plugin {

core::Result<void> LldbMemory::read(core::RemoteAddr addr, std::span<uint8_t> out) const {
  lldb::SBError err;
  size_t n = p_.ReadMemory(addr.value(), out.data(), out.size(), err);
  if (err.Fail() || n != out.size()) {
    // LLDB's own text ("memory read failed for 0x0") names the page, not ADDR: say it plainly.
    return core::make_error(core::ErrorKind::kIo, "cannot read {} bytes at {}: not in the {}", out.size(), addr,
                            std::strcmp(p_.GetPluginName() ? p_.GetPluginName() : "", "elf-core") == 0
                                ? "core file (not dumped, or not mapped)"
                                : "process memory (not mapped)");
  }
  return {};
}

core::ThreadRegs LldbThreads::regs_of(lldb::SBThread t) {
  core::ThreadRegs r;
  r.tid = t.GetThreadID();
  lldb::SBFrame f = t.GetFrameAtIndex(0);
  auto reg = [&](const char* name) -> uint64_t {
    lldb::SBValue v = f.FindRegister(name);
    return v.IsValid() ? v.GetValueAsUnsigned(0) : 0;
  };
  r.rip = reg("rip"); r.rsp = reg("rsp"); r.rbp = reg("rbp");
  r.rax = reg("rax"); r.rbx = reg("rbx"); r.rcx = reg("rcx"); r.rdx = reg("rdx");
  r.rsi = reg("rsi"); r.rdi = reg("rdi");
  r.r8 = reg("r8"); r.r9 = reg("r9"); r.r10 = reg("r10"); r.r11 = reg("r11");
  r.r12 = reg("r12"); r.r13 = reg("r13"); r.r14 = reg("r14"); r.r15 = reg("r15");
  r.fs_base = reg("fs_base");
  char buf[256];
  size_t n = t.GetStopDescription(buf, sizeof buf);
  r.stop_reason = std::string(buf, strnlen(buf, std::min(n, sizeof buf)));
  return r;
}

core::Result<std::vector<core::ThreadRegs>> LldbThreads::threads() const {
  std::vector<core::ThreadRegs> out;
  for (uint32_t i = 0; i < p_.GetNumThreads(); ++i) out.push_back(regs_of(p_.GetThreadAtIndex(i)));
  return out;
}

core::Result<GoTarget> open_go_target(lldb::SBDebugger& debugger) {
  GoTarget t;
  t.target = debugger.GetSelectedTarget();
  std::string err;
  std::string path = target_executable(t.target, err);
  if (path.empty()) return core::make_error(core::ErrorKind::kBadInput, "{}", err);
  auto bin = core::GoBinary::open(path);
  if (!bin) return bin.error();
  t.bin = std::move(bin).value();
  t.process = t.target.GetProcess();
  if (!t.process.IsValid()) {
    return core::make_error(core::ErrorKind::kBadInput, "no process; run the program to a stop first (`run` to a breakpoint, `process attach -p PID`), or open a core (`target create BIN --core CORE`)");
  }
  configure_sigurg(debugger, t.target);
  lldb::StateType st = t.process.GetState();
  if (st != lldb::eStateStopped && st != lldb::eStateCrashed && st != lldb::eStateSuspended) {
    return core::make_error(core::ErrorKind::kBadInput, "the process is not stopped (state {}); interrupt it first (`process interrupt`)",
                            lldb::SBDebugger::StateAsCString(st));
  }
  // Slide from .text: LLDB knows where the module is loaded.
  lldb::SBModule mod = t.target.FindModule(t.target.GetExecutable());
  lldb::SBSection text = mod.IsValid() ? mod.FindSection(".text") : lldb::SBSection();
  if (text.IsValid()) {
    lldb::addr_t load = text.GetLoadAddress(t.target);
    if (load != LLDB_INVALID_ADDRESS) t.slide = static_cast<int64_t>(load - text.GetFileAddress());
  }
  const char* plugin = t.process.GetPluginName();
  bool core_file = plugin && std::strcmp(plugin, "elf-core") == 0;
  if (!core_file) {
    auto pm = core::ProcMemory::open(static_cast<int>(t.process.GetProcessID()));
    if (pm) t.mem = std::move(pm).value();
  }
  if (!t.mem) t.mem = std::make_unique<LldbMemory>(t.process);
  t.threads = std::make_unique<LldbThreads>(t.process);
  return t;
}

core::Result<core::RemoteAddr> eval_address(lldb::SBFrame frame, const std::string& s) {
  uint64_t n = 0;
  bool hex = s.starts_with("0x") || s.starts_with("0X");
  if (hex ? s.size() > 2 && core::parse_hex(s, n) : core::parse_u64(s, n)) return core::RemoteAddr(n);
  if (s.size() > 1 && s[0] == '$' && frame.IsValid()) {
    lldb::SBValue r = frame.FindRegister(s.c_str() + 1);
    if (r.IsValid()) return core::RemoteAddr(r.GetValueAsUnsigned());
  }
  if (frame.IsValid()) {
    lldb::SBValue v = frame.GetValueForVariablePath(s.c_str());
    if (!v.IsValid() || v.GetError().Fail()) v = frame.EvaluateExpression(s.c_str());
    if (v.IsValid() && v.GetError().Success()) {
      lldb::SBError err;
      uint64_t x = v.GetValueAsUnsigned(err, 0);
      if (err.Success()) return core::RemoteAddr(x);
    }
    // A symbol's address (LLDB has no Go expressions: `main.handles` is not a variable to it).
    lldb::SBTarget target = frame.GetThread().GetProcess().GetTarget();
    lldb::SBSymbolContextList syms = target.FindSymbols(s.c_str());
    for (uint32_t i = 0; i < syms.GetSize(); ++i) {
      lldb::addr_t a = syms.GetContextAtIndex(i).GetSymbol().GetStartAddress().GetLoadAddress(target);
      if (a != LLDB_INVALID_ADDRESS) return core::RemoteAddr(a);
    }
  }
  return core::make_error(core::ErrorKind::kBadInput,
                          "cannot evaluate '{}' to an address; give hex (0xc000012345), a register ($rbx), "
                          "a variable or a symbol",
                          s);
}

}  // namespace gort::plugin

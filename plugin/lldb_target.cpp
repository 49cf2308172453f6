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

namespace {
core::ThreadRegs frame_regs(lldb::SBThread t, lldb::SBFrame f) {
  core::ThreadRegs r;
  r.tid = t.GetThreadID();
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
  return r;
}
}  // namespace

core::ThreadRegs LldbThreads::regs_of(lldb::SBThread t) {
  core::ThreadRegs r = frame_regs(t, t.GetFrameAtIndex(0));
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


std::string LldbDebuggee::executable(std::string& why) {
  if (!target_.IsValid()) return "";  // core says "no target" with this debugger's hint
  return target_executable(target_, why);
}

core::front::ProcState LldbDebuggee::state(std::string& detail) {
  lldb::SBProcess p = target_.GetProcess();
  if (!p.IsValid()) return core::front::ProcState::kNone;
  const char* plugin = p.GetPluginName();
  if (plugin && std::strcmp(plugin, "elf-core") == 0) return core::front::ProcState::kCore;
  lldb::StateType st = p.GetState();
  if (st == lldb::eStateStopped || st == lldb::eStateCrashed || st == lldb::eStateSuspended)
    return core::front::ProcState::kStopped;
  detail = lldb::SBDebugger::StateAsCString(st);
  return core::front::ProcState::kRunning;
}

std::unique_ptr<core::Memory> LldbDebuggee::debugger_memory() {
  return std::make_unique<LldbMemory>(target_.GetProcess());
}

core::Result<std::vector<core::ThreadRegs>> LldbDebuggee::threads() {
  return LldbThreads(target_.GetProcess()).threads();
}

std::optional<core::ThreadRegs> LldbDebuggee::selected_thread() {
  lldb::SBThread th = target_.GetProcess().GetSelectedThread();
  if (!th.IsValid()) return std::nullopt;
  return LldbThreads::regs_of(th);
}

std::optional<core::ThreadRegs> LldbDebuggee::selected_frame() {
  lldb::SBThread th = target_.GetProcess().GetSelectedThread();
  if (!th.IsValid()) return std::nullopt;
  lldb::SBFrame f = th.GetSelectedFrame();
  if (!f.IsValid()) return std::nullopt;
  return frame_regs(th, f);
}

int64_t LldbDebuggee::slide() {
  // Slide from .text: LLDB knows where the module is loaded.
  lldb::SBModule mod = target_.FindModule(target_.GetExecutable());
  lldb::SBSection text = mod.IsValid() ? mod.FindSection(".text") : lldb::SBSection();
  if (text.IsValid()) {
    lldb::addr_t load = text.GetLoadAddress(target_);
    if (load != LLDB_INVALID_ADDRESS) return static_cast<int64_t>(load - text.GetFileAddress());
  }
  return 0;
}

void LldbDebuggee::opened() { configure_sigurg(debugger_, target_); }

const core::front::Hints& LldbDebuggee::hints() const {
  static const core::front::Hints h{
      .no_target = "create one first (`target create ./prog`, `process attach -p PID`)",
      .no_process = "run the program to a stop first (`run` to a breakpoint, `process attach -p PID`), or open a "
                    "core (`target create BIN --core CORE`)",
      .interrupt = "interrupt it first (`process interrupt`)",
      .map_break = "`breakpoint set -s PROG -a <entry of runtime.mapassign_faststr>`",
      .debugger = "LLDB",
  };
  return h;
}

std::optional<uint64_t> LldbDebuggee::evaluate(const std::string& s) {
  lldb::SBFrame frame = target_.GetProcess().GetSelectedThread().GetSelectedFrame();
  if (!frame.IsValid()) return std::nullopt;
  if (s.size() > 1 && s[0] == '$') {
    lldb::SBValue r = frame.FindRegister(s.c_str() + 1);
    if (r.IsValid()) return r.GetValueAsUnsigned();
  }
  lldb::SBValue v = frame.GetValueForVariablePath(s.c_str());
  if (!v.IsValid() || v.GetError().Fail()) v = frame.EvaluateExpression(s.c_str());
  if (v.IsValid() && v.GetError().Success()) {
    lldb::SBError err;
    uint64_t x = v.GetValueAsUnsigned(err, 0);
    if (err.Success()) return x;
  }
  // A symbol's address (LLDB has no Go expressions: `main.handles` is not a variable to it).
  lldb::SBSymbolContextList syms = target_.FindSymbols(s.c_str());
  for (uint32_t i = 0; i < syms.GetSize(); ++i) {
    lldb::addr_t a = syms.GetContextAtIndex(i).GetSymbol().GetStartAddress().GetLoadAddress(target_);
    if (a != LLDB_INVALID_ADDRESS) return a;
  }
  return std::nullopt;
}

bool FrontCommand::DoExecute(lldb::SBDebugger debugger, char** command, lldb::SBCommandReturnObject& result) {
  std::vector<std::string> args;
  for (; command && *command; ++command) args.emplace_back(*command);
  LldbDebuggee d(debugger);
  core::front::Reply r = core::front::run(d, name_, args);
  if (!r.out.empty()) result.Printf("%s", r.out.c_str());
  if (!r.ok) {
    result.SetError(r.error.c_str());
    return false;
  }
  result.SetStatus(lldb::eReturnStatusSuccessFinishResult);
  return true;
}

}  // namespace gort::plugin

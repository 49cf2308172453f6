// The recording engine (recorder.h). Facts it rests on:
//  * ABIInternal keeps the current g in R14 in every Go function (go-runtime.md 1.2), so
//    a map site's g is R14 at the hit; runtime.newproc1 runs on the system stack (R14 is
//    g0 there), which is why goroutine creation is read at the store of the new goid:
//    its base register is the new g, its source register the goid.
//  * runtime.goexit0(gp) is called by mcall with gp in RAX (asm_amd64.s mcall).
//  * The perf user call chain walks frame pointers from RBP; at a function's entry (and
//    at its RETs) RBP still belongs to the caller, so the chain would skip the caller
//    whose return address sits at [rsp]: it is put back from the sampled stack bytes
//    (unless the kernel did: 6.x does for a uprobe on a function's first instruction).
//  * Rings are drained one CPU after another, so events are held back until every ring
//    has been drained past them, then written in time order (pump()).

#include "core/record/recorder.h"

#include "core/disasm/decoder.h"
#include "core/disasm/sync_sites.h"
#include "core/goruntime/goroutines.h"
#include "core/goruntime/map_event.h"
#include "core/target/memory.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>

namespace gort::core::record {

const std::vector<std::string> kDefaultHwOrder = {
    "runtime.mapassign_faststr", "runtime.mapassign_fast64", "runtime.mapassign",
    "runtime.mapassign_fast32",  "runtime.mapassign_fast64ptr", "runtime.mapdelete_faststr",
    "runtime.mapdelete_fast64",  "runtime.mapdelete",
};

bool under_hypervisor() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("flags", 0) == 0) return line.find(" hypervisor") != std::string::npos;
  return false;
}

namespace {

/// Events whose Event::map is a map (what --maps filters, and stack_map is told for).
bool is_map_event_kind(trace::SiteKind k) {
  using K = trace::SiteKind;
  return k == K::kEntry || k == K::kWriteBegin || k == K::kWriteEnd || k == K::kReturn || k == K::kMapRead ||
         k == K::kMapCreate;
}

bool is_map_role(ProbeRole r) {
  return r == ProbeRole::kMapAssign || r == ProbeRole::kMapDelete || r == ProbeRole::kMapClear ||
         r == ProbeRole::kMapClone;
}

PlannedSite make_site(trace::SiteKind kind, const std::string& function, const std::string& op, RemoteAddr addr) {
  PlannedSite p;
  p.site.kind = kind;
  p.site.function = function;
  p.site.op = op;
  p.link_addr = addr;
  return p;
}

/// The sites of one map-write function: its flag stores when it has both kinds, else its
/// entry and RETs (a window from entry to return is wider but never misses an overlap).
void add_map_sites(const Probe& probe, std::vector<PlannedSite>& out) {
  std::string op = map_op(probe.role);
  if (!probe.write_begin.empty() && !probe.write_end.empty()) {
    for (auto& fs : probe.write_begin) {
      out.push_back(make_site(trace::SiteKind::kWriteBegin, probe.function, op, fs.addr));
      out.back().map_reg = fs.base_reg;
    }
    for (auto& fs : probe.write_end) {
      out.push_back(make_site(trace::SiteKind::kWriteEnd, probe.function, op, fs.addr));
      out.back().map_reg = fs.base_reg;
    }
    return;
  }
  out.push_back(make_site(trace::SiteKind::kEntry, probe.function, op, probe.entry));
  out.back().map_reg = probe.map_reg;
  if (probe.key_kind == "u64" || probe.key_kind == "u32") out.back().key_reg = probe.key_reg;
  out.back().ret_at_rsp = true;
  for (auto r : probe.returns) {
    out.push_back(make_site(trace::SiteKind::kReturn, probe.function, op, r));
    out.back().ret_at_rsp = true;
  }
}

/// runtime.newproc1's store of the new goroutine's id: `MOV [newg + g.goid], reg`.
Result<PlannedSite> goid_store_site(const GoBinary& bin) {
  auto fi = bin.func("runtime.newproc1");
  if (!fi) return make_error(ErrorKind::kNotFound, "runtime.newproc1 not found");
  uint32_t off = bin.layouts().g_goid;
  if (!bin.layouts().has(off)) return make_error(ErrorKind::kNotFound, "no g.goid offset for {}", bin.version().raw);
  GORT_TRY(auto code, bin.code(*fi));
  GORT_TRY(auto dec, Decoder::create());
  std::vector<const Insn*> hits;
  auto insns = dec.decode(code, fi->entry);
  for (auto& in : insns) {
    if (in.mnem == Mnem::kMov && in.op_count == 2 && in.ops[0].is_mem() && in.ops[0].size == 8 &&
        in.ops[0].disp == static_cast<int64_t>(off) && in.ops[0].index == Reg::kNone && in.ops[1].is_reg() &&
        in.ops[0].base != Reg::kRsp && in.ops[0].base != Reg::kRip)
      hits.push_back(&in);
  }
  if (hits.size() != 1)
    return make_error(ErrorKind::kNotFound, "runtime.newproc1: {} stores to g.goid (+{:#x}), expected 1", hits.size(),
                      off);
  PlannedSite p = make_site(trace::SiteKind::kGoStart, "runtime.newproc1", "", hits[0]->addr);
  p.g_reg = to_string(hits[0]->ops[0].base);
  p.goid_reg = to_string(hits[0]->ops[1].reg);
  return p;
}

int hw_rank(const std::string& fn, const std::vector<std::string>& order) {
  auto it = std::find(order.begin(), order.end(), fn);
  return it == order.end() ? static_cast<int>(order.size()) : static_cast<int>(it - order.begin());
}

}  // namespace

namespace {

/// The sync (and map-read) sites, as PlannedSites; selectgo's entry gets a companion
/// unprobed "select.send" site for the releases of its send cases.
Result<void> add_sync_sites(const GoBinary& bin, bool reads, std::vector<PlannedSite>& out,
                            std::vector<std::string>& warnings) {
  GORT_TRY(auto plan, build_sync_plan(bin, reads));
  for (auto& w : plan.warnings) warnings.push_back("sync: " + w);
  for (auto& s : plan.sites) {
    PlannedSite p = make_site(s.kind, s.function, s.op, s.addr);
    p.obj_reg = s.obj_reg;
    p.obj_off = s.obj_off;
    p.obj_link = s.obj_link;
    p.obj_rsp_slot = s.obj_rsp_slot;
    p.key_reg = s.key_reg;
    p.g_reg = s.g_reg;
    p.acquired_if_zero = s.acquired_if_zero;
    p.ret_at_rsp = s.ret_at_rsp;
    p.select_entry = s.select_entry;
    p.key_signed_none = s.op == "select";
    if (s.kind == trace::SiteKind::kMapRead) p.map_reg = s.obj_reg, p.obj_reg.clear();
    out.push_back(p);
    if (s.select_entry) {
      PlannedSite send = make_site(trace::SiteKind::kRelease, s.function, "select.send", s.addr);
      send.probed = false;
      out.push_back(send);
    }
  }
  return {};
}

}  // namespace

namespace {

/// The --dangling sites: the conversions back to pointers (GC mark termination is in
/// every recording).
Result<void> add_dangling_sites(const GoBinary& bin, const std::vector<std::string>& hooks,
                                std::vector<PlannedSite>& out) {
  if (!bin.func("runtime.gcMarkTermination"))
    return make_error(ErrorKind::kNotFound, "runtime.gcMarkTermination not found in {}: --dangling cannot tell when a GC "
                      "cycle completes", bin.elf().path());
  auto convert = [&](const std::string& fn, const std::string& reg, RemoteAddr entry) {
    out.push_back(make_site(trace::SiteKind::kConvert, fn, "convert", entry));
    out.back().key_reg = reg;
    out.back().ret_at_rsp = true;
  };
  // checkptr builds (-gcflags=all=-d=checkptr, and -race) call it for every conversion of
  // an integer expression to unsafe.Pointer, with the pointer in RAX.
  if (auto cp = bin.func("runtime.checkptrArithmetic")) convert("runtime.checkptrArithmetic", "rax", cp->entry);
  // The integer argument registers of ABIInternal, by our name and Go's assembler name.
  static const std::pair<const char*, const char*> kRegs[] = {
      {"rax", "ax"}, {"rbx", "bx"}, {"rcx", "cx"}, {"rdi", "di"}, {"rsi", "si"},
      {"r8", "r8"},  {"r9", "r9"},  {"r10", "r10"}, {"r11", "r11"}};
  for (auto& h : hooks) {
    std::string fn = h, reg = "rax";
    // FUNC:REG only when REG names a register: a ':' can also be part of a Go name.
    if (auto colon = h.rfind(':'); colon != std::string::npos) {
      std::string r = h.substr(colon + 1);
      for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      for (auto& [ours, gos] : kRegs)
        if (r == ours || r == gos) {
          fn = h.substr(0, colon);
          reg = ours;
        }
    }
    auto hf = bin.func(fn);
    if (!hf)
      return make_error(ErrorKind::kBadInput,
                        "--convert-hook: no function '{}' in {} (give the full name as the program's tables "
                        "spell it, e.g. main.lookup or example.com/pkg.(*Table).Get; `gort symbolize` and `go tool "
                        "nm` show them; an optional :REG after it names the integer's register, default rax)",
                        fn, bin.elf().path());
    convert(fn, reg, hf->entry);
  }
  return {};
}

}  // namespace

Result<std::vector<PlannedSite>> plan_sites(const GoBinary& bin, const std::vector<std::string>& hw_first,
                                            std::vector<std::string>& warnings, bool sync, bool reads, bool dangling,
                                            const std::vector<std::string>& convert_hooks) {
  GORT_TRY(auto plan, build_probe_plan(bin));
  for (auto& w : plan.warnings) warnings.push_back(w);
  std::vector<PlannedSite> map_sites;
  for (auto& p : plan.probes)
    if (is_map_role(p.role)) add_map_sites(p, map_sites);
  if (map_sites.empty())
    return make_error(ErrorKind::kNotFound,
                      "no map-write function in {}: the program never writes a map (nothing to record)",
                      bin.elf().path());
  const auto& order = hw_first.empty() ? kDefaultHwOrder : hw_first;
  std::stable_sort(map_sites.begin(), map_sites.end(), [&](const PlannedSite& a, const PlannedSite& b) {
    return hw_rank(a.site.function, order) < hw_rank(b.site.function, order);
  });
  std::vector<PlannedSite> out = std::move(map_sites);
  // "concurrent map writes" is thrown through runtime.fatal; swiss maps (1.24+) call their
  // own linknamed internal/runtime/maps.fatal, which may inline runtime.fatal.
  size_t throws = 0;
  for (const char* fn : {"runtime.fatal", "internal/runtime/maps.fatal"}) {
    if (auto fi = bin.func(fn)) {
      out.push_back(make_site(trace::SiteKind::kThrow, fn, "", fi->entry));
      out.back().ret_at_rsp = true;
      throws++;
    }
  }
  if (throws == 0)
    warnings.push_back("runtime.fatal not found: a goroutine that throws 'concurrent map writes' is not recorded");
  if (auto gs = goid_store_site(bin)) {
    out.push_back(*gs);
  } else {
    warnings.push_back(gs.error().message + ": goroutines created during the recording have no id");
  }
  if (auto fi = bin.func("runtime.goexit0")) {
    out.push_back(make_site(trace::SiteKind::kGoExit, "runtime.goexit0", "", fi->entry));
    out.back().g_reg = "rax";
  } else {
    warnings.push_back("runtime.goexit0 not found: a reused g may merge two goroutines");
  }
  // Map creation: a map at an address is a new map after it (docs/report.md, "Map
  // identity"). Uprobes in the perf backend (~15 us a map created); not in kDefaultHwOrder.
  for (auto& c : plan.creators)
    for (auto r : c.returns) {
      out.push_back(make_site(trace::SiteKind::kMapCreate, c.function, "create", r));
      out.back().map_reg = c.map_reg;
      out.back().ret_at_rsp = true;
    }
  if (plan.creators.empty())
    warnings.push_back("no map-creating function found (runtime.makemap, internal/runtime/maps.NewMap): a map freed and "
                       "reallocated at the same address cannot be told from the old one");
  // One hit per GC cycle: the heap scans of --dangling, and where a map may have been freed
  // when its creation could not be seen.
  if (auto fi = bin.func("runtime.gcMarkTermination"))
    out.push_back(make_site(trace::SiteKind::kGcMarkTermination, "runtime.gcMarkTermination", "", fi->entry));
  if (sync) GORT_TRY_VOID(add_sync_sites(bin, reads, out, warnings));
  if (dangling) GORT_TRY_VOID(add_dangling_sites(bin, convert_hooks, out));
  return out;
}

Result<std::unique_ptr<Recorder>> Recorder::start(int pid, std::unique_ptr<GoBinary> bin, int64_t slide,
                                                  const RecordOptions& opts) {
  std::unique_ptr<Recorder> r(new Recorder());
  r->pid_ = pid;
  r->slide_ = slide;
  r->opts_ = opts;
  if (opts.reads && !opts.sync)
    return make_error(ErrorKind::kBadInput, "map reads are recorded for the happens-before analysis: --reads needs --sync");
  if (!opts.convert_hooks.empty() && !opts.dangling)
    return make_error(ErrorKind::kBadInput, "--convert-hook is part of the dangling-pointer recording: add --dangling");
  GORT_TRY(auto sites,
           plan_sites(*bin, opts.hw_first, r->warnings_, opts.sync, opts.reads, opts.dangling, opts.convert_hooks));
  r->sites_ = std::move(sites);
  if (opts.backend == RecordOptions::Backend::kInproc) {
    // Where the in-process ring dropped hits, a kLost event (concurrent_writes.cpp closes
    // every open window there instead of taking a lost end for an overlap).
    PlannedSite lost;
    lost.site.kind = trace::SiteKind::kLost;
    lost.site.function = "(gort: ring full)";
    lost.probed = false;
    r->lost_site_ = static_cast<uint32_t>(r->sites_.size());
    r->sites_.push_back(lost);
  }
  // One probe per instruction: a later site at the same address is written from the first
  // one's hits (an in-process patch and a uprobe cannot share an instruction).
  {
    std::unordered_map<uint64_t, uint32_t> first_at;
    for (size_t i = 0; i < r->sites_.size(); i++) {
      PlannedSite& ps = r->sites_[i];
      if (!ps.probed || ps.select_entry) continue;
      auto [it, fresh] = first_at.emplace(ps.link_addr.value(), static_cast<uint32_t>(i));
      if (fresh || r->sites_[it->second].select_entry) continue;
      r->sites_[it->second].also.push_back(static_cast<uint32_t>(i));
      ps.probed = false;
    }
  }
  for (const PlannedSite& ps : r->sites_)
    r->site_regs_.push_back({reg_member(ps.g_reg), reg_member(ps.goid_reg), reg_member(ps.map_reg),
                             reg_member(ps.key_reg), reg_member(ps.obj_reg), reg_member(ps.acquired_if_zero)});
  for (uint64_t m : opts.maps) r->maps_.insert(m);

  std::vector<ProbeSpec> specs;
  for (size_t i = 0; i < r->sites_.size(); i++) {
    const PlannedSite& ps = r->sites_[i];
    if (!ps.probed) {
      if (ps.site.op == "select.send") r->select_send_site_ = static_cast<uint32_t>(i);
      continue;
    }
    ProbeSpec spec{ps.link_addr + slide, ProbeKind::kExec, static_cast<uint32_t>(i), "", 0};
    if (ps.select_entry) spec.stack_bytes = kSelectStackBytes;
    std::vector<const PlannedSite*> served = {&ps};
    for (uint32_t j : ps.also) served.push_back(&r->sites_[j]);
    for (const PlannedSite* p : served) {
      if (p->obj_rsp_slot)
        spec.stack_bytes = std::max(spec.stack_bytes, static_cast<uint32_t>((*p->obj_rsp_slot + 8 + 7) / 8 * 8));
      // The registers on_sample reads at this site (what an in-process record carries).
      std::vector<std::string> want;
      for (const std::string* reg : {&p->g_reg, &p->goid_reg, &p->map_reg, &p->key_reg, &p->obj_reg, &p->acquired_if_zero})
        if (!reg->empty()) want.push_back(*reg);
      // A map event's rsp tells whether the map is on the goroutine's own stack (stack_map).
      if (!p->map_reg.empty() && is_map_event_kind(p->site.kind)) want.push_back("rsp");
      for (auto& reg : want)
        if (std::find(spec.regs.begin(), spec.regs.end(), reg) == spec.regs.end()) spec.regs.push_back(reg);
      if (spec.on_stack_reg.empty() && !p->map_reg.empty() && is_map_event_kind(p->site.kind))
        spec.on_stack_reg = p->map_reg;
    }
    r->sites_[i].on_stack_reg = spec.on_stack_reg;
    if (ps.select_entry) {
      // selectgo(cas0 RAX, ..., nsends RDI, nrecvs RSI): the in-process backend gathers
      // the cases' channels (scase.c) instead of the stack bytes perf samples.
      for (const char* reg : {"rax", "rdi", "rsi"}) spec.regs.push_back(reg);
      const RuntimeLayouts& L = bin->layouts();
      spec.gather = ProbeSpec::Gather{"rax", L.scase_size, L.scase_c, 64};
    }
    specs.push_back(spec);
  }
  ProbeOptions po;
  po.mode = ProbeMode::kSample;
  po.allow_uprobes = opts.allow_uprobes;
  po.max_hw = opts.max_hw;
  if (opts.max_hw == RecordOptions::kAutoHw) {
    po.max_hw = under_hypervisor() ? 0 : 4;
    if (po.max_hw == 0 && opts.backend == RecordOptions::Backend::kPerf)
      r->warnings_.push_back(
          "running under a hypervisor: uprobes only (a hardware breakpoint hit can reach the program as a stray "
          "SIGTRAP on some hypervisors and kill it; --max-hw 4 uses the debug registers anyway)");
  }
  po.stack_bytes = 8;
  po.ring_pages = opts.ring_pages;
  po.callchain_depth = opts.stack_depth;
  // Wake the reader a few times per ring, not per sample: waking per sample doubles the
  // per-hit cost on a 2-vCPU machine (perf_probes.h).
  po.wakeup_bytes = static_cast<uint32_t>(opts.ring_pages * 4096u / 8);
  r->start_ns_ = monotonic_ns();
  std::vector<ProbeSpec> perf_specs = specs;
  if (opts.backend == RecordOptions::Backend::kInproc) {
    if (!opts.stop_world) return make_error(ErrorKind::kInternal, "in-process probes need a way to stop the program");
    inproc::InprocOptions io;
    io.ring_bytes = opts.inproc_ring_bytes;
    io.chain = opts.stack_depth > 0;
    GORT_TRY(auto ip, inproc::InprocProbeSet::create(opts.stop_world, pid, *bin, slide, specs, io));
    perf_specs.clear();
    for (const ProbeStatus& st : ip->status()) {
      if (st.backend == ProbeBackend::kInproc) {
        r->status_.push_back(st);
        continue;
      }
      perf_specs.push_back(st.spec);
      const PlannedSite& ps = r->sites_[st.spec.cookie];
      r->warnings_.push_back(fmt::format("{} {} at {:#x}: perf probe instead of in-process: {}", ps.site.function,
                                         trace::to_string(ps.site.kind), st.spec.addr.value(), st.error));
    }
    r->inproc_ = std::move(ip);
  }
  if (!perf_specs.empty()) {
    if (opts.backend == RecordOptions::Backend::kInproc && opts.max_hw == RecordOptions::kAutoHw && po.max_hw == 0)
      r->warnings_.push_back(fmt::format("the {} site(s) above get uprobes, not hardware breakpoints: this is a virtual "
                                         "machine (--max-hw 4 uses the debug registers anyway)",
                                         perf_specs.size()));
    // Perf: the stack bytes the frame-pointer walk of on_own_stack() reads (not for the
    // in-process records, which hold two stack words and test the stack at the hit).
    for (ProbeSpec& sp : perf_specs)
      if (!sp.on_stack_reg.empty()) sp.stack_bytes = std::max(sp.stack_bytes, kMapStackBytes);
    GORT_TRY(auto set, PerfProbeSet::create(pid, perf_specs, po));
    r->probes_ = std::move(set);
    for (const ProbeStatus& st : r->probes_->status()) r->status_.push_back(st);
  }
  // Probes are enabled one after another: a hit before the last one is armed can be half of
  // a write (its begin seen, its end not yet probed). Attached to a running program, that
  // made a false concurrent-map-write in CI (a lost end, 15 ms into the recording).
  // In-process probes are all patched in one stop of the program: armed together.
  r->armed_ns_ = r->probes_ ? monotonic_ns() : 0;

  trace::Header& h = r->header_;
  h.executable = bin->elf().path();
  h.build_id = bin->build_id();
  h.go_version = bin->version().raw;
  h.map_impl = bin->map_impl() == MapImpl::kSwiss ? "swiss" : "hmap";
  h.slide = slide;
  h.pid = pid;
  h.command = opts.command;
  h.start_ns = r->start_ns_;
  h.stack_depth = opts.stack_depth;
  h.dangling = opts.dangling;
  const auto& st = r->status_;
  std::vector<const ProbeStatus*> status_of(r->sites_.size(), nullptr);
  for (auto& s : st)
    if (s.spec.cookie < status_of.size()) status_of[s.spec.cookie] = &s;
  size_t placed = 0;
  for (size_t i = 0; i < r->sites_.size(); i++) {
    PlannedSite& ps = r->sites_[i];
    ps.site.pc = (ps.link_addr + slide).value();
    if (!ps.probed) {
      ps.site.backend = "derived";  // events written from another site's probe
      for (size_t k = 0; k < r->sites_.size(); k++)  // ... which may not have been placed
        if (std::find(r->sites_[k].also.begin(), r->sites_[k].also.end(), i) != r->sites_[k].also.end() &&
            (!status_of[k] || status_of[k]->backend == ProbeBackend::kNone))
          ps.site.backend = to_string(ProbeBackend::kNone);
    } else if (!status_of[i] || status_of[i]->backend == ProbeBackend::kNone) {
      ps.site.backend = to_string(ProbeBackend::kNone);
      r->warnings_.push_back(fmt::format("{} {} at {:#x}: not probed: {}", ps.site.function,
                                         trace::to_string(ps.site.kind), ps.site.pc,
                                         status_of[i] ? status_of[i]->error : "no probe status"));
    } else {
      ps.site.backend = to_string(status_of[i]->backend);
      placed++;
    }
    h.sites.push_back(ps.site);
  }
  if (placed == 0) return make_error(ErrorKind::kIo, "no probe could be placed: {}", r->warnings_.back());
  r->bin_ = std::move(bin);
  GORT_TRY(auto w, trace::Writer::create(opts.output, h));
  r->writer_.emplace(std::move(w));
  GORT_TRY_VOID(r->write_existing_goroutines());
  return r;
}

Recorder::~Recorder() {
  if (!finished_) {  // never leave probes behind, even on an error path
    inproc_.reset();
    probes_.reset();
  }
}

/// The goroutines alive when recording starts have no kGoStart of their own: read them
/// from allgs, after the probes are armed (a goroutine created in between gets both).
Result<void> Recorder::write_existing_goroutines() {
  auto allgs = find_allgs(*bin_);
  if (!allgs) {
    warnings_.push_back(allgs.error().message + ": goroutines that existed before recording have no id");
    return {};
  }
  auto mem = ProcMemory::open(pid_);
  if (!mem) {
    warnings_.push_back(mem.error().message + ": goroutines that existed before recording have no id");
    return {};
  }
  auto gs = read_goroutines(**mem, bin_->layouts(), bin_->version(), allgs->addr + slide_);
  if (!gs) {
    warnings_.push_back(gs.error().message + ": goroutines that existed before recording have no id");
    return {};
  }
  uint32_t site = UINT32_MAX;
  for (size_t i = 0; i < sites_.size(); i++)
    if (sites_[i].site.kind == trace::SiteKind::kGoStart) site = static_cast<uint32_t>(i);
  if (site == UINT32_MAX) return {};
  for (auto& g : *gs) {
    trace::Event e;
    e.time_ns = start_ns_;
    e.site = site;
    e.g = g.g.value();
    e.goid = g.goid;
    e.tid = static_cast<uint32_t>(g.thread_id);
    GORT_TRY_VOID(writer_->add(e));
    events_++;
  }
  return {};
}

/// Whether MAP lies on the stack of G at sample S, between its rsp and g.stack.hi
/// (Event::stack_map), for a perf sample (an in-process one says it itself). The sample
/// is read after the fact, so the g may have moved its stack or exited since; two ways:
///  - the frame-pointer chain in the sample's stack bytes (kMapStackBytes from rsp): every
///    saved rbp it reaches, going up, is a frame of this stack, so [rsp, highest + 16) is
///    stack memory;
///  - g.stack.{lo,hi} read from the g now, kept per g while rsp stays inside them (a
///    stack that moved, or a g reused with another stack, is read again).
/// Unknown (neither shows it) is false.
bool Recorder::on_own_stack(const ProbeSample& s, uint64_t g, uint64_t map) {
  uint64_t rsp = s.regs.rsp;
  if (!g || !rsp || !map || map < rsp) return false;
  uint64_t top = 0;
  for (uint64_t bp = s.regs.rbp; bp >= rsp && bp - rsp + 16 <= s.stack.size();) {
    top = bp + 16;
    uint64_t next;
    std::memcpy(&next, s.stack.data() + (bp - rsp), 8);
    if (next <= bp) break;
    bp = next;
  }
  if (map + 8 <= top) return true;
  auto& b = stack_bounds_[g];
  if (!(b.first <= rsp && rsp < b.second)) {
    b = {0, 0};
    if (!mem_) {
      if (mem_failed_) return false;
      auto m = ProcMemory::open(pid_);
      if (!m) {
        mem_failed_ = true;
        return false;
      }
      mem_ = std::move(*m);
    }
    const RuntimeLayouts& L = bin_->layouts();
    uint64_t lo = 0, hi = 0;
    if (!mem_->read(RemoteAddr(g + L.g_stack_lo), std::span(reinterpret_cast<uint8_t*>(&lo), 8)) ||
        !mem_->read(RemoteAddr(g + L.g_stack_hi), std::span(reinterpret_cast<uint8_t*>(&hi), 8)))
      return false;
    if (!(lo <= rsp && rsp < hi)) return false;
    b = {lo, hi};
  }
  return map < b.second;
}

void Recorder::add_lost(uint64_t time_ns) {
  if (lost_site_ == UINT32_MAX) return;
  trace::Event e;
  e.time_ns = time_ns;
  e.site = lost_site_;
  batch_.push_back(std::move(e));
}

void Recorder::on_sample(const ProbeSample& s) {
  if (s.cookie >= sites_.size()) return;
  if (s.time_ns < armed_ns_) {
    before_armed_++;
    return;
  }
  newest_ns_ = std::max(newest_ns_, s.time_ns);
  if (s.after_loss) add_lost(s.time_ns - 1);
  add_event(s, s.cookie);
  for (uint32_t j : sites_[s.cookie].also) add_event(s, j);
}

/// The event of site SITE from sample S (S.cookie, or a site sharing its instruction).
void Recorder::add_event(const ProbeSample& s, uint32_t site) {
  const PlannedSite& ps = sites_[site];
  if (ps.site.kind == trace::SiteKind::kGcMarkTermination) {
    gc_marks_++;
    last_gc_mark_ns_ = std::max(last_gc_mark_ns_, s.time_ns);
  }
  // Lock's fast path: the CMPXCHG failed (the accumulator holds the nonzero state); the
  // acquire will come from lockSlow's return.
  const SiteRegs& rr = site_regs_[site];
  auto reg = [&](uint64_t ThreadRegs::*m) { return m ? s.regs.*m : 0; };
  if (rr.acquired_if_zero && (reg(rr.acquired_if_zero) & 0xffffffffu) != 0) return;
  trace::Event e;
  e.time_ns = s.time_ns;
  e.site = site;
  e.tid = s.tid;
  e.cpu = s.cpu;
  e.g = reg(rr.g);
  if (rr.goid) e.goid = reg(rr.goid);
  if (rr.map) e.map = reg(rr.map);
  if (ps.obj_link) e.map = *ps.obj_link + static_cast<uint64_t>(slide_);
  else if (ps.obj_rsp_slot) {
    // The stack bytes start at rsp; a short read (the stack's end) leaves the object unknown.
    auto at = static_cast<size_t>(*ps.obj_rsp_slot);
    uint64_t v = 0;
    if (at + 8 <= s.stack.size()) {
      std::memcpy(&v, s.stack.data() + at, 8);
      e.map = v + static_cast<uint64_t>(ps.obj_off);
    } else {
      objects_unread_++;
    }
  } else if (rr.obj) e.map = reg(rr.obj) + static_cast<uint64_t>(ps.obj_off);
  if (!ps.key_reg.empty()) {
    uint64_t k = reg(rr.key);
    if (!ps.key_signed_none || static_cast<int64_t>(k) >= 0) e.key = k;
  }
  if (!maps_.empty() && e.map != 0 && is_map_event_kind(ps.site.kind) && !maps_.count(e.map)) {
    filtered_++;
    return;
  }
  if (e.map != 0 && is_map_event_kind(ps.site.kind)) {
    const std::string& tested = sites_[s.cookie].on_stack_reg;
    e.stack_map = s.on_stack && ps.map_reg == tested ? *s.on_stack : on_own_stack(s, e.g, e.map);
  }
  bool stack_site = (!ps.site.op.empty() && ps.site.kind != trace::SiteKind::kSyncReturn) ||
                    ps.site.kind == trace::SiteKind::kThrow;
  if (stack_site && opts_.stack_depth > 0) {
    if (!spare_stacks_.empty()) {  // a written event's vector: no allocation per event
      e.stack = std::move(spare_stacks_.back());
      spare_stacks_.pop_back();
    }
    e.stack.assign(s.callchain.begin(), s.callchain.end());
    if (e.stack.empty()) e.stack.push_back(s.regs.rip);
    if (ps.ret_at_rsp && s.stack.size() >= 8) {
      uint64_t ret;
      std::memcpy(&ret, s.stack.data(), 8);
      // Recent kernels already add [rsp] for a uprobe on a function's first instruction.
      if (e.stack.size() < 2 || e.stack[1] != ret) e.stack.insert(e.stack.begin() + 1, ret);
    }
    if (e.stack.size() > opts_.stack_depth) e.stack.resize(opts_.stack_depth);
  }
  if (ps.select_entry) {
    add_select_cases(s, e);
    return;
  }
  batch_.push_back(std::move(e));
}

/// runtime.selectgo(cas0 RAX, order0, pc0, nsends RDI, nrecvs RSI, block): the cases are an
/// array of scase{c, elem} in the caller's frame, which the probe's stack bytes hold. Send
/// cases become "select.send" releases, receive cases "select" calls keyed by case index.
void Recorder::add_select_cases(const ProbeSample& s, const trace::Event& entry) {
  const RuntimeLayouts& L = bin_->layouts();
  uint64_t cas0 = s.regs.rax, nsends = s.regs.rdi, nrecvs = s.regs.rsi, rsp = s.regs.rsp;
  if (nsends + nrecvs > 65536) {  // not a select's arguments: a probe in the wrong place
    selects_unread_++;
    return;
  }
  bool unread = false;
  for (uint64_t i = 0; i < nsends + nrecvs; i++) {
    uint64_t at = cas0 + i * L.scase_size + L.scase_c;
    if (at < rsp || at + 8 > rsp + s.stack.size()) {
      unread = true;
      continue;
    }
    uint64_t c;
    std::memcpy(&c, s.stack.data() + (at - rsp), 8);
    if (c == 0) continue;  // a nil channel: the case never runs
    trace::Event e = entry;
    e.map = c;
    if (i < nsends) {
      if (select_send_site_ == UINT32_MAX) continue;
      e.site = select_send_site_;
      e.key.reset();
    } else {
      e.key = i;
    }
    batch_.push_back(std::move(e));
  }
  if (unread) selects_unread_++;
}

Result<void> Recorder::flush_batch(uint64_t before_ns) {
  // batch_[0, sorted_) is in time order from the previous flush: sort only what came since
  // (nearly in order already: each ring is) and merge. Re-sorting the whole held-back batch
  // every pump took half of gort's time at millions of events a second (--backend inproc).
  auto earlier = [](const trace::Event& a, const trace::Event& b) { return a.time_ns < b.time_ns; };
  auto mid = batch_.begin() + static_cast<std::ptrdiff_t>(sorted_);
  if (!std::is_sorted(mid, batch_.end(), earlier)) std::stable_sort(mid, batch_.end(), earlier);
  if (mid != batch_.begin() && mid != batch_.end() && earlier(*mid, *(mid - 1)))
    std::inplace_merge(batch_.begin(), mid, batch_.end(), earlier);
  size_t n = 0;
  while (n < batch_.size() && batch_[n].time_ns < before_ns) {
    GORT_TRY_VOID(writer_->add(batch_[n]));
    if (spare_stacks_.size() < 65536 && batch_[n].stack.capacity()) spare_stacks_.push_back(std::move(batch_[n].stack));
    n++;
  }
  events_ += n;
  batch_.erase(batch_.begin(), batch_.begin() + static_cast<std::ptrdiff_t>(n));
  sorted_ = batch_.size();
  return {};
}

Result<size_t> Recorder::pump(int timeout_ms) {
  if (finished_) return size_t{0};
  // Every event stamped before this moment is in a ring now (a sample is written where it
  // is taken), so this pump drains it: what is older than that, with a margin for the
  // publication of a ring's head, can be written in order. Later ones wait: the rings are
  // drained one after the other, so a later pump can still bring events stamped before
  // them (the analyser needs one time order across threads).
  uint64_t complete_before = monotonic_ns() - kReorderMarginNs;
  size_t got = 0;
  auto sample = [this, &got](const ProbeSample& s) {
    got++;
    on_sample(s);
  };
  if (inproc_ && !probes_) {
    // One ring, read in publication order: write as we go, in chunks, up to the newest
    // event read less the margin (a thread may publish a little after a later one), so
    // that the held-back batch stays small (cache-resident) at millions of events a second.
    for (int chunk = 0; chunk < 256; chunk++) {
      size_t k = inproc_->poll(sample, chunk == 0 ? timeout_ms : 0, kInprocChunk);
      if (newest_ns_ > kReorderMarginNs) GORT_TRY_VOID(flush_batch(newest_ns_ - kReorderMarginNs));
      if (k < kInprocChunk) break;
    }
  } else {
    if (inproc_) inproc_->poll(sample, 0);
    if (probes_) probes_->poll(sample, timeout_ms);
  }
  GORT_TRY_VOID(flush_batch(complete_before));
  GORT_TRY_VOID(writer_->flush());
  return got;
}

Result<void> Recorder::add_heap_scan(const std::string& json) {
  if (finished_) return make_error(ErrorKind::kInternal, "heap scan after the recording finished");
  // Where the record sits among the event blocks does not matter (readers collect the
  // scans at open); flushing held-back events here could write them before events still
  // in another CPU's ring, out of time order.
  return writer_->add_heap_scan(json);
}

bool Recorder::target_gone() const {
  if (!probes_ && !inproc_) return true;
  return (probes_ && probes_->exited()) || (inproc_ && inproc_->exited());
}

RecordStats Recorder::stats() const {
  RecordStats s;
  s.events = events_;
  s.lost = (probes_ ? probes_->lost() : 0) + (inproc_ ? inproc_->lost() : 0);
  s.filtered = filtered_;
  s.bytes = writer_ ? writer_->bytes() : 0;
  s.elapsed_ns = monotonic_ns() - start_ns_;
  return s;
}

const std::vector<ProbeStatus>& Recorder::probes() const { return status_; }

std::string Recorder::backend_summary() const {
  size_t hw = 0, up = 0, in = 0;
  for (auto& s : status_) {
    hw += s.backend == ProbeBackend::kHwBreakpoint;
    up += s.backend == ProbeBackend::kUprobe;
    in += s.backend == ProbeBackend::kInproc;
  }
  std::string how = fmt::format("{} hardware, {} uprobe", hw, up);
  if (opts_.backend == RecordOptions::Backend::kInproc)
    return fmt::format("{} in-process (installed in {:.1f} ms), {}", in, inproc_install_ns() / 1e6, how);
  return how + " (perf, the default: the program's code is left as it is; --backend inproc patches it and costs "
               "~25 ns a hit instead of ~15 us)";
}

Result<trace::Summary> Recorder::finish(const std::string& end_reason) {
  if (finished_) return make_error(ErrorKind::kInternal, "recording already finished");
  // In-process probes first: restore the code (the program keeps running), then drain.
  std::optional<Error> unpatch;
  if (inproc_)
    if (auto rm = inproc_->remove(); !rm) unpatch = rm.error();
  // Whatever the rings still hold (also after the target exited: the kernel keeps perf
  // rings, gort maps the in-process one).
  for (int i = 0; i < 100; i++) {
    GORT_TRY(size_t n, pump(0));
    if (n == 0) break;
  }
  if (inproc_ && inproc_->lost_since_last_record()) add_lost(newest_ns_ + 1);
  if (inproc_ && !unpatch && !inproc_->unmapped() && !inproc_->exited())
    warnings_.push_back(fmt::format("in-process probes removed, but their code page and ring stay mapped in the "
                                    "program ({}): harmless, and gone when the program exits",
                                    inproc_->kept_why().empty() ? "no reason recorded" : inproc_->kept_why()));
  GORT_TRY_VOID(flush_batch(UINT64_MAX));
  trace::Summary sum;
  sum.end_ns = monotonic_ns();
  sum.lost_unmarked = probes_ ? probes_->lost() : 0;
  sum.lost = sum.lost_unmarked + (inproc_ ? inproc_->lost() : 0);
  // Closed here, one by one, even when the target is gone: a child closing them in the
  // background (PerfProbeSet::close_after_exit) made the next recording of the same
  // binary lose most of its uprobe hits while the old probes were being removed.
  probes_.reset();  // closes every fd: removes every probe
  finished_ = true;
  if (unpatch) warnings_.push_back(unpatch->message);
  sum.events = events_;
  sum.filtered = filtered_;
  sum.end_reason = end_reason;
  sum.warnings = warnings_;
  if (selects_unread_)
    sum.warnings.push_back(fmt::format(
        "sync: {} select statement(s) had cases outside the {} stack bytes recorded (reflect.Select, or a huge "
        "frame): their channel operations are not recorded",
        selects_unread_, kSelectStackBytes));
  if (before_armed_)
    sum.warnings.push_back(fmt::format(
        "{} probe hit(s) while the probes were still being armed were left out (a write seen half)", before_armed_));
  if (objects_unread_)
    sum.warnings.push_back(fmt::format(
        "sync: {} sync event(s) whose object lies in a stack slot past the stack's end: their objects are unknown",
        objects_unread_));
  GORT_TRY_VOID(writer_->finish(sum));
  return sum;
}

}  // namespace gort::core::record

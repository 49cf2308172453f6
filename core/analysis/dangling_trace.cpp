// Dangling-pointer findings of a recording (dangling_trace.h).

#include "core/analysis/dangling_trace.h"

#include "core/util/strings.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace gort::core::analysis {

namespace {

uint64_t hex_field(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string()) return 0;
  uint64_t v = 0;
  return parse_u64(j[key].get<std::string>(), v, 0) ? v : 0;
}

}  // namespace

Result<DanglingTrace> DanglingTrace::create(const trace::Header& h, const std::vector<std::string>& scans) {
  try {
    return create_unchecked(h, scans);
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorKind::kBadInput, "a heap scan of the trace has an unexpected shape: {}", e.what());
  }
}

Result<DanglingTrace> DanglingTrace::create_unchecked(const trace::Header& h, const std::vector<std::string>& scans) {
  DanglingTrace t;
  t.enabled_ = !scans.empty() || h.dangling;
  for (auto& s : h.sites) {
    t.kinds_.push_back(s.kind);
    t.functions_.push_back(s.function);
  }
  std::map<std::pair<uint64_t, uint64_t>, uint32_t> by_key;  // (holder, value) -> finding
  std::map<uint64_t, std::pair<uint64_t, std::vector<uint32_t>>> targets;  // lo -> (hi, findings)
  auto& st = t.res_.stats;
  for (size_t i = 0; i < scans.size(); i++) {
    auto j = nlohmann::json::parse(scans[i], nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("findings") || !j["findings"].is_array() ||
        (j.contains("stats") && !j["stats"].is_object()) || (j.contains("heap") && !j["heap"].is_object()))
      return make_error(ErrorKind::kBadInput, "heap scan {} of the trace is not a gort heap scan (corrupt trace?)", i + 1);
    st.scans++;
    uint64_t time = j.value("time_ns", uint64_t{0});
    uint64_t mark = j.value("mark_ns", uint64_t{0});
    if (j.contains("pause_ns") && j["pause_ns"].is_number_unsigned()) st.pauses_ns.push_back(j["pause_ns"].get<uint64_t>());
    if (j.contains("stats")) {
      const auto& s = j["stats"];
      st.bytes_scanned += s.value("bytes_scanned", uint64_t{0});
      st.runtime_holders += s.value("runtime_holders", uint64_t{0});
      st.scan_seconds += s.value("seconds", 0.0);
    }
    if (j.contains("notes"))
      for (auto& n : j["notes"])
        if (n.is_string() && std::find(t.res_.notes.begin(), t.res_.notes.end(), n.get<std::string>()) == t.res_.notes.end())
          t.res_.notes.push_back(n.get<std::string>());
    uint32_t cycle = j.contains("heap") ? j["heap"].value("gc_cycles", 0u) : 0u;
    // Findings an earlier scan wrote in full, seen again: "holder:value".
    if (j.contains("seen") && j["seen"].is_array())
      for (auto& k : j["seen"]) {
        if (!k.is_string()) continue;
        std::string ks = k.get<std::string>();
        auto colon = ks.find(':');
        uint64_t holder = 0, value = 0;
        if (colon == std::string::npos || !parse_u64(ks.substr(0, colon), holder, 0) ||
            !parse_u64(ks.substr(colon + 1), value, 0))
          continue;
        auto it = by_key.find({holder, value});
        if (it == by_key.end()) continue;
        RecordedDangling& d = t.res_.findings[it->second];
        d.last_cycle = cycle;
        d.last_ns = time;
        d.scans++;
      }
    for (auto& f : j["findings"]) {
      if (!f.is_object() || !f.contains("holder") || !f.contains("target") || !f["holder"].is_object() ||
          !f["target"].is_object())
        continue;
      uint64_t holder = hex_field(f["holder"], "addr"), value = hex_field(f["target"], "value");
      auto [it, fresh] = by_key.try_emplace({holder, value}, static_cast<uint32_t>(t.res_.findings.size()));
      if (fresh) {
        RecordedDangling d;
        d.holder_addr = holder;
        d.value = value;
        uint64_t base = hex_field(f["target"], "base");
        uint64_t size = f["target"].value("size", uint64_t{0});
        d.target_lo = base ? base : value;
        d.target_hi = base && size ? base + size : value + 1;
        d.first_cycle = f.value("gc_cycle", cycle);
        d.first_ns = mark ? mark : time;
        t.res_.findings.push_back(std::move(d));
        auto& tg = targets[t.res_.findings.back().target_lo];
        tg.first = std::max(tg.first, t.res_.findings.back().target_hi);
        tg.second.push_back(it->second);
      }
      RecordedDangling& d = t.res_.findings[it->second];
      d.holder = f["holder"];
      d.target = f["target"];
      d.established_by = f.value("established_by", "");
      d.last_cycle = f.value("gc_cycle", cycle);
      d.last_ns = time;
      d.scans++;
    }
  }
  std::sort(st.pauses_ns.begin(), st.pauses_ns.end());
  for (auto& [lo, v] : targets) t.ranges_.push_back(Range{lo, v.first, std::move(v.second)});
  return t;
}

void DanglingTrace::add(const trace::Event& e) {
  if (e.site >= kinds_.size()) return;
  if (kinds_[e.site] == trace::SiteKind::kGcMarkTermination) {
    res_.stats.gc_marks++;
    return;
  }
  if (kinds_[e.site] != trace::SiteKind::kConvert || !e.key) return;
  uint64_t id = res_.stats.conversions++;
  uint64_t v = *e.key;
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), v, [](uint64_t x, const Range& r) { return x < r.lo; });
  bool matched = false;
  // The range just below V, and a few more: a freed-pages byte (found in one scan) can lie
  // inside an object found in another, after the memory was reused.
  for (int back = 0; back < 4 && it != ranges_.begin(); back++) {
    --it;
    if (v >= it->hi) continue;
    for (uint32_t idx : it->findings) {
      RecordedDangling& d = res_.findings[idx];
      if (e.time_ns < d.first_ns) continue;  // the object was still alive then
      matched = true;
      d.conversion_count++;
      d.conversion_ids.push_back(id);
      if (d.conversions.size() < RecordedDangling::kMaxConversions)
        d.conversions.push_back(DanglingConversion{e.time_ns, e.tid, e.g, e.goid, v, functions_[e.site], e.stack});
    }
  }
  if (matched) res_.stats.conversions_matched++;
}

DanglingTraceResult DanglingTrace::finish() {
  // Holders the program named (a global holds them, or is one) first, then by first sight.
  auto named = [](const RecordedDangling& d) {
    return d.holder.value("kind", "") == "global" ||
           (d.holder.contains("referenced_from") && !d.holder["referenced_from"].empty());
  };
  std::stable_sort(res_.findings.begin(), res_.findings.end(), [&](const RecordedDangling& a, const RecordedDangling& b) {
    bool na = named(a), nb = named(b);
    if (na != nb) return na;
    if (a.first_ns != b.first_ns) return a.first_ns < b.first_ns;
    return a.holder_addr < b.holder_addr;
  });
  return std::move(res_);
}

}  // namespace gort::core::analysis

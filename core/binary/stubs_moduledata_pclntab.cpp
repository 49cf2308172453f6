// TEMPORARY stubs so the tree links while moduledata.cpp / pclntab.cpp are written.
// Delete this file when they land.
#include "core/binary/pclntab.h"
namespace gort::core {
Result<ModuleData> find_moduledata(const ElfFile&, const GoVersion&) { return make_error(ErrorKind::kInternal, "not implemented"); }
struct Pclntab::Impl {};
Pclntab::Pclntab(std::unique_ptr<Impl> i) : impl_(std::move(i)) {}
Pclntab::~Pclntab() = default;
Result<std::unique_ptr<Pclntab>> Pclntab::load(const ElfFile&, const ModuleData&, const GoVersion&) { return make_error(ErrorKind::kInternal, "not implemented"); }
uint32_t Pclntab::magic() const { return 0; }
size_t Pclntab::num_funcs() const { return 0; }
FuncInfo Pclntab::func(size_t) const { return {}; }
std::optional<FuncInfo> Pclntab::find_func(RemoteAddr) const { return std::nullopt; }
std::optional<FuncInfo> Pclntab::find_func(std::string_view) const { return std::nullopt; }
Result<std::vector<SourceFrame>> Pclntab::symbolize(RemoteAddr) const { return make_error(ErrorKind::kInternal, "not implemented"); }
Result<SourceFrame> Pclntab::line_at(RemoteAddr) const { return make_error(ErrorKind::kInternal, "not implemented"); }
Result<int32_t> Pclntab::sp_delta(RemoteAddr) const { return make_error(ErrorKind::kInternal, "not implemented"); }
Result<std::vector<InlinedRange>> Pclntab::inlined_ranges(const FuncInfo&) const { return make_error(ErrorKind::kInternal, "not implemented"); }
}  // namespace gort::core

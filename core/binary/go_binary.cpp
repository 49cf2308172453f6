// GoBinary::open: the order matters and each step's failure is a user-facing message.
// ELF -> build info (is it Go? which version?) -> version gate -> moduledata -> pclntab
// -> map implementation (build info, confirmed by pclntab) -> layouts.

#include "core/binary/go_binary.h"

#include <algorithm>
#include <cstring>

namespace gort::core {

Result<std::unique_ptr<GoBinary>> GoBinary::open(const std::string& path, Options opts) {
  GORT_TRY(auto elf, ElfFile::open(path));
  return load(std::move(elf), opts);
}

Result<std::unique_ptr<GoBinary>> GoBinary::from_bytes(Bytes bytes, std::string name, Options opts) {
  GORT_TRY(auto elf, ElfFile::from_bytes(bytes, std::move(name)));
  return load(std::move(elf), opts);
}

Result<std::unique_ptr<GoBinary>> GoBinary::load(std::unique_ptr<ElfFile> elf, Options opts) {
  std::unique_ptr<GoBinary> b(new GoBinary());
  b->elf_ = std::move(elf);
  const std::string& path = b->elf_->path();
  GORT_TRY(b->build_info_, read_buildinfo(*b->elf_));
  const GoVersion& v = b->build_info_.version;
  if (!is_supported(v)) {
    if (!opts.allow_unsupported_version)
      return make_error(ErrorKind::kUnsupported,
                        "{}: built with {}; gort supports Go 1.{}-1.{} (--force-version tries anyway)", path, v.raw,
                        kMinGoMinor, kMaxGoMinor);
    b->notes_.push_back(fmt::format("{} is outside the supported 1.{}-1.{}: results may be wrong", v.raw, kMinGoMinor, kMaxGoMinor));
  }
  auto md = find_moduledata(*b->elf_, v);
  if (!md) return md.error().with_context(fmt::format("{}: cannot find runtime.firstmoduledata (truncated or corrupt binary?)", path));
  b->moduledata_ = std::move(md).value();
  auto pt = Pclntab::load(*b->elf_, b->moduledata_, v);
  if (!pt) return pt.error().with_context(fmt::format("{}: cannot read the pclntab (truncated or corrupt binary?)", path));
  b->pclntab_ = std::move(pt).value();

  const auto exps = b->build_info_.goexperiments();
  bool noswiss = std::find(exps.begin(), exps.end(), "noswissmap") != exps.end();
  b->map_impl_ = map_impl_for(v, noswiss);
  // Cross-check with the code actually linked: swiss builds carry internal/runtime/maps.
  bool has_swiss_code = b->pclntab_->find_func("internal/runtime/maps.(*Map).Delete").has_value() ||
                        b->pclntab_->find_func("internal/runtime/maps.(*Map).Clear").has_value() ||
                        b->pclntab_->find_func("internal/runtime/maps.(*Map).getWithKey").has_value();
  bool has_hmap_code = b->pclntab_->find_func("runtime.(*hmap).growing").has_value() ||
                       b->pclntab_->find_func("runtime.hashGrow").has_value() ||
                       b->pclntab_->find_func("runtime.evacuate").has_value();
  if (b->map_impl_ == MapImpl::kHmap && has_swiss_code && !has_hmap_code) {
    b->notes_.push_back("build info suggests hmap maps but the code is swiss tables; using swiss");
    b->map_impl_ = MapImpl::kSwiss;
  } else if (b->map_impl_ == MapImpl::kSwiss && has_hmap_code && !has_swiss_code) {
    b->notes_.push_back("build info suggests swiss maps but the code is hmap; using hmap");
    b->map_impl_ = MapImpl::kHmap;
  }

  auto lay = load_layouts(*b->elf_, v, b->map_impl_);
  if (!lay) {
    if (!opts.allow_unsupported_version) return lay.error().with_context(path);
    // Forced: take the nearest supported table.
    GoVersion nearest = v;
    nearest.major = 1;
    nearest.minor = v.minor < kMinGoMinor ? kMinGoMinor : kMaxGoMinor;
    GORT_TRY(b->layouts_.layouts, layouts_from_table(nearest, b->map_impl_));
    b->layouts_.source = LayoutSource::kTable;
    b->notes_.push_back(fmt::format("layouts from the {} table", nearest.short_name()));
  } else {
    b->layouts_ = std::move(lay).value();
  }
  for (auto& n : b->layouts_.notes) b->notes_.push_back(n);
  return b;
}

std::string GoBinary::build_id() const {
  // Elf64_Nhdr {namesz, descsz, type = 4}, name "Go\0\0", then the ID (cmd/internal/buildid).
  auto data = elf_->section_data(".note.go.buildid");
  if (!data || data->size() < 16) return "";
  const uint8_t* p = data->data();
  uint32_t namesz, descsz;
  std::memcpy(&namesz, p, 4);
  std::memcpy(&descsz, p + 4, 4);
  size_t desc_at = 12 + ((namesz + 3) & ~3u);
  if (desc_at + descsz > data->size()) return "";
  return std::string(reinterpret_cast<const char*>(p + desc_at), descsz);
}

}  // namespace gort::core

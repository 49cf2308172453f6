#pragma once
#include <lldb/API/LLDB.h>

namespace gort::plugin {
/// Adds every gort subcommand under the `gort` multiword command.
void register_commands(lldb::SBCommand& root);
}  // namespace gort::plugin

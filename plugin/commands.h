#pragma once
#include <lldb/API/LLDB.h>

namespace gort::plugin {
/// Adds every gort subcommand under the `gort` multiword command (plugin/commands.cpp).
void register_commands(lldb::SBCommand& root);

// One registration function per command file; add yours here and in commands.cpp.
void register_info_commands(lldb::SBCommand& root);  // cmd_info.cpp: gort info, gort version
void register_map_commands(lldb::SBCommand& root);   // cmd_map.cpp: gort map
void register_goroutine_commands(lldb::SBCommand& root);  // cmd_goroutines.cpp: gort goroutines, gort bt
void register_break_commands(lldb::SBCommand& root);  // cmd_break.cpp: gort break maps/clear, gort watch map, gort hit
void register_record_commands(lldb::SBCommand& root);  // cmd_record.cpp: gort record start/stop
void register_crash_commands(lldb::SBCommand& root);  // cmd_crash.cpp: gort crash (postmortem on a core)
void register_heap_commands(lldb::SBCommand& root);  // cmd_heap.cpp: gort ptr, gort heap scan/ptr
}  // namespace gort::plugin

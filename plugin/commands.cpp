// The gort command table: every command file registers its subcommands here.
#include "plugin/commands.h"

namespace gort::plugin {

void register_commands(lldb::SBCommand& root) {
  register_info_commands(root);
  register_map_commands(root);
  register_goroutine_commands(root);
  register_break_commands(root);
  register_record_commands(root);
  register_crash_commands(root);
  register_heap_commands(root);
}

}  // namespace gort::plugin

// `gort map [ADDR] [--type TYPEADDR | --key-size N --elem-size M] [--limit N] [--json]`:
// decode a Go map (header and entries) in the stopped process, through core/goruntime/maps.
//
// The map type is not in the map header, so entries need it from somewhere:
// * --type: a *abi.MapType (Go 1.21-1.23, 1.26), *abi.OldMapType (noswiss 1.24/1.25) or
//   *abi.SwissMapType (1.24/1.25);
// * the registers, when the selected frame is stopped at the exact entry of a map
//   function: runtime.mapassign*/mapdelete*/mapclear/mapaccess* take RAX = map type,
//   RBX = map; (*maps.Map).Delete/Clear/PutSlot take RAX = map, RBX = type
//   (ABIInternal, go-runtime.md 1.3). `gort map` with no ADDR then decodes the map being
//   written;
// * --key-size/--elem-size: geometry only, values printed as hex.
// Without any of these, only the header is printed.

// Registered here, run by core/front/commands.cpp (shared with the GDB extension).

#include "plugin/commands.h"
#include "plugin/lldb_target.h"

namespace gort::plugin {

void register_map_commands(lldb::SBCommand& root) {
  root.AddCommand("map", new FrontCommand("map"),
                  "Decode a Go map's header and entries (hmap or swiss). With no ADDR at the entry of "
                  "runtime.mapassign*/mapdelete*/mapclear, decodes the map being written (RBX) using its type (RAX).",
                  "gort map [ADDR] [--type TYPEADDR | --key-size N --elem-size M] [--limit N] [--json]\n"
                  "  ADDR: hex, a register ($rbx) or an expression. Example, at a breakpoint set with\n"
                  "  `breakpoint set -s PROG -a <entry of runtime.mapassign_faststr>` (pclntab address):\n"
                  "    gort map\n"
                  "    gort map $rbx --type $rax --limit 5\n"
                  "    gort map 0xc000012345 --key-size 16 --elem-size 8");
}

}  // namespace gort::plugin

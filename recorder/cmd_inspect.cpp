#include "recorder/cli.h"
namespace gort::recorder {
static int run_inspect(const Args&) { return kExitFailure; }
const Command kInspectCommand{"inspect", "Go version, map implementation, layouts and probe plan of a binary", "TODO\n", run_inspect};
}  // namespace gort::recorder

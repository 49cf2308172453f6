#include "recorder/cli.h"
namespace gort::recorder {
static int run_symbolize(const Args&) { return kExitFailure; }
const Command kSymbolizeCommand{"symbolize", "function, file:line and inlined frames for PCs, from pclntab", "TODO\n", run_symbolize};
}  // namespace gort::recorder

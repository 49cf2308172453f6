#pragma once
// What a `go` statement starts, from the machine code around it: Go's crash output names
// a goroutine's creator and the return address after its runtime.newproc call ("created
// by main.main ... +0xbc") even when it cannot print the goroutine's own stack.
#include "core/binary/go_binary.h"
#include "core/util/result.h"

#include <string>
#include <string_view>
#include <vector>

namespace gort::core {

/// The function(s) the go statement in CREATOR whose newproc call returns to
/// CREATOR+OFFSET starts, outermost first: the function value loaded before the call
/// (LEA of a function, or of a funcval holding one), and for a compiler wrapper
/// (`.gowrapN`, or a `.funcN` that only calls one user function) the function it calls:
/// {"main.main.gowrap2", "main.writerB"}. Error when the code does not have that shape.
Result<std::vector<std::string>> go_statement_start(const GoBinary& bin, std::string_view creator, uint64_t offset);

}  // namespace gort::core

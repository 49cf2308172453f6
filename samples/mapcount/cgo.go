//go:build gortcgo

// Built with -tags gortcgo (tests' "cgo" variant): links the C runtime, so the program
// runs with cgo's thread setup and an externally linked binary.
package main

// static int gort_cgo_probe(void) { return 1; }
import "C"

var cgoLinked = C.gort_cgo_probe()

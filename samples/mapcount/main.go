// mapcount: N writes to one map[uint64]int through a noinline function, on one goroutine,
// started only when a line arrives on stdin, so that a probe can attach first. Prints the
// map's header address before waiting and "writes=N ns=T" (T: the write loop's wall time)
// at the end. The map is sized up front (make with a hint) so that no growth runs during
// the loop: every write toggles the map's writing flag exactly twice (set, clear).
//
// Usage: mapcount [-n N]   (then send a newline on stdin)
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"time"
	"unsafe"
)

//go:noinline
func put(m map[uint64]int, k uint64, v int) {
	m[k] = v
}

// keep puts the map header on the heap: a map that does not escape can have its header
// in main's frame, and after main returns the exit path's calls write over that frame
// (a watchpoint there would see the return addresses pushed by CALLs).
var keep map[uint64]int

func main() {
	n := flag.Int("n", 5000, "number of map writes")
	flag.Parse()
	m := make(map[uint64]int, *n)
	keep = m
	// A map value is a pointer to its header (runtime.hmap / internal/runtime/maps.Map).
	fmt.Printf("pid=%d map=%#x\n", os.Getpid(), *(*uintptr)(unsafe.Pointer(&m)))
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Fprintln(os.Stderr, "mapcount: stdin:", err)
		os.Exit(2)
	}
	start := time.Now()
	for i := 0; i < *n; i++ {
		put(m, uint64(i), i)
	}
	el := time.Since(start)
	fmt.Printf("writes=%d ns=%d len=%d\n", *n, el.Nanoseconds(), len(m))
}

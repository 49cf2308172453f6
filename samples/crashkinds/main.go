// crashkinds: one program per fatal error gort triage recognises, picked by the first
// argument. Each mode crashes the runtime on purpose, so tests can capture real crash logs.
//
//	writes     two goroutines write one map            -> concurrent map writes
//	readwrite  one reads, one writes                   -> concurrent map read and map write
//	iterwrite  one ranges, one writes                  -> concurrent map iteration and map write
//	clonewrite one clones (maps.Clone), one writes     -> concurrent map clone and map write
//	many       600 goroutines parked on a channel, then "writes"
//	freeptr    a pointer kept only as a uintptr, turned back after the GC freed its object
//	           -> found pointer to free object (or found bad pointer in Go heap)
//	fault      reads a page after munmap               -> unexpected fault address
package main

import (
	"fmt"
	"maps"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

var sink int

//go:noinline
func writerA(m map[int]int) {
	for i := 0; ; i++ {
		m[i%1000] = i
	}
}

//go:noinline
func writerB(m map[int]int) {
	for i := 0; ; i++ {
		m[(i*7)%1000] = -i
	}
}

//go:noinline
func reader(m map[int]int) {
	for i := 0; ; i++ {
		sink += m[i%1000]
	}
}

//go:noinline
func iterator(m map[int]int) {
	for {
		for k, v := range m {
			sink += k + v
		}
	}
}

//go:noinline
func cloner(m map[int]int) {
	for {
		c := maps.Clone(m)
		sink += len(c)
	}
}

//go:noinline
func parked(ch chan int) {
	sink += <-ch
}

type node struct {
	next *node
	pad  [2]uint64
}

var keep []*node
var resurrected []*node

//go:noinline
func dangling() {
	// Fill spans of one size class; keep every other object, hold the rest only as uintptrs.
	var lost []uintptr
	for i := 0; i < 4096; i++ {
		n := &node{}
		if i%2 == 0 {
			keep = append(keep, n)
		} else {
			lost = append(lost, uintptr(unsafe.Pointer(n)))
		}
	}
	runtime.GC()
	runtime.GC()
	for _, p := range lost {
		resurrected = append(resurrected, (*node)(unsafe.Pointer(p)))
	}
	for i := 0; i < 10; i++ {
		runtime.GC()
	}
	fmt.Println("no crash")
}

//go:noinline
func fault() {
	b, err := syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		panic(err)
	}
	p := unsafe.Pointer(&b[0])
	syscall.Munmap(b)
	sink += int(*(*byte)(unsafe.Pointer(uintptr(p) + 8)))
}

func main() {
	mode := "writes"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	m := make(map[int]int)
	for i := 0; i < 1000; i++ {
		m[i] = i
	}
	switch mode {
	case "writes":
		go writerA(m)
		writerB(m)
	case "readwrite":
		go reader(m)
		writerB(m)
	case "iterwrite":
		go iterator(m)
		writerB(m)
	case "clonewrite":
		go cloner(m)
		writerB(m)
	case "many":
		ch := make(chan int)
		for i := 0; i < 600; i++ {
			go parked(ch)
		}
		go writerA(m)
		writerB(m)
	case "freeptr":
		dangling()
	case "fault":
		fault()
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", mode)
		os.Exit(2)
	}
}

// mapchurn: goroutines that each make, write and drop maps of their own, never sharing
// one, so that a map's memory is freed and handed to a map of another goroutine (issue
// 27). No mode but `shared` has a data race (`go build -race` reports none): gort must
// report no finding on them, although the same addresses are written by goroutines that
// never synchronize.
//
//	mapchurn heap [-wait]    4 workers x 400 rounds: each round makes a map through one of
//	                         the creating paths (make, make with a hint, a literal,
//	                         maps.Clone, reflect.MakeMap), writes it and drops it; GOGC=10
//	                         and garbage make the GC free them and reuse their memory
//	mapchurn stack [-wait]   200 goroutines one after another (a sleep apart, not waited
//	                         for), each writing a map that lives on its own stack: a later
//	                         goroutine reuses an earlier one's stack, and its map's address
//	mapchurn shared [-wait]  the control: 2 goroutines write one long-lived map without
//	                         synchronization (a real race; their writes are spaced so the
//	                         runtime does not throw)
//
// -wait: print "pid=P ready" and wait for a line on stdin before starting (for attaching).
// Each mode ends with "MODE ok" and how many maps it made.
package main

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"reflect"
	"runtime/debug"
	"strconv"
	"time"
)

const (
	workers = 4
	rounds  = 400
)

// sinks[w] is worker w's alone: garbage that keeps the GC busy, with no race.
var sinks [workers][]byte

// Each maker returns a fresh map from one creation path; the map escapes (it is returned).

//go:noinline
func makeSmall() map[string]int { return make(map[string]int) } // runtime.makemap_small

//go:noinline
func makeHinted(n int) map[int]int { return make(map[int]int, n) } // runtime.makemap / maps.NewMap

//go:noinline
func makeLiteral(w int) map[string]int { // a literal with a constant size: makemap_small
	return map[string]int{"worker": w, "round": 0}
}

//go:noinline
func makeClone(src map[int]int) map[int]int { return maps.Clone(src) }

//go:noinline
func makeReflect() map[int]int {
	return reflect.MakeMap(reflect.TypeOf(map[int]int{})).Interface().(map[int]int)
}

//go:noinline
func fill(m map[int]int, base int) int {
	for i := 0; i < 12; i++ {
		m[base+i] = i
	}
	return len(m)
}

func worker(w int, done chan<- int) {
	made := 0
	seed := map[int]int{1: 1, 2: 2, 3: 3}
	for r := 0; r < rounds; r++ {
		switch r % 5 {
		case 0:
			m := makeSmall()
			m["a"] = r
			m["b"] = w
			made++
		case 1:
			made += fill(makeHinted(16), r) / 12
		case 2:
			m := makeLiteral(w)
			m["round"] = r
			made++
		case 3:
			made += fill(makeClone(seed), r) / 15
		case 4:
			made += fill(makeReflect(), r) / 12
		}
		sinks[w] = make([]byte, 4096)
		if r%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	done <- made
}

func runHeap() {
	done := make(chan int)
	for w := 0; w < workers; w++ {
		go worker(w, done)
	}
	made := 0
	for w := 0; w < workers; w++ {
		made += <-done
	}
	fmt.Printf("heap ok maps=%d\n", made)
}

//go:noinline
func stackMap(base int) int {
	m := map[int]int{} // does not escape, constant hint: on the stack, made by no call
	for i := 0; i < 8; i++ {
		m[base+i] = i
	}
	return len(m)
}

func runStack() {
	for i := 0; i < 200; i++ {
		go func(i int) { stackMap(i) }(i)
		time.Sleep(200 * time.Microsecond) // not a synchronization: the goroutines are unordered
	}
	time.Sleep(20 * time.Millisecond)
	fmt.Println("stack ok maps=200")
}

var shared map[int]int

//go:noinline
func writeShared(base int) {
	for i := 0; i < 5; i++ {
		shared[base+i] = i
	}
}

func runShared() {
	shared = make(map[int]int)
	done := make(chan bool)
	for w := 0; w < 2; w++ {
		go func(w int) {
			for r := 0; r < 20; r++ {
				writeShared(w*1000 + r)
				time.Sleep(time.Duration(1+w) * time.Millisecond)
			}
			done <- true
		}(w)
	}
	<-done
	<-done
	fmt.Printf("shared ok len=%d\n", len(shared))
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: mapchurn heap|stack|shared [-wait]")
		os.Exit(2)
	}
	debug.SetGCPercent(10)
	if len(os.Args) > 2 && os.Args[2] == "-wait" {
		fmt.Println("pid=" + strconv.Itoa(os.Getpid()) + " ready")
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	switch os.Args[1] {
	case "heap":
		runHeap()
	case "stack":
		runStack()
	case "shared":
		runShared()
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
	time.Sleep(20 * time.Millisecond) // let the runtime's threads settle before exit (see samples/mapwrites)
}

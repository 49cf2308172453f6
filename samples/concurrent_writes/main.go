// concurrent_writes: two goroutines write one map with no lock. Each prints its goroutine
// id first (parsed from runtime.Stack) so tests can match gort's ids. With no argument it
// writes until the runtime throws "concurrent map writes"; with N it stops after N writes
// each (and may or may not throw).
package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
)

func goid() int {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, _ := strconv.Atoi(string(b[:bytes.IndexByte(b, ' ')]))
	return id
}

//go:noinline
func writerA(m map[int]int, n int, wg *sync.WaitGroup) {
	defer wg.Done()
	fmt.Printf("writerA goroutine %d\n", goid())
	for i := 0; n < 0 || i < n; i++ {
		m[i%1000] = i
	}
}

//go:noinline
func writerB(m map[int]int, n int, wg *sync.WaitGroup) {
	defer wg.Done()
	fmt.Printf("writerB goroutine %d\n", goid())
	for i := 0; n < 0 || i < n; i++ {
		m[(i*7)%1000] = -i
	}
}

func main() {
	n := -1
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	m := make(map[int]int)
	var wg sync.WaitGroup
	wg.Add(2)
	go writerA(m, n, &wg)
	go writerB(m, n, &wg)
	wg.Wait()
	fmt.Printf("done len=%d\n", len(m))
}

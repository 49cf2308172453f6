// mapsoak: a long-running target for attach/detach tests. Two goroutines write two maps
// (map[uint64]uint64: runtime.mapassign_fast64; map[string]int: mapassign_faststr) under
// a mutex, with GC churn, until a line arrives on stdin (or -duration passes), then check
// every value and print a checksum that does not depend on how long it ran.
//
//	mapsoak [-duration 1.5s] [-cpuprofile FILE]
//
// stdout: "map 0x... strmap 0x..." and "ready" at start (the maps' runtime addresses, for
// `gort watch map`), then "mapsoak len=1000 strs=100 sum=... ok" at the end. The number
// of rounds goes to stderr: it varies.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const keys = 1000

type store struct {
	mu   sync.Mutex
	m    map[uint64]uint64
	strs map[string]int
}

var names [100]string

func init() {
	for i := range names {
		names[i] = "k" + strconv.Itoa(i)
	}
}

func value(k uint64) uint64 { return k*k + 7 }

//go:noinline
func (s *store) put(k uint64) {
	s.mu.Lock()
	s.m[k] = value(k)
	if k%10 == 0 {
		s.strs[names[k/10]] = int(k)
	}
	s.mu.Unlock()
}

var garbage atomic.Pointer[[]*[64]byte]

// Every round writes every key: after the first one the maps' contents are final.
func writer(s *store, w uint64, stop *atomic.Bool, rounds *atomic.Int64, first, wg *sync.WaitGroup) {
	defer wg.Done()
	for r := 0; ; r++ {
		if r == 1 {
			first.Done()
		}
		if stop.Load() {
			return
		}
		for i := uint64(0); i < keys; i++ {
			s.put((i*(w*2+1) + w) % keys)
		}
		// GC churn: ~64 KiB of short-lived pointerful garbage a round.
		g := make([]*[64]byte, 1024)
		for i := range g {
			g[i] = new([64]byte)
		}
		garbage.Store(&g)
		rounds.Add(1)
	}
}

func main() {
	dur := flag.Duration("duration", 0, "stop after this long (default: at the first line on stdin, or EOF)")
	cpuprofile := flag.String("cpuprofile", "", "CPU-profile the run into this file (SIGPROF on every thread)")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mapsoak:", err)
			os.Exit(2)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "mapsoak:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	s := &store{m: map[uint64]uint64{}, strs: map[string]int{}}
	fmt.Printf("map %p strmap %p\n", s.m, s.strs)
	var stop atomic.Bool
	var rounds atomic.Int64
	var wg, first sync.WaitGroup
	for w := uint64(0); w < 2; w++ {
		wg.Add(1)
		first.Add(1)
		go writer(s, w, &stop, &rounds, &first, &wg)
	}
	first.Wait()
	fmt.Println("ready")
	if *dur > 0 {
		time.Sleep(*dur)
	} else {
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	stop.Store(true)
	wg.Wait()
	var sum uint64
	for k, v := range s.m {
		if v != value(k) {
			fmt.Printf("mapsoak: m[%d] = %d, want %d\n", k, v, value(k))
			os.Exit(1)
		}
		sum += k ^ v
	}
	for i, n := range names {
		if s.strs[n] != i*10 {
			fmt.Printf("mapsoak: strs[%s] = %d, want %d\n", n, s.strs[n], i*10)
			os.Exit(1)
		}
	}
	fmt.Printf("mapsoak len=%d strs=%d sum=%d ok\n", len(s.m), len(s.strs), sum)
	fmt.Fprintf(os.Stderr, "mapsoak: %d rounds\n", rounds.Load())
}

// dangling: a handle table that keeps object addresses as uintptr, the bug gort's
// dangling-pointer scan finds. The GC does not see a uintptr as a pointer: when the last
// real pointer goes, the object is freed and its memory reused, and unsafe.Pointer(h)
// later reads whatever took its place.
//
//	dangling stale    N handles; half the objects stay referenced from `live`, half are
//	                  dropped; two GCs free them. The stale handles dangle.
//	dangling kept     every object a handle names is also kept alive: no finding.
//	dangling random   no handles, but slices and globals full of large random 64-bit
//	                  integers (hashes, counters, timestamps): no finding.
//	dangling bench MB a live heap of MB megabytes (for scripts/bench), plus the stale mode.
//	dangling churn S  kept handles, and S seconds of allocation with a GC every ~10 ms
//	                  (or until a line arrives on stdin, if sooner); checks every kept
//	                  object through its handle, prints "churn ok N GCs" (the target of
//	                  gort's kill-during-recording tests).
//
// Each mode prints one line "handles stale=0x..,0x.. kept=0x..,.." (addresses in hex), then
// "ready pid=P" and waits for a line on stdin; then it reuses the memory and reads through
// the stale handles (printing how many now read another object's bytes), and exits.
package main

import (
	"bufio"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

type record struct {
	id    uint64
	magic uint64
	name  [32]byte
}

const magic = 0x600dcafe600dcafe

// The handle table: the integers the GC does not follow.
var handles []uintptr

// What the program keeps alive by real pointers.
var live []*record

// Random integers that must not look like dangling pointers.
var noise []uint64
var noiseMap = map[uint64]uint64{}
var counter uint64

//go:noinline
func newRecord(id int) *record {
	r := &record{id: uint64(id), magic: magic}
	copy(r.name[:], fmt.Sprintf("record-%d", id))
	return r
}

// register puts r in the handle table: the code that fills it.
//
//go:noinline
func register(r *record) uintptr {
	h := uintptr(unsafe.Pointer(r))
	handles = append(handles, h)
	return h
}

//go:noinline
func lookup(h uintptr) *record {
	return (*record)(unsafe.Pointer(h))
}

func hexList(xs []uintptr) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprintf("%#x", x)
	}
	return strings.Join(s, ",")
}

func fillStale(n int, keepAll bool) (stale, kept []uintptr) {
	handles = make([]uintptr, 0, n)
	for i := 0; i < n; i++ {
		r := newRecord(i)
		h := register(r)
		if keepAll || i%2 == 0 {
			live = append(live, r)
			kept = append(kept, h)
		} else {
			stale = append(stale, h)
		}
	}
	return
}

func fillNoise(n int) {
	rng := rand.New(rand.NewSource(42))
	noise = make([]uint64, n)
	for i := range noise {
		noise[i] = rng.Uint64()
		noiseMap[rng.Uint64()] = rng.Uint64()
		counter += uint64(i)
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dangling stale|kept|random|bench MB")
		os.Exit(2)
	}
	var stale, kept []uintptr
	var ballast [][]byte
	switch os.Args[1] {
	case "stale":
		stale, kept = fillStale(64, false)
	case "kept":
		stale, kept = fillStale(64, true)
	case "random":
		fillNoise(100000)
	case "bench":
		mb, err := strconv.Atoi(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench MB")
			os.Exit(2)
		}
		// Pointer-free chunks of random bytes, and pointerful records, about MB megabytes.
		rng := rand.New(rand.NewSource(1))
		for i := 0; i < mb; i++ {
			b := make([]byte, 1<<20)
			rng.Read(b)
			ballast = append(ballast, b)
		}
		stale, kept = fillStale(64, false)
	case "churn":
		secs, err := strconv.ParseFloat(os.Args[2], 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, "churn SECONDS")
			os.Exit(2)
		}
		churn(secs)
		return
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
	runtime.GC()
	runtime.GC()
	fmt.Printf("handles stale=%s kept=%s\n", hexList(stale), hexList(kept))
	fmt.Printf("ready pid=%d\n", os.Getpid())
	bufio.NewReader(os.Stdin).ReadString('\n')

	// Reuse: new objects of the same size class take the freed slots.
	var reuse []*record
	for i := 0; i < 4096; i++ {
		reuse = append(reuse, &record{id: uint64(1000000 + i), magic: 0xbad})
	}
	wrong := 0
	for _, h := range stale {
		if lookup(h).magic != magic {
			wrong++
		}
	}
	fmt.Printf("stale handles reading another object: %d of %d\n", wrong, len(stale))
	runtime.KeepAlive(live)
	runtime.KeepAlive(reuse)
	runtime.KeepAlive(ballast)
}

// churn: allocation and frequent GCs while kept handles must stay valid.
func churn(secs float64) {
	_, kept := fillStale(64, true)
	fmt.Printf("ready pid=%d\n", os.Getpid())
	deadline := time.Now().Add(time.Duration(secs * float64(time.Second)))
	stop := make(chan struct{})
	go func() { // a line on stdin ends the churn early; EOF (no stdin) does not
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err == nil {
			close(stop)
		}
	}()
	var garbage [][]byte
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for stopped := false; !stopped && time.Now().Before(deadline); {
		select {
		case <-stop:
			stopped = true
		default:
		}
		for i := 0; i < 200; i++ {
			garbage = append(garbage, make([]byte, 1024+i))
			if len(garbage) > 4096 {
				garbage = garbage[:0]
			}
		}
		for i, h := range kept {
			if r := lookup(h); r.magic != magic || r.id != uint64(i) {
				fmt.Printf("churn BROKEN: handle %d reads id %d magic %#x\n", i, r.id, r.magic)
				os.Exit(1)
			}
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	fmt.Printf("churn ok %d GCs\n", after.NumGC-before.NumGC)
	runtime.KeepAlive(live)
}

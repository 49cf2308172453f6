// unlocked_path: the bug the race detector finds and the runtime almost never does. A
// Registry's map is written under r.mu by Register and, on one rarely taken path, without
// it by refreshUnlocked, from a background goroutine. The two writers are scheduled in
// different time slots (the background one in the middle of main's pauses), so their writes
// almost never overlap and the runtime almost never throws "concurrent map writes"; nothing
// orders them, though (time is not synchronization), so the map is unsafely shared.
//
//	unlocked_path [write]   Register (locked) against refreshUnlocked (no lock): map writes
//	unlocked_path read      Register (locked) against peekUnlocked (no lock): a map read
//
// Prints the map's and the mutex's addresses ("registry map=0x... mu=0x...") first, then
// "registered=N refreshed=M entries=E" (write) or "registered=N peeked=M" (read).
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

const (
	rounds    = 20                    // main's bursts of registrations
	perRound  = 20                    // registrations per burst
	slot      = 10 * time.Millisecond // one burst every slot
	refreshes = 4                     // the background path runs this often
	perFresh  = 3                     // map writes (or reads) per background run
)

// Registry maps service names to ids.
type Registry struct {
	mu sync.Mutex
	m  map[string]int
}

func NewRegistry() *Registry { return &Registry{m: make(map[string]int)} }

// Register is the normal path: the map is written under r.mu.
//
//go:noinline
func (r *Registry) Register(name string, id int) {
	r.mu.Lock()
	r.m[name] = id
	r.mu.Unlock()
}

// refreshUnlocked is the bug: a maintenance path that rewrites the defaults and forgot the
// lock ("it only runs at startup and every few seconds").
//
//go:noinline
func (r *Registry) refreshUnlocked(gen int) {
	for i := 0; i < perFresh; i++ {
		r.m[defaults[i]] = -gen
	}
}

// peekUnlocked reads the defaults without the lock.
//
//go:noinline
func (r *Registry) peekUnlocked() int {
	s := 0
	for i := 0; i < perFresh; i++ {
		s += r.m[defaults[i]]
	}
	return s
}

var defaults = [perFresh]string{"auth", "billing", "search"}

var names [rounds * perRound]string

func init() {
	for i := range names {
		names[i] = "svc-" + strconv.Itoa(i)
	}
}

// sleepUntil sleeps until start+d (not at all if that has passed).
func sleepUntil(start time.Time, d time.Duration) {
	if left := time.Until(start.Add(d)); left > 0 {
		time.Sleep(left)
	}
}

// background runs the unlocked path REFRESHES times, half a slot after main's bursts.
func background(r *Registry, start time.Time, read bool, done chan<- int) {
	n := 0
	for k := 0; k < refreshes; k++ {
		sleepUntil(start, slot/2+time.Duration(k*rounds/refreshes)*slot)
		if read {
			r.peekUnlocked()
		} else {
			r.refreshUnlocked(k + 1)
		}
		n++
	}
	done <- n
}

func main() {
	mode := "write"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	if mode != "write" && mode != "read" {
		fmt.Fprintf(os.Stderr, "usage: unlocked_path [write|read]\n")
		os.Exit(2)
	}
	r := NewRegistry()
	r.Register("gateway", 0)
	fmt.Printf("registry map=%p mu=%p\n", r.m, &r.mu)
	start := time.Now()
	done := make(chan int)
	go background(r, start, mode == "read", done)
	for k := 0; k < rounds; k++ {
		sleepUntil(start, time.Duration(k)*slot)
		for i := 0; i < perRound; i++ {
			r.Register(names[k*perRound+i], k*perRound+i)
		}
	}
	n := <-done
	if mode == "read" {
		fmt.Printf("registered=%d peeked=%d\n", rounds*perRound, n)
	} else {
		fmt.Printf("registered=%d refreshed=%d entries=%d\n", rounds*perRound, n, len(r.m))
	}
}

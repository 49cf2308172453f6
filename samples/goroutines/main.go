// goroutines: parks goroutines in known ways, prints runtime.NumGoroutine(), then calls
// stopHere for a debugger to list them (gort goroutines / gort bt).
//
// Parked goroutines, each entered through a named function so a backtrace shows it:
//   - chanRecv:   receives on a channel nobody sends on   -> "chan receive"
//   - mutexLock:  locks a mutex main holds                 -> "sync.Mutex.Lock"
//   - sleeper:    time.Sleep(1h)                           -> "sleep"
//   - selector:   select on two silent channels            -> "select"
package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

var (
	never   = make(chan int)
	never2  = make(chan int)
	mu      sync.Mutex
	started sync.WaitGroup
)

//go:noinline
func chanRecv() {
	started.Done()
	<-never
}

//go:noinline
func mutexLock() {
	started.Done()
	mu.Lock()
	mu.Unlock()
}

//go:noinline
func sleeper() {
	started.Done()
	time.Sleep(time.Hour)
}

//go:noinline
func selector() {
	started.Done()
	select {
	case <-never:
	case <-never2:
	}
}

//go:noinline
func stopHere(n int) {
	fmt.Fprintln(os.Stderr, "stopHere", n)
}

// waitParked polls until every started goroutine is parked (not runnable or running):
// NumGoroutine counts them as soon as they exist, parked or not.
func waitParked() {
	time.Sleep(100 * time.Millisecond)
	for i := 0; i < 50; i++ {
		buf := make([]byte, 1<<16)
		s := string(buf[:runtime.Stack(buf, true)])
		if !contains(s, "[runnable]") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func main() {
	mu.Lock()
	fns := []func(){chanRecv, mutexLock, sleeper, selector}
	started.Add(len(fns))
	for _, f := range fns {
		go f()
	}
	started.Wait()
	waitParked()
	n := runtime.NumGoroutine()
	fmt.Printf("goroutines %d\n", n)
	stopHere(n)
	mu.Unlock()
}

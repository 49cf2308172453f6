// synced: one map written by several goroutines, correctly synchronised, one mode per
// kind of synchronization. No mode has a data race (`go run -race . MODE` reports none);
// gort's happens-before analysis must report no unsynchronized writer in any of them.
//
//	synced mutex       4 workers write under a sync.Mutex
//	synced rwmutex     2 writers under Lock, 2 readers under RLock
//	synced chan        the map handed back and forth through unbuffered channels
//	synced waitgroup   fork/join: main writes, starts one worker, waits for it, writes again...
//	synced once        sync.Once creates and fills the map, then workers write under a mutex
//	synced select      the map handed back and forth through select statements
//
// Each mode does a few hundred synchronization operations and prints "MODE ok len=N".
//
//	synced bench N     for scripts/bench: prints "pid=P map=0xM", waits for a line on stdin,
//	                   then 2 workers write N times in all under one mutex, timed by the
//	                   program: "writes=N ns=T" (the format of samples/mapcount)
package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	workers = 4
	perW    = 50 // writes per worker
	trips   = 50 // hand-off round trips
)

// Mutex: the control of every lock-based analysis.

type counter struct {
	mu sync.Mutex
	m  map[int]int
}

//go:noinline
func (c *counter) add(k int) {
	c.mu.Lock()
	c.m[k]++
	c.mu.Unlock()
}

func runMutex() int {
	c := &counter{m: make(map[int]int)}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perW; i++ {
				c.add(w*perW + i%10)
			}
		}(w)
	}
	wg.Wait()
	return len(c.m)
}

// RWMutex: writers under Lock, readers under RLock.

type table struct {
	mu sync.RWMutex
	m  map[int]int
}

//go:noinline
func (t *table) set(k, v int) {
	t.mu.Lock()
	t.m[k] = v
	t.mu.Unlock()
}

//go:noinline
func (t *table) get(k int) int {
	t.mu.RLock()
	v := t.m[k]
	t.mu.RUnlock()
	return v
}

func runRWMutex() int {
	t := &table{m: make(map[int]int)}
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(2)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perW; i++ {
				t.set(w*perW+i, i)
			}
		}(w)
		go func(w int) {
			defer wg.Done()
			s := 0
			for i := 0; i < perW; i++ {
				s += t.get(i)
			}
			_ = s
		}(w)
	}
	wg.Wait()
	return len(t.m)
}

// Channel hand-off: whoever holds the map owns it; ownership moves with the send.

//go:noinline
func produce(m map[int]int, i int) { m[i] = i }

//go:noinline
func consume(m map[int]int, i int) { m[-i-1] = i }

func runChan() int {
	toC, toP := make(chan map[int]int), make(chan map[int]int)
	done := make(chan int)
	go func() { // the consumer
		for m := range toC {
			consume(m, len(m))
			toP <- m
		}
		done <- 0
	}()
	m := make(map[int]int)
	for i := 0; i < trips; i++ {
		produce(m, i)
		toC <- m
		m = <-toP
	}
	close(toC)
	<-done
	return len(m)
}

// WaitGroup fork/join: main and one worker at a time, strictly in turn.

//go:noinline
func forkWrite(m map[int]int, k int) { m[k] = k }

func runWaitGroup() int {
	m := make(map[int]int)
	var wg sync.WaitGroup
	for i := 0; i < trips; i++ {
		forkWrite(m, 2*i)
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			forkWrite(m, k)
		}(2*i + 1)
		wg.Wait()
	}
	forkWrite(m, -1)
	return len(m)
}

// Once: the map is created and filled by whichever worker gets there first.

type lazy struct {
	once sync.Once
	mu   sync.Mutex
	m    map[string]int
}

//go:noinline
func (l *lazy) init() {
	l.m = make(map[string]int)
	for _, s := range []string{"a", "b", "c", "d"} {
		l.m[s] = len(s)
	}
}

//go:noinline
func (l *lazy) bump(s string) {
	l.once.Do(l.init)
	l.mu.Lock()
	l.m[s]++
	l.mu.Unlock()
}

func runOnce() int {
	l := &lazy{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			<-start
			for i := 0; i < perW/2; i++ {
				l.bump(fmt.Sprint("k", (w+i)%8))
			}
		}(w)
	}
	close(start) // all workers race to the Once
	wg.Wait()
	return len(l.m)
}

// Select hand-off: as chan, through select statements (with a timeout case never taken).

func runSelect() int {
	toC, toP := make(chan map[int]int), make(chan map[int]int)
	quit := make(chan struct{})
	done := make(chan int)
	go func() {
		for {
			select {
			case m := <-toC:
				consume(m, len(m))
				select {
				case toP <- m:
				case <-quit:
					done <- 1
					return
				}
			case <-quit:
				done <- 0
				return
			}
		}
	}()
	m := make(map[int]int)
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	for i := 0; i < trips; i++ {
		produce(m, i)
		select {
		case toC <- m:
		case <-timeout.C:
			panic("select: consumer stuck")
		}
		select {
		case m = <-toP:
		case <-timeout.C:
			panic("select: consumer stuck")
		}
	}
	close(quit)
	<-done
	return len(m)
}

// runBench: the mutex workload of runMutex, N writes by 2 workers, timed between a line on
// stdin (a tool attaches first) and the join.
func runBench(n int) int {
	c := &counter{m: make(map[int]int)}
	fmt.Printf("pid=%d map=%p\n", os.Getpid(), c.m)
	bufio.NewReader(os.Stdin).ReadString('\n')
	t := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w, k int) {
			defer wg.Done()
			for i := 0; i < k; i++ {
				c.add(i % 100)
			}
		}(w, n/2+w*(n%2))
	}
	wg.Wait()
	fmt.Printf("writes=%d ns=%d\n", n, time.Since(t).Nanoseconds())
	return len(c.m)
}

var modes = map[string]func() int{
	"mutex": runMutex, "rwmutex": runRWMutex, "chan": runChan,
	"waitgroup": runWaitGroup, "once": runOnce, "select": runSelect,
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "bench" {
		n, err := strconv.Atoi(os.Args[2])
		if err != nil || n < 0 {
			fmt.Fprintf(os.Stderr, "usage: synced bench N\n")
			os.Exit(2)
		}
		fmt.Printf("bench ok len=%d\n", runBench(n))
		return
	}
	if len(os.Args) != 2 || modes[os.Args[1]] == nil {
		var names []string
		for k := range modes {
			names = append(names, k)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "usage: synced %s | bench N\n", strings.Join(names, "|"))
		os.Exit(2)
	}
	n := modes[os.Args[1]]()
	fmt.Printf("%s ok len=%d\n", os.Args[1], n)
}

// locked_writes: the control for concurrent_writes: the same two writers, properly locked.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
)

type cache struct {
	mu sync.Mutex
	m  map[int]int
}

//go:noinline
func (c *cache) put(k, v int) {
	c.mu.Lock()
	c.m[k] = v
	c.mu.Unlock()
}

func main() {
	n := 100000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	c := &cache{m: map[int]int{}}
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < n; i++ {
				c.put((i*(w+1))%1000, i)
			}
		}(w)
	}
	wg.Wait()
	fmt.Printf("done len=%d\n", len(c.m))
}

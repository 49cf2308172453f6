// wbstores: pointer stores into one known heap slot while the GC keeps marking, so that
// runtime.gcWriteBarrierN is called from main.storeNode with that slot and one of a few
// known values. Write barriers only run during a GC mark phase
// (../shared/reference/go-runtime.md 4.1): another goroutine runs runtime.GC() in a loop
// until the storer has seen enough cycles. The program prints the slot address and the
// values, so a test can check a hit's slot and value exactly.
package main

import (
	"fmt"
	"runtime"
	"sync/atomic"
)

type node struct {
	next *node
	id   int
}

// storeNode does the one pointer store whose barrier the tests look for.
//
//go:noinline
func storeNode(holder *node, v *node) { holder.next = v }

const numValues = 4

// keep makes holder escape: a stack-allocated holder (Go 1.21 keeps it on main's stack)
// moves when the stack grows, and the printed slot would go stale.
var keep *node

func main() {
	holder := &node{id: -1}
	keep = holder
	values := make([]*node, numValues)
	for i := range values {
		values[i] = &node{id: i}
	}
	fmt.Printf("slot %#x\n", uintptr(unsafePointer(&holder.next)))
	for i, v := range values {
		fmt.Printf("value %d %#x\n", i, uintptr(unsafePointer(v)))
	}

	var cycles atomic.Int64
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		for !stop.Load() {
			runtime.GC()
			cycles.Add(1)
		}
		close(done)
	}()
	stores := 0
	for cycles.Load() < 20 {
		for j := 0; j < 64; j++ {
			storeNode(holder, values[stores%numValues])
			stores++
		}
		spin()
	}
	stop.Store(true)
	<-done
	fmt.Printf("last id %d\n", holder.next.id)
	fmt.Println("done")
}

var spinSink int

// spin keeps the stores sparse (a few per microsecond), so that a software breakpoint
// per barrier hit stays affordable.
//
//go:noinline
func spin() {
	for i := 0; i < 2000; i++ {
		spinSink += i
	}
}

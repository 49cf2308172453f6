// mapwrites: one goroutine exercises every kind of map write the runtime has a separate
// entry point for (fast32/64/64ptr/str, generic, large elems, delete, clear, clone), plus
// pointer stores that go through write barriers and uintptr->pointer conversions that
// checkptr builds instrument. Deterministic output: the final checksums.
package main

import (
	"fmt"
	"maps"
	"os"
	"reflect"
	"runtime"
	"time"
	"unsafe"
)

type point struct{ x, y int32 }
type big struct{ payload [40]int64 }
type node struct {
	next *node
	val  *int
}

var sink *node

//go:noinline
func put32(m map[uint32]int, k uint32, v int) { m[k] = v }

//go:noinline
func put64(m map[uint64]int, k uint64, v int) { m[k] = v }

//go:noinline
func putPtr(m map[*int]int, k *int, v int) { m[k] = v }

//go:noinline
func putStr(m map[string]int, k string, v int) { m[k] = v }

//go:noinline
func putStruct(m map[point]int, k point, v int) { m[k] = v }

//go:noinline
func putBig(m map[int]big, k int, v big) { m[k] = v }

//go:noinline
func putPointerValue(m map[int]*node, k int, v *node) { m[k] = v }

//go:noinline
func del32(m map[uint32]int, k uint32) { delete(m, k) }

//go:noinline
func del64(m map[uint64]int, k uint64) { delete(m, k) }

//go:noinline
func delStr(m map[string]int, k string) { delete(m, k) }

//go:noinline
func delStruct(m map[point]int, k point) { delete(m, k) }

// A two-string key has no fast path: generic runtime.mapassign / mapdelete.
type pair [2]string

//go:noinline
func putPair(m map[pair]int, k pair, v int) { m[k] = v }

//go:noinline
func delPair(m map[pair]int, k pair) { delete(m, k) }

// reflect writes go through reflect.mapassign* / reflect.mapdelete*.
//
//go:noinline
func reflectPut(m map[string]int, k string, v int) {
	reflect.ValueOf(m).SetMapIndex(reflect.ValueOf(k), reflect.ValueOf(v))
}

//go:noinline
func reflectDel(m map[string]int, k string) {
	reflect.ValueOf(m).SetMapIndex(reflect.ValueOf(k), reflect.Value{})
}

//go:noinline
func clearMap(m map[string]int) { clear(m) }

//go:noinline
func clearRange(m map[uint64]int) {
	for k := range m {
		delete(m, k)
	}
}

//go:noinline
func storePtr(n *node, v *node) { n.next = v }

//go:noinline
func fromUintptr(u uintptr) *int { return (*int)(unsafe.Pointer(u)) }

func main() {
	n := 200
	if len(os.Args) > 1 {
		fmt.Sscan(os.Args[1], &n)
	}
	m32 := map[uint32]int{}
	m64 := map[uint64]int{}
	mptr := map[*int]int{}
	mstr := map[string]int{}
	mst := map[point]int{}
	mbig := map[int]big{}
	mpv := map[int]*node{}
	mpair := map[pair]int{}
	mrefl := map[string]int{}
	keys := make([]*int, n)
	for i := 0; i < n; i++ {
		keys[i] = new(int)
		*keys[i] = i
		put32(m32, uint32(i), i)
		put64(m64, uint64(i), i)
		putPtr(mptr, keys[i], i)
		putStr(mstr, fmt.Sprintf("k%d", i), i)
		putStruct(mst, point{int32(i), int32(-i)}, i)
		putBig(mbig, i, big{payload: [40]int64{int64(i)}})
		nd := &node{val: keys[i]}
		putPointerValue(mpv, i, nd)
		putPair(mpair, pair{"a", fmt.Sprint(i)}, i)
		reflectPut(mrefl, fmt.Sprint(i), i)
		storePtr(nd, sink)
		sink = nd
	}
	runtime.GC()
	for i := 0; i < n; i += 2 {
		del32(m32, uint32(i))
		del64(m64, uint64(i))
		delStr(mstr, fmt.Sprintf("k%d", i))
		delStruct(mst, point{int32(i), int32(-i)})
		delPair(mpair, pair{"a", fmt.Sprint(i)})
		reflectDel(mrefl, fmt.Sprint(i))
	}
	cl := maps.Clone(mstr)
	sum := 0
	for _, p := range mpv {
		sum += *fromUintptr(uintptr(unsafe.Pointer(p.val)))
	}
	fmt.Printf("m32=%d m64=%d mptr=%d mstr=%d mst=%d mbig=%d pair=%d reflect=%d clone=%d sum=%d\n",
		len(m32), len(m64), len(mptr), len(mstr), len(mst), len(mbig), len(mpair), len(mrefl), len(cl), sum)
	clearMap(mstr)
	clearRange(m64)
	fmt.Printf("after clear: mstr=%d m64=%d\n", len(mstr), len(m64))
	// Not exit within microseconds of clearRange: a debugger resumed there (tests stop at
	// it) would see the group exit kill a thread it is still resuming. LLDB 19's
	// lldb-server then fails the whole resume (PTRACE_CONT: ESRCH, reply E1e) and LLDB
	// reports "exited with status = -1 (0xffffffff) lost connection".
	time.Sleep(20 * time.Millisecond)
}

// mapdump: builds a small map[string]int (5 entries: one swiss group, or one hmap bucket)
// and a large map[int64]string (2000 entries: several swiss tables, whose capacity stops
// at 1024 slots; or 512 hmap buckets), prints each map's header address (%p of a map value
// is its *hmap / *maps.Map), its type descriptor address (the type word of an interface
// holding it) and its entries in sorted order, then calls stopHere so a debugger can
// decode both maps.
package main

import (
	"fmt"
	"sort"
	"unsafe"
)

const large = 2000

// typeAddr is the *abi.Type word of the interface holding M: its map type descriptor.
func typeAddr(m any) uintptr { return uintptr((*[2]unsafe.Pointer)(unsafe.Pointer(&m))[0]) }

var words = []string{"alpha", "bravo", "charlie", "delta", "echo"}

//go:noinline
func stopHere(m1 map[string]int, m2 map[int64]string) {
	fmt.Println("stopHere", len(m1), len(m2))
}

func main() {
	m1 := map[string]int{}
	for i, w := range words {
		m1[w] = (i + 1) * 11
	}
	m2 := map[int64]string{}
	for i := int64(0); i < large; i++ {
		m2[i*7-300] = fmt.Sprintf("v%d", i)
	}

	fmt.Printf("m1 %p %d type %#x\n", m1, len(m1), typeAddr(m1))
	keys := make([]string, 0, len(m1))
	for k := range m1 {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("m1 %q=%d\n", k, m1[k])
	}
	fmt.Printf("m2 %p %d type %#x\n", m2, len(m2), typeAddr(m2))
	ikeys := make([]int64, 0, len(m2))
	for k := range m2 {
		ikeys = append(ikeys, k)
	}
	sort.Slice(ikeys, func(i, j int) bool { return ikeys[i] < ikeys[j] })
	for _, k := range ikeys {
		fmt.Printf("m2 %d=%q\n", k, m2[k])
	}
	stopHere(m1, m2)
}

// Copyright 2026 the stepup authors. This file is not from x/crypto.

package argon2

import "sync/atomic"

// heapWork is SetHeapWork's function, nil when none is set.
var heapWork atomic.Pointer[func(delta int64)]

// SetHeapWork sets f to be told the bytes a work area takes on the Go
// heap (f(n) before) and gives back (f(-n) after): a hash in fresh
// memory (no Memory, or one too small) and a Memory made where mapping
// memory outside the heap failed or is not done (heapBlocks). nil unsets
// it. See password.SetHeapWork.
func SetHeapWork(f func(delta int64)) {
	if f == nil {
		heapWork.Store(nil)
		return
	}
	heapWork.Store(&f)
}

// OnHeap tells SetHeapWork's function that n bytes of heap are taken,
// and returns what tells it they are given back.
func OnHeap(n int64) (done func()) {
	f := heapWork.Load()
	if f == nil {
		return func() {}
	}
	(*f)(n)
	return func() { (*f)(-n) }
}

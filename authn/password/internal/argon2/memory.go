// Copyright 2026 the stepup authors. This file is not from x/crypto.

package argon2

import "sync/atomic"

// Memory is the work area of one hash at a time, for hashes of up to the
// size it was made for. It lives outside the Go heap where the system
// allows (anonymous mmap on Unix): it is never zeroed again, never
// scanned or moved by the garbage collector, and does not count towards
// the heap's growth target, so holding a few of them does not let the
// rest of the heap grow by as much before a collection. A Memory must not
// be used by two hashes at once.
type Memory struct {
	b       []block
	free    func()
	release func()
}

// live counts the bytes of Memory allocated and not yet freed.
var live atomic.Int64

// LiveBytes is the size of all Memory allocated and not freed: what the
// hashes' reusable buffers hold.
func LiveBytes() int64 { return live.Load() }

// NewMemory returns a Memory for hashes of up to memoryKiB KiB (with any
// number of lanes up to memoryKiB/8).
func NewMemory(memoryKiB uint32) *Memory {
	n := int(memoryKiB)
	b, free, release := allocBlocks(n)
	live.Add(int64(n) * blockLength * 8)
	return &Memory{b: b, free: free, release: release}
}

// released counts Release calls that gave pages back.
var released atomic.Int64

// Releases is the number of times a Memory's pages were given back by
// Release.
func Releases() int64 { return released.Load() }

// Release gives m's pages back to the system but keeps m usable: its next
// hash touches fresh (zeroed) pages again, which a hash that overwrites
// every block does not mind. For a Memory that will sit idle.
func (m *Memory) Release() {
	if m == nil || m.b == nil {
		return
	}
	m.release()
	released.Add(1)
}

// Fits reports whether a hash that works in the given number of blocks
// can use m. A nil m fits nothing.
func (m *Memory) Fits(blocks uint32) bool { return m != nil && uint64(blocks) <= uint64(len(m.b)) }

// FitsParams reports whether a hash with these parameters can use m.
func (m *Memory) FitsParams(memoryKiB uint32, threads uint8) bool {
	return threads > 0 && m.Fits(blocks(memoryKiB, threads))
}

// Free gives m's memory back to the system. m must not be used again.
func (m *Memory) Free() {
	if m == nil || m.b == nil {
		return
	}
	live.Add(-int64(len(m.b)) * blockLength * 8)
	m.b = nil
	m.free()
}

// heapBlocks is the portable allocation: on the Go heap.
// On the heap, Release does nothing: the blocks stay referenced.
// SetHeapWork's function is told of it until it is freed.
func heapBlocks(n int) ([]block, func(), func()) {
	done := OnHeap(int64(n) * blockLength * 8)
	return make([]block, n), done, func() {}
}

// fresh counts the hashes that ran in fresh memory (no Memory, or one
// too small).
var fresh atomic.Int64

// FreshAllocs is the number of hashes so far that allocated their own
// memory instead of working in a Memory.
func FreshAllocs() int64 { return fresh.Load() }

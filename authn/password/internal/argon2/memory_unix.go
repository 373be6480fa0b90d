// Copyright 2026 the stepup authors. This file is not from x/crypto.

//go:build unix

package argon2

import (
	"syscall"
	"unsafe"
)

// allocBlocks maps n blocks of anonymous memory. The kernel hands out
// zeroed pages once, on first touch; after that the blocks are reused
// as they are. If mapping fails it falls back to the Go heap.
func allocBlocks(n int) (b []block, free, release func()) {
	size := n * blockLength * 8
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return heapBlocks(n)
	}
	b = unsafe.Slice((*block)(unsafe.Pointer(&mem[0])), n)
	return b, func() { _ = syscall.Munmap(mem) }, func() { _ = syscall.Madvise(mem, syscall.MADV_DONTNEED) }
}

// Copyright 2026 the stepup authors. This file is not from x/crypto.

//go:build !unix

package argon2

func allocBlocks(n int) ([]block, func(), func()) { return heapBlocks(n) }

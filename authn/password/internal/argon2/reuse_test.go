// Copyright 2026 the stepup authors. This file is not from x/crypto.

package argon2

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os/exec"
	"strings"
	"testing"

	xargon2 "golang.org/x/crypto/argon2"
)

// dirty is one Memory shared by every test hash, filled with random bytes
// first and then with whatever the previous hash left: the state a pooled
// buffer is in on a busy server.
var dirty = func() *Memory {
	m := NewMemory(64 * 1024)
	for i := range m.b {
		var r [1024]byte
		rand.Read(r[:])
		for j := range m.b[i] {
			m.b[i][j] = uint64(r[j*8]) | uint64(r[j*8+1])<<8 | uint64(r[j*8+7])<<56
		}
	}
	return m
}()

// dk is deriveKey in fresh memory and in the dirty Memory, which must
// agree; it returns the first.
func dk(t *testing.T, mode int, password, salt, secret, data []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	t.Helper()
	fresh := deriveKey(nil, mode, password, salt, secret, data, time, memory, threads, keyLen)
	if !dirty.FitsParams(memory, threads) {
		t.Fatalf("test memory too small for m=%d p=%d", memory, threads)
	}
	reused := deriveKey(dirty, mode, password, salt, secret, data, time, memory, threads, keyLen)
	if !bytes.Equal(fresh, reused) {
		t.Errorf("mode %d t=%d m=%d p=%d: reused memory gives %x, fresh %x", mode, time, memory, threads, reused, fresh)
	}
	return fresh
}

// TestMatchesXCrypto compares IDKey and Key in reused memory with
// golang.org/x/crypto/argon2, the module this package was copied from,
// over varied parameters (lanes, passes, memory not a multiple of 4·p,
// below 8·p) and passwords.
func TestMatchesXCrypto(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	for i := range 60 {
		threads := uint8(1 + r.IntN(8))
		time := uint32(1 + r.IntN(4))
		memory := uint32(r.IntN(3000))
		if i%10 == 0 {
			memory = uint32(r.IntN(8 * int(threads))) // below the minimum: rounded up
		}
		pw := make([]byte, r.IntN(40))
		salt := make([]byte, 8+r.IntN(24))
		rand.Read(pw)
		rand.Read(salt)
		keyLen := uint32(16 + r.IntN(100))
		want := xargon2.IDKey(pw, salt, time, memory, threads, keyLen)
		if got := IDKey(dirty, pw, salt, time, memory, threads, keyLen); !bytes.Equal(got, want) {
			t.Fatalf("IDKey t=%d m=%d p=%d: got %x, x/crypto %x", time, memory, threads, got, want)
		}
		want = xargon2.Key(pw, salt, time, memory, threads, keyLen)
		if got := Key(dirty, pw, salt, time, memory, threads, keyLen); !bytes.Equal(got, want) {
			t.Fatalf("Key t=%d m=%d p=%d: got %x, x/crypto %x", time, memory, threads, got, want)
		}
	}
	// stepup's default parameters, twice in the same memory.
	for range 2 {
		want := xargon2.IDKey([]byte("pw"), []byte("saltsalt"), 1, 64*1024, 2, 32)
		if got := IDKey(dirty, []byte("pw"), []byte("saltsalt"), 1, 64*1024, 2, 32); !bytes.Equal(got, want) {
			t.Fatalf("default parameters: got %x, x/crypto %x", got, want)
		}
	}
}

// cliVectors were made with Debian's argon2 CLI (the reference
// implementation, phc-winner-argon2 20190702):
//
//	echo -n 'correct horse battery staple' | argon2 somesaltsomesalt ARGS -r
var cliVectors = []struct{ args, hash string }{
	{"-id -t 1 -k 65536 -p 2 -l 32", "8c479a42d1c918281d91096e94c060d8cac2abccda487e92011cff602ae868bc"},
	{"-id -t 2 -k 4096 -p 4 -l 32", "08b749a0fc45c6a1fb8c6686c12269453d11fbfcb082f89c7f595f2a9dd66abc"},
	{"-i -t 3 -k 1024 -p 1 -l 16", "d0c121fb7fd9db2198f6169fadd62b6c"},
	{"-id -t 3 -k 100 -p 3 -l 64", "8f1ac61a75931caf64c5883c6ca5d62102e1f7711d8f4fb7020740534cebb8f7781dd19affe212c3c1269fdaf31a9189759a42cc16f90af1968f7dbe98339386"},
	{"-i -t 1 -k 65536 -p 2 -l 32", "4499a745a1011ee55855b88241954fa4a6172f3434f10e966f04da5b82d4a748"},
}

func cliHash(t *testing.T, args string) []byte {
	var mode int
	var tm, k, p, l int
	f := strings.Fields(args)
	switch f[0] {
	case "-id":
		mode = argon2id
	case "-i":
		mode = argon2i
	default:
		t.Fatalf("bad args %q", args)
	}
	if _, err := fmt.Sscanf(strings.Join(f[1:], " "), "-t %d -k %d -p %d -l %d", &tm, &k, &p, &l); err != nil {
		t.Fatalf("bad args %q: %v", args, err)
	}
	return dk(t, mode, []byte("correct horse battery staple"), []byte("somesaltsomesalt"), nil, nil, uint32(tm), uint32(k), uint8(p), uint32(l))
}

// TestReferenceCLI checks the recorded outputs of the reference CLI, and,
// where the argon2 command is installed, more parameters against it live.
func TestReferenceCLI(t *testing.T) {
	for _, v := range cliVectors {
		if got := hex.EncodeToString(cliHash(t, v.args)); got != v.hash {
			t.Errorf("%s: got %s, argon2 CLI %s", v.args, got, v.hash)
		}
	}
	if _, err := exec.LookPath("argon2"); err != nil {
		t.Log("argon2 CLI not installed: recorded vectors only")
		return
	}
	for _, args := range []string{"-id -t 1 -k 2048 -p 2 -l 32", "-id -t 4 -k 333 -p 5 -l 20", "-i -t 2 -k 512 -p 3 -l 32", "-id -t 1 -k 16 -p 2 -l 32"} {
		cmd := exec.Command("argon2", append([]string{"somesaltsomesalt"}, append(strings.Fields(args), "-r")...)...)
		cmd.Stdin = strings.NewReader("correct horse battery staple")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("argon2 %s: %v", args, err)
		}
		if got, want := hex.EncodeToString(cliHash(t, args)), strings.TrimSpace(string(out)); got != want {
			t.Errorf("%s: got %s, argon2 CLI %s", args, got, want)
		}
	}
}

func TestMemoryFitsAndLive(t *testing.T) {
	before := LiveBytes()
	m := NewMemory(1024)
	if got := LiveBytes() - before; got != 1024*1024 {
		t.Errorf("LiveBytes grew by %d, want 1 MiB", got)
	}
	if !m.FitsParams(1024, 2) || !m.FitsParams(1027, 4) || m.FitsParams(1040, 4) || !m.FitsParams(1028, 4) || m.FitsParams(2048, 1) {
		t.Error("FitsParams wrong")
	}
	if !m.FitsParams(3, 4) { // rounded up to 32 blocks
		t.Error("small memory should fit")
	}
	// Released pages come back zeroed; the hash is the same.
	IDKey(m, []byte("x"), []byte("saltsalt"), 1, 1024, 2, 32)
	m.Release()
	if got, want := IDKey(m, []byte("pw"), []byte("saltsalt"), 2, 1024, 2, 32), xargon2.IDKey([]byte("pw"), []byte("saltsalt"), 2, 1024, 2, 32); !bytes.Equal(got, want) {
		t.Errorf("after Release: %x, x/crypto %x", got, want)
	}
	var nilMem *Memory
	if nilMem.Fits(1) {
		t.Error("nil Memory fits")
	}
	m.Free()
	m.Free()
	if LiveBytes() != before {
		t.Errorf("LiveBytes %d after Free, want %d", LiveBytes(), before)
	}
	if m.FitsParams(8, 1) {
		t.Error("freed Memory still fits")
	}
}

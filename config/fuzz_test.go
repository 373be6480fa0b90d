package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, and that its result
// is coherent: a config that validates, or a non-empty Errors of
// non-empty messages.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &a [*a]\nissuer: *a\n"))
	f.Add([]byte("clients: [{<<: [*x]}]\n"))
	f.Add([]byte("users: [{username: '${A}$$${'}]\n"))
	getenv := env(map[string]string{"BANK_CLIENT_SECRET": "s", "ALICE_PASSWORD": "p", "A": "${A}"})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, getenv)
		if err == nil {
			if c == nil {
				t.Fatal("nil config without an error")
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
			}
			_ = c.PlainSecrets()
			return
		}
		if c != nil {
			t.Fatal("config returned with an error")
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error %T %v is not a non-empty Errors", err, err)
		}
		for _, e := range es {
			if e == nil || e.Msg == "" {
				t.Fatalf("empty problem in %v", err)
			}
		}
	})
}

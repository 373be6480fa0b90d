package password

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// importedFixture is one line of testdata/imported.jsonl.
type importedFixture struct {
	Format, Password, Hash, Tool string
}

// loadImported reads hashes made by real tools, never by this package:
// testdata/gen-imported.sh made them with
//
//	htpasswd -bnBC 10 user PW                          bcrypt $2y$ (Debian apache2-utils)
//	printf %s PW | argon2 SALT -id -t 3 -m 12 -p 1 -e  argon2id (reference CLI)
//	printf %s PW | argon2 SALT -i -t 2 -m 10 -p 2 -e   argon2i
//	python3 crypt.crypt(PW, '$2a$10$'+SALT)            bcrypt $2a$ and $2b$ (libxcrypt)
//	hashlib.pbkdf2_hmac('sha256', PW, SALT, 29000, 32) as $pbkdf2-sha256$29000$ab64(SALT)$ab64(DK)
//	hashlib.pbkdf2_hmac('sha512', PW, SALT, 25000, 64) as $pbkdf2-sha512$25000$ab64(SALT)$ab64(DK)
//	hashlib.scrypt(PW, salt=SALT, n=2**14, r=8, p=1, dklen=32) as $scrypt$ln=14,r=8,p=1$ab64(SALT)$ab64(DK)
//	hashlib.pbkdf2_hmac('sha256', PW, SALT, 260000, 32) as pbkdf2_sha256$260000$SALT$b64(DK) (Django)
//
// where ab64 is passlib's adapted base64 (standard alphabet, '.' for '+',
// no padding), for two passwords, one ASCII and one with non-ASCII
// characters. passlib and Django themselves cannot be installed here; the
// layouts are theirs (passlib.utils.binary.ab64_encode, Django's
// PBKDF2PasswordHasher.encode).
func loadImported(t *testing.T) []importedFixture {
	t.Helper()
	f, err := os.Open("testdata/imported.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []importedFixture
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var fx importedFixture
		if err := json.Unmarshal(sc.Bytes(), &fx); err != nil {
			t.Fatalf("testdata/imported.jsonl: %v", err)
		}
		out = append(out, fx)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	formats := map[string]bool{}
	for _, fx := range out {
		formats[fx.Format] = true
	}
	// Every format of PRODUCT.md §9 has fixtures.
	for _, want := range []string{FormatBcrypt, FormatArgon2id, FormatArgon2i, FormatPBKDF2SHA256,
		FormatPBKDF2SHA512, FormatScrypt, FormatDjangoPBKDF2} {
		if !formats[want] {
			t.Fatalf("testdata/imported.jsonl has no %s hash", want)
		}
	}
	return out
}

func TestImportedHashesFromRealTools(t *testing.T) {
	for _, fx := range loadImported(t) {
		t.Run(fx.Format+" "+fx.Hash[:min(len(fx.Hash), 16)], func(t *testing.T) {
			t.Parallel()
			format, err := CheckHash(fx.Hash)
			if err != nil || format != fx.Format {
				t.Fatalf("CheckHash = %q, %v; want %q (made by %s)", format, err, fx.Format, fx.Tool)
			}
			if ok, err := Verify(fx.Hash, fx.Password); err != nil || !ok {
				t.Errorf("Verify(right password) = %v, %v; want true", ok, err)
			}
			for _, wrong := range []string{"", fx.Password[:len(fx.Password)-1] + "X"} {
				if ok, err := Verify(fx.Hash, wrong); err != nil || ok {
					t.Errorf("Verify(%q) = %v, %v; want false, nil", wrong, ok, err)
				}
			}
			if !NeedsRehash(fx.Hash, DefaultParams) {
				t.Error("NeedsRehash = false for an imported hash")
			}
		})
	}
}

func TestNeedsRehash(t *testing.T) {
	own, err := HashWith(cheap, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if NeedsRehash(own, cheap) {
		t.Error("NeedsRehash = true for a hash made with the same parameters")
	}
	for _, p := range []Params{
		{Time: 2, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Time: 1, MemoryKiB: 128, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Time: 1, MemoryKiB: 64, Threads: 2, SaltLen: 16, KeyLen: 32},
		{Time: 1, MemoryKiB: 64, Threads: 1, SaltLen: 16, KeyLen: 64},
	} {
		if !NeedsRehash(own, p) {
			t.Errorf("NeedsRehash(hash with %+v, %+v) = false after the parameters changed", cheap, p)
		}
	}
	if !NeedsRehash("garbage", cheap) {
		t.Error("NeedsRehash(garbage) = false")
	}
}

// A hostile import cannot make a sign-in attempt expensive: every format's
// cost parameters are capped. The hashes are well formed apart from the
// cost.
func TestImportedCostCaps(t *testing.T) {
	const b64key = "S+VFpkE1LuKTIH1ZNSAF0CCaZ5N38fg9lKLK+iBEpBw"
	const ab64key = "oa8WW7O2SMPthm3F4yA5vEKpo4Sd845ipYL8PL.e410"
	const ab64salt = "CSN1LqTjJCmV.WWDRViRLQ"
	tests := []struct{ name, ok, over string }{
		{"bcrypt cost",
			"$2y$13$PZd/NzMdJXihARLTw5cKauzioXHp8h79KDKBejC2eWOrsaxpK4C6e",
			"$2y$14$PZd/NzMdJXihARLTw5cKauzioXHp8h79KDKBejC2eWOrsaxpK4C6e"},
		{"bcrypt cost 31", "", "$2b$31$PZd/NzMdJXihARLTw5cKauzioXHp8h79KDKBejC2eWOrsaxpK4C6e"},
		{"argon2i memory × passes",
			"$argon2i$v=19$m=262144,t=4,p=1$OTkyNzBkZjFlMGY3ZDdkNQ$" + b64key,
			"$argon2i$v=19$m=262144,t=5,p=1$OTkyNzBkZjFlMGY3ZDdkNQ$" + b64key},
		{"argon2id memory × passes",
			"$argon2id$v=19$m=1048576,t=1,p=4$OTkyNzBkZjFlMGY3ZDdkNQ$" + b64key,
			"$argon2id$v=19$m=1048576,t=2,p=4$OTkyNzBkZjFlMGY3ZDdkNQ$" + b64key},
		{"pbkdf2-sha256 rounds",
			"$pbkdf2-sha256$2000000$" + ab64salt + "$" + ab64key,
			"$pbkdf2-sha256$2000001$" + ab64salt + "$" + ab64key},
		{"pbkdf2-sha512 rounds",
			"$pbkdf2-sha512$1000000$" + ab64salt + "$" + ab64key,
			"$pbkdf2-sha512$1000001$" + ab64salt + "$" + ab64key},
		{"django rounds",
			"pbkdf2_sha256$2000000$abcdefghijklmnopqrstuv$" + b64key + "=",
			"pbkdf2_sha256$2000001$abcdefghijklmnopqrstuv$" + b64key + "="},
		{"scrypt memory",
			"$scrypt$ln=18,r=8,p=1$" + ab64salt + "$" + ab64key,
			"$scrypt$ln=19,r=8,p=1$" + ab64salt + "$" + ab64key},
		{"scrypt work",
			"$scrypt$ln=16,r=8,p=16$" + ab64salt + "$" + ab64key,
			"$scrypt$ln=17,r=8,p=16$" + ab64salt + "$" + ab64key},
		{"scrypt p", "", "$scrypt$ln=4,r=1,p=17$" + ab64salt + "$" + ab64key},
		{"scrypt ln overflow", "", "$scrypt$ln=60,r=8,p=1$" + ab64salt + "$" + ab64key},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.ok != "" {
				if _, err := CheckHash(tt.ok); err != nil {
					t.Errorf("CheckHash(at the cap) = %v", err)
				}
			}
			_, err := CheckHash(tt.over)
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("CheckHash(above the cap) = %v, want ErrMalformedHash", err)
			}
			if ok, err := Verify(tt.over, "pw"); ok || !errors.Is(err, ErrMalformedHash) {
				t.Errorf("Verify(above the cap) = %v, %v; want false, ErrMalformedHash", ok, err)
			}
		})
	}
}

func TestImportedMalformed(t *testing.T) {
	const ab64salt = "CSN1LqTjJCmV.WWDRViRLQ"
	const ab64key = "oa8WW7O2SMPthm3F4yA5vEKpo4Sd845ipYL8PL.e410"
	for _, s := range []string{
		"$2x$10$PZd/NzMdJXihARLTw5cKauzioXHp8h79KDKBejC2eWOrsaxpK4C6e",  // crypt_blowfish's buggy variant
		"$2y$10$PZd/NzMdJXihARLTw5cKauzioXHp8h79KDKBejC2eWOrsaxpK4C6",   // short
		"$2y$10$PZd/NzMdJXihARLTw5cKauzioXHp8h79KDKBejC2eWOrsaxpK4C6e1", // long
		"$2y$1a$PZd/NzMdJXihARLTw5cKauzioXHp8h79KDKBejC2eWOrsaxpK4C6e",
		"$2y$03$PZd/NzMdJXihARLTw5cKauzioXHp8h79KDKBejC2eWOrsaxpK4C6e",
		"$2y$10$PZd/NzMdJXihARLTw5cKauzioXHp8h79KDKBejC2eWOrsaxpK4C6+",
		"$pbkdf2-sha256$0$" + ab64salt + "$" + ab64key,
		"$pbkdf2-sha256$029000$" + ab64salt + "$" + ab64key,
		"$pbkdf2-sha256$29000$" + ab64salt + "$" + strings.ReplaceAll(ab64key, ".", "+"),
		"$pbkdf2-sha256$29000$" + ab64salt + "$" + ab64key + "=",
		"$pbkdf2-sha256$29000$" + ab64salt + "$" + ab64key[:20],
		"$pbkdf2-sha256$29000$" + ab64salt,
		"$pbkdf2-sha1$29000$" + ab64salt + "$" + ab64key,
		"$scrypt$ln=14,r=8$" + ab64salt + "$" + ab64key,
		"$scrypt$r=8,ln=14,p=1$" + ab64salt + "$" + ab64key,
		"$scrypt$ln=0,r=8,p=1$" + ab64salt + "$" + ab64key,
		"$scrypt$ln=14,r=0,p=1$" + ab64salt + "$" + ab64key,
		"pbkdf2_sha256$260000$$S+VFpkE1LuKTIH1ZNSAF0CCaZ5N38fg9lKLK+iBEpBw=",
		"pbkdf2_sha256$260000$salt$S+VFpkE1LuKTIH1ZNSAF0CCaZ5N38fg9lKLK+iBEpBw",
		"pbkdf2_sha1$260000$salt$S+VFpkE1LuKTIH1ZNSAF0CCaZ5N38fg9lKLK+iBEpBw=",
		"sha1$salt$0123456789abcdef",
		"{SSHA}abcdef",
		"5f4dcc3b5aa765d61d8327deb882cf99",
	} {
		_, err := CheckHash(s)
		if !errors.Is(err, ErrMalformedHash) {
			t.Errorf("CheckHash(%q) = %v, want ErrMalformedHash", s, err)
			continue
		}
		if strings.Contains(err.Error(), ab64key) || strings.Contains(err.Error(), "S+VFpk") {
			t.Errorf("error %q repeats the hash", err)
		}
	}
}

func FuzzCheckHash(f *testing.F) {
	f.Add("$2y$10$PZd/NzMdJXihARLTw5cKauzioXHp8h79KDKBejC2eWOrsaxpK4C6e")
	f.Add("$argon2i$v=19$m=1024,t=2,p=2$OTkyNzBkZjFlMGY3ZDdkNQ$jPm3ZKGTnNxagpEIv4RRrDGuoT1HQhkrNOCH4h91V1A")
	f.Add("$pbkdf2-sha256$29000$CSN1LqTjJCmV.WWDRViRLQ$oa8WW7O2SMPthm3F4yA5vEKpo4Sd845ipYL8PL.e410")
	f.Add("$scrypt$ln=14,r=8,p=1$CSN1LqTjJCmV.WWDRViRLQ$oa8WW7O2SMPthm3F4yA5vEKpo4Sd845ipYL8PL.e410")
	f.Add("pbkdf2_sha256$260000$abcdefghijklmnopqrstuv$S+VFpkE1LuKTIH1ZNSAF0CCaZ5N38fg9lKLK+iBEpBw=")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseAny(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("parse error %v does not wrap ErrMalformedHash", err)
			}
			return
		}
		// Whatever parses stays inside the caps (matches is not run: a
		// hash at the cap takes half a second).
		switch h := v.(type) {
		case phcHash:
			if err := h.p.validate(); err != nil {
				t.Fatalf("accepted out-of-bounds argon2 params: %v", err)
			}
		case scryptHash:
			if 128*h.r*h.n > maxScryptMemory || 128*h.r*h.n*h.p > maxScryptWork || h.p > maxScryptP {
				t.Fatalf("accepted scrypt over the caps: %+v", h)
			}
		case pbkdf2Hash:
			if h.rounds < 1 || h.rounds > maxPBKDF2SHA256Rounds {
				t.Fatalf("accepted %d PBKDF2 rounds", h.rounds)
			}
		case bcryptHash:
			if len(h.s) != 60 {
				t.Fatalf("accepted a bcrypt hash of %d bytes", len(h.s))
			}
		}
	})
}

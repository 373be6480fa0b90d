package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runMicro measures, in this process, the CPU of each piece a flow cannot
// do without: one ES256 signature, one TOTP verification, one SQL account
// read (with the AES-GCM open of its secret), one audit line, and Redis
// round trips of several shapes (client CPU per round trip; with
// -redis-pid, redis-server's CPU per round trip and per command). One
// goroutine, sequential: no contention, so these are lower bounds too.
func runMicro(redisAddr, redisPID string, n int) error {
	ctx := context.Background()
	users := make([]struct {
		Username   string `json:"username"`
		TOTPSecret string `json:"totp_secret"`
	}, 1000)
	for i := range users {
		users[i].Username = "user" + strconv.Itoa(i)
		users[i].TOTPSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	}
	f, err := os.CreateTemp("", "floor-micro-*.db")
	if err != nil {
		return err
	}
	f.Close()
	defer os.Remove(f.Name())
	defer os.Remove(f.Name() + "-wal")
	defer os.Remove(f.Name() + "-shm")
	sec := &secrets{Issuer: "http://127.0.0.1:1", ClientID: "bench", ClientSecret: "x", RedirectURI: "http://127.0.0.1:9/cb", Users: users}
	s, err := newServer(sec, redisAddr, f.Name())
	if err != nil {
		return err
	}
	audit, err := os.CreateTemp("", "floor-micro-audit-*")
	if err != nil {
		return err
	}
	defer os.Remove(audit.Name())
	defer audit.Close()
	s.audit = audit

	fmt.Printf("# floor -micro: %d repetitions each, one goroutine; CPU from getrusage (this process) and /proc/%s/stat (redis-server)\n", n, orDefault(redisPID, "-"))
	fmt.Printf("| piece | client µs CPU per op | redis-server µs per op | redis-server µs per command |\n|---|--:|--:|--:|\n")
	measure := func(name string, cmds int, op func(i int) error) error {
		r0, c0 := redisCPU(redisPID), selfCPU()
		for i := range n {
			if err := op(i); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		c1, r1 := selfCPU(), redisCPU(redisPID)
		rs, rc := "–", "–"
		if redisPID != "" && cmds > 0 {
			per := float64(r1-r0) / float64(n)
			rs = fmt.Sprintf("%.1f", per)
			rc = fmt.Sprintf("%.1f", per/float64(cmds))
		}
		fmt.Printf("| %s | %.1f | %s | %s |\n", name, float64(c1-c0)/float64(n), rs, rc)
		return nil
	}
	now := time.Now()
	claims := &idClaims{Issuer: s.issuer, Subject: "1987fdb138dfc8ec876c446aa3191068", Audience: "bench", Expiry: now.Unix() + 600, IssuedAt: now.Unix(),
		AuthTime: now.Unix(), Nonce: "w9FBbEAUcD1A2hdg", ACR: mfaACR, AMR: []string{"pwd", "otp", "mfa"}, AZP: "bench", AtHash: "0123456789abcdefghijkl", SID: "0123456789abcdefghijkl"}
	steps := []struct {
		name string
		cmds int
		op   func(i int) error
	}{
		{"ES256 signature (JSON claims, encode, sign)", 0, func(int) error { _, err := s.sign("JWT", claims); return err }},
		{"TOTP verification (current step)", 0, func(int) error {
			code := hotp(mustB32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"), now.Unix()/30)
			if _, ok := verifyTOTP("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", code, now); !ok {
				return fmt.Errorf("code not accepted")
			}
			return nil
		}},
		{"SQL account read by primary key (SQLite, AES-GCM open)", 0, func(i int) error {
			_, err := s.account(ctx, s.byName, users[i%len(users)].Username)
			return err
		}},
		{"audit line (one write(2) to a file)", 0, func(int) error {
			s.auditLine(now, "token.issued", "grant_type", "authorization_code", "client_id", "bench", "sub", "1987fdb138dfc8ec876c446aa3191068", "acr", mfaACR)
			return nil
		}},
		{"Redis: PING (1 round trip, 1 command)", 1, func(int) error { return s.rdb.Ping(ctx).Err() }},
		{"Redis: SET 450 B PX (1 round trip, 1 command)", 1, func(i int) error {
			return s.rdb.Set(ctx, "f:micro:"+strconv.Itoa(i%1000), strings.Repeat("x", 450), time.Minute).Err()
		}},
		{"Redis: HGETALL of a 6-field hash (1, 1)", 1, func(int) error {
			return s.rdb.HGetAll(ctx, "f:micro:h").Err()
		}},
		{"Redis: pipeline of 6 writes (1 round trip, 6 commands)", 6, func(i int) error {
			p := s.rdb.Pipeline()
			k := "f:micro:" + strconv.Itoa(i%1000)
			p.Set(ctx, k, strings.Repeat("x", 450), time.Minute)
			p.HSet(ctx, "f:micro:h", "seen", i, "c:bench", "1")
			p.HSet(ctx, "f:micro:u", k, "")
			p.PExpire(ctx, "f:micro:g", time.Minute)
			p.Del(ctx, "f:micro:flow")
			p.Decr(ctx, "f:micro:ip")
			_, err := p.Exec(ctx)
			return err
		}},
		{"Redis: EVALSHA of the reserve script (1, 1 + 4 inside)", 1, func(i int) error {
			return s.rdb.EvalSha(ctx, s.shaReserve, []string{"f:micro:fail", "f:micro:totp:" + strconv.Itoa(i)}, 900000, 5, "1", 150000).Err()
		}},
	}
	if err := s.rdb.HSet(ctx, "f:micro:h", "sub", "1987fdb138dfc8ec876c446aa3191068", "username", "user1", "pwd", "1796691272", "totp", "1796691272", "seen", "1796691272884079315", "c:bench", "1").Err(); err != nil {
		return err
	}
	for _, st := range steps {
		if err := measure(st.name, st.cmds, st.op); err != nil {
			return err
		}
	}
	return nil
}

func mustB32(s string) []byte {
	k, _ := base32NoPad.DecodeString(s)
	return k
}

// selfCPU is this process's user+system CPU in µs.
func selfCPU() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Sec*1e6 + int64(ru.Utime.Usec) + ru.Stime.Sec*1e6 + int64(ru.Stime.Usec)
}

// redisCPU is a process's utime+stime in µs from /proc (10 ms ticks).
func redisCPU(pid string) int64 {
	if pid == "" {
		return 0
	}
	raw, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return (u + st) * 10000
}

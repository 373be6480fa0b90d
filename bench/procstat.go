package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// CPU accounting from /proc. The machine this runs on is shared (other
// builds and tests come and go), so throughput alone can mislead: the
// server's CPU time per operation does not depend on what else runs, and
// the CPU used by other processes during a mode says how disturbed it was.

// userHZ is the unit of /proc CPU times; it is 100 on every Linux ABI.
const userHZ = 100

// cpuSnap is one reading of the counters.
type cpuSnap struct {
	at        time.Time
	servers   float64   // seconds of CPU used by the -pid processes
	perPID    []float64 // the same, per -pid entry
	self      float64   // seconds of CPU used by the bench
	machBusy  float64   // seconds of CPU used by everything (all cores)
	serverErr error
	redisCmds int64   // -1 when not known
	trips     float64 // stepupd's store round trips; -1 when not known
}

// procCPU returns utime+stime of a process in seconds. "PID+" is a
// process with its children: its own time, the time of the children it
// has waited for (cutime+cstime) and that of the children still running
// (with theirs). That is a PostgreSQL server: the postmaster forks one
// backend per connection, and a backend's CPU is the query's.
func procCPU(pid string) (float64, error) {
	if p, ok := strings.CutSuffix(pid, "+"); ok {
		return treeCPU(p)
	}
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	return (f.utime + f.stime) / userHZ, nil
}

type statFields struct {
	ppid                         string
	utime, stime, cutime, cstime float64
}

func procStat(pid string) (statFields, error) {
	raw, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return statFields{}, err
	}
	// The command name (field 2) may hold spaces; fields resume after ')'.
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 15 {
		return statFields{}, fmt.Errorf("/proc/%s/stat: short", pid)
	}
	var v [4]float64
	for i := range v {
		if v[i], err = strconv.ParseFloat(f[11+i], 64); err != nil {
			return statFields{}, fmt.Errorf("/proc/%s/stat: bad times", pid)
		}
	}
	return statFields{ppid: f[1], utime: v[0], stime: v[1], cutime: v[2], cstime: v[3]}, nil
}

// treeCPU is procCPU of "PID+".
func treeCPU(root string) (float64, error) {
	r, err := procStat(root)
	if err != nil {
		return 0, err
	}
	total := r.utime + r.stime + r.cutime + r.cstime
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		c, err := procStat(e.Name())
		if err != nil || c.ppid != root {
			continue // gone meanwhile, or not a child
		}
		total += c.utime + c.stime + c.cutime + c.cstime
	}
	return total / userHZ, nil
}

// machineBusy returns the CPU seconds all cores spent not idle.
func machineBusy() float64 {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal …
	var busy float64
	for i, v := range f[1:] {
		n, _ := strconv.ParseFloat(v, 64)
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest, guest_nice are already in user
			break
		}
		busy += n
	}
	return busy / userHZ
}

func snapCPU(pids []string, redisAddr string) cpuSnap {
	s := cpuSnap{at: time.Now(), machBusy: machineBusy(), redisCmds: -1}
	if redisAddr != "" {
		if n, err := redisCommands(redisAddr); err == nil {
			s.redisCmds = n
		}
	}
	s.self, _ = procCPU("self")
	for _, p := range pids {
		v, err := procCPU(p)
		if err != nil && s.serverErr == nil {
			s.serverErr = err
		}
		s.servers += v
		s.perPID = append(s.perPID, v)
	}
	return s
}

// rssKiB reads VmRSS of a process.
func rssKiB(pid string) (int64, error) {
	raw, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%s/status: no VmRSS", pid)
}

// cpuUse is what happened between two snapshots.
type cpuUse struct {
	serverMSPerOp, benchMSPerOp float64
	otherCores                  float64 // CPU used by processes that are neither the server(s) nor the bench
	rssMiB                      float64 // of the first -pid, after the mode
	ok                          bool
	redisPerOp                  float64   // -1 when not known
	tripsPerOp                  float64   // -1 when not known
	perPIDMSPerOp               []float64 // serverMSPerOp split by -pid entry (with more than one)
}

func diffCPU(a, b cpuSnap, attempts int64, pids []string) cpuUse {
	redis := -1.0
	if a.redisCmds >= 0 && b.redisCmds >= 0 && attempts > 0 {
		// The two INFO calls count themselves; take them off.
		redis = float64(b.redisCmds-a.redisCmds-1) / float64(attempts)
	}
	trips := -1.0
	if a.trips >= 0 && b.trips >= 0 && attempts > 0 {
		trips = (b.trips - a.trips) / float64(attempts)
	}
	if len(pids) == 0 || a.serverErr != nil || b.serverErr != nil || attempts == 0 {
		return cpuUse{redisPerOp: redis, tripsPerOp: trips}
	}
	el := b.at.Sub(a.at).Seconds()
	srv, self := b.servers-a.servers, b.self-a.self
	u := cpuUse{
		serverMSPerOp: 1000 * srv / float64(attempts),
		benchMSPerOp:  1000 * self / float64(attempts),
		otherCores:    max(0, (b.machBusy-a.machBusy-srv-self)/el),
		ok:            true,
		redisPerOp:    redis,
		tripsPerOp:    trips,
	}
	if len(pids) > 1 {
		for i := range pids {
			u.perPIDMSPerOp = append(u.perPIDMSPerOp, 1000*(b.perPID[i]-a.perPID[i])/float64(attempts))
		}
	}
	if kib, err := rssKiB(strings.TrimSuffix(pids[0], "+")); err == nil {
		u.rssMiB = float64(kib) / 1024
	}
	return u
}

// redisCommands reads total_commands_processed from a Redis server with
// one inline INFO command, so the report can show how many Redis commands
// an operation costs (what a store round trip budget is made of).
func redisCommands(addr string) (int64, error) {
	c, err := loopbackDial(context.Background(), "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("INFO stats\r\n")); err != nil {
		return 0, err
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n') // $<length>
	if err != nil || !strings.HasPrefix(head, "$") {
		return 0, fmt.Errorf("redis %s: unexpected reply %q", addr, head)
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[1:]))
	if err != nil {
		return 0, fmt.Errorf("redis %s: bad length %q", addr, head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("redis %s: no total_commands_processed", addr)
}

// storeTrips scrapes stepupd's own count of Redis round trips (commands
// and pipelines sent) from /metrics; -1 when the server has none. Unlike
// Redis' command count it does not count the commands a script runs
// inside Redis, so it is the number of network waits per operation.
func (b *bench) storeTrips() float64 {
	if b.target != "stepup" {
		return -1
	}
	c := &http.Client{Transport: b.tr.next, Timeout: 5 * time.Second} // not counted as the op's requests
	// Behind -backends each instance counts its own: sum them, asking each
	// by its address (through the balancer one scrape would reach one
	// instance at random).
	urls := []string{strings.TrimSuffix(b.issuer, "/") + "/metrics"}
	if len(b.backends) > 0 {
		urls = urls[:0]
		for _, a := range b.backends {
			urls = append(urls, "http://"+a+"/metrics")
		}
	}
	total := 0.0
	for _, u := range urls {
		n := scrapeTrips(c, u)
		if n < 0 {
			return -1
		}
		total += n
	}
	return total
}

// scrapeTrips reads stepup_store_round_trips_total from one /metrics.
func scrapeTrips(c *http.Client, u string) float64 {
	resp, err := c.Get(u)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return -1
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "stepup_store_round_trips_total "); ok {
			if n, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return n
			}
		}
	}
	return -1
}

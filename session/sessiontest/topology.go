package sessiontest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stepup-dev/stepup/config"
)

// Real Redis topologies that a test starts for itself from the Debian
// binaries (redis-server, redis-sentinel, redis-cli), no Docker: a
// 3-primary Cluster and a primary + replica + 3 Sentinels. They are slow to
// start (seconds), so they run only when EnvTopologies is set (CI sets it).
//
// Every process listens on 127.0.0.1 on a port of EnvPorts (default
// 6410-6499), claimed with a lock file so that test binaries running in
// parallel never share one, and is killed by its pid when the test ends.

// EnvTopologies, when set to anything, runs the tests on real Cluster and
// Sentinel deployments; with it set, a missing binary fails the test
// instead of skipping it. Under CI (CI set) they always run.
const EnvTopologies = "STEPUP_TEST_TOPOLOGIES"

// EnvPorts is the range "LOW-HIGH" of TCP ports the topologies may use.
const EnvPorts = "STEPUP_TEST_REDIS_PORTS"

// MasterName is the name the Sentinels monitor the primary under.
const MasterName = "stepup"

// RequireTopologies skips t unless EnvTopologies (or CI) is set, and
// returns the paths of the named binaries (failing t when one is missing).
func RequireTopologies(t testing.TB, bins ...string) map[string]string {
	t.Helper()
	if os.Getenv(EnvTopologies) == "" && os.Getenv("CI") == "" {
		t.Skip(EnvTopologies + " is not set: real Redis Cluster/Sentinel tests skipped")
	}
	out := map[string]string{}
	for _, b := range bins {
		p, err := exec.LookPath(b)
		if err != nil {
			t.Fatalf("%s or CI is set but %s is not installed (apt-get install redis-server redis-sentinel)", EnvTopologies, b)
		}
		out[b] = p
	}
	return out
}

// Process is one redis-server or redis-sentinel of a test.
type Process struct {
	t    testing.TB
	bin  string
	args []string
	Port int
	Dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Addr is the process's host:port.
func (p *Process) Addr() string { return "127.0.0.1:" + strconv.Itoa(p.Port) }

// Start runs the process (again, after Kill or Stop: same port, same
// directory, so an append-only file is read back) and waits until it
// accepts connections.
func (p *Process) Start() {
	p.t.Helper()
	p.mu.Lock()
	if p.cmd != nil {
		p.mu.Unlock()
		p.t.Fatalf("%s already running", p.Addr())
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Dir = p.Dir
	log, err := os.OpenFile(filepath.Join(p.Dir, "process.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.mu.Unlock()
		p.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		p.mu.Unlock()
		p.t.Fatalf("start %s: %v", p.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(done) }()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	waitFor(p.t, p.Addr()+" accepting connections", 10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", p.Addr(), 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// Kill ends the process with SIGKILL (a crash: nothing is flushed).
func (p *Process) Kill() { p.signal(syscall.SIGKILL) }

// Stop ends the process with SIGTERM (a clean shutdown).
func (p *Process) Stop() { p.signal(syscall.SIGTERM) }

func (p *Process) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	<-done
}

// Running reports whether the process was started and not stopped.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// CLI runs redis-cli against the process and returns its output.
func (p *Process) CLI(args ...string) (string, error) {
	out, err := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(p.Port)}, args...)...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err == nil && (strings.HasPrefix(s, "ERR") || strings.HasPrefix(s, "Could not connect")) {
		err = fmt.Errorf("%s", s)
	}
	return s, err
}

// Info returns the fields of INFO section.
func (p *Process) Info(section string) map[string]string {
	out, err := p.CLI("info", section)
	m := map[string]string{}
	if err != nil {
		return m
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			m[k] = v
		}
	}
	return m
}

// newProcess prepares (does not start) a process on a claimed port with a
// directory of its own; the test's end kills it.
//
// The directory is on /dev/shm when there is one: the tests kill
// processes, never the machine, and a killed process loses nothing that
// it had written, fsynced or not. A disk's fsync stalls (tens of ms, far
// more on a busy shared disk) would only make the timeouts of a loaded CI
// machine flaky. What fsync adds against power loss is in the README.
func newProcess(t testing.TB, bin string, port int, args ...string) *Process {
	t.Helper()
	dir, err := os.MkdirTemp(shmDir(), "stepup-redis-")
	if err != nil {
		t.Fatal(err)
	}
	p := &Process{t: t, bin: bin, Port: port, Dir: dir, args: args}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "process.log")); err == nil {
				t.Logf("%s %s log (last lines):\n%s", filepath.Base(bin), p.Addr(), tail(string(b), 30))
			}
		}
		os.RemoveAll(dir)
	})
	return p
}

func shmDir() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if f, err := os.CreateTemp("/dev/shm", "stepup-probe-"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return "/dev/shm"
		}
	}
	return os.TempDir()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// redisArgs are the options of every redis-server here: loopback only,
// no RDB snapshots, an append-only file with the given fsync policy.
func redisArgs(port int, fsync string, extra ...string) []string {
	return append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "yes", "--appendfsync", fsync, "--protected-mode", "no",
	}, extra...)
}

// Cluster is a Redis Cluster of three primaries (no replicas), each with
// an append-only file synced every second.
type Cluster struct {
	t     testing.TB
	Nodes []*Process
}

// StartCluster starts three cluster-enabled redis-servers and joins them
// with `redis-cli --cluster create`, 5461/5461/5462 slots each.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bins := RequireTopologies(t, "redis-server", "redis-cli")
	ports := claimPorts(t, 6)
	c := &Cluster{t: t}
	var addrs []string
	for i := range 3 {
		port, bus := ports[2*i], ports[2*i+1]
		p := newProcess(t, bins["redis-server"], port, redisArgs(port, "everysec",
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "10000", "--cluster-port", strconv.Itoa(bus))...)
		p.Start()
		c.Nodes = append(c.Nodes, p)
		addrs = append(addrs, p.Addr())
	}
	out, err := exec.Command(bins["redis-cli"], append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitOK()
	return c
}

// Redis is the configuration that points stepup at the Cluster.
func (c *Cluster) Redis() config.Redis {
	var cfg config.Redis
	for _, n := range c.Nodes {
		cfg.Addrs = append(cfg.Addrs, n.Addr())
	}
	return cfg
}

// WaitOK waits until every node reports cluster_state:ok and agrees on
// the slots.
func (c *Cluster) WaitOK() {
	c.t.Helper()
	waitFor(c.t, "cluster_state:ok on every node", 30*time.Second, func() bool {
		for _, n := range c.Nodes {
			if n.Info("cluster")["cluster_enabled"] != "1" {
				return false
			}
			out, err := n.CLI("cluster", "info")
			if err != nil || !strings.Contains(out, "cluster_state:ok") || !strings.Contains(out, "cluster_slots_ok:16384") {
				return false
			}
		}
		out, err := exec.Command("redis-cli", "--cluster", "check", c.Nodes[0].Addr()).CombinedOutput()
		return err == nil && strings.Contains(string(out), "[OK] All 16384 slots covered")
	})
}

// NodeID returns the cluster node id of node i.
func (c *Cluster) NodeID(i int) string {
	c.t.Helper()
	out, err := c.Nodes[i].CLI("cluster", "myid")
	if err != nil {
		c.t.Fatalf("cluster myid: %v", err)
	}
	return out
}

// Reshard moves n slots from node from to node to with `redis-cli
// --cluster reshard` (MIGRATE, key by key: clients see MOVED and ASK
// while it runs). It returns redis-cli's error and output.
func (c *Cluster) Reshard(from, to, n int) (string, error) {
	out, err := exec.Command("redis-cli", "--cluster", "reshard", c.Nodes[0].Addr(),
		"--cluster-from", c.NodeID(from), "--cluster-to", c.NodeID(to),
		"--cluster-slots", strconv.Itoa(n), "--cluster-yes",
		"--cluster-pipeline", "10").CombinedOutput()
	return string(out), err
}

// Sentinel is a primary with one replica, both with an append-only file
// synced on every write (appendfsync always), watched by three
// Sentinels (quorum 2, primary down after 2 s).
type Sentinel struct {
	t         testing.TB
	Redis0    *Process // the primary at start
	Redis1    *Process // its replica at start
	Sentinels []*Process
}

// StartSentinel starts the primary, the replica and three Sentinels, and
// waits until the Sentinels know the replica and each other (so that a
// failover can be agreed on).
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	bins := RequireTopologies(t, "redis-server", "redis-sentinel", "redis-cli")
	ports := claimPorts(t, 5)
	s := &Sentinel{t: t}
	s.Redis0 = newProcess(t, bins["redis-server"], ports[0], redisArgs(ports[0], "always")...)
	s.Redis0.Start()
	s.Redis1 = newProcess(t, bins["redis-server"], ports[1], redisArgs(ports[1], "always",
		"--replicaof", "127.0.0.1", strconv.Itoa(ports[0]))...)
	s.Redis1.Start()
	waitFor(t, "replica in sync", 20*time.Second, func() bool {
		return s.Redis1.Info("replication")["master_link_status"] == "up"
	})
	for _, port := range ports[2:] {
		p := newProcess(t, bins["redis-sentinel"], port)
		conf := filepath.Join(p.Dir, "sentinel.conf")
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %[3]s 2000\nsentinel failover-timeout %[3]s 10000\nsentinel parallel-syncs %[3]s 1\n",
			port, p.Dir, MasterName, ports[0])
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		p.args = []string{conf}
		p.Start()
		s.Sentinels = append(s.Sentinels, p)
	}
	waitFor(t, "sentinels know the replica and each other", 30*time.Second, func() bool {
		for _, p := range s.Sentinels {
			out, err := p.CLI("sentinel", "master", MasterName)
			if err != nil || fieldAfter(out, "num-other-sentinels") != "2" || fieldAfter(out, "num-slaves") != "1" {
				return false
			}
		}
		return true
	})
	return s
}

// fieldAfter finds the line after name in redis-cli's one-per-line
// rendering of a flat reply.
func fieldAfter(out, name string) string {
	lines := strings.Split(out, "\n")
	for i := 0; i+1 < len(lines); i++ {
		if strings.TrimSpace(lines[i]) == name {
			return strings.TrimSpace(lines[i+1])
		}
	}
	return ""
}

// Redis is the configuration that points stepup at the Sentinels.
func (s *Sentinel) Redis() config.Redis {
	cfg := config.Redis{MasterName: MasterName}
	for _, p := range s.Sentinels {
		cfg.Addrs = append(cfg.Addrs, p.Addr())
	}
	return cfg
}

// MasterAddr is the primary's address as the first Sentinel that answers
// reports it.
func (s *Sentinel) MasterAddr() string {
	for _, p := range s.Sentinels {
		if !p.Running() {
			continue
		}
		out, err := p.CLI("sentinel", "get-master-addr-by-name", MasterName)
		if err != nil {
			continue
		}
		if f := strings.Fields(out); len(f) == 2 {
			return f[0] + ":" + f[1]
		}
	}
	return ""
}

// Primary returns the redis-server the Sentinels call primary.
func (s *Sentinel) Primary() *Process {
	s.t.Helper()
	addr := s.MasterAddr()
	for _, p := range []*Process{s.Redis0, s.Redis1} {
		if p.Addr() == addr {
			return p
		}
	}
	s.t.Fatalf("sentinels name primary %q, none of ours", addr)
	return nil
}

// WaitPromoted waits until the Sentinels name another primary than old
// and that server says it is a master.
func (s *Sentinel) WaitPromoted(old *Process) *Process {
	s.t.Helper()
	var next *Process
	waitFor(s.t, "a replica promoted", 60*time.Second, func() bool {
		addr := s.MasterAddr()
		if addr == "" || addr == old.Addr() {
			return false
		}
		for _, p := range []*Process{s.Redis0, s.Redis1} {
			if p.Addr() == addr && p.Info("replication")["role"] == "master" {
				next = p
				return true
			}
		}
		return false
	})
	return next
}

// claimPorts claims n free ports of EnvPorts for t. Each is held by an
// exclusive lock on a file in the temp directory, so that test binaries
// of other packages running at once take other ports; the lock goes with
// the test (or with the process, if it dies).
func claimPorts(t testing.TB, n int) []int {
	t.Helper()
	lo, hi := 6410, 6499
	if r := os.Getenv(EnvPorts); r != "" {
		a, b, ok := strings.Cut(r, "-")
		l, err1 := strconv.Atoi(a)
		h, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || l > h {
			t.Fatalf("%s=%q: want LOW-HIGH", EnvPorts, r)
		}
		lo, hi = l, h
	}
	var out []int
	for port := lo; port <= hi && len(out) < n; port++ {
		f, err := os.OpenFile(filepath.Join(os.TempDir(), fmt.Sprintf("stepup-test-port-%d.lock", port)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil { // in use by something else
			f.Close()
			continue
		}
		ln.Close()
		t.Cleanup(func() { f.Close() })
		out = append(out, port)
	}
	if len(out) < n {
		t.Fatalf("only %d free ports in %d-%d, need %d (%s)", len(out), lo, hi, n, EnvPorts)
	}
	return out
}

// waitFor polls cond every 50 ms until it holds, failing t after limit.
func waitFor(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

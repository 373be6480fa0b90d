package main

// CI cannot run Docker, so this test reads docker-compose.yml and the
// Dockerfile the way Compose and BuildKit would and checks what
// `docker compose up` relies on: Redis persists (append-only file on a
// named volume), so does PostgreSQL, which holds the accounts, stepupd is built statically from the Dockerfile and runs
// as non-root on a minimal image, it starts only once Redis is healthy,
// both have healthchecks, and the configuration it mounts from examples/
// passes the real `stepupd check-config` with the environment the compose
// file gives it.
//
// TestComposeChecksCanFail breaks each property in turn (in the parsed
// files, so that a harmless reformatting does not break the test) and
// requires the checks to notice.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/stepup-dev/stepup/config"
)

// Paths from this package's directory (go test runs in it).
const (
	projectDir     = "../.."
	composePath    = projectDir + "/docker-compose.yml"
	dockerfilePath = projectDir + "/Dockerfile"
)

// The service names the checks look for.
const (
	redisService    = "redis"
	postgresService = "postgres"
	stepupdService  = "stepupd"
)

func TestCompose(t *testing.T) {
	d := loadDeployment(t)
	for _, p := range checkDeployment(d) {
		t.Error(p)
	}
	bin := buildStepupd(t)
	if err := checkMountedConfig(bin, d); err != nil {
		t.Error(err)
	}
}

// Each mutant breaks one property the checks must catch: the checks are
// only worth something if they can fail.
func TestComposeChecksCanFail(t *testing.T) {
	if problems := checkDeployment(loadDeployment(t)); len(problems) > 0 {
		t.Skip("the unmodified files already fail (see TestCompose)")
	}
	type mutant struct {
		name   string
		mutate func(t *testing.T, d *deployment)
		// want is a fragment of the expected problem.
		want string
	}
	redis := func(d *deployment) *composeService { return d.compose.Services[redisService] }
	stepupd := func(d *deployment) *composeService { return d.compose.Services[stepupdService] }
	final := func(d *deployment) *stage { return &d.dockerfile.stages[len(d.dockerfile.stages)-1] }
	buildStage := func(t *testing.T, d *deployment) *stage {
		for i := range d.dockerfile.stages {
			for _, in := range d.dockerfile.stages[i].instructions {
				if in.cmd == "RUN" && goBuild.MatchString(in.args) {
					return &d.dockerfile.stages[i]
				}
			}
		}
		t.Fatal("no stage runs go build")
		return nil
	}
	// dropInstructions removes a stage's instructions cmd.
	dropInstructions := func(s *stage, cmd string) {
		s.instructions = slices.DeleteFunc(s.instructions, func(in instruction) bool { return in.cmd == cmd })
	}
	mutants := []mutant{
		{"no redis service", func(_ *testing.T, d *deployment) { delete(d.compose.Services, redisService) }, "no redis service"},
		{"appendonly no", func(t *testing.T, d *deployment) {
			c := redis(d).Command
			i := slices.Index(c, "--appendonly")
			if i < 0 || i+1 >= len(c) {
				t.Fatalf("redis command %q has no --appendonly", c)
			}
			c[i+1] = "no"
		}, "appendonly"},
		{"appendonly removed", func(_ *testing.T, d *deployment) {
			redis(d).Command = slices.DeleteFunc(redis(d).Command, func(s string) bool { return strings.Contains(s, "appendonly") || s == "yes" })
		}, "appendonly"},
		{"redis data on a bind mount", func(t *testing.T, d *deployment) {
			v := mountAt(redis(d).Volumes, "/data")
			if v == nil {
				t.Fatal("no mount at /data")
			}
			v.Source, v.Type = "./redis-data", "bind"
		}, "named volume"},
		{"redis data not at /data", func(t *testing.T, d *deployment) {
			v := mountAt(redis(d).Volumes, "/data")
			if v == nil {
				t.Fatal("no mount at /data")
			}
			v.Target = "/var/lib/redis"
		}, "/data"},
		{"redis volume not declared", func(_ *testing.T, d *deployment) { d.compose.Volumes = nil }, "not declared"},
		{"no redis healthcheck", func(_ *testing.T, d *deployment) { redis(d).Healthcheck = nil }, "redis: no healthcheck"},
		{"redis healthcheck disabled", func(_ *testing.T, d *deployment) { redis(d).Healthcheck.Disable = true }, "redis: no healthcheck"},
		{"no postgres service", func(_ *testing.T, d *deployment) { delete(d.compose.Services, postgresService) }, "no postgres service"},
		{"postgres data on a bind mount", func(t *testing.T, d *deployment) {
			v := mountAt(d.compose.Services[postgresService].Volumes, "/var/lib/postgresql/data")
			if v == nil {
				t.Fatal("no postgres data mount")
			}
			v.Source, v.Type = "./pgdata", "bind"
		}, "named volume"},
		{"postgres volume not declared", func(_ *testing.T, d *deployment) { delete(d.compose.Volumes, "postgres-data") }, "not declared"},
		{"no postgres healthcheck", func(_ *testing.T, d *deployment) { d.compose.Services[postgresService].Healthcheck = nil }, "postgres: no healthcheck"},
		{"depends on postgres started", func(_ *testing.T, d *deployment) {
			stepupd(d).DependsOn[postgresService] = "service_started"
		}, "postgres with condition service_healthy"},
		{"config database is not the postgres service", func(t *testing.T, d *deployment) {
			d.readConfig = func(string) ([]byte, error) {
				return []byte(strings.ReplaceAll(string(mustRead(t, d.hostConfig(t))), "@postgres:", "@localhost:")), nil
			}
		}, "postgres service"},
		{"config without a database", func(t *testing.T, d *deployment) {
			d.readConfig = func(string) ([]byte, error) {
				return []byte(strings.ReplaceAll(string(mustRead(t, d.hostConfig(t))), "url: postgres://", "# url: postgres://")), nil
			}
		}, "postgres service"},
		{"no stepupd service", func(_ *testing.T, d *deployment) { delete(d.compose.Services, stepupdService) }, "no stepupd service"},
		{"stepupd from an image", func(_ *testing.T, d *deployment) {
			stepupd(d).Build = nil
			stepupd(d).Image = "ghcr.io/stepup-dev/stepup:latest"
		}, "not built"},
		{"stepupd built elsewhere", func(_ *testing.T, d *deployment) { stepupd(d).Build.Context = "./cmd" }, "build context \"./cmd\""},
		{"stepupd built from another Dockerfile", func(_ *testing.T, d *deployment) { stepupd(d).Build.Dockerfile = "Dockerfile.dev" }, "built from \"Dockerfile.dev\""},
		{"depends on redis started", func(_ *testing.T, d *deployment) {
			stepupd(d).DependsOn[redisService] = "service_started"
		}, "service_healthy"},
		{"no depends_on", func(_ *testing.T, d *deployment) { stepupd(d).DependsOn = nil }, "service_healthy"},
		{"no stepupd healthcheck", func(_ *testing.T, d *deployment) { stepupd(d).Healthcheck = nil }, "stepupd: no healthcheck"},
		{"shell healthcheck on distroless", func(_ *testing.T, d *deployment) {
			stepupd(d).Healthcheck.Test = []string{"CMD-SHELL", "curl -f http://127.0.0.1:8080/readyz"}
		}, "healthcheck"},
		{"config not mounted", func(t *testing.T, d *deployment) {
			target := configPath(d)
			stepupd(d).Volumes = slices.DeleteFunc(stepupd(d).Volumes, func(m mount) bool { return m.Target == target })
		}, "not mounted"},
		{"config mounted from elsewhere", func(t *testing.T, d *deployment) {
			m := mountAt(stepupd(d).Volumes, configPath(d))
			if m == nil {
				t.Fatal("config not mounted")
			}
			m.Source = "./stepup.yaml"
		}, "examples"},
		{"config flag points elsewhere", func(_ *testing.T, d *deployment) {
			stepupd(d).Command = []string{"-config", "/etc/other/stepup.yaml"}
		}, "not mounted"},
		{"config redis is not the redis service", func(t *testing.T, d *deployment) {
			d.readConfig = func(string) ([]byte, error) {
				return []byte(strings.ReplaceAll(string(mustRead(t, d.hostConfig(t))), "redis://redis:", "redis://localhost:")), nil
			}
		}, "redis service"},
		{"single stage", func(_ *testing.T, d *deployment) {
			d.dockerfile.stages = d.dockerfile.stages[len(d.dockerfile.stages)-1:]
		}, "multi-stage"},
		{"cgo enabled", func(t *testing.T, d *deployment) {
			s := buildStage(t, d)
			for i, in := range s.instructions {
				s.instructions[i].args = strings.ReplaceAll(in.args, "CGO_ENABLED=0", "CGO_ENABLED=1")
			}
		}, "CGO_ENABLED=0"},
		{"final stage on debian", func(_ *testing.T, d *deployment) { final(d).image = "debian:bookworm-slim" }, "distroless"},
		{"final stage is the go toolchain", func(_ *testing.T, d *deployment) { final(d).image = "golang:1.26" }, "distroless"},
		{"binary not copied from the build stage", func(_ *testing.T, d *deployment) { dropInstructions(final(d), "COPY") }, "COPY --from"},
		{"no USER", func(_ *testing.T, d *deployment) { dropInstructions(final(d), "USER") }, "USER"},
		{"USER root", func(_ *testing.T, d *deployment) {
			final(d).instructions = append(final(d).instructions, instruction{cmd: "USER", args: "root"})
		}, "root"},
		{"USER 0:0", func(_ *testing.T, d *deployment) {
			final(d).instructions = append(final(d).instructions, instruction{cmd: "USER", args: "0:0"})
		}, "root"},
		{"USER by name on scratch", func(_ *testing.T, d *deployment) { final(d).image = "scratch" }, "numeric"},
	}
	for _, m := range mutants {
		t.Run(m.name, func(t *testing.T) {
			d := loadDeployment(t)
			m.mutate(t, d)
			problems := checkDeployment(d)
			if len(problems) == 0 {
				t.Fatalf("no problem found, want one about %q", m.want)
			}
			for _, p := range problems {
				if strings.Contains(p, m.want) {
					return
				}
			}
			t.Errorf("problems %q, want one about %q", problems, m.want)
		})
	}

	// The environment is checked by running the real command.
	bin := buildStepupd(t)
	for _, name := range []string{"ALICE_PASSWORD", "BANK_CLIENT_SECRET", "DB_PASSWORD", "STEPUP_ENC_KEY"} {
		t.Run("check-config without "+name, func(t *testing.T) {
			d := loadDeployment(t)
			env := d.compose.Services[stepupdService].Environment
			if _, ok := env[name]; !ok {
				t.Skipf("the compose file does not set %s", name)
			}
			delete(env, name)
			err := checkMountedConfig(bin, d)
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("check-config error = %v, want one naming %s", err, name)
			}
		})
	}
	t.Run("check-config of a broken file", func(t *testing.T) {
		d := loadDeployment(t)
		broken := filepath.Join(t.TempDir(), "stepup.yaml")
		cfg := mustRead(t, d.hostConfig(t))
		if err := os.WriteFile(broken, append(cfg, []byte("\nno_such_key: 1\n")...), 0o600); err != nil {
			t.Fatal(err)
		}
		d.configOverride = broken
		if err := checkMountedConfig(bin, d); err == nil || !strings.Contains(err.Error(), "no_such_key") {
			t.Errorf("check-config error = %v, want one naming no_such_key", err)
		}
	})
}

// deployment is docker-compose.yml and the Dockerfile, parsed.
type deployment struct {
	compose    *composeFile
	dockerfile *dockerfile
	// readConfig reads the mounted configuration file (os.ReadFile; tests
	// replace it).
	readConfig func(string) ([]byte, error)
	// configOverride, when set, is run through check-config instead of
	// the mounted file.
	configOverride string
}

func loadDeployment(t *testing.T) *deployment {
	t.Helper()
	c, err := parseCompose(mustRead(t, composePath), projectDir)
	if err != nil {
		t.Fatalf("%s: %v", composePath, err)
	}
	df, err := parseDockerfile(mustRead(t, dockerfilePath))
	if err != nil {
		t.Fatalf("%s: %v", dockerfilePath, err)
	}
	return &deployment{compose: c, dockerfile: df, readConfig: os.ReadFile}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkDeployment returns every problem found in the compose file and the
// Dockerfile, except the check-config run (checkMountedConfig).
func checkDeployment(d *deployment) []string {
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	c := d.compose

	// Redis: persistent, healthy.
	if r := c.Services[redisService]; r == nil {
		report("no redis service %q", redisService)
	} else {
		if !strings.Contains(r.Image, "redis") {
			report("redis: image %q is not redis", r.Image)
		}
		if !appendOnly(r.Command) {
			report("redis: command %q does not turn on appendonly (want --appendonly yes)", r.Command)
		}
		switch m := mountAt(r.Volumes, "/data"); {
		case m == nil:
			report("redis: nothing is mounted at /data, where redis keeps its append-only file")
		case m.Type != "volume" || m.Source == "":
			report("redis: /data is a %s mount of %q, want a named volume", m.Type, m.Source)
		default:
			if _, ok := c.Volumes[m.Source]; !ok {
				report("redis: volume %q is not declared under the top-level volumes", m.Source)
			}
		}
		if !r.Healthcheck.enabled() {
			report("redis: no healthcheck")
		}
	}

	// PostgreSQL: the accounts, on a named volume, healthy.
	if pg := c.Services[postgresService]; pg == nil {
		report("no postgres service %q", postgresService)
	} else {
		if !strings.Contains(pg.Image, "postgres") {
			report("postgres: image %q is not postgres", pg.Image)
		}
		const data = "/var/lib/postgresql/data"
		switch m := mountAt(pg.Volumes, data); {
		case m == nil:
			report("postgres: nothing is mounted at %s, where it keeps the accounts", data)
		case m.Type != "volume" || m.Source == "":
			report("postgres: %s is a %s mount of %q, want a named volume", data, m.Type, m.Source)
		default:
			if _, ok := c.Volumes[m.Source]; !ok {
				report("postgres: volume %q is not declared under the top-level volumes", m.Source)
			}
		}
		if !pg.Healthcheck.enabled() {
			report("postgres: no healthcheck")
		}
	}

	// stepupd: built here, started after Redis is healthy, healthy itself.
	s := c.Services[stepupdService]
	if s == nil {
		report("no stepupd service %q", stepupdService)
		return append(problems, checkDockerfile(d.dockerfile)...)
	}
	switch {
	case s.Build == nil:
		report("stepupd: not built from the Dockerfile (image %q)", s.Image)
	default:
		if path.Clean(s.Build.Context) != "." {
			report("stepupd: build context %q, want .", s.Build.Context)
		}
		if df := orDefault(s.Build.Dockerfile, "Dockerfile"); path.Clean(df) != "Dockerfile" {
			report("stepupd: built from %q, want the Dockerfile", df)
		}
	}
	if cond, ok := s.DependsOn[redisService]; !ok || cond != "service_healthy" {
		report("stepupd: depends_on %v, want redis with condition service_healthy", s.DependsOn)
	}
	if cond, ok := s.DependsOn[postgresService]; !ok || cond != "service_healthy" {
		report("stepupd: depends_on %v, want postgres with condition service_healthy", s.DependsOn)
	}
	if !s.Healthcheck.enabled() {
		report("stepupd: no healthcheck")
	} else if test := s.Healthcheck.Test; len(test) < 2 || test[0] != "CMD" {
		// The final image has no shell: CMD-SHELL cannot run.
		report("stepupd: healthcheck %q must be exec form (CMD) on an image without a shell", test)
	} else if exe := test[1]; !d.dockerfile.final().copies(exe) {
		report("stepupd: healthcheck runs %q, which the final stage does not copy in", exe)
	}

	// The configuration: mounted from examples/, at the path -config names.
	problems = append(problems, checkConfigMount(d)...)
	return append(problems, checkDockerfile(d.dockerfile)...)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// appendOnly reports whether redis-server's arguments turn on appendonly.
func appendOnly(args []string) bool {
	for i, a := range args {
		switch {
		case a == "--appendonly" && i+1 < len(args):
			return strings.EqualFold(args[i+1], "yes")
		case strings.HasPrefix(a, "--appendonly="):
			return strings.EqualFold(strings.TrimPrefix(a, "--appendonly="), "yes")
		}
	}
	return false
}

// configPath is the -config argument stepupd runs with: the compose
// command, else the image's CMD.
func configPath(d *deployment) string {
	args := d.compose.Services[stepupdService].Command
	if args == nil {
		args = d.dockerfile.final().cmd()
	}
	for i, a := range args {
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			continue
		}
		if hasVal {
			return val
		}
		if i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// hostConfig returns the host file mounted as the configuration.
func (d *deployment) hostConfig(t *testing.T) string {
	t.Helper()
	p, problem := d.mountedConfig()
	if problem != "" {
		t.Fatal(problem)
	}
	return p
}

// mountedConfig returns the host path of the configuration file stepupd
// reads, or a problem.
func (d *deployment) mountedConfig() (string, string) {
	target := configPath(d)
	if target == "" {
		return "", "stepupd: no -config argument (compose command or image CMD): it would run the demo"
	}
	for _, m := range d.compose.Services[stepupdService].Volumes {
		rel, err := filepath.Rel(m.Target, target)
		if m.Type != "bind" || err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		return filepath.Join(projectDir, m.Source, rel), ""
	}
	return "", fmt.Sprintf("stepupd: -config %s is not mounted from the host", target)
}

func checkConfigMount(d *deployment) []string {
	host, problem := d.mountedConfig()
	if problem != "" {
		return []string{problem}
	}
	var problems []string
	examples, _ := filepath.Abs(filepath.Join(projectDir, "examples"))
	if abs, _ := filepath.Abs(host); !strings.HasPrefix(abs, examples+string(filepath.Separator)) {
		problems = append(problems, fmt.Sprintf("stepupd: configuration mounted from %s, want a file under ./examples/", host))
	}
	data, err := d.readConfig(host)
	if err != nil {
		return append(problems, fmt.Sprintf("stepupd: mounted configuration: %v", err))
	}
	// In compose, the store is the redis service, not the embedded one.
	env := d.compose.Services[stepupdService].Environment
	cfg, err := config.Parse(data, func(k string) (string, bool) {
		v, ok := env[k]
		if !ok || v == nil {
			return "", false
		}
		return *v, true
	})
	if err != nil {
		// checkMountedConfig reports it, through the real command.
		return problems
	}
	hosts := slices.Clone(cfg.Redis.Addrs)
	if u, err := url.Parse(cfg.Redis.URL); err == nil && cfg.Redis.URL != "" {
		hosts = append(hosts, u.Host)
	}
	if !slices.ContainsFunc(hosts, func(h string) bool { return strings.Split(h, ":")[0] == redisService }) {
		problems = append(problems, fmt.Sprintf("stepupd: configuration uses redis %v, want the redis service %q", hosts, redisService))
	}
	// And the account database is the postgres service, not a file in the
	// container (lost with it) nor an in-memory one.
	if u, err := url.Parse(cfg.Database.URL); err != nil || !cfg.DatabaseIsPostgres() || u.Hostname() != postgresService {
		problems = append(problems, fmt.Sprintf("stepupd: configuration keeps accounts in %s, want the postgres service %q", cfg.DatabaseURL(), postgresService))
	}
	return problems
}

// buildStepupd builds this command into a temporary directory.
func buildStepupd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "stepupd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// checkMountedConfig runs `stepupd check-config` on the mounted file with
// exactly the environment compose gives the container.
func checkMountedConfig(bin string, d *deployment) error {
	file := d.configOverride
	if file == "" {
		var problem string
		if file, problem = d.mountedConfig(); problem != "" {
			return errors.New(problem)
		}
	}
	s := d.compose.Services[stepupdService]
	env := []string{} // not nil: nothing from this process's environment
	for _, k := range slices.Sorted(maps.Keys(s.Environment)) {
		// A variable listed without a value comes from the environment
		// of `docker compose`, which this test takes as empty: unset.
		if v := s.Environment[k]; v != nil {
			env = append(env, k+"="+*v)
		}
	}
	cmd := exec.Command(bin, "check-config", file)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("stepupd check-config %s (env %q): %v\n%s%s", file, env, err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), ": ok") {
		return fmt.Errorf("stepupd check-config %s: exit 0 but output %q", file, stdout.String())
	}
	return nil
}

// --- docker-compose.yml ---

type composeFile struct {
	Services map[string]*composeService `yaml:"services"`
	Volumes  map[string]any             `yaml:"volumes"`
}

type composeService struct {
	Image       string              `yaml:"image"`
	Build       *composeBuild       `yaml:"build"`
	Command     stringList          `yaml:"command"`
	Environment envMap              `yaml:"environment"`
	EnvFile     stringList          `yaml:"env_file"`
	Volumes     []mount             `yaml:"volumes"`
	DependsOn   dependsOn           `yaml:"depends_on"`
	Healthcheck *composeHealthcheck `yaml:"healthcheck"`
}

// composeBuild is `build: CONTEXT` or `build: {context, dockerfile}`.
type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

func (b *composeBuild) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	type plain composeBuild
	return n.Decode((*plain)(b))
}

// stringList is a list, or a string split into words.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = strings.Fields(n.Value)
		return nil
	}
	return n.Decode((*[]string)(l))
}

// envMap is `environment:` as a map or a list of KEY=VALUE; a nil value is
// a variable passed through from the environment of `docker compose`.
type envMap map[string]*string

func (e *envMap) UnmarshalYAML(n *yaml.Node) error {
	*e = envMap{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, kv := range l {
			k, v, ok := strings.Cut(kv, "=")
			if ok {
				(*e)[k] = &v
			} else {
				(*e)[k] = nil
			}
		}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: environment is neither a mapping nor a list", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: environment %s is not a scalar", v.Line, k)
		}
		if v.Tag == "!!null" {
			(*e)[k] = nil
			continue
		}
		s := v.Value
		(*e)[k] = &s
	}
	return nil
}

// mount is one entry of a service's volumes, short or long syntax. Type is
// bind (a host path), volume (named, or anonymous when Source is empty).
type mount struct {
	Type     string `yaml:"type"`
	Source   string `yaml:"source"`
	Target   string `yaml:"target"`
	ReadOnly bool   `yaml:"read_only"`
}

func (m *mount) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		type plain mount
		return n.Decode((*plain)(m))
	}
	parts := strings.Split(n.Value, ":")
	switch len(parts) {
	case 1:
		m.Type, m.Target = "volume", parts[0]
		return nil
	case 2, 3:
		m.Source, m.Target = parts[0], parts[1]
		m.ReadOnly = len(parts) == 3 && slices.Contains(strings.Split(parts[2], ","), "ro")
	default:
		return fmt.Errorf("volume %q: cannot parse", n.Value)
	}
	if strings.HasPrefix(m.Source, ".") || strings.HasPrefix(m.Source, "/") || strings.HasPrefix(m.Source, "~") {
		m.Type = "bind"
	} else {
		m.Type = "volume"
	}
	return nil
}

func mountAt(ms []mount, target string) *mount {
	for i := range ms {
		if path.Clean(ms[i].Target) == target {
			return &ms[i]
		}
	}
	return nil
}

// dependsOn maps a service to its condition: a list means
// service_started.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	*d = dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, s := range l {
			(*d)[s] = "service_started"
		}
		return nil
	}
	var m map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	for s, v := range m {
		(*d)[s] = orDefault(v.Condition, "service_started")
	}
	return nil
}

type composeHealthcheck struct {
	Test    healthTest `yaml:"test"`
	Disable bool       `yaml:"disable"`
}

// healthTest is the test as a list; a string is CMD-SHELL.
type healthTest []string

func (h *healthTest) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*h = healthTest{"CMD-SHELL", n.Value}
		return nil
	}
	return n.Decode((*[]string)(h))
}

func (h *composeHealthcheck) enabled() bool {
	return h != nil && !h.Disable && len(h.Test) > 0 && h.Test[0] != "NONE"
}

// parseCompose decodes a compose file after interpolating ${VAR} in its
// values as `docker compose` does, with no variable set in its
// environment (so defaults apply) other than those of a .env file in dir.
func parseCompose(data []byte, dir string) (*composeFile, error) {
	vars, err := readEnvFile(filepath.Join(dir, ".env"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	if err := interpolateNode(&root, vars); err != nil {
		return nil, err
	}
	var c composeFile
	if err := root.Decode(&c); err != nil {
		return nil, err
	}
	for name, s := range c.Services {
		if s == nil {
			return nil, fmt.Errorf("service %s is empty", name)
		}
		// env_file first; environment wins.
		env := envMap{}
		for _, f := range s.EnvFile {
			vs, err := readEnvFile(filepath.Join(dir, f))
			if err != nil {
				return nil, fmt.Errorf("service %s: env_file: %w", name, err)
			}
			for k, v := range vs {
				env[k] = &v
			}
		}
		for k, v := range s.Environment {
			env[k] = v
		}
		s.Environment = env
	}
	return &c, nil
}

// readEnvFile reads KEY=VALUE lines (blank lines and # comments skipped).
func readEnvFile(name string) (map[string]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, "'")
		}
		vars[strings.TrimSpace(k)] = v
	}
	return vars, sc.Err()
}

// interpolateNode interpolates every scalar value (not mapping keys).
func interpolateNode(n *yaml.Node, vars map[string]string) error {
	switch n.Kind {
	case yaml.ScalarNode:
		v, err := interpolate(n.Value, vars)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		n.Value = v
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			if err := interpolateNode(n.Content[i], vars); err != nil {
				return err
			}
		}
	default:
		for _, c := range n.Content {
			if err := interpolateNode(c, vars); err != nil {
				return err
			}
		}
	}
	return nil
}

var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`)

// interpolate applies Compose's substitution: $$, $VAR, ${VAR},
// ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}, ${VAR:+alt},
// ${VAR+alt}; defaults may nest.
func interpolate(s string, vars map[string]string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch rest := s[i+1:]; {
		case rest[0] == '$':
			b.WriteByte('$')
			i++
		case rest[0] == '{':
			depth, end := 0, -1
			for j := 0; j < len(rest) && end < 0; j++ {
				switch rest[j] {
				case '{':
					depth++
				case '}':
					if depth--; depth == 0 {
						end = j
					}
				}
			}
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ in %q", s)
			}
			expr := rest[1:end]
			name := varName.FindString(expr)
			if name == "" {
				return "", fmt.Errorf("invalid ${%s}", expr)
			}
			val, set := vars[name]
			op, arg := expr[len(name):], ""
			for _, o := range []string{":-", ":?", ":+", "-", "?", "+"} {
				if strings.HasPrefix(op, o) {
					op, arg = o, op[len(o):]
					break
				}
			}
			var out string
			switch op {
			case "":
				out = val
			case ":-", "-":
				out = val
				if !set || (op == ":-" && val == "") {
					var err error
					if out, err = interpolate(arg, vars); err != nil {
						return "", err
					}
				}
			case ":?", "?":
				if !set || (op == ":?" && val == "") {
					return "", fmt.Errorf("required variable %s is missing a value: %s", name, arg)
				}
				out = val
			case ":+", "+":
				if set && (op == "+" || val != "") {
					var err error
					if out, err = interpolate(arg, vars); err != nil {
						return "", err
					}
				}
			default:
				return "", fmt.Errorf("invalid ${%s}", expr)
			}
			b.WriteString(out)
			i += 1 + end
		default:
			name := varName.FindString(rest)
			if name == "" {
				b.WriteByte('$')
				continue
			}
			b.WriteString(vars[name])
			i += len(name)
		}
	}
	return b.String(), nil
}

// --- Dockerfile ---

type dockerfile struct {
	stages []stage
}

type stage struct {
	image, name  string
	instructions []instruction
}

type instruction struct {
	cmd  string // upper case
	args string
}

func (d *dockerfile) final() *stage {
	if len(d.stages) == 0 {
		return &stage{}
	}
	return &d.stages[len(d.stages)-1]
}

// cmd returns the stage's last CMD in exec (JSON) form.
func (s *stage) cmd() []string {
	var args []string
	for _, in := range s.instructions {
		if in.cmd == "CMD" {
			args = jsonArgs(in.args)
		}
	}
	return args
}

// copies reports whether the stage copies a file to dst.
func (s *stage) copies(dst string) bool {
	for _, in := range s.instructions {
		if in.cmd != "COPY" && in.cmd != "ADD" {
			continue
		}
		f := strings.Fields(in.args)
		if len(f) > 0 && path.Clean(f[len(f)-1]) == path.Clean(dst) {
			return true
		}
	}
	return false
}

// jsonArgs parses an exec-form argument list; shell form gives nil.
func jsonArgs(s string) []string {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") {
		return nil
	}
	var out []string
	for _, part := range strings.Split(strings.Trim(s, "[]"), ",") {
		if v, err := strconv.Unquote(strings.TrimSpace(part)); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// parseDockerfile splits a Dockerfile into stages of instructions (line
// continuations joined, comments dropped).
func parseDockerfile(data []byte) (*dockerfile, error) {
	var df dockerfile
	var logical strings.Builder
	flush := func() error {
		line := strings.TrimSpace(logical.String())
		logical.Reset()
		if line == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			var f []string
			for _, w := range strings.Fields(in.args) {
				if !strings.HasPrefix(w, "--") { // --platform=…
					f = append(f, w)
				}
			}
			if len(f) == 0 {
				return errors.New("FROM without an image")
			}
			st := stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			df.stages = append(df.stages, st)
			return nil
		}
		if len(df.stages) == 0 {
			if in.cmd == "ARG" {
				return nil
			}
			return fmt.Errorf("%s before FROM", in.cmd)
		}
		s := &df.stages[len(df.stages)-1]
		s.instructions = append(s.instructions, in)
		return nil
	}
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if cont, ok := strings.CutSuffix(strings.TrimRight(line, " \t\r"), `\`); ok {
			logical.WriteString(cont + " ")
			continue
		}
		logical.WriteString(line)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return &df, nil
}

var (
	goBuild   = regexp.MustCompile(`\bgo\s+build\b`)
	cgoOff    = regexp.MustCompile(`\bCGO_ENABLED=0(\s|$)`)
	cgoOffEnv = regexp.MustCompile(`^CGO_ENABLED(=|\s+)0(\s|$)`)
)

// checkDockerfile: multi-stage, a static (CGO_ENABLED=0) go build whose
// stage the final stage copies from, a distroless or scratch final stage,
// and a non-root USER there.
func checkDockerfile(df *dockerfile) []string {
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if len(df.stages) < 2 {
		report("Dockerfile: %d stage(s), want a multi-stage build", len(df.stages))
	}
	final := df.final()

	// The build stage: the one running go build, with cgo off.
	build := -1
	for i, s := range df.stages[:max(len(df.stages)-1, 0)] {
		cgoEnv := false
		for _, in := range s.instructions {
			if in.cmd == "ENV" && cgoOffEnv.MatchString(in.args) {
				cgoEnv = true
			}
			if in.cmd == "RUN" && goBuild.MatchString(in.args) {
				build = i
				if !cgoEnv && !cgoOff.MatchString(in.args) {
					report("Dockerfile: stage %d runs go build without CGO_ENABLED=0 (not a static binary): %s", i, in.args)
				}
			}
		}
	}
	if build < 0 && len(df.stages) >= 2 {
		report("Dockerfile: no build stage runs go build")
	}
	if build >= 0 {
		from := []string{"--from=" + strconv.Itoa(build)}
		if n := df.stages[build].name; n != "" {
			from = append(from, "--from="+n)
		}
		copied := slices.ContainsFunc(final.instructions, func(in instruction) bool {
			return in.cmd == "COPY" && slices.ContainsFunc(strings.Fields(in.args), func(w string) bool { return slices.Contains(from, w) })
		})
		if !copied {
			report("Dockerfile: the final stage has no COPY --from the go build stage")
		}
	}

	img := final.image
	scratch := img == "scratch"
	if !scratch && !strings.HasPrefix(img, "gcr.io/distroless/") {
		report("Dockerfile: final stage FROM %s, want gcr.io/distroless/… or scratch", img)
	}

	user := ""
	for _, in := range final.instructions {
		if in.cmd == "USER" {
			user = in.args
		}
	}
	name, _, _ := strings.Cut(user, ":")
	_, numErr := strconv.Atoi(name)
	switch {
	case user == "":
		report("Dockerfile: the final stage sets no USER (it would run as root)")
	case name == "root" || name == "0":
		report("Dockerfile: final stage USER %s is root", user)
	case scratch && numErr != nil:
		report("Dockerfile: USER %s on scratch must be numeric: there is no /etc/passwd", user)
	}
	return problems
}

package main

// CI cannot run Docker: this reads docker-compose.yml, the Dockerfile and
// examples/stepup.yaml and checks what `docker compose up` needs for the
// demo bank: the image carries /stepup-demo, the service runs it with
// flags this binary accepts, on stepupd's network (so the issuer URL is
// the same for the browser and the bank), and its client id and redirect
// URI are registered in the mounted configuration with the same secret.

import (
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/stepup-dev/stepup/config"
)

type composeDemo struct {
	Services map[string]struct {
		Entrypoint  []string          `yaml:"entrypoint"`
		Command     []string          `yaml:"command"`
		NetworkMode string            `yaml:"network_mode"`
		Ports       []string          `yaml:"ports"`
		Environment map[string]string `yaml:"environment"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
	} `yaml:"services"`
}

// expand resolves ${VAR:-default} the way compose does with VAR unset.
func expand(s string) string {
	return os.Expand(s, func(v string) string {
		if _, def, ok := strings.Cut(v, ":-"); ok {
			return def
		}
		return ""
	})
}

func TestComposeRunsTheDemo(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeDemo
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	demo, ok := c.Services["stepup-demo"]
	if !ok {
		t.Fatal("docker-compose.yml has no stepup-demo service")
	}
	if !slices.Equal(demo.Entrypoint, []string{"/stepup-demo"}) {
		t.Errorf("stepup-demo entrypoint %q, want [/stepup-demo]", demo.Entrypoint)
	}
	if demo.NetworkMode != "service:stepupd" || demo.DependsOn["stepupd"].Condition != "service_healthy" {
		t.Errorf("stepup-demo must share stepupd's network and wait for it to be healthy: %q %+v", demo.NetworkMode, demo.DependsOn)
	}
	if !slices.Contains(c.Services["stepupd"].Ports, "9000:9000") {
		t.Errorf("stepupd does not publish the demo's port 9000: %q", c.Services["stepupd"].Ports)
	}

	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(df), "./cmd/stepup-demo") || !strings.Contains(string(df), "COPY --from=build /out/stepup-demo /stepup-demo") {
		t.Error("the Dockerfile does not build /stepup-demo into the image")
	}

	// The flags parse as main parses them.
	args := make([]string, len(demo.Command))
	for i, a := range demo.Command {
		args[i] = expand(a)
	}
	fs := flag.NewFlagSet("stepup-demo", flag.ContinueOnError)
	issuer := fs.String("issuer", "", "")
	clientID := fs.String("client-id", "", "")
	secret := fs.String("client-secret", "", "")
	listen := fs.String("listen", "", "")
	redirect := fs.String("redirect-url", "", "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		t.Fatalf("stepup-demo command %q: %v (extra %q)", args, err, fs.Args())
	}
	if *listen != ":9000" {
		t.Errorf("-listen %q, want :9000", *listen)
	}

	// The mounted configuration registers the demo with that secret.
	stepupd := c.Services["stepupd"]
	env := map[string]string{}
	for k, v := range stepupd.Environment {
		env[k] = expand(v)
	}
	y, err := os.ReadFile("../../examples/stepup.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(y, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Issuer != *issuer {
		t.Errorf("the demo's -issuer %q is not the provider's issuer %q", *issuer, cfg.Issuer)
	}
	i := slices.IndexFunc(cfg.Clients, func(c config.Client) bool { return c.ID == *clientID })
	if i < 0 {
		t.Fatalf("client %q is not in examples/stepup.yaml", *clientID)
	}
	cl := cfg.Clients[i]
	if cl.Secret != *secret || *secret == "" {
		t.Errorf("the demo's -client-secret does not match the configured secret of %s", cl.ID)
	}
	if !slices.Contains(cl.RedirectURIs, *redirect) {
		t.Errorf("-redirect-url %q is not registered for %s (%q)", *redirect, cl.ID, cl.RedirectURIs)
	}
	if cl.MinACR != "" {
		t.Errorf("client %s has min_acr %q: the balance at 1fa could not be shown", cl.ID, cl.MinACR)
	}
}

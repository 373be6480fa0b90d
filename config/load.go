package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FieldError is one problem in a configuration, at a path such as
// clients[1].redirect_uris[0].
type FieldError struct {
	// Path names the value, in the file's own keys; "" for the file as a
	// whole (a YAML syntax error).
	Path string
	// Msg says what is wrong. It never repeats a secret.
	Msg string
	// Line is the line of the value in the YAML file, 0 when unknown (a
	// Config that was not parsed, or a value that is absent).
	Line int
}

// Error returns "path: message", followed by " (line N)" when the line is
// known.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	return b.String()
}

// Errors is every problem found in a configuration. Parse, Load and
// Validate return all of them at once rather than stopping at the first.
type Errors []*FieldError

// Error returns one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, so that errors.As finds a *FieldError.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// Load reads the YAML file at path and returns the validated
// configuration; see Parse. ${ENV_VAR} references are resolved from the
// process environment.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, os.LookupEnv)
}

// Parse decodes a YAML configuration, applies the defaults of PRODUCT.md §4
// and validates the result.
//
// Decoding is strict: an unknown or duplicated key, a value of the wrong
// type and a malformed duration are errors. In values (never in keys),
// ${NAME} is replaced by the variable getenv returns for NAME — a variable
// it reports as unset is an error — and $$ stands for a literal $; any
// other $ is kept as it is, so argon2id PHC strings need no escaping.
// getenv may be nil: then every reference is unset.
//
// A default is applied only to a key that is absent (or null): an explicit
// zero, such as max_failures: 0, is validated, not replaced.
//
// On failure the error is an Errors holding every problem found, decoding
// and validation together, each with its path and line.
func Parse(data []byte, getenv func(string) (string, bool)) (*Config, error) {
	if getenv == nil {
		getenv = func(string) (string, bool) { return "", false }
	}
	root, ferr := parseYAML(data)
	if ferr != nil {
		return nil, Errors{ferr}
	}
	d := &decoder{
		getenv:  getenv,
		given:   map[string]bool{},
		lines:   map[string]int{},
		bad:     map[string]bool{},
		fromEnv: map[string]bool{},
		budget:  maxNodes,
	}
	cfg := &Config{}
	if root != nil {
		d.decode(root, "", reflect.ValueOf(cfg).Elem())
	}
	applyDefaults(cfg, d.given)
	cfg.fromEnv = d.fromEnv

	errs := d.errs
	if d.budget < 0 {
		// Half a configuration, from an abusive file: validating it would
		// only add noise.
		return nil, errs
	}
	if err := cfg.Validate(); err != nil {
		for _, fe := range err.(Errors) {
			// A value that could not be decoded was left zero; what
			// Validate says about it would only repeat the decode error.
			if d.failed(fe.Path) {
				continue
			}
			fe.Line = d.line(fe.Path)
			errs = append(errs, fe)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// parseYAML returns the root node of the single document in data, nil for
// an empty document.
func parseYAML(data []byte) (root *yaml.Node, ferr *FieldError) {
	// yaml.v3 recovers its own errors; anything else it panics with is
	// still a bad file, not a reason to crash stepupd.
	defer func() {
		if r := recover(); r != nil {
			root, ferr = nil, &FieldError{Msg: fmt.Sprintf("invalid YAML: parser failed: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return root, nil
		}
		if err != nil {
			fe := syntaxError(err)
			if bytes.Contains(data, []byte("${")) && strings.Contains(fe.Msg, "did not find expected ',' or") {
				fe.Msg += " (inside {…} or […], quote ${VAR} references: \"${VAR}\")"
			}
			return nil, fe
		}
		var n *yaml.Node
		if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
			n = doc.Content[0]
		}
		if i == 0 {
			root = n
			continue
		}
		// A trailing "---" yields an empty document: harmless.
		if n != nil && !isNull(n) {
			return nil, &FieldError{Msg: "more than one YAML document: put the whole configuration in one", Line: n.Line}
		}
	}
}

// syntaxError turns yaml.v3's "yaml: line 3: …" into a FieldError.
func syntaxError(err error) *FieldError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				line, msg = n, tail
			}
		}
	}
	return &FieldError{Msg: "invalid YAML: " + msg, Line: line}
}

// maxNodes bounds the values one file may make the decoder visit. Aliases
// let a small file name the same subtree many times; a real configuration
// is orders of magnitude below this.
const maxNodes = 1 << 19

// decoder decodes yaml.Nodes into the Config types (structs, slices,
// strings, ints, bools, Durations), recording every problem with its path
// instead of stopping at the first.
type decoder struct {
	getenv func(string) (string, bool)
	errs   Errors
	// given holds the paths of values present and not null, so that an
	// explicit zero is not mistaken for an absent key by applyDefaults.
	given map[string]bool
	// lines maps paths to their line, for validation errors.
	lines map[string]int
	// bad holds the paths whose value could not be decoded.
	bad     map[string]bool
	fromEnv map[string]bool
	budget  int
}

func (d *decoder) fail(path string, line int, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...), Line: line})
}

// failed reports whether the validation error at path may merely be a
// consequence of a value that could not be decoded and was left zero: the
// value itself or what it contains, a sibling that is checked against it
// (a confidential client's secret when public: failed), or a check
// against levels or mfa.factors elsewhere in the file.
func (d *decoder) failed(path string) bool {
	for bad := range d.bad {
		if dependsOn(path, bad) {
			return true
		}
	}
	return false
}

// siblingDeps lists, for a key, the keys of the same mapping whose
// validation reads it.
var siblingDeps = map[string][]string{
	"public":             {"secret", "secret_hash", "grant_types"},
	"secret":             {"secret_hash"},
	"secret_hash":        {"secret"},
	"grant_types":        {"redirect_uris"},
	"password":           {"password_hash", "username"},
	"password_hash":      {"password"},
	"email":              {"email_mfa"},
	"url":                {"addrs", "master_name", "db", "username", "password"},
	"addrs":              {"master_name", "db", "username", "password"},
	"phishing_resistant": {"hardware"},
	"idle_timeout":       {"absolute_timeout"},
	"absolute_timeout":   {"idle_timeout"},
}

func dependsOn(path, bad string) bool {
	if path == bad || strings.HasPrefix(path, bad+".") || strings.HasPrefix(path, bad+"[") {
		return true
	}
	pp, pk := structKey(path)
	bp, bk := structKey(bad)
	if pp == bp && slices.Contains(siblingDeps[bk], pk) {
		return true
	}
	switch {
	case bad == "levels" || strings.HasPrefix(bad, "levels["):
		return path == "mfa.login" || strings.HasSuffix(path, ".min_acr")
	case bad == "mfa" || strings.HasPrefix(bad, "mfa.factors"):
		return path == "mfa.unenrolled" || pk == "unenrolled" || pk == "email_mfa" || pk == "totp_secret"
	}
	return false
}

// structKey splits a path into the mapping that holds it and its key in
// that mapping: clients[0].grant_types[2] → clients[0], grant_types.
func structKey(path string) (parent, key string) {
	for strings.HasSuffix(path, "]") {
		i := strings.LastIndexByte(path, '[')
		if i < 0 {
			break
		}
		path = path[:i]
	}
	i := strings.LastIndexByte(path, '.')
	if i < 0 {
		return "", path
	}
	return path[:i], path[i+1:]
}

// line returns the line of path or, when it is absent from the file, of
// the nearest value that contains it.
func (d *decoder) line(path string) int {
	for p := path; ; {
		if l, ok := d.lines[p]; ok {
			return l
		}
		parent, ok := parentPath(p)
		if !ok {
			return 0
		}
		p = parent
	}
}

// parentPath strips the last key or index from a path.
func parentPath(p string) (string, bool) {
	if p == "" {
		return "", false
	}
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return "", true
	}
	return p[:i], true
}

var durationType = reflect.TypeFor[Duration]()

func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	n = deref(n)
	if n == nil || isNull(n) {
		return
	}
	if d.budget--; d.budget < 0 {
		if d.budget == -1 {
			d.fail(path, n.Line, "too many values (more than %d, counting each use of an alias)", maxNodes)
		}
		return
	}
	d.given[path] = true
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = n.Line
	}
	switch {
	case v.Type() == durationType:
		s, ok := d.scalar(n, path, "a duration")
		if !ok {
			return
		}
		dur, err := parseDuration(s)
		if err != nil {
			d.bad[path] = true
			d.fail(path, n.Line, "%v", err)
			return
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.Struct:
		d.mapping(n, path, v)
	case v.Kind() == reflect.Slice:
		d.sequence(n, path, v)
	case v.Kind() == reflect.String:
		if s, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(s)
		}
	case v.Kind() == reflect.Int:
		s, ok := d.scalar(n, path, "an integer")
		if !ok {
			return
		}
		var i int64
		tn := d.retyped(n, path, s)
		if tn.ShortTag() != "!!int" || tn.Decode(&i) != nil || v.OverflowInt(i) {
			d.bad[path] = true
			d.fail(path, n.Line, "want an integer, got %q", s)
			return
		}
		v.SetInt(i)
	case v.Kind() == reflect.Bool:
		s, ok := d.scalar(n, path, "true or false")
		if !ok {
			return
		}
		var b bool
		if err := d.retyped(n, path, s).Decode(&b); err != nil {
			d.bad[path] = true
			d.fail(path, n.Line, "want true or false, got %q", s)
			return
		}
		v.SetBool(b)
	default:
		// Only reachable if config.go gains a field of a new kind.
		panic(fmt.Sprintf("config: no decoder for %s at %s", v.Type(), path))
	}
}

// scalar returns the text of a scalar node with ${ENV} references
// expanded.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.bad[path] = true
		d.fail(path, n.Line, "want %s, got %s", want, describe(n))
		return "", false
	}
	s, refs, problems := expand(n.Value, d.getenv)
	if len(problems) > 0 {
		d.bad[path] = true
		for _, p := range problems {
			d.fail(path, n.Line, "%s", p)
		}
		return "", false
	}
	if refs {
		d.fromEnv[path] = true
	}
	return s, true
}

// retyped returns a scalar node holding s for yaml.v3 to resolve into an
// int or a bool. A value taken from the environment is resolved afresh
// whatever its quoting in the file: quoting "${PORT}" is about the
// reference, not the value.
func (d *decoder) retyped(n *yaml.Node, path, s string) *yaml.Node {
	if d.fromEnv[path] {
		return &yaml.Node{Kind: yaml.ScalarNode, Value: s}
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Value: s, Tag: n.Tag, Style: n.Style}
}

func (d *decoder) mapping(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.bad[path] = true
		d.fail(path, n.Line, "want a mapping (key: value), got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	for _, p := range d.pairs(n, path, map[*yaml.Node]bool{}) {
		key := deref(p.key)
		if key == nil || key.Kind != yaml.ScalarNode {
			d.fail(path, p.key.Line, "a key must be a plain string, got %s", describe(p.key))
			continue
		}
		fp := joinPath(path, key.Value)
		i, ok := fields[key.Value]
		if !ok {
			d.fail(fp, key.Line, "unknown key%s", suggest(key.Value, fields))
			continue
		}
		d.lines[fp] = key.Line
		d.decode(p.value, fp, v.Field(i))
	}
}

func (d *decoder) sequence(n *yaml.Node, path string, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.bad[path] = true
		d.fail(path, n.Line, "want a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		ip := fmt.Sprintf("%s[%d]", path, i)
		d.lines[ip] = item.Line
		d.decode(item, ip, s.Index(i))
	}
	v.Set(s)
}

type pair struct{ key, value *yaml.Node }

// pairs lists the entries of mapping m with YAML merge keys (<<: *base)
// resolved: the mapping's own keys win over merged ones, and earlier
// merged mappings over later ones. A key given twice in m itself is an
// error. active holds the mappings being merged, to stop a mapping that
// merges itself.
func (d *decoder) pairs(m *yaml.Node, path string, active map[*yaml.Node]bool) []pair {
	if active[m] {
		d.fail(path, m.Line, "merge (<<) of a mapping into itself")
		return nil
	}
	if d.budget--; d.budget < 0 {
		return nil
	}
	active[m] = true
	defer delete(active, m)

	var own, merged []pair
	first := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		kd := deref(k)
		if kd != nil && kd.Kind == yaml.ScalarNode && kd.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeSources(v, path, active)...)
			continue
		}
		if kd != nil && kd.Kind == yaml.ScalarNode {
			if line, dup := first[kd.Value]; dup {
				d.fail(joinPath(path, kd.Value), kd.Line, "duplicate key (first at line %d)", line)
				continue
			}
			first[kd.Value] = kd.Line
		}
		own = append(own, pair{k, v})
	}
	for _, p := range merged {
		if kd := deref(p.key); kd != nil && kd.Kind == yaml.ScalarNode {
			if _, dup := first[kd.Value]; dup {
				continue
			}
			first[kd.Value] = kd.Line
		}
		own = append(own, p)
	}
	return own
}

func (d *decoder) mergeSources(v *yaml.Node, path string, active map[*yaml.Node]bool) []pair {
	v = deref(v)
	switch {
	case v == nil:
		return nil
	case v.Kind == yaml.MappingNode:
		return d.pairs(v, path, active)
	case v.Kind == yaml.SequenceNode:
		var ps []pair
		for _, item := range v.Content {
			item = deref(item)
			if item == nil || item.Kind != yaml.MappingNode {
				d.fail(path, v.Line, "merge (<<) wants a mapping or a list of mappings")
				continue
			}
			ps = append(ps, d.pairs(item, path, active)...)
		}
		return ps
	default:
		d.fail(path, v.Line, "merge (<<) wants a mapping or a list of mappings, got %s", describe(v))
		return nil
	}
}

// deref follows aliases to the anchored node.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 100 {
			return nil
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describe(n *yaml.Node) string {
	n = deref(n)
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode:
		return "a scalar"
	default:
		return "a document"
	}
}

// joinPath appends a key to a path, quoting a key that is not a plain
// identifier so that paths stay unambiguous.
func joinPath(path, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	if !plain {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldsOf maps the yaml keys of struct type t to field indexes.
func fieldsOf(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = i
	}
	return m
}

// suggest names the known key closest to an unknown one, when one is close
// enough to be the likely intent.
func suggest(key string, fields map[string]int) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	best, bestDist := "", 3
	for _, name := range names {
		if d := editDistance(strings.ToLower(key), name); d < bestDist {
			best, bestDist = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %s?", best)
}

// editDistance is the Levenshtein distance between a and b, bytewise.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// expand replaces each ${NAME} in s with getenv(NAME) and each $$ with $;
// any other $ is literal. refs reports whether s referred to a variable.
// The problems name variables, never their values.
func expand(s string, getenv func(string) (string, bool)) (out string, refs bool, problems []string) {
	if !strings.Contains(s, "$") {
		return s, false, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			refs = true
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				problems = append(problems, "unterminated ${ (write $$ for a literal $)")
				return s, refs, problems
			}
			name := s[i+2 : i+2+end]
			switch v, ok := getenv(name); {
			case !validEnvName(name):
				if len(name) > 40 {
					name = name[:40] + "…"
				}
				problems = append(problems, fmt.Sprintf("invalid environment variable name %q in ${…} (write $$ for a literal $)", name))
			case !ok:
				problems = append(problems, fmt.Sprintf("environment variable %s is not set", name))
			default:
				b.WriteString(v)
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String(), refs, problems
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// UnmarshalYAML reads a duration written as time.ParseDuration accepts:
// "90s", "15m", "12h", "1h30m". A bare number is an error: it has no unit.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration like 15m, got %s", n.Line, describe(n))
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration as UnmarshalYAML reads it.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// String formats the duration like time.Duration ("15m0s").
func (d Duration) String() string { return time.Duration(d).String() }

func parseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (write it like 90s, 15m or 12h)", s)
	}
	return Duration(v), nil
}

// PlainSecrets lists the paths of secrets written in the configuration as
// plain text — neither a hash nor a ${ENV_VAR} reference: clients[i].secret
// and users[i].password (which have a hashed form), and redis.password,
// sms.auth_token and email.password. The caller logs a warning for each
// (PRODUCT.md §4). A Config not made by Parse has no references, so every
// secret it holds is listed.
func (c *Config) PlainSecrets() []string {
	var paths []string
	add := func(path, value string) {
		if value != "" && !c.fromEnv[path] {
			paths = append(paths, path)
		}
	}
	add("redis.password", c.Redis.Password)
	add("sms.auth_token", c.SMS.AuthToken)
	add("email.password", c.Email.Password)
	for i, cl := range c.Clients {
		add(fmt.Sprintf("clients[%d].secret", i), cl.Secret)
	}
	for i, u := range c.Users {
		add(fmt.Sprintf("users[%d].password", i), u.Password)
	}
	for i, k := range c.Secrets.EncryptionKeys {
		add(fmt.Sprintf("secrets.encryption_keys[%d]", i), k)
	}
	if u, err := url.Parse(c.Database.URL); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			add("database.url", c.Database.URL)
		}
	}
	return paths
}

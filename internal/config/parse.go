package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Defaults for the server block and default_profile.
const (
	DefaultListen       = "127.0.0.1:8080"
	DefaultMaxBodyBytes = 10 << 20 // 10 MiB
	DefaultProfileName  = "dev"
)

// Load reads and compiles the config file at path. problems holds every
// warning and error found, sorted by line; err is non-nil if any problem is
// an Error (an *InvalidError) or the file cannot be read, and then cfg is nil.
//
// lookup resolves ${VAR} references; pass os.LookupEnv in production. A nil
// lookup means no variable is set.
func Load(path string, lookup func(string) (string, bool)) (cfg *Config, problems []Problem, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load config: %w", err)
	}
	return Parse(path, data, lookup)
}

// Parse is Load for bytes already in memory; name is used as FILE in problems
// and as the Config's Source. It has no side effects.
func Parse(name string, data []byte, lookup func(string) (string, bool)) (*Config, []Problem, error) {
	d := newDecoder(name, lookup)
	var c *Config
	if root := d.document(data); root != nil {
		d.expandTree(root)
		c = d.compile(root)
	}
	slices.SortStableFunc(d.problems, func(a, b Problem) int { return a.Line - b.Line })
	if Errors(d.problems) > 0 {
		return nil, d.problems, &InvalidError{File: name, Problems: d.problems}
	}
	c.precompute()
	return c, d.problems, nil
}

// document parses data as exactly one YAML document and returns its root
// node; an empty file is an empty mapping.
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: 1, Column: 1}
		}
		d.syntaxError(err, data)
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.syntaxError(err, data)
		return nil
	default:
		d.errorf(&extra, "a second YAML document; the config file holds exactly one")
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		d.errorf(&doc, "the file is not a YAML document")
		return nil
	}
	root := doc.Content[0]
	if isNull(root) {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: root.Line, Column: root.Column}
	}
	return root
}

// syntaxError turns the YAML parser's "yaml: line N: msg" into a Problem.
// The parser gives no line for an unknown anchor; the first "*name" in the
// text is where it is.
//
// The expressions are compiled here, not in package variables: a file
// with a syntax error is rare, and every process that imports config (the
// gateway's start included) would otherwise compile them at init.
func (d *decoder) syntaxError(err error, data []byte) {
	yamlLineRE := regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)
	yamlAnchorRE := regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
	msg, line := err.Error(), 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if m := yamlAnchorRE.FindStringSubmatch(msg); m != nil && line == 0 {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			line = 1 + bytes.Count(data[:i], []byte("\n"))
		}
	}
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Severity: Error, Message: "YAML: " + msg})
}

// compile decodes, defaults and validates the whole file. The returned Config
// is meaningful only when no Error was reported.
func (d *decoder) compile(root *yaml.Node) *Config {
	c := &Config{
		Source:    d.file,
		Providers: make(map[string]*Provider),
		Models:    make(map[string]*Model),
		Tiers:     make(map[string][]string),
		Aliases:   make(map[string]map[string][]string),
		Profiles:  make(map[string]*Profile),
	}
	top := d.fields(root, "top level", "server", "default_profile", "providers", "models", "tiers", "aliases", "profiles", "store", "payload_logging")
	d.noteAliasNames(top["aliases"])
	d.server(c, top["server"])
	d.store(c, top["store"])
	d.payloadLogging(c, top["payload_logging"])
	d.providers(c, top["providers"])
	models := d.models(c, top["models"])
	d.tiers(c, top["tiers"])
	d.aliases(c, top["aliases"], models)
	explicitTier := d.profiles(c, top["profiles"])
	finishProfiles(c)
	d.modelTimeouts(c, models)
	d.defaultProfile(c, top["default_profile"])
	d.missingTiers(c, root, top["tiers"], explicitTier)
	return c
}

// noteAliasNames records the alias names before anything is checked, so
// that a chain naming an alias is told so rather than "not defined".
func (d *decoder) noteAliasNames(p pair) {
	if n := deref(p.val); n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			d.aliasNames[deref(n.Content[i]).Value] = true
		}
	}
}

func (d *decoder) server(c *Config, p pair) {
	c.Server = Server{Listen: DefaultListen, MaxBodyBytes: DefaultMaxBodyBytes}
	if p.val == nil {
		return
	}
	f := d.fields(p.val, "server", "listen", "max_body_bytes")
	if q, ok := f["listen"]; ok {
		if s, ok := d.str(q.val, "server.listen"); ok {
			if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
				d.errorf(deref(q.val), `server.listen: want host:port such as "127.0.0.1:8080" or ":8080", got %q`, s)
			} else {
				c.Server.Listen = s
			}
		}
	}
	if q, ok := f["max_body_bytes"]; ok {
		if v, ok := d.size(q.val, "server.max_body_bytes"); ok {
			if v <= 0 {
				d.errorf(deref(q.val), "server.max_body_bytes: must be positive, got %d", v)
			} else {
				c.Server.MaxBodyBytes = v
			}
		}
	}
}

func (d *decoder) defaultProfile(c *Config, p pair) {
	c.DefaultProfile = DefaultProfileName
	if p.val == nil {
		return
	}
	s, ok := d.str(p.val, "default_profile")
	if !ok {
		return
	}
	if !contains(Profiles, s) {
		d.errorf(deref(p.val), "default_profile: unknown profile %q (want dev, staging or production)", s)
		return
	}
	c.DefaultProfile = s
}

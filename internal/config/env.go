package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// expandEnv replaces environment references in s:
//
//	${VAR}           the value of VAR; an error when VAR is not set
//	${VAR:-default}  the value of VAR, or default when VAR is unset or empty
//	$${              a literal "${" (so a secret may contain one)
//
// A "$" not followed by "{" is kept as it is. The default is literal text up
// to the first "}"; references do not nest (a "${" inside one is an error
// rather than a silently mangled value). It returns one message per
// problem, and s unchanged when there is any.
func expandEnv(s string, lookup func(string) (string, bool)) (string, []string) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	var errs []string
	rest := s
	for {
		i := strings.Index(rest, "${")
		if i < 0 {
			b.WriteString(rest)
			break
		}
		if i > 0 && rest[i-1] == '$' { // "$${" is an escaped "${"
			b.WriteString(rest[:i-1])
			b.WriteString("${")
			rest = rest[i+2:]
			continue
		}
		b.WriteString(rest[:i])
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			errs = append(errs, fmt.Sprintf("unterminated %q: want ${VAR} or ${VAR:-default}", rest[i:]))
			break
		}
		ref := rest[i+2 : i+end]
		if strings.Contains(ref, "${") {
			errs = append(errs, fmt.Sprintf("nested reference in %q: a default is plain text", rest[i:]))
			break
		}
		rest = rest[i+end+1:]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			errs = append(errs, fmt.Sprintf("bad variable reference ${%s}: want ${VAR} or ${VAR:-default}, VAR made of letters, digits and _", ref))
			continue
		}
		v, ok := lookup(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			errs = append(errs, fmt.Sprintf("environment variable %s is not set (write ${%s:-default} to give a default)", name, name))
			continue
		}
		b.WriteString(v)
	}
	if errs != nil {
		return s, errs
	}
	return b.String(), nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// expandTree expands environment references in every string scalar that is a
// value (mapping keys are left alone), before any type decoding, so that
// `max_retries: ${RETRIES}` works. Each node is visited once: alias nodes are
// skipped because their target is expanded where it is defined, which also
// keeps a "billion laughs" document linear.
func (d *decoder) expandTree(n *yaml.Node) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			d.expandTree(c)
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			d.expandTree(n.Content[i])
		}
	case yaml.ScalarNode:
		if n.ShortTag() != "!!str" || !strings.Contains(n.Value, "${") {
			return
		}
		v, errs := expandEnv(n.Value, d.lookup)
		if errs != nil {
			for _, e := range errs {
				d.errorf(n, "%s", e)
			}
			d.failed[n] = true
			return
		}
		n.Value = v
		d.expanded[n] = true
	}
}

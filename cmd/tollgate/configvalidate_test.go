package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/internal/config"
)

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("providers:\n  l: {kind: openai, base_url: http://h}\nmodels: {m: {provider: l, price: 0}}\ntiers: {budget: [m], standard: [m], premium: [m]}\n"), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("sever: 1\nprofles: 2\n"), 0o644)
	var out, errb bytes.Buffer
	if err := runConfigValidate(context.Background(), []string{good}, &out, &errb); err != nil {
		t.Fatalf("good: %v", err)
	}
	if out.String() != good+": ok (1 warning)\n" || !strings.Contains(errb.String(), good+":2: warning: providers.l: no api_key") {
		t.Errorf("good: stdout %q stderr %q", out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	err := runConfigValidate(context.Background(), []string{bad}, &out, &errb)
	if err == nil || err.Error() != bad+": 2 errors" || out.Len() != 0 || strings.Count(errb.String(), "\n") != 2 ||
		!strings.Contains(errb.String(), bad+":1: ") || !strings.Contains(errb.String(), bad+":2: ") {
		t.Errorf("bad: err %v stdout %q stderr %q", err, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if err := runConfigValidate(context.Background(), []string{"--help"}, &out, &errb); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "tollgate config validate FILE") {
		t.Errorf("--help: %v %q", err, out.String())
	}
	if err := runConfigValidate(context.Background(), nil, &out, &errb); err == nil {
		t.Error("no file: nil error")
	}
	if err := runConfigValidate(context.Background(), []string{"--bogus", good}, &out, &errb); err == nil {
		t.Error("bad flag: nil error")
	}
	if err := runConfigValidate(context.Background(), []string{filepath.Join(dir, "none.yaml")}, &out, &errb); err == nil {
		t.Error("missing file: nil error")
	}
}

// The shipped examples validate through the command as a user runs it.
func TestExamplesValidate(t *testing.T) {
	for _, k := range []string{"OPENAI_API_KEY", "OPENAI_BACKUP_API_KEY", "DEEPSEEK_API_KEY", "ANTHROPIC_API_KEY"} {
		t.Setenv(k, "test-"+k)
	}
	files, _ := filepath.Glob("../../examples/*.yaml")
	if len(files) < 2 {
		t.Fatalf("found %d examples", len(files))
	}
	for _, f := range files {
		var out, errb bytes.Buffer
		if err := Main(context.Background(), []string{"config", "validate", f}, &out, &errb); err != nil {
			t.Errorf("%s: %v\n%s", f, err, errb.String())
		}
	}
}

// Every built-in demo configuration compiles without a single problem.
func TestDemoConfigsAreClean(t *testing.T) {
	env := func(k string) (string, bool) { return "test-key", true }
	for name, yaml := range map[string]string{"mock": demoMock, "openai": demoOpenAI, "anthropic": demoAnthropic, "deepseek": demoDeepSeek} {
		_, problems, err := config.Parse(name, []byte(yaml), env)
		if err != nil || len(problems) != 0 {
			t.Errorf("demo %s: %v %v", name, err, problems)
		}
	}
}

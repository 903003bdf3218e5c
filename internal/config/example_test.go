package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var envRefRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`)

// TestExamples loads the shipped examples: they must pass as documented, with
// every variable they mention set, and with no warnings to explain away.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("examples: %v, %v; want at least tollgate.yaml and local-mock.yaml", files, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			env := map[string]string{}
			for _, m := range envRefRE.FindAllSubmatch(data, -1) {
				env[string(m[1])] = "value-of-" + string(m[1])
			}
			c, problems, err := Load(file, envOf(env))
			if err != nil {
				t.Fatalf("Load(%s) with every variable set: %v\n%s", file, err, joinProblems(problems))
			}
			if len(problems) != 0 {
				t.Errorf("Load(%s) problems:\n%s", file, joinProblems(problems))
			}
			for _, name := range c.ClientModels() {
				for _, tier := range Tiers {
					if _, ok := c.Chain(name, tier); !ok {
						t.Errorf("Chain(%q, %q) not ok", name, tier)
					}
				}
			}
		})
	}
}

// TestExampleTollgate pins what the main example promises in its comments.
func TestExampleTollgate(t *testing.T) {
	env := func(k string) (string, bool) { return "value-of-" + k, true }
	c, _, err := Load("../../examples/tollgate.yaml", env)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Models["deepseek-chat"].PriceSource; got != "catalogue:deepseek-chat" {
		t.Errorf("deepseek-chat PriceSource = %q, want the catalogue's deepseek entry", got)
	}
	if got := c.Models["text-embedding-3-small"].Type; got != TypeEmbedding {
		t.Errorf("text-embedding-3-small Type = %q, want embedding (from the catalogue)", got)
	}
	if got := c.Providers["deepseek"].APIKeys; len(got) != 2 {
		t.Errorf("deepseek APIKeys = %q, want two keys", got)
	}
	wantDeps := []*Deployment{
		{ID: "gpt-4o-mini-main", Model: "gpt-4o-mini", Provider: "openai", Upstream: "gpt-4o-mini", Weight: 3},
		{ID: "gpt-4o-mini-backup", Model: "gpt-4o-mini", Provider: "openai-backup", Upstream: "gpt-4o-mini", Weight: 1},
	}
	if diff := cmp.Diff(c.Models["gpt-4o-mini"].Deployments, wantDeps); diff != "" {
		t.Errorf("gpt-4o-mini Deployments (-got +want):\n%s", diff)
	}
	prod := c.Profiles["production"]
	if got := prod.Criticality["standard"]; got != TierStandard {
		t.Errorf("production criticality standard = %q, want standard", got)
	}
	wantGPT4o := Effective{
		Timeouts:      Timeouts{Connect: 5 * time.Second, FirstByte: 30 * time.Second, Idle: 30 * time.Second, Total: 120 * time.Second},
		ContextPolicy: ContextFallback,
		HoldBack:      HoldBack{Set: true, Duration: 200 * time.Millisecond, Tokens: 10},
		ContextWindow: 128000,
	}
	if diff := cmp.Diff(prod.For(c.Models["gpt-4o"]), wantGPT4o); diff != "" {
		t.Errorf("production.For(gpt-4o) (-got +want):\n%s", diff)
	}
	if got := prod.For(c.Models["deepseek-chat"]).HoldBack; got.Set {
		t.Errorf("production.For(deepseek-chat).HoldBack = %+v, want off", got)
	}
	got, _ := c.Chain("chat", TierStandard)
	if diff := cmp.Diff(got, []string{"gpt-4o-mini", "deepseek-chat"}); diff != "" {
		t.Errorf("Chain(chat, standard) (-got +want):\n%s", diff)
	}
	// Without the optional second DeepSeek key the file still loads.
	noSecond := func(k string) (string, bool) {
		if k == "DEEPSEEK_API_KEY_2" || k == "OPENAI_ORG_ID" {
			return "", false
		}
		return env(k)
	}
	c, _, err = Load("../../examples/tollgate.yaml", noSecond)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Providers["deepseek"].APIKeys; len(got) != 1 {
		t.Errorf("deepseek APIKeys = %q, want one key", got)
	}
	if _, has := c.Providers["openai"].Headers["Openai-Organization"]; has {
		t.Error("an empty OpenAI-Organization header is sent")
	}
}

// TestDocsExample loads the complete example at the end of
// docs/configuration.md, so the documentation cannot drift from the loader.
func TestDocsExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	i := strings.LastIndex(text, "```yaml\n")
	if i < 0 {
		t.Fatal("docs/configuration.md has no yaml block")
	}
	block, _, found := strings.Cut(text[i+len("```yaml\n"):], "```")
	if !found {
		t.Fatal("unterminated yaml block")
	}
	env := func(k string) (string, bool) { return "value-of-" + k, true }
	c, problems, err := Parse("configuration.md", []byte(block), env)
	if err != nil {
		t.Fatalf("docs example: %v\n%s", err, joinProblems(problems))
	}
	// The one warning the example announces: the local provider has no key.
	if len(problems) != 1 || !strings.Contains(problems[0].Message, "providers.local: no api_key") {
		t.Errorf("docs example problems, want only the no-key warning:\n%s", joinProblems(problems))
	}
	if got := c.Profiles["production"].Alerts.FallbackRate; got != 0.10 {
		t.Errorf("production fallback_rate = %v, want 0.10", got)
	}
}

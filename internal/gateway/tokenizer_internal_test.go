package gateway

import (
	"log/slog"
	"testing"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/meter"
)

// The snapshot's tokenizer for each model is the one meter.TokenizerFor
// picks from its provider's kind and upstream name.
func TestSnapshotTokenizers(t *testing.T) {
	cfg, problems, err := config.Parse("t.yaml", []byte(`
providers:
  oa: {kind: openai, base_url: "http://127.0.0.1:1/v1", api_key: k}
  an: {kind: anthropic, base_url: "http://127.0.0.1:1", api_key: k}
models:
  fast: {provider: oa, upstream: gpt-4o-mini, context_window: 128000, price: {input: 1, output: 1}}
  old: {provider: oa, upstream: GPT-4-0613, context_window: 8192, price: {input: 1, output: 1}}
  llama: {provider: oa, upstream: meta/Llama-2-70b, context_window: 4096, price: {input: 1, output: 1}}
  claude: {provider: an, upstream: claude-3-5-sonnet-20240620, context_window: 200000, price: {input: 1, output: 1}}
  opus: {provider: an, upstream: claude-opus-4-7, context_window: 200000, price: {input: 1, output: 1}}
tiers:
  budget: [fast]
  standard: [fast]
  premium: [opus]
`), func(string) (string, bool) { return "", false })
	if err != nil || len(problems) > 0 {
		t.Fatalf("config: %v %v", err, problems)
	}
	g, err := New(cfg, Options{MasterKey: "sk-test", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(t.Context()) })
	st := g.state.Load()
	distinct := map[*meter.Tokenizer]bool{}
	for name, m := range cfg.Models {
		want := meter.TokenizerFor(cfg.Providers[m.Provider].Kind, m.Upstream)
		got := st.tokenizer(m)
		if got != want {
			t.Errorf("model %s: tokenizer %p, want %p", name, got, want)
		}
		if _, cached := st.tokenizers[m]; !cached {
			t.Errorf("model %s: tokenizer not chosen at load", name)
		}
		distinct[got] = true
	}
	if len(distinct) < 4 {
		t.Errorf("%d distinct tokenizers for five models of four families; the test no longer tells them apart", len(distinct))
	}
	// A model that is not the configuration's own is still served.
	other := &config.Model{Name: "x", Provider: "an", Upstream: "claude-3-haiku"}
	if got, want := st.tokenizer(other), meter.TokenizerFor(config.KindAnthropic, "claude-3-haiku"); got != want {
		t.Errorf("unknown model: %p, want %p", got, want)
	}
}

package route

import (
	"errors"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
)

const yaml = `
providers:
  p: {kind: openai, base_url: "http://127.0.0.1:1/v1"}
models:
  a: {provider: p, price: 0}
  b: {provider: p, price: 0, fallbacks: [c]}
  c: {provider: p, price: 0}
tiers: {budget: [a, b], standard: [b], premium: [c, a]}
aliases:
  chat: {premium: [c]}
`

func TestResolve(t *testing.T) {
	cfg, _, err := config.Parse("t.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	prof, _ := cfg.Profile("dev")
	cases := []struct {
		name, model, tier, crit string
		wantTier                string
		want                    []string
		wantErr                 any
	}{
		{"default tier auto", "auto", "", "", "budget", []string{"a", "b"}, nil},
		{"alias tier entry", "chat", "premium", "", "premium", []string{"c"}, nil},
		{"alias falls back to tier chain", "chat", "standard", "", "standard", []string{"b"}, nil},
		{"model with fallbacks", "b", "premium", "", "premium", []string{"b", "c"}, nil},
		{"critical maps to premium", "auto", "", "critical", "premium", []string{"c", "a"}, nil},
		{"background maps to budget", "auto", "", "background", "budget", []string{"a", "b"}, nil},
		{"standard maps to the default tier", "auto", "", "standard", "budget", []string{"a", "b"}, nil},
		{"tier header wins over criticality", "auto", "standard", "critical", "standard", []string{"b"}, nil},
		{"unknown model", "zzz", "", "", "", nil, &UnknownModelError{}},
		{"unknown tier", "a", "gold", "", "", nil, &UnknownTierError{}},
		{"unknown criticality", "a", "", "urgent", "", nil, &UnknownCriticalityError{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Resolve(cfg, prof, Request{Model: tc.model, Tier: tc.tier, Criticality: tc.crit})
			switch tc.wantErr.(type) {
			case *UnknownModelError:
				if _, ok := errors.AsType[*UnknownModelError](err); !ok {
					t.Fatalf("err = %v, want UnknownModelError", err)
				}
				return
			case *UnknownTierError:
				if _, ok := errors.AsType[*UnknownTierError](err); !ok {
					t.Fatalf("err = %v, want UnknownTierError", err)
				}
				return
			case *UnknownCriticalityError:
				if _, ok := errors.AsType[*UnknownCriticalityError](err); !ok {
					t.Fatalf("err = %v, want UnknownCriticalityError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range p.Candidates {
				got = append(got, m.Name)
			}
			if p.Tier != tc.wantTier || len(got) != len(tc.want) {
				t.Fatalf("plan = %s %v, want %s %v", p.Tier, got, tc.wantTier, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("candidate %d = %s, want %s", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	if got := Backoff(3, 1500*time.Millisecond); got != 1500*time.Millisecond {
		t.Errorf("Backoff with Retry-After = %v, want the upstream's wait", got)
	}
	for n := range 20 {
		ceil := min(backoffBase<<min(n, 10), backoffCap)
		for range 50 {
			if d := Backoff(n, 0); d < ceil/2 || d > ceil {
				t.Fatalf("Backoff(%d) = %v, want within [%v, %v]", n, d, ceil/2, ceil)
			}
		}
	}
}

func BenchmarkResolve(b *testing.B) {
	cfg, _, err := config.Parse("t.yaml", []byte(yaml), nil)
	if err != nil {
		b.Fatal(err)
	}
	prof, _ := cfg.Profile("dev")
	req := Request{Model: "chat", Criticality: "critical"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Resolve(cfg, prof, req); err != nil {
			b.Fatal(err)
		}
	}
}

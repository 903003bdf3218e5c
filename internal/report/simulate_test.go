package report

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/meter"
	"github.com/tollgate-gw/tollgate/internal/route"
)

// otherYAML is the configuration traffic is re-priced in. Prices are USD
// per million tokens, so a token of cheap's input is $0.10/1e6 = 100 nanos
// ÷ 1000 = 0.1 nano; meter.PerMillion.Of(n) = n × micro-$/M ÷ 1000 nanos.
const otherYAML = `
providers:
  p: {kind: openai, base_url: "http://127.0.0.1:1/v1"}
models:
  cheap: {provider: p, price: {input: 0.10, output: 0.40, cached_input: 0.05}}
  mid:   {provider: p, price: {input: 1, output: 4}}
  dear:  {provider: p, price: {input: 10, output: 30, cached_input: 1}}
tiers:
  budget: [cheap]
  standard: [mid, cheap]
  premium: [dear, mid]
aliases:
  chat: {budget: [mid]}
profiles:
  production: {default_tier: premium}
`

func parse(t *testing.T, name, yaml string) *config.Config {
	t.Helper()
	cfg, _, err := config.Parse(name, []byte(yaml), nil)
	if err != nil {
		t.Fatalf("config.Parse(%s): %v", name, err)
	}
	return cfg
}

func profile(t *testing.T, cfg *config.Config, name string) *config.Profile {
	t.Helper()
	prof, ok := cfg.Profile(name)
	if !ok {
		t.Fatalf("no profile %q", name)
	}
	return prof
}

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// ledger is a hand-made month of traffic, with each record's simulated
// cost in production (default tier premium; critical → premium, background
// → budget) worked out by hand.
func ledger() []meter.Record {
	rec := func(day int, id, team, requested, tier, crit, served string, prompt, completion, cached int, cost meter.Nanos) meter.Record {
		return meter.Record{Time: t0.Add(time.Duration(day) * 24 * time.Hour), RequestID: id, TeamID: team,
			RequestedModel: requested, Tier: tier, Criticality: crit, ServedModel: served, Status: 200,
			PromptTokens: prompt, Completion: completion, CachedTokens: cached, Cost: cost}
	}
	r4 := rec(3, "r4", "team_b", "auto", "standard", "critical", "old-mid", 4000, 2000, 0, 3_000_000)
	r4.Downgraded = true
	r6 := rec(5, "r6", "team_b", "auto", "premium", "", "", 0, 0, 0, 0)
	r6.Status = 429
	return []meter.Record{
		// Recorded tier premium, no criticality: premium → [dear, mid] → dear.
		// 800 uncached × $10/M = 8_000_000; 200 cached × $1/M = 200_000;
		// 500 out × $30/M = 15_000_000. Simulated 23_200_000.
		rec(0, "r1", "team_a", "auto", "premium", "", "old-dear", 1000, 500, 200, 50_000_000),
		// Criticality background maps to budget here (whatever the recorded
		// tier): alias chat in budget → [mid]. 2000 × $1/M = 2_000_000;
		// 1000 × $4/M = 4_000_000. Simulated 6_000_000.
		rec(1, "r2", "team_a", "chat", "standard", "background", "old-mid", 2000, 1000, 0, 10_000_000),
		// A model named directly resolves to itself in every tier.
		// 100 × $10/M = 1_000_000; 10 × $30/M = 300_000. Simulated 1_300_000.
		rec(2, "r3", "team_b", "dear", "budget", "", "dear", 100, 10, 0, 1_300_000),
		// critical → premium, downgraded one step → standard → [mid, cheap]
		// → mid. 4000 × $1/M = 4_000_000; 2000 × $4/M = 8_000_000.
		// Simulated 12_000_000.
		r4,
		// gpt-4o does not exist here: unmatched, with its 777 nanos.
		rec(4, "r5", "team_b", "gpt-4o", "premium", "", "gpt-4o", 10, 1, 0, 777),
		// A 429: skipped.
		r6,
		// A 200 without tokens (a stream cut before its usage, charged its
		// reservation): skipped, with its 123_456 nanos.
		rec(6, "r7", "team_a", "auto", "premium", "", "old-dear", 0, 0, 0, 123_456),
		// The master key (team ""), no tier, no criticality: the profile's
		// default, premium → dear. 1_000_000 × $10/M = 10_000_000_000.
		rec(9, "r8", "", "auto", "", "", "old-dear", 1_000_000, 0, 0, 2_000_000_000),
	}
}

func TestSimulate(t *testing.T) {
	cfg := parse(t, "other.yaml", otherYAML)
	recs := ledger()
	// Any order: the result does not depend on it.
	slices.Reverse(recs)
	res, err := Simulate(slices.Values(recs), cfg, profile(t, cfg, "production"))
	if err != nil {
		t.Fatal(err)
	}
	pct := func(p float64) *float64 { return &p }
	line := func(team, model, sim string, n int64, actual, simulated meter.Nanos, p *float64) Line {
		return Line{Team: team, Model: model, SimulatedModel: sim, Requests: n, Actual: actual,
			Simulated: simulated, Difference: simulated - actual, DifferencePct: p}
	}
	want := Result{
		Profile: "production",
		Records: 8,
		First:   t0,
		Last:    t0.Add(9 * 24 * time.Hour),
		// r1 + r2 + r3 + r4 + r8.
		// Actual: 50_000_000 + 10_000_000 + 1_300_000 + 3_000_000 + 2_000_000_000 = 2_064_300_000.
		// Simulated: 23_200_000 + 6_000_000 + 1_300_000 + 12_000_000 + 10_000_000_000 = 10_042_500_000.
		// Difference 7_978_200_000, 7_978_200_000 / 2_064_300_000 = 386.484...%.
		Total:     line("", "", "", 5, 2_064_300_000, 10_042_500_000, pct(100*7_978_200_000.0/2_064_300_000)),
		Skipped:   Tally{Requests: 2, Actual: 123_456}, // r6, r7
		Unmatched: Tally{Requests: 1, Actual: 777},     // r5
		Teams: []Line{
			// r8: 2_000_000_000 → 10_000_000_000, +400%.
			line("", "", "", 1, 2_000_000_000, 10_000_000_000, pct(400)),
			// r1 + r2: 60_000_000 → 29_200_000, -30_800_000 = -51.33%.
			line("team_a", "", "", 2, 60_000_000, 29_200_000, pct(-100*30_800_000.0/60_000_000)),
			// r3 + r4: 4_300_000 → 13_300_000, +9_000_000 = +209.3%.
			line("team_b", "", "", 2, 4_300_000, 13_300_000, pct(100*9_000_000.0/4_300_000)),
		},
		Models: []Line{
			line("", "dear", "dear", 1, 1_300_000, 1_300_000, pct(0)),                                              // r3
			line("", "old-dear", "dear", 2, 2_050_000_000, 10_023_200_000, pct(100*7_973_200_000.0/2_050_000_000)), // r1 + r8
			line("", "old-mid", "mid", 2, 13_000_000, 18_000_000, pct(100*5_000_000.0/13_000_000)),                 // r2 + r4
		},
		UnmatchedModels: []Unmatched{
			{RequestedModel: "gpt-4o", Reason: `model "gpt-4o" does not exist`, Tally: Tally{Requests: 1, Actual: 777}},
		},
	}
	if diff := cmp.Diff(res, want, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
		t.Errorf("Simulate(ledger) (-got +want):\n%s", diff)
	}
	// Every record is in exactly one place.
	if n := res.Total.Requests + res.Skipped.Requests + res.Unmatched.Requests; n != res.Records {
		t.Errorf("re-priced + skipped + unmatched = %d, want %d records", n, res.Records)
	}
}

func TestSimulateEmpty(t *testing.T) {
	cfg := parse(t, "other.yaml", otherYAML)
	res, err := Simulate(slices.Values([]meter.Record(nil)), cfg, profile(t, cfg, "dev"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 0 || res.Total.DifferencePct != nil || len(res.Teams) != 0 || res.Teams == nil ||
		res.UnmatchedModels == nil || !res.First.IsZero() {
		t.Errorf("Simulate(nothing) = %+v, want zeros, empty lists and no percentage", res)
	}
	if _, err := Simulate(slices.Values([]meter.Record(nil)), nil, profile(t, cfg, "dev")); err == nil {
		t.Error("Simulate(nil config) = nil error")
	}
	if _, err := Simulate(slices.Values([]meter.Record(nil)), cfg, nil); err == nil {
		t.Error("Simulate(nil profile) = nil error")
	}
}

// TestSimulateProfiles re-prices the same record under each profile: only
// the criticality mapping and the default tier move it.
func TestSimulateProfiles(t *testing.T) {
	cfg := parse(t, "other.yaml", otherYAML)
	// 1000 in + 1000 out: cheap 100_000 + 400_000 = 500_000; mid 1_000_000 +
	// 4_000_000 = 5_000_000; dear 10_000_000 + 30_000_000 = 40_000_000.
	r := meter.Record{Time: t0, RequestID: "r", RequestedModel: "auto", Status: 200,
		PromptTokens: 1000, Completion: 1000, Cost: 1}
	for _, c := range []struct {
		profile, tier, crit string
		want                meter.Nanos
	}{
		{"dev", "", "", 500_000},                // default budget
		{"staging", "", "", 5_000_000},          // default standard
		{"production", "", "", 40_000_000},      // default premium
		{"dev", "premium", "", 40_000_000},      // the recorded tier stands
		{"dev", "premium", "standard", 500_000}, // standard → dev's default, budget
		{"production", "budget", "standard", 40_000_000},
		{"dev", "budget", "critical", 40_000_000},
		{"production", "premium", "background", 500_000},
		{"dev", "standard", "urgent", 5_000_000}, // a criticality no profile knows: the recorded tier
	} {
		r := r
		r.Tier, r.Criticality = c.tier, c.crit
		res, err := Simulate(slices.Values([]meter.Record{r}), cfg, profile(t, cfg, c.profile))
		if err != nil {
			t.Fatal(err)
		}
		if res.Total.Simulated != c.want {
			t.Errorf("profile %s, tier %q, criticality %q: simulated %d, want %d", c.profile, c.tier, c.crit, res.Total.Simulated, c.want)
		}
	}
}

func TestRequest(t *testing.T) {
	cfg := parse(t, "other.yaml", otherYAML)
	prod := profile(t, cfg, "production")
	for _, c := range []struct {
		name string
		rec  meter.Record
		want route.Request
	}{
		{"tier only", meter.Record{RequestedModel: "m", Tier: "budget"}, route.Request{Model: "m", Tier: "budget"}},
		{"nothing: the profile's default", meter.Record{RequestedModel: "m"}, route.Request{Model: "m"}},
		{"criticality wins", meter.Record{RequestedModel: "m", Tier: "budget", Criticality: "critical"},
			route.Request{Model: "m", Criticality: "critical"}},
		{"downgraded criticality", meter.Record{RequestedModel: "m", Tier: "standard", Criticality: "critical", Downgraded: true},
			route.Request{Model: "m", Criticality: "critical", Downgrade: 1}},
		{"downgraded tier is already cheaper", meter.Record{RequestedModel: "m", Tier: "standard", Downgraded: true},
			route.Request{Model: "m", Tier: "standard"}},
		{"unknown criticality", meter.Record{RequestedModel: "m", Tier: "premium", Criticality: "urgent"},
			route.Request{Model: "m", Tier: "premium"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Request(c.rec, prod); got != c.want {
				t.Errorf("Request(%+v) = %+v, want %+v", c.rec, got, c.want)
			}
		})
	}
}

// TestSimulateUnmatched: an unknown model and a tier that is not one are
// unmatched, by requested model and reason; an alias known here matches.
func TestSimulateUnmatched(t *testing.T) {
	cfg := parse(t, "other.yaml", otherYAML)
	recs := []meter.Record{
		{RequestedModel: "gpt-4o", Status: 200, PromptTokens: 1, Cost: 10},
		{RequestedModel: "gpt-4o", Status: 200, PromptTokens: 1, Cost: 20},
		{RequestedModel: "claude", Status: 200, Completion: 1, Cost: 5},
		{RequestedModel: "auto", Tier: "gold", Status: 200, PromptTokens: 1, Cost: 1},
		{RequestedModel: "", Status: 200, PromptTokens: 1, Cost: 2},
		{RequestedModel: "chat", Status: 200, PromptTokens: 1, Cost: 3},
	}
	res, err := Simulate(slices.Values(recs), cfg, profile(t, cfg, "dev"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Unmatched{
		{RequestedModel: "", Reason: `model "" does not exist`, Tally: Tally{1, 2}},
		{RequestedModel: "auto", Reason: `tier "gold" does not exist; use budget, standard or premium`, Tally: Tally{1, 1}},
		{RequestedModel: "claude", Reason: `model "claude" does not exist`, Tally: Tally{1, 5}},
		{RequestedModel: "gpt-4o", Reason: `model "gpt-4o" does not exist`, Tally: Tally{2, 30}},
	}
	if diff := cmp.Diff(res.UnmatchedModels, want); diff != "" {
		t.Errorf("unmatched (-got +want):\n%s", diff)
	}
	if res.Unmatched != (Tally{5, 38}) || res.Total.Requests != 1 {
		t.Errorf("unmatched %+v, re-priced %d; want 5 requests of 38 nanos and 1", res.Unmatched, res.Total.Requests)
	}
}

// TestWithTiers re-maps the tiers with a second file: its chains, base's
// prices, and a model only the map defines.
func TestWithTiers(t *testing.T) {
	base := parse(t, "other.yaml", otherYAML)
	tierMap := parse(t, "tiers.yaml", `
providers:
  q: {kind: openai, base_url: "http://127.0.0.1:2/v1"}
models:
  mid:   {provider: q, price: {input: 100, output: 100}}  # base's price wins
  extra: {provider: q, price: {input: 2, output: 2}}
tiers:
  budget: [mid]
  standard: [extra]
  premium: [mid]
`)
	cfg := WithTiers(base, tierMap)
	// 1000 in + 1000 out: mid at base's $1/$4 = 5_000_000; extra at $2/$2
	// = 4_000_000.
	for tier, want := range map[string]meter.Nanos{"budget": 5_000_000, "standard": 4_000_000, "premium": 5_000_000} {
		r := meter.Record{RequestedModel: "auto", Tier: tier, Status: 200, PromptTokens: 1000, Completion: 1000}
		res, err := Simulate(slices.Values([]meter.Record{r}), cfg, profile(t, cfg, "dev"))
		if err != nil {
			t.Fatal(err)
		}
		if res.Total.Simulated != want || res.Unmatched.Requests != 0 {
			t.Errorf("tier %s: simulated %d (unmatched %d), want %d", tier, res.Total.Simulated, res.Unmatched.Requests, want)
		}
	}
	// The aliases are the map's: it has none, so chat is unknown.
	r := meter.Record{RequestedModel: "chat", Status: 200, PromptTokens: 1}
	if res, _ := Simulate(slices.Values([]meter.Record{r}), cfg, profile(t, cfg, "dev")); res.Unmatched.Requests != 1 {
		t.Errorf("alias chat after a tier map without aliases: %+v, want unmatched", res)
	}
	if base.Tiers["budget"][0] != "cheap" || base.Models["extra"] != nil {
		t.Error("WithTiers modified its base")
	}
}

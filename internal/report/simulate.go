// Package report answers questions about the usage ledger that need more
// than its sums: what the same traffic would have cost under another
// configuration or profile. It reads records and configurations and
// computes; it knows nothing of the store or of output formats, so every
// answer can be checked on a hand-made list of records.
package report

import (
	"cmp"
	"errors"
	"iter"
	"maps"
	"slices"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
	"github.com/tollgate-gw/tollgate/internal/meter"
	"github.com/tollgate-gw/tollgate/internal/route"
	"github.com/tollgate-gw/tollgate/internal/wire"
)

// Simulate re-prices recorded traffic as if other, under profile prof, had
// served it; see Simulator for the rules. The records may come in any
// order.
func Simulate(recs iter.Seq[meter.Record], other *config.Config, prof *config.Profile) (Result, error) {
	s, err := NewSimulator(other, prof)
	if err != nil {
		return Result{}, err
	}
	for r := range recs {
		s.Add(r)
	}
	return s.Result(), nil
}

// Simulator re-prices ledger records one at a time, so that a month of
// traffic streams through it without being held in memory: its size grows
// with the number of teams and models, not of records. Create it with
// NewSimulator; it is not safe for concurrent use.
//
// The rules, for each record:
//
//   - A record that failed (status 400 or above) or has no tokens is
//     skipped: counted, with its recorded cost, in Result.Skipped.
//   - The tier is chosen as the other profile would: when the record has a
//     criticality (from X-Tollgate-Criticality or its key's default) that
//     the profile maps, the profile's tier for it, one step cheaper if the
//     record was downgraded by its team's budget; otherwise the recorded
//     tier (already downgraded), or the profile's default tier when none was
//     recorded. The ledger does not say whether an X-Tollgate-Tier header
//     overrode the criticality, so a record that had both is re-tiered by
//     its criticality.
//   - The requested model and that tier are resolved in the other
//     configuration with route.Resolve. A record that does not resolve (the
//     name is unknown there, or the tier's chain is empty) is unmatched:
//     counted, with its recorded cost, in Result.Unmatched and by requested
//     model in Result.UnmatchedModels, never dropped silently.
//   - The simulated cost is the record's prompt, completion and cached
//     tokens at the first candidate's price (meter.Price.Cost): the primary,
//     as if it served. Retries, fallbacks and the context-window policy are
//     not replayed, and cache-write tokens, which the ledger does not keep,
//     count as uncached prompt tokens.
//   - The actual cost is the recorded one.
type Simulator struct {
	cfg  *config.Config
	prof *config.Profile

	res       Result
	teams     map[string]*Line
	models    map[[2]string]*Line
	unmatched map[[2]string]*Unmatched // by requested model and reason
}

// NewSimulator returns a Simulator pricing in other, with prof (one of
// other's profiles, or any profile) choosing tiers.
func NewSimulator(other *config.Config, prof *config.Profile) (*Simulator, error) {
	switch {
	case other == nil:
		return nil, errors.New("simulate: no configuration")
	case prof == nil:
		return nil, errors.New("simulate: no profile")
	}
	return &Simulator{cfg: other, prof: prof, res: Result{Profile: prof.Name},
		teams: map[string]*Line{}, models: map[[2]string]*Line{}, unmatched: map[[2]string]*Unmatched{}}, nil
}

// Add re-prices one record.
func (s *Simulator) Add(r meter.Record) {
	s.res.Records++
	if s.res.First.IsZero() || r.Time.Before(s.res.First) {
		s.res.First = r.Time
	}
	if r.Time.After(s.res.Last) {
		s.res.Last = r.Time
	}
	if r.Status >= 400 || r.PromptTokens+r.Completion <= 0 {
		s.res.Skipped.add(r.Cost)
		return
	}
	plan, err := route.Resolve(s.cfg, s.prof, Request(r, s.prof))
	if err != nil {
		s.unmatch(r, err.Error())
		return
	}
	primary := plan.Candidates[0]
	u := wire.Usage{PromptTokens: r.PromptTokens, CompletionTokens: r.Completion,
		TotalTokens: r.PromptTokens + r.Completion}
	if r.CachedTokens > 0 {
		u.PromptDetails = &wire.PromptTokensDetails{CachedTokens: r.CachedTokens}
	}
	simulated := primary.Price.Cost(&u)

	s.res.Total.add(r.Cost, simulated)
	team := s.teams[r.TeamID]
	if team == nil {
		team = &Line{Team: r.TeamID}
		s.teams[r.TeamID] = team
	}
	team.add(r.Cost, simulated)
	k := [2]string{r.ServedModel, primary.Name}
	model := s.models[k]
	if model == nil {
		model = &Line{Model: r.ServedModel, SimulatedModel: primary.Name}
		s.models[k] = model
	}
	model.add(r.Cost, simulated)
}

// Request is the routing request the profile prof would have seen for r:
// by r's criticality when prof maps it (downgraded one step if r was),
// else in r's recorded tier ("" for prof's default). See Simulator.
func Request(r meter.Record, prof *config.Profile) route.Request {
	req := route.Request{Model: r.RequestedModel}
	if _, mapped := prof.Criticality[r.Criticality]; mapped && r.Criticality != "" {
		req.Criticality = r.Criticality
		if r.Downgraded {
			req.Downgrade = 1
		}
		return req
	}
	req.Tier = r.Tier
	return req
}

func (s *Simulator) unmatch(r meter.Record, reason string) {
	s.res.Unmatched.add(r.Cost)
	k := [2]string{r.RequestedModel, reason}
	u := s.unmatched[k]
	if u == nil {
		u = &Unmatched{RequestedModel: r.RequestedModel, Reason: reason}
		s.unmatched[k] = u
	}
	u.add(r.Cost)
}

// Result returns the simulation of the records added so far: teams by id,
// models by served then simulated model, unmatched by requested model then
// reason. It may be called again after more records.
func (s *Simulator) Result() Result {
	res := s.res
	res.Total.finish()
	res.Teams = sortedLines(s.teams, func(a, b *Line) int { return cmp.Compare(a.Team, b.Team) })
	res.Models = sortedLines(s.models, func(a, b *Line) int {
		return cmp.Or(cmp.Compare(a.Model, b.Model), cmp.Compare(a.SimulatedModel, b.SimulatedModel))
	})
	res.UnmatchedModels = make([]Unmatched, 0, len(s.unmatched))
	for _, u := range s.unmatched {
		res.UnmatchedModels = append(res.UnmatchedModels, *u)
	}
	slices.SortFunc(res.UnmatchedModels, func(a, b Unmatched) int {
		return cmp.Or(cmp.Compare(a.RequestedModel, b.RequestedModel), cmp.Compare(a.Reason, b.Reason))
	})
	return res
}

func sortedLines[K comparable](m map[K]*Line, order func(a, b *Line) int) []Line {
	ptrs := slices.SortedFunc(maps.Values(m), order)
	out := make([]Line, len(ptrs))
	for i, l := range ptrs {
		out[i] = *l
		out[i].finish()
	}
	return out
}

// Result is a simulation. Every record added is in exactly one of Total,
// Skipped and Unmatched, so their requests add up to Records and their
// actual costs to the ledger's.
type Result struct {
	Profile string `json:"profile"`
	// Records is how many records were read; First and Last are the times
	// of the earliest and latest (zero for none).
	Records   int64     `json:"records"`
	First     time.Time `json:"first"`
	Last      time.Time `json:"last"`
	Total     Line      `json:"total"`   // the re-priced records
	Skipped   Tally     `json:"skipped"` // failed or without tokens: not re-priced
	Unmatched Tally     `json:"unmatched"`
	Teams     []Line    `json:"teams"`  // re-priced records by team
	Models    []Line    `json:"models"` // re-priced records by served → simulated model
	// UnmatchedModels breaks Unmatched down by requested model and reason.
	UnmatchedModels []Unmatched `json:"unmatched_models"`
}

// Line is a group of re-priced records. Difference and DifferencePct are
// filled by Simulator.Result.
type Line struct {
	Team           string      `json:"team,omitempty"`            // a team's line: its id ("" for the master key)
	Model          string      `json:"model,omitempty"`           // a model's line: the model that served
	SimulatedModel string      `json:"simulated_model,omitempty"` // … and the one that would have
	Requests       int64       `json:"requests"`
	Actual         meter.Nanos `json:"actual_nanos"`
	Simulated      meter.Nanos `json:"simulated_nanos"`
	Difference     meter.Nanos `json:"difference_nanos"` // Simulated - Actual
	// DifferencePct is Difference as a percentage of Actual; nil when
	// Actual is zero.
	DifferencePct *float64 `json:"difference_pct"`
}

func (l *Line) add(actual, simulated meter.Nanos) {
	l.Requests++
	l.Actual += actual
	l.Simulated += simulated
}

func (l *Line) finish() {
	l.Difference = l.Simulated - l.Actual
	l.DifferencePct = Percent(l.Difference, l.Actual)
}

// Percent returns part as a percentage of whole, or nil when whole is zero.
func Percent(part, whole meter.Nanos) *float64 {
	if whole == 0 {
		return nil
	}
	p := float64(part) / float64(whole) * 100
	return &p
}

// Tally counts records that were not re-priced, with their recorded cost.
type Tally struct {
	Requests int64       `json:"requests"`
	Actual   meter.Nanos `json:"actual_nanos"`
}

func (t *Tally) add(actual meter.Nanos) {
	t.Requests++
	t.Actual += actual
}

// Unmatched is the unmatched records of one requested model, for one
// reason (route.Resolve's error).
type Unmatched struct {
	RequestedModel string `json:"requested_model"`
	Reason         string `json:"reason"`
	Tally
}

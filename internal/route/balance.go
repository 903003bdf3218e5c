package route

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-gw/tollgate/internal/config"
)

// ewmaAlpha is the weight of a new latency sample in the moving average: 0.3
// means the last ~6 samples carry 90% of it, so a deployment that slows
// down (or recovers) is noticed within a handful of requests.
const ewmaAlpha = 0.3

// staleAfter is how long a deployment's latency average stays trusted
// without a new sample. Under the latency strategy a slow deployment may
// never win a pair and so never be measured again; once its average is stale
// it scores like a new deployment (the lowest known latency), is tried once
// and is measured afresh. The cost is about one attempt per staleAfter.
const staleAfter = 30 * time.Second

// Balancer orders a model's deployments for each request, by weight or by
// latency, and keeps the latency averages and in-flight counts the latency
// strategy needs. It is safe for concurrent use and starts no goroutines.
//
// Per-deployment state is created on first use and never removed, so memory
// is bounded by the number of distinct deployment IDs passed in (the
// configuration's). The zero value is not usable; call NewBalancer.
type Balancer struct {
	now  func() time.Time
	base time.Time
	rnd  func() float64

	// mu guards the map m (not the entries, which are atomics).
	mu sync.RWMutex
	m  map[string]*deployStats
}

// deployStats is one deployment's load and latency.
type deployStats struct {
	ewma     atomic.Int64 // nanoseconds; 0 = no sample yet
	inflight atomic.Int64
	sampled  atomic.Int64 // time since Balancer.base of the last sample, ns
}

// NewBalancer returns a Balancer that reads time from now and random numbers
// in [0, 1) from rnd. A nil now means time.Now; a nil rnd means
// math/rand/v2's Float64. rnd is called concurrently when Order is, so an
// injected one must be safe for that (or Order used from one goroutine, as
// in tests).
func NewBalancer(now func() time.Time, rnd func() float64) *Balancer {
	if now == nil {
		now = time.Now
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	return &Balancer{now: now, base: now(), rnd: rnd, m: map[string]*deployStats{}}
}

// Order returns m's deployments in the order the gateway should try them:
// the chosen one first, then the others as fallbacks within the model. It
// skips none; the caller filters with the breakers. A nil healthy means all
// are healthy; if none is, all are treated as healthy.
//
// Under config.BalanceWeighted the first is a weighted random choice among
// the healthy deployments; the other healthy ones follow in descending
// weight, then the unhealthy ones in descending weight (ties keep config
// order). Under config.BalanceLatency two distinct healthy deployments are
// sampled by weight and the one with the lower score goes first, score being
// EWMA latency × (in-flight + 1); a deployment with no recent sample scores
// with the lowest latency known among m's deployments, so new ones get
// tried. The other healthy ones follow by ascending score, then the
// unhealthy ones by ascending score.
//
// With one deployment Order returns m.Deployments itself without
// allocating; otherwise a new slice. Either way the caller must not modify
// it.
func (b *Balancer) Order(m *config.Model, healthy func(*config.Deployment) bool) []*config.Deployment {
	ds := m.Deployments
	if len(ds) <= 1 {
		return ds
	}
	out := make([]*config.Deployment, len(ds))
	// Healthy deployments go to the front of out, unhealthy ones to the back.
	nh := 0
	for i, d := range ds {
		if healthy == nil || healthy(d) {
			out[nh] = d
			nh++
		} else {
			out[len(ds)-1-(i-nh)] = d
		}
	}
	if nh == 0 {
		copy(out, ds)
		nh = len(ds)
	} else {
		reverse(out[nh:]) // back to config order
	}
	if m.Balancing == config.BalanceLatency {
		b.orderLatency(out, nh)
	} else {
		b.orderWeighted(out, nh)
	}
	return out
}

// orderWeighted puts a weighted pick from out[:nh] first and sorts the rest
// of each group by descending weight.
func (b *Balancer) orderWeighted(out []*config.Deployment, nh int) {
	i := b.pickWeighted(out[:nh])
	out[0], out[i] = out[i], out[0]
	byWeight := func(x, y *config.Deployment) bool { return weight(x) > weight(y) }
	sortStable(out[1:nh], byWeight)
	sortStable(out[nh:], byWeight)
}

// orderLatency applies power of two choices to out[:nh] and sorts the rest
// of each group by ascending score.
func (b *Balancer) orderLatency(out []*config.Deployment, nh int) {
	scores := b.scores(out)
	lower := func(x, y int) bool { return scores[x] < scores[y] }
	if nh >= 2 {
		i := b.pickWeighted(out[:nh])
		swap(out, scores, 0, i)
		j := 1 + b.pickWeighted(out[1:nh])
		if scores[j] < scores[0] {
			swap(out, scores, 0, j)
		}
	}
	sortStableIdx(out, scores, 1, nh, lower)
	sortStableIdx(out, scores, nh, len(out), lower)
}

// scores returns latency × (in-flight + 1) for each of ds, in ns.
func (b *Balancer) scores(ds []*config.Deployment) []float64 {
	now := b.now().Sub(b.base).Nanoseconds()
	lat := make([]float64, len(ds))
	infl := make([]float64, len(ds))
	lowest := 0.0
	b.mu.RLock()
	for i, d := range ds {
		s := b.m[d.ID]
		if s == nil {
			continue
		}
		infl[i] = float64(s.inflight.Load())
		if e := s.ewma.Load(); e > 0 && now-s.sampled.Load() < int64(staleAfter) {
			lat[i] = float64(e)
			if lowest == 0 || lat[i] < lowest {
				lowest = lat[i]
			}
		}
	}
	b.mu.RUnlock()
	// With nothing known, latency 1ns for all still lets in-flight decide.
	lowest = max(lowest, 1)
	for i := range lat {
		if lat[i] == 0 {
			lat[i] = lowest
		}
		lat[i] *= infl[i] + 1
	}
	return lat
}

// pickWeighted returns the index of a weighted random choice among ds.
func (b *Balancer) pickWeighted(ds []*config.Deployment) int {
	total := 0
	for _, d := range ds {
		total += weight(d)
	}
	r := b.rnd() * float64(total)
	for i, d := range ds {
		r -= float64(weight(d))
		if r < 0 {
			return i
		}
	}
	return len(ds) - 1 // rounding
}

// Start marks an attempt in flight on d. The returned done ends it; when ok
// it feeds latency (time to first byte for a stream, to the complete answer
// otherwise) into d's moving average. Call done exactly once; later calls do
// nothing.
func (b *Balancer) Start(d *config.Deployment) (done func(latency time.Duration, ok bool)) {
	s := b.stats(d.ID)
	s.inflight.Add(1)
	var ended atomic.Bool
	return func(latency time.Duration, ok bool) {
		if !ended.CompareAndSwap(false, true) {
			return
		}
		s.inflight.Add(-1)
		if ok && latency > 0 {
			s.observe(latency, b.now().Sub(b.base))
		}
	}
}

// Snapshot returns deployment id's latency average (0 before the first
// sample) and its attempts in flight, for explain.
func (b *Balancer) Snapshot(id string) (ewma time.Duration, inflight int64) {
	b.mu.RLock()
	s := b.m[id]
	b.mu.RUnlock()
	if s == nil {
		return 0, 0
	}
	return time.Duration(s.ewma.Load()), s.inflight.Load()
}

func (b *Balancer) stats(id string) *deployStats {
	b.mu.RLock()
	s := b.m[id]
	b.mu.RUnlock()
	if s != nil {
		return s
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if s = b.m[id]; s == nil {
		s = &deployStats{}
		b.m[id] = s
	}
	return s
}

// observe folds one latency sample into the average.
func (s *deployStats) observe(latency, at time.Duration) {
	x := int64(latency)
	for {
		old := s.ewma.Load()
		next := x
		if old > 0 {
			next = old + int64(ewmaAlpha*float64(x-old))
		}
		if s.ewma.CompareAndSwap(old, max(next, 1)) {
			break
		}
	}
	s.sampled.Store(int64(at))
}

// weight is d's weight; a non-positive one (only in a hand-built config)
// counts as 1.
func weight(d *config.Deployment) int {
	return max(d.Weight, 1)
}

func reverse(ds []*config.Deployment) {
	for i, j := 0, len(ds)-1; i < j; i, j = i+1, j-1 {
		ds[i], ds[j] = ds[j], ds[i]
	}
}

func swap(ds []*config.Deployment, scores []float64, i, j int) {
	ds[i], ds[j] = ds[j], ds[i]
	scores[i], scores[j] = scores[j], scores[i]
}

// sortStable is an insertion sort: deployments per model are few, and it
// neither allocates nor reorders ties.
func sortStable(ds []*config.Deployment, less func(x, y *config.Deployment) bool) {
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0 && less(ds[j], ds[j-1]); j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
}

// sortStableIdx insertion-sorts ds[lo:hi] by less over indexes, moving
// scores along.
func sortStableIdx(ds []*config.Deployment, scores []float64, lo, hi int, less func(x, y int) bool) {
	for i := lo + 1; i < hi; i++ {
		for j := i; j > lo && less(j, j-1); j-- {
			swap(ds, scores, j, j-1)
		}
	}
}

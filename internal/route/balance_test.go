package route

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tollgate-gw/tollgate/internal/config"
)

// model builds a model with one deployment per weight, IDs "d0", "d1", …
func model(balancing string, weights ...int) *config.Model {
	m := &config.Model{Name: "m", Balancing: balancing}
	for i, w := range weights {
		m.Deployments = append(m.Deployments, &config.Deployment{ID: fmt.Sprintf("d%d", i), Model: "m", Weight: w})
	}
	return m
}

func seeded() func() float64 { return rand.New(rand.NewPCG(1, 2)).Float64 }

func ids(ds []*config.Deployment) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// healthyExcept returns a healthy function false for the given IDs.
func healthyExcept(bad ...string) func(*config.Deployment) bool {
	return func(d *config.Deployment) bool {
		for _, id := range bad {
			if d.ID == id {
				return false
			}
		}
		return true
	}
}

// warm feeds n latency samples of lat into d's average.
func warm(b *Balancer, d *config.Deployment, lat time.Duration, n int) {
	for range n {
		b.Start(d)(lat, true)
	}
}

func TestOrderWeightedShare(t *testing.T) {
	b := NewBalancer(newFakeClock().Now, seeded())
	m := model(config.BalanceWeighted, 3, 1)
	const picks = 4000
	first := map[string]int{}
	for range picks {
		first[b.Order(m, nil)[0].ID]++
	}
	for id, want := range map[string]float64{"d0": 0.75, "d1": 0.25} {
		if got := float64(first[id]) / picks; math.Abs(got-want) > 0.03 {
			t.Errorf("share of first picks for %s = %.3f, want %.2f ± 0.03", id, got, want)
		}
	}
}

func TestOrderFollowers(t *testing.T) {
	zero := func() float64 { return 0 } // always picks the first candidate
	cases := []struct {
		name      string
		balancing string
		weights   []int
		healthy   func(*config.Deployment) bool
		want      []string
	}{
		{"weighted: rest by descending weight", config.BalanceWeighted, []int{1, 5, 3, 2}, nil,
			[]string{"d0", "d1", "d2", "d3"}},
		{"weighted: unhealthy after healthy", config.BalanceWeighted, []int{1, 5, 3, 2}, healthyExcept("d1", "d2"),
			[]string{"d0", "d3", "d1", "d2"}},
		{"weighted: ties keep config order", config.BalanceWeighted, []int{1, 2, 2, 2}, healthyExcept("d0"),
			[]string{"d1", "d2", "d3", "d0"}},
		{"weighted: none healthy means all", config.BalanceWeighted, []int{1, 5}, healthyExcept("d0", "d1"),
			[]string{"d0", "d1"}},
		{"default balancing is weighted", "", []int{1, 5, 3}, nil,
			[]string{"d0", "d1", "d2"}},
		{"latency: unhealthy after healthy", config.BalanceLatency, []int{1, 1, 1}, healthyExcept("d0"),
			[]string{"d1", "d2", "d0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBalancer(newFakeClock().Now, zero)
			got := ids(b.Order(model(tc.balancing, tc.weights...), tc.healthy))
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("Order (-got +want):\n%s", diff)
			}
		})
	}
}

func TestOrderUnhealthyNeverFirst(t *testing.T) {
	for _, balancing := range []string{config.BalanceWeighted, config.BalanceLatency} {
		t.Run(balancing, func(t *testing.T) {
			b := NewBalancer(newFakeClock().Now, seeded())
			m := model(balancing, 1, 1000, 1)
			for range 1000 {
				got := b.Order(m, healthyExcept("d1"))
				if got[0].ID == "d1" {
					t.Fatalf("Order put unhealthy d1 first: %v", ids(got))
				}
				if len(got) != 3 || got[2].ID != "d1" {
					t.Fatalf("Order = %v, want all three with d1 last", ids(got))
				}
			}
		})
	}
}

// TestOrderLatencyAvoidsSlow simulates a steady load of 8 attempts in flight
// over three deployments, one ten times slower: it should get few first
// picks.
func TestOrderLatencyAvoidsSlow(t *testing.T) {
	b := NewBalancer(newFakeClock().Now, seeded())
	m := model(config.BalanceLatency, 1, 1, 1)
	lat := map[string]time.Duration{"d0": 100 * time.Millisecond, "d1": 100 * time.Millisecond, "d2": time.Second}
	for _, d := range m.Deployments {
		warm(b, d, lat[d.ID], 5)
	}
	type flight struct {
		done func(time.Duration, bool)
		lat  time.Duration
	}
	var queue []flight
	first := map[string]int{}
	const picks = 3000
	for range picks {
		d := b.Order(m, nil)[0]
		first[d.ID]++
		queue = append(queue, flight{b.Start(d), lat[d.ID]})
		if len(queue) > 8 {
			queue[0].done(queue[0].lat, true)
			queue = queue[1:]
		}
	}
	t.Logf("first picks: %v", first)
	if share := float64(first["d2"]) / picks; share >= 0.2 {
		t.Errorf("slow deployment's share of first picks = %.3f, want < 0.2 (%v)", share, first)
	}
	if first["d0"] == 0 || first["d1"] == 0 {
		t.Errorf("fast deployments' first picks = %v, want both used", first)
	}
}

func TestOrderLatencyScores(t *testing.T) {
	cases := []struct {
		name     string
		setup    func(b *Balancer, m *config.Model, c *fakeClock)
		wantLead string // always first, whatever the random pair order
	}{
		{"lower latency wins", func(b *Balancer, m *config.Model, _ *fakeClock) {
			warm(b, m.Deployments[0], time.Second, 3)
			warm(b, m.Deployments[1], 100*time.Millisecond, 3)
		}, "d1"},
		{"in-flight raises the score", func(b *Balancer, m *config.Model, _ *fakeClock) {
			warm(b, m.Deployments[0], 100*time.Millisecond, 3)
			warm(b, m.Deployments[1], 100*time.Millisecond, 3)
			b.Start(m.Deployments[0]) // left in flight
		}, "d1"},
		{"in-flight counts with no samples at all", func(b *Balancer, m *config.Model, _ *fakeClock) {
			b.Start(m.Deployments[1])
		}, "d0"},
		{"new deployment scores as the lowest known", func(b *Balancer, m *config.Model, _ *fakeClock) {
			warm(b, m.Deployments[0], 100*time.Millisecond, 3)
			b.Start(m.Deployments[0])(0, false) // a failure feeds no latency
			b.Start(m.Deployments[1])           // in flight, no sample: scores 100ms × 2
			b.Start(m.Deployments[1])           // × 3
		}, "d0"},
		{"new deployment ties the best and beats a busy one", func(b *Balancer, m *config.Model, _ *fakeClock) {
			warm(b, m.Deployments[0], 100*time.Millisecond, 3)
			b.Start(m.Deployments[0])
		}, "d1"},
		{"stale average scores as the lowest known", func(b *Balancer, m *config.Model, c *fakeClock) {
			warm(b, m.Deployments[1], 2*time.Second, 3)
			c.Advance(staleAfter)
			warm(b, m.Deployments[0], 100*time.Millisecond, 1)
			b.Start(m.Deployments[0]) // d0 busy: 200ms against stale d1's 100ms
		}, "d1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeClock()
			b := NewBalancer(c.Now, seeded())
			m := model(config.BalanceLatency, 1, 1)
			tc.setup(b, m, c)
			for range 200 {
				if got := b.Order(m, nil); got[0].ID != tc.wantLead {
					t.Fatalf("Order = %v, want %s first", ids(got), tc.wantLead)
				}
			}
		})
	}
}

func TestStartSnapshot(t *testing.T) {
	b := NewBalancer(newFakeClock().Now, seeded())
	d := &config.Deployment{ID: "x", Weight: 1}
	if e, n := b.Snapshot("x"); e != 0 || n != 0 {
		t.Fatalf("Snapshot before use = %v, %d; want 0, 0", e, n)
	}
	done1 := b.Start(d)
	done2 := b.Start(d)
	if _, n := b.Snapshot("x"); n != 2 {
		t.Fatalf("in flight = %d, want 2", n)
	}
	done1(100*time.Millisecond, true)
	done1(time.Hour, true) // a second call does nothing
	if e, n := b.Snapshot("x"); e != 100*time.Millisecond || n != 1 {
		t.Fatalf("Snapshot = %v, %d; want 100ms (the first sample), 1", e, n)
	}
	done2(200*time.Millisecond, true)
	if e, n := b.Snapshot("x"); e != 130*time.Millisecond || n != 0 {
		t.Fatalf("Snapshot = %v, %d; want 130ms (100 + 0.3 × 100), 0", e, n)
	}
	b.Start(d)(time.Hour, false)
	if e, _ := b.Snapshot("x"); e != 130*time.Millisecond {
		t.Fatalf("EWMA after a failed attempt = %v, want unchanged 130ms", e)
	}
}

func TestOrderSingleDeploymentNoAlloc(t *testing.T) {
	b := NewBalancer(nil, nil)
	for _, balancing := range []string{config.BalanceWeighted, config.BalanceLatency} {
		m := model(balancing, 1)
		healthy := healthyExcept()
		if allocs := testing.AllocsPerRun(100, func() { _ = b.Order(m, healthy) }); allocs != 0 {
			t.Errorf("%s: Order with one deployment allocates %.0f times, want 0", balancing, allocs)
		}
		if got := b.Order(m, healthy); &got[0] != &m.Deployments[0] {
			t.Errorf("%s: Order with one deployment did not return m.Deployments", balancing)
		}
	}
}

// TestBalancerConcurrent is for the race detector.
func TestBalancerConcurrent(t *testing.T) {
	b := NewBalancer(nil, nil)
	m := model(config.BalanceLatency, 1, 2, 3)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				d := b.Order(m, healthyExcept("d2"))[0]
				b.Start(d)(time.Duration(g+i+1)*time.Millisecond, i%5 != 0)
				_, _ = b.Snapshot(d.ID)
			}
		})
	}
	wg.Wait()
	for _, d := range m.Deployments {
		if _, n := b.Snapshot(d.ID); n != 0 {
			t.Errorf("%s in flight after all done = %d, want 0", d.ID, n)
		}
	}
}

func BenchmarkOrder(b *testing.B) {
	for _, balancing := range []string{config.BalanceWeighted, config.BalanceLatency} {
		b.Run(balancing, func(b *testing.B) {
			bal := NewBalancer(nil, nil)
			m := model(balancing, 3, 1)
			for _, d := range m.Deployments {
				warm(bal, d, 100*time.Millisecond, 3)
			}
			healthy := healthyExcept()
			b.ReportAllocs()
			for b.Loop() {
				_ = bal.Order(m, healthy)
			}
		})
	}
}

package alert

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/meter"
)

func benchEngine(b *testing.B) *Engine {
	e := New(Options{Rules: rules(), Logger: slog.New(slog.DiscardHandler)})
	b.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

// BenchmarkObserve is the request path's cost.
func BenchmarkObserve(b *testing.B) {
	e := benchEngine(b)
	r := meter.Record{Attempts: 1, Status: 200, Latency: 300 * time.Millisecond, Fallback: true}
	b.ReportAllocs()
	for b.Loop() {
		e.Observe(r)
	}
}

// BenchmarkObserveParallel is Observe under contention from every core.
func BenchmarkObserveParallel(b *testing.B) {
	e := benchEngine(b)
	r := meter.Record{Attempts: 1, Status: 200, Latency: 300 * time.Millisecond}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e.Observe(r)
		}
	})
}

// BenchmarkEvaluate is one pass over a full window.
func BenchmarkEvaluate(b *testing.B) {
	e := benchEngine(b)
	for i := range ringSize {
		e.Observe(meter.Record{Attempts: 1, Status: 200, Latency: time.Duration(i) * time.Millisecond})
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		e.Evaluate(ctx)
	}
}

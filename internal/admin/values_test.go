package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/admin"
	"github.com/tollgate-gw/tollgate/internal/meter"
	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/tenant"
	"github.com/tollgate-gw/tollgate/internal/wire"
)

func TestParseUSD(t *testing.T) {
	for _, c := range []struct {
		in   string
		want meter.Nanos
		ok   bool
	}{
		{"50", 50_000_000_000, true},
		{"0.1", 100_000_000, true}, // a float64 would be 0.1000000000000000055…
		{"12.345678901", 12_345_678_901, true},
		{"0.000000001", 1, true},
		{"1e2", 100_000_000_000, true},
		{"1.5E-3", 1_500_000, true},
		{"9223372036.854775807", 9_223_372_036_854_775_807, true},
		{"9223372036.854775808", 0, false},
		{"0.0000000001", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1,000", 0, false},
		{"$5", 0, false},
		{"", 0, false},
		{".5", 0, false},
		{"1/3", 0, false},
		{"0x10", 0, false},
		{"1e999999999", 0, false},
		{"NaN", 0, false},
	} {
		got, err := admin.ParseUSD(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseUSD(%q) = %d, %v; want %d, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestFormatUSD(t *testing.T) {
	for n, want := range map[meter.Nanos]string{
		0: "0.00", 50_000_000_000: "50.00", 12_500_000_000: "12.50", 1: "0.000000001",
		1_000_001: "0.001000001", -2_500_000_000: "-2.50",
	} {
		if got := admin.FormatUSD(n); got != want {
			t.Errorf("FormatUSD(%d) = %q, want %q", n, got, want)
		}
		if n >= 0 {
			if back, err := admin.ParseUSD(admin.FormatUSD(n)); err != nil || back != n {
				t.Errorf("ParseUSD(FormatUSD(%d)) = %d, %v", n, back, err)
			}
		}
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 720 * time.Hour, "0d": 0, "720h": 720 * time.Hour, "1h30m": 90 * time.Minute, "45s": 45 * time.Second} {
		if got, err := admin.ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "1.5d", "-1d", "month", "9999999999d"} {
		if got, err := admin.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
	for d, want := range map[time.Duration]string{720 * time.Hour: "720h", 90 * time.Minute: "1h30m", 30 * time.Minute: "30m", 0: "0s", 1500 * time.Millisecond: "1.5s", time.Hour + time.Second: "1h0m1s"} {
		if got := admin.FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"30d":                       now.Add(-720 * time.Hour),
		"24h":                       now.Add(-24 * time.Hour),
		"2026-01-02":                time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		"2026-01-02T03:04:05+02:00": time.Date(2026, 1, 2, 1, 4, 5, 0, time.UTC),
	} {
		if got, err := admin.ParseTime(in, now); err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "-1h", "2026-13-01"} {
		if _, err := admin.ParseTime(in, now); err == nil {
			t.Errorf("ParseTime(%q) succeeded", in)
		}
	}
}

// TestOptional: absent, null and a value are three different things, and
// encoding keeps them apart.
func TestOptional(t *testing.T) {
	var req admin.TeamRequest
	if err := json.Unmarshal([]byte(`{"budget": null, "metadata": {"a": "b"}}`), &req); err != nil {
		t.Fatal(err)
	}
	if !req.Budget.Set || req.Budget.Value != nil || !req.Metadata.Set || (*req.Metadata.Value)["a"] != "b" || req.ProviderKeys.Set {
		t.Errorf("decoded %+v", req)
	}
	b, _ := json.Marshal(req)
	if want := `{"metadata":{"a":"b"},"budget":null}`; string(b) != want {
		t.Errorf("encoded %s, want %s", b, want)
	}
	usd := admin.Decimal("12.5")
	b, _ = json.Marshal(admin.TeamRequest{Budget: admin.Some(admin.BudgetRequest{LimitUSD: &usd})})
	if want := `{"budget":{"limit_usd":"12.5"}}`; string(b) != want {
		t.Errorf("encoded %s, want %s", b, want)
	}
}

// TestClient drives the same calls through the in-process client and over
// HTTP, and checks that failures come back as *wire.Error with their code.
func TestClient(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := admin.New(tenant.NewService(st, nil), st, st, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sk-m" {
			wire.WriteError(w, &wire.Error{Status: 401, Type: "authentication_error", Code: "invalid_api_key", Message: "no"})
			return
		}
		if err := h.ServeAdmin(w, r, admin.Actor{Master: true}); err != nil {
			wire.WriteError(w, err)
		}
	}))
	defer srv.Close()

	for name, c := range map[string]*admin.Client{"local": admin.NewLocalClient(h), "http": admin.NewClient(srv.URL+"/", "sk-m", nil)} {
		t.Run(name, func(t *testing.T) {
			var team admin.Team
			teamName := "t-" + name
			if err := c.Do(ctx, "POST", "/admin/teams", nil, admin.TeamRequest{Name: &teamName}, &team); err != nil || team.Name != teamName {
				t.Fatalf("create team: %+v, %v", team, err)
			}
			err := c.Do(ctx, "POST", "/admin/teams", nil, admin.TeamRequest{Name: &teamName}, nil)
			we, ok := errors.AsType[*wire.Error](err)
			if !ok || we.Status != 409 || we.Code != "team_exists" {
				t.Errorf("duplicate team: %v, want a 409 team_exists *wire.Error", err)
			}
			var list admin.List[admin.Team]
			if err := c.Do(ctx, "GET", "/admin/teams", nil, nil, &list); err != nil || len(list.Data) == 0 {
				t.Errorf("list: %+v, %v", list, err)
			}
		})
	}
	err = admin.NewClient(srv.URL, "wrong", nil).Do(ctx, "GET", "/admin/teams", nil, nil, nil)
	if we, ok := errors.AsType[*wire.Error](err); !ok || we.Code != "invalid_api_key" {
		t.Errorf("wrong key: %v", err)
	}
}

// FuzzParseUSD: whatever is accepted is a non-negative amount that formats
// and parses back to itself, and nothing panics or allocates without bound.
func FuzzParseUSD(f *testing.F) {
	for _, s := range []string{"50", "0.1", "12.345678901", "1e2", "1.5E-3", "9223372036.854775807", "1e99", "0.0000000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := admin.ParseUSD(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseUSD(%q) = %d, negative", s, n)
		}
		if back, err := admin.ParseUSD(admin.FormatUSD(n)); err != nil || back != n {
			t.Fatalf("ParseUSD(FormatUSD(ParseUSD(%q) = %d)) = %d, %v", s, n, back, err)
		}
	})
}

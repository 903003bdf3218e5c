package tenant_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/tenant"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newService(t *testing.T) (*tenant.Service, *clock) {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	return tenant.NewService(st, c.now), c
}

func authCode(err error) string {
	if ae, ok := errors.AsType[*tenant.AuthError](err); ok {
		return ae.Code
	}
	return ""
}

func TestSecretShape(t *testing.T) {
	s := tenant.NewSecret()
	if !strings.HasPrefix(s, "tg-") || len(s) != 46 || !tenant.LooksLikeKey(s) {
		t.Errorf("secret %q", s)
	}
	if s == tenant.NewSecret() {
		t.Error("two secrets are equal")
	}
	if p := tenant.Prefix(s); !strings.HasPrefix(s, strings.TrimSuffix(p, "…")) || len(p) > 14 {
		t.Errorf("prefix %q of %q", p, s)
	}
	if tenant.LooksLikeKey("sk-" + s[3:]) {
		t.Error("a non-tg key looks like one")
	}
}

func TestExpiryAndMaxAge(t *testing.T) {
	ctx := context.Background()
	svc, c := newService(t)
	team, err := svc.CreateTeam(ctx, &tenant.Team{Name: "t", MaxKeyAge: 90 * 24 * time.Hour, RotationWarning: 7 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	exp := c.t.Add(24 * time.Hour)
	short, _, _ := svc.CreateKey(ctx, &tenant.Key{TeamID: team.ID, Name: "short", ExpiresAt: &exp})
	long, lk, _ := svc.CreateKey(ctx, &tenant.Key{TeamID: team.ID, Name: "long"})
	if _, err := svc.Authenticate(ctx, short); err != nil {
		t.Fatalf("fresh key: %v", err)
	}
	c.t = c.t.Add(25 * time.Hour)
	if _, err := svc.Authenticate(ctx, short); authCode(err) != "api_key_expired" {
		t.Errorf("expired key: %v", err)
	}
	c.t = c.t.Add(84 * 24 * time.Hour) // 85 days old: inside the warning
	due, err := svc.RotationDue(ctx, team.ID)
	if err != nil || len(due) != 1 || due[0].KeyID != lk.ID || due[0].Overdue {
		t.Errorf("rotation due at 85 days: %+v %v", due, err)
	}
	if _, err := svc.Authenticate(ctx, long); err != nil {
		t.Errorf("85-day key refused: %v", err)
	}
	c.t = c.t.Add(6 * 24 * time.Hour)
	if _, err := svc.Authenticate(ctx, long); authCode(err) != "api_key_too_old" {
		t.Errorf("91-day key: %v", err)
	}
	due, _ = svc.RotationDue(ctx, team.ID)
	if len(due) != 1 || !due[0].Overdue {
		t.Errorf("rotation due at 91 days: %+v", due)
	}
	fresh, _, err := svc.Rotate(ctx, lk.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, fresh); err != nil {
		t.Errorf("rotated key: %v", err)
	}
}

// A change made through the service reaches cached keys at once.
func TestUpdateInvalidatesCache(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t)
	team, _ := svc.CreateTeam(ctx, &tenant.Team{Name: "t"})
	secret, k, _ := svc.CreateKey(ctx, &tenant.Key{TeamID: team.ID, Name: "k"})
	p, err := svc.Authenticate(ctx, secret)
	if err != nil || !p.Allows("gpt-4o", "premium") {
		t.Fatalf("before: %v", err)
	}
	k.AllowedModels = []string{"cheap"}
	if err := svc.UpdateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	p, _ = svc.Authenticate(ctx, secret)
	if p.Allows("gpt-4o", "premium") || !p.Allows("cheap", "budget") {
		t.Errorf("allowed models not updated: %+v", p.Key.AllowedModels)
	}
}

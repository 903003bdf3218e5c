package store

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-gw/tollgate/internal/tenant"
)

// equalTimes compares instants, ignoring location and monotonic readings.
var equalTimes = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

// t0 is a non-UTC time with nanoseconds, so round trips prove both survive.
var t0 = time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.FixedZone("CET", 3600))

func ptr[T any](v T) *T { return &v }

func hashOf(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func testTeam(id, name string) *tenant.Team {
	return &tenant.Team{ID: id, Name: name, CreatedAt: t0}
}

func fullTeam() *tenant.Team {
	return &tenant.Team{
		ID:              "team_full",
		Name:            "Full Team",
		Metadata:        map[string]string{"owner": "ana@example.com", "cost_center": "42"},
		CreatedAt:       t0,
		MaxKeyAge:       90 * 24 * time.Hour,
		RotationWarning: 7*24*time.Hour + 1,
		Limits:          tenant.Limits{RPM: 600, TPM: 120000},
		Budget: &tenant.Budget{
			Limit: 1_500_000_000_123, Period: tenant.PeriodMonthly, SoftPercent: 80, DowngradePercent: 95,
		},
		ProviderKeys: []tenant.ProviderKey{
			{Provider: "openai", Env: "TEAM_FULL_OPENAI"},
			{Provider: "anthropic", Tier: "premium", Env: "TEAM_FULL_ANTHROPIC"},
		},
	}
}

func fullKey(teamID string) *tenant.Key {
	return &tenant.Key{
		ID:                 "key_full",
		TeamID:             teamID,
		Name:               "ci",
		AllowedModels:      []string{"gpt-4o-mini", "claude-haiku"},
		AllowedTiers:       []string{"budget", "standard"},
		DefaultCriticality: "background",
		ExpiresAt:          ptr(t0.Add(365 * 24 * time.Hour)),
		RevokedAt:          ptr(t0.Add(time.Hour)),
		CreatedAt:          t0,
		RotatedAt:          t0.Add(time.Minute),
		Limits:             tenant.Limits{RPM: 60, TPM: 1000},
		Budget:             &tenant.Budget{Limit: 5_000_000_000, Period: tenant.PeriodDaily},
	}
}

func credFor(keyID, secret string, created time.Time) *tenant.Credential {
	return &tenant.Credential{KeyID: keyID, Hash: hashOf(secret), Prefix: "tg-" + secret[:4], CreatedAt: created}
}

func TestSQLiteTeamRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		team *tenant.Team
	}{
		{"every field", fullTeam()},
		{"zero values", &tenant.Team{ID: "team_zero", Name: "zero"}},
		{"empty not nil", &tenant.Team{ID: "team_empty", Name: "empty", CreatedAt: t0,
			Metadata: map[string]string{}, ProviderKeys: []tenant.ProviderKey{},
			Budget: &tenant.Budget{Period: tenant.PeriodNone}}},
	}
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.CreateTeam(ctx, tt.team); err != nil {
				t.Fatalf("CreateTeam: %v", err)
			}
			for _, lookup := range []string{tt.team.ID, tt.team.Name} {
				got, err := s.Team(ctx, lookup)
				if err != nil {
					t.Fatalf("Team(%q): %v", lookup, err)
				}
				if diff := cmp.Diff(got, tt.team, equalTimes); diff != "" {
					t.Errorf("Team(%q) (-got +want):\n%s", lookup, diff)
				}
				if got.CreatedAt.Location() != time.UTC {
					t.Errorf("Team(%q).CreatedAt in %v, want UTC", lookup, got.CreatedAt.Location())
				}
			}
		})
	}
}

func TestSQLiteTeamErrors(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	if err := s.CreateTeam(ctx, testTeam("team_a", "alpha")); err != nil {
		t.Fatal(err)
	}
	for _, dup := range []*tenant.Team{testTeam("team_a", "other"), testTeam("team_b", "alpha")} {
		if err := s.CreateTeam(ctx, dup); !errors.Is(err, ErrConflict) {
			t.Errorf("CreateTeam(id %q, name %q) = %v, want ErrConflict", dup.ID, dup.Name, err)
		}
	}
	if _, err := s.Team(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Team(nobody) = %v, want ErrNotFound", err)
	}
	if err := s.UpdateTeam(ctx, testTeam("team_nobody", "x")); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateTeam(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.CreateTeam(ctx, testTeam("team_b", "beta")); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateTeam(ctx, testTeam("team_b", "alpha")); !errors.Is(err, ErrConflict) {
		t.Errorf("UpdateTeam renaming to a taken name = %v, want ErrConflict", err)
	}
}

// TestSQLiteTeamIDBeforeName checks that an id wins over another team's
// equal name.
func TestSQLiteTeamIDBeforeName(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	// Created name-first so that insertion order cannot explain the result.
	for _, team := range []*tenant.Team{testTeam("team_2", "x"), testTeam("x", "second")} {
		if err := s.CreateTeam(ctx, team); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Team(ctx, "x")
	if err != nil || got.ID != "x" {
		t.Errorf("Team(x) = %+v, %v; want the team with id x", got, err)
	}
}

func TestSQLiteTeamsAndUpdate(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	for _, team := range []*tenant.Team{testTeam("team_1", "zulu"), fullTeam(), testTeam("team_3", "alpha")} {
		if err := s.CreateTeam(ctx, team); err != nil {
			t.Fatal(err)
		}
	}
	upd := fullTeam()
	upd.Name = "Renamed"
	upd.Metadata = nil
	upd.Budget = nil
	upd.ProviderKeys = []tenant.ProviderKey{{Provider: "gemini", Env: "G"}}
	upd.Limits = tenant.Limits{RPM: 1}
	upd.CreatedAt = t0.Add(time.Hour) // ignored: fixed at creation
	if err := s.UpdateTeam(ctx, upd); err != nil {
		t.Fatalf("UpdateTeam: %v", err)
	}
	want := *upd
	want.CreatedAt = t0
	got, err := s.Team(ctx, "team_full")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, &want, equalTimes); diff != "" {
		t.Errorf("Team after UpdateTeam (-got +want):\n%s", diff)
	}

	teams, err := s.Teams(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, team := range teams {
		names = append(names, team.Name)
	}
	if diff := cmp.Diff(names, []string{"Renamed", "alpha", "zulu"}); diff != "" {
		t.Errorf("Teams() names (-got +want):\n%s", diff)
	}
}

func TestSQLiteKeyRoundTrip(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	team := fullTeam()
	if err := s.CreateTeam(ctx, team); err != nil {
		t.Fatal(err)
	}
	k := fullKey(team.ID)
	c := credFor("", "secret-one", t0) // KeyID "" takes the key's
	if err := s.CreateKey(ctx, k, c); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	wantCred := *c
	wantCred.KeyID = k.ID

	gotKey, gotCreds, err := s.Key(ctx, k.ID)
	if err != nil {
		t.Fatalf("Key: %v", err)
	}
	if diff := cmp.Diff(gotKey, k, equalTimes); diff != "" {
		t.Errorf("Key(%q) key (-got +want):\n%s", k.ID, diff)
	}
	if diff := cmp.Diff(gotCreds, []*tenant.Credential{&wantCred}, equalTimes); diff != "" {
		t.Errorf("Key(%q) credentials (-got +want):\n%s", k.ID, diff)
	}

	gc, gk, gt, err := s.Credential(ctx, hashOf("secret-one"))
	if err != nil {
		t.Fatalf("Credential: %v", err)
	}
	if diff := cmp.Diff(gc, &wantCred, equalTimes); diff != "" {
		t.Errorf("Credential() credential (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(gk, k, equalTimes); diff != "" {
		t.Errorf("Credential() key (-got +want):\n%s", diff)
	}
	if diff := cmp.Diff(gt, team, equalTimes); diff != "" {
		t.Errorf("Credential() team (-got +want):\n%s", diff)
	}

	minimal := &tenant.Key{ID: "key_min", TeamID: team.ID, CreatedAt: t0, RotatedAt: t0}
	if err := s.CreateKey(ctx, minimal, credFor("key_min", "secret-min", t0)); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Key(ctx, "key_min")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, minimal, equalTimes); diff != "" {
		t.Errorf("Key(key_min) (-got +want):\n%s", diff)
	}
}

func TestSQLiteKeyErrors(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	if err := s.CreateTeam(ctx, testTeam("team_1", "one")); err != nil {
		t.Fatal(err)
	}
	key := func(id string) *tenant.Key {
		return &tenant.Key{ID: id, TeamID: "team_1", CreatedAt: t0, RotatedAt: t0}
	}
	if err := s.CreateKey(ctx, key("key_1"), credFor("key_1", "secret-1", t0)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  *tenant.Key
		cred *tenant.Credential
		want error // nil: any error
	}{
		{"unknown team", &tenant.Key{ID: "key_x", TeamID: "team_none"}, credFor("key_x", "secret-x", t0), ErrNotFound},
		{"taken key id", key("key_1"), credFor("key_1", "secret-2", t0), ErrConflict},
		{"taken hash", key("key_2"), credFor("key_2", "secret-1", t0), ErrConflict},
		{"short hash", key("key_3"), &tenant.Credential{KeyID: "key_3", Hash: []byte("abc")}, nil},
		{"no credential", key("key_4"), nil, nil},
		{"credential of another key", key("key_5"), credFor("key_1", "secret-5", t0), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.CreateKey(ctx, tt.key, tt.cred)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("CreateKey = %v, want error %v", err, tt.want)
			}
			if tt.key.ID == "key_1" {
				return
			}
			// The transaction left nothing behind.
			if _, _, err := s.Key(ctx, tt.key.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("Key(%q) after failed CreateKey = %v, want ErrNotFound", tt.key.ID, err)
			}
		})
	}
	if _, _, err := s.Key(ctx, "key_none"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Key(key_none) = %v, want ErrNotFound", err)
	}
	if err := s.UpdateKey(ctx, key("key_none")); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateKey(key_none) = %v, want ErrNotFound", err)
	}
	if _, _, _, err := s.Credential(ctx, hashOf("never issued")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Credential(unknown) = %v, want ErrNotFound", err)
	}
}

func TestSQLiteKeysOrder(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	for _, team := range []*tenant.Team{testTeam("team_a", "a"), testTeam("team_b", "b")} {
		if err := s.CreateTeam(ctx, team); err != nil {
			t.Fatal(err)
		}
	}
	// Inserted out of creation order; key_a2 and key_a3 share a CreatedAt.
	keys := []struct {
		id, team string
		created  time.Duration
	}{
		{"key_a3", "team_a", 2 * time.Hour},
		{"key_b1", "team_b", 0},
		{"key_a1", "team_a", time.Hour},
		{"key_a2", "team_a", 2 * time.Hour},
		{"key_a0", "team_a", 30 * time.Minute},
	}
	for _, k := range keys {
		created := t0.Add(k.created)
		err := s.CreateKey(ctx, &tenant.Key{ID: k.id, TeamID: k.team, CreatedAt: created, RotatedAt: created},
			credFor(k.id, "secret-"+k.id, created))
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		team string
		want []string
	}{
		{"team_a", []string{"key_a0", "key_a1", "key_a2", "key_a3"}},
		{"team_b", []string{"key_b1"}},
		{"", []string{"key_b1", "key_a0", "key_a1", "key_a2", "key_a3"}},
		{"team_none", nil},
	}
	for _, tt := range tests {
		got, err := s.Keys(ctx, tt.team)
		if err != nil {
			t.Fatalf("Keys(%q): %v", tt.team, err)
		}
		var ids []string
		for _, k := range got {
			ids = append(ids, k.ID)
		}
		if diff := cmp.Diff(ids, tt.want); diff != "" {
			t.Errorf("Keys(%q) ids (-got +want):\n%s", tt.team, diff)
		}
	}
}

func TestSQLiteUpdateKeyRevoke(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	if err := s.CreateTeam(ctx, testTeam("team_1", "one")); err != nil {
		t.Fatal(err)
	}
	k := &tenant.Key{ID: "key_1", TeamID: "team_1", Name: "before", CreatedAt: t0, RotatedAt: t0}
	if err := s.CreateKey(ctx, k, credFor("key_1", "secret-1", t0)); err != nil {
		t.Fatal(err)
	}
	upd := *k
	upd.Name = "after"
	upd.RevokedAt = ptr(t0.Add(time.Hour))
	upd.AllowedModels = []string{"m"}
	upd.Budget = &tenant.Budget{Limit: 7, Period: tenant.PeriodWeekly, SoftPercent: 50}
	upd.RotatedAt = t0.Add(99 * time.Hour) // ignored: Rotate owns it
	upd.CreatedAt = t0.Add(99 * time.Hour) // ignored: fixed at creation
	if err := s.UpdateKey(ctx, &upd); err != nil {
		t.Fatalf("UpdateKey: %v", err)
	}
	want := upd
	want.RotatedAt, want.CreatedAt = t0, t0
	got, _, err := s.Key(ctx, "key_1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, &want, equalTimes); diff != "" {
		t.Errorf("Key after UpdateKey (-got +want):\n%s", diff)
	}
	_, ck, _, err := s.Credential(ctx, hashOf("secret-1"))
	if err != nil || ck.RevokedAt == nil || !ck.RevokedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("Credential() key RevokedAt = %v (err %v), want %v", ck.RevokedAt, err, t0.Add(time.Hour))
	}
}

func TestSQLiteRotate(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	if err := s.CreateTeam(ctx, testTeam("team_1", "one")); err != nil {
		t.Fatal(err)
	}
	k := &tenant.Key{ID: "key_1", TeamID: "team_1", CreatedAt: t0, RotatedAt: t0}
	c0 := credFor("key_1", "secret-0", t0)
	if err := s.CreateKey(ctx, k, c0); err != nil {
		t.Fatal(err)
	}
	// A second key whose credential no rotation of key_1 may touch.
	other := &tenant.Key{ID: "key_2", TeamID: "team_1", CreatedAt: t0, RotatedAt: t0}
	if err := s.CreateKey(ctx, other, credFor("key_2", "secret-other", t0)); err != nil {
		t.Fatal(err)
	}

	day := 24 * time.Hour
	c1 := credFor("key_1", "secret-1", t0.Add(day))
	g1 := t0.Add(day + 7*day)
	if err := s.Rotate(ctx, c1, g1); err != nil {
		t.Fatalf("Rotate 1: %v", err)
	}
	// A second rotation with a later grace end: c0 keeps its earlier g1.
	c2 := credFor("key_1", "secret-2", t0.Add(2*day))
	g2 := t0.Add(2*day + 30*day)
	if err := s.Rotate(ctx, c2, g2); err != nil {
		t.Fatalf("Rotate 2: %v", err)
	}
	assertCreds(t, s, "key_1", t0.Add(2*day), []*tenant.Credential{
		{KeyID: "key_1", Hash: c2.Hash, Prefix: c2.Prefix, CreatedAt: c2.CreatedAt},
		{KeyID: "key_1", Hash: c1.Hash, Prefix: c1.Prefix, CreatedAt: c1.CreatedAt, NotAfter: &g2},
		{KeyID: "key_1", Hash: c0.Hash, Prefix: c0.Prefix, CreatedAt: c0.CreatedAt, NotAfter: &g1},
	})

	// An emergency rotation with an early grace end shortens every later
	// one, c0's g1 included.
	c3 := credFor("key_1", "secret-3", t0.Add(3*day))
	g3 := t0.Add(3 * day)
	if err := s.Rotate(ctx, c3, g3); err != nil {
		t.Fatalf("Rotate 3: %v", err)
	}
	assertCreds(t, s, "key_1", t0.Add(3*day), []*tenant.Credential{
		{KeyID: "key_1", Hash: c3.Hash, Prefix: c3.Prefix, CreatedAt: c3.CreatedAt},
		{KeyID: "key_1", Hash: c2.Hash, Prefix: c2.Prefix, CreatedAt: c2.CreatedAt, NotAfter: &g3},
		{KeyID: "key_1", Hash: c1.Hash, Prefix: c1.Prefix, CreatedAt: c1.CreatedAt, NotAfter: &g3},
		{KeyID: "key_1", Hash: c0.Hash, Prefix: c0.Prefix, CreatedAt: c0.CreatedAt, NotAfter: &g3},
	})
	assertCreds(t, s, "key_2", t0, []*tenant.Credential{credFor("key_2", "secret-other", t0)})

	// Each credential still finds its key.
	for _, secret := range []string{"secret-0", "secret-3"} {
		if _, ck, _, err := s.Credential(ctx, hashOf(secret)); err != nil || ck.ID != "key_1" {
			t.Errorf("Credential(%s) key = %v, %v; want key_1", secret, ck, err)
		}
	}
}

func TestSQLiteRotateErrors(t *testing.T) {
	s, _ := openTestSQLite(t)
	ctx := t.Context()
	if err := s.CreateTeam(ctx, testTeam("team_1", "one")); err != nil {
		t.Fatal(err)
	}
	k := &tenant.Key{ID: "key_1", TeamID: "team_1", CreatedAt: t0, RotatedAt: t0}
	if err := s.CreateKey(ctx, k, credFor("key_1", "secret-0", t0)); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(time.Hour)
	if err := s.Rotate(ctx, credFor("key_none", "secret-9", later), later); !errors.Is(err, ErrNotFound) {
		t.Errorf("Rotate(unknown key) = %v, want ErrNotFound", err)
	}
	if _, _, _, err := s.Credential(ctx, hashOf("secret-9")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Credential of a failed rotation = %v, want ErrNotFound", err)
	}
	// Reusing the current secret fails, and the whole rotation with it.
	if err := s.Rotate(ctx, credFor("key_1", "secret-0", later), later); !errors.Is(err, ErrConflict) {
		t.Errorf("Rotate(taken hash) = %v, want ErrConflict", err)
	}
	assertCreds(t, s, "key_1", t0, []*tenant.Credential{credFor("key_1", "secret-0", t0)})
}

// assertCreds checks a key's RotatedAt and its credentials, newest first.
func assertCreds(t *testing.T, s *SQLite, keyID string, rotatedAt time.Time, want []*tenant.Credential) {
	t.Helper()
	k, creds, err := s.Key(t.Context(), keyID)
	if err != nil {
		t.Fatalf("Key(%q): %v", keyID, err)
	}
	if !k.RotatedAt.Equal(rotatedAt) {
		t.Errorf("Key(%q).RotatedAt = %v, want %v", keyID, k.RotatedAt, rotatedAt)
	}
	if diff := cmp.Diff(creds, want, equalTimes); diff != "" {
		t.Errorf("Key(%q) credentials (-got +want):\n%s", keyID, diff)
	}
}

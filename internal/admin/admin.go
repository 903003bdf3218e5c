// Package admin is the /admin/ API: teams, virtual keys, rotation and usage
// reports, JSON in and out, every failure an OpenAI error envelope with a
// stable code. The gateway authenticates the caller and hands the request to
// ServeAdmin with the Actor it found; the CLI drives the same handler in
// process (Client) when it works on a store file directly.
package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-gw/tollgate/internal/store"
	"github.com/tollgate-gw/tollgate/internal/tenant"
)

// Actor is who calls. The master key may do everything; a team's virtual key
// (Master false, TeamID and KeyID set) may only read its own team's keys,
// rotation notices and usage.
type Actor struct {
	Master bool
	TeamID string
	KeyID  string
}

// UsageReader aggregates the usage ledger. It is called once or twice per
// usage report and may scan many records.
type UsageReader interface {
	Usage(ctx context.Context, q store.UsageQuery) ([]store.UsageRow, error)
}

var _ UsageReader = (*store.SQLite)(nil)

// Handler serves the admin API. It holds no state of its own beyond what it
// is given, so it is safe for concurrent use when they are.
type Handler struct {
	svc   *tenant.Service
	st    tenant.Store
	usage UsageReader
	now   func() time.Time
}

// New returns a handler managing teams and keys through svc, reading them from
// st, and reporting usage from usage. now is the clock for expiry, relative
// times and key status (nil: time.Now); pass the service's clock.
func New(svc *tenant.Service, st tenant.Store, usage UsageReader, now func() time.Time) *Handler {
	if now == nil {
		now = time.Now
	}
	return &Handler{svc: svc, st: st, usage: usage, now: now}
}

// op serves one route. id is the path's {id} segment, already unescaped.
type op func(h *Handler, w http.ResponseWriter, r *http.Request, a Actor, id string) error

// method is one method of an endpoint.
type method struct {
	serve      op
	teamActors bool // a team's key may call it (read-only routes)
}

// endpoint is a path pattern relative to /admin/, with "{id}" matching any
// one segment, and its methods.
type endpoint struct {
	pattern []string
	methods map[string]method
}

// endpoints are matched in order, so literal paths come before wildcards
// (keys/rotation-due before keys/{id}).
var endpoints = []endpoint{
	{[]string{"teams"}, map[string]method{
		http.MethodGet:  {serve: (*Handler).listTeams},
		http.MethodPost: {serve: (*Handler).createTeam},
	}},
	{[]string{"teams", "{id}"}, map[string]method{
		http.MethodGet:   {serve: (*Handler).showTeam},
		http.MethodPatch: {serve: (*Handler).patchTeam},
	}},
	{[]string{"keys"}, map[string]method{
		http.MethodGet:  {serve: (*Handler).listKeys, teamActors: true},
		http.MethodPost: {serve: (*Handler).createKey},
	}},
	{[]string{"keys", "rotation-due"}, map[string]method{
		http.MethodGet: {serve: (*Handler).rotationDue, teamActors: true},
	}},
	{[]string{"keys", "{id}"}, map[string]method{
		http.MethodGet:   {serve: (*Handler).showKey, teamActors: true},
		http.MethodPatch: {serve: (*Handler).patchKey},
	}},
	{[]string{"keys", "{id}", "revoke"}, map[string]method{
		http.MethodPost: {serve: (*Handler).revokeKey},
	}},
	{[]string{"keys", "{id}", "rotate"}, map[string]method{
		http.MethodPost: {serve: (*Handler).rotateKey},
	}},
	{[]string{"usage"}, map[string]method{
		http.MethodGet: {serve: (*Handler).usageReport, teamActors: true},
	}},
}

// ServeAdmin serves one /admin/... request for an authenticated actor. It
// returns an error to be written with wire.WriteError, or nil after writing
// the response. Unknown paths are 404 unknown_endpoint, a known path with
// another method is 405 method_not_allowed (with Allow set), and a team's key
// on a master-only route is 403 permission_denied.
func (h *Handler) ServeAdmin(w http.ResponseWriter, r *http.Request, a Actor) error {
	segs, ok := splitPath(r.URL)
	if !ok {
		return unknownEndpoint(r)
	}
	for _, ep := range endpoints {
		id, ok := match(ep.pattern, segs)
		if !ok {
			continue
		}
		m, ok := ep.methods[r.Method]
		if !ok {
			allowed := make([]string, 0, len(ep.methods))
			for name := range ep.methods {
				allowed = append(allowed, name)
			}
			slices.Sort(allowed)
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			return methodNotAllowed(r, allowed)
		}
		if !a.Master && (!m.teamActors || a.TeamID == "") {
			return permissionDenied(r)
		}
		return m.serve(h, w, r, a, id)
	}
	return unknownEndpoint(r)
}

// splitPath returns the unescaped segments after /admin/, so a team name with
// a slash in it (sent as %2F) stays one segment. One trailing slash is
// ignored.
func splitPath(u *url.URL) ([]string, bool) {
	rest, ok := strings.CutPrefix(u.EscapedPath(), "/admin/")
	if !ok {
		return nil, false
	}
	rest = strings.TrimSuffix(rest, "/")
	segs := strings.Split(rest, "/")
	for i, s := range segs {
		v, err := url.PathUnescape(s)
		if err != nil || v == "" {
			return nil, false
		}
		segs[i] = v
	}
	return segs, true
}

// match reports whether segs fit pattern, and the {id} segment if any.
func match(pattern, segs []string) (id string, ok bool) {
	if len(pattern) != len(segs) {
		return "", false
	}
	for i, p := range pattern {
		switch {
		case p == "{id}":
			id = segs[i]
		case p != segs[i]:
			return "", false
		}
	}
	return id, true
}

// idOf names what a request is about in messages.
func idOf(r *http.Request) string { return fmt.Sprintf("%s %s", r.Method, r.URL.Path) }

package report

import (
	"maps"

	"github.com/tollgate-gw/tollgate/internal/config"
)

// WithTiers returns base with the tier chains and aliases of tierMap, a
// second configuration, in place of its own: "price this traffic as base
// would, had its tiers been mapped like that". Models keep base's
// definitions (and so its prices); a model only tierMap defines is taken
// from tierMap, as is its provider when base lacks one of that name.
// Profiles are base's. Neither argument is modified.
//
// The result is built by hand, so Chain takes its slower, uncached path: a
// few map lookups more per call, fine for a report.
func WithTiers(base, tierMap *config.Config) *config.Config {
	return &config.Config{
		Source:         base.Source,
		Server:         base.Server,
		Providers:      union(base.Providers, tierMap.Providers),
		Models:         union(base.Models, tierMap.Models),
		Tiers:          tierMap.Tiers,
		Aliases:        tierMap.Aliases,
		Profiles:       base.Profiles,
		DefaultProfile: base.DefaultProfile,
		Store:          base.Store,
	}
}

// union returns a new map of first's entries and those of second whose key
// first lacks.
func union[V any](first, second map[string]V) map[string]V {
	out := maps.Clone(second)
	if out == nil {
		out = make(map[string]V, len(first))
	}
	maps.Copy(out, first)
	return out
}

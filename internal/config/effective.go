package config

// Effective is what applies to one model under one profile: the model's own
// settings merged over the profile's, field by field. It is a plain value;
// copy it freely.
type Effective struct {
	// Timeouts are the model's where it sets them, else the profile's;
	// Total is the model's total, else the profile's RequestTimeout.
	Timeouts Timeouts
	// ContextPolicy is the model's, else the profile's.
	ContextPolicy string
	// HoldBack is the model's when Set, none when the model says off,
	// else the profile's.
	HoldBack HoldBack
	// ContextWindow is the smaller of the model's ContextWindow and the
	// profile's ContextWindowLimit, counting only those above zero; 0 means
	// no limit is known.
	ContextWindow int
}

// For returns what applies to m under p. It is on the request path: for a
// profile and a model of the same Config from Load or Parse it is one map
// lookup; otherwise (a Config built by hand) it merges on the spot. Neither
// allocates.
func (p *Profile) For(m *Model) Effective {
	if e, ok := p.effective[m]; ok {
		return e
	}
	return merge(p, m)
}

// merge computes For's answer from the fields.
func merge(p *Profile, m *Model) Effective {
	e := Effective{Timeouts: p.Timeouts, ContextPolicy: p.ContextPolicy, HoldBack: p.HoldBack}
	e.Timeouts.Total = p.RequestTimeout
	t := m.Timeouts
	if t.Connect > 0 {
		e.Timeouts.Connect = t.Connect
	}
	if t.FirstByte > 0 {
		e.Timeouts.FirstByte = t.FirstByte
	}
	if t.Idle > 0 {
		e.Timeouts.Idle = t.Idle
	}
	if t.Total > 0 {
		e.Timeouts.Total = t.Total
	}
	if m.ContextPolicy != "" {
		e.ContextPolicy = m.ContextPolicy
	}
	switch {
	case m.HoldBackOff:
		e.HoldBack = HoldBack{}
	case m.HoldBack.Set:
		e.HoldBack = m.HoldBack
	}
	e.ContextWindow = m.ContextWindow
	if l := p.ContextWindowLimit; l > 0 && (e.ContextWindow == 0 || l < e.ContextWindow) {
		e.ContextWindow = l
	}
	return e
}

// precomputeEffective fills every profile's table behind For.
func (c *Config) precomputeEffective() {
	for _, p := range c.Profiles {
		p.effective = make(map[*Model]Effective, len(c.Models))
		for _, m := range c.Models {
			p.effective[m] = merge(p, m)
		}
	}
}

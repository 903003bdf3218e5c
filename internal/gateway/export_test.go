package gateway

// SettlerSettled is how many requests the settler settled, rather than
// their connections (afterResponse).
func (g *Gateway) SettlerSettled() int64 { return g.settler.settled.Load() }

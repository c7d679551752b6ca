package node

// Recheck queues every known container for a full check, even those whose upper dir did not change. Republish is
// enough when only enrichers changed (a database, VEX), but root checks such as compliance profiles need the
// container's root again. A check already running when Recheck is called stores the old generation, so it is
// checked once more rather than kept as current.
func (d *Daemon) Recheck() {
	d.gen.Add(1)
	d.mu.Lock()
	ids := make([]string, 0, len(d.tracked))
	for id := range d.tracked {
		ids = append(ids, id)
	}
	d.mu.Unlock()
	for _, id := range ids {
		d.Nudge(id)
	}
}

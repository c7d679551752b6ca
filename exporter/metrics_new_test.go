package exporter

// NewMetrics is NewFleetMetrics with every identity label and no cap, which cannot fail: the shape most tests
// check. The daemon always passes its flags' options.
func NewMetrics(node string) *Metrics {
	m, err := NewFleetMetrics(node, MetricsOptions{})
	if err != nil {
		panic(err)
	}
	return m
}

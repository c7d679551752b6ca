// Package deploy holds rootscan's deployment artifacts, none of them Go: the kustomize base and its Prometheus
// Operator overlay (kustomize/), the Helm chart (helm/rootscan), the Prometheus alert rules and their promtool unit
// tests (prometheus/), the Grafana dashboard (grafana/) and the script that builds the tools the tests run (tools/).
//
// The package's tests are what keeps those files honest: they render the base and the chart, fail on any widened
// privilege (a writable or Bidirectional hostPath, host namespaces, a second port), require the chart and the base
// to render the same objects, run the rule unit tests, and check every metric and label the rules and the dashboard
// use against what the exporter really exposes.
package deploy

// Package report is the model every other package speaks: what a scan found in one root (packages, files,
// vulnerabilities, compliance results, drift), which target it was about, and the package URLs SBOM consumers and
// advisory databases join on. It is a leaf: it imports nothing of rootscan's, so vuln, sbom, compliance and exporter
// can use the types without pulling in the analyzers.
package report

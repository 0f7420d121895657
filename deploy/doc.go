// Package deploy holds what operators deploy next to the server: a Grafana
// dashboard (grafana-dashboard.json) over the metrics the server exports on
// /metrics, and Prometheus alert rules (prometheus-rules.yml). It has no
// code; its test checks that both parse and that every metric they name is
// one a real server exports.
package deploy

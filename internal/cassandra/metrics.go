package cassandra

import "github.com/prometheus/client_golang/prometheus"

// metrics are the storage-level counters; request-level ones (appends,
// conflicts by code, latencies) live in the HTTP layer.
type metrics struct {
	errors        *prometheus.CounterVec
	casConflicts  prometheus.Counter
	bucketsSealed prometheus.Counter
	batches       prometheus.Counter
	batchAppends  prometheus.Counter
	feedTimeMoved prometheus.Counter
	feedRepairs   *prometheus.CounterVec
	feedLag       prometheus.Gauge
	feedOpen      prometheus.Gauge
	groupLag      *prometheus.GaugeVec
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlog_cassandra_errors_total",
			Help: "Cassandra requests that failed, by operation.",
		}, []string{"op"}),
		casConflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlog_cassandra_cas_not_applied_total",
			Help: "Conditional appends not applied because the stream's head moved (each is retried or reported).",
		}),
		bucketsSealed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlog_cassandra_buckets_sealed_total",
			Help: "Stream buckets sealed by this instance (time window ended or row cap reached).",
		}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlog_cassandra_append_batches_total",
			Help: "Conditional batches applied; each commits one or more appends to one stream.",
		}),
		batchAppends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlog_cassandra_batched_appends_total",
			Help: "Appends committed by those batches (divide by batches for the coalescing factor).",
		}),
		feedTimeMoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlog_feed_commit_time_moved_total",
			Help: "Append attempts whose commit time was moved past the feed watermark (a lagging clock or a slow intent write).",
		}),
		feedRepairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlog_feed_repairs_total",
			Help: "Append intents left open and resolved by the watermark maintainer, by outcome: committed (feed rows written by the repair), fenced (never committed, now never can), lost (another append holds the versions).",
		}, []string{"outcome"}),
		feedLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventlog_feed_watermark_lag_seconds",
			Help: "How far the feed watermark trails this instance's clock, as of its maintainer's last step: the delay before a new event can be read from the feeds.",
		}),
		feedOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventlog_feed_open_intents",
			Help: "Append intents at or below the pending watermark not yet done, as of this instance's maintainer's last step; intents open long are repaired after --feed-repair-after.",
		}),
		groupLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventlog_group_lag_events",
			Help: "Events of each consumer group's feed after its checkpoints and up to the feed watermark, counted up to the lag cap; refreshed periodically and on each group description.",
		}, []string{"group"}),
	}
	if r != nil {
		m.errors = register(r, m.errors)
		m.casConflicts = register(r, m.casConflicts)
		m.bucketsSealed = register(r, m.bucketsSealed)
		m.batches = register(r, m.batches)
		m.batchAppends = register(r, m.batchAppends)
		m.feedTimeMoved = register(r, m.feedTimeMoved)
		m.feedRepairs = register(r, m.feedRepairs)
		m.feedLag = register(r, m.feedLag)
		m.feedOpen = register(r, m.feedOpen)
		m.groupLag = register(r, m.groupLag)
	}
	return m
}

func (m *metrics) storageError(op string) { m.errors.WithLabelValues(op).Inc() }

// register registers c, or returns the collector already registered under
// its name, so several stores (instances in one test process) share them.
func register[C prometheus.Collector](r prometheus.Registerer, c C) C {
	if err := r.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

package sequencer

import "github.com/prometheus/client_golang/prometheus"

// metrics are the sequencer's: how commits group, and what they wait on.
type metrics struct {
	commits     *prometheus.CounterVec // by outcome
	groupSize   prometheus.Histogram
	commitTime  prometheus.Histogram
	fillTime    prometheus.Histogram
	headLoads   prometheus.Counter
	idLookups   prometheus.Counter
	lowIDReads  prometheus.Counter
	checks      prometheus.Counter
	owned       prometheus.Gauge
	takeovers   prometheus.Counter
	takeFailed  prometheus.Counter
	forwarded   prometheus.Counter
	queueLength prometheus.Histogram
	tailBytes   prometheus.Gauge
	fillWrites  prometheus.Counter
	blocks      *prometheus.CounterVec // by outcome
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlog_shard_commits_total",
			Help: "Conditional writes of commit groups on the shard logs, by outcome: committed, fenced (another owner), unknown (settling failed).",
		}, []string{"outcome"}),
		groupSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventlog_shard_commit_appends",
			Help:    "Appends committed by one conditional write (the group commit factor).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 1024},
		}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventlog_shard_commit_seconds",
			Help:    "Time of one commit group's conditional write on its shard log.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		fillTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventlog_shard_fill_seconds",
			Help:    "Time of one fill round: the stream writes of the committed appends due (their delay passed, over budget, or read).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		headLoads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlog_shard_head_loads_total",
			Help: "Stream heads read from the stream partitions (first touch after a takeover, or after eviction).",
		}),
		idLookups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlog_shard_id_lookups_total",
			Help: "Appends whose client ids were looked up in the stream partitions before the commit (their head holds too many ids to be complete, and its id filter may have seen one).",
		}),
		lowIDReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlog_shard_low_id_reads_total",
			Help: "Id lookups that also read a stream partition's static row of low ids (the stream's first 1,024 versions): its head has no filter of them (the read then makes one, if the budget has room), or the filter may have seen one of the ids.",
		}),
		checks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlog_shard_retry_checks_total",
			Help: "Appends checked against their stream's stored events after its write (a retry, an id conflict, or an exact-version conflict the owner's recent ids do not settle): each reads the stream on the shard's one checker.",
		}),
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventlog_shards_owned",
			Help: "Shards this instance owns and commits.",
		}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlog_shard_takeovers_total",
			Help: "Shards this instance claimed, fenced and caught up.",
		}),
		takeFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlog_shard_takeovers_failed_total",
			Help: "Shards this instance claimed but could not fence and catch up (Cassandra failing, or a log record it cannot decode): the shard waits for the lease to run out and is claimed again.",
		}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlog_appends_forwarded_total",
			Help: "Appends sent to the instance owning their shard.",
		}),
		queueLength: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventlog_shard_queue_appends",
			Help:    "Appends waiting in a shard's queue when its commit goroutine takes a group.",
			Buckets: []float64{0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096},
		}),
		tailBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventlog_shard_tail_bytes",
			Help: "Payload bytes committed on this instance's shards and not yet written to their streams.",
		}),
		fillWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eventlog_shard_fill_writes_total",
			Help: "Stream writes of the fill (one per stream and round): against appends committed, how many share a write.",
		}),
		blocks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventlog_stream_blocks_total",
			Help: "Streams' complete blocks of 256 events rewritten as one row (compacted), compactions that failed, and jobs dropped with the queue full.",
		}, []string{"outcome"}),
	}
	if r != nil {
		r.MustRegister(m.commits, m.groupSize, m.commitTime, m.fillTime, m.headLoads, m.idLookups, m.lowIDReads, m.checks, m.owned, m.takeovers, m.takeFailed, m.forwarded, m.queueLength, m.tailBytes, m.fillWrites, m.blocks)
	}
	return m
}

package main

import (
	"fmt"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// writePlots writes <base>-throughput.png (events/s per second) and
// <base>-latency.png (p50 solid, p99 dashed, per second, log scale) for
// the phases of r, on one time axis since the run started, one colour per
// phase name (so compare's alternating rounds read as two series).
func writePlots(base string, r *Result) ([]string, error) {
	names := map[string]color.Color{}
	colorOf := func(n string) color.Color {
		if c, ok := names[n]; ok {
			return c
		}
		names[n] = plotutil.Color(len(names))
		return names[n]
	}
	title := fmt.Sprintf("eventlog bench %s  %s", r.Scenario, r.StartedAt.Format("2006-01-02 15:04:05"))

	tp := plot.New()
	tp.Title.Text = title + ": throughput"
	tp.X.Label.Text = "seconds since start"
	tp.Y.Label.Text = "events/s"
	tp.Legend.Top = true
	tp.Y.Min = 0
	tp.Y.Tick.Marker = countTicks{}
	tp.Add(plotter.NewGrid())
	lp := plot.New()
	lp.Title.Text = title + ": latency, p50 solid, p99 dashed"
	lp.X.Label.Text = "seconds since start"
	lp.Y.Scale = plot.LogScale{}
	lp.Y.Tick.Marker = latencyTicks{}
	lp.Y.Label.Text = "latency (log scale)"
	lp.Legend.Top = true
	lp.Add(plotter.NewGrid())

	legend := map[string]bool{}
	latencies := 0
	for _, ph := range r.Phases {
		if len(ph.Timeline) == 0 {
			continue
		}
		c := colorOf(ph.Name)
		var ev, p50, p99 plotter.XYs
		for _, s := range ph.Timeline {
			x := ph.OffsetS + float64(s.T) + 0.5
			// The last bucket is usually partial; scale it by the part
			// of the second it covers so the line does not dive.
			secs := min(1, ph.DurationS-float64(s.T))
			if secs > 0.2 {
				ev = append(ev, plotter.XY{X: x, Y: float64(s.Events) / secs})
			}
			if s.P50US > 0 {
				p50 = append(p50, plotter.XY{X: x, Y: float64(s.P50US)})
				p99 = append(p99, plotter.XY{X: x, Y: float64(max(s.P99US, s.P50US))})
			}
		}
		if err := addLine(tp, ev, c, false, ph.Name, legend); err != nil {
			return nil, err
		}
		latencies += len(p50)
		if err := addLine(lp, p50, c, false, ph.Name, legend); err != nil {
			return nil, err
		}
		if err := addLine(lp, p99, c, true, "", legend); err != nil {
			return nil, err
		}
	}
	// Head room above the data for the legend, a line per entry (the
	// latency axis is logarithmic: a factor per line).
	entries := float64(len(names))
	tp.Y.Max *= 1.1 + 0.07*entries
	if lp.Y.Min > 0 && lp.Y.Max > lp.Y.Min {
		span := math.Log10(lp.Y.Max / lp.Y.Min)
		lp.Y.Max *= math.Pow(10, max(0.3, 0.1*entries*span))
	}
	base = strings.TrimSuffix(base, ".json")
	out := []string{base + "-throughput.png", base + "-latency.png"}
	if err := tp.Save(10*vg.Inch, 4*vg.Inch, out[0]); err != nil {
		return nil, err
	}
	if latencies == 0 {
		return out[:1], nil
	}
	if err := lp.Save(10*vg.Inch, 4*vg.Inch, out[1]); err != nil {
		return nil, err
	}
	return out, nil
}

func addLine(p *plot.Plot, xy plotter.XYs, c color.Color, dashed bool, name string, legend map[string]bool) error {
	if len(xy) == 0 {
		return nil
	}
	var (
		th  plot.Thumbnailer
		err error
	)
	if len(xy) == 1 {
		s, e := plotter.NewScatter(xy)
		s.Color, err = c, e
		th = s
		p.Add(s)
	} else {
		l, e := plotter.NewLine(xy)
		l.Color, l.Width, err = c, vg.Points(1.5), e
		if dashed {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		th = l
		p.Add(l)
	}
	if err != nil {
		return err
	}
	if name != "" && !legend[p.Title.Text+name] {
		legend[p.Title.Text+name] = true
		p.Legend.Add(name, th)
	}
	return nil
}

// latencyTicks marks 1-2-5 steps of each decade of microseconds, labelled
// in µs, ms or s.
type latencyTicks struct{}

func (latencyTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for dec := math.Pow(10, math.Floor(math.Log10(max(lo, 1)))); dec <= hi; dec *= 10 {
		for m := 1.0; m < 10; m++ {
			v := m * dec
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = formatUS(v)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

func formatUS(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%gs", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%gms", us/1e3)
	}
	return fmt.Sprintf("%gµs", us)
}

// countTicks are gonum's default ticks labelled 0, 500, 1k, 2.5k, 10k.
type countTicks struct{}

func (countTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label == "" {
			continue
		}
		v := ticks[i].Value
		switch {
		case math.Abs(v) >= 1e6:
			ticks[i].Label = fmt.Sprintf("%gM", v/1e6)
		case math.Abs(v) >= 1e3:
			ticks[i].Label = fmt.Sprintf("%gk", v/1e3)
		default:
			ticks[i].Label = fmt.Sprintf("%g", v)
		}
	}
	return ticks
}

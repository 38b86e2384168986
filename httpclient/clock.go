package httpclient

import (
	"sync"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// serverClocks estimates, per host, where the server's clock stands within
// the second its Date header names. A reset given in whole seconds is
// measured against that Date (whole seconds too), so it may lie up to a
// second past the truth on top of its own slack; knowing how far into its
// second the server was when it answered takes that part off, and a fleet
// that knows a window's end to a fraction of a second loses that much less
// budget at every window that opens with its first request.
//
// The estimate only ever errs late: for every response, the local receive
// time minus its Date is at least the offset between the clocks, so the
// smallest such difference seen recently (minOffset) is an upper bound of
// the offset, and the local send time minus it is a lower bound of the
// server's time when it answered. Local times are read from the monotonic
// clock, so a step of the wall clock cannot make it early. The samples
// age out over two minutes, so a server clock that drifts is followed.
// At most maxLearned hosts are remembered.
type serverClocks struct {
	mu sync.Mutex
	m  map[string]*offsetSample
}

type offsetSample struct {
	// cur and prev are the smallest receive-minus-Date of the current and
	// the previous minute (math.MaxInt64 when none).
	cur, prev time.Duration
	minute    int64
}

// monotonic wall clock: the wall time at start plus the monotonic time
// since, immune to steps of the wall clock.
var (
	startWall = time.Now().Round(0)
	startMono = time.Now()
)

func monoNow() time.Time { return startWall.Add(time.Since(startMono)) }

const noSample = time.Duration(1<<63 - 1)

// record notes a response from host received at recv with the given Date
// (whole seconds).
func (c *serverClocks) record(host string, recv, date time.Time) {
	if date.IsZero() {
		return
	}
	d := recv.Sub(date)
	minute := recv.Unix() / 60
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.m[host]
	if s == nil {
		if c.m == nil || len(c.m) >= maxLearned {
			c.m = make(map[string]*offsetSample)
		}
		s = &offsetSample{cur: noSample, prev: noSample, minute: minute}
		c.m[host] = s
	}
	switch {
	case minute == s.minute+1:
		s.prev, s.cur, s.minute = s.cur, noSample, minute
	case minute != s.minute:
		s.prev, s.cur, s.minute = noSample, noSample, minute
	}
	s.cur = min(s.cur, d)
}

// into returns how far into the second its Date names the server
// certainly was when it answered a request sent at sent: 0 when unknown.
func (c *serverClocks) into(host string, sent, date time.Time) time.Duration {
	c.mu.Lock()
	s := c.m[host]
	bound := noSample
	if s != nil {
		bound = min(s.cur, s.prev)
	}
	c.mu.Unlock()
	if bound == noSample || date.IsZero() {
		return 0
	}
	f := sent.Add(-bound).Sub(date)
	if f <= 0 || f >= time.Second {
		return 0
	}
	return f.Truncate(time.Microsecond)
}

// sharpen takes off every whole-second quota reset (one with slack) the
// part of the server's second that had certainly passed when it answered.
func sharpen(o srl.Observation, into time.Duration) srl.Observation {
	if into <= 0 {
		return o
	}
	cut := func(reset, slack time.Duration) time.Duration {
		if slack <= 0 || reset <= into {
			return reset
		}
		return reset - into
	}
	o.Reset = cut(o.Reset, o.ResetSlack)
	o.ResetSlack = min(o.ResetSlack, o.Reset)
	if len(o.Quotas) > 0 {
		quotas := make([]srl.QuotaObservation, len(o.Quotas))
		for i, q := range o.Quotas {
			q.Reset = cut(q.Reset, q.ResetSlack)
			q.ResetSlack = min(q.ResetSlack, q.Reset)
			quotas[i] = q
		}
		o.Quotas = quotas
	}
	return o
}

package keystate

import (
	"math/bits"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
)

// Limit is a validated smartratelimit.Limit in script units. Kind, Rate
// and Period (and for a pacing limit Burst) are its identity: each distinct
// limit has its own field in the key's state.
type Limit struct {
	Kind   int64 // KindPacing or KindWindow
	Rate   int64 // events per Period
	Period int64 // µs
	// Burst is the most one request may cost: a pacing limit's burst, a
	// window limit's Rate.
	Burst int64
	// Interval is a pacing limit's emission interval T, a window limit's
	// sub-window length (see Window), in µs.
	Interval int64
	// Slots is, for a window limit, how many sub-windows it counts (see
	// Window); 0 for a pacing limit.
	Slots int64
}

// The kinds of limit, as the scripts receive them.
const (
	KindPacing = int64(srl.Pacing)
	KindWindow = int64(srl.Windowed)
)

// Compile converts a limit that passed Validate.
func Compile(l srl.Limit) Limit {
	if l.Kind == srl.Windowed {
		return compileWindow(int64(l.Rate), l.PeriodMicros())
	}
	return Limit{
		Rate:     int64(l.Rate),
		Period:   l.PeriodMicros(),
		Burst:    int64(l.EffectiveBurst()),
		Interval: l.IntervalMicros(),
	}
}

func (l Limit) same(o Limit) bool {
	return l.Kind == o.Kind && l.Rate == o.Rate && l.Period == o.Period && l.Burst == o.Burst
}

// CompileRequest compiles a request's limits into buf: the fixed limits
// first, then the default ones, whose count it returns beside. A limit given
// twice is kept once, and a default limit that is also fixed is dropped,
// since the fixed one always applies: the scripts never see one TAT twice.
// The limits must be valid; see Prepare.
func CompileRequest(buf []Limit, fixed, defaults []srl.Limit) (all []Limit, nFixed int) {
	all = buf[:0]
	for _, l := range fixed {
		if c := Compile(l); !contains(all, c) {
			all = append(all, c)
		}
	}
	nFixed = len(all)
	for _, l := range defaults {
		if c := Compile(l); !contains(all, c) {
			all = append(all, c)
		}
	}
	return all, nFixed
}

// maxSpan is smartratelimit.MaxSpan in microseconds.
const maxSpan = int64(srl.MaxSpan / time.Microsecond)

// Prepare validates r and compiles its limits into buf in one pass: it is
// r.Validate followed by CompileRequest, with one division per limit
// instead of four, for the hot path of the in-memory store. Whenever it
// finds a fault it returns r.Validate's error, so both always agree (a
// test holds them to it).
func Prepare(buf []Limit, r srl.Request) (all []Limit, nFixed int, err error) {
	if r.Key == "" || r.N < 1 || r.MaxWait < 0 || r.MaxWait > srl.MaxSpan || len(r.Limits)+len(r.DefaultLimits) > srl.MaxLimits ||
		r.Probe < 0 || r.Probe > srl.MaxHorizon {
		return nil, 0, r.Validate()
	}
	if len(r.Costs) > 0 {
		if err := r.Validate(); err != nil {
			return nil, 0, err
		}
	}
	n := int64(r.N)
	all = buf[:0]
	for i, set := range [2][]srl.Limit{r.Limits, r.DefaultLimits} {
		if i == 1 {
			nFixed = len(all)
		}
		for _, l := range set {
			if l.Rate <= 0 || l.Period < time.Microsecond || l.Period > srl.MaxSpan || l.Burst < 0 {
				return nil, 0, r.Validate()
			}
			var c Limit
			switch l.Kind {
			case srl.Pacing:
				c = Compile(l)
				hi, span := bits.Mul64(uint64(c.Burst), uint64(c.Interval))
				if c.Rate > c.Period || hi != 0 || span > uint64(maxSpan) || n > c.Burst {
					return nil, 0, r.Validate()
				}
			case srl.Windowed:
				if l.Burst > 1 {
					return nil, 0, r.Validate()
				}
				c = Compile(l)
				if c.Rate > c.Period || n > c.Rate {
					return nil, 0, r.Validate()
				}
			default:
				return nil, 0, r.Validate()
			}
			if !contains(all, c) {
				all = append(all, c)
			}
		}
	}
	return all, nFixed, nil
}

// CompileCosts converts a request's costs into buf.
func CompileCosts(buf []Cost, costs []srl.Cost) []Cost {
	buf = buf[:0]
	for _, c := range costs {
		buf = append(buf, Cost{Unit: c.Unit, N: int64(c.N)})
	}
	return buf
}

// Applicable returns the limits that apply: the fixed ones, and the
// default ones too while no quota is known.
func Applicable(all []Limit, nFixed int, quotaKnown bool) []Limit {
	if quotaKnown {
		return all[:nFixed]
	}
	return all
}

func contains(ls []Limit, l Limit) bool {
	for _, x := range ls {
		if x.same(l) {
			return true
		}
	}
	return false
}

// args caches Args: a process uses a handful of limits, and their script
// arguments would otherwise be formatted and boxed for every decision. It
// stops growing at maxCachedArgs limits, so a process that makes limits up
// per tenant pays the formatting instead of unbounded memory.
var (
	args       sync.Map // Limit → *[5]any
	argsCached atomic.Int64
)

const maxCachedArgs = 4096

// Field is the name of the limit's field in the Redis hash: for a pacing
// limit its TAT, "g:<rate>:<period µs>", with ":<burst>" appended when the
// burst is not 1; for a window limit its counts, "w:<rate>:<period µs>".
func (l Limit) Field() string { return l.Args()[0].(string) }

// Args returns the limit's part of acquire.lua's arguments, ready for a
// go-redis call: its field, its kind, its interval (a pacing limit's
// emission interval, a window limit's sub-window), its burst (for a window
// its rate) and its period. The array is shared; do not change it.
func (l Limit) Args() *[5]any {
	if a, ok := args.Load(l); ok {
		return a.(*[5]any)
	}
	a := &[5]any{l.field(), l.Kind, l.Interval, l.Burst, l.Period}
	if argsCached.Load() < maxCachedArgs {
		if _, loaded := args.LoadOrStore(l, a); !loaded {
			argsCached.Add(1)
		}
	}
	return a
}

func (l Limit) field() string { return string(l.appendField(make([]byte, 0, 40))) }

// appendField appends the limit's field name to b.
func (l Limit) appendField(b []byte) []byte {
	if l.Kind == KindWindow {
		b = append(b, "w:"...)
	} else {
		b = append(b, "g:"...)
	}
	b = strconv.AppendInt(b, l.Rate, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, l.Period, 10)
	if l.Kind == KindPacing && l.Burst != 1 {
		b = append(b, ':')
		b = strconv.AppendInt(b, l.Burst, 10)
	}
	return b
}

// FloorDiv is floor(a/b) for b > 0, rounding toward negative infinity.
func FloorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

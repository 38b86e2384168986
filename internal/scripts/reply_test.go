package scripts

import (
	"errors"
	"fmt"
	"testing"
	"time"

	srl "github.com/smartratelimit/smartratelimit"
	"github.com/smartratelimit/smartratelimit/internal/keystate"
)

// The shortest form of acquire's reply (a run with one pacing limit: 4 or
// 5, then the TAT ahead of now) decodes to the numbers the short form
// spells out, which the differential tests compare with the twin; and a
// reply that does not fit the request it answers is ErrBadReply, never a
// result or a panic.
func TestDecodeAcquire(t *testing.T) {
	// 10 a second, a burst of 5: T = 100ms, B·T = 500ms.
	one := item(srl.Request{N: 1, Limits: []srl.Limit{srl.PerSecond(10).WithBurst(5)}})
	two := item(srl.Request{N: 2, Limits: []srl.Limit{srl.PerSecond(10).WithBurst(5)}})
	both := item(srl.Request{N: 1, Limits: []srl.Limit{srl.PerSecond(10), srl.PerMinute(100)}})
	costly := item(srl.Request{N: 1, Limits: []srl.Limit{srl.PerSecond(10)}, Costs: []srl.Cost{{Unit: "tokens", N: 5}}})
	window := item(srl.Request{N: 1, Limits: []srl.Limit{srl.Window(10, time.Second)}})
	ms := int64(time.Millisecond / time.Microsecond)
	cases := []struct {
		name  string
		item  keystate.Item
		reply []int64
		want  keystate.Result
		err   error
	}{
		{name: "admitted into an empty key", item: one, reply: []int64{4, 100 * ms},
			want: keystate.Result{Allowed: true, Remaining: 4, ResetAfter: 100 * ms}},
		{name: "admitted, the burst spent", item: one, reply: []int64{4, 500 * ms},
			want: keystate.Result{Allowed: true, Remaining: 0, ResetAfter: 500 * ms}},
		{name: "admitted with a delay", item: one, reply: []int64{4, 530 * ms},
			want: keystate.Result{Allowed: true, Wait: 30 * ms, ResetAfter: 530 * ms}},
		{name: "refused", item: one, reply: []int64{5, 480 * ms},
			want: keystate.Result{Wait: 80 * ms, ResetAfter: 480 * ms, Cause: keystate.CauseLimit}},
		{name: "refused, n of 2", item: two, reply: []int64{5, 450 * ms},
			want: keystate.Result{Wait: 150 * ms, ResetAfter: 450 * ms, Cause: keystate.CauseLimit}},
		{name: "the short form", item: one, reply: []int64{3, 0, 4, 100 * ms},
			want: keystate.Result{Allowed: true, Remaining: 4, ResetAfter: 100 * ms}},
		{name: "a TAT behind now", item: one, reply: []int64{4, -1}, err: srl.ErrBadReply},
		{name: "the shortest form for two limits", item: both, reply: []int64{4, 100 * ms}, err: srl.ErrBadReply},
		{name: "the shortest form for a cost", item: costly, reply: []int64{4, 100 * ms}, err: srl.ErrBadReply},
		{name: "the shortest form for a window", item: window, reply: []int64{4, 100 * ms}, err: srl.ErrBadReply},
		{name: "the short form with a negative wait", item: one, reply: []int64{3, -1, 4, 0}, err: srl.ErrBadReply},
		{name: "the short form for a cost", item: costly, reply: []int64{3, 0, 4, 0}, err: srl.ErrBadReply},
		{name: "an unknown code", item: one, reply: []int64{7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, err: srl.ErrBadReply},
		{name: "too few values", item: one, reply: []int64{1, 0, 0}, err: srl.ErrBadReply},
		{name: "nothing", item: one, reply: nil, err: srl.ErrBadReply},
		{name: "not a hash", item: one, reply: []int64{-1}, err: errNotAHash},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := make([]keystate.Result, 1)
			rest, err := decodeAcquire(c.reply, []keystate.Item{c.item}, out)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("decodeAcquire(%v) = %+v, %v; want %v", c.reply, out[0], err, c.err)
				}
				return
			}
			if err != nil || len(rest) != 0 || fmt.Sprint(out[0]) != fmt.Sprint(c.want) {
				t.Fatalf("decodeAcquire(%v) = %+v, %v (%d left); want %+v", c.reply, out[0], err, len(rest), c.want)
			}
		})
	}
}

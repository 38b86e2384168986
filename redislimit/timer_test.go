package redislimit

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// A pooled timer that fired while its decision ended another way is
// handed to the next decision with nothing in its channel, also under the
// timer channels of programs whose go.mod says go 1.22 or older, which
// this test runs itself under (GODEBUG=asynctimerchan=1, in a child
// process).
func TestStoppedTimerKeepsNoStaleValue(t *testing.T) {
	if os.Getenv("SRL_OLD_TIMERS") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStoppedTimerKeepsNoStaleValue$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "SRL_OLD_TIMERS=1", "GODEBUG=asynctimerchan=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("under asynctimerchan=1: %v\n%s", err, out)
		}
		return
	}
	timer := time.NewTimer(time.Millisecond)
	// Under asynctimerchan=1 the channel is buffered: wait for the value
	// to land in it, as it does while a caller takes its decision.
	for deadline := time.Now().Add(5 * time.Second); len(timer.C) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the timer's value never reached its channel: not running under asynctimerchan=1?")
		}
	}
	stopTimer(timer)
	timer.Reset(time.Hour)
	select {
	case <-timer.C:
		t.Fatal("a timer reset for an hour fired at once: its old value was left in the channel")
	default:
	}
}

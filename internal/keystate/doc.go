// Package keystate is the state machine of one key's budget, in Go, on
// integer microseconds. It is the only Go implementation of the rules: the
// in-memory fallback runs it directly, the Redis backend decodes script
// replies into its types, and the Lua scripts in package lua mirror it step
// for step, held to identical replies by a differential fuzz test.
//
// Every value is an integer number of microseconds or units, and all of
// them stay below 2^53, so the same arithmetic on Lua's doubles is exact.
// Every value read back from storage is bounded before use (Clamp), so a
// garbage field can neither overflow the arithmetic nor block a key for
// longer than the rules allow.
//
// # The state of a key
//
//   - one theoretical arrival time (TAT) per configured pacing limit, paced
//     by GCRA; a TAT never lies further ahead of now than the limit's own
//     span plus smartratelimit.MaxReservation (a clock step cannot block a
//     key);
//   - one set of sub-window counters per configured window limit (see
//     Window): never more than Rate in any window of one Period, at most a
//     sub-window (a tenth of the Period) of capacity lost, never reserved;
//     counts stored ahead of now count as now's, so a clock step blocks a
//     window for at most its span;
//   - at most MaxLimitFields limit fields of both kinds together (a caller
//     that makes up limits cannot grow a key without bound);
//   - one server quota per unit (requests, tokens, …): see Quota;
//   - a block (Retry-After, or a backoff after refusals without timing
//     information) and the streak of such refusals;
//   - the probe lease and the time until which a key whose server sends no
//     rate-limit headers is not probed.
//
// # Quotas: learn, never assume a full refill
//
// A quota describes the server's current window, which ends at ResetAt.
// Within it the fleet may spend what a response said was left (Seen,
// lowered by every spend). When the window ends, nothing is
// known about the next one: a fixed-window server refilled it at once, but
// a sliding-window server still counts the last window, and a token bucket
// refills gradually. So the next window starts from what was left and
// refills evenly to the limit over the window's length (the ramp): never
// more than any of those servers allows. The first response of the new
// window tells the truth (Seen), and whichever of the two is larger may be
// spent. The window's length is the server's when it says, else the
// longest reset seen.
//
// Observations are ordered by the server's Date: a response the server
// produced in a later second replaces the stored window, even when it
// reports an earlier reset (so one outlier cannot hold a key for a day);
// within a second and a window the merge keeps the lower remaining and the
// later reset, and a response from an earlier second never replaces.
//
// # Spends in flight, and estimates settled
//
// A spend counts in flight (Quota.InFlight) from its admission until its
// response is observed with what the admission charged (Obs.Charged): a
// response's remaining count does not know the spends still in flight, so
// they are subtracted from it. A response may also miss spends whose own
// responses were observed meanwhile (they may have been produced after
// it): Quota.Settled counts settled units, an admission records it as its
// mark, and a response subtracts what was settled since its mark. It need
// not when its count provably includes every settled spend: it comes from
// a later second, or it reports no more left than any response of the
// window before (a window's count only goes down, at least one per
// request). What remains is a count no smaller than the truth, so a
// response may raise Seen to it: an estimate larger than what the server
// charged (a max_tokens never produced) returns to the fleet with the
// response, and estimates in flight never let the fleet overspend.
package keystate

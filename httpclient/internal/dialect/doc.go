// Package dialect reads what an HTTP response says about the server's rate
// limit, in every header dialect seen in the wild, into one
// smartratelimit.Observation: a request quota, quotas of other units
// (tokens, input and output tokens, IETF units such as content-bytes), a
// Retry-After, whether the call was refused, the server's Date.
//
// Every time becomes a duration measured against the response's own Date
// header (reset epoch − Date, HTTP date − Date, RFC 3339 − Date), so that
// neither the server's clock nor the pod's matters; without a Date the
// local receive time stands in. An absolute reset already past means
// "already reset", never a long wait. An absolute time written in whole
// seconds (an epoch, an HTTP date, RFC 3339 without a fraction) or Jira's
// minutes is read as that much later, and the amount reported as the
// quota's ResetSlack: the server may roll over that late, and a fleet that
// rolls over first spends into the old window. Dates are read in any
// unambiguous zone (GMT, UTC, UT, Z, numeric offsets), never in a zone
// name that could mean several offsets.
//
// Headers come in families (X-RateLimit-*, the IETF drafts, OpenAI's,
// Retry-After…). A family with one value that cannot be trusted — a
// negative, garbage, a number in other than HTTP syntax, a time beyond
// smartratelimit.MaxHorizon, a field longer than the parser looks at — is
// ignored as a whole and reported in Result.Malformed. Every family present
// is read, and each unit's quota comes from the most complete one that
// reads cleanly (limit, remaining and reset; then remaining and reset; then
// less), the most specific on a tie: a custom Mapping, then IETF -08 to
// -11 (per unit, the binding policy: least available), -07, then
// OpenAI/Azure/Groq, Anthropic, Mistral, Discord, Shopify, and last the
// generic X-RateLimit-*, X-Rate-Limit-* and RateLimit-* (IETF ≤ -06,
// GitLab) whose reset form is read from the value. Retry-After (and
// retry-after-ms) counts on refusals only; without it a 429's body may say
// how long to wait (Discord's retry_after, Google's RetryInfo).
//
// The work is bounded: a field value longer than 4 KiB, a structured field
// of more than 16 members or parameters, make the family malformed, and
// bodies are searched up to 64 KiB, so a hostile response costs what a
// normal one does.
package dialect

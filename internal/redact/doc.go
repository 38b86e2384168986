// Package redact is the one rule for keeping secrets out of what the
// command prints: usage, errors, progress and JSON alike.
//
// The rule: a URL keeps everything an operator needs to tell which server
// is meant (scheme, user name, hosts, ports, path, the names of its query
// parameters) and loses everything that authenticates (the password of its
// user information, and the value of every query parameter whose name
// looks like a credential: password, pass, pwd, token, key, secret, auth,
// credential, signature, sig, in any case and as part of a longer name
// such as sentinel_password or x-api-key). What is removed is replaced by
// Mask, so a reader can see that something was there.
//
// A string that does not parse as a URL is still redacted, more bluntly:
// everything between "://" and the last "@" is replaced, and so is the
// whole query. Text and Error apply the rule to every URL found inside
// free text, which is how errors that quote a URL (a *url.Error, a
// wrapped "cannot reach redis://..." message) are made safe to print.
//
// Redaction is for output only. Never parse or dial a redacted URL.
package redact

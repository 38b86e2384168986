package dialect

// custom reads the headers the caller named in a Mapping.
func (p *parser) custom(m *Mapping) {
	if m == nil || (m.Limit == "" && m.Remaining == "" && m.Reset == "") {
		return
	}
	q, present, ok := p.fields("", orNone(m.Limit), orNone(m.Remaining), orNone(m.Reset), listCount, p.reset)
	if present {
		p.offer(reading{family: FamilyCustom, quotas: []quota{q}}, ok)
	}
}

// noField names a field no response carries, for a value a dialect does
// not have.
const noField = "X-Smartratelimit-Unset"

// orNone maps an unset name to noField.
func orNone(name string) string {
	if name == "" {
		return noField
	}
	return name
}

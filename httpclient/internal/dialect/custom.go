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

// orNone maps an unset name to one no response carries.
func orNone(name string) string {
	if name == "" {
		return "X-Smartratelimit-Unset"
	}
	return name
}

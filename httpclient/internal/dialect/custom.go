package dialect

import ()

// custom reads the headers the caller named in a Mapping.
func (p *parser) custom(m *Mapping) (string, *quota, bool) {
	if m == nil || (m.Limit == "" && m.Remaining == "" && m.Reset == "") {
		return FamilyCustom, nil, false
	}
	q, present := p.triple(orNone(m.Limit), orNone(m.Remaining), orNone(m.Reset), listCount, p.reset)
	return FamilyCustom, q, present
}

// orNone maps an unset name to one no response carries.
func orNone(name string) string {
	if name == "" {
		return "X-Smartratelimit-Unset"
	}
	return name
}

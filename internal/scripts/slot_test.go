package scripts

import "testing"

// The slots Redis itself computes (CLUSTER KEYSLOT).
func TestSlot(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want uint16
	}{
		{"123456789", 12739}, // the CRC16 check value, 0x31C3
		{"foo", 12182},
		{"{user1000}.following", 3443},
		{"user1000", 3443},
		{"foo{}{bar}", 8363}, // an empty tag: the whole key
		{"foo{{bar}}zap", 4015},
		{"srl:{api.github.com}", Slot("api.github.com")},
		{"", 0},
	} {
		if got := Slot(tc.key); got != tc.want {
			t.Errorf("Slot(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
}

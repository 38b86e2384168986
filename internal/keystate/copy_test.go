package keystate

import (
	"reflect"
	"testing"
)

// CopyTo lists Item's fields by hand (so that a caller's item stays on its
// stack); an Item with every field set must come out equal.
func TestItemCopyToCopiesEveryField(t *testing.T) {
	var it Item
	v := reflect.ValueOf(&it).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 2, 2))
		default:
			t.Fatalf("field %s of kind %s: teach this test (and CopyTo) about it", v.Type().Field(i).Name, f.Kind())
		}
	}
	it.All[0] = Limit{Kind: KindWindow, Rate: 3, Period: 4, Burst: 5, Interval: 6, Slots: 7}
	it.Costs[1] = Cost{Unit: "tokens", N: 9}
	var dst Item
	it.CopyTo(&dst, make([]Limit, 4), make([]Cost, 4))
	if !reflect.DeepEqual(dst, it) {
		t.Fatalf("copy %+v\n  of %+v", dst, it)
	}
	dst.All[0].Rate = 99
	if it.All[0].Rate == 99 {
		t.Fatal("the copy shares the item's limits")
	}
}

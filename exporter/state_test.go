package exporter

import (
	"math"
	"reflect"
	"testing"
	"unsafe"
)

// settable is the field f, unexported, made settable.
func settable(f reflect.Value) reflect.Value {
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}

// TestTxnState_Reset fills every field of a transaction's state, as a
// transaction leaves it, and checks that reset leaves none of it behind:
// a field added to txnState is reset without anyone remembering to.
func TestTxnState_Reset(t *testing.T) {
	var s txnState
	v := reflect.ValueOf(&s).Elem()
	for i := range v.NumField() {
		f := settable(v.Field(i))
		switch f.Kind() {
		case reflect.Int64:
			f.SetInt(int64(i + 1))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Map:
			m := reflect.MakeMap(f.Type())
			m.SetMapIndex(reflect.ValueOf(int64(i)), reflect.Zero(f.Type().Elem()))
			f.Set(m)
		default:
			t.Fatalf("field %s of kind %s: teach this test to fill it", v.Type().Field(i).Name, f.Kind())
		}
	}
	keyUse := s.keyUse
	s.reset()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch {
		case name == "minStart":
			if s.minStart != math.MaxInt64 {
				t.Errorf("minStart = %d; want MaxInt64 (no start yet)", s.minStart)
			}
		case name == "maxStart":
			if s.maxStart != math.MinInt64 {
				t.Errorf("maxStart = %d; want MinInt64 (no start yet)", s.maxStart)
			}
		case f.Kind() == reflect.Map:
			if f.IsNil() || f.Len() != 0 {
				t.Errorf("%s = %v after reset; want an empty map", name, f)
			}
		case !f.IsZero():
			t.Errorf("%s = %v after reset; want zero", name, f)
		}
	}
	// The use sets keep their memory: the same map, emptied.
	keyUse[1] = struct{}{}
	if len(s.keyUse) != 1 {
		t.Error("reset made a new keyUse map; want the old one emptied")
	}
}

// TestNewIDCaches checks that every cache but the old generation of
// traces is a map to write to, and the key epoch is not started yet.
func TestNewIDCaches(t *testing.T) {
	c := newIDCaches()
	v := reflect.ValueOf(c)
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch {
		case name == "oldTraces":
			if !f.IsNil() {
				t.Errorf("oldTraces = %v; want nil (no old generation yet)", f)
			}
		case f.Kind() == reflect.Map:
			if f.IsNil() || f.Len() != 0 {
				t.Errorf("%s = %v; want an empty map", name, f)
			}
		case !f.IsZero():
			t.Errorf("%s = %v; want zero", name, f)
		}
	}
}

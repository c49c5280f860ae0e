package schema

import "testing"

func TestOpIndex(t *testing.T) {
	if Operations[NotifyIndex] != OpNotify {
		t.Errorf("Operations[NotifyIndex] = %q; want %q", Operations[NotifyIndex], OpNotify)
	}
	if Operations[ReceiveIndex] != OpReceive {
		t.Errorf("Operations[ReceiveIndex] = %q; want %q", Operations[ReceiveIndex], OpReceive)
	}
	for i, op := range Operations {
		if got, ok := OpIndex(op); !ok || got != i {
			t.Errorf("OpIndex(%q) = %d, %v; want %d, true", op, got, ok, i)
		}
	}
	for _, op := range []string{"", "Notify", "publish", "notify "} {
		if _, ok := OpIndex(op); ok {
			t.Errorf("OpIndex(%q) ok; want not an operation", op)
		}
	}
}

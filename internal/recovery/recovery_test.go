package recovery

import (
	"context"
	"errors"
	"testing"

	"github.com/coredns/coredns/plugin/metrics/vars"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDo(t *testing.T) {
	ran := false
	if err := Do(context.Background(), "walk", func() { ran = true }); err != nil || !ran {
		t.Fatalf("Expected f run and no error, got ran %v, error %v", ran, err)
	}

	before, ownBefore := testutil.ToFloat64(vars.Panic), testutil.ToFloat64(panics.WithLabelValues("", "walk"))
	err := Do(context.Background(), "walk", func() { panic("boom") })
	var perr *Error
	if !errors.As(err, &perr) || perr.Where != "walk" || perr.Value != "boom" {
		t.Fatalf("Expected the panic returned as an *Error, got %v", err)
	}
	if got := testutil.ToFloat64(vars.Panic) - before; got != 1 {
		t.Errorf("Expected coredns_panics_total up by 1, got %v", got)
	}
	if got := testutil.ToFloat64(panics.WithLabelValues("", "walk")) - ownBefore; got != 1 {
		t.Errorf("Expected coredns_raceguard_panics_total{where=walk} up by 1, got %v", got)
	}
}

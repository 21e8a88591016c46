//go:build linux

package sandbox

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestProbe(t *testing.T) {
	needRoot(t)
	pr := Probe()
	t.Logf("%s", pr)
	if !pr.Available.Has(LayerRlimits | LayerNonRootUID) {
		t.Errorf("probe as root lacks rlimits or non-root uid: %s", pr)
	}
	for _, l := range (AllLayers &^ pr.Available).Each() {
		if pr.Missing[l] == "" {
			t.Errorf("layer %s is missing without a reason", l)
		}
	}
}

func TestStrictRunsNormalProgram(t *testing.T) {
	needLayers(t, Mandatory)
	o := expect(t, Spec{}, "ok hello from the sandbox", "hello")
	if o.err != nil || o.res.Reason != ReasonExited || o.res.ExitCode != 0 {
		t.Fatalf("result %v, err %v", o.res, o.err)
	}
	if !o.res.Layers.Has(Mandatory) {
		t.Errorf("applied layers %s lack %s", o.res.Layers, Mandatory&^o.res.Layers)
	}
	if o.res.Weakened&Mandatory != 0 {
		t.Errorf("weakened %s in strict mode", o.res.Weakened)
	}
}

func TestStrictIdentity(t *testing.T) {
	needLayers(t, Mandatory)
	o := run(t, Spec{Env: []string{"A=1"}}, "id")
	want := "ok uid=0 gid=0 groups=[] pid=1 capeff=0 capprm=0 bset=0 nnp=1 seccomp=2 host=insitu-sandbox env=A=1"
	if o.out != want {
		t.Errorf("got  %q\nwant %q\nstderr %s", o.out, want, o.errOut)
	}
}

func TestStrictRefusesMissingLayer(t *testing.T) {
	needRoot(t)
	for _, l := range Mandatory.Each() {
		t.Run(strings.ReplaceAll(l.String(), " ", "_"), func(t *testing.T) {
			p, err := New(Spec{Binary: sealedProbe(t), Unavailable: l})
			if err != nil {
				t.Fatal(err)
			}
			err = p.Start(t.Context())
			var le *LayerError
			if !errors.As(err, &le) || !errors.Is(err, ErrLayerUnavailable) {
				t.Fatalf("Start with %s unavailable: %v, want a *LayerError wrapping ErrLayerUnavailable", l, err)
			}
			if le.Layer != l || !strings.Contains(err.Error(), l.String()) {
				t.Errorf("error names %s (%q), want %s", le.Layer, err, l)
			}
		})
	}
}

func TestStrictRefusesDisabledLayer(t *testing.T) {
	needRoot(t)
	p, err := New(Spec{Binary: sealedProbe(t), Disable: LayerSeccomp | LayerNetNS})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Start(t.Context())
	var le *LayerError
	if !errors.As(err, &le) || !errors.Is(err, ErrLayerDisabled) || le.Layer != LayerSeccomp|LayerNetNS {
		t.Fatalf("got %v, want a *LayerError naming network namespace and seccomp, wrapping ErrLayerDisabled", err)
	}
}

func TestHostUID(t *testing.T) {
	needLayers(t, Mandatory)
	p, err := New(Spec{Binary: sealedProbe(t), Name: "probe", Args: []string{"hang"}, UID: 65530, GID: 65531})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/" + p.ID() + "/status")
	p.Kill(t.Context())
	werr := p.Wait(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Uid:\t65530\t65530\t65530\t65530", "Gid:\t65531\t65531\t65531\t65531", "CapEff:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2"} {
		if !strings.Contains(string(status), want+"\n") {
			t.Errorf("host view of the plugin lacks %q:\n%s", want, status)
		}
	}
	if !errors.Is(werr, ErrKilled) || p.Result().Reason != ReasonKilled {
		t.Errorf("after Kill: %v, reason %v", werr, p.Result().Reason)
	}
	if _, err := strconv.Atoi(p.ID()); err != nil {
		t.Errorf("ID %q is not a pid", p.ID())
	}
}

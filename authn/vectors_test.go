package authn

import (
	"os"
	"slices"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// vectorFile is testdata/acr-decisions.yaml: decision vectors for
// PRODUCT.md §2–§3 shared with the rest of the project.
type vectorFile struct {
	Cases []vectorCase `yaml:"cases"`
}

type vectorCase struct {
	Name     string        `yaml:"name"`
	Session  []vectorVerif `yaml:"session"`
	Enrolled []Factor      `yaml:"enrolled"`
	Request  vectorRequest `yaml:"request"`
	Want     vectorWant    `yaml:"want"`
}

type vectorVerif struct {
	Factor   Factor `yaml:"factor"`
	At       int    `yaml:"at"`
	UV       bool   `yaml:"uv"`
	Hardware bool   `yaml:"hardware"`
}

type vectorRequest struct {
	ACRValues        []string `yaml:"acr_values"`
	Essential        []string `yaml:"essential"`
	MaxAge           *int     `yaml:"max_age"`
	Prompt           string   `yaml:"prompt"`
	ClientMinACR     string   `yaml:"client_min_acr"`
	MFALogin         string   `yaml:"mfa_login"`
	Unenrolled       string   `yaml:"unenrolled"`
	HintOtherSubject bool     `yaml:"hint_other_subject"`
}

type vectorWant struct {
	OK *struct {
		ACR      string   `yaml:"acr"`
		AMR      []string `yaml:"amr"`
		AuthTime int      `yaml:"auth_time"`
	} `yaml:"ok"`
	Need   []Factor `yaml:"need"`
	Enroll *struct {
		Factor    Factor `yaml:"factor"`
		Skippable bool   `yaml:"skippable"`
	} `yaml:"enroll"`
	Error string `yaml:"error"`
}

// vectorACR maps the vectors' short level names to the default ladder.
var vectorACR = map[string]string{"1fa": ACR1FA, "mfa": ACRMFA, "phr": ACRPHR, "phrh": ACRPHRH}

func longACR(s string) string {
	if a, ok := vectorACR[s]; ok {
		return a
	}
	return s
}

func longACRs(ss []string) []string {
	var out []string
	for _, s := range ss {
		out = append(out, longACR(s))
	}
	return out
}

func TestDecisionVectors(t *testing.T) {
	f, err := os.Open("testdata/acr-decisions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	// A key this harness does not understand would silently weaken a vector.
	dec.KnownFields(true)
	var file vectorFile
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("parse vectors: %v", err)
	}
	if len(file.Cases) == 0 {
		t.Fatal("no vectors")
	}
	ladder := DefaultLadder()

	for _, c := range file.Cases {
		t.Run(c.Name, func(t *testing.T) {
			var verifs []Verification
			for _, v := range c.Session {
				verifs = append(verifs, Verification{Factor: v.Factor, At: at(v.At), UV: v.UV, Hardware: v.Hardware})
			}
			acct := Account{HasPassword: true, HasEmail: true, Enrollable: []Factor{TOTP}}
			for _, f := range c.Enrolled {
				acct.Enrolled = append(acct.Enrolled, Enrollment{Factor: f, UV: f == WebAuthn})
			}
			r := c.Request
			req := Request{
				ACRValues:        longACRs(r.ACRValues),
				ClientMinACR:     longACR(r.ClientMinACR),
				MFAAlways:        r.MFALogin == "always",
				Unenrolled:       Unenrolled(r.Unenrolled),
				HintOtherSubject: r.HintOtherSubject,
				Start:            testNow,
			}
			if len(r.Essential) > 0 {
				req.ACRValues, req.Essential = longACRs(r.Essential), true
			}
			if r.MaxAge != nil {
				d := time.Duration(*r.MaxAge) * time.Second
				req.MaxAge = &d
			}
			switch r.Prompt {
			case "":
			case "none":
				req.PromptNone = true
			case "login":
				req.PromptLogin = true
			default:
				t.Fatalf("unknown prompt %q", r.Prompt)
			}

			got := ladder.Evaluate(req, verifs, acct, testNow)
			w := c.Want
			switch {
			case w.OK != nil:
				if got.Outcome != OK {
					t.Fatalf("got %s, want OK", describe(got))
				}
				if want := longACR(w.OK.ACR); got.ACR != want {
					t.Errorf("acr = %q, want %q", got.ACR, want)
				}
				if !sameSet(got.AMR, w.OK.AMR) {
					t.Errorf("amr = %v, want %v", got.AMR, w.OK.AMR)
				}
				if want := at(w.OK.AuthTime); !got.AuthTime.Equal(want) {
					t.Errorf("auth_time = %v, want %v", got.AuthTime, want)
				}
			case w.Need != nil:
				if got.Outcome != Need || !slices.Equal(got.Need, w.Need) {
					t.Fatalf("got %s, want need %v", describe(got), w.Need)
				}
			case w.Enroll != nil:
				if got.Outcome != Enroll || got.EnrollFactor != w.Enroll.Factor || got.Skippable != w.Enroll.Skippable {
					t.Fatalf("got %s, want enroll %s skippable=%v", describe(got), w.Enroll.Factor, w.Enroll.Skippable)
				}
			case w.Error != "":
				if got.Outcome != Fail || got.Error != w.Error {
					t.Fatalf("got %s, want error %s", describe(got), w.Error)
				}
			default:
				t.Fatal("vector has no want")
			}
		})
	}
}

// sameSet reports whether got, which must not repeat a value, holds
// exactly the values of want.
func sameSet(got, want []string) bool {
	got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	return slices.Equal(got, slices.Compact(slices.Clone(got))) && slices.Equal(got, want)
}

package op

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"

	"github.com/stepup-dev/stepup/session"
)

// SendBudgets are the caps one code sent by SMS or email counts against
// (mfa.codes): per user, per destination and per client IP, so that a
// script cannot make stepup text premium numbers (SMS pumping) or flood
// one inbox. The destination is kept as a digest: phone numbers and
// addresses do not appear in Redis keys.
func (p *Provider) SendBudgets(r *http.Request, subject, to string) []session.Budget {
	sum := sha256.Sum256([]byte(to))
	return []session.Budget{
		{Kind: session.BudgetSendUser, ID: subject, Max: int64(p.codePolicy.PerUser)},
		{Kind: session.BudgetSendTo, ID: hex.EncodeToString(sum[:16]), Max: int64(p.codePolicy.PerDestination)},
		{Kind: session.BudgetSendIP, ID: p.ipBudget(r).ID, Max: int64(p.codePolicy.PerIP)},
	}
}

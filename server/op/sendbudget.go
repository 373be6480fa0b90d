package op

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"

	"github.com/stepup-dev/stepup/session"
)

// SendBudgets are the caps one code sent by SMS or email counts against
// (mfa.codes): per user, per destination and per client IP, so that a
// script cannot make stepup text premium numbers (SMS pumping) or flood
// one inbox. The destination is kept as a digest: phone numbers and
// addresses do not appear in Redis keys.
// ip is the end user's address; without one (an API caller that did not
// pass it) there is no per-IP cap.
func (p *Provider) SendBudgets(subject, to string, ip netip.Addr) []session.Budget {
	sum := sha256.Sum256([]byte(to))
	bs := []session.Budget{
		{Kind: session.BudgetSendUser, ID: subject, Max: int64(p.codePolicy.PerUser)},
		{Kind: session.BudgetSendTo, ID: hex.EncodeToString(sum[:16]), Max: int64(p.codePolicy.PerDestination)},
	}
	if ip.IsValid() {
		bs = append(bs, session.Budget{Kind: session.BudgetSendIP, ID: p.IPBudget(ip).ID, Max: int64(p.codePolicy.PerIP)})
	}
	return bs
}

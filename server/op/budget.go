package op

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/stepup-dev/stepup/session"
)

// ClientIP is the address of the client that sent r: the TCP peer, or,
// when the peer is a trusted proxy (config trusted_proxies), the
// right-most X-Forwarded-For address that is not itself a trusted proxy.
// Addresses further left were written by the client and prove nothing.
func (p *Provider) ClientIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !p.trusted(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		peer = a.Unmap()
		if !p.trusted(peer) {
			break
		}
	}
	return peer
}

func (p *Provider) trusted(a netip.Addr) bool {
	for _, pfx := range p.proxies {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// Budgets are the abuse budgets one attempt to prove a factor counts
// against (PRODUCT.md §3 "Lockout"): the user's, then the client IP's.
// user is the account's subject, or "" with username for a name that has
// no account: unknown names get budgets of their own, so that they lock
// out exactly like real ones and the answer tells nothing.
func (p *Provider) Budgets(r *http.Request, subject, username string) []session.Budget {
	id := subject
	if id == "" {
		sum := sha256.Sum256([]byte(strings.ToLower(username)))
		id = "unknown:" + hex.EncodeToString(sum[:16])
	}
	ip := p.ClientIP(r)
	if ip.Is6() {
		// One host usually holds a whole /64.
		ip = netip.PrefixFrom(ip, 64).Masked().Addr()
	}
	return []session.Budget{
		{Kind: session.BudgetUser, ID: id, Max: int64(p.lockout.MaxFailures)},
		{Kind: session.BudgetIP, ID: ip.String(), Max: int64(p.lockout.IPMaxFailures)},
	}
}

// LockoutWindow is how long a budget's failures count.
func (p *Provider) LockoutWindow() time.Duration { return p.lockout.Window.D() }

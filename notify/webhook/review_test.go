package webhook

import (
	"net"
	"strings"
	"testing"

	"github.com/stepup-dev/stepup/notify"
)

// A transport error must not carry the webhook URL, whose query often
// holds the receiver's token: the error is written to the audit log.
func TestTransportErrorOmitsTheURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: the connection is refused
	s := &Sender{URL: "http://" + addr + "/hook?token=s3cr3t-hook-token"}
	err = s.Send(t.Context(), notify.Message{To: "+15555550100", Code: "123456", Text: "code 123456"})
	if err == nil {
		t.Fatal("a refused connection was a success")
	}
	if strings.Contains(err.Error(), "s3cr3t-hook-token") || strings.Contains(err.Error(), "123456") {
		t.Fatalf("the error reveals the URL's token or the code: %v", err)
	}
}

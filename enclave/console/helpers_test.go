package console_test

import (
	"encoding/base64"
	"net"
)

type (
	netConn   = net.Conn
	netDialer = net.Dialer
)

var passkeyB64 = base64.RawURLEncoding

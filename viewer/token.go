package viewer

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// TokenParam is the query parameter that carries the viewer's token; the
// page keeps it in its links and form, so that a browser given one link
// with the token can follow them all.
const TokenParam = "token"

// RequireToken returns middleware that answers 401 to every request that
// carries neither "Authorization: Bearer <token>" nor the query parameter
// token=<token>. Mount the viewer behind it when it listens where others
// can reach it:
//
//	v.Register(e.Group("/stats", viewer.RequireToken(token)))
//
// Tokens are compared in constant time (of their SHA-256 digests, so that
// not even the length leaks). An empty token lets nothing through.
func RequireToken(token string) echo.MiddlewareFunc {
	want := sha256.Sum256([]byte(token))
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if token != "" && (matches(want, bearer(c.Request())) || matches(want, c.QueryParam(TokenParam))) {
				return next(c)
			}
			h := c.Response().Header()
			h.Set("WWW-Authenticate", `Bearer realm="lonelytrace"`)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Cache-Control", "no-store")
			return echo.NewHTTPError(http.StatusUnauthorized, "this viewer needs its token: add ?"+TokenParam+"=… to the address, or send Authorization: Bearer …")
		}
	}
}

func bearer(r *http.Request) string {
	a := r.Header.Get("Authorization")
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

func matches(want [sha256.Size]byte, got string) bool {
	if got == "" {
		return false
	}
	g := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(want[:], g[:]) == 1
}

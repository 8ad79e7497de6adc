package infra

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"time"
)

// secretVars hold secrets outright; urlVars may carry a password inside.
var (
	secretVars = map[string]bool{"DB_PASSWORD": true, "OPENAI_API_KEY": true, "ANTHROPIC_API_KEY": true}
	urlVars    = map[string]bool{"DATABASE_URL": true, "MLFLOW_TRACKING_URI": true}
)

// Redacted returns every setting as VARIABLE → value, safe to log or print:
// secrets show as "***" when set, and passwords inside URLs are masked.
func (c Config) Redacted() map[string]string {
	v := reflect.ValueOf(c)
	t := v.Type()
	out := make(map[string]string, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("env"), ",")
		if name == "" {
			continue
		}
		val := formatValue(v.Field(i).Interface())
		switch {
		case secretVars[name] && val != "":
			val = "***"
		case urlVars[name]:
			val = RedactURL(val)
		}
		out[name] = val
	}
	return out
}

func formatValue(v any) string {
	switch x := v.(type) {
	case Seconds:
		return x.Duration().String()
	case time.Duration:
		return x.String()
	}
	return fmt.Sprint(v)
}

// RedactURL masks the password of a URL-style DSN; a value that does not
// parse is masked whole, since it may still hold a secret.
func RedactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "***"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
